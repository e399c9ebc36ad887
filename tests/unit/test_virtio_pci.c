/* The virtio-pci transport and the runtime contract (vdev_work.h), driven
 * through the fake platform with virtio-rnd as the device: the work
 * budget, DRIVER_OK without FEATURES_OK, the ISR read against a raise,
 * the PCI configuration access window. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "unit.h"
#include "virtio/emulations.h"
#include "virtio/vdev_work.h"
#include "virtio_drv.h"


#define SLOT 5

static struct virtio_dev *vdev_of(struct vdrv *d)
{
	return pci_bus_get(d->bus, d->slot, 0)->opaque;
}

static void setup(struct fake_platform *f, struct vdrv *d)
{
	CHECK_EQ(fake_platform_init(f, 16 << 20), 0);
	CHECK_EQ(vdrv_create(d, f, &pci_emul_virtio_rnd, NULL, SLOT), 0);
	CHECK_EQ(vdrv_finish(d), 0);
}

static void teardown(struct fake_platform *f, struct vdrv *d)
{
	vdrv_destroy(d);
	fake_platform_fini(f);
}

/* Defect 2: one notify with more chains than a budget serves one budget,
 * re-kicks itself, and the next loop rounds serve the rest. */
static void test_budget(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK_EQ(vdrv_init(&d, 0, 1, 64), 0x0f);
	uint64_t buf = vdrv_alloc(&d, 64 * 16, 16);
	for (unsigned i = 0; i < 64; i++)
		vdrv_add(&d, 0, &(struct vdrv_seg){ buf + 16 * i, 16, true }, 1);
	vdrv_kick(&d, 0);
	CHECK_EQ(fake_loop_poll(&f), 1);
	CHECK_EQ(vdrv_used_idx(&d, 0), VDEV_BUDGET);
	/* It came back by itself: no new kick. */
	for (int i = 0; i < 4 && vdrv_used_idx(&d, 0) < 64; i++)
		CHECK_EQ(fake_loop_poll(&f), 1);
	CHECK_EQ(vdrv_used_idx(&d, 0), 64);
	uint16_t head = 0;
	uint32_t len = 0;
	CHECK(vdrv_used(&d, 0, &head, &len));
	CHECK_EQ(head, 0);
	CHECK_EQ(len, 16);
	/* Nothing left: the loop is quiet. */
	CHECK_EQ(fake_loop_poll(&f), 0);
	teardown(&f, &d);
}

/* Defect 9: DRIVER_OK without FEATURES_OK does not start the device; it
 * reports NEEDS_RESET and serves nothing. */
static void test_driver_ok_without_features_ok(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	vdrv_set_status(&d, 0);
	vdrv_set_status(&d, 1 | 2);
	vdrv_features(&d, 0);
	vdrv_queue(&d, 0, 16);
	vdrv_set_status(&d, 1 | 2 | 4);
	uint8_t s = vdrv_status(&d);
	CHECK(s & VIRTIO_STATUS_NEEDS_RESET);
	CHECK(!vdev_of(&d)->started);
	uint64_t buf = vdrv_alloc(&d, 16, 16);
	vdrv_add(&d, 0, &(struct vdrv_seg){ buf, 16, true }, 1);
	vdrv_kick(&d, 0);
	fake_loop_poll(&f);
	CHECK_EQ(vdrv_used_idx(&d, 0), 0);
	/* Features refused at FEATURES_OK, then DRIVER_OK with the
	 * FEATURES_OK bit written again: still not started. */
	vdrv_set_status(&d, 0);
	vdrv_set_status(&d, 1 | 2);
	vdrv_features(&d, 1u << 20); /* not offered */
	vdrv_set_status(&d, 1 | 2 | 8);
	CHECK_EQ(vdrv_status(&d), 1 | 2);
	vdrv_queue(&d, 0, 16);
	vdrv_set_status(&d, 1 | 2 | 8 | 4);
	CHECK(vdrv_status(&d) & VIRTIO_STATUS_NEEDS_RESET);
	CHECK(!vdev_of(&d)->started);
	/* A reset and a proper start work. */
	CHECK_EQ(vdrv_init(&d, 0, 1, 16), 0x0f);
	vdrv_add(&d, 0, &(struct vdrv_seg){ buf, 16, true }, 1);
	vdrv_kick(&d, 0);
	fake_loop_poll(&f);
	CHECK_EQ(vdrv_used_idx(&d, 0), 1);
	teardown(&f, &d);
}

