/* khyveload's devices, as the OK prompt names them:
 *
 *   host0:      the host directory given with -h. Every path is opened
 *               with openat2(2) RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS
 *               below it, so neither ".." nor a symbolic link can leave it
 *               (Linux 5.6 or later).
 *   diskN:      the N-th -d image, when it holds an ext2/3/4 file system
 *               as a whole;
 *   diskNpM:    its partition M (MBR, with logicals from 5, or GPT).
 *
 * Disks are read with libext2fs, read-only, taking a read lock on the
 * image (the one khyve's disk backend takes; backend/disk.c) so that a
 * running VM's image is not read half-written. The one write is
 * ldev_rewrite(), for nextboot (loader/nextboot.h).
 *
 * A path is "dev:/path", or "/path" on the current device. Everything
 * returns 0 or -errno with a one-line reason in err. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader/part.h"

#define LDEV_MAX_DISKS 8
#define LDEV_NAME_MAX 16

struct ldisk {
	char *path;
	int fd;
	uint64_t size;
	bool whole_ext;          /* diskN: is itself ext2/3/4 */
	struct part_table parts;
	void *fs[PART_MAX + 1];  /* ext2_filsys, opened when first used; [0] whole */
};

struct ldevs {
	int host_fd; /* O_PATH directory, or -1 */
	char *host_path;
	unsigned ndisks;
	struct ldisk disks[LDEV_MAX_DISKS];
};

void ldevs_init(struct ldevs *d);
void ldevs_free(struct ldevs *d);
/* dir must be absolute and a directory. */
int ldevs_set_host(struct ldevs *d, const char *dir, char *err, size_t errlen);
/* The image must be ext2/3/4 as a whole or hold a partition table. */
int ldevs_add_disk(struct ldevs *d, const char *path, char *err, size_t errlen);

/* One line per device (and partition) through out; verbose adds sizes,
 * types and the file system's label. */
void ldevs_list(struct ldevs *d, bool verbose, void (*out)(void *opaque, const char *line),
		void *opaque);

/* The device names that hold a readable file system, in lsdev order:
 * host0 first. Returns the count (at most max). */
unsigned ldevs_fs_names(struct ldevs *d, char names[][LDEV_NAME_MAX], unsigned max);

/* Splits spec into device and path against currdev ("host0", "disk0p1";
 * may be NULL). */
int ldev_split(const char *spec, const char *currdev, char *dev, size_t devlen, char *path,
	       size_t pathlen, char *err, size_t errlen);

/* A readable descriptor with the file's whole contents (host0: the file
 * itself; a disk: a memfd filled from it), and its size. max bounds the
 * size. */
int ldev_open(struct ldevs *d, const char *spec, const char *currdev, uint64_t max, int *fd,
	      uint64_t *size, char *err, size_t errlen);
/* The same, into a NUL-terminated heap buffer. */
int ldev_read(struct ldevs *d, const char *spec, const char *currdev, size_t max, char **buf,
	      size_t *len, char *err, size_t errlen);
/* True when the file exists (errors count as no). */
bool ldev_exists(struct ldevs *d, const char *spec, const char *currdev);
/* Calls fn for each directory entry (without "." and ".."). */
int ldev_ls(struct ldevs *d, const char *spec, const char *currdev,
	    void (*fn)(void *opaque, const char *name, bool dir, uint64_t size), void *opaque,
	    char *err, size_t errlen);
/* Overwrites the bytes of an existing file on a disk in place (len must
 * be its size): no block is allocated or freed. Takes the image's write
 * lock for the moment, so it fails while a VM uses the image. */
int ldev_rewrite(struct ldevs *d, const char *spec, const void *data, size_t len, char *err,
		 size_t errlen);
