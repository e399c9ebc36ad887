/* SPDX-License-Identifier: BSD-2-Clause */
#include "pci.h"
#include "acpi.h"
#include "io.h"
#include "lib.h"
#include "mptable.h"
#include "runtime.h"
#include "smp.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc

static uint32_t cf8_addr(uint16_t bdf, unsigned reg)
{
    return 0x80000000u | (uint32_t)bdf << 8 | (reg & 0xfc);
}

uint32_t pci_cf8_read(uint16_t bdf, unsigned reg, unsigned size)
{
    outl(PCI_CONFIG_ADDRESS, cf8_addr(bdf, reg));
    uint16_t port = (uint16_t)(PCI_CONFIG_DATA + (reg & 3));
    return size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
}

void pci_cf8_write(uint16_t bdf, unsigned reg, unsigned size, uint32_t v)
{
    outl(PCI_CONFIG_ADDRESS, cf8_addr(bdf, reg));
    uint16_t port = (uint16_t)(PCI_CONFIG_DATA + (reg & 3));
    if (size == 1)
        outb(port, (uint8_t)v);
    else if (size == 2)
        outw(port, (uint16_t)v);
    else
        outl(port, v);
}

struct mcfg {
    struct acpi_header h;
    uint64_t reserved;
    uint64_t base;
    uint16_t segment;
    uint8_t bus_start, bus_end;
    uint32_t reserved2;
} __attribute__((packed));

static uint64_t ecam;
static bool ecam_done;

uint64_t pci_ecam_base(void)
{
    if (!ecam_done) {
        const struct mcfg *m = (const struct mcfg *)acpi_find_table("MCFG");
        if (m && m->h.length >= sizeof(*m) && m->segment == 0 && m->bus_start == 0)
            ecam = m->base;
        ecam_done = true;
    }
    return ecam;
}

static uintptr_t ecam_addr(uint16_t bdf, unsigned reg)
{
    return (uintptr_t)(pci_ecam_base() + ((uint64_t)bdf << 12) + reg);
}

uint32_t pci_ecam_read(uint16_t bdf, unsigned reg, unsigned size)
{
    uintptr_t a = ecam_addr(bdf, reg);
    return size == 1 ? readb(a) : size == 2 ? readw(a) : readl(a);
}

void pci_ecam_write(uint16_t bdf, unsigned reg, unsigned size, uint32_t v)
{
    uintptr_t a = ecam_addr(bdf, reg);
    if (size == 1)
        writeb(a, (uint8_t)v);
    else if (size == 2)
        writew(a, (uint16_t)v);
    else
        writel(a, v);
}

uint32_t pci_read(uint16_t bdf, unsigned reg, unsigned size)
{
    return pci_ecam_base() ? pci_ecam_read(bdf, reg, size) : pci_cf8_read(bdf, reg, size);
}

void pci_write(uint16_t bdf, unsigned reg, unsigned size, uint32_t v)
{
    if (pci_ecam_base())
        pci_ecam_write(bdf, reg, size, v);
    else
        pci_cf8_write(bdf, reg, size, v);
}

unsigned pci_enumerate(uint16_t *bdfs, unsigned max)
{
    unsigned n = 0;
    for (unsigned slot = 0; slot < 32; slot++) {
        if ((pci_read(PCI_BDF(slot, 0), 0, 2) & 0xffff) == 0xffff)
            continue;
        bool multi = pci_read(PCI_BDF(slot, 0), 0x0e, 1) & 0x80;
        for (unsigned f = 0; f < (multi ? 8u : 1u); f++) {
            uint16_t bdf = PCI_BDF(slot, f);
            if ((pci_read(bdf, 0, 2) & 0xffff) == 0xffff)
                continue;
            if (n < max)
                bdfs[n] = bdf;
            n++;
        }
    }
    return n;
}

