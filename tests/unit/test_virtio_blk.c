/* virtio-blk through the fake platform on a temporary image: the request
 * paths (write, read, flush, get-id, errors), size_max and the bounded
 * nocache bounce (defect 3), start() retried after failures (defect 4),
 * and a reset with reads in flight (defect 6). The device's I/O thread
 * and io_uring are real. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "virtio/emulations.h"
#include "virtio/vdev_work.h"
#include "virtio_drv.h"


#define SLOT 4
#define QSIZE 256
#define S_OK 0
#define S_IOERR 1

static char img[128], rundir[128];

static void make_image(uint64_t size, int byte)
{
	snprintf(img, sizeof(img), "/tmp/khyve-test-blk-%d.img", (int)getpid());
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, (off_t)size), 0);
	if (byte >= 0) {
		static uint8_t chunk[1 << 16];
		memset(chunk, byte, sizeof(chunk));
		for (uint64_t off = 0; off < size; off += sizeof(chunk))
			CHECK_EQ(pwrite(fd, chunk, sizeof(chunk), (off_t)off), (ssize_t)sizeof(chunk));
	}
	close(fd);
}

static void setup(struct fake_platform *f, struct vdrv *d, uint64_t ram, const char *opts)
{
	char conf[256];
	snprintf(conf, sizeof(conf), "%s%s", img, opts);
	CHECK_EQ(fake_platform_init(f, ram), 0);
	CHECK_EQ(vdrv_create(d, f, &pci_emul_virtio_blk, conf, SLOT), 0);
	CHECK_EQ(vdrv_finish(d), 0);
}

static void teardown(struct fake_platform *f, struct vdrv *d)
{
	vdrv_destroy(d);
	fake_platform_fini(f);
}

static struct virtio_dev *vdev_of(struct vdrv *d)
{
	return pci_bus_get(d->bus, d->slot, 0)->opaque;
}

struct req {
	uint64_t hdr, status;
	uint16_t head;
};

/* A request: header, data segments (n of them, each len bytes at gpa[i]),
 * status byte. Added, not kicked. */
static void add_req(struct vdrv *d, struct req *r, uint32_t type, uint64_t sector,
		    const uint64_t *gpa, uint32_t len, unsigned n)
{
	struct vdrv_seg s[130];
	r->hdr = vdrv_alloc(d, 16, 16);
	r->status = vdrv_alloc(d, 1, 1);
	uint32_t h[4] = { type, 0, (uint32_t)sector, (uint32_t)(sector >> 32) };
	guest_mem_write(&d->f->mem, r->hdr, h, 16);
	guest_mem_fill(&d->f->mem, r->status, 0xee, 1);
	s[0] = (struct vdrv_seg){ r->hdr, 16, false };
	for (unsigned i = 0; i < n; i++)
		s[1 + i] = (struct vdrv_seg){ gpa[i], len, type != 1 };
	s[1 + n] = (struct vdrv_seg){ r->status, 1, true };
	r->head = vdrv_add(d, 0, s, n + 2);
}

static uint8_t status_of(struct vdrv *d, const struct req *r)
{
	uint8_t st = 0;
	guest_mem_read(&d->f->mem, r->status, &st, 1);
	return st;
}

/* Run one request to completion; returns its status byte. */
static uint8_t run(struct vdrv *d, uint32_t type, uint64_t sector, const uint64_t *gpa,
		   uint32_t len, unsigned n)
{
	struct req r;
	add_req(d, &r, type, sector, gpa, len, n);
	vdrv_kick(d, 0);
	CHECK(vdrv_wait_used(d, 0, 1));
	uint16_t head = 0xffff;
	uint32_t ulen = 0;
	CHECK(vdrv_used(d, 0, &head, &ulen));
	CHECK_EQ(head, r.head);
	return status_of(d, &r);
}

