/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Drives virtio-blk (1af4:1042). Command line (all optional):
 *   irq=poll|msix (default msix)
 *   read=<sector> rcount=<n>        read n sectors (default 0, 8), print their CRC
 *   write=<sector> wcount=<n> seed=<n>  write n sectors of the pattern
 *                                   byte[j] of sector s = (s * 31 + j * 7 + seed) & 0xff
 *   flush=0|1 (default 1)           flush after writing
 *   zero=<sector> zcount=<n>        WRITE_ZEROES (with unmap=1: may unmap)
 *   discard=<sector> dcount=<n>     DISCARD
 *   hold=1                          after everything, print "BLK: holding" and wait forever
 * Output:
 *   BLK: capacity=<sectors> blk_size=<n> phys_exp=<n> seg_max=<n> ro=<0|1> flush=<0|1> discard=<0|1> wz=<0|1>
 *   BLK: serial=<id>
 *   BLK: read sector=<s> count=<n> status=<st> crc32=0x<hex>
 *   BLK: write sector=<s> count=<n> status=<st>
 *   BLK: flush status=<st>
 *   BLK: readback ok           (after a successful write: read back and compared)
 *   BLK: zero sector=<s> count=<n> status=<st>
 *   BLK: discard sector=<s> count=<n> status=<st>
 *   BLK: beyond-end status=<st>  (a read past the end: must be 1, IOERR)
 *   BLK: bad-type status=<st>    (request type 99: must be 2, UNSUPP)
 *   PASS
 * Statuses: 0 OK, 1 IOERR, 2 UNSUPP. Writes are sent as a 3-segment chain
 * (header, data, status), reads through an indirect table when negotiated.
 */
#include "guest.h"
#include "pci.h"
#include "virtio.h"

#define F_SEG_MAX 2
#define F_RO 5
#define F_BLK_SIZE 6
#define F_FLUSH 9
#define F_TOPOLOGY 10
#define F_DISCARD 13
#define F_WRITE_ZEROES 14

#define MAXSEC 256

static uint8_t qmem[5 * 4096] __attribute__((aligned(4096)));
static uint8_t data[MAXSEC * 512] __attribute__((aligned(4096)));
static uint8_t check[MAXSEC * 512] __attribute__((aligned(4096)));
static struct vring_desc itab[4] __attribute__((aligned(16)));
static struct virtio_dev dev;
static struct virtq q;

struct hdr {
    uint32_t type, reserved;
    uint64_t sector;
};

static struct hdr h;
static struct { uint64_t sector; uint32_t num, flags; } dwz;
static volatile uint8_t status;
static char serial[21];

static uint8_t request(uint32_t type, uint64_t sector, void *buf, uint32_t len, bool write_to_dev)
{
    h = (struct hdr){ type, 0, sector };
    status = 0xff;
    struct vbuf b[3];
    unsigned n = 0;
    b[n++] = (struct vbuf){ &h, sizeof(h), false };
    if (len)
        b[n++] = (struct vbuf){ buf, len, !write_to_dev };
    b[n++] = (struct vbuf){ (void *)&status, 1, true };
    bool ind = (dev.features & (1ull << VIRTIO_F_INDIRECT_DESC)) && !write_to_dev;
    if (virtq_add(&q, b, n, ind ? itab : NULL) < 0)
        test_fail("queue full");
    virtq_kick(&q);
    uint32_t used;
    if (virtq_wait_used(&q, &used, 10000) < 0)
        test_fail("request type %u: no answer in 10 s (device status 0x%x)", type, virtio_status(&dev));
    return status;
}

static void pattern(uint8_t *p, uint64_t sector, unsigned count, unsigned seed)
{
    for (unsigned s = 0; s < count; s++)
        for (unsigned j = 0; j < 512; j++)
            p[s * 512 + j] = (uint8_t)((sector + s) * 31 + j * 7 + seed);
}

static uint64_t arg(const char *k, uint64_t def) { return cmdline_get_u64(k, 0, def); }