/* Defect 5: the ISR read and the line's lowering against a raise on
 * another thread. The invariant: the line goes low only while no ISR bit
 * is set (a raise between the read and the lowering would be lost: the
 * guest sees no interrupt and never reads the ISR again). The platform's
 * set_irq hook checks it at every lowering. */
static struct virtio_dev *race_v;
static void (*race_orig)(struct platform *, unsigned, bool);
static atomic_uint race_lost, race_lowered;

static void race_set_irq(struct platform *p, unsigned gsi, bool level)
{
	if (!level && race_v) {
		race_lowered++;
		if (atomic_load(&race_v->isr))
			race_lost++;
	}
	race_orig(p, gsi, level);
}

static void *raiser(void *opaque)
{
	struct virtio_dev *v = opaque;
	for (unsigned i = 0; i < 200000; i++) {
		pthread_mutex_lock(&v->lock);
		virtio_config_changed(v);
		pthread_mutex_unlock(&v->lock);
	}
	return NULL;
}

static void test_isr_race(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK_EQ(vdrv_init(&d, 0, 1, 16), 0x0f);
	CHECK(d.gsi > 0);
	race_orig = f.p.set_irq;
	f.p.set_irq = race_set_irq;
	race_v = vdev_of(&d);
	pthread_t t;
	pthread_create(&t, NULL, raiser, race_v);
	for (unsigned i = 0; i < 200000; i++)
		vdrv_rd(&d, 0x1000, 1);
	pthread_join(t, NULL);
	/* What is pending is signalled. */
	CHECK(!atomic_load(&race_v->isr) || f.irq_level[d.gsi]);
	race_v = NULL;
	f.p.set_irq = race_orig;
	CHECK(race_lowered > 0);
	CHECK_EQ(race_lost, 0);
	teardown(&f, &d);
}

/* Defect 8: the PCI configuration access window with an offset that
 * wraps off + len in 32 bits reaches no register. */
static void test_pcicfg_wrap(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK_EQ(vdrv_init(&d, 0, 1, 16), 0x0f);
	fake_loop_poll(&f); /* the kick DRIVER_OK gives itself */
	struct virtio_dev *v = vdev_of(&d);
	unsigned c = v->pcicfg_cap;
	CHECK(c != 0);
	/* A legal access first: device status through the window. */
	pci_cfg_write(d.bus, SLOT, 0, c + 4, 1, VIRTIO_PCI_BAR);
	pci_cfg_write(d.bus, SLOT, 0, c + 8, 4, 0x14);
	pci_cfg_write(d.bus, SLOT, 0, c + 12, 4, 1);
	CHECK_EQ(pci_cfg_read(d.bus, SLOT, 0, c + 16, 1), 0x0f);
	/* Offsets whose end wraps: nothing is read or written. */
	for (uint32_t len = 1; len <= 4; len *= 2) {
		uint32_t off = 0u - len;
		pci_cfg_write(d.bus, SLOT, 0, c + 8, 4, off);
		pci_cfg_write(d.bus, SLOT, 0, c + 12, 4, len);
		CHECK_EQ(pci_cfg_read(d.bus, SLOT, 0, c + 16, 4), 0);
		pci_cfg_write(d.bus, SLOT, 0, c + 16, 4, 0);
	}
	CHECK_EQ(vdrv_status(&d), 0x0f);
	CHECK_EQ(fake_loop_poll(&f), 0); /* no kick either */
	teardown(&f, &d);
}

int main(void)
{
	test_budget();
	test_driver_ok_without_features_ok();
	test_isr_race();
	test_pcicfg_wrap();
	return UNIT_RESULT();
}
