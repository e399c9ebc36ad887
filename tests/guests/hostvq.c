/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Hostile guest for the virtio devices: bad queues, notify storms, resets in
 * the middle of I/O, start/reset cycles and the defects of issue 9, against
 * the first device of dev=rnd|blk|con|net. One case per boot: case=<name>,
 * n=<count> scales the storms. tests/integration/test_hostile_virtio.py
 * runs every case. Same protocol as the `hostile` guest:
 *   HVQ: case=<name> dev=<dev> queues=<n> qmax=<n>
 *   HOSTILE: sample setup | end   (waits for one byte on COM1 after each)
 *   HVQ: <what happened>          per step
 *   HOSTILE: sane <dev>           a good request worked at the end
 *   PASS
 * Good requests: rnd 64 random bytes; blk a read of sector 0 (status 0);
 * con 16 bytes on port 0's transmit queue; net one frame transmitted.
 * Bad ones must end in DEVICE_NEEDS_RESET or an error status, never a hang,
 * and the device must work again after a reset.
 */
#include "guest.h"
#include "pci.h"
#include "virtio.h"
#include "smp.h"

#define QMAX_MEM (4 * 4096)
#define RAM_TOP 0x4000000ull /* the tests give 64M */

static char name[40], devname[8];
static uint64_t n_arg;
static struct virtio_dev dev;
static struct virtq q[2];
static uint8_t qmem[2][QMAX_MEM] __attribute__((aligned(4096)));
static unsigned qmax, nq;
static uint8_t big[1 << 20] __attribute__((aligned(4096))); /* 1 MiB */
static struct vring_desc itab[4][64] __attribute__((aligned(16)));
static struct blk_hdr { uint32_t type, reserved; uint64_t sector; } hdr[64];
static volatile uint8_t bstatus[64];
static uint8_t small[64][512] __attribute__((aligned(512)));

static bool is(const char *c) { return !strcmp(name, c); }
static uint64_t a(const volatile void *p) { return (uint64_t)(uintptr_t)p; }
static bool isdev(const char *d) { return !strcmp(devname, d); }

static void sample(const char *what)
{
    printf("HOSTILE: sample %s\n", what);
    while (!uart_rx_ready(COM1))
        cpu_relax();
    (void)inb(COM1);
}

/* The queue that carries a device's requests: rnd/blk 0, con/net tx 1. */
static unsigned work_queue(void) { return isdev("con") || isdev("net") ? 1 : 0; }

static bool start_f(unsigned size, uint64_t features)
{
    if (!virtio_negotiate(&dev, features))
        return false;
    for (unsigned i = 0; i < nq && i < 2; i++)
        if (!virtq_setup(&dev, &q[i], i, size, qmem[i], VIRTIO_NO_VECTOR))
            return false;
    virtio_driver_ok(&dev);
    return true;
}

static bool start(unsigned size) { return start_f(size, 1ull << VIRTIO_F_INDIRECT_DESC); }

/* Post one good request on the work queue; true if it is used within 3 s. */
static bool good(struct virtq *wq)
{
    uint32_t len = 0;
    int h = -1;
    memset(small[0], 0, 64);
    if (isdev("rnd")) {
        struct vbuf b = { small[0], 64, true };
        h = virtq_add(wq, &b, 1, NULL);
    } else if (isdev("blk")) {
        hdr[0] = (struct blk_hdr){ 0, 0, 0 };
        bstatus[0] = 0xff;
        struct vbuf b[3] = { { &hdr[0], 16, false }, { small[1], 512, true },
                             { (void *)&bstatus[0], 1, true } };
        h = virtq_add(wq, b, 3, NULL);
    } else if (isdev("con")) {
        memcpy(small[0], "HVQ console line\n", 16);
        struct vbuf b = { small[0], 16, false };
        h = virtq_add(wq, &b, 1, NULL);
    } else {
        memset(small[0], 0, 12 + 60);
        memset(small[0] + 12, 0xff, 6);
        small[0][12 + 12] = 0x88;
        small[0][12 + 13] = 0xb5;
        struct vbuf b = { small[0], 12 + 60, false };
        h = virtq_add(wq, &b, 1, NULL);
    }
    if (h < 0)
        return false;
    virtq_kick(wq);
    if (virtq_wait_used(wq, &len, 3000) < 0)
        return false;
    if (isdev("rnd") && len != 64)
        return false;
    if (isdev("blk") && bstatus[0] != 0)
        return false;
    return !(virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET);
}

static void sane(void)
{
    if (!start(16) || !good(&q[work_queue()]))
        test_fail("sanity: a good request failed on %s (status 0x%x)", devname, virtio_status(&dev));
    virtio_reset(&dev);
    printf("HOSTILE: sane %s\n", devname);
}

/* After a bad step: the device asked for a reset (or failed the request),
 * and works again after one. */
static void recovered(const char *what)
{
    uint8_t st = virtio_status(&dev);
    if (!start(16) || !good(&q[work_queue()]))
        test_fail("%s: no good request after a reset (status before 0x%x)", what, st);
    printf("HVQ: %s status=0x%x recovered\n", what, st);
}

/* Program queue qi by hand (size and ring addresses as given), enable it,
 * DRIVER_OK. */
static void raw_queue(unsigned qi, unsigned size, uint64_t desc, uint64_t avail, uint64_t used)
{
    virtio_negotiate(&dev, 0);
    writew(dev.common + 0x16, (uint16_t)qi);
    writew(dev.common + 0x18, (uint16_t)size);
    writeq(dev.common + 0x20, desc);
    writeq(dev.common + 0x28, avail);
    writeq(dev.common + 0x30, used);
    writew(dev.common + 0x1c, 1);
    virtio_driver_ok(&dev);
}

