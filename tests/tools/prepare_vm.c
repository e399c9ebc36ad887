/* Prepares a named VM the way a loader does, through the library calls a
 * loader makes (ctl/vmdir.h, ctl/entry.h, boot/boot.h), for the tests of
 * `khyve NAME` without --kernel:
 *
 *   prepare_vm NAME MEMSIZE KERNEL [CMDLINE]
 *
 * creates NAME (or reuses it), writes KERNEL into a fresh memory file as
 * khyve --kernel would, leaves the entry state and lets go. Exit 0, or 4
 * with one line on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"
#include "ctl/entry.h"
#include "ctl/vmdir.h"
#include "mem/guest_mem.h"
#include "util/parse.h"

static struct ctl_entry entry;

static void note_load(void *opaque, const char *line)
{
	(void)opaque;
	/* The loaders say what went where in words; keep them as loads. */
	ctl_entry_add_load(&entry, "note", 0, 0, line);
}

int main(int argc, char **argv)
{
	char err[512];
	uint64_t size;
	if (argc < 4 || argc > 5 || parse_mem_size(argv[2], &size)) {
		fprintf(stderr, "usage: prepare_vm NAME MEMSIZE KERNEL [CMDLINE]\n");
		return 4;
	}
	struct ctl_vm vm;
	if (ctl_vm_open(argv[1], CTL_OPEN_CREATE, CTL_ROLE_LOADER, &vm, err, sizeof(err))) {
		fprintf(stderr, "prepare_vm: %s\n", err);
		return 4;
	}
	struct guest_mem gm;
	if (ctl_vm_mem_create(&vm, size, &gm, err, sizeof(err))) {
		fprintf(stderr, "prepare_vm: %s\n", err);
		ctl_vm_abandon(&vm);
		return 4;
	}
	struct boot_request req = {
		.kernel_path = argv[3],
		.cmdline = argc == 5 ? argv[4] : NULL,
		.inform = note_load,
	};
	struct boot_entry be;
	memset(&entry, 0, sizeof(entry));
	if (boot_load_kernel(&gm, &req, &be, err, sizeof(err))) {
		fprintf(stderr, "prepare_vm: %s\n", err);
		guest_mem_destroy(&gm);
		ctl_vm_abandon(&vm);
		return 4;
	}
	struct ctl_entry loads = entry; /* the notes gathered while loading */
	ctl_entry_init(&entry, size, &be, req.cmdline);
	for (unsigned i = 0; i < loads.nloads; i++)
		ctl_entry_add_load(&entry, loads.loads[i].kind, 0, 0, loads.loads[i].name);
	guest_mem_destroy(&gm);
	if (ctl_vm_write_entry(&vm, &entry, err, sizeof(err))) {
		fprintf(stderr, "prepare_vm: %s\n", err);
		ctl_vm_abandon(&vm);
		return 4;
	}
	ctl_vm_close(&vm);
	return 0;
}
