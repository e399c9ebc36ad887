/* loader/target.h over the named VMs of ctl/ (ctl/vmdir.h, ctl/entry.h):
 * the one file that binds khyveload to them. */
#include "loader/target.h"

/* Names, paths and messages are cut to their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/entry.h"
#include "ctl/vmdir.h"

struct target {
	struct ctl_vm vm;
	struct guest_mem gm;
	bool have_mem;
	uint64_t mem_size;
};

int target_open(const char *name, struct target **out, char *err, size_t errlen)
{
	if (ctl_check_name(name, err, errlen))
		return -EINVAL;
	struct target *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = ctl_vm_open(name, CTL_OPEN_CREATE, CTL_ROLE_LOADER, &t->vm, err, errlen);
	if (r) {
		free(t);
		return r;
	}
	*out = t;
	return 0;
}

const char *target_dir(const struct target *t)
{
	return t->vm.dir;
}

int target_mem(struct target *t, uint64_t size, struct guest_mem **gm, char *err, size_t errlen)
{
	if (t->have_mem) {
		guest_mem_destroy(&t->gm);
		t->have_mem = false;
	}
	int r = ctl_vm_mem_create(&t->vm, size, &t->gm, err, errlen);
	if (r)
		return r;
	t->have_mem = true;
	t->mem_size = size;
	*gm = &t->gm;
	return 0;
}

int target_commit(struct target *t, const struct boot_entry *entry, const char *cmdline,
		  const struct target_load *loads, unsigned nloads, char *err, size_t errlen)
{
	struct ctl_entry *e = calloc(1, sizeof(*e));
	if (!e || !t->have_mem) {
		snprintf(err, errlen, e ? "nothing loaded into memory" : "out of memory");
		free(e);
		target_abort(t);
		return -EINVAL;
	}
	ctl_entry_init(e, t->mem_size, entry, cmdline);
	for (unsigned i = 0; i < nloads; i++)
		ctl_entry_add_load(e, loads[i].kind, 0, loads[i].size, loads[i].name);
	guest_mem_destroy(&t->gm); /* the file keeps what was written */
	t->have_mem = false;
	int r = ctl_vm_write_entry(&t->vm, e, err, errlen);
	free(e);
	if (r) {
		target_abort(t);
		return r;
	}
	ctl_vm_close(&t->vm);
	free(t);
	return 0;
}

void target_abort(struct target *t)
{
	if (t->have_mem)
		guest_mem_destroy(&t->gm);
	/* A VM this run made goes; one that existed keeps what it had, but
	 * memory written by this run without an entry is half a VM: the
	 * memory file is dropped with it. */
	if (t->vm.fresh) {
		ctl_vm_abandon(&t->vm);
	} else {
		if (t->mem_size) {
			char p[512];
			ctl_vm_path(&t->vm, "mem", p, sizeof(p));
			remove(p);
			ctl_vm_path(&t->vm, "entry", p, sizeof(p));
			remove(p);
		}
		ctl_vm_close(&t->vm);
	}
	free(t);
}
