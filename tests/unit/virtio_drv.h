/* A minimal virtio 1.x driver for unit tests: it finds a virtio-pci
 * function on the fake platform's PCI bus, negotiates, sets up split
 * queues in guest RAM and adds and collects chains, all through the
 * buses exactly as a guest's driver would. It can also misbehave (wrong
 * order of status bits, bad buffers) because every step is separate. */
#pragma once
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fake_platform.h"
#include "pci/pci.h"
#include "pci/slots.h"
#include "unit.h"
#include "virtio/virtio_pci.h"

#define VDRV_MAX_Q 8

struct vdrv_q {
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx, used_seen, next_desc;
};

struct vdrv {
	struct fake_platform *f;
	struct pci_bus *bus;
	unsigned slot;
	uint64_t bar4;
	unsigned gsi;
	uint64_t brk; /* guest RAM handed out so far */
	const struct pci_emul *emul;
	void *settings;
	struct vdrv_q q[VDRV_MAX_Q];
};

/* Guest RAM for rings and buffers, from 1 MiB up. */
static inline uint64_t vdrv_alloc(struct vdrv *d, uint64_t len, uint64_t align)
{
	if (!d->brk)
		d->brk = 1 << 20;
	d->brk = (d->brk + align - 1) & ~(align - 1);
	uint64_t a = d->brk;
	d->brk += len;
	guest_mem_fill(&d->f->mem, a, 0, len);
	return a;
}

static inline void *vdrv_host(struct vdrv *d, uint64_t gpa, uint64_t len)
{
	return guest_mem_ptr(&d->f->mem, gpa, len);
}

/* Create emulation emul with conf at slot and finish the bus. */
static inline int vdrv_create(struct vdrv *d, struct fake_platform *f, const struct pci_emul *emul,
			      const char *conf, unsigned slot)
{
	memset(d, 0, sizeof(*d));
	d->f = f;
	d->slot = slot;
	char err[300];
	void *settings = NULL;
	int r = pci_bus_create(&f->p, &d->bus);
	if (r)
		return r;
	if (emul) {
		if ((r = emul->parse(conf, &settings, err, sizeof(err)))) {
			fprintf(stderr, "parse: %s\n", err);
			return r;
		}
		if ((r = emul->create(d->bus, slot, 0, settings, &f->p, err, sizeof(err)))) {
			fprintf(stderr, "create: %s\n", err);
			return r;
		}
	}
	/* settings stay alive until vdrv_destroy: devices point into them */
	d->emul = emul;
	d->settings = settings;
	return 0;
}

/* The bus with its devices, then the settings. */
static inline void vdrv_destroy(struct vdrv *d)
{
	pci_bus_destroy(d->bus);
	if (d->emul && d->emul->free_settings)
		d->emul->free_settings(d->settings);
}

static inline int vdrv_finish(struct vdrv *d)
{
	struct pci_intx_route routes[8];
	char err[300];
	int n = pci_bus_finish(d->bus, routes, 8, err, sizeof(err));
	if (n < 0) {
		fprintf(stderr, "finish: %s\n", err);
		return n;
	}
	for (int i = 0; i < n; i++)
		if (routes[i].dev == d->slot)
			d->gsi = routes[i].gsi;
	uint64_t lo = pci_cfg_read(d->bus, d->slot, 0, 0x20, 4) & ~0xFULL;
	uint64_t hi = pci_cfg_read(d->bus, d->slot, 0, 0x24, 4);
	d->bar4 = hi << 32 | lo;
	return d->bar4 ? 0 : -ENODEV;
}

static inline uint64_t vdrv_rd(struct vdrv *d, unsigned off, unsigned size)
{
	return fake_mmio_read(d->f, d->bar4 + off, size);
}

static inline void vdrv_wr(struct vdrv *d, unsigned off, unsigned size, uint64_t v)
{
	fake_mmio_write(d->f, d->bar4 + off, size, v);
}

static inline uint8_t vdrv_status(struct vdrv *d) { return (uint8_t)vdrv_rd(d, 0x14, 1); }
static inline void vdrv_set_status(struct vdrv *d, uint8_t s) { vdrv_wr(d, 0x14, 1, s); }

/* Offer features (the low 32 bits as given, VERSION_1 in the high half). */
static inline void vdrv_features(struct vdrv *d, uint32_t lo)
{
	vdrv_wr(d, 0x08, 4, 0);
	vdrv_wr(d, 0x0c, 4, lo);
	vdrv_wr(d, 0x08, 4, 1);
	vdrv_wr(d, 0x0c, 4, 1); /* VIRTIO_F_VERSION_1 */
}