int pci_find_device(uint16_t vendor, uint16_t device, unsigned nth)
{
    uint16_t bdfs[64];
    unsigned n = pci_enumerate(bdfs, 64);
    for (unsigned i = 0; i < n && i < 64; i++) {
        uint32_t id = pci_read(bdfs[i], 0, 4);
        if ((id & 0xffff) == vendor && (id >> 16) == device && nth-- == 0)
            return bdfs[i];
    }
    return -1;
}

const char *pci_bar_kind_name(enum pci_bar_kind k)
{
    switch (k) {
    case PCI_BAR_IO: return "io";
    case PCI_BAR_MEM32: return "mem32";
    case PCI_BAR_MEM64: return "mem64";
    default: return "none";
    }
}

struct pci_bar_info pci_bar(uint16_t bdf, int n)
{
    struct pci_bar_info b = { PCI_BAR_NONE, false, 0, 0 };
    unsigned reg = 0x10 + 4 * (unsigned)n;
    uint16_t cmd = (uint16_t)pci_read(bdf, 0x04, 2);
    uint32_t lo = pci_read(bdf, reg, 4);
    pci_write(bdf, 0x04, 2, cmd & ~3u);
    pci_write(bdf, reg, 4, 0xffffffff);
    uint32_t mlo = pci_read(bdf, reg, 4);
    pci_write(bdf, reg, 4, lo);
    if (lo & 1) {
        b.kind = PCI_BAR_IO;
        b.addr = lo & ~3u;
        uint32_t mask = mlo & ~3u;
        b.size = mask ? (uint32_t)(~mask + 1) & 0xffff : 0;
    } else if (mlo) {
        b.prefetch = lo & 8;
        b.addr = lo & ~0xfu;
        uint64_t mask = mlo & ~0xfu;
        if (((lo >> 1) & 3) == 2) {
            b.kind = PCI_BAR_MEM64;
            uint32_t hi = pci_read(bdf, reg + 4, 4);
            pci_write(bdf, reg + 4, 4, 0xffffffff);
            uint32_t mhi = pci_read(bdf, reg + 4, 4);
            pci_write(bdf, reg + 4, 4, hi);
            b.addr |= (uint64_t)hi << 32;
            mask |= (uint64_t)mhi << 32;
        } else {
            b.kind = PCI_BAR_MEM32;
            mask |= 0xffffffff00000000ull;
        }
        b.size = ~mask + 1;
    }
    pci_write(bdf, 0x04, 2, cmd);
    if (!b.size)
        b.kind = PCI_BAR_NONE;
    return b;
}

void pci_bar_set(uint16_t bdf, int n, uint64_t addr)
{
    unsigned reg = 0x10 + 4 * (unsigned)n;
    uint32_t lo = pci_read(bdf, reg, 4);
    uint32_t keep = (lo & 1) ? (lo & 3) : (lo & 0xf);
    pci_write(bdf, reg, 4, (uint32_t)addr | keep);
    if (!(lo & 1) && ((lo >> 1) & 3) == 2)
        pci_write(bdf, reg + 4, 4, (uint32_t)(addr >> 32));
}

unsigned pci_assign_bars(void)
{
    uint16_t bdfs[64];
    unsigned n = pci_enumerate(bdfs, 64), placed = 0;
    uint64_t mem = 0xc0000000ull, io = 0xc000;
    if (n > 64)
        n = 64;
    for (unsigned i = 0; i < n; i++)
        for (int b = 0; b < 6; b++) {
            struct pci_bar_info bi = pci_bar(bdfs[i], b);
            if (bi.kind == PCI_BAR_IO && bi.addr && bi.addr + bi.size > io)
                io = bi.addr + bi.size;
            else if (bi.kind != PCI_BAR_NONE && bi.kind != PCI_BAR_IO && bi.addr &&
                     bi.addr < (1ull << 32) && bi.addr + bi.size > mem)
                mem = bi.addr + bi.size;
            if (bi.kind == PCI_BAR_MEM64)
                b++;
        }
    for (unsigned i = 0; i < n; i++) {
        uint16_t cmd = (uint16_t)pci_read(bdfs[i], 0x04, 2);
        for (int b = 0; b < 6; b++) {
            struct pci_bar_info bi = pci_bar(bdfs[i], b);
            if (bi.kind != PCI_BAR_NONE && !bi.addr) {
                uint64_t *next = bi.kind == PCI_BAR_IO ? &io : &mem;
                uint64_t a = (*next + bi.size - 1) & ~(bi.size - 1);
                pci_bar_set(bdfs[i], b, a);
                *next = a + bi.size;
                placed++;
            }
            if (bi.kind == PCI_BAR_IO)
                cmd |= 1;
            else if (bi.kind != PCI_BAR_NONE)
                cmd |= 2;
            if (bi.kind == PCI_BAR_MEM64)
                b++;
        }
        pci_write(bdfs[i], 0x04, 2, cmd);
    }
    return placed;
}

