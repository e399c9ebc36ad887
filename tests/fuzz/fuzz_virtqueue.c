/* Fuzz target for the split virtqueue (src/virtio/virtqueue.c): the input
 * is what a hostile guest controls, written into guest RAM: descriptor
 * table, avail ring, used ring and indirect tables, plus the queue size,
 * the negotiated features and how many segments the device takes. Every
 * chain vq_pop hands out must lie wholly inside guest RAM; nothing may
 * crash, hang or touch memory outside it (ASan and UBSan watch).
 *
 * With clang: fuzz_virtqueue is a libFuzzer binary
 *   build/tests/fuzz/fuzz_virtqueue tests/fuzz/corpus/virtqueue -max_total_time=60
 * With any compiler, fuzz_virtqueue_replay runs the corpus (a unit test). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem/guest_mem.h"
#include "virtio/virtqueue.h"

#define RAM (4ULL << 20)
#define DESC 0x1000ULL
#define AVAIL 0x10000ULL
#define USED 0x20000ULL
#define TABLES 0x30000ULL /* indirect tables and buffers live from here */

static struct guest_mem gm;

static void check_inside(const struct vq_chain *c)
{
	const uint8_t *lo = gm.host, *hi = gm.host + gm.size;
	for (unsigned i = 0; i < c->nout + c->nin; i++) {
		const uint8_t *b = c->iov[i].iov_base;
		if (b < lo || b + c->iov[i].iov_len > hi || c->iov[i].iov_len == 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!gm.host && guest_mem_create(&gm, RAM))
		abort();
	if (size < 4)
		return 0;
	uint16_t qsize = (uint16_t)(1u << (data[0] % 9));
	uint64_t features = ((data[1] & 1) ? 1ULL << VIRTIO_F_RING_EVENT_IDX : 0) |
			    ((data[1] & 2) ? 1ULL << VIRTIO_F_RING_INDIRECT_DESC : 0);
	unsigned cap = 1 + data[2] % 64;
	unsigned rounds = 1 + data[3] % (2u * qsize + 2);
	data += 4;
	size -= 4;
	/* Lay the input over the rings and tables, in that order. */
	struct { uint64_t gpa, len; } areas[] = {
		{ DESC, 16ULL * qsize }, { AVAIL, 6 + 2ULL * qsize }, { USED, 6 + 8ULL * qsize },
		{ TABLES, 0x10000 },
	};
	guest_mem_fill(&gm, 0, 0, 0x40000);
	for (size_t i = 0; i < sizeof(areas) / sizeof(areas[0]) && size; i++) {
		size_t n = size < areas[i].len ? size : areas[i].len;
		guest_mem_write(&gm, areas[i].gpa, data, n);
		data += n;
		size -= n;
	}
	struct virtqueue vq;
	if (vq_init(&vq, &gm, qsize, DESC, AVAIL, USED, features))
		return 0;
	struct iovec iov[64];
	for (unsigned r = 0; r < rounds; r++) {
		struct vq_chain c = { .cap = cap, .iov = iov };
		int got = vq_pop(&vq, &c);
		if (got <= 0)
			break;
		check_inside(&c);
		uint8_t tmp[32];
		vq_chain_read(&c, 0, tmp, sizeof(tmp));
		vq_chain_write(&c, c.in_len > 8 ? c.in_len - 8 : 0, tmp, 8);
		if (r & 1)
			vq_push(&vq, c.head, (uint32_t)c.in_len);
		else
			vq_unpop(&vq), vq_pop(&vq, &c) > 0 ? vq_push(&vq, c.head, 0) : (void)0;
		vq_should_notify(&vq);
		vq_enable_kicks(&vq, r & 2);
	}
	return 0;
}
