/* virtio-9p (src/virtio/p9.c) through the PCI transport on the fake
 * platform, driven as a guest's driver would: bhyve's conf grammar and its
 * errors; the mount tag in the configuration space and the MOUNT_TAG
 * feature; 9P requests through the queue, served by the device thread; a
 * reset forgets the session; a request over msize gets EMSGSIZE; a flood
 * of requests leaves the heap where it was; start() retried after a
 * failure leaks nothing. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/p9_proto.h"
#include "virtio/emulations.h"
#include "virtio_drv.h"

#define SLOT 5
#define QSIZE 64
#define BUF 8192

static char dir[64];

static int parse(const char *conf, char *err)
{
	void *s = NULL;
	int r = pci_emul_virtio_9p.parse(conf, &s, err, 300);
	if (!r)
		pci_emul_virtio_9p.free_settings(s);
	return r;
}

static void test_parse(void)
{
	char err[300];
	CHECK_EQ(parse("src=/usr/src,ro", err), 0);
	CHECK_EQ(parse("src=/usr/src,ro=false", err), 0);
	CHECK_EQ(parse("ro", err), -EINVAL);
	CHECK(strstr(err, "needs a share"));
	CHECK_EQ(parse(NULL, err), -EINVAL);
	CHECK_EQ(parse("a=/a,b=/b", err), -EINVAL);
	CHECK(strstr(err, "more than one share name"));
	CHECK_EQ(parse("a=/a,rw", err), -EINVAL);
	CHECK(strstr(err, "unknown option 'rw'"));
	CHECK_EQ(parse("a=", err), -EINVAL);
	CHECK_EQ(parse("a=/a,ro=maybe", err), -EINVAL);
	char big[400];
	memset(big, 't', 256);
	strcpy(big + 256, "=/tmp");
	CHECK_EQ(parse(big, err), -EINVAL);
	/* a path that is not a directory fails at creation, with its name */
	struct fake_platform f;
	struct pci_bus *bus;
	void *st = NULL;
	CHECK_EQ(fake_platform_init(&f, 4 << 20), 0);
	CHECK_EQ(pci_bus_create(&f.p, &bus), 0);
	CHECK_EQ(pci_emul_virtio_9p.parse("x=/nonexistent-khyve", &st, err, sizeof(err)), 0);
	CHECK(pci_emul_virtio_9p.create(bus, SLOT, 0, st, &f.p, err, sizeof(err)) < 0);
	CHECK(strstr(err, "/nonexistent-khyve: No such file"));
	pci_emul_virtio_9p.free_settings(st);
	pci_bus_destroy(bus);
	fake_platform_fini(&f);
}

struct io {
	uint64_t out, in;
};

/* Send the message in m (n bytes) and wait for its reply in in. */
static uint32_t send(struct vdrv *d, struct io *io, const uint8_t *m, size_t n, uint32_t inlen)
{
	guest_mem_write(&d->f->mem, io->out, m, n);
	struct vdrv_seg s[2] = { { io->out, (uint32_t)n, false }, { io->in, inlen, true } };
	vdrv_add(d, 0, s, 2);
	vdrv_kick(d, 0);
	CHECK(vdrv_wait_used(d, 0, 1));
	uint16_t head;
	uint32_t len = 0;
	CHECK(vdrv_used(d, 0, &head, &len));
	return len;
}

static size_t msg(uint8_t *b, uint8_t type, uint16_t tag, const void *body, size_t blen)
{
	size_t n = 7 + blen;
	b[0] = (uint8_t)n;
	b[1] = (uint8_t)(n >> 8);
	b[2] = b[3] = 0;
	b[4] = type;
	b[5] = (uint8_t)tag;
	b[6] = (uint8_t)(tag >> 8);
	memcpy(b + 7, body, blen);
	return n;
}

static const uint8_t *reply(struct vdrv *d, struct io *io) { return vdrv_host(d, io->in, BUF); }

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void session(struct vdrv *d, struct io *io)
{
	uint8_t m[64];
	static const uint8_t ver[] = { 0, 0x20, 0, 0, 8, 0, '9', 'P', '2', '0', '0', '0', '.', 'L' };
	static const uint8_t att[] = { 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0 };
	CHECK_EQ(send(d, io, m, msg(m, P9_TVERSION, P9_NOTAG, ver, sizeof(ver)), BUF), 21);
	CHECK_EQ(reply(d, io)[4], P9_RVERSION);
	CHECK_EQ(le32(reply(d, io) + 7), 8192); /* the driver's msize, under the cap */
	CHECK_EQ(send(d, io, m, msg(m, P9_TATTACH, 1, att, sizeof(att)), BUF), 20);
	CHECK_EQ(reply(d, io)[4], P9_RATTACH);
}