/* Set queue q up with size entries in fresh guest RAM and enable it. */
static inline void vdrv_queue(struct vdrv *d, unsigned q, uint16_t size)
{
	struct vdrv_q *vq = &d->q[q];
	*vq = (struct vdrv_q){ .size = size };
	vq->desc = vdrv_alloc(d, 16ULL * size, 16);
	vq->avail = vdrv_alloc(d, 6 + 2ULL * size, 2);
	vq->used = vdrv_alloc(d, 6 + 8ULL * size, 4);
	vdrv_wr(d, 0x16, 2, q);
	vdrv_wr(d, 0x18, 2, size);
	vdrv_wr(d, 0x20, 8, vq->desc);
	vdrv_wr(d, 0x28, 8, vq->avail);
	vdrv_wr(d, 0x30, 8, vq->used);
	vdrv_wr(d, 0x1c, 2, 1);
}

/* The usual sequence: reset, ACK, DRIVER, features, FEATURES_OK, nq
 * queues of size entries, DRIVER_OK. Returns the final status. */
static inline uint8_t vdrv_init(struct vdrv *d, uint32_t features, unsigned nq, uint16_t size)
{
	vdrv_set_status(d, 0);
	vdrv_set_status(d, 1);
	vdrv_set_status(d, 1 | 2);
	vdrv_features(d, features);
	vdrv_set_status(d, 1 | 2 | 8);
	for (unsigned q = 0; q < nq; q++)
		vdrv_queue(d, q, size);
	vdrv_set_status(d, 1 | 2 | 8 | 4);
	return vdrv_status(d);
}

/* Defect 4's check: start() failing (no descriptor left to open) tries
 * times, then the heap is where it was after the first try (what a first
 * start makes once is kept). Returns the growth in bytes. */
static inline size_t vdrv_heap_growth_of_failed_starts(struct vdrv *d, unsigned nq, uint16_t size,
							  int tries)
{
	struct rlimit old;
	getrlimit(RLIMIT_NOFILE, &old);
	size_t before = 0;
	for (int i = 0; i < tries; i++) {
		if (i == 1)
			before = unit_heap_bytes();
		int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
		close(probe);
		struct rlimit lim = { (rlim_t)probe, old.rlim_max };
		setrlimit(RLIMIT_NOFILE, &lim);
		uint8_t s = vdrv_init(d, 0, nq, size);
		setrlimit(RLIMIT_NOFILE, &old);
		CHECK(s & VIRTIO_STATUS_NEEDS_RESET);
		vdrv_set_status(d, 0);
	}
	size_t after = unit_heap_bytes();
	return after > before ? after - before : 0;
}

struct vdrv_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Put a chain of n segments in the ring (not kicked). Returns its head. */
static inline uint16_t vdrv_add(struct vdrv *d, unsigned q, const struct vdrv_seg *s, unsigned n)
{
	struct vdrv_q *vq = &d->q[q];
	uint16_t head = vq->next_desc % vq->size;
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % vq->size);
		uint8_t desc[16];
		uint16_t flags = (uint16_t)((i + 1 < n ? 1 : 0) | (s[i].write ? 2 : 0));
		uint16_t next = (uint16_t)((idx + 1) % vq->size);
		memcpy(desc, &s[i].gpa, 8);
		memcpy(desc + 8, &s[i].len, 4);
		memcpy(desc + 12, &flags, 2);
		memcpy(desc + 14, &next, 2);
		guest_mem_write(&d->f->mem, vq->desc + 16ULL * idx, desc, 16);
	}
	vq->next_desc = (uint16_t)(vq->next_desc + n);
	uint16_t slot = vq->avail_idx % vq->size;
	guest_mem_write(&d->f->mem, vq->avail + 4 + 2ULL * slot, &head, 2);
	vq->avail_idx++;
	guest_mem_write(&d->f->mem, vq->avail + 2, &vq->avail_idx, 2);
	return head;
}

static inline void vdrv_kick(struct vdrv *d, unsigned q)
{
	vdrv_wr(d, 0x3000 + 4 * q, 2, q);
}

static inline uint16_t vdrv_used_idx(struct vdrv *d, unsigned q)
{
	uint16_t idx = 0;
	guest_mem_read(&d->f->mem, d->q[q].used + 2, &idx, 2);
	return __atomic_load_n(&idx, __ATOMIC_ACQUIRE);
}

/* Collect the next used element: true and head/len, or false. */
static inline bool vdrv_used(struct vdrv *d, unsigned q, uint16_t *head, uint32_t *len)
{
	struct vdrv_q *vq = &d->q[q];
	if (vdrv_used_idx(d, q) == vq->used_seen)
		return false;
	uint32_t e[2];
	guest_mem_read(&d->f->mem, vq->used + 4 + 8ULL * (vq->used_seen % vq->size), e, 8);
	vq->used_seen++;
	*head = (uint16_t)e[0];
	*len = e[1];
	return true;
}

/* Wait (for a device thread) until queue q has n used entries past the
 * ones collected; a bound of 20 s guards against a hang, not a timing. */
static inline bool vdrv_wait_used(struct vdrv *d, unsigned q, unsigned n)
{
	for (int i = 0; i < 20000; i++) {
		if ((uint16_t)(vdrv_used_idx(d, q) - d->q[q].used_seen) >= n)
			return true;
		fake_loop_poll(d->f);
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	return false;
}
