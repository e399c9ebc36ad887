/* virtio-net through the fake platform, on a "tap" that is one end of a
 * SOCK_SEQPACKET socketpair (frames keep their boundaries; the test holds
 * the other end): transmit and receive paths, a bad receive buffer among
 * good ones (defect 7), and start() retried after failures (defect 4). */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/tap.h"
#include "unit.h"
#include "virtio/virtio_net.h"
#include "virtio_drv.h"

#define SLOT 3
#define RXQ 0
#define TXQ 1
#define F_MRG_RXBUF (1u << 15)

static int peer;

static void setup(struct fake_platform *f, struct vdrv *d)
{
	CHECK_EQ(fake_platform_init(f, 16 << 20), 0);
	CHECK_EQ(vdrv_create(d, f, NULL, NULL, SLOT), 0);
	int sp[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	fcntl(sp[0], F_SETFL, O_NONBLOCK);
	peer = sp[1];
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

int main(void)
{
	test_paths();
	test_rx_bad_buffer();
	test_start_retry();
	return UNIT_RESULT();
}
