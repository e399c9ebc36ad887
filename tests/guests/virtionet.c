/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Drives virtio-net (1af4:1041): ARP and ICMP echo with the host end of a
 * tap, and raw Ethernet frames both ways. Command line (all optional):
 *   ip=<a.b.c.d> (10.77.0.2) peer=<a.b.c.d> (10.77.0.1)
 *   count=<pings> (3) size=<ICMP payload bytes> (56)
 *   mrg=0|1 (1: offer mergeable receive buffers) rxbuf=<bytes per receive buffer> (2048)
 *   raw=<n>: send n frames of ethertype 0x88b5 (payload "khyve raw <i>") and
 *            wait for n frames of ethertype 0x88b6, printing their payload
 *   irq=poll|msix (msix)
 * Output:
 *   NET: mac=<xx:xx:xx:xx:xx:xx> status=<n> mtu=<n> mrg=<0|1>
 *   NET: arp peer=<ip> mac=<mac>
 *   NET: ping seq=<i> bytes=<n> ok
 *   NET: raw rx <payload>
 *   NET: rx frames=<n> max_num_buffers=<n>
 *   PASS
 */
#include "guest.h"
#include "netbytes.h"
#include "pci.h"
#include "virtio.h"

#define F_MTU 3
#define F_MAC 5
#define F_MRG 15
#define F_STATUS 16
#define RXQ_SIZE 64
#define HDR 12
#define MAXFRAME 9216

static uint8_t rxmem[3 * 4096] __attribute__((aligned(4096)));
static uint8_t txmem[3 * 4096] __attribute__((aligned(4096)));
static uint8_t rxbufs[RXQ_SIZE][4096] __attribute__((aligned(4096)));
static uint8_t txhdr[HDR];
static uint8_t txframe[MAXFRAME];
static uint8_t frame[MAXFRAME + HDR];
static size_t frame_len;
static struct virtio_dev dev;
static struct virtq rxq, txq;
static uint8_t mac[6], peer_mac[6];
static uint32_t my_ip, peer_ip;
static unsigned rxbuf_len, rx_frames, max_bufs;
static bool mrg;

static uint32_t parse_ip(const char *key, uint32_t def)
{
    char s[20];
    if (!cmdline_get(key, s, sizeof(s)))
        return def;
    uint32_t ip = 0;
    char *p = s;
    for (int i = 0; i < 4; i++) {
        ip = ip << 8 | (uint32_t)strtoul(p, &p, 10);
        if (*p == '.')
            p++;
    }
    return ip;
}


static void post_rx(int i)
{
    struct vbuf b = { rxbufs[i], rxbuf_len, true };
    if (virtq_add(&rxq, &b, 1, NULL) < 0)
        test_fail("rx queue full");
}

static void send_frame(size_t len)
{
    if (len < 60) {
        memset(txframe + len, 0, 60 - len);
        len = 60;
    }
    memset(txhdr, 0, HDR);
    struct vbuf b[2] = { { txhdr, HDR, false }, { txframe, (uint32_t)len, false } };
    if (virtq_add(&txq, b, 2, NULL) < 0)
        test_fail("tx queue full");
    virtq_kick(&txq);
    uint32_t l;
    if (virtq_wait_used(&txq, &l, 5000) < 0)
        test_fail("transmit not completed in 5 s");
}

/* Next received frame into frame[] (header stripped); false on timeout. */
static bool recv_frame(unsigned timeout_ms)
{
    uint32_t len;
    int head = virtq_wait_used(&rxq, &len, timeout_ms);
    if (head < 0)
        return false;
    /* heads are buffer indexes: one descriptor per buffer */
    uint8_t *b = rxbufs[head];
    unsigned nbufs = mrg ? (unsigned)(b[10] | b[11] << 8) : 1;
    if (nbufs == 0 || nbufs > 64)
        test_fail("bad num_buffers %u", nbufs);
    if (nbufs > max_bufs)
        max_bufs = nbufs;
    size_t total = 0;
    for (unsigned i = 0;; i++) {
        size_t take = len;
        if (total + take > sizeof(frame))
            test_fail("frame too long");
        memcpy(frame + total, b, take);
        total += take;
        post_rx(head);
        if (i + 1 == nbufs)
            break;
        head = virtq_wait_used(&rxq, &len, 1000);
        if (head < 0)
            test_fail("buffer %u of %u of a frame missing", i + 1, nbufs);
        b = rxbufs[head];
    }
    virtq_kick(&rxq);
    if (total < HDR + 14)
        test_fail("runt frame of %lu bytes", (unsigned long)total);
    frame_len = total - HDR;
    memmove(frame, frame + HDR, frame_len);
    rx_frames++;
    return true;
}

static void eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, mac, 6);
    put16(f + 12, type);
}

static void arp(void)
{
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    for (int attempt = 0; attempt < 5; attempt++) {
        uint8_t *f = txframe;
        eth(f, bcast, 0x0806);
        uint8_t *a = f + 14;
        put16(a, 1); put16(a + 2, 0x0800); a[4] = 6; a[5] = 4; put16(a + 6, 1);
        memcpy(a + 8, mac, 6); put32(a + 14, my_ip);
        memset(a + 18, 0, 6); put32(a + 24, peer_ip);
        send_frame(14 + 28);
        uint64_t deadline = timeout_start(2000);
        while (!timeout_expired(deadline)) {
            if (!recv_frame(500))
                continue;
            const uint8_t *r = frame + 14;
            if (get16(frame + 12) == 0x0806 && get16(r + 6) == 2 && get32(r + 14) == peer_ip) {
                memcpy(peer_mac, r + 8, 6);
                printf("NET: arp peer=%u.%u.%u.%u mac=%02x:%02x:%02x:%02x:%02x:%02x\n",
                       peer_ip >> 24, (peer_ip >> 16) & 255, (peer_ip >> 8) & 255, peer_ip & 255,
                       peer_mac[0], peer_mac[1], peer_mac[2], peer_mac[3], peer_mac[4], peer_mac[5]);
                return;
            }
        }
    }
    test_fail("no ARP reply from the peer");
}

