/* A virtio-9p device's thread (virtio/p9.c, backend/p9_fs.c): the 9P2000.L
 * file server. It waits on the queue's kick (poll) and does what the
 * guest asks of the share, always relative to a directory handle it holds
 * (openat2 with RESOLVE_BENEATH, the *at calls): open and create, read and
 * write, directories, links and symlinks, renames, attributes, xattrs
 * (read only), POSIX locks by OFD fcntl, fsync. What keeps the guest inside
 * the share is the server's fd-relative walk, not this list: a file server
 * needs these calls on whatever the share holds. */
#include "sandbox/rules.h"

static const struct sandbox_rule rules[] = {
	SB_ALLOW(poll),
	SB_ALLOW(read),
	SB_ALLOW(openat),
	SB_ALLOW(openat2),
	SB_ALLOW(newfstatat),
	SB_ALLOW(fstat),
	SB_ALLOW(statx),
	SB_ALLOW(fstatfs),
	SB_ALLOW(readlinkat),
	SB_ALLOW(mkdirat),
	SB_ALLOW(mknodat),
	SB_ALLOW(symlinkat),
	SB_ALLOW(linkat),
	SB_ALLOW(renameat),
	SB_ALLOW(renameat2),
	SB_ALLOW(unlinkat),
	SB_ALLOW(fchmodat),
	SB_ALLOW(fchmod),
	SB_ALLOW(fchownat),
	SB_ALLOW(fchown),
	SB_ALLOW(utimensat),
	SB_ALLOW(ftruncate),
	SB_ALLOW(pread64),
	SB_ALLOW(pwrite64),
	SB_ALLOW(preadv),
	SB_ALLOW(pwritev),
	SB_ALLOW(lseek),
	SB_ALLOW(getdents64),
	SB_ALLOW(fcntl),
	SB_ALLOW(fsync),
	SB_ALLOW(fdatasync),
	SB_ALLOW(flistxattr),
	SB_ALLOW(fgetxattr),
};

const struct sandbox_rules sandbox_p9_io_rules = SB_RULES("p9_io", rules);
