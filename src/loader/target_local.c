/* loader/target.h where ctl/ (named VMs) is not part of the build: the
 * same directory ($KHYVE_RUNDIR/NAME: lock, mem, entry) and the same
 * entry format (ctl/entry.h, version 1), written here directly.
 *
 * TODO(merge): once ctl/ is in the tree, meson builds target_ctl.c
 * instead and this file goes. */
#include "loader/target.h"

/* Names, paths and messages are cut to their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct target {
	char dir[512];
	int dir_fd, lock_fd;
	bool fresh;
	struct guest_mem gm;
	bool have_mem;
	uint64_t mem_size;
};

static void rundir(char *buf, size_t len)
{
	const char *e = getenv("KHYVE_RUNDIR");
	if (e && e[0])
		snprintf(buf, len, "%s", e);
	else if (geteuid() == 0)
		snprintf(buf, len, "/run/khyve");
	else if ((e = getenv("XDG_RUNTIME_DIR")) && e[0])
		snprintf(buf, len, "%s/khyve", e);
	else
		snprintf(buf, len, "/tmp/khyve-%u", (unsigned)geteuid());
}

int target_open(const char *name, struct target **out, char *err, size_t errlen)
{
	size_t n = strlen(name);
	bool ok = n >= 1 && n <= 31 && name[0] != '.' && strcmp(name, "locks");
	for (size_t i = 0; ok && i < n; i++)
		ok = name[i] > ' ' && name[i] < 0x7f && name[i] != '/';
	if (!ok) {
		snprintf(err, errlen, "'%s' is not a valid VM name (1-31 printable characters, no "
				      "'/' or space, not starting with '.')", name);
		return -EINVAL;
	}
	struct target *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	char base[400];
	rundir(base, sizeof(base));
	mkdir(base, 0700);
	snprintf(t->dir, sizeof(t->dir), "%s/%s", base, name);
	t->fresh = mkdir(t->dir, 0700) == 0;
	t->dir_fd = open(t->dir, O_DIRECTORY | O_CLOEXEC);
	t->lock_fd = t->dir_fd >= 0 ? openat(t->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600)
				    : -1;
	if (t->lock_fd < 0) {
		snprintf(err, errlen, "%s: %s", t->dir, strerror(errno));
		goto fail;
	}
	if (flock(t->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		char who[64] = "";
		ssize_t r = pread(t->lock_fd, who, sizeof(who) - 1, 0);
		int pid = 0;
		if (r > 0)
			sscanf(who, "pid=%d", &pid);
		snprintf(err, errlen, "%s: in use (pid %d)", name, pid);
		close(t->lock_fd);
		close(t->dir_fd);
		free(t);
		return -EBUSY;
	}
	char note[64];
	int len = snprintf(note, sizeof(note), "pid=%d\nrole=loader\n", (int)getpid());
	/* A courtesy only: the lock is the guard. */
	if (ftruncate(t->lock_fd, 0) == 0 && pwrite(t->lock_fd, note, (size_t)len, 0) < 0) {
	}
	*out = t;
	return 0;
fail:
	if (t->fresh) {
		if (t->dir_fd >= 0)
			unlinkat(t->dir_fd, "lock", 0);
		rmdir(t->dir);
	}
	if (t->dir_fd >= 0)
		close(t->dir_fd);
	free(t);
	return -EIO;
}

const char *target_dir(const struct target *t)
{
	return t->dir;
}

int target_mem(struct target *t, uint64_t size, struct guest_mem **gm, char *err, size_t errlen)
{
	if (t->have_mem) {
		guest_mem_destroy(&t->gm);
		t->have_mem = false;
	}
	/* The file khyve maps: written through an anonymous guest_mem here
	 * and copied out at commit (the fallback's simplicity; ctl/ maps
	 * the file itself). */
	int r = guest_mem_create(&t->gm, size);
	if (r) {
		snprintf(err, errlen, "guest memory of %llu bytes: %s", (unsigned long long)size,
			 strerror(-r));
		return r;
	}
	t->have_mem = true;
	t->mem_size = size;
	*gm = &t->gm;
	return 0;
}