static void test_paths(void)
{
	struct fake_platform f;
	struct vdrv d;
	make_image(1 << 20, 0);
	setup(&f, &d, 16 << 20, ",ser=UNITSERIAL");
	CHECK_EQ(vdrv_init(&d, 0, 1, QSIZE), 0x0f);
	uint64_t buf = vdrv_alloc(&d, 4096, 4096);
	uint8_t pat[4096], got[4096];
	for (unsigned i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 7 + 1);
	guest_mem_write(&f.mem, buf, pat, sizeof(pat));
	CHECK_EQ(run(&d, 1, 8, &buf, 4096, 1), S_OK);  /* write */
	guest_mem_fill(&f.mem, buf, 0, 4096);
	CHECK_EQ(run(&d, 0, 8, &buf, 4096, 1), S_OK);  /* read */
	guest_mem_read(&f.mem, buf, got, sizeof(got));
	CHECK(!memcmp(pat, got, sizeof(pat)));
	CHECK_EQ(run(&d, 4, 0, NULL, 0, 0), S_OK);     /* flush */
	CHECK_EQ(run(&d, 8, 0, &buf, 20, 1), S_OK);    /* get id */
	guest_mem_read(&f.mem, buf, got, 20);
	CHECK(!memcmp(got, "UNITSERIAL", 11));
	CHECK_EQ(run(&d, 0, 2048, &buf, 4096, 1), S_IOERR); /* past the end */
	CHECK_EQ(run(&d, 0, 0, &buf, 100, 1), S_IOERR);     /* not whole sectors */
	CHECK_EQ(run(&d, 99, 0, &buf, 512, 1), 2);           /* unsupported */
	/* The image has the data. */
	int fd = open(img, O_RDONLY);
	CHECK_EQ(pread(fd, got, sizeof(got), 8 * 512), (ssize_t)sizeof(got));
	close(fd);
	CHECK(!memcmp(pat, got, sizeof(pat)));
	teardown(&f, &d);
	unlink(img);
}

/* Defect 3: size_max is offered; a request over seg_max * size_max
 * fails; an unaligned nocache request of 126 segments over one buffer
 * moves through a bounded bounce buffer, not one as long as the request. */
static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void test_size_max_and_bounce(void)
{
	struct fake_platform f;
	struct vdrv d;
	make_image(64 << 20, -1); /* sparse */
	setup(&f, &d, 16 << 20, ",nocache");
	vdrv_wr(&d, 0x00, 4, 0);
	uint32_t feat = (uint32_t)vdrv_rd(&d, 0x04, 4);
	CHECK(feat & (1u << 1)); /* VIRTIO_BLK_F_SIZE_MAX */
	uint32_t size_max = (uint32_t)vdrv_rd(&d, 0x2000 + 8, 4);
	uint32_t seg_max = (uint32_t)vdrv_rd(&d, 0x2000 + 12, 4);
	CHECK(size_max >= 4096);
	CHECK(seg_max >= 1);
	if (!size_max) /* a device that offers none: what a driver might send */
		size_max = 256 << 10;
	CHECK_EQ(vdrv_init(&d, 1u << 1 | 1u << 2, 1, QSIZE), 0x0f);

	/* Unaligned (8 bytes into a page): the bounce path. Write, then read
	 * back into another unaligned buffer. */
	uint64_t a = vdrv_alloc(&d, size_max + 4096, 4096) + 8;
	uint64_t b = vdrv_alloc(&d, size_max + 4096, 4096) + 8;
	uint8_t *pa = vdrv_host(&d, a, size_max), *pb = vdrv_host(&d, b, size_max);
	for (uint32_t i = 0; i < size_max; i++)
		pa[i] = (uint8_t)(i ^ (i >> 9));
	CHECK_EQ(run(&d, 1, 1024, &a, size_max, 1), S_OK);
	CHECK_EQ(run(&d, 0, 1024, &b, size_max, 1), S_OK);
	CHECK(!memcmp(pa, pb, size_max));

	/* seg_max segments of size_max, all over one guest buffer. */
	uint64_t gpa[126] = { 0 };
	unsigned n = seg_max < 126 ? seg_max : 126;
	for (unsigned i = 0; i < n; i++)
		gpa[i] = b;
	long before = maxrss_kb();
	CHECK_EQ(run(&d, 0, 0, gpa, size_max, n), S_OK);
	long grew = maxrss_kb() - before;
	CHECK((uint64_t)grew * 1024 < (uint64_t)size_max * n / 4);
	/* One segment too many bytes: over the limit the device offered. */
	if (n == seg_max) {
		gpa[0] = a;
		CHECK_EQ(run(&d, 0, 0, gpa, size_max + 512, n), S_IOERR);
	}
	teardown(&f, &d);
	unlink(img);
}

