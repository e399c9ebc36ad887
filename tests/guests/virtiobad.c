/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Malformed virtqueues against virtio-rnd (1af4:1044): each case sets up
 * the queue, offers one bad chain (or bad ring), kicks, and expects the
 * device to report DEVICE_NEEDS_RESET; then it resets the device and
 * checks that a good request works again. khyve must survive all of it.
 * Command line: only=<case> runs one case.
 * Output per case:
 *   BAD <case>: status=0x<hex> recovered=<yes|no>
 * then "BAD: cases=<n>" and PASS (FAIL names the first case that did not
 * end in NEEDS_RESET or did not recover).
 */
#include "guest.h"
#include "pci.h"
#include "virtio.h"

#define QSIZE 16
#define ALL (1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX)

static uint8_t qmem[2 * 4096] __attribute__((aligned(4096)));
static uint8_t buf[4][64];
static struct vring_desc itab[4] __attribute__((aligned(16)));
static struct virtio_dev dev;
static struct virtq q;

struct bad_case {
    const char *name;
    uint64_t features;
    /* ring set-up override: desc address, queue size (0: normal) */
    uint64_t desc_addr;
    unsigned size;
    void (*inject)(void);
};

static uint64_t a(void *p) { return (uint64_t)(uintptr_t)p; }

static void put(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    q.desc[i] = (struct vring_desc){ addr, len, flags, next };
}

