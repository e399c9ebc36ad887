/* What `load` gathered and `boot` hands to src/boot: the kernel and the
 * preloaded files (initrds, modules, FreeBSD files), each held open as a
 * descriptor with its contents, and the loader environment. Loading into
 * guest memory happens at boot, through boot_load_kernel(): for FreeBSD
 * kernels with the kenv and the module names of boot/freebsd.h (kload.c
 * is the one place in src/loader that knows of them). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "mem/guest_mem.h"

#define KLOAD_MAX_FILES 64

struct kload_file {
	char *spec;  /* "host0:/boot/kernel/kernel" */
	char *type;  /* "kernel", "initrd", "module", or a FreeBSD type */
	char *args;  /* may be NULL */
	int fd;
	uint64_t size;
};

struct kload_set {
	bool have_kernel;
	struct kload_file kernel;
	const char *format; /* what the kernel was found to be ("bzImage", ...) */
	bool freebsd;       /* a FreeBSD kernel, loaded as bhyveload does */
	unsigned nfiles;
	struct kload_file files[KLOAD_MAX_FILES];
};

void kload_init(struct kload_set *s);
void kload_clear(struct kload_set *s); /* unload */

/* Checks that fd holds a kernel khyve boots (a trial load into scratch
 * memory of mem_size) and makes it the set's kernel, taking fd, spec,
 * args. env: "name=value" strings (FreeBSD's kenv). */
int kload_kernel(struct kload_set *s, int fd, uint64_t size, const char *spec, const char *args,
		 uint64_t mem_size, const char *const *env, unsigned nenv, char *err,
		 size_t errlen);
/* Adds a preloaded file (taking fd). */
int kload_file(struct kload_set *s, int fd, uint64_t size, const char *spec, const char *type,
	       const char *args, char *err, size_t errlen);

/* Loads the set into gm. cmdline: Linux's (NULL: none); single: boot -s
 * (FreeBSD: RB_SINGLE through "-s"; Linux: "single" on the command line).
 * The command line the kernel got goes to final (may be NULL). */
int kload_boot(const struct kload_set *s, const struct guest_mem *gm, const char *cmdline,
	       bool single, const char *const *env, unsigned nenv, struct boot_entry *entry,
	       char *final, size_t finallen, char *err, size_t errlen);
