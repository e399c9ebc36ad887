/* virtio-net through the fake platform, on a "tap" that is one end of a
 * SOCK_SEQPACKET socketpair (frames keep their boundaries; the test holds
 * the other end): transmit and receive paths, a bad receive buffer among
 * good ones (defect 7), and start() retried after failures (defect 4). */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/tap.h"
#include "unit.h"
#include "virtio/vdev_work.h"
#include "virtio/virtio_net.h"
#include "virtio_drv.h"

#define SLOT 3
#define RXQ 0
#define TXQ 1
#define CTRLQ 2
#define F_MRG_RXBUF (1u << 15)
#define F_STATUS (1u << 16)
#define F_CTRL_VQ (1u << 17)
#define F_CTRL_RX (1u << 18)
#define F_GUEST_ANNOUNCE (1u << 21)
#define F_CTRL_MAC_ADDR (1u << 23)
#define F_CTRL (F_MRG_RXBUF | F_STATUS | F_CTRL_VQ | F_CTRL_RX | F_GUEST_ANNOUNCE | F_CTRL_MAC_ADDR)
#define CFG_STATUS (0x2000 + 6)
#define CFG_GENERATION 0x15

static int peer, tapfd;

static void setup(struct fake_platform *f, struct vdrv *d)
{
	CHECK_EQ(fake_platform_init(f, 16 << 20), 0);
	CHECK_EQ(vdrv_create(d, f, NULL, NULL, SLOT), 0);
	int sp[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	fcntl(sp[0], F_SETFL, O_NONBLOCK);
	peer = sp[1];
	tapfd = sp[0];
	struct tap *t = calloc(1, sizeof(*t));
	t->fd = sp[0];
	snprintf(t->name, sizeof(t->name), "fake0");
	t->vnet_hdr = true;
	char err[200];
	struct virtio_dev *v;
	CHECK_EQ(virtio_net_create_on_tap(d->bus, SLOT, 0, &f->p, t, &v, err, sizeof(err)), 0);
	CHECK_EQ(vdrv_finish(d), 0);
}

static void teardown(struct fake_platform *f, struct vdrv *d)
{
	vdrv_destroy(d);
	fake_platform_fini(f);
	close(peer);
}

static void test_paths(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK_EQ(vdrv_init(&d, 0, 2, 256), 0x0f);

	/* Transmit: header and frame reach the tap as they are. */
	uint8_t frame[72];
	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i < 12 ? 0 : i);
	uint64_t out = vdrv_alloc(&d, sizeof(frame), 16);
	guest_mem_write(&f.mem, out, frame, sizeof(frame));
	uint16_t h = vdrv_add(&d, TXQ, &(struct vdrv_seg){ out, sizeof(frame), false }, 1);
	vdrv_kick(&d, TXQ);
	CHECK(vdrv_wait_used(&d, TXQ, 1));
	uint16_t head = 0xffff;
	uint32_t len = 99;
	CHECK(vdrv_used(&d, TXQ, &head, &len));
	CHECK_EQ(head, h);
	CHECK_EQ(len, 0);
	uint8_t got[4096];
	CHECK_EQ(recv(peer, got, sizeof(got), 0), (ssize_t)sizeof(frame));
	CHECK(!memcmp(got, frame, sizeof(frame)));

	/* Receive: a frame into a buffer, num_buffers 1. */
	uint64_t in = vdrv_alloc(&d, 2048, 16);
	h = vdrv_add(&d, RXQ, &(struct vdrv_seg){ in, 2048, true }, 1);
	vdrv_kick(&d, RXQ);
	uint8_t rx[112];
	memset(rx, 0, 12);
	for (unsigned i = 12; i < sizeof(rx); i++)
		rx[i] = (uint8_t)(0x80 ^ i);
	CHECK_EQ(send(peer, rx, sizeof(rx), 0), (ssize_t)sizeof(rx));
	CHECK(vdrv_wait_used(&d, RXQ, 1));
	CHECK(vdrv_used(&d, RXQ, &head, &len));
	CHECK_EQ(head, h);
	CHECK_EQ(len, sizeof(rx));
	guest_mem_read(&f.mem, in, got, sizeof(rx));
	CHECK_EQ(got[10], 1); /* num_buffers */
	CHECK(!memcmp(got + 12, rx + 12, sizeof(rx) - 12));
	teardown(&f, &d);
}