/* ---- queue sizes ---- */

static void vq_sizes(void)
{
    static const unsigned sizes[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64,
                                      65, 127, 128, 129, 255, 256, 257, 512, 1024, 4096, 32768,
                                      65535 };
    unsigned ok = 0, refused = 0;
    unsigned wq = work_queue();
    for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++) {
        unsigned s = sizes[i];
        virtio_negotiate(&dev, 0);
        writew(dev.common + 0x16, (uint16_t)wq);
        writew(dev.common + 0x18, (uint16_t)s);
        unsigned got = readw(dev.common + 0x18);
        bool legal = got && !(got & (got - 1)) && got <= qmax;
        if (legal && isdev("blk") && got < 3) {
            /* a blk request takes 3 descriptors and a chain may not be
             * longer than the queue, indirect or not: set-up only */
            if (!start(got) || (virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET))
                test_fail("queue size %u refused", got);
            ok++;
        } else if (legal) {
            if (!start(got) || !good(&q[wq]))
                test_fail("queue size %u (read back %u): a good request failed", s, got);
            ok++;
        } else {
            raw_queue(wq, s, a(qmem[wq]), a(qmem[wq]) + 16 * 256, a(qmem[wq]) + 8192);
            if (!virtio_wait_status(&dev, VIRTIO_STATUS_NEEDS_RESET, 3000))
                test_fail("queue size %u (read back %u): no NEEDS_RESET", s, got);
            refused++;
        }
    }
    recovered("sizes");
    printf("HVQ: sizes tried=%u worked=%u refused=%u\n", (unsigned)ARRAY_SIZE(sizes), ok, refused);
}

/* ---- ring addresses ---- */

static void vq_ring_ends(void)
{
    unsigned wq = work_queue();
    /* legal: the three parts in the last page of RAM, the used ring ending
     * 2 bytes before its end */
    uint64_t page = RAM_TOP - 4096;
    memset(phys_to_ptr(page), 0, 4096);
    unsigned s = 16;
    uint64_t desc = page, avail = page + 16 * s, used = RAM_TOP - (6 + 8 * s) - 2;
    raw_queue(wq, s, desc, avail, used);
    if (virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET)
        test_fail("rings inside the last page of RAM were refused");
    struct virtq vq = { .dev = &dev, .index = wq, .size = (uint16_t)s,
                        .desc = phys_to_ptr(desc), .avail = phys_to_ptr(avail),
                        .used = phys_to_ptr(used), .num_free = (uint16_t)s };
    for (unsigned i = 0; i < s; i++)
        vq.desc[i].next = (uint16_t)(i + 1);
    vq.avail[0] = 1;
    vq.notify = dev.notify + readw(dev.common + 0x1e) * dev.notify_mult;
    if (!good(&vq))
        test_fail("a request on rings at the end of RAM failed");
    printf("HVQ: rings at the end of RAM worked\n");
    /* illegal: straddling the end, past it */
    const uint64_t bad[][3] = {
        { desc, avail, RAM_TOP - 64 },
        { RAM_TOP - 128, avail, used },
        { desc, RAM_TOP - 8, used },
        { RAM_TOP, RAM_TOP + 0x1000, RAM_TOP + 0x2000 },
        { 0xfffffffffffff000ull, avail, used },
        { desc, avail, 0xfffffffffffffff8ull },
    };
    for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
        raw_queue(wq, s, bad[i][0], bad[i][1], bad[i][2]);
        if (!virtio_wait_status(&dev, VIRTIO_STATUS_NEEDS_RESET, 3000))
            test_fail("rings %u across or past the end of RAM: no NEEDS_RESET", i);
    }
    recovered("ring_ends");
}

static void vq_ring_holes(void)
{
    unsigned wq = work_queue();
    struct pci_bar_info b4 = pci_bar(dev.bdf, 4), b1 = pci_bar(dev.bdf, 1);
    const uint64_t holes[] = { b4.addr, b4.addr + 0x3000 /* its own notify area */, b1.addr,
                               0xc0000000, 0xe0000000, 0xfec00000, 0xfee00000, 0xfffff000,
                               0x100000000ull };
    unsigned n = 0;
    for (unsigned i = 0; i < ARRAY_SIZE(holes); i++)
        for (unsigned part = 0; part < 3; part++, n++) {
            uint64_t r[3] = { a(qmem[wq]), a(qmem[wq]) + 4096, a(qmem[wq]) + 8192 };
            r[part] = holes[i];
            raw_queue(wq, 16, r[0], r[1], r[2]);
            if (!virtio_wait_status(&dev, VIRTIO_STATUS_NEEDS_RESET, 3000))
                test_fail("ring part %u at 0x%lx: no NEEDS_RESET", part, (unsigned long)holes[i]);
        }
    recovered("ring_holes");
    printf("HVQ: rings in MMIO holes tried=%u\n", n);
}

/* ---- descriptors ---- */

/* Offer one hand-made chain at head 0 and expect NEEDS_RESET or an error. */
static void offer(struct virtq *wq, const char *what)
{
    virtq_publish_raw(wq, 0);
    uint64_t deadline = timeout_start(3000);
    uint32_t len;
    while (!(virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET) && virtq_get_used(wq, &len) < 0)
        if (timeout_expired(deadline))
            test_fail("%s: neither NEEDS_RESET nor a used buffer", what);
    recovered(what);
}

