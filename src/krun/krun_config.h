/* The run description khyve-run hands to its guest init (/krun/config in
 * the per-run initramfs): records of one tag byte, a value and a NUL.
 *   a ARG      one argument of the command (in order; at least one)
 *   e NAME=V   one environment variable of the command
 *   c DIR      the working directory
 *   u UID, g GID, G GID (a supplementary group; repeatable)
 *   h DIR      the home directory, shown writable (an overlay)
 *   o FS:TAG   the root share: "virtiofs:TAG" or "9p:TAG"
 *   r FS:TAG   a read-write share, followed by
 *   p PATH     where it is mounted
 *   t 0|1      the command gets a terminal (hvc0)
 *   R ROWS, C COLS  the terminal's size
 *   n 0|1      bring up eth0 (slirp's addresses)
 * Values are plain bytes; numbers are decimal. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define KRUN_MAX_ARGS 4096
#define KRUN_MAX_ENV 4096
#define KRUN_MAX_GROUPS 256
#define KRUN_MAX_SHARES 24

struct krun_share {
	const char *fs; /* "virtiofs" or "9p" */
	const char *tag;
	const char *path;
};

struct krun_config {
	char *argv[KRUN_MAX_ARGS + 1]; /* NULL-terminated */
	unsigned argc;
	char *envp[KRUN_MAX_ENV + 1];
	unsigned envc;
	const char *cwd, *home;
	unsigned uid, gid;
	unsigned groups[KRUN_MAX_GROUPS];
	unsigned ngroups;
	struct krun_share root;
	struct krun_share rw[KRUN_MAX_SHARES];
	unsigned nrw;
	bool tty, net;
	unsigned rows, cols;
	char *buf; /* the parsed copy the pointers point into */
};

/* Parse len bytes. 0, or -1 with a one-line reason in err. The config
 * keeps a copy of the bytes; krun_config_free releases it. */
int krun_config_parse(struct krun_config *c, const void *data, size_t len, char *err,
		      size_t errlen);
void krun_config_free(struct krun_config *c);