unsigned pci_find_cap(uint16_t bdf, uint8_t id, unsigned start)
{
    if (!(pci_read(bdf, 0x06, 2) & 0x10))
        return 0;
    unsigned off = start ? pci_read(bdf, start + 1, 1) : pci_read(bdf, 0x34, 1);
    for (int guard = 0; off >= 0x40 && guard < 48; guard++) {
        if (pci_read(bdf, off, 1) == id)
            return off;
        off = pci_read(bdf, off + 1, 1) & 0xfc;
    }
    return 0;
}

int mptable_pci_irq(unsigned dev, unsigned pin)
{
    const struct mptable_info *mp = mptable_get();
    if (!mp->found || !mp->table_ok)
        return -1;
    const uint8_t *t = phys_to_ptr(mp->table_addr);
    uint16_t len = (uint16_t)(t[4] | t[5] << 8);
    const uint8_t *p = t + 44, *end = t + len;
    int pci_bus = -1;
    while (p < end) {
        switch (p[0]) {
        case 0: p += 20; break;
        case 1:
            if (!memcmp(p + 2, "PCI   ", 6))
                pci_bus = p[1];
            p += 8;
            break;
        case 2: p += 8; break;
        case 3:
            if (pci_bus >= 0 && p[4] == pci_bus && p[5] == (dev << 2 | pin))
                return p[7];
            p += 8;
            break;
        case 4: p += 8; break;
        default: return -1;
        }
    }
    return -1;
}

/* ---- interrupts ---- */

#define IOAPIC_BASE 0xfec00000u

static irq_handler_t handlers[256];
static void *handler_args[256];

static bool irq_hook(struct trap_frame *f)
{
    unsigned v = (unsigned)f->vector;
    if (v < 32 || !handlers[v])
        return false;
    handlers[v](v, handler_args[v]);
    lapic_write(LAPIC_EOI, 0);
    return true;
}

void irq_init(void)
{
    lapic_enable();
    set_exception_hook(irq_hook);
}

void irq_set_handler(unsigned vector, irq_handler_t fn, void *arg)
{
    handler_args[vector] = arg;
    handlers[vector] = fn;
}

static void ioapic_write(unsigned reg, uint32_t v)
{
    writel(IOAPIC_BASE, reg);
    writel(IOAPIC_BASE + 0x10, v);
}

static uint32_t ioapic_read(unsigned reg)
{
    writel(IOAPIC_BASE, reg);
    return readl(IOAPIC_BASE + 0x10);
}

void ioapic_route(unsigned gsi, unsigned vector, bool level, bool active_low)
{
    uint32_t lo = vector | (level ? 1u << 15 : 0) | (active_low ? 1u << 13 : 0);
    ioapic_write(0x10 + 2 * gsi + 1, this_apic_id() << 24);
    ioapic_write(0x10 + 2 * gsi, lo);
}

void ioapic_mask(unsigned gsi, bool masked)
{
    uint32_t lo = ioapic_read(0x10 + 2 * gsi);
    lo = masked ? lo | (1u << 16) : lo & ~(1u << 16);
    ioapic_write(0x10 + 2 * gsi, lo);
}

uint64_t msi_address(void)
{
    return 0xfee00000u | this_apic_id() << 12;
}

uint32_t msi_data(unsigned vector)
{
    return vector; /* fixed delivery, edge */
}