static uint16_t wflag(void) { return isdev("con") || isdev("net") ? 0 : VRING_DESC_F_WRITE; }

static void vq_desc_loop(void)
{
    unsigned wq = work_queue();
    uint16_t size = 0;
    /* a loop through every descriptor of the queue */
    if (!virtio_negotiate(&dev, (1ull << VIRTIO_F_INDIRECT_DESC)))
        test_fail("features");
    virtq_setup(&dev, &q[wq], wq, 256, qmem[wq], VIRTIO_NO_VECTOR);
    virtio_driver_ok(&dev);
    size = q[wq].size;
    for (unsigned i = 0; i < size; i++)
        q[wq].desc[i] = (struct vring_desc){ a(small[i % 64]), 16,
                                             (uint16_t)(wflag() | VRING_DESC_F_NEXT),
                                             (uint16_t)((i + 1) % size) };
    offer(&q[wq], "loop_through_all");
    /* an indirect table that loops */
    start_f(16, 1ull << VIRTIO_F_INDIRECT_DESC);
    for (unsigned i = 0; i < 64; i++)
        itab[0][i] = (struct vring_desc){ a(small[i]), 16, (uint16_t)(wflag() | VRING_DESC_F_NEXT),
                                          (uint16_t)((i + 1) % 64) };
    q[wq].desc[0] = (struct vring_desc){ a(itab[0]), sizeof(itab[0]), VRING_DESC_F_INDIRECT, 0 };
    offer(&q[wq], "indirect_loop");
}

static void vq_indirect_nested(void)
{
    unsigned wq = work_queue();
    if (!virtio_negotiate(&dev, 1ull << VIRTIO_F_INDIRECT_DESC))
        test_fail("features");
    virtq_setup(&dev, &q[wq], wq, 16, qmem[wq], VIRTIO_NO_VECTOR);
    virtio_driver_ok(&dev);
    /* three levels: table 0 -> table 1 -> table 2 -> a buffer */
    itab[0][0] = (struct vring_desc){ a(itab[1]), 16, VRING_DESC_F_INDIRECT, 0 };
    itab[1][0] = (struct vring_desc){ a(itab[2]), 16, VRING_DESC_F_INDIRECT, 0 };
    itab[2][0] = (struct vring_desc){ a(small[0]), 16, wflag(), 0 };
    q[wq].desc[0] = (struct vring_desc){ a(itab[0]), 16, VRING_DESC_F_INDIRECT, 0 };
    offer(&q[wq], "indirect_in_indirect");
    /* a table that names itself */
    virtio_negotiate(&dev, 1ull << VIRTIO_F_INDIRECT_DESC);
    virtq_setup(&dev, &q[wq], wq, 16, qmem[wq], VIRTIO_NO_VECTOR);
    virtio_driver_ok(&dev);
    itab[0][0] = (struct vring_desc){ a(itab[0]), 16, VRING_DESC_F_INDIRECT, 0 };
    q[wq].desc[0] = (struct vring_desc){ a(itab[0]), 16, VRING_DESC_F_INDIRECT, 0 };
    offer(&q[wq], "indirect_self");
    /* the second entry of a table is indirect */
    virtio_negotiate(&dev, 1ull << VIRTIO_F_INDIRECT_DESC);
    virtq_setup(&dev, &q[wq], wq, 16, qmem[wq], VIRTIO_NO_VECTOR);
    virtio_driver_ok(&dev);
    itab[0][0] = (struct vring_desc){ a(small[0]), 16, (uint16_t)(VRING_DESC_F_NEXT), 1 };
    itab[0][1] = (struct vring_desc){ a(itab[1]), 16, VRING_DESC_F_INDIRECT, 0 };
    itab[1][0] = (struct vring_desc){ a(small[1]), 16, wflag(), 0 };
    q[wq].desc[0] = (struct vring_desc){ a(itab[0]), 32, VRING_DESC_F_INDIRECT, 0 };
    offer(&q[wq], "indirect_second_level");
}

static struct vring_desc longtab[4096] __attribute__((aligned(16)));

static void vq_chain_over_limit(void)
{
    unsigned wq = work_queue();
    if (!virtio_negotiate(&dev, 1ull << VIRTIO_F_INDIRECT_DESC))
        test_fail("features");
    virtq_setup(&dev, &q[wq], wq, 256, qmem[wq], VIRTIO_NO_VECTOR);
    virtio_driver_ok(&dev);
    /* an indirect table of 4096 entries, every one on the same buffer */
    for (unsigned i = 0; i < ARRAY_SIZE(longtab); i++)
        longtab[i] = (struct vring_desc){ a(small[i % 64]), 512,
                                          (uint16_t)((i ? wflag() : 0) |
                                                     (i + 1 < ARRAY_SIZE(longtab) ? VRING_DESC_F_NEXT : 0)),
                                          (uint16_t)(i + 1) };
    hdr[0] = (struct blk_hdr){ 0, 0, 0 };
    longtab[0].addr = a(&hdr[0]);
    longtab[0].len = 16;
    q[wq].desc[0] = (struct vring_desc){ a(longtab), sizeof(longtab), VRING_DESC_F_INDIRECT, 0 };
    offer(&q[wq], "indirect_4096");
    /* a direct chain of every descriptor of a 256 queue, the last without NEXT */
    start(256);
    unsigned size = q[wq].size;
    for (unsigned i = 0; i < size; i++)
        q[wq].desc[i] = (struct vring_desc){ a(small[i % 64]), 512,
                                             (uint16_t)((i ? wflag() : 0) | (i + 1 < size ? VRING_DESC_F_NEXT : 0)),
                                             (uint16_t)(i + 1) };
    q[wq].desc[0].addr = a(&hdr[0]);
    q[wq].desc[0].len = 16;
    offer(&q[wq], "chain_of_256");
}

