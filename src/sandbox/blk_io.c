/* A virtio-blk device's thread (virtio/blk.c): everything goes through
 * its io_uring (reads, writes, flushes, discards, and the reads of its
 * kick and stop eventfds), so little is left: entering the ring, and
 * writes that bypass it (a bounce for unaligned direct I/O, fallocate for
 * discards and write-zeroes where the ring cannot). */
#include "sandbox/rules.h"

static const struct sandbox_rule rules[] = {
	SB_ALLOW(io_uring_enter),
	SB_ALLOW(read),
	SB_ALLOW(pread64),
	SB_ALLOW(pwrite64),
	SB_ALLOW(preadv),
	SB_ALLOW(pwritev),
	SB_ALLOW(fdatasync),
	SB_ALLOW(fsync),
	SB_ALLOW(fallocate),
};

const struct sandbox_rules sandbox_blk_io_rules = SB_RULES("blk_io", rules);
