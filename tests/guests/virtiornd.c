/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Drives virtio-rnd (1af4:1044) with the runtime's virtio driver.
 * Command line: irq=poll|msix|msi|intx (default msix), features=<hex mask
 * of event-idx (bit 29) and indirect (bit 28) to offer; default both>,
 * move=1 (reprogram BAR 4 to another address first), rounds=<n> (4).
 * Output:
 *   RND: bdf=<ss>.<f> features=0x<hex> irq=<mode>
 *   RND: round <i> direct=<n> chained=<n> indirect=<n>
 *   RND: bytes=<total> distinct=<distinct byte values> irqs=<n>
 *   PASS
 * Each round sends one 64-byte buffer, a 3-segment chain and (when
 * negotiated) a 2-entry indirect table; every used length must equal the
 * buffer size and the bytes must not be all zero.
 */
#include "guest.h"
#include "pci.h"
#include "virtio.h"

static uint8_t qmem[3 * 4096] __attribute__((aligned(4096)));
static uint8_t buf[8][256];
static struct vring_desc itab[4] __attribute__((aligned(16)));
static bool seen[256];

static const char *mode_name[] = { "poll", "msix", "msi", "intx" };

static uint32_t roundtrip(struct virtq *q, const struct vbuf *b, unsigned n, struct vring_desc *it)
{
    unsigned irqs = q->irq_count;
    if (virtq_add(q, b, n, it) < 0)
        test_fail("queue full");
    virtq_kick(q);
    uint32_t len = 0;
    if (virtq_wait_used(q, &len, 5000) < 0)
        test_fail("no used buffer after 5 s (status 0x%x)", virtio_status(q->dev));
    if (q->dev->irq != VIRTIO_IRQ_POLL) {
        /* every used buffer comes with an interrupt (event-idx asks for it) */
        uint64_t deadline = timeout_start(2000);
        sti();
        while (q->irq_count == irqs && !timeout_expired(deadline))
            cpu_relax();
        cli();
        if (q->irq_count == irqs)
            test_fail("no interrupt for a used buffer within 2 s");
    }
    return len;
}

static void check_bytes(const uint8_t *p, unsigned n)
{
    unsigned zero = 0;
    for (unsigned i = 0; i < n; i++) {
        seen[p[i]] = true;
        zero += p[i] == 0;
    }
    if (zero == n)
        test_fail("all %u random bytes are zero", n);
}

int main(void)
{
    char irq[16];
    enum virtio_irq_mode mode = VIRTIO_IRQ_MSIX;
    bool have_irq = cmdline_get("irq", irq, sizeof(irq));
    for (unsigned i = 0; have_irq && i < 4; i++)
        if (!strcmp(irq, mode_name[i]))
            mode = (enum virtio_irq_mode)i;
    uint64_t wanted = cmdline_get_u64("features", 16, (1ull << 28) | (1ull << 29));
    unsigned rounds = (unsigned)cmdline_get_u64("rounds", 10, 4);

    int bdf = pci_find_device(0x1af4, 0x1044, 0);
    if (bdf < 0)
        test_fail("no virtio-rnd device");
    if (cmdline_get_u64("move", 10, 0)) {
        struct pci_bar_info b = pci_bar((uint16_t)bdf, 4);
        uint64_t to = 0xd0000000;
        pci_bar_set((uint16_t)bdf, 4, to);
        printf("RND: BAR4 moved from 0x%lx to 0x%lx\n", (unsigned long)b.addr, (unsigned long)to);
    }
    struct virtio_dev d;
    if (!virtio_open(&d, (uint16_t)bdf))
        test_fail("not a modern virtio device");
    if (!virtio_negotiate(&d, wanted))
        test_fail("FEATURES_OK refused");
    virtio_setup_irq(&d, mode, 0x40);
    struct virtq q;
    if (!virtq_setup(&d, &q, 0, 64, qmem, 1))
        test_fail("queue 0 missing");
    virtio_driver_ok(&d);
    printf("RND: bdf=%02x.%x features=0x%lx irq=%s\n", PCI_SLOT(bdf), PCI_FUNC(bdf),
           (unsigned long)d.features, mode_name[mode]);

    unsigned total = 0;
    bool indirect = d.features & (1ull << VIRTIO_F_INDIRECT_DESC);
    for (unsigned r = 0; r < rounds; r++) {
        memset(buf, 0, sizeof(buf));
        struct vbuf one = { buf[0], 64, true };
        uint32_t a = roundtrip(&q, &one, 1, NULL);
        if (a != 64)
            test_fail("direct: used len %u, expected 64", a);
        check_bytes(buf[0], 64);
        struct vbuf three[3] = { { buf[1], 16, true }, { buf[2], 100, true }, { buf[3], 8, true } };
        uint32_t b = roundtrip(&q, three, 3, NULL);
        if (b != 124)
            test_fail("chained: used len %u, expected 124", b);
        check_bytes(buf[2], 100);
        uint32_t c = 0;
        if (indirect) {
            struct vbuf two[2] = { { buf[4], 32, true }, { buf[5], 200, true } };
            c = roundtrip(&q, two, 2, itab);
            if (c != 232)
                test_fail("indirect: used len %u, expected 232", c);
            check_bytes(buf[5], 200);
        }
        total += a + b + c;
        printf("RND: round %u direct=%u chained=%u indirect=%u\n", r, a, b, c);
    }
    unsigned distinct = 0;
    for (unsigned i = 0; i < 256; i++)
        distinct += seen[i];
    printf("RND: bytes=%u distinct=%u irqs=%u\n", total, distinct, q.irq_count);
    if (distinct < 100)
        test_fail("only %u distinct byte values in %u random bytes", distinct, total);
    if (mode != VIRTIO_IRQ_POLL && q.irq_count == 0)
        test_fail("no interrupt arrived in mode %s", mode_name[mode]);
    virtio_reset(&d);
    return 0;
}