static void vq_avail_ahead(void)
{
    unsigned wq = work_queue();
    const uint16_t idx[] = { 17, 0x8000, 0xffff, 1000 };
    for (unsigned i = 0; i < ARRAY_SIZE(idx); i++) {
        start(16);
        for (unsigned k = 0; k < 16; k++) {
            q[wq].desc[k] = (struct vring_desc){ a(small[k]), 64, wflag(), 0 };
            q[wq].avail[2 + k] = (uint16_t)k;
        }
        virtq_set_avail_idx(&q[wq], idx[i]);
        if (!virtio_wait_status(&dev, VIRTIO_STATUS_NEEDS_RESET, 3000))
            test_fail("avail idx %u ahead of a 16-entry queue: no NEEDS_RESET", idx[i]);
        recovered("avail_ahead");
    }
    /* going backwards after some work */
    start(16);
    for (unsigned k = 0; k < 4; k++)
        if (!good(&q[wq]))
            test_fail("good request");
    virtq_set_avail_idx(&q[wq], 2);
    if (!virtio_wait_status(&dev, VIRTIO_STATUS_NEEDS_RESET, 3000))
        test_fail("avail idx moved back by 2: no NEEDS_RESET");
    recovered("avail_back");
}

static void vq_buf_in_mmio(void)
{
    unsigned wq = work_queue();
    struct pci_bar_info b4 = pci_bar(dev.bdf, 4);
    const uint64_t where[] = { b4.addr /* its own registers */, b4.addr + 0x14, 0xfee00000,
                               0xfec00000, 0xe0000000, RAM_TOP - 8, 0xc0000000 };
    for (unsigned i = 0; i < ARRAY_SIZE(where); i++) {
        start(16);
        if (isdev("blk")) {
            hdr[0] = (struct blk_hdr){ 0, 0, 0 };
            q[wq].desc[0] = (struct vring_desc){ a(&hdr[0]), 16, VRING_DESC_F_NEXT, 1 };
            q[wq].desc[1] = (struct vring_desc){ where[i], 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
            q[wq].desc[2] = (struct vring_desc){ a(&bstatus[0]), 1, VRING_DESC_F_WRITE, 0 };
        } else {
            q[wq].desc[0] = (struct vring_desc){ where[i], 64, wflag(), 0 };
        }
        offer(&q[wq], "buffer_in_mmio");
    }
}

/* ---- notify storms ---- */

static void notify_storm(void)
{
    unsigned n = 0;
    uint16_t nqs = readw(dev.common + 0x12);
    start(16);
    /* every queue's notify address, and past the last one; empty queues */
    for (uint64_t i = 0; i < n_arg; i++, n++) {
        unsigned qi = (unsigned)(i % (nqs + 2));
        writew(dev.notify + qi * dev.notify_mult, (uint16_t)qi);
    }
    /* with requests in flight on the work queue */
    unsigned wq = work_queue();
    for (uint64_t i = 0; i < n_arg; i++, n++) {
        if ((i & 255) == 0) {
            uint32_t len;
            while (virtq_get_used(&q[wq], &len) >= 0)
                ;
            if (q[wq].num_free >= 3 && !good(&q[wq]))
                test_fail("a request failed in the storm");
        }
        writel(dev.notify + wq * dev.notify_mult, 0xffffffff);
    }
    /* before DRIVER_OK, after a reset, disabled queues */
    virtio_negotiate(&dev, 0);
    for (uint64_t i = 0; i < n_arg / 4; i++, n++)
        writew(dev.notify + (i % nqs) * dev.notify_mult, (uint16_t)i);
    virtio_reset(&dev);
    for (uint64_t i = 0; i < n_arg / 4; i++, n++)
        writeb(dev.notify + (i % nqs) * dev.notify_mult, (uint8_t)i);
    printf("HVQ: notifies=%u queues=%u\n", n, nqs);
}

/* ---- reset in the middle of I/O ---- */

static void reset_mid_io(void)
{
    unsigned wq = work_queue();
    unsigned rounds = (unsigned)n_arg, late = 0;
    for (unsigned r = 0; r < rounds; r++) {
        if (!virtio_negotiate(&dev, 0))
            test_fail("features");
        for (unsigned i = 0; i < nq && i < 2; i++)
            virtq_setup(&dev, &q[i], i, 64, qmem[i], VIRTIO_NO_VECTOR);
        virtio_driver_ok(&dev);
        /* fill the work queue: 16 requests over the 1 MiB buffer */
        for (unsigned k = 0; k < 16; k++) {
            uint8_t *p = big + k * 65536;
            if (isdev("blk")) {
                hdr[k] = (struct blk_hdr){ 0, 0, (uint64_t)k * 128 };
                struct vbuf b[3] = { { &hdr[k], 16, false }, { p, 65536, true },
                                     { (void *)&bstatus[k], 1, true } };
                virtq_add(&q[wq], b, 3, NULL);
            } else {
                struct vbuf b = { p, isdev("net") ? 1514 : 65536, !(isdev("con") || isdev("net")) };
                if (isdev("net"))
                    memset(p, 0, 12);
                virtq_add(&q[wq], &b, 1, NULL);
            }
        }
        /* con and net: receive buffers too */
        if (isdev("con") || isdev("net"))
            for (unsigned k = 0; k < 16; k++) {
                struct vbuf b = { big + (k + 16) * 4096, 4096, true };
                virtq_add(&q[0], &b, 1, NULL);
            }
        if (isdev("con") || isdev("net"))
            virtq_kick(&q[0]);
        virtq_kick(&q[wq]);
        /* reset once the device has started on them */
        uint64_t deadline = timeout_start(2000);
        while ((q[wq].used[0] >> 16) == 0 && !timeout_expired(deadline))
            cpu_relax();
        virtio_reset(&dev);
        /* Nothing may touch guest memory from now on. A canary in the first
         * word of every 512 bytes of the buffers (any write there changes
         * it: disk data is random) and in every word of the used rings. */
        const uint64_t canary = 0xa5a5a5a5a5a5a5a5ull;
        unsigned uwords = (6 + 8 * 64 + 7) / 8;
        for (unsigned i = 0; i < sizeof(big); i += 512)
            *(volatile uint64_t *)(big + i) = canary;
        for (unsigned k = 0; k < nq && k < 2; k++)
            for (unsigned w = 0; w < uwords; w++)
                ((volatile uint64_t *)q[k].used)[w] = canary;
        mdelay(20);
        for (unsigned i = 0; i < sizeof(big); i += 512)
            if (*(volatile uint64_t *)(big + i) != canary) {
                late++;
                printf("HVQ: round %u: buffer offset %u written after the reset\n", r, i);
                break;
            }
        for (unsigned k = 0; k < nq && k < 2; k++)
            for (unsigned w = 0; w < uwords; w++)
                if (((volatile uint64_t *)q[k].used)[w] != canary) {
                    late++;
                    printf("HVQ: round %u: queue %u used ring word %u written after the reset\n",
                           r, k, w);
                    break;
                }
    }
    if (late)
        test_fail("the device wrote guest memory after a reset in %u of %u rounds", late, rounds);
    printf("HVQ: %u resets in the middle of I/O, nothing written after them\n", rounds);
}

/* ---- defects ---- */

static struct vring_desc bigtab[8][18] __attribute__((aligned(16)));

/* issue 9 defect 3: one nocache request of 16 MiB, every segment the same
 * 1 MiB of guest memory, 8 of them at once. */
static void blk_big_requests(void)
{
    if (!virtio_negotiate(&dev, 1ull << VIRTIO_F_INDIRECT_DESC))
        test_fail("features");
    virtq_setup(&dev, &q[0], 0, 64, qmem[0], VIRTIO_NO_VECTOR);
    virtio_driver_ok(&dev);
    unsigned segs = 16, reqs = (unsigned)n_arg;
    if (reqs > 8)
        reqs = 8;
    for (unsigned r = 0; r < reqs; r++) {
        hdr[r] = (struct blk_hdr){ 0, 0, 0 };
        bigtab[r][0] = (struct vring_desc){ a(&hdr[r]), 16, VRING_DESC_F_NEXT, 1 };
        /* misaligned by one byte: nocache must bounce it */
        for (unsigned s = 0; s < segs; s++)
            bigtab[r][1 + s] = (struct vring_desc){ a(big) + 1, sizeof(big) - 512,
                                                    VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
                                                    (uint16_t)(2 + s) };
        bigtab[r][1 + segs] = (struct vring_desc){ a(&bstatus[r]), 1, VRING_DESC_F_WRITE, 0 };
        bstatus[r] = 0xff;
        q[0].desc[r] = (struct vring_desc){ a(bigtab[r]), 16 * (segs + 2), VRING_DESC_F_INDIRECT, 0 };
        q[0].avail[2 + r] = (uint16_t)r;
    }
    virtq_set_avail_idx(&q[0], (uint16_t)reqs);
    unsigned done = 0;
    uint64_t deadline = timeout_start(30000);
    while ((uint16_t)(q[0].used[0] >> 16) < reqs && !(virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET))
        if (timeout_expired(deadline))
            test_fail("the big requests did not complete");
    done = (uint16_t)(q[0].used[0] >> 16);
    printf("HVQ: %u requests of %u MiB (every segment the same misaligned 1 MiB): statuses",
           done, segs);
    for (unsigned r = 0; r < done; r++)
        printf(" %u", bstatus[r]);
    printf(" device status=0x%x\n", virtio_status(&dev));
    virtio_reset(&dev);
}

/* issue 9 defect 4: start() again and again */
static void restart(void)
{
    for (uint64_t i = 0; i < n_arg; i++) {
        if (!start(16))
            test_fail("start %lu failed", (unsigned long)i);
        if (virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET)
            test_fail("cycle %lu: NEEDS_RESET after DRIVER_OK", (unsigned long)i);
        if ((i & 31) == 0 && !good(&q[work_queue()]))
            test_fail("cycle %lu: a good request failed", (unsigned long)i);
        virtio_reset(&dev);
    }
    printf("HVQ: %lu DRIVER_OK/reset cycles\n", (unsigned long)n_arg);
}

/* issue 9 defect 9: DRIVER_OK with features the device never validated */
static void no_features_ok(void)
{
    unsigned wq = work_queue();
    virtio_reset(&dev);
    virtio_set_status(&dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    writel(dev.common + 0x08, 0);
    writel(dev.common + 0x0c, 0xffffffff); /* everything, offered or not */
    writel(dev.common + 0x08, 1);
    writel(dev.common + 0x0c, 0xffffffff);
    dev.features = 0;
    for (unsigned i = 0; i < nq && i < 2; i++)
        virtq_setup(&dev, &q[i], i, 16, qmem[i], VIRTIO_NO_VECTOR);
    virtio_set_status(&dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
    struct vbuf b = { small[2], 64, wflag() != 0 };
    if (isdev("blk")) {
        hdr[0] = (struct blk_hdr){ 0, 0, 0 };
        struct vbuf bb[3] = { { &hdr[0], 16, false }, { small[1], 512, true },
                              { (void *)&bstatus[0], 1, true } };
        virtq_add(&q[wq], bb, 3, NULL);
    } else {
        virtq_add(&q[wq], &b, 1, NULL);
    }
    virtq_kick(&q[wq]);
    uint32_t len;
    bool served = virtq_wait_used(&q[wq], &len, 500) >= 0;
    printf("HVQ: DRIVER_OK without FEATURES_OK: status=0x%x request %s\n", virtio_status(&dev),
           served ? "served" : "not served");
    if (served)
        test_fail("the device started on features it never validated");
    recovered("no_features_ok");
}

/* issue 9 defect 2: an AP keeps the ring full of 1 MiB buffers (every avail
 * slot names the same one) without ever notifying again; the host sends a
 * console byte, which needs the event loop. */
static volatile bool refill_stop;
static volatile uint64_t refills;
static void refill_ap(uint32_t id)
{
    (void)id;
    struct virtq *wq = &q[0];
    while (!refill_stop) {
        uint16_t used = (uint16_t)(wq->used[0] >> 16);
        uint16_t want = (uint16_t)(used + wq->size - 1);
        if (wq->avail[1] != want) {
            __asm__ volatile("mfence" ::: "memory");
            wq->avail[1] = want;
            refills++;
        }
    }
}

static void starve(void)
{
    if (!virtio_negotiate(&dev, 0))
        test_fail("features");
    virtq_setup(&dev, &q[0], 0, 64, qmem[0], VIRTIO_NO_VECTOR);
    virtio_driver_ok(&dev);
    struct virtq *wq = &q[0];
    for (unsigned k = 0; k < wq->size; k++) {
        wq->desc[k] = (struct vring_desc){ a(big), sizeof(big), VRING_DESC_F_WRITE, 0 };
        wq->avail[2 + k] = 0;
    }
    wq->avail[1] = (uint16_t)(wq->size - 1);
    writew(wq->notify, 0); /* the one notify */
    if (smp_start_aps(refill_ap, 2000) < 1)
        test_fail("no AP");
    uint64_t deadline = timeout_start(30000), quiet = timeout_start(100);
    uint16_t seen = (uint16_t)(wq->used[0] >> 16);
    while ((uint16_t)(wq->used[0] >> 16) < 2 * wq->size) {
        if (timeout_expired(deadline))
            test_fail("the device is not draining");
        uint16_t now = (uint16_t)(wq->used[0] >> 16);
        if (now != seen) {
            seen = now;
            quiet = timeout_start(100);
        } else if (timeout_expired(quiet)) {
            /* The device found the ring empty just before the AP refilled
             * it, and stopped, as it may: a driver that adds buffers
             * notifies. (The AP never does, so that one notify must
             * otherwise carry the device through budget after budget.) */
            writew(wq->notify, 0);
            quiet = timeout_start(100);
        }
    }
    printf("HVQ: ring kept full; send a byte\n");
    deadline = timeout_start(30000);
    bool got = false;
    while (!(got = uart_rx_ready(COM1)) && !timeout_expired(deadline))
        cpu_relax();
    refill_stop = true;
    uint16_t u = (uint16_t)(wq->used[0] >> 16);
    printf("HVQ: console byte %s while the device served the ring (used idx %u)\n",
           got ? "arrived" : "did not arrive", u);
    if (!got)
        test_fail("the console went unserved while virtio-rnd drained a ring kept full");
    (void)inb(COM1);
    virtio_reset(&dev);
}

/* issue 9 defect 7: with mergeable receive buffers, a bad buffer between
 * two good ones that are too small for the frame. The device must use
 * every head once; the defect rewinds over the bad one it already used. */
static void rx_bad_buffer(void)
{
    const uint64_t mrg = 1ull << 15;
    if (!virtio_negotiate(&dev, mrg) || !(dev.features & mrg))
        test_fail("no VIRTIO_NET_F_MRG_RXBUF");
    virtq_setup(&dev, &q[0], 0, 16, qmem[0], VIRTIO_NO_VECTOR);
    virtq_setup(&dev, &q[1], 1, 16, qmem[1], VIRTIO_NO_VECTOR);
    virtio_driver_ok(&dev);
    struct vbuf ba = { small[10], 64, true }, bb = { small[11], 64, false },
                bc = { small[12], 64, true }, bd = { big, 2048, true };
    int ha = virtq_add(&q[0], &ba, 1, NULL), hb = virtq_add(&q[0], &bb, 1, NULL),
        hc = virtq_add(&q[0], &bc, 1, NULL);
    virtq_kick(&q[0]);
    printf("HVQ: rx buffers posted (heads %d good, %d read-only, %d good); send a frame\n", ha,
           hb, hc);
    uint64_t deadline = timeout_start(10000);
    while ((uint16_t)(q[0].used[0] >> 16) < 1) {
        /* A device-readable receive buffer is the driver's error: the
         * device may say so with DEVICE_NEEDS_RESET instead of using it
         * (virtio 1.2, 2.1.2), as long as no head comes back twice. */
        if (virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET) {
            uint16_t u = (uint16_t)(q[0].used[0] >> 16);
            printf("HVQ: rx: the device needs a reset (bad buffer), %u heads used\n", u);
            if (u > 0)
                test_fail("heads used before the bad buffer was refused");
            virtio_reset(&dev);
            return;
        }
        if (timeout_expired(deadline))
            test_fail("the device did not take the frame");
    }
    mdelay(50);
    int hd = virtq_add(&q[0], &bd, 1, NULL);
    virtq_kick(&q[0]);
    deadline = timeout_start(3000);
    uint16_t used;
    while ((used = (uint16_t)(q[0].used[0] >> 16)) < 3 && !timeout_expired(deadline))
        cpu_relax();
    unsigned heads[8], n = used < 8 ? used : 8, seen[16] = { 0 };
    bool twice = false;
    printf("HVQ: rx used (head d=%d):", hd);
    for (unsigned i = 0; i < n; i++) {
        heads[i] = q[0].used[1 + 2 * i];
        printf(" %u/len=%u", heads[i], q[0].used[2 + 2 * i]);
        if (heads[i] < 16 && seen[heads[i]]++)
            twice = true;
    }
    printf("\n");
    if (twice)
        test_fail("a receive head was used twice");
    if (n < 3)
        test_fail("the frame was not delivered after more buffers came");
    virtio_reset(&dev);
}

/* ---- multiqueue (virtio-net with queues=N) ---- */

#define MQ_MAXQ 9 /* up to 4 pairs and the control queue */
static struct virtq mq[MQ_MAXQ];
static uint8_t mqmem[MQ_MAXQ][QMAX_MEM] __attribute__((aligned(4096)));
static uint8_t ctrl_req[64], ctrl_ack;

/* A control request of len bytes (class, command, data); the ack, or -1
 * when the device did not answer. */
static int ctrl(struct virtq *cq, const uint8_t *req, unsigned len)
{
    memcpy(ctrl_req, req, len);
    ctrl_ack = 0xee;
    struct vbuf b[2] = { { ctrl_req, len, false }, { &ctrl_ack, 1, true } };
    if (virtq_add(cq, b, 2, NULL) < 0)
        return -1;
    virtq_kick(cq);
    uint32_t used;
    if (virtq_wait_used(cq, &used, 3000) < 0)
        return -1;
    return ctrl_ack;
}

static int pairs_set(struct virtq *cq, unsigned n)
{
    uint8_t r[4] = { 4, 0, (uint8_t)n, (uint8_t)(n >> 8) };
    return ctrl(cq, r, 4);
}

/* Set up every pair (up to 4) and the control queue with MQ and CTRL_VQ. */
static unsigned mq_start(void)
{
    const uint64_t want = 1ull << 17 | 1ull << 22;
    if (!virtio_negotiate(&dev, want) || (dev.features & want) != want)
        test_fail("mq: no VIRTIO_NET_F_MQ and CTRL_VQ (features 0x%lx)",
                  (unsigned long)virtio_device_features(&dev));
    unsigned max = virtio_cfg_read16(&dev, 8), pairs = max < 4 ? max : 4;
    for (unsigned i = 0; i < 2 * pairs; i++)
        if (!virtq_setup(&dev, &mq[i], i, 16, mqmem[i], VIRTIO_NO_VECTOR))
            test_fail("mq: queue %u", i);
    if (!virtq_setup(&dev, &mq[2 * pairs], 2 * max, 16, mqmem[2 * pairs], VIRTIO_NO_VECTOR))
        test_fail("mq: the control queue %u", 2 * max);
    virtio_driver_ok(&dev);
    return max;
}

/* One frame on pair k's transmit queue; true when it was used. */
static bool mq_tx(unsigned k, unsigned ms)
{
    memset(small[k], 0, 12 + 60);
    memset(small[k] + 12, 0xff, 6);
    small[k][12 + 12] = 0x88;
    small[k][12 + 13] = 0xb5;
    struct vbuf b = { small[k], 12 + 60, false };
    if (virtq_add(&mq[2 * k + 1], &b, 1, NULL) < 0)
        return false;
    virtq_kick(&mq[2 * k + 1]);
    uint32_t len;
    return virtq_wait_used(&mq[2 * k + 1], &len, ms) >= 0;
}

static void mq_case(void)
{
    unsigned max = mq_start(), pairs = max < 4 ? max : 4;
    struct virtq *cq = &mq[2 * pairs];
    printf("HVQ: mq max_virtqueue_pairs=%u\n", max);
    if (max < 2)
        test_fail("mq: the device has %u pairs", max);
    /* Out of range and malformed: refused with VIRTIO_NET_ERR (1). */
    static const uint8_t bad_len[][6] = { { 4, 0, 2 }, { 4, 0, 2, 0, 0 }, { 4, 0 }, { 4, 1, 2, 0 } };
    static const unsigned bad_n[] = { 3, 5, 2, 4 };
    int r;
    if ((r = pairs_set(cq, 0)) != 1)
        test_fail("mq: VQ_PAIRS_SET 0 acked %d", r);
    if ((r = pairs_set(cq, max + 1)) != 1)
        test_fail("mq: VQ_PAIRS_SET %u (max+1) acked %d", max + 1, r);
    if ((r = pairs_set(cq, 0xffff)) != 1)
        test_fail("mq: VQ_PAIRS_SET 65535 acked %d", r);
    for (unsigned i = 0; i < ARRAY_SIZE(bad_n); i++)
        if ((r = ctrl(cq, bad_len[i], bad_n[i])) != 1)
            test_fail("mq: malformed request %u acked %d", i, r);
    printf("HVQ: mq VQ_PAIRS_SET 0, max+1, 65535 and 4 malformed ones refused\n");
    /* Pair 1 is not enabled: kicks on it, with a frame and receive
     * buffers in its queues, then a storm of them. */
    for (unsigned k = 0; k < 8; k++) {
        struct vbuf b = { big + k * 4096, 4096, true };
        virtq_add(&mq[2], &b, 1, NULL);
    }
    virtq_kick(&mq[2]);
    bool early = mq_tx(1, 200);
    for (uint64_t i = 0; i < 4 * n_arg; i++)
        writew(dev.notify + (2 + i % 2) * dev.notify_mult, (uint16_t)i);
    if (!mq_tx(0, 3000))
        test_fail("mq: pair 0 stopped with kicks on pair 1");
    printf("HVQ: mq kicks on the disabled pair 1 (its frame %s)\n", early ? "sent" : "held");
    /* Enabled: pair 1 transmits (its frame from before goes too). */
    if ((r = pairs_set(cq, max)) != 0)
        test_fail("mq: VQ_PAIRS_SET %u acked %d", max, r);
    if (!mq_tx(1, 3000))
        test_fail("mq: pair 1 does not transmit once enabled");
    if ((r = pairs_set(cq, 1)) != 0)
        test_fail("mq: VQ_PAIRS_SET 1 acked %d", r);
    printf("HVQ: mq pair 1 transmits once enabled\n");
    /* Resets with every pair enabled and busy. */
    for (uint64_t round = 0; round < n_arg; round++) {
        mq_start();
        if (pairs_set(cq, max) != 0)
            test_fail("mq: round %lu: VQ_PAIRS_SET", (unsigned long)round);
        for (unsigned k = 0; k < pairs; k++) {
            for (unsigned j = 0; j < 4; j++) {
                struct vbuf rb = { big + (k * 8 + j) * 4096, 4096, true };
                virtq_add(&mq[2 * k], &rb, 1, NULL);
                memset(big + 0x80000 + (k * 8 + j) * 2048, 0, 12);
                struct vbuf tb = { big + 0x80000 + (k * 8 + j) * 2048, 1514, false };
                virtq_add(&mq[2 * k + 1], &tb, 1, NULL);
            }
            virtq_kick(&mq[2 * k]);
            virtq_kick(&mq[2 * k + 1]);
        }
        virtio_reset(&dev);
    }
    mq_start();
    if (!mq_tx(0, 3000))
        test_fail("mq: pair 0 after the resets");
    printf("HVQ: mq %lu resets with %u pairs busy\n", (unsigned long)n_arg, pairs);
    virtio_reset(&dev);
}

int main(void)
{
    if (!cmdline_get("case", name, sizeof(name)) || !cmdline_get("dev", devname, sizeof(devname)))
        test_fail("case= and dev= are needed");
    n_arg = cmdline_get_u64("n", 0, 100);
    static const struct { const char *n; uint16_t id; } ids[] = {
        { "net", 0x1041 }, { "blk", 0x1042 }, { "con", 0x1043 }, { "rnd", 0x1044 } };
    int bdf = -1;
    for (unsigned i = 0; i < ARRAY_SIZE(ids); i++)
        if (isdev(ids[i].n))
            bdf = pci_find_device(0x1af4, ids[i].id, 0);
    if (bdf < 0 || !virtio_open(&dev, (uint16_t)bdf))
        test_fail("no %s device", devname);
    virtio_setup_irq(&dev, VIRTIO_IRQ_POLL, 0);
    nq = readw(dev.common + 0x12);
    writew(dev.common + 0x16, (uint16_t)work_queue());
    qmax = readw(dev.common + 0x18);
    printf("HVQ: case=%s dev=%s queues=%u qmax=%u\n", name, devname, nq, qmax);
    /* touch what the device may write before the first sample (a page at
     * a time: every guest instruction costs on a software KVM) */
    for (unsigned i = 0; i < sizeof(big); i += 4096)
        big[i] = 0;
    *(volatile uint8_t *)phys_to_ptr(RAM_TOP - 4096) = 0;
    if (!start(16) || !good(&q[work_queue()]))
        test_fail("setup: a good request failed");
    virtio_reset(&dev);
    sample("setup");
    if (is("vq_sizes")) vq_sizes();
    else if (is("vq_ring_ends")) vq_ring_ends();
    else if (is("vq_ring_holes")) vq_ring_holes();
    else if (is("vq_desc_loop")) vq_desc_loop();
    else if (is("vq_indirect_nested")) vq_indirect_nested();
    else if (is("vq_chain_over_limit")) vq_chain_over_limit();
    else if (is("vq_avail_ahead")) vq_avail_ahead();
    else if (is("vq_buf_in_mmio")) vq_buf_in_mmio();
    else if (is("notify_storm")) notify_storm();
    else if (is("reset_mid_io")) reset_mid_io();
    else if (is("big_requests")) blk_big_requests();
    else if (is("restart")) restart();
    else if (is("no_features_ok")) no_features_ok();
    else if (is("starve")) starve();
    else if (is("rx_bad_buffer")) rx_bad_buffer();
    else if (is("mq")) mq_case();
    else test_fail("unknown case %s", name);
    sample("end");
    sane();
    return 0;
}