static void ping(unsigned seq, unsigned size)
{
    uint8_t *f = txframe;
    eth(f, peer_mac, 0x0800);
    uint8_t *ip = f + 14, *icmp = ip + 20;
    size_t iplen = 20 + 8 + size;
    memset(ip, 0, 20);
    ip[0] = 0x45; put16(ip + 2, (uint16_t)iplen); put16(ip + 4, (uint16_t)seq);
    ip[8] = 64; ip[9] = 1; put32(ip + 12, my_ip); put32(ip + 16, peer_ip);
    put16(ip + 10, csum(ip, 20));
    icmp[0] = 8; icmp[1] = 0; put16(icmp + 2, 0); put16(icmp + 4, 0x4b48); put16(icmp + 6, (uint16_t)seq);
    for (unsigned i = 0; i < size; i++)
        icmp[8 + i] = (uint8_t)(i * 13 + seq);
    put16(icmp + 2, csum(icmp, 8 + size));
    send_frame(14 + iplen);
    uint64_t deadline = timeout_start(5000);
    while (!timeout_expired(deadline)) {
        if (!recv_frame(1000))
            continue;
        const uint8_t *rip = frame + 14, *ricmp = rip + 20;
        if (get16(frame + 12) != 0x0800 || rip[9] != 1 || ricmp[0] != 0 ||
            get16(ricmp + 6) != seq || get16(ricmp + 4) != 0x4b48)
            continue;
        if (frame_len < 14 + 28 + size || memcmp(ricmp + 8, icmp + 8, size))
            test_fail("echo reply %u has a different payload", seq);
        printf("NET: ping seq=%u bytes=%u ok\n", seq, size);
        return;
    }
    test_fail("no echo reply for seq %u", seq);
}

static void raw(unsigned n)
{
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    for (unsigned i = 0; i < n; i++) {
        eth(txframe, bcast, 0x88b5);
        int l = snprintf((char *)txframe + 14, 64, "khyve raw %u", i);
        send_frame(14 + (size_t)l + 1);
    }
    unsigned got = 0;
    uint64_t deadline = timeout_start(10000);
    while (got < n && !timeout_expired(deadline)) {
        if (!recv_frame(1000) || get16(frame + 12) != 0x88b6)
            continue;
        frame[frame_len < sizeof(frame) - 1 ? frame_len : sizeof(frame) - 1] = 0;
        printf("NET: raw rx %s\n", (char *)frame + 14);
        got++;
    }
    if (got < n)
        test_fail("only %u of %u raw frames came back", got, n);
}

int main(void)
{
    char irq[8] = "msix";
    cmdline_get("irq", irq, sizeof(irq));
    my_ip = parse_ip("ip", 0x0a4d0002);
    peer_ip = parse_ip("peer", 0x0a4d0001);
    unsigned count = (unsigned)cmdline_get_u64("count", 10, 3);
    unsigned size = (unsigned)cmdline_get_u64("size", 10, 56);
    rxbuf_len = (unsigned)cmdline_get_u64("rxbuf", 10, 2048);
    if (rxbuf_len < 64 || rxbuf_len > 4096)
        test_fail("rxbuf must be 64-4096");
    int bdf = pci_find_device(0x1af4, 0x1041, 0);
    if (bdf < 0 || !virtio_open(&dev, (uint16_t)bdf))
        test_fail("no virtio-net device");
    uint64_t want = 1ull << F_MAC | 1ull << F_STATUS | 1ull << F_MTU |
                    1ull << VIRTIO_F_EVENT_IDX | 1ull << VIRTIO_F_INDIRECT_DESC;
    if (cmdline_get_u64("mrg", 10, 1))
        want |= 1ull << F_MRG;
    if (!virtio_negotiate(&dev, want))
        test_fail("FEATURES_OK refused");
    mrg = dev.features & (1ull << F_MRG);
    virtio_setup_irq(&dev, strcmp(irq, "poll") ? VIRTIO_IRQ_MSIX : VIRTIO_IRQ_POLL, 0x60);
    if (!virtq_setup(&dev, &rxq, 0, RXQ_SIZE, rxmem, 1) || !virtq_setup(&dev, &txq, 1, 64, txmem, 2))
        test_fail("queues missing");
    for (int i = 0; i < RXQ_SIZE; i++)
        post_rx(i);
    virtio_driver_ok(&dev);
    virtq_kick(&rxq);
    for (int i = 0; i < 6; i++)
        mac[i] = virtio_cfg_read8(&dev, (unsigned)i);
    printf("NET: mac=%02x:%02x:%02x:%02x:%02x:%02x status=%u mtu=%u mrg=%d\n", mac[0], mac[1],
           mac[2], mac[3], mac[4], mac[5], virtio_cfg_read16(&dev, 6),
           (dev.features & (1ull << F_MTU)) ? virtio_cfg_read16(&dev, 10) : 0, mrg);
    unsigned nraw = (unsigned)cmdline_get_u64("raw", 10, 0);
    if (nraw)
        raw(nraw);
    if (count) {
        arp();
        for (unsigned i = 1; i <= count; i++)
            ping(i, size);
    }
    printf("NET: rx frames=%u max_num_buffers=%u\n", rx_frames, max_bufs);
    virtio_reset(&dev);
    return 0;
}