int main(void)
{
    char irq[8] = "msix";
    cmdline_get("irq", irq, sizeof(irq));
    int bdf = pci_find_device(0x1af4, 0x1042, 0);
    if (bdf < 0 || !virtio_open(&dev, (uint16_t)bdf))
        test_fail("no virtio-blk device");
    uint64_t want = 1ull << F_SEG_MAX | 1ull << F_RO | 1ull << F_BLK_SIZE | 1ull << F_FLUSH |
                    1ull << F_TOPOLOGY | 1ull << F_DISCARD | 1ull << F_WRITE_ZEROES |
                    1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX;
    if (!virtio_negotiate(&dev, want))
        test_fail("FEATURES_OK refused");
    virtio_setup_irq(&dev, strcmp(irq, "poll") ? VIRTIO_IRQ_MSIX : VIRTIO_IRQ_POLL, 0x50);
    if (!virtq_setup(&dev, &q, 0, 128, qmem, 1))
        test_fail("no queue 0");
    virtio_driver_ok(&dev);
    uint64_t f = dev.features;
    uint64_t cap = virtio_cfg_read64(&dev, 0);
    printf("BLK: capacity=%lu blk_size=%u phys_exp=%u seg_max=%u ro=%d flush=%d discard=%d wz=%d\n",
           (unsigned long)cap, virtio_cfg_read32(&dev, 20), virtio_cfg_read8(&dev, 24),
           virtio_cfg_read32(&dev, 12), !!(f & (1ull << F_RO)), !!(f & (1ull << F_FLUSH)),
           !!(f & (1ull << F_DISCARD)), !!(f & (1ull << F_WRITE_ZEROES)));

    uint8_t st = request(8, 0, serial, 20, false);
    printf("BLK: serial=%s status=%u\n", serial, st);

    uint64_t rs = arg("read", 0), rc = arg("rcount", 8);
    if (rc > MAXSEC)
        rc = MAXSEC;
    if (rc) {
        st = request(0, rs, data, (uint32_t)rc * 512, false);
        printf("BLK: read sector=%lu count=%lu status=%u crc32=0x%08x\n", (unsigned long)rs,
               (unsigned long)rc, st, crc32(0, data, rc * 512));
    }

    if (cmdline_has("write")) {
        uint64_t ws = arg("write", 0), wc = arg("wcount", 8), seed = arg("seed", 1);
        if (wc > MAXSEC)
            wc = MAXSEC;
        pattern(data, ws, (unsigned)wc, (unsigned)seed);
        st = request(1, ws, data, (uint32_t)wc * 512, true);
        printf("BLK: write sector=%lu count=%lu status=%u\n", (unsigned long)ws, (unsigned long)wc, st);
        bool ok = st == 0;
        if (arg("flush", 1)) {
            uint8_t fs = request(4, 0, NULL, 0, false);
            printf("BLK: flush status=%u\n", fs);
        }
        if (ok) {
            memset(check, 0, sizeof(check));
            uint8_t rst = request(0, ws, check, (uint32_t)wc * 512, false);
            if (rst || memcmp(check, data, wc * 512))
                test_fail("read back differs from what was written (status %u)", rst);
            printf("BLK: readback ok\n");
        }
    }
    if (cmdline_has("zero")) {
        dwz.sector = arg("zero", 0);
        dwz.num = (uint32_t)arg("zcount", 8);
        dwz.flags = (uint32_t)arg("unmap", 0);
        st = request(13, 0, &dwz, sizeof(dwz), true);
        printf("BLK: zero sector=%lu count=%u status=%u\n", (unsigned long)dwz.sector, dwz.num, st);
    }
    if (cmdline_has("discard")) {
        dwz.sector = arg("discard", 0);
        dwz.num = (uint32_t)arg("dcount", 8);
        dwz.flags = 0;
        st = request(11, 0, &dwz, sizeof(dwz), true);
        printf("BLK: discard sector=%lu count=%u status=%u\n", (unsigned long)dwz.sector, dwz.num, st);
    }
    st = request(0, cap, data, 512, false);
    printf("BLK: beyond-end status=%u\n", st);
    if (st != 1)
        test_fail("a read past the end did not fail with IOERR");
    st = request(99, 0, NULL, 0, false);
    printf("BLK: bad-type status=%u\n", st);
    if (st != 2)
        test_fail("an unknown request type did not give UNSUPP");
    if (virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET)
        test_fail("the device needs a reset");
    if (arg("hold", 0)) {
        printf("BLK: holding\n");
        for (;;)
            __asm__ volatile("sti; hlt" ::: "memory");
    }
    return 0;
}
