/* Split virtqueue walking: good chains (direct, chained, indirect, zero
 * length), every kind of malformed chain, event-idx notification and kick
 * suppression, used ring updates. */
#include <errno.h>
#include <string.h>

#include "mem/guest_mem.h"
#include "unit.h"
#include "virtio/virtqueue.h"

#define QS 8
#define DESC 0x10000ULL
#define AVAIL 0x11000ULL
#define USED 0x12000ULL
#define ITAB 0x13000ULL
#define BUF 0x20000ULL
#define ALLF ((1ULL << VIRTIO_F_RING_EVENT_IDX) | (1ULL << VIRTIO_F_RING_INDIRECT_DESC))

static struct guest_mem gm;
static struct virtqueue vq;
static struct iovec iov[16];
static uint16_t avail_idx;

static void put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t d[16];
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	CHECK_EQ(guest_mem_write(&gm, table + 16 * i, d, 16), 0);
}

static void publish(uint16_t head)
{
	guest_mem_write(&gm, AVAIL + 4 + 2 * (avail_idx % QS), &head, 2);
	avail_idx++;
	guest_mem_write(&gm, AVAIL + 2, &avail_idx, 2);
}

static void fresh(uint64_t features)
{
	guest_mem_fill(&gm, DESC, 0, 0x10000);
	avail_idx = 0;
	CHECK_EQ(vq_init(&vq, &gm, QS, DESC, AVAIL, USED, features), 0);
}

static int pop(struct vq_chain *c)
{
	*c = (struct vq_chain){ .cap = 16, .iov = iov };
	return vq_pop(&vq, c);
}

static void expect_error(enum vq_error e)
{
	struct vq_chain c;
	CHECK_EQ(pop(&c), -EINVAL);
	CHECK_EQ(vq.error, e);
	CHECK(!vq.ready);
	CHECK_EQ(pop(&c), -EINVAL); /* stays broken */
}

static uint16_t used_idx(void)
{
	uint16_t v;
	guest_mem_read(&gm, USED + 2, &v, 2);
	return v;
}

