/* The VM khyveload prepares, behind one small interface: create or open
 * the named VM (its lock held while loading), hand out fresh guest memory
 * that `khyve NAME` will run, record the boot entry, then commit (let go,
 * leaving memory and entry state for khyve) or abort (nothing left
 * behind when this run created the VM).
 *
 * Bound in one file: target_ctl.c, over ctl/vmdir.h and ctl/entry.h (the
 * named VMs of `khyve NAME` and khyvectl). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "mem/guest_mem.h"

struct target;

struct target_load {
	const char *kind; /* "kernel", "initrd", "module", a FreeBSD type */
	const char *name; /* where it came from: "host0:/boot/kernel/kernel" */
	uint64_t size;
};

/* Name checks, then create or open the VM and take its lock. -EINVAL a
 * bad name, -EBUSY held by a running khyve or another loader (err says
 * which pid). */
int target_open(const char *name, struct target **t, char *err, size_t errlen);
/* The VM's directory, for messages. */
const char *target_dir(const struct target *t);
/* Fresh memory of size bytes for the VM (any earlier one is dropped);
 * *gm stays valid until the next target_mem, commit or abort. */
int target_mem(struct target *t, uint64_t size, struct guest_mem **gm, char *err,
	       size_t errlen);
/* Record the entry state (with the memory of the last target_mem) and let
 * go of the VM: ready for `khyve NAME`. t is freed, also on failure (then
 * as target_abort). */
int target_commit(struct target *t, const struct boot_entry *entry, const char *cmdline,
		  const struct target_load *loads, unsigned nloads, char *err, size_t errlen);
/* Let go without booting: a VM this run created is removed, memory and
 * entry files this run wrote are removed. t is freed. */
void target_abort(struct target *t);
