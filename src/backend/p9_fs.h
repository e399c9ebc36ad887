/* A 9P2000.L file server on one host directory (the share), for
 * virtio-9p (virtio/p9.c) and its tests.
 *
 * Confinement. The share is held as an O_PATH descriptor; every fid holds
 * its own O_PATH descriptor, and every lookup is one component at a time
 * from a fid's descriptor with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): a walk never follows a
 * symlink (the guest reads it and resolves it itself, inside its own
 * mount), never climbs above the descriptor it starts from, and so never
 * leaves the share. ".." is resolved from the share's root by name, and
 * stays at the root when walked from it. Files are opened again through
 * /proc/self/fd only when they are regular files or directories (never a
 * symlink, device or FIFO). A read-only share answers every change with
 * EROFS.
 *
 * Bounds. At most max_fids fids (each one or two descriptors), xattr
 * values of at most 64 KiB and 4 MiB of them at once; msize at most the
 * cap given at creation. Memory does not grow with what the guest sends
 * beyond these.
 *
 * Not thread-safe: one caller at a time (virtio-9p's device thread). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define P9_MSIZE_MAX (512u << 10)
#define P9_MSIZE_MIN 4096u
#define P9_DEFAULT_MAX_FIDS 65536u

struct p9_server;

/* Serve the directory at path (must be one). msize_max: the largest
 * msize agreed (clamped to [P9_MSIZE_MIN, P9_MSIZE_MAX]). Returns 0 or
 * -errno. */
int p9_server_new(const char *path, bool ro, uint32_t msize_max, unsigned max_fids,
		  struct p9_server **out);
void p9_server_free(struct p9_server *s);
/* The msize in force: the cap until a Tversion agrees on less. */
uint32_t p9_server_msize(const struct p9_server *s);
/* Handle one request (req: a host copy of the message, reqlen bytes) and
 * write the reply into resp (cap bytes: the room the client gave, or
 * less). Returns the reply's length; 0 when not even an Rlerror fits. */
size_t p9_server_handle(struct p9_server *s, const uint8_t *req, size_t reqlen, uint8_t *resp,
			size_t cap);
/* Forget every fid and the agreed msize (a device reset). */
void p9_server_reset(struct p9_server *s);
/* Fids in use (tests). */
unsigned p9_server_fids(const struct p9_server *s);