static void loop1(void) { put(0, a(buf[0]), 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0); virtq_publish_raw(&q, 0); }
static void loop2(void)
{
    put(0, a(buf[0]), 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    put(1, a(buf[1]), 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
    virtq_publish_raw(&q, 0);
}
static void outside_ram(void) { put(0, 0xf0000000ull, 16, VRING_DESC_F_WRITE, 0); virtq_publish_raw(&q, 0); }
static void above_ram(void) { put(0, 0x200000000ull, 16, VRING_DESC_F_WRITE, 0); virtq_publish_raw(&q, 0); }
static void huge_len(void) { put(0, a(buf[0]), 0xfffffff0u, VRING_DESC_F_WRITE, 0); virtq_publish_raw(&q, 0); }
static void wrap(void) { put(0, 0xfffffffffffff000ull, 0x2000, VRING_DESC_F_WRITE, 0); virtq_publish_raw(&q, 0); }
static void bad_head(void) { put(0, a(buf[0]), 16, VRING_DESC_F_WRITE, 0); virtq_publish_raw(&q, QSIZE + 5); }
static void bad_next(void) { put(0, a(buf[0]), 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 200); virtq_publish_raw(&q, 0); }
static void idx_jump(void) { put(0, a(buf[0]), 16, VRING_DESC_F_WRITE, 0); virtq_set_avail_idx(&q, QSIZE + 3); }
static void indirect(uint32_t len, uint16_t flags)
{
    put(0, a(itab), len, flags, 0);
    virtq_publish_raw(&q, 0);
}
static void ind_unneg(void)
{
    itab[0] = (struct vring_desc){ a(buf[0]), 16, VRING_DESC_F_WRITE, 0 };
    indirect(16, VRING_DESC_F_INDIRECT);
}
static void ind_next(void)
{
    itab[0] = (struct vring_desc){ a(buf[0]), 16, VRING_DESC_F_WRITE, 0 };
    put(1, a(buf[1]), 16, VRING_DESC_F_WRITE, 0);
    indirect(16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT);
    (void)0;
}
static void ind_nested(void)
{
    itab[0] = (struct vring_desc){ a(itab + 2), 16, VRING_DESC_F_INDIRECT, 0 };
    itab[2] = (struct vring_desc){ a(buf[0]), 16, VRING_DESC_F_WRITE, 0 };
    indirect(16, VRING_DESC_F_INDIRECT);
}
static void ind_len(void)
{
    itab[0] = (struct vring_desc){ a(buf[0]), 16, VRING_DESC_F_WRITE, 0 };
    indirect(24, VRING_DESC_F_INDIRECT);
}
static void ind_empty(void) { indirect(0, VRING_DESC_F_INDIRECT); }
static void ind_outside(void) { put(0, 0xf0000000ull, 32, VRING_DESC_F_INDIRECT, 0); virtq_publish_raw(&q, 0); }
static void ind_loop(void)
{
    itab[0] = (struct vring_desc){ a(buf[0]), 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1 };
    itab[1] = (struct vring_desc){ a(buf[1]), 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0 };
    indirect(32, VRING_DESC_F_INDIRECT);
}
static void ind_bad_next(void)
{
    itab[0] = (struct vring_desc){ a(buf[0]), 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
    indirect(32, VRING_DESC_F_INDIRECT);
}
static void read_after_write(void)
{
    put(0, a(buf[0]), 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    put(1, a(buf[1]), 16, 0, 0);
    virtq_publish_raw(&q, 0);
}
static void nothing(void) {}

static const struct bad_case cases[] = {
    { "loop", ALL, 0, 0, loop1 },
    { "loop2", ALL, 0, 0, loop2 },
    { "addr_in_mmio_hole", ALL, 0, 0, outside_ram },
    { "addr_above_ram", ALL, 0, 0, above_ram },
    { "huge_len", ALL, 0, 0, huge_len },
    { "addr_wraps", ALL, 0, 0, wrap },
    { "bad_head", ALL, 0, 0, bad_head },
    { "bad_next", ALL, 0, 0, bad_next },
    { "avail_idx_jump", ALL, 0, 0, idx_jump },
    { "indirect_not_negotiated", 1ull << VIRTIO_F_EVENT_IDX, 0, 0, ind_unneg },
    { "indirect_with_next", ALL, 0, 0, ind_next },
    { "indirect_nested", ALL, 0, 0, ind_nested },
    { "indirect_bad_len", ALL, 0, 0, ind_len },
    { "indirect_empty", ALL, 0, 0, ind_empty },
    { "indirect_outside_ram", ALL, 0, 0, ind_outside },
    { "indirect_loop", ALL, 0, 0, ind_loop },
    { "indirect_bad_next", ALL, 0, 0, ind_bad_next },
    { "read_after_write", ALL, 0, 0, read_after_write },
    { "ring_outside_ram", ALL, 0xf0000000ull, 0, nothing },
    { "ring_misaligned", ALL, 0x1, 0, nothing },
    { "size_not_power_of_2", ALL, 0, 12, nothing },
};

static bool setup(uint64_t features, uint64_t desc_addr, unsigned size)
{
    if (!virtio_negotiate(&dev, features))
        return false;
    if (!virtq_setup(&dev, &q, 0, QSIZE, qmem, VIRTIO_NO_VECTOR))
        return false;
    if (desc_addr || size) {
        /* rewrite the queue before enabling it: virtq_setup enabled it, so
         * use a fresh reset and program by hand */
        virtio_negotiate(&dev, features);
        writew(dev.common + 0x16, 0);
        writew(dev.common + 0x18, (uint16_t)(size ? size : QSIZE));
        writeq(dev.common + 0x20, desc_addr ? desc_addr : a(q.desc));
        writeq(dev.common + 0x28, a((void *)q.avail));
        writeq(dev.common + 0x30, a((void *)q.used));
        writew(dev.common + 0x1c, 1);
    }
    virtio_driver_ok(&dev);
    return true;
}

static bool good_request(void)
{
    if (!setup(ALL, 0, 0))
        return false;
    memset(buf, 0, sizeof(buf));
    struct vbuf b = { buf[3], 32, true };
    if (virtq_add(&q, &b, 1, NULL) < 0)
        return false;
    virtq_kick(&q);
    uint32_t len = 0;
    return virtq_wait_used(&q, &len, 3000) >= 0 && len == 32 &&
           !(virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET);
}

int main(void)
{
    char only[40];
    bool one = cmdline_get("only", only, sizeof(only));
    int bdf = pci_find_device(0x1af4, 0x1044, 0);
    if (bdf < 0 || !virtio_open(&dev, (uint16_t)bdf))
        test_fail("no virtio-rnd device");
    virtio_setup_irq(&dev, VIRTIO_IRQ_POLL, 0);
    unsigned n = 0;
    for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct bad_case *c = &cases[i];
        if (one && strcmp(only, c->name))
            continue;
        n++;
        if (!setup(c->features, c->desc_addr, c->size))
            test_fail("%s: set-up failed", c->name);
        c->inject();
        bool nr = virtio_wait_status(&dev, VIRTIO_STATUS_NEEDS_RESET, 3000);
        uint8_t st = virtio_status(&dev);
        bool rec = good_request();
        printf("BAD %s: status=0x%x recovered=%s\n", c->name, st, rec ? "yes" : "no");
        if (!nr)
            test_fail("%s: the device did not report NEEDS_RESET", c->name);
        if (!rec)
            test_fail("%s: the device did not work again after a reset", c->name);
    }
    printf("BAD: cases=%u\n", n);
    virtio_reset(&dev);
    return 0;
}