int main(void)
{
	CHECK_EQ(guest_mem_create(&gm, 8 << 20), 0);
	struct vq_chain c;

	/* Ring checks at set-up. */
	CHECK_EQ(vq_init(&vq, &gm, 6, DESC, AVAIL, USED, 0), -EINVAL); /* not a power of 2 */
	CHECK_EQ(vq_init(&vq, &gm, 0, DESC, AVAIL, USED, 0), -EINVAL);
	CHECK_EQ(vq_init(&vq, &gm, QS, DESC + 8, AVAIL, USED, 0), -EINVAL); /* misaligned */
	CHECK_EQ(vq_init(&vq, &gm, QS, DESC, AVAIL + 1, USED, 0), -EINVAL);
	CHECK_EQ(vq_init(&vq, &gm, QS, DESC, AVAIL, USED + 2, 0), -EINVAL);
	CHECK_EQ(vq_init(&vq, &gm, QS, 0xF0000000ULL, AVAIL, USED, 0), -EINVAL); /* not RAM */
	CHECK_EQ(vq_init(&vq, &gm, QS, DESC, AVAIL, (8 << 20) - 8, 0), -EINVAL); /* runs off RAM */
	CHECK_EQ(vq.error, VQ_ERR_RING);
	CHECK_EQ(pop(&c), -EINVAL);

	/* A direct buffer, a chain, zero-length segments, an indirect table. */
	fresh(ALLF);
	CHECK_EQ(pop(&c), 0);
	put_desc(DESC, 0, BUF, 100, VIRTQ_DESC_F_WRITE, 0);
	publish(0);
	CHECK_EQ(pop(&c), 1);
	CHECK_EQ(c.head, 0);
	CHECK_EQ(c.nout, 0);
	CHECK_EQ(c.nin, 1);
	CHECK_EQ(c.in_len, 100);
	CHECK(c.iov[0].iov_base == guest_mem_ptr(&gm, BUF, 100));
	CHECK_EQ(vq_chain_write(&c, 98, "xyz", 3), 2);
	vq_push(&vq, c.head, 100);
	CHECK_EQ(used_idx(), 1);

	put_desc(DESC, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(DESC, 2, BUF + 16, 0, VIRTQ_DESC_F_NEXT, 3);
	put_desc(DESC, 3, BUF + 32, 8, VIRTQ_DESC_F_NEXT, 4);
	put_desc(DESC, 4, BUF + 64, 64, VIRTQ_DESC_F_WRITE, 0);
	publish(1);
	guest_mem_write(&gm, BUF, "0123456789abcdefXXXXXXXXXXXXXXXXghijklmn", 40);
	CHECK_EQ(pop(&c), 1);
	CHECK_EQ(c.head, 1);
	CHECK_EQ(c.nout, 2);
	CHECK_EQ(c.nin, 1);
	CHECK_EQ(c.out_len, 24);
	char out[32] = { 0 };
	CHECK_EQ(vq_chain_read(&c, 12, out, 8), 8);
	CHECK(!memcmp(out, "cdefghij", 8));
	CHECK_EQ(vq_chain_read(&c, 20, out, 100), 4);

	put_desc(DESC, 5, ITAB, 48, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(ITAB, 0, BUF, 10, VIRTQ_DESC_F_NEXT, 2);
	put_desc(ITAB, 2, BUF + 100, 20, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(ITAB, 1, BUF + 200, 30, VIRTQ_DESC_F_WRITE, 0);
	publish(5);
	CHECK_EQ(pop(&c), 1);
	CHECK_EQ(c.head, 5);
	CHECK_EQ(c.nout, 1);
	CHECK_EQ(c.nin, 2);
	CHECK_EQ(c.in_len, 50);
	/* unpop gives the same chain again */
	vq_unpop(&vq);
	CHECK_EQ(pop(&c), 1);
	CHECK_EQ(c.head, 5);
	CHECK_EQ(pop(&c), 0);

	/* Too many segments for the caller. */
	fresh(ALLF);
	for (unsigned i = 0; i < QS; i++)
		put_desc(DESC, i, BUF, 4, i + 1 < QS ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	publish(0);
	c = (struct vq_chain){ .cap = 4, .iov = iov };
	CHECK_EQ(vq_pop(&vq, &c), -EINVAL);
	CHECK_EQ(vq.error, VQ_ERR_TOO_LONG);
	/* ... while a queue-long chain is fine. */
	fresh(ALLF);
	for (unsigned i = 0; i < QS; i++)
		put_desc(DESC, i, BUF, 4, i + 1 < QS ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	publish(0);
	CHECK_EQ(pop(&c), 1);
	CHECK_EQ(c.nout, QS);

	/* The malformed ones. */
	fresh(ALLF);
	put_desc(DESC, 0, BUF, 4, VIRTQ_DESC_F_NEXT, 0);
	publish(0);
	expect_error(VQ_ERR_LOOP);

	fresh(ALLF);
	put_desc(DESC, 0, BUF, 4, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC, 1, BUF, 4, VIRTQ_DESC_F_NEXT, 0);
	publish(0);
	expect_error(VQ_ERR_LOOP);

	fresh(ALLF);
	put_desc(DESC, 0, BUF, 4, VIRTQ_DESC_F_NEXT, QS);
	publish(0);
	expect_error(VQ_ERR_NEXT);

	fresh(ALLF);
	publish(QS);
	expect_error(VQ_ERR_HEAD);

	fresh(ALLF);
	avail_idx = QS + 1;
	guest_mem_write(&gm, AVAIL + 2, &avail_idx, 2);
	expect_error(VQ_ERR_AVAIL_IDX);

	fresh(ALLF);
	avail_idx = QS; /* exactly a full ring is fine */
	guest_mem_write(&gm, AVAIL + 2, &avail_idx, 2);
	put_desc(DESC, 0, BUF, 4, 0, 0);
	CHECK_EQ(pop(&c), 1);

	static const struct {
		uint64_t addr;
		uint32_t len;
	} bad_bufs[] = {
		{ 0xF0000000ULL, 16 },          /* MMIO hole */
		{ 0x200000000ULL, 16 },         /* above RAM */
		{ (8 << 20) - 8, 16 },          /* runs off the end of RAM */
		{ BUF, 0xFFFFFFF0u },           /* huge */
		{ 0xFFFFFFFFFFFFF000ULL, 0x2000 }, /* wraps */
	};
	for (size_t i = 0; i < sizeof(bad_bufs) / sizeof(bad_bufs[0]); i++) {
		fresh(ALLF);
		put_desc(DESC, 0, bad_bufs[i].addr, bad_bufs[i].len, VIRTQ_DESC_F_WRITE, 0);
		publish(0);
		expect_error(VQ_ERR_ADDR);
	}

	fresh(ALLF);
	put_desc(DESC, 0, BUF, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC, 1, BUF, 4, 0, 0);
	publish(0);
	expect_error(VQ_ERR_ORDER);

	fresh(1ULL << VIRTIO_F_RING_EVENT_IDX); /* no indirect */
	put_desc(DESC, 0, ITAB, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(ITAB, 0, BUF, 4, 0, 0);
	publish(0);
	expect_error(VQ_ERR_INDIRECT);

	static const struct {
		uint32_t len;
		uint16_t flags;
	} bad_ind[] = {
		{ 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT },
		{ 0, VIRTQ_DESC_F_INDIRECT },
		{ 24, VIRTQ_DESC_F_INDIRECT },
	};
	for (size_t i = 0; i < sizeof(bad_ind) / sizeof(bad_ind[0]); i++) {
		fresh(ALLF);
		put_desc(DESC, 0, ITAB, bad_ind[i].len, bad_ind[i].flags, 1);
		put_desc(ITAB, 0, BUF, 4, 0, 0);
		publish(0);
		expect_error(VQ_ERR_INDIRECT);
	}
	fresh(ALLF); /* nested */
	put_desc(DESC, 0, ITAB, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(ITAB, 0, ITAB + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(0);
	expect_error(VQ_ERR_INDIRECT);
	fresh(ALLF); /* table outside RAM */
	put_desc(DESC, 0, 0xF0000000ULL, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(0);
	expect_error(VQ_ERR_ADDR);
	fresh(ALLF); /* loop inside the table */
	put_desc(DESC, 0, ITAB, 32, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(ITAB, 0, BUF, 4, VIRTQ_DESC_F_NEXT, 1);
	put_desc(ITAB, 1, BUF, 4, VIRTQ_DESC_F_NEXT, 0);
	publish(0);
	expect_error(VQ_ERR_LOOP);
	fresh(ALLF); /* next past the table */
	put_desc(DESC, 0, ITAB, 32, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(ITAB, 0, BUF, 4, VIRTQ_DESC_F_NEXT, 2);
	publish(0);
	expect_error(VQ_ERR_NEXT);
	fresh(ALLF); /* a table bigger than the queue is a chain longer than the queue */
	put_desc(DESC, 0, ITAB, 16 * (QS + 1), VIRTQ_DESC_F_INDIRECT, 0);
	for (unsigned i = 0; i <= QS; i++)
		put_desc(ITAB, i, BUF, 4, i < QS ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	publish(0);
	expect_error(VQ_ERR_LOOP);

	/* Event-idx: the driver's used_event decides; an empty pop sets
	 * avail_event. */
	fresh(ALLF);
	CHECK_EQ(pop(&c), 0);
	uint16_t avail_event;
	guest_mem_read(&gm, USED + 4 + 8 * QS, &avail_event, 2);
	CHECK_EQ(avail_event, 0);
	put_desc(DESC, 0, BUF, 4, VIRTQ_DESC_F_WRITE, 0);
	publish(0);
	publish(0);
	publish(0);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(pop(&c), 1);
		vq_push(&vq, c.head, 4);
	}
	CHECK_EQ(pop(&c), 0);
	guest_mem_read(&gm, USED + 4 + 8 * QS, &avail_event, 2);
	CHECK_EQ(avail_event, 3);
	CHECK(vq_should_notify(&vq)); /* first time */
	uint16_t used_event = 4;      /* "interrupt me when used passes 4" */
	guest_mem_write(&gm, AVAIL + 4 + 2 * QS, &used_event, 2);
	publish(0);
	CHECK_EQ(pop(&c), 1);
	vq_push(&vq, c.head, 4); /* used idx 4 */
	CHECK(!vq_should_notify(&vq));
	publish(0);
	CHECK_EQ(pop(&c), 1);
	vq_push(&vq, c.head, 4); /* used idx 5: crosses 4 */
	CHECK(vq_should_notify(&vq));
	/* Kick suppression keeps avail_event where it was. */
	vq_enable_kicks(&vq, false);
	CHECK_EQ(pop(&c), 0);
	guest_mem_read(&gm, USED + 4 + 8 * QS, &avail_event, 2);
	CHECK_EQ(avail_event, 3); /* not moved to 5 */
	publish(0);
	CHECK(vq_enable_kicks(&vq, true)); /* one arrived meanwhile */

	/* Without event-idx: NO_INTERRUPT and NO_NOTIFY flags. */
	fresh(0);
	put_desc(DESC, 0, BUF, 4, VIRTQ_DESC_F_WRITE, 0);
	publish(0);
	CHECK_EQ(pop(&c), 1);
	vq_push(&vq, c.head, 4);
	CHECK(vq_should_notify(&vq));
	uint16_t flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	guest_mem_write(&gm, AVAIL, &flags, 2);
	CHECK(!vq_should_notify(&vq));
	vq_enable_kicks(&vq, false);
	guest_mem_read(&gm, USED, &flags, 2);
	CHECK_EQ(flags, VIRTQ_USED_F_NO_NOTIFY);
	CHECK(!vq_enable_kicks(&vq, true));
	guest_mem_read(&gm, USED, &flags, 2);
	CHECK_EQ(flags, 0);

	guest_mem_destroy(&gm);
	return UNIT_RESULT();
}