static void put(FILE *f, const char *k, uint64_t v)
{
	fprintf(f, "%s=0x%llx\n", k, (unsigned long long)v);
}

int target_commit(struct target *t, const struct boot_entry *e, const char *cmdline,
		  const struct target_load *loads, unsigned nloads, char *err, size_t errlen)
{
	if (!t->have_mem) {
		snprintf(err, errlen, "nothing loaded into memory");
		target_abort(t);
		return -EINVAL;
	}
	int fd = openat(t->dir_fd, "mem", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && ftruncate(fd, (off_t)t->mem_size) == 0;
	/* Sparse: only the pages that hold something are written. */
	for (uint64_t off = 0; ok && off < t->gm.size; off += 4096) {
		const uint8_t *p = t->gm.host + off;
		static const uint8_t zero[4096];
		if (memcmp(p, zero, 4096))
			ok = pwrite(fd, p, 4096, (off_t)off) == 4096;
	}
	if (fd >= 0)
		close(fd);
	FILE *f = NULL;
	int efd = ok ? openat(t->dir_fd, "entry.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)
		     : -1;
	if (efd >= 0 && (f = fdopen(efd, "w"))) {
		fprintf(f, "khyve-entry 1\n");
		fprintf(f, "mem=%llu\n", (unsigned long long)t->mem_size);
		fprintf(f, "mode=%s\n", e->mode == BOOT_CPU_LONG64 ? "long64" : "prot32");
		put(f, "rip", e->rip);
		put(f, "rsp", e->rsp);
		put(f, "rflags", e->rflags);
		put(f, "rax", e->rax);
		put(f, "rbx", e->rbx);
		put(f, "rsi", e->rsi);
		put(f, "cr0", e->cr0);
		put(f, "cr3", e->cr3);
		put(f, "cr4", e->cr4);
		put(f, "efer", e->efer);
		put(f, "gdt_base", e->gdt_base);
		put(f, "gdt_limit", e->gdt_limit);
		put(f, "code_sel", e->code_sel);
		put(f, "data_sel", e->data_sel);
		put(f, "tss_sel", e->tss_sel);
		if (e->format_name)
			fprintf(f, "format=%s\n", e->format_name);
		if (cmdline && !strchr(cmdline, '\n'))
			fprintf(f, "cmdline=%s\n", cmdline);
		for (unsigned i = 0; i < nloads && i < 32; i++)
			fprintf(f, "load=%s 0x0 0x%llx %s\n", loads[i].kind,
				(unsigned long long)loads[i].size, loads[i].name);
		ok = fflush(f) == 0 && fsync(efd) == 0;
		ok = fclose(f) == 0 && ok;
		ok = ok && renameat(t->dir_fd, "entry.tmp", t->dir_fd, "entry") == 0;
	} else {
		ok = false;
		if (efd >= 0)
			close(efd);
	}
	if (!ok) {
		snprintf(err, errlen, "%s: cannot write the VM's memory and entry: %s", t->dir,
			 strerror(errno));
		unlinkat(t->dir_fd, "entry.tmp", 0);
		target_abort(t);
		return -EIO;
	}
	guest_mem_destroy(&t->gm);
	if (ftruncate(t->lock_fd, 0) < 0) { /* a courtesy only */
	}
	close(t->lock_fd);
	close(t->dir_fd);
	free(t);
	return 0;
}

void target_abort(struct target *t)
{
	if (t->have_mem)
		guest_mem_destroy(&t->gm);
	if (t->fresh || t->mem_size) {
		unlinkat(t->dir_fd, "mem", 0);
		unlinkat(t->dir_fd, "entry", 0);
	}
	if (t->fresh) {
		unlinkat(t->dir_fd, "lock", 0);
		rmdir(t->dir);
	} else if (ftruncate(t->lock_fd, 0) < 0) {
		; /* a courtesy only */
	}
	close(t->lock_fd);
	close(t->dir_fd);
	free(t);
}
