/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Throughput of virtio-blk and virtio-net for bench/virtio (the same guest
 * runs under khyve and under QEMU). Command line:
 *   mode=blk-read|blk-write|net-tx|net-rx  n=<operations or frames>
 *   size=<bytes per request or frame> depth=<requests in flight>
 *   sleep=1|0: halt until the device's interrupt (default) or spin
 *   udp=1 (net-tx): IPv4/UDP frames 10.0.2.15 -> 10.0.2.2:9 instead of raw
 *     broadcast ones, so that a user-mode network (slirp) forwards them
 *   garp=1 (net-rx): announce 10.0.2.15 (a gratuitous ARP) first, so that a
 *     user-mode network knows where to send (its hostfwd'ed UDP)
 * Output:
 *   BENCH: ready mode=<mode>
 *   BENCH: start
 *   BENCH: end ops=<n> bytes=<n> cycles=<TSC cycles between start and end> kicks=<n> irqs=<n>
 *   PASS
 * The host times "start" to "end" as the lines arrive. net-rx starts its
 * clock at the first frame it receives (the host sends without pause).
 * BARs a firmware did not assign are assigned here (QEMU -M pc with qboot).
 */
#include "guest.h"
#include "pci.h"
#include "virtio.h"

#define QS 256
#define MAXSZ 65536

static uint8_t q0mem[6 * 4096] __attribute__((aligned(4096)));
static uint8_t q1mem[6 * 4096] __attribute__((aligned(4096)));
static uint8_t bufs[64][MAXSZ] __attribute__((aligned(4096)));
static uint8_t rxb[QS][2048];
static uint8_t hdrs[64][16];
static volatile uint8_t status[64];
static struct virtio_dev dev;
static struct virtq q0, q1;
static bool sleep_mode;

struct blk_hdr {
    uint32_t type, reserved;
    uint64_t sector;
};

static void setup(uint16_t devid, unsigned nq, bool msix, uint64_t want)
{
    pci_assign_bars();
    int bdf = pci_find_device(0x1af4, devid, 0);
    if (bdf < 0 || !virtio_open(&dev, (uint16_t)bdf))
        test_fail("no virtio device 1af4:%04x", devid);
    if (!virtio_negotiate(&dev, want | 1ull << VIRTIO_F_EVENT_IDX))
        test_fail("FEATURES_OK refused");
    virtio_setup_irq(&dev, msix ? VIRTIO_IRQ_MSIX : VIRTIO_IRQ_POLL, 0x70);
    if (!virtq_setup(&dev, &q0, 0, QS, q0mem, 1) || (nq > 1 && !virtq_setup(&dev, &q1, 1, QS, q1mem, 2)))
        test_fail("queues missing");
}

static int wait_used(struct virtq *q)
{
    uint32_t len;
    int h = sleep_mode ? virtq_sleep_used(q, &len, 10000) : virtq_wait_used(q, &len, 10000);
    if (h < 0)
        test_fail("no completion in 10 s");
    return h;
}

static void blk(bool write, unsigned n, unsigned size, unsigned depth)
{
    setup(0x1042, 1, true, 0);
    virtio_driver_ok(&dev);
    uint64_t cap = virtio_cfg_read64(&dev, 0);
    uint64_t span = cap * 512 / size;
    if (!span)
        test_fail("disk too small");
    printf("BENCH: ready mode=blk-%s\n", write ? "write" : "read");
    puts("BENCH: start");
    uint64_t t0 = rdtsc();
    unsigned issued = 0, done = 0, inflight = 0;
    int slot_of_head[QS];
    unsigned free_slots[64], nfree = 0;
    for (unsigned i = 0; i < depth; i++)
        free_slots[nfree++] = i;
    while (done < n) {
        while (issued < n && inflight < depth) {
            unsigned s = free_slots[--nfree];
            struct blk_hdr *h = (struct blk_hdr *)hdrs[s];
            *h = (struct blk_hdr){ write ? 1u : 0u, 0, (issued % span) * (size / 512) };
            struct vbuf b[3] = { { h, sizeof(*h), false }, { bufs[s], size, !write },
                                 { (void *)&status[s], 1, true } };
            int head = virtq_add(&q0, b, 3, NULL);
            if (head < 0)
                test_fail("queue full");
            slot_of_head[head] = (int)s;
            issued++;
            inflight++;
        }
        virtq_kick(&q0);
        int head = wait_used(&q0);
        unsigned s = (unsigned)slot_of_head[head];
        if (status[s])
            test_fail("request failed with status %u", status[s]);
        free_slots[nfree++] = s;
        inflight--;
        done++;
    }
    uint64_t t1 = rdtsc();
    printf("BENCH: end ops=%u bytes=%lu cycles=%lu kicks=%u irqs=%u\n", n, (unsigned long)n * size,
           (unsigned long)(t1 - t0), q0.kicks, q0.irq_count);
}

static const uint8_t my_ip[4] = { 10, 0, 2, 15 }, gw_ip[4] = { 10, 0, 2, 2 };

/* An IPv4/UDP frame of size bytes from my_ip to gw_ip port 9 (discard). */
static void udp_frame(uint8_t *f, unsigned size)
{
    f[12] = 0x08;
    f[13] = 0x00;
    uint8_t *ip = f + 14;
    unsigned tot = size - 14;
    memset(ip, 0, 28);
    ip[0] = 0x45;
    ip[2] = (uint8_t)(tot >> 8);
    ip[3] = (uint8_t)tot;
    ip[8] = 64;
    ip[9] = 17;
    memcpy(ip + 12, my_ip, 4);
    memcpy(ip + 16, gw_ip, 4);
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    ip[10] = (uint8_t)(~sum >> 8);
    ip[11] = (uint8_t)~sum;
    ip[20] = 0x30; /* source port 12345 */
    ip[21] = 0x39;
    ip[23] = 9;
    ip[24] = (uint8_t)((tot - 20) >> 8);
    ip[25] = (uint8_t)(tot - 20); /* checksum 0: none */
}

static void net_tx(unsigned n, unsigned size, unsigned depth, bool udp)
{
    setup(0x1041, 2, true, 1ull << 5);
    virtio_driver_ok(&dev);
    uint8_t mac[6];
    for (int i = 0; i < 6; i++)
        mac[i] = virtio_cfg_read8(&dev, (unsigned)i);
    if (udp && (size < 14 + 28 || size > 1514))
        test_fail("udp=1 needs size 42-1514");
    for (unsigned s = 0; s < 64; s++) {
        memset(bufs[s], 0xff, 6);
        memcpy(bufs[s] + 6, mac, 6);
        bufs[s][12] = 0x88;
        bufs[s][13] = 0xb5;
        if (udp)
            udp_frame(bufs[s], size);
        memset(hdrs[s], 0, 12);
    }
    printf("BENCH: ready mode=net-tx\n");
    puts("BENCH: start");
    uint64_t t0 = rdtsc();
    unsigned sent = 0, done = 0, inflight = 0;
    while (done < n) {
        while (sent < n && inflight < depth) {
            unsigned s = sent % 64;
            struct vbuf b[2] = { { hdrs[s], 12, false }, { bufs[s], size, false } };
            if (virtq_add(&q1, b, 2, NULL) < 0)
                break;
            sent++;
            inflight++;
        }
        virtq_kick(&q1);
        wait_used(&q1);
        done++;
        inflight--;
        while (virtq_get_used(&q1, NULL) >= 0) {
            done++;
            inflight--;
        }
    }
    uint64_t t1 = rdtsc();
    printf("BENCH: end ops=%u bytes=%lu cycles=%lu kicks=%u irqs=%u\n", n, (unsigned long)n * size,
           (unsigned long)(t1 - t0), q1.kicks, q1.irq_count);
}

static void net_rx(unsigned n, bool garp)
{
    setup(0x1041, 2, true, 1ull << 5 | 1ull << 15);
    for (unsigned i = 0; i < QS; i++) {
        struct vbuf b = { rxb[i], 2048, true };
        virtq_add(&q0, &b, 1, NULL);
    }
    virtio_driver_ok(&dev);
    virtq_kick(&q0);
    if (garp) {
        uint8_t *f = bufs[0];
        memset(f, 0, 60);
        memset(f, 0xff, 6);
        for (int i = 0; i < 6; i++)
            f[6 + i] = f[22 + i] = virtio_cfg_read8(&dev, (unsigned)i);
        f[12] = 0x08, f[13] = 0x06;               /* ARP */
        f[15] = 1, f[16] = 0x08, f[18] = 6, f[19] = 4; /* Ethernet, IPv4 */
        f[21] = 1;                                 /* request */
        memcpy(f + 28, my_ip, 4);                  /* sender */
        memcpy(f + 38, my_ip, 4);                  /* target: itself */
        memset(hdrs[0], 0, 12);
        struct vbuf b[2] = { { hdrs[0], 12, false }, { f, 60, false } };
        virtq_add(&q1, b, 2, NULL);
        virtq_kick(&q1);
        wait_used(&q1);
    }
    printf("BENCH: ready mode=net-rx\n");
    unsigned got = 0;
    uint64_t bytes = 0, t0 = 0;
    while (got < n) {
        uint32_t len;
        int h = sleep_mode ? virtq_sleep_used(&q0, &len, 20000) : virtq_wait_used(&q0, &len, 20000);
        if (h < 0)
            test_fail("only %u of %u frames arrived", got, n);
        if (got == 0) {
            puts("BENCH: start");
            t0 = rdtsc();
        }
        got++;
        bytes += len;
        struct vbuf b = { rxb[h], 2048, true };
        virtq_add(&q0, &b, 1, NULL);
        if ((got & 15) == 0)
            virtq_kick(&q0);
    }
    uint64_t t1 = rdtsc();
    printf("BENCH: end ops=%u bytes=%lu cycles=%lu kicks=%u irqs=%u\n", n, (unsigned long)bytes,
           (unsigned long)(t1 - t0), q0.kicks, q0.irq_count);
}

int main(void)
{
    char mode[16] = "blk-read";
    cmdline_get("mode", mode, sizeof(mode));
    unsigned n = (unsigned)cmdline_get_u64("n", 10, 1000);
    unsigned size = (unsigned)cmdline_get_u64("size", 10, 4096);
    unsigned depth = (unsigned)cmdline_get_u64("depth", 10, 16);
    sleep_mode = cmdline_get_u64("sleep", 10, 1);
    if (size > MAXSZ || depth == 0 || depth > 64)
        test_fail("size or depth out of range");
    if (!strcmp(mode, "blk-read"))
        blk(false, n, size, depth);
    else if (!strcmp(mode, "blk-write"))
        blk(true, n, size, depth);
    else if (!strcmp(mode, "net-tx"))
        net_tx(n, size, depth, cmdline_get_u64("udp", 10, 0));
    else if (!strcmp(mode, "net-rx"))
        net_rx(n, cmdline_get_u64("garp", 10, 0));
    else if (!strcmp(mode, "kick")) {
        setup(0x1042, 1, true, 0);
        virtio_driver_ok(&dev);
        puts("BENCH: start");
        uint64_t t0 = rdtsc();
        for (unsigned i = 0; i < n; i++)
            writew(q0.notify, 0);
        printf("BENCH: end ops=%u bytes=0 cycles=%lu\n", n, (unsigned long)(rdtsc() - t0));
    }
    else
        test_fail("unknown mode %s", mode);
    virtio_reset(&dev);
    return 0;
}
