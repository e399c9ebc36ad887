/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Counts its boots on a disk, for vmrun's loop: sector 0 of the first
 * virtio-blk device holds "KHYVEBOOTCOUNT" and a 32-bit count, which each
 * boot increments (and flushes) before it acts. Until the count reaches
 * boots=N (default 3) it resets the machine through the i8042 (khyve
 * exits 0: reboot); then it powers off through ACPI S5 (khyve exits 1).
 * With hold=1 it waits instead of powering off (for SIGTERM tests). It
 * also reports what its loader gave it. Output:
 *   BOOTCOUNT: cmdline=<the command line>
 *   BOOTCOUNT: initrd size=<n> head=<first bytes, up to 32 printable>
 *   BOOTCOUNT: boot=<k> of <N>
 *   BOOTCOUNT: reboot | BOOTCOUNT: poweroff | BOOTCOUNT: holding
 * Without a virtio-blk device: "BOOTCOUNT: no disk", then poweroff.
 */
#include "guest.h"
#include "pci.h"
#include "virtio.h"

static const char magic[] = "KHYVEBOOTCOUNT";

static uint8_t qmem[5 * 4096] __attribute__((aligned(4096)));
static uint8_t sector[512] __attribute__((aligned(4096)));
static struct virtio_dev dev;
static struct virtq q;
static struct { uint32_t type, reserved; uint64_t sector; } h;
static volatile uint8_t status;

static uint8_t request(uint32_t type, void *buf, uint32_t len, bool to_dev)
{
    h.type = type;
    h.reserved = 0;
    h.sector = 0;
    status = 0xff;
    struct vbuf b[3];
    unsigned n = 0;
    b[n++] = (struct vbuf){ &h, sizeof(h), false };
    if (len)
        b[n++] = (struct vbuf){ buf, len, !to_dev };
    b[n++] = (struct vbuf){ (void *)&status, 1, true };
    if (virtq_add(&q, b, n, NULL) < 0)
        test_fail("queue full");
    virtq_kick(&q);
    uint32_t used;
    if (virtq_wait_used(&q, &used, 10000) < 0)
        test_fail("virtio-blk request %u: no answer in 10 s", type);
    return status;
}

static noreturn void poweroff(void)
{
    printf("BOOTCOUNT: poweroff\n");
    acpi_poweroff(-1);
    test_fail("still running after S5");
}

int main(void)
{
    const struct bootinfo *bi = bootinfo();
    printf("BOOTCOUNT: cmdline=%s\n", bi->cmdline);
    if (bi->nr_modules) {
        const uint8_t *p = phys_to_ptr(bi->modules[0].addr);
        char head[33];
        unsigned n = 0;
        while (n < 32 && n < bi->modules[0].size && p[n] >= 0x20 && p[n] < 0x7f) {
            head[n] = (char)p[n];
            n++;
        }
        head[n] = 0;
        printf("BOOTCOUNT: initrd size=%lu head=%s\n", (unsigned long)bi->modules[0].size, head);
    }
    uint64_t boots = cmdline_get_u64("boots", 0, 3);
    int bdf = pci_find_device(0x1af4, 0x1042, 0);
    if (bdf < 0 || !virtio_open(&dev, (uint16_t)bdf)) {
        printf("BOOTCOUNT: no disk\n");
        poweroff();
    }
    if (!virtio_negotiate(&dev, 1ull << 9 /* FLUSH */))
        test_fail("FEATURES_OK refused");
    virtio_setup_irq(&dev, VIRTIO_IRQ_POLL, 0x50);
    if (!virtq_setup(&dev, &q, 0, 16, qmem, 0))
        test_fail("no queue 0");
    virtio_driver_ok(&dev);
    if (request(0, sector, 512, false))
        test_fail("reading sector 0 failed");
    uint32_t count = 0;
    if (!memcmp(sector, magic, sizeof(magic)))
        memcpy(&count, sector + 16, 4);
    else
        memset(sector, 0, sizeof(sector));
    count++;
    memcpy(sector, magic, sizeof(magic));
    memcpy(sector + 16, &count, 4);
    if (request(1, sector, 512, true))
        test_fail("writing sector 0 failed");
    if ((dev.features & (1ull << 9)) && request(4, NULL, 0, false))
        test_fail("flush failed");
    printf("BOOTCOUNT: boot=%u of %lu\n", count, (unsigned long)boots);
    if (count < boots) {
        printf("BOOTCOUNT: reboot\n");
        for (int i = 0; i < 10000 && (inb(0x64) & 0x02); i++)
            cpu_relax();
        outb(0x64, 0xfe);
        mdelay(500);
        test_fail("still running 500 ms after reset");
    }
    if (cmdline_get_u64("hold", 0, 0)) {
        printf("BOOTCOUNT: holding\n");
        for (;;)
            __asm__ volatile("sti; hlt" ::: "memory");
    }
    poweroff();
}