/* Defect 7: with mergeable buffers, a frame that needs two buffers meets
 * a good one and then a device-readable one. The device must not rewind
 * over a buffer it already returned: the used ring never shows a head
 * twice. The queue needs a reset (NEEDS_RESET). */
static void test_rx_bad_buffer(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK_EQ(vdrv_init(&d, F_MRG_RXBUF, 2, 256), 0x0f);
	uint64_t a = vdrv_alloc(&d, 2048, 16), b = vdrv_alloc(&d, 2048, 16);
	uint64_t c = vdrv_alloc(&d, 2048, 16), e = vdrv_alloc(&d, 2048, 16);
	vdrv_add(&d, RXQ, &(struct vdrv_seg){ a, 2048, true }, 1);
	vdrv_add(&d, RXQ, &(struct vdrv_seg){ b, 2048, false }, 1); /* device-readable */
	vdrv_kick(&d, RXQ);
	static uint8_t frame[3000];
	CHECK_EQ(send(peer, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
	/* Until the device has looked at them. */
	for (int i = 0; i < 20000; i++) {
		if ((vdrv_status(&d) & VIRTIO_STATUS_NEEDS_RESET) || vdrv_used_idx(&d, RXQ))
			break;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	if (!(vdrv_status(&d) & VIRTIO_STATUS_NEEDS_RESET)) {
		/* A device that went on: more buffers, and what it returns. */
		vdrv_add(&d, RXQ, &(struct vdrv_seg){ c, 2048, true }, 1);
		vdrv_add(&d, RXQ, &(struct vdrv_seg){ e, 2048, true }, 1);
		vdrv_kick(&d, RXQ);
		vdrv_wait_used(&d, RXQ, 3);
	}
	CHECK(vdrv_status(&d) & VIRTIO_STATUS_NEEDS_RESET);
	uint16_t heads[16];
	unsigned n = 0;
	uint32_t len;
	while (n < 16 && vdrv_used(&d, RXQ, &heads[n], &len))
		n++;
	for (unsigned i = 0; i < n; i++)
		for (unsigned k = i + 1; k < n; k++)
			CHECK(heads[i] != heads[k]);
	/* A reset brings it back. */
	CHECK_EQ(vdrv_init(&d, F_MRG_RXBUF, 2, 256), 0x0f);
	uint16_t h = vdrv_add(&d, RXQ, &(struct vdrv_seg){ a, 2048, true }, 1);
	h = vdrv_add(&d, RXQ, &(struct vdrv_seg){ c, 2048, true }, 1);
	(void)h;
	vdrv_kick(&d, RXQ);
	CHECK_EQ(send(peer, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
	CHECK(vdrv_wait_used(&d, RXQ, 2));
	teardown(&f, &d);
}

/* Defect 4: start() failing again and again (no descriptors left) and
 * then succeeding leaks nothing. */
static void test_start_retry(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK(vdrv_heap_growth_of_failed_starts(&d, 2, 256, 10) < 16 * 1024);
	CHECK_EQ(vdrv_init(&d, 0, 2, 256), 0x0f);
	uint8_t frame[60] = { 0 };
	uint64_t out = vdrv_alloc(&d, sizeof(frame), 16);
	guest_mem_write(&f.mem, out, frame, sizeof(frame));
	vdrv_add(&d, TXQ, &(struct vdrv_seg){ out, sizeof(frame), false }, 1);
	vdrv_kick(&d, TXQ);
	CHECK(vdrv_wait_used(&d, TXQ, 1));
	teardown(&f, &d);
}

/* One control request: out = class, command, data; in = the ack byte
 * (in_len 0: no writable part at all). Returns the ack, or 0xee when the
 * device wrote none; *used_len gets what it reported. With rekick, it is
 * kicked as the device's own re-kick (the queue's kick eventfd, read by a
 * pair's thread) instead of by the driver's notify write, which the
 * device serves in the writer's exit. */
static uint8_t ctrl_kicked(struct vdrv *d, struct virtio_dev *rekick, uint8_t cls, uint8_t cmd,
			   const void *data, size_t len, uint32_t in_len, uint32_t *used_len)
{
	uint64_t out = vdrv_alloc(d, 2 + len, 16), in = vdrv_alloc(d, 8, 16);
	uint8_t hdr[2] = { cls, cmd }, ack = 0xee;
	guest_mem_write(&d->f->mem, out, hdr, 2);
	if (len)
		guest_mem_write(&d->f->mem, out + 2, data, len);
	guest_mem_write(&d->f->mem, in, &ack, 1);
	struct vdrv_seg seg[2] = { { out, (uint32_t)(2 + len), false }, { in, in_len, true } };
	vdrv_add(d, CTRLQ, seg, in_len ? 2 : 1);
	if (rekick)
		vdev_rekick(rekick, CTRLQ);
	else
		vdrv_kick(d, CTRLQ);
	CHECK(vdrv_wait_used(d, CTRLQ, 1));
	uint16_t head;
	uint32_t ulen = 0;
	CHECK(vdrv_used(d, CTRLQ, &head, &ulen));
	if (used_len)
		*used_len = ulen;
	guest_mem_read(&d->f->mem, in + (in_len ? in_len - 1 : 0), &ack, 1);
	return ack;
}

static uint8_t ctrl(struct vdrv *d, uint8_t cls, uint8_t cmd, const void *data, size_t len,
		    uint32_t in_len, uint32_t *used_len)
{
	return ctrl_kicked(d, NULL, cls, cmd, data, len, in_len, used_len);
}

/* A frame to dst from the "tap" side, with its virtio-net header. */
static void send_to(const uint8_t dst[6], uint8_t tag)
{
	uint8_t frame[12 + 60] = { 0 };
	memcpy(frame + 12, dst, 6);
	frame[12 + 6] = 0x02;
	frame[12 + 14] = tag;
	CHECK_EQ(send(peer, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
}

/* Give one receive buffer and return the tag of the frame put in it. */
static uint8_t recv_tag(struct vdrv *d)
{
	uint64_t in = vdrv_alloc(d, 2048, 16);
	vdrv_add(d, RXQ, &(struct vdrv_seg){ in, 2048, true }, 1);
	vdrv_kick(d, RXQ);
	CHECK(vdrv_wait_used(d, RXQ, 1));
	uint16_t head;
	uint32_t len;
	CHECK(vdrv_used(d, RXQ, &head, &len));
	uint8_t tag = 0;
	guest_mem_read(&d->f->mem, in + 12 + 14, &tag, 1);
	return tag;
}

/* The control queue: receive modes and the MAC filter decide which frames
 * the guest gets (in order: a filtered frame would have come first). */
static void test_ctrl_filter(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK_EQ(vdrv_init(&d, F_CTRL, 3, 256), 0x0f);
	static const uint8_t self[6] = { 0x02, 0, 0, 0, 0, 1 }, other[6] = { 0x02, 9, 9, 9, 9, 9 },
			     extra[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 },
			     mcast[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 },
			     bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	/* Promiscuous until the driver says otherwise. */
	send_to(other, 1);
	CHECK_EQ(recv_tag(&d), 1);
	uint8_t off = 0, on = 1;
	CHECK_EQ(ctrl(&d, 0, 0, &off, 1, 1, NULL), 0); /* RX_PROMISC off */
	send_to(other, 2);
	send_to(mcast, 3);
	send_to(self, 4);
	CHECK_EQ(recv_tag(&d), 4);
	send_to(bcast, 5);
	CHECK_EQ(recv_tag(&d), 5);
	CHECK_EQ(ctrl(&d, 0, 1, &on, 1, 1, NULL), 0); /* RX_ALLMULTI on */
	send_to(mcast, 6);
	CHECK_EQ(recv_tag(&d), 6);
	/* MAC_TABLE_SET: one unicast entry, no multicast. */
	uint8_t table[4 + 6 + 4] = { 1, 0, 0, 0 };
	memcpy(table + 4, extra, 6);
	CHECK_EQ(ctrl(&d, 1, 0, table, sizeof(table), 1, NULL), 0);
	send_to(other, 7);
	send_to(extra, 8);
	CHECK_EQ(recv_tag(&d), 8);
	/* MAC_ADDR_SET: the device answers to the new address. */
	CHECK_EQ(ctrl(&d, 1, 1, other, 6, 1, NULL), 0);
	uint8_t cfgmac[6];
	for (int i = 0; i < 6; i++)
		cfgmac[i] = (uint8_t)vdrv_rd(&d, 0x2000 + (unsigned)i, 1);
	CHECK(!memcmp(cfgmac, other, 6));
	send_to(self, 9);
	send_to(other, 10);
	CHECK_EQ(recv_tag(&d), 10);
	/* A reset forgets it all: promiscuous again, the configured MAC. */
	CHECK_EQ(vdrv_init(&d, F_CTRL, 3, 256), 0x0f);
	CHECK_EQ(vdrv_rd(&d, 0x2005, 1), 1);
	send_to(other, 11);
	CHECK_EQ(recv_tag(&d), 11);
	teardown(&f, &d);
}

/* Hostile: garbage on the control queue fails that request and nothing
 * else; the queue and the device keep working. */
static void test_ctrl_garbage(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK_EQ(vdrv_init(&d, F_CTRL, 3, 256), 0x0f);
	uint8_t junk[64];
	for (unsigned i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(0xa5 ^ (i * 37));
	CHECK_EQ(ctrl(&d, 0x77, 0, junk, 4, 1, NULL), 1);  /* unknown class */
	CHECK_EQ(ctrl(&d, 0, 9, junk, 1, 1, NULL), 1);     /* unknown RX command */
	CHECK_EQ(ctrl(&d, 0, 0, junk, 2, 1, NULL), 1);     /* RX with 2 data bytes */
	CHECK_EQ(ctrl(&d, 0, 0, NULL, 0, 1, NULL), 1);     /* RX with none */
	CHECK_EQ(ctrl(&d, 1, 1, junk, 5, 1, NULL), 1);     /* short MAC address */
	CHECK_EQ(ctrl(&d, 3, 0, junk, 1, 1, NULL), 1);     /* ANNOUNCE_ACK with data */
	uint8_t huge[4 + 4] = { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
	CHECK_EQ(ctrl(&d, 1, 0, huge, sizeof(huge), 1, NULL), 1); /* 4G entries */
	uint8_t trail[4 + 4 + 3] = { 0 };
	CHECK_EQ(ctrl(&d, 1, 0, trail, sizeof(trail), 1, NULL), 1); /* bytes left over */
	uint8_t many[4 + 100 * 6 + 4] = { 100 };
	CHECK_EQ(ctrl(&d, 1, 0, many, sizeof(many), 1, NULL), 0); /* too many: accept all */
	uint32_t used = 99;
	CHECK_EQ(ctrl(&d, 0, 0, junk, 1, 0, &used), 0xee); /* nowhere for the ack */
	CHECK_EQ(used, 0);
	/* A multi-byte writable part: the ack is its last byte. */
	uint8_t off = 0;
	CHECK_EQ(ctrl(&d, 0, 0, &off, 1, 8, NULL), 0);
	CHECK(!(vdrv_status(&d) & VIRTIO_STATUS_NEEDS_RESET));
	/* And data still flows. */
	send_to((const uint8_t[6]){ 0x02, 0, 0, 0, 0, 1 }, 42);
	CHECK_EQ(recv_tag(&d), 42);
	teardown(&f, &d);
}

/* Link status: a carrier change shows in the config space with a config
 * change (generation and ISR); back up asks for an announce, acked on the
 * control queue. While down, transmit drops and nothing is received. */
static void test_link(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK_EQ(vdrv_init(&d, F_CTRL, 3, 256), 0x0f);
	struct virtio_dev *v = NULL;
	/* The device is the bus's only virtio function at SLOT. */
	struct pci_dev *pd = pci_bus_get(d.bus, SLOT, 0);
	CHECK(pd != NULL);
	v = pd->opaque;
	CHECK_EQ(vdrv_rd(&d, CFG_STATUS, 1), 1);
	vdrv_rd(&d, 0x1000, 1); /* clear the ISR */
	uint8_t gen = (uint8_t)vdrv_rd(&d, CFG_GENERATION, 1);
	virtio_net_set_link(v, false);
	CHECK_EQ(vdrv_rd(&d, CFG_STATUS, 1), 0);
	CHECK(vdrv_rd(&d, CFG_GENERATION, 1) != gen);
	CHECK(vdrv_rd(&d, 0x1000, 1) & 2); /* config interrupt */
	/* Down: a transmitted frame is returned, not sent. */
	uint8_t frame[72] = { 0 };
	uint64_t out = vdrv_alloc(&d, sizeof(frame), 16);
	guest_mem_write(&f.mem, out, frame, sizeof(frame));
	vdrv_add(&d, TXQ, &(struct vdrv_seg){ out, sizeof(frame), false }, 1);
	vdrv_kick(&d, TXQ);
	CHECK(vdrv_wait_used(&d, TXQ, 1));
	uint16_t head;
	uint32_t len;
	CHECK(vdrv_used(&d, TXQ, &head, &len));
	uint8_t got[256];
	CHECK_EQ(recv(peer, got, sizeof(got), MSG_DONTWAIT), -1);
	/* Down: a frame from the tap is dropped (the next one after the
	 * link is back is the first the guest sees). */
	send_to((const uint8_t[6]){ 0x02, 0, 0, 0, 0, 1 }, 1);
	uint64_t in = vdrv_alloc(&d, 2048, 16);
	vdrv_add(&d, RXQ, &(struct vdrv_seg){ in, 2048, true }, 1);
	vdrv_kick(&d, RXQ);
	/* Until the device has read it (bounded against a hang). */
	for (int i = 0; i < 20000; i++) {
		int queued = 1;
		if (ioctl(tapfd, FIONREAD, &queued) == 0 && queued == 0)
			break;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	/* Read is not yet dropped: a control request re-kicked on the pair's
	 * thread, which serves it only after the receive round that read the
	 * frame, marks that round's end. (A guest's kick is served in its
	 * own exit, so the test thread's would order after nothing.) */
	uint8_t zero = 0;
	CHECK_EQ(ctrl_kicked(&d, v, 0, 1, &zero, 1, 1, NULL), 0);
	/* Up again: status LINK_UP | ANNOUNCE, another config change. */
	gen = (uint8_t)vdrv_rd(&d, CFG_GENERATION, 1);
	virtio_net_set_link(v, true);
	CHECK_EQ(vdrv_rd(&d, CFG_STATUS, 1), 3);
	CHECK(vdrv_rd(&d, CFG_GENERATION, 1) != gen);
	send_to((const uint8_t[6]){ 0x02, 0, 0, 0, 0, 1 }, 2);
	CHECK(vdrv_wait_used(&d, RXQ, 1));
	CHECK(vdrv_used(&d, RXQ, &head, &len));
	uint8_t tag = 0;
	guest_mem_read(&f.mem, in + 12 + 14, &tag, 1);
	CHECK_EQ(tag, 2);
	CHECK_EQ(ctrl(&d, 3, 0, NULL, 0, 1, NULL), 0); /* ANNOUNCE_ACK */
	CHECK_EQ(vdrv_rd(&d, CFG_STATUS, 1), 1);
	teardown(&f, &d);
}

int main(void)
{
	test_paths();
	test_ctrl_filter();
	test_ctrl_garbage();
	test_link();
	test_rx_bad_buffer();
	test_start_retry();
	return UNIT_RESULT();
}