/* Defect 4: start() failing again and again (no descriptors left) and
 * then succeeding leaks nothing. */
static void test_start_retry(void)
{
	struct fake_platform f;
	struct vdrv d;
	make_image(1 << 20, 0x5a);
	setup(&f, &d, 16 << 20, "");
	CHECK(vdrv_heap_growth_of_failed_starts(&d, 1, QSIZE, 10) < 64 * 1024);
	/* And it does start in the end. */
	CHECK_EQ(vdrv_init(&d, 0, 1, QSIZE), 0x0f);
	uint64_t buf = vdrv_alloc(&d, 512, 512);
	CHECK_EQ(run(&d, 0, 0, &buf, 512, 1), S_OK);
	CHECK_EQ(*(uint8_t *)vdrv_host(&d, buf, 1), 0x5a);
	teardown(&f, &d);
	unlink(img);
}

/* Defect 6: a reset while reads are in flight. Once the driver's status
 * write of 0 has returned, no read of before writes guest RAM. */
static void test_reset_inflight(void)
{
	struct fake_platform f;
	struct vdrv d;
	const unsigned nreq = 64, len = 128 << 10;
	make_image((uint64_t)nreq * len, 0xab);
	/* nocache: reads go to the disk and take a while; odd rounds use
	 * unaligned buffers (the bounce path), even ones the guest's own. */
	setup(&f, &d, 32 << 20, ",nocache");
	CHECK_EQ(vdrv_init(&d, 0, 1, QSIZE), 0x0f);
	uint64_t bufs = vdrv_alloc(&d, (uint64_t)nreq * len + 4096, 4096);
	for (int round = 0; round < 4; round++) {
		vdrv_init(&d, 0, 1, QSIZE);
		struct req r[64];
		for (unsigned i = 0; i < nreq; i++) {
			uint64_t g = bufs + (uint64_t)i * len + (round & 1 ? 8 : 0);
			add_req(&d, &r[i], 0, (uint64_t)i * (len / 512), &g, len, 1);
		}
		vdrv_kick(&d, 0);
		/* Wait until the device has taken the first request. */
		struct virtio_dev *v = vdev_of(&d);
		for (int i = 0; i < 2000000 && !__atomic_load_n(&v->q[0].vq.last_avail, __ATOMIC_RELAXED); i++)
			;
		vdrv_set_status(&d, 0);
		CHECK_EQ(vdrv_status(&d), 0);
		guest_mem_fill(&f.mem, bufs, 0, (uint64_t)nreq * len + 4096);
		/* Give a device that did not wait every chance to write. */
		nanosleep(&(struct timespec){ 0, 200 * 1000 * 1000 }, NULL);
		const uint8_t *p = vdrv_host(&d, bufs, (uint64_t)nreq * len + 4096);
		uint64_t dirty = 0;
		for (uint64_t i = 0; i < (uint64_t)nreq * len + 4096; i++)
			dirty += p[i] != 0;
		CHECK_EQ(dirty, 0);
	}
	/* The device works after it. */
	CHECK_EQ(vdrv_init(&d, 0, 1, QSIZE), 0x0f);
	CHECK_EQ(run(&d, 0, 0, &bufs, 512, 1), S_OK);
	CHECK_EQ(*(uint8_t *)vdrv_host(&d, bufs, 1), 0xab);
	teardown(&f, &d);
	unlink(img);
}

int main(void)
{
	snprintf(rundir, sizeof(rundir), "/tmp/khyve-test-blk-run-%d", (int)getpid());
	setenv("KHYVE_RUNDIR", rundir, 1);
	test_paths();
	test_size_max_and_bounce();
	test_start_retry();
	test_reset_inflight();
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", rundir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", rundir);
	return UNIT_RESULT();
}
