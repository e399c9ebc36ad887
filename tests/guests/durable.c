/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Writes numbered records to virtio-blk for ever, flushing after each
 * batch, and says on COM1 what the device acknowledged, so that a test can
 * kill the VMM at any moment and check that every record it was told was
 * durable is in the image (tests/integration/test_durability.py).
 * Command line (all optional):
 *   start=<n>     the first record's number (default 1)
 *   tag=<n>       a 32-bit tag written into every record (the test's cycle)
 *   base=<sector> slots=<n>   record n goes to sector base + n % slots
 *                             (default 0 and the disk's size)
 *   batch=<n>     1..n records (random) between flushes (default 8)
 *   seed=<n>      for the batch sizes
 *   max=<n>       stop (PASS) after this many records (default: never)
 * Output:
 *   DUR: start=<n> slots=<n>
 *   W <n>    the write of record n completed (status OK), not flushed yet
 *   D <n>    a flush completed after records up to n were written: the
 *            device promised records start..n are durable
 *   FAIL ... a request failed or the device needs a reset
 * A record (512 bytes): "KHYVDREC", u64 number, u32 tag, u32 0, bytes
 * 24..507 = (number * 7 + i) & 0xff, then the CRC-32 of bytes 0..507.
 */
#include "guest.h"
#include "pci.h"
#include "virtio.h"

#define F_FLUSH 9

static uint8_t qmem[5 * 4096] __attribute__((aligned(4096)));
static uint8_t rec[512] __attribute__((aligned(4096)));
static struct virtio_dev dev;
static struct virtq q;

static struct {
    uint32_t type, reserved;
    uint64_t sector;
} h;
static volatile uint8_t status;

static uint8_t request(uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
    h.type = type;
    h.reserved = 0;
    h.sector = sector;
    status = 0xff;
    struct vbuf b[3];
    unsigned n = 0;
    b[n++] = (struct vbuf){ &h, sizeof(h), false };
    if (len)
        b[n++] = (struct vbuf){ buf, len, false };
    b[n++] = (struct vbuf){ (void *)&status, 1, true };
    if (virtq_add(&q, b, n, NULL) < 0)
        test_fail("queue full");
    virtq_kick(&q);
    uint32_t used;
    if (virtq_wait_used(&q, &used, 30000) < 0)
        test_fail("request type %u: no answer in 30 s", type);
    return status;
}

static void make_record(uint64_t n, uint32_t tag)
{
    memcpy(rec, "KHYVDREC", 8);
    memcpy(rec + 8, &n, 8);
    memcpy(rec + 16, &tag, 4);
    memset(rec + 20, 0, 4);
    for (unsigned i = 24; i < 508; i++)
        rec[i] = (uint8_t)(n * 7 + i);
    uint32_t c = crc32(0, rec, 508);
    memcpy(rec + 508, &c, 4);
}

static uint64_t rng;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(void)
{
    int bdf = pci_find_device(0x1af4, 0x1042, 0);
    if (bdf < 0 || !virtio_open(&dev, (uint16_t)bdf))
        test_fail("no virtio-blk device");
    if (!virtio_negotiate(&dev, 1ull << F_FLUSH))
        test_fail("FEATURES_OK refused");
    if (!(dev.features & (1ull << F_FLUSH)))
        test_fail("the device offers no flush");
    virtio_setup_irq(&dev, VIRTIO_IRQ_POLL, 0x50);
    if (!virtq_setup(&dev, &q, 0, 16, qmem, 1))
        test_fail("no queue 0");
    virtio_driver_ok(&dev);
    uint64_t cap = virtio_cfg_read64(&dev, 0);
    uint64_t seq = cmdline_get_u64("start", 0, 1);
    uint32_t tag = (uint32_t)cmdline_get_u64("tag", 0, 0);
    uint64_t base = cmdline_get_u64("base", 0, 0);
    uint64_t slots = cmdline_get_u64("slots", 0, cap > base ? cap - base : 0);
    uint64_t batch = cmdline_get_u64("batch", 0, 8);
    uint64_t max = cmdline_get_u64("max", 0, 0);
    rng = cmdline_get_u64("seed", 0, 0) * 2654435761u + rdtsc() + 1;
    if (!slots || base + slots > cap || !batch)
        test_fail("base=%lu slots=%lu batch=%lu do not fit a disk of %lu sectors",
                  (unsigned long)base, (unsigned long)slots, (unsigned long)batch,
                  (unsigned long)cap);
    printf("DUR: start=%lu slots=%lu\n", (unsigned long)seq, (unsigned long)slots);
    uint64_t first = seq;
    for (;;) {
        uint64_t n = 1 + next_rand() % batch;
        for (uint64_t k = 0; k < n; k++, seq++) {
            make_record(seq, tag);
            uint8_t st = request(1, base + seq % slots, rec, sizeof(rec));
            if (st)
                test_fail("write of record %lu: status %u", (unsigned long)seq, st);
            printf("W %lu\n", (unsigned long)seq);
        }
        uint8_t st = request(4, 0, NULL, 0);
        if (st)
            test_fail("flush after record %lu: status %u", (unsigned long)(seq - 1), st);
        printf("D %lu\n", (unsigned long)(seq - 1));
        if (virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET)
            test_fail("the device needs a reset");
        if (max && seq - first >= max)
            return 0;
    }
}