static void test_device(void)
{
	struct fake_platform f;
	struct vdrv d;
	char conf[128];
	snprintf(conf, sizeof(conf), "hostshare=%s", dir);
	CHECK_EQ(fake_platform_init(&f, 16 << 20), 0);
	CHECK_EQ(vdrv_create(&d, &f, &pci_emul_virtio_9p, conf, SLOT), 0);
	CHECK_EQ(vdrv_finish(&d), 0);
	/* PCI id 1af4:1049, the tag in the device configuration */
	CHECK_EQ(pci_cfg_read(d.bus, SLOT, 0, 0, 4), 0x10491af4);
	vdrv_wr(&d, 0x00, 4, 0);
	CHECK(vdrv_rd(&d, 0x04, 4) & 1); /* VIRTIO_9P_MOUNT_TAG */
	CHECK_EQ(vdrv_rd(&d, 0x2000, 2), 9);
	char tag[10] = { 0 };
	for (int i = 0; i < 9; i++)
		tag[i] = (char)vdrv_rd(&d, 0x2002 + (unsigned)i, 1);
	CHECK(!strcmp(tag, "hostshare"));

	/* start() retried after failures (no descriptor for its eventfd)
	 * leaks nothing, and it works in the end */
	CHECK(vdrv_heap_growth_of_failed_starts(&d, 1, QSIZE, 10) < 64 * 1024);
	CHECK_EQ(vdrv_init(&d, 1, 1, QSIZE), 0x0f);
	struct io io = { vdrv_alloc(&d, 2 * BUF, 16), vdrv_alloc(&d, BUF, 16) };
	session(&d, &io);
	static uint8_t m[2 * BUF];
	/* walk to hello.txt, open, read */
	static const uint8_t walk[] = { 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 9, 0, 'h', 'e', 'l', 'l', 'o',
					'.', 't', 'x', 't' };
	CHECK_EQ(send(&d, &io, m, msg(m, P9_TWALK, 2, walk, sizeof(walk)), BUF), 22);
	CHECK_EQ(reply(&d, &io)[4], P9_RWALK);
	static const uint8_t open[] = { 1, 0, 0, 0, 0, 0, 0, 0 };
	CHECK_EQ(send(&d, &io, m, msg(m, P9_TLOPEN, 3, open, sizeof(open)), BUF), 24);
	static const uint8_t rd[] = { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0 };
	CHECK_EQ(send(&d, &io, m, msg(m, P9_TREAD, 4, rd, sizeof(rd)), BUF), 11 + 6);
	CHECK(!memcmp(reply(&d, &io) + 11, "hello\n", 6));
	/* the reply fits the room the driver gave: 12 bytes, one of data */
	CHECK_EQ(send(&d, &io, m, msg(m, P9_TREAD, 4, rd, sizeof(rd)), 12), 12);
	/* a request longer than msize: EMSGSIZE, with its tag */
	memset(m, 0, sizeof(m));
	msg(m, P9_TCLUNK, 5, "\1\0\0\0", 4);
	CHECK_EQ(send(&d, &io, m, BUF + 100, BUF), 11);
	CHECK(reply(&d, &io)[4] == P9_RLERROR && le32(reply(&d, &io) + 7) == EMSGSIZE &&
	      reply(&d, &io)[5] == 5);

	/* a flood: a full ring of requests (two descriptors each), again and
	 * again; the heap stays */
	size_t before = unit_heap_bytes();
	for (int round = 0; round < 20; round++) {
		size_t n = msg(m, P9_TWALK, 6, walk, sizeof(walk));
		guest_mem_write(&f.mem, io.out, m, n);
		for (unsigned i = 0; i < QSIZE / 2; i++) {
			struct vdrv_seg s[2] = { { io.out, (uint32_t)n, false }, { io.in, 64, true } };
			vdrv_add(&d, 0, s, 2);
		}
		vdrv_kick(&d, 0);
		CHECK(vdrv_wait_used(&d, 0, QSIZE / 2));
		uint16_t head;
		uint32_t len;
		while (vdrv_used(&d, 0, &head, &len))
			;
	}
	size_t after = unit_heap_bytes();
	CHECK(after < before + 64 * 1024);

	/* a reset forgets the session: fid 0 is gone afterwards */
	CHECK_EQ(vdrv_init(&d, 1, 1, QSIZE), 0x0f);
	CHECK_EQ(send(&d, &io, m, msg(m, P9_TWALK, 7, walk, sizeof(walk)), BUF), 11);
	CHECK(reply(&d, &io)[4] == P9_RLERROR && le32(reply(&d, &io) + 7) == EBADF);
	session(&d, &io);
	CHECK_EQ(send(&d, &io, m, msg(m, P9_TWALK, 8, walk, sizeof(walk)), BUF), 22);
	vdrv_destroy(&d);
	fake_platform_fini(&f);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/khyve-test-v9p-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	char p[128];
	snprintf(p, sizeof(p), "%s/hello.txt", dir);
	FILE *f = fopen(p, "w");
	fputs("hello\n", f);
	fclose(f);
	test_parse();
	test_device();
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return UNIT_RESULT();
}
