/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Enumerates PCI bus 0 and checks what the platform says about it.
 * Output (one line each, in slot/function order):
 *   ECAM: base=0x<hex> e820=<reserved|missing>      (or "ECAM: none")
 *   PCI <ss>.<f> id=<vvvv>:<dddd> class=<cccccc> rev=<rr> hdr=<hh> subsys=<vvvv>:<dddd> pin=<0-4> line=<n>
 *   BAR <ss>.<f> <n> <io|mem32|mem64> addr=0x<hex> size=0x<hex>[ prefetch]
 *   CAP <ss>.<f> off=0x<hh> id=0x<hh>
 *   INTX <ss>.<f> pin=<A-D> line=<n> mptable=<gsi|-1>
 *   PCI: functions=<n>
 *   PASS
 * Checks (FAIL on any): ECAM and mechanism #1 agree on the first 64
 * bytes of every function; BARs are naturally aligned, inside the
 * windows (I/O 0x2000-0xffff, memory 0xc0000000-0xdfffffff or above
 * 4 GiB) and do not overlap; the MP table routes every INTx pin to the
 * interrupt line register's IOAPIC input; the ECAM area is reserved in
 * the e820 map.
 */
#include "guest.h"
#include "pci.h"

#define MAX_BARS 64

static struct {
    uint64_t addr, size;
    bool io;
} bars[MAX_BARS];
static unsigned nbars;

int main(void)
{
    uint64_t ecam = pci_ecam_base();
    if (ecam) {
        const struct bootinfo *bi = bootinfo();
        bool reserved = false;
        for (unsigned i = 0; i < bi->nr_mem; i++)
            if (bi->mem[i].type == 2 && bi->mem[i].base <= ecam &&
                bi->mem[i].base + bi->mem[i].len >= ecam + (1u << 20))
                reserved = true;
        printf("ECAM: base=0x%lx e820=%s\n", (unsigned long)ecam, reserved ? "reserved" : "missing");
        if (!reserved)
            test_fail("the ECAM area is not reserved in the e820 map");
    } else {
        printf("ECAM: none\n");
    }

    uint16_t bdfs[256];
    unsigned n = pci_enumerate(bdfs, 256);
    for (unsigned i = 0; i < n; i++) {
        uint16_t bdf = bdfs[i];
        unsigned s = PCI_SLOT(bdf), f = PCI_FUNC(bdf);
        if (ecam)
            for (unsigned reg = 0; reg < 64; reg += 4) {
                uint32_t a = pci_cf8_read(bdf, reg, 4), b = pci_ecam_read(bdf, reg, 4);
                if (a != b)
                    test_fail("%02x.%x reg 0x%x: 0xcf8 says 0x%x, ECAM 0x%x", s, f, reg, a, b);
            }
        uint32_t id = pci_read(bdf, 0, 4);
        uint32_t cls = pci_read(bdf, 8, 4);
        uint32_t sub = pci_read(bdf, 0x2c, 4);
        unsigned pin = pci_read(bdf, 0x3d, 1), line = pci_read(bdf, 0x3c, 1);
        printf("PCI %02x.%x id=%04x:%04x class=%06x rev=%02x hdr=%02x subsys=%04x:%04x pin=%u line=%u\n",
               s, f, id & 0xffff, id >> 16, cls >> 8, cls & 0xff, pci_read(bdf, 0x0e, 1),
               sub & 0xffff, sub >> 16, pin, line);
        for (int b = 0; b < 6; b++) {
            struct pci_bar_info bi = pci_bar(bdf, b);
            if (bi.kind == PCI_BAR_NONE)
                continue;
            printf("BAR %02x.%x %d %s addr=0x%lx size=0x%lx%s\n", s, f, b,
                   pci_bar_kind_name(bi.kind), (unsigned long)bi.addr, (unsigned long)bi.size,
                   bi.prefetch ? " prefetch" : "");
            if (bi.size & (bi.size - 1) || bi.addr & (bi.size - 1))
                test_fail("BAR %d of %02x.%x is not naturally aligned", b, s, f);
            bool io = bi.kind == PCI_BAR_IO;
            bool inside = io ? bi.addr >= 0x2000 && bi.addr + bi.size <= 0x10000
                             : (bi.addr >= 0xc0000000ull && bi.addr + bi.size <= 0xe0000000ull) ||
                                   (bi.kind == PCI_BAR_MEM64 && bi.addr >= (1ull << 32));
            if (!inside)
                test_fail("BAR %d of %02x.%x is outside the PCI windows", b, s, f);
            for (unsigned k = 0; k < nbars; k++)
                if (bars[k].io == io && bi.addr < bars[k].addr + bars[k].size &&
                    bars[k].addr < bi.addr + bi.size)
                    test_fail("BAR %d of %02x.%x overlaps another BAR", b, s, f);
            if (nbars < MAX_BARS)
                bars[nbars++] = (typeof(bars[0])){ bi.addr, bi.size, io };
            if (bi.kind == PCI_BAR_MEM64)
                b++;
        }
        for (unsigned off = pci_find_cap(bdf, 0, 0), guard = 0; guard < 48; guard++) {
            /* walk every capability, whatever its id */
            if (!(pci_read(bdf, 0x06, 2) & 0x10))
                break;
            if (guard == 0)
                off = pci_read(bdf, 0x34, 1);
            if (off < 0x40)
                break;
            printf("CAP %02x.%x off=0x%02x id=0x%02x\n", s, f, off, pci_read(bdf, off, 1));
            off = pci_read(bdf, off + 1, 1) & 0xfc;
        }
        if (pin) {
            int gsi = mptable_pci_irq(s, pin - 1);
            printf("INTX %02x.%x pin=%c line=%u mptable=%d\n", s, f, 'A' + pin - 1, line, gsi);
            if (gsi < 0 || (unsigned)gsi != line)
                test_fail("the MP table does not route %02x.%x INT%c# to IRQ %u", s, f,
                          'A' + pin - 1, line);
        }
    }
    printf("PCI: functions=%u\n", n);
    return 0;
}
