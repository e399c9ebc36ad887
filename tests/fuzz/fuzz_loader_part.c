/* Fuzz target for the partition tables khyveload reads (MBR with EBR
 * chains, GPT; src/loader/part.c): the disk's first bytes are the input,
 * its size is taken from the first 4 bytes (so partitions can lie beyond
 * the bytes given, which read as zero). Every partition found must lie
 * within the disk.
 *
 * With clang: build/tests/fuzz/fuzz_loader_part tests/fuzz/corpus/loader_part
 * With any compiler, fuzz_loader_part_replay runs the corpus (a unit test). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader/part.h"

struct disk {
	const uint8_t *data;
	size_t len;
	uint64_t size;
};

static int rd(void *opaque, uint64_t off, void *buf, size_t len)
{
	const struct disk *d = opaque;
	if (off > d->size || len > d->size - off)
		return -EIO;
	memset(buf, 0, len);
	if (off < d->len)
		memcpy(buf, d->data + off, len < d->len - off ? len : d->len - off);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	struct disk d = { data + 4, size - 4,
			  ((uint64_t)data[0] | (uint64_t)data[1] << 8 | (uint64_t)data[2] << 16 |
			   (uint64_t)data[3] << 24) * 512 };
	static struct part_table t;
	char err[128];
	part_is_ext(rd, &d, 0, d.size);
	if (part_parse(rd, &d, d.size, &t, err, sizeof(err)))
		return 0;
	if (t.n > PART_MAX)
		abort();
	for (unsigned i = 0; i < t.n; i++)
		if (!t.p[i].size || t.p[i].start > d.size || t.p[i].size > d.size - t.p[i].start)
			abort();
	return 0;
}
