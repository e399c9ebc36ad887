/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Hostile guest: the platform (PCI, MSI-X, config space, fw_cfg, UARTs,
 * RTC, i8042, CF9, halting and spinning vCPUs, a guest under a flooded gdb
 * port) abused on purpose. One case per boot: case=<name> (list below),
 * n=<count> scales the storms. tests/integration/test_hostile_platform.py
 * runs every case.
 *
 * Protocol (on the console UART, COM1 unless console=2):
 *   HOSTILE: case=<name>
 *   HOSTILE: sample setup      the guest waits for one input byte: the host
 *                              samples khyve's memory, then sends the byte
 *   ... the abuse (lines of its own: HOSTILE: <what> ...)
 *   HOSTILE: sample end        again, after the abuse
 *   HOSTILE: sane <what>       the final sanity step worked
 *   PASS
 * Waiting for a byte halts the CPU (UART receive interrupt, with a 10 ms
 * LAPIC timer as a back-stop), so a waiting guest costs the host nothing.
 * Cases that end the machine on purpose (i8042_reset, cf9_reset) print
 * "HOSTILE: resetting" and expect khyve to end as a reboot; the halting and
 * spinning cases print "HOSTILE: halting"/"HOSTILE: spinning" and wait for
 * the host to end them. The sanity step uses virtio-rnd when there is one
 * (a request in poll mode, and one with an MSI-X interrupt), else the UART.
 */
#include "guest.h"
#include "pci.h"
#include "virtio.h"
#include "fwcfg.h"
#include "rtc.h"

#define V_UART 0x24
#define V_TICK 0xef
#define V_RTC 0x28
#define V_RND 0x40

static char name[40];
static uint64_t n_arg;
static const uint16_t coms[4] = { COM1, COM2, COM3, COM4 };
volatile uint64_t hostile_ticks; /* read by gdb in the gdb cases */
static volatile unsigned rtc_irqs, stray_irqs, uart_irqs;

static bool is(const char *c) { return !strcmp(name, c); }

/* ---- waiting for the host ---- */

static void on_nothing(unsigned v, void *a) { (void)v; (void)a; }
static void on_uart(unsigned v, void *a) { (void)v; (void)a; uart_irqs++; }
static void on_stray(unsigned v, void *a) { (void)v; (void)a; stray_irqs++; }

static void timer_on(void)
{
    irq_set_handler(V_TICK, on_nothing, NULL);
    lapic_write(0x3e0, 0x3);
    lapic_write(0x320, V_TICK | (1u << 17));
    lapic_write(0x380, (uint32_t)(tsc_khz() * 10 / 16));
}

static void wait_byte(void)
{
    cli();
    while (!uart_rx_ready(console_uart))
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    (void)inb(console_uart);
}

static void sample(const char *what)
{
    printf("HOSTILE: sample %s\n", what);
    wait_byte();
}

static void console_setup(void)
{
    unsigned c = (unsigned)cmdline_get_u64("console", 10, 1);
    console_uart = coms[(c - 1) & 3];
    uart_init(console_uart);
    /* The 8259s off: left at their reset state they would deliver the
     * PIT's and the UARTs' IRQs through LINT0 at vectors 0-15. */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    irq_init();
    /* catch-all for interrupts the abuse may send anywhere */
    for (unsigned v = 0x20; v < 0xff; v++)
        irq_set_handler(v, on_stray, NULL);
    irq_set_handler(V_UART, on_uart, NULL);
    timer_on();
    ioapic_route((console_uart == COM1 || console_uart == COM3) ? 4 : 3, V_UART, false, false);
    outb(console_uart + 1, 0x01); /* IER: received data */
}

/* ---- virtio-rnd for the sanity step ---- */

static int rnd_bdf = -1;
static struct virtio_dev rnd;
static struct virtq rq;
static uint8_t rqmem[2 * 4096] __attribute__((aligned(4096)));
static uint8_t rbuf[256];

static void rnd_request(enum virtio_irq_mode mode, const char *when)
{
    if (rnd_bdf < 0)
        return;
    if (!virtio_open(&rnd, (uint16_t)rnd_bdf))
        test_fail("%s: virtio-rnd is gone", when);
    if (!virtio_negotiate(&rnd, 0))
        test_fail("%s: virtio-rnd refused FEATURES_OK", when);
    virtio_setup_irq(&rnd, mode, V_RND);
    if (!virtq_setup(&rnd, &rq, 0, 16, rqmem, 1))
        test_fail("%s: virtio-rnd has no queue", when);
    virtio_driver_ok(&rnd);
    memset(rbuf, 0, sizeof(rbuf));
    struct vbuf b = { rbuf, 64, true };
    unsigned irqs = rq.irq_count;
    virtq_add(&rq, &b, 1, NULL);
    virtq_kick(&rq);
    uint32_t len = 0;
    if (virtq_wait_used(&rq, &len, 5000) < 0 || len != 64)
        test_fail("%s: virtio-rnd request failed (len %u, status 0x%x)", when, len,
                  virtio_status(&rnd));
    if (mode == VIRTIO_IRQ_MSIX) {
        uint64_t deadline = timeout_start(5000);
        sti();
        while (rq.irq_count == irqs && !timeout_expired(deadline))
            cpu_relax();
        cli();
        if (rq.irq_count == irqs)
            test_fail("%s: no MSI-X interrupt for a used buffer", when);
    }
    virtio_reset(&rnd);
}

static void sane(void)
{
    if (rnd_bdf >= 0) {
        rnd_request(VIRTIO_IRQ_POLL, "sanity");
        rnd_request(VIRTIO_IRQ_MSIX, "sanity");
        printf("HOSTILE: sane virtio-rnd\n");
    } else {
        printf("HOSTILE: sane uart\n");
    }
}

/* ---- PCI ---- */

static uint16_t fns[64];
static unsigned nfns;

/* Storms go through mechanism #1: a port write is a much cheaper exit than
 * an ECAM access (an MMIO exit, emulated), so the same time buys more. */
static void cfgw(uint16_t bdf, unsigned reg, unsigned size, uint32_t v) { pci_cf8_write(bdf, reg, size, v); }
static uint32_t cfgr(uint16_t bdf, unsigned reg, unsigned size) { return pci_cf8_read(bdf, reg, size); }

static void bar_set_cf8(uint16_t bdf, int n, uint64_t addr)
{
    unsigned reg = 0x10 + 4 * (unsigned)n;
    uint32_t lo = cfgr(bdf, reg, 4);
    uint32_t keep = (lo & 1) ? (lo & 3) : (lo & 0xf);
    cfgw(bdf, reg, 4, (uint32_t)addr | keep);
    if (!(lo & 1) && ((lo >> 1) & 3) == 2)
        cfgw(bdf, reg + 4, 4, (uint32_t)(addr >> 32));
}

/* BAR 4 (the virtio registers) carries the queues' ioeventfds: KVM takes
 * milliseconds to move one (an SRCU grace period), so the big storms park
 * it at address 0, where it is never mapped, and remap BAR 1 (the MSI-X
 * table) alone; notify=1 keeps BAR 4 in (a short storm, then). */
static uint64_t bar4_home;
static void park_bar4(bool park)
{
    uint16_t b = (uint16_t)rnd_bdf;
    if (cmdline_get_u64("notify", 10, 0))
        return;
    if (park) {
        bar4_home = pci_bar(b, 4).addr;
        bar_set_cf8(b, 4, 0);
    } else {
        bar_set_cf8(b, 4, bar4_home);
    }
}

static void bar_mem_toggle(void)
{
    uint16_t b = (uint16_t)rnd_bdf;
    park_bar4(true);
    uint16_t cmd = (uint16_t)cfgr(b, 4, 2);
    for (uint64_t i = 0; i < n_arg; i++) {
        cfgw(b, 4, 2, cmd & ~2u);
        cfgw(b, 4, 2, cmd | 2u);
    }
    park_bar4(false);
    printf("HOSTILE: COMMAND.MEM toggled %lu times\n", (unsigned long)n_arg);
}

static void bar_io_toggle(void)
{
    for (uint64_t i = 0; i < n_arg; i++) {
        uint16_t b = fns[i % nfns];
        uint16_t cmd = (uint16_t)cfgr(b, 4, 2);
        cfgw(b, 4, 2, cmd ^ 1u);
        cfgw(b, 4, 2, cmd);
    }
    printf("HOSTILE: COMMAND.IO toggled %lu times over %u functions\n", (unsigned long)n_arg, nfns);
}

static void bar_move(void)
{
    uint16_t b = (uint16_t)rnd_bdf;
    bool notify = cmdline_get_u64("notify", 10, 0);
    int n = notify ? 4 : 1;
    unsigned reg = 0x10 + 4 * (unsigned)n;
    park_bar4(true);
    struct pci_bar_info bi = pci_bar(b, n);
    uint64_t to = 0xd0000000;
    /* the low dword only (BAR 4's high one stays 0) */
    uint32_t flags = cfgr(b, reg, 4) & 0xf;
    for (uint64_t i = 0; i < n_arg; i++)
        cfgw(b, reg, 4, (uint32_t)((i & 1) ? bi.addr : to) | flags);
    bar_set_cf8(b, n, bi.addr);
    park_bar4(false);
    printf("HOSTILE: BAR%d moved %lu times\n", n, (unsigned long)n_arg);
}

static void bar_move_wild(void)
{
    uint16_t b = (uint16_t)rnd_bdf;
    struct pci_bar_info b4 = pci_bar(b, 4), b1 = pci_bar(b, 1);
    uint64_t other = 0;
    for (unsigned i = 0; i < nfns; i++)
        if (fns[i] != b && (pci_read(fns[i], 0, 2) & 0xffff) == 0x1af4)
            other = pci_bar(fns[i], 4).addr;
    const uint64_t wild[] = {
        0, 0x1000, 0x100000 /* our own code */, 0x3ff0000 /* RAM's end */, b1.addr,
        other ? other : 0xc8000000, 0xe0000000 /* ECAM */, 0xfec00000, 0xfee00000,
        0xfffff000, 0xffffc000, 0x100000000ull, 0xfffffffff000ull,
        (1ull << 52) - 0x4000, 1ull << 52, 0xffffffffffffc000ull, 0x10,
    };
    unsigned moves = 0;
    for (unsigned r = 0; r < 10; r++)
        for (unsigned i = 0; i < ARRAY_SIZE(wild); i++) {
            bar_set_cf8(b, 4, wild[i]);
            bar_set_cf8(b, 1, (uint32_t)wild[(i + 3) % ARRAY_SIZE(wild)]);
            moves += 2;
        }
    pci_bar_set(b, 4, b4.addr);
    pci_bar_set(b, 1, b1.addr);
    printf("HOSTILE: BARs moved to wild addresses %u times\n", moves);
}

static void bar_sizing_storm(void)
{
    unsigned writes = 0;
    park_bar4(true);
    for (uint64_t r = 0; r < n_arg; r++)
        for (unsigned i = 0; i < nfns; i++)
            for (unsigned reg = 0x10; reg <= 0x24; reg += 4) {
                if ((reg == 0x20 || reg == 0x24) && (cfgr(fns[i], 0, 2) & 0xffff) == 0x1af4)
                    continue; /* virtio registers: see park_bar4() */
                uint32_t v = cfgr(fns[i], reg, 4);
                cfgw(fns[i], reg, 4, 0xffffffff); /* with decoding on */
                (void)cfgr(fns[i], reg, 4);
                cfgw(fns[i], reg, 4, v);
                writes += 2;
            }
    park_bar4(false);
    printf("HOSTILE: BARs sized with decoding on, %u writes\n", writes);
}

/* ---- MSI-X ---- */

static uintptr_t msix_base(struct virtio_dev *d) { return d->msix_table & ~0xfffull; }

static void access(uintptr_t a, unsigned size, bool write, uint64_t v)
{
    switch (size) {
    case 1: if (write) writeb(a, (uint8_t)v); else (void)readb(a); break;
    case 2: if (write) writew(a, (uint16_t)v); else (void)readw(a); break;
    case 4: if (write) writel(a, (uint32_t)v); else (void)readl(a); break;
    default: if (write) writeq(a, v); else (void)readq(a); break;
    }
}

static void msix_table_walk(void)
{
    rnd_request(VIRTIO_IRQ_MSIX, "setup");
    struct virtio_dev *d = &rnd;
    uintptr_t base = msix_base(d);
    unsigned n = 0;
    pci_write(d->bdf, d->msix_cap + 2, 2, 0x8000); /* enabled, entries as they are */
    /* every size at every offset of the table, around the PBA and at the
     * end of the BAR (where 8 bytes run past it); every dword elsewhere */
    for (unsigned pass = 0; pass < 2; pass++)
        for (unsigned off = 0; off < 0x1000; off++) {
            bool edge = off < 0x40 || (off >= 0x7c0 && off < 0x840) || off >= 0xfc0;
            for (unsigned size = 1; size <= 8; size *= 2, n++) {
                if (!edge && (size != 4 || (off & 3)))
                    continue;
                access(base + off, size, pass, 0x5a5a5a5aa5a5a5a5ull ^ off);
            }
        }
    printf("HOSTILE: MSI-X BAR accesses=%u stray_irqs=%u\n", n, stray_irqs);
}

static void msix_pba(void)
{
    rnd_request(VIRTIO_IRQ_MSIX, "setup");
    struct virtio_dev *d = &rnd;
    uintptr_t pba = msix_base(d) + 0x800;
    for (unsigned i = 0; i < 0x800; i++) {
        access(pba + (i & 0x7ff), 1 << (i & 3), true, ~0ull);
        access(pba + (i & 0x7ff), 1 << (i & 3), false, 0);
    }
    /* A pending bit that PBA writes must not clear: mask vector 1, make
     * the device want it, write zeroes over the PBA, unmask: it arrives. */
    if (!virtio_open(&rnd, (uint16_t)rnd_bdf) || !virtio_negotiate(&rnd, 0))
        test_fail("virtio-rnd set-up");
    virtio_setup_irq(&rnd, VIRTIO_IRQ_MSIX, V_RND);
    virtq_setup(&rnd, &rq, 0, 16, rqmem, 1);
    virtio_driver_ok(&rnd);
    uintptr_t e1 = rnd.msix_table + 16;
    writel(e1 + 12, 1);
    struct vbuf b = { rbuf, 32, true };
    unsigned irqs = rq.irq_count;
    virtq_add(&rq, &b, 1, NULL);
    virtq_kick(&rq);
    uint32_t len;
    if (virtq_wait_used(&rq, &len, 5000) < 0)
        test_fail("no used buffer with vector 1 masked");
    /* the interrupt is raised just after the used entry is written */
    uint64_t pending = 0, deadline0 = timeout_start(5000);
    while (!((pending = readq(pba)) & 2) && !timeout_expired(deadline0))
        cpu_relax();
    writeq(pba, 0);
    writeb(pba, 0);
    sti();
    for (unsigned i = 0; i < 1000; i++)
        cpu_relax();
    cli();
    if (rq.irq_count != irqs)
        test_fail("an interrupt arrived through a masked vector");
    writel(e1 + 12, 0);
    uint64_t deadline = timeout_start(5000);
    sti();
    while (rq.irq_count == irqs && !timeout_expired(deadline))
        cpu_relax();
    cli();
    printf("HOSTILE: PBA=0x%lx before the writes; pending interrupt %s after unmasking\n",
           (unsigned long)pending, rq.irq_count != irqs ? "arrived" : "lost");
    if (!(pending & 2))
        test_fail("the PBA did not show vector 1 pending");
    if (rq.irq_count == irqs)
        test_fail("writes to the PBA lost a pending interrupt");
    virtio_reset(&rnd);
}

static void msix_garbage_vectors(void)
{
    rnd_request(VIRTIO_IRQ_MSIX, "setup");
    if (!virtio_open(&rnd, (uint16_t)rnd_bdf) || !virtio_negotiate(&rnd, 0))
        test_fail("virtio-rnd set-up");
    virtio_setup_irq(&rnd, VIRTIO_IRQ_MSIX, V_RND);
    virtq_setup(&rnd, &rq, 0, 16, rqmem, 1);
    virtio_driver_ok(&rnd);
    /* Messages no sane driver writes; none may be INIT, SIPI, SMI, NMI or
     * ExtINT, which would reset or wedge our own CPU (a guest's right). */
    const uint64_t addrs[] = { 0, 0xdead0000, 0xfee00000 | 0x55u << 12, 0xfee00000 | 0xffu << 12,
                               0xfee0000c, 0xfeeff000, 0xfffffffffee00000ull, 0x100000 };
    const uint32_t datas[] = { 0x30, 0xfe, 0x1fe, 0xc0f0, 0xffff0031, 0x8050, 0x100 | 0x33 };
    unsigned reqs = 0;
    for (unsigned i = 0; i < ARRAY_SIZE(addrs) * ARRAY_SIZE(datas); i++) {
        for (unsigned e = 0; e < rnd.msix_count; e++) {
            uintptr_t t = rnd.msix_table + 16 * e;
            writel(t, (uint32_t)addrs[(i + e) % ARRAY_SIZE(addrs)]);
            writel(t + 4, (uint32_t)(addrs[(i + e) % ARRAY_SIZE(addrs)] >> 32));
            writel(t + 8, datas[i % ARRAY_SIZE(datas)]);
            writel(t + 12, 0);
        }
        /* queue and config vectors: garbage too (out of range) */
        writew(rnd.common + 0x16, 0);
        writew(rnd.common + 0x1a, (uint16_t)(i & 1 ? 0x1234 : 1));
        writew(rnd.common + 0x10, (uint16_t)(0xfff0 + i));
        struct vbuf b = { rbuf, 16, true };
        virtq_add(&rq, &b, 1, NULL);
        virtq_kick(&rq);
        uint32_t len;
        sti();
        if (virtq_wait_used(&rq, &len, 5000) < 0)
            test_fail("virtio-rnd stopped under garbage MSI-X messages");
        cli();
        reqs++;
    }
    /* MSI-X off with unmasked garbage entries, MSI on with garbage */
    pci_write(rnd.bdf, rnd.msix_cap + 2, 2, 0);
    pci_write(rnd.bdf, rnd.msi_cap + 4, 4, 0xdead0000);
    pci_write(rnd.bdf, rnd.msi_cap + 12, 2, 0xc0fe); /* fixed, vector 0xfe, level bits */
    pci_write(rnd.bdf, rnd.msi_cap + 2, 2, 0x71);
    struct vbuf b = { rbuf, 16, true };
    virtq_add(&rq, &b, 1, NULL);
    virtq_kick(&rq);
    uint32_t len;
    if (virtq_wait_used(&rq, &len, 5000) < 0)
        test_fail("virtio-rnd stopped with garbage MSI");
    pci_write(rnd.bdf, rnd.msi_cap + 2, 2, 0);
    virtio_reset(&rnd);
    printf("HOSTILE: %u requests with garbage MSI-X messages, stray_irqs=%u\n", reqs, stray_irqs);
}

static void msix_mask_storm(void)
{
    rnd_request(VIRTIO_IRQ_MSIX, "setup");
    if (!virtio_open(&rnd, (uint16_t)rnd_bdf) || !virtio_negotiate(&rnd, 0))
        test_fail("virtio-rnd set-up");
    virtio_setup_irq(&rnd, VIRTIO_IRQ_MSIX, V_RND);
    virtq_setup(&rnd, &rq, 0, 16, rqmem, 1);
    virtio_driver_ok(&rnd);
    unsigned cap = rnd.msix_cap;
    uintptr_t e1 = rnd.msix_table + 16;
    for (uint64_t i = 0; i < n_arg; i++) {
        if ((i & 1023) == 0) { /* something pending now and then */
            struct vbuf b = { rbuf, 8, true };
            if (virtq_add(&rq, &b, 1, NULL) >= 0)
                virtq_kick(&rq);
            (void)virtq_get_used(&rq, NULL);
        }
        switch (i & 3) {
        case 0: cfgw(rnd.bdf, cap + 2, 2, 0xc000); break; /* enable + mask all */
        case 1: cfgw(rnd.bdf, cap + 2, 2, 0x8000); break;
        case 2: writel(e1 + 12, 1); break;
        case 3: writel(e1 + 12, 0); break;
        }
        if ((i & 255) == 255) {
            sti();
            cpu_relax();
            cli();
        }
    }
    virtio_reset(&rnd);
    printf("HOSTILE: MSI-X masks toggled %lu times, irqs=%u\n", (unsigned long)n_arg, rq.irq_count);
}

/* ---- config space ---- */

static void cfg_walk_cf8(void)
{
    unsigned n = 0;
    for (unsigned f = 0; f < 256; f++) /* absent ones too: the header */
        for (unsigned reg = 0; reg < 64; reg += 4, n++)
            (void)pci_cf8_read((uint16_t)f, reg, 4);
    for (unsigned i = 0; i < nfns; i++) /* present ones: every byte */
        for (unsigned reg = 0; reg < 256; reg++, n++)
            (void)pci_cf8_read(fns[i], reg, 1);
    for (unsigned i = 0; i < nfns; i++)
        for (unsigned size = 2; size <= 4; size += 2)
            for (unsigned reg = 0; reg < 256; reg++, n++) {
                outl(0xcf8, 0x80000000u | (uint32_t)fns[i] << 8 | (reg & 0xfc));
                if (size == 2)
                    (void)inw((uint16_t)(0xcfc + (reg & 3)));
                else
                    (void)inl((uint16_t)(0xcfc + (reg & 3)));
            }
    printf("HOSTILE: mechanism #1 reads=%u\n", n);
}

static void cfg_walk_ecam(void)
{
    uint64_t e = pci_ecam_base();
    if (!e)
        test_fail("no ECAM");
    unsigned n = 0;
    for (unsigned f = 0; f < 256; f++) {
        bool present = false;
        for (unsigned i = 0; i < nfns; i++)
            present |= fns[i] == f;
        uintptr_t fa = (uintptr_t)(e + ((uint64_t)f << 12));
        if (!present) { /* absent: every dword of the header and the capabilities */
            for (unsigned reg = 0; reg < 0x100; reg += 4, n++)
                (void)readl(fa + reg);
            continue;
        }
        /* every offset and size of the header, the capabilities and the
         * start of the extended space; a dword every 64 bytes after that
         * (all zero, and each read an emulated MMIO exit) */
        for (unsigned size = 1; size <= 8; size *= 2)
            for (unsigned reg = 0; reg < 0x140; reg++, n++)
                access(fa + reg, size, false, 0);
        for (unsigned reg = 0x140; reg < 0x1000; reg += 64, n++)
            (void)readl(fa + reg);
    }
    /* the last bytes of ECAM, and past it */
    for (unsigned size = 1; size <= 8; size *= 2)
        for (unsigned d = 0; d < 16; d++, n++)
            access((uintptr_t)(e + 0x100000 - 8 + d), size, false, 0);
    printf("HOSTILE: ECAM reads=%u\n", n);
}

static uint8_t saved[64][256];

static void cfg_save(void)
{
    for (unsigned i = 0; i < nfns; i++)
        for (unsigned r = 0; r < 256; r += 4) {
            uint32_t v = pci_read(fns[i], r, 4);
            memcpy(&saved[i][r], &v, 4);
        }
}

static void cfg_restore(void)
{
    for (unsigned i = 0; i < nfns; i++) {
        pci_write(fns[i], 4, 2, 0);
        for (unsigned r = 0x40; r < 256; r += 4) {
            uint32_t v;
            memcpy(&v, &saved[i][r], 4);
            pci_write(fns[i], r, 4, v);
        }
        for (unsigned r = 0x08; r < 0x40; r += 4) {
            uint32_t v;
            memcpy(&v, &saved[i][r], 4);
            pci_write(fns[i], r, 4, v);
        }
        uint16_t cmd;
        memcpy(&cmd, &saved[i][4], 2);
        pci_write(fns[i], 4, 2, cmd);
    }
}

static bool fn_present_slot(unsigned slot)
{
    for (unsigned i = 0; i < nfns; i++)
        if ((fns[i] >> 3) == slot)
            return true;
    return false;
}

static void cfg_garbage(bool ecam)
{
    cfg_save();
    const uint32_t junk[] = { 0xffffffff, 0, 0xa5a5a5a5, 0x5a5a5a5a };
    unsigned n = 0;
    for (unsigned k = 0; k < ARRAY_SIZE(junk); k++)
        for (unsigned f = 0; f < 256; f++) {
            bool present = false;
            for (unsigned i = 0; i < nfns; i++)
                present |= fns[i] == f;
            if (!present && (k || ((f & 7) && !fn_present_slot(f >> 3))))
                continue; /* absent: one pass, function 0 of each slot */
            for (unsigned size = present ? 1 : 4; size <= 4; size *= 2)
                for (unsigned reg = 0; reg < 256; reg += size, n++) {
                    uint32_t v = junk[k] ^ (reg * 0x01010101u);
                    if (ecam)
                        pci_ecam_write((uint16_t)f, reg, size, v);
                    else
                        pci_cf8_write((uint16_t)f, reg, size, v);
                }
        }
    if (ecam) /* the extended space of present functions, in every size */
        for (unsigned i = 0; i < nfns; i++)
            for (unsigned size = 4; size <= 8; size *= 2)
                for (unsigned reg = 0x100; reg < 0x1000; reg += size, n++)
                    access((uintptr_t)(pci_ecam_base() + ((uint64_t)fns[i] << 12) + reg), size,
                           true, ~0ull);
    cfg_restore();
    for (unsigned i = 0; i < nfns; i++)
        if (memcmp(&(uint32_t){ pci_read(fns[i], 0, 4) }, saved[i], 4))
            test_fail("function %x: its ID changed", fns[i]);
    printf("HOSTILE: %s config writes=%u\n", ecam ? "ECAM" : "mechanism #1", n);
}

static void cfg_unaligned(void)
{
    unsigned n = 0;
    const uint32_t addrs[] = { 0x80000000, 0x00000000, 0x80000003, 0x80010000, 0x80ff0000,
                               0x7f000000, 0x8f000000, 0x80000ffc, 0xffffffff, 0x80002000 };
    for (unsigned i = 0; i < ARRAY_SIZE(addrs); i++)
        for (unsigned port = 0xcfc; port < 0xd00; port++, n++) {
            outl(0xcf8, addrs[i]);
            (void)inb((uint16_t)port);
            (void)inw((uint16_t)port);
            (void)inl((uint16_t)port);
            outb((uint16_t)port, 0);
            (void)inl(0xcf8);
            (void)inw(0xcf8);
            (void)inb(0xcf8);
        }
    outl(0xcf8, 0);
    uint64_t e = pci_ecam_base();
    for (unsigned i = 0; i < nfns; i++)
        for (unsigned off = 0xff0; off < 0x1000; off++, n++) {
            (void)readq((uintptr_t)(e + ((uint64_t)fns[i] << 12) + off));
            (void)readl((uintptr_t)(e + ((uint64_t)fns[i] << 12) + off));
        }
    printf("HOSTILE: unaligned and odd config accesses=%u\n", n);
}

static void pcicfg_window(void)
{
    uint16_t b = (uint16_t)rnd_bdf;
    unsigned c = 0;
    for (unsigned p = pci_find_cap(b, 0x09, 0); p; p = pci_find_cap(b, 0x09, p))
        if (pci_read(b, p + 3, 1) == 5)
            c = p;
    if (!c)
        test_fail("no VIRTIO_PCI_CAP_PCI_CFG");
    const uint32_t offs[] = { 0, 0x14, 0x2fff, 0x3000, 0x3ffc, 0x4000, 0x7fffffff,
                              0xfffffffc, 0xfffffffe, 0xffffffff };
    const uint32_t lens[] = { 0, 1, 2, 3, 4, 8, 0x80000000, 0xffffffff };
    unsigned n = 0;
    for (unsigned bar = 0; bar < 8; bar++)
        for (unsigned i = 0; i < ARRAY_SIZE(offs); i++)
            for (unsigned l = 0; l < ARRAY_SIZE(lens); l++, n++) {
                pci_write(b, c + 4, 1, bar == 7 ? 0xff : bar);
                pci_write(b, c + 8, 4, offs[i]);
                pci_write(b, c + 12, 4, lens[l]);
                (void)pci_read(b, c + 16, 4);
                (void)pci_read(b, c + 17, 1);
                if (offs[i] != 0x14) /* not the status byte: that one resets */
                    pci_write(b, c + 16, 4, 0xffffffff);
            }
    printf("HOSTILE: PCI-config window accesses=%u\n", n);
}

/* ---- fw_cfg ---- */

static void fwcfg_scan(void)
{
    unsigned n = 0;
    /* every entry (the selector's low 14 bits), then the write and
     * arch-local flags on the first entries (the rest are the same bits) */
    for (uint32_t sel = 0; sel < 0x4000; sel++, n++) {
        outw(FW_CFG_PORT_SEL, (uint16_t)sel);
        if (!(sel & 15) || sel < 0x40)
            (void)inb(FW_CFG_PORT_DATA);
    }
    for (uint32_t sel = 0x4000; sel < 0x10000; sel += (sel & 0x3fff) < 0x40 ? 1 : 0x3fc1, n++) {
        outw(FW_CFG_PORT_SEL, (uint16_t)sel);
        (void)inb(FW_CFG_PORT_DATA);
    }
    for (unsigned i = 0; i < 256; i++, n++) {
        outl(FW_CFG_PORT_SEL, 0xffff0000u | i);
        (void)inl(FW_CFG_PORT_SEL);
        (void)inw(FW_CFG_PORT_DATA);
        outb(FW_CFG_PORT_DATA, (uint8_t)i);
        outl(0x514, 0xffffffff);
        outl(0x518, i);
        (void)inl(0x514);
        (void)inl(0x518);
    }
    printf("HOSTILE: fw_cfg selectors scanned, accesses=%u\n", n);
}

static void fwcfg_past_end(void)
{
    uint16_t keys[64];
    uint32_t sizes[64];
    unsigned nk = 0;
    const uint16_t fixed[] = { 0, 1, 2, 3, 4, 5, 0xe, 0xf, 0x19, 0x8000, 0x8003 };
    for (unsigned i = 0; i < ARRAY_SIZE(fixed); i++) {
        keys[nk] = fixed[i];
        sizes[nk++] = 64;
    }
    uint32_t count = 0;
    fwcfg_read(FW_CFG_FILE_DIR, &count, 4);
    count = __builtin_bswap32(count);
    for (uint32_t i = 0; i < count && nk < 64; i++) {
        uint8_t e[64];
        for (unsigned j = 0; j < 64; j++)
            e[j] = inb(FW_CFG_PORT_DATA);
        uint32_t sz;
        uint16_t sel;
        memcpy(&sz, e, 4);
        memcpy(&sel, e + 4, 2);
        keys[nk] = __builtin_bswap16(sel);
        sizes[nk++] = __builtin_bswap32(sz);
    }
    unsigned n = 0, nonzero = 0;
    for (unsigned i = 0; i < nk; i++) {
        if (sizes[i] > 4096)
            continue; /* the legacy interface has no seek: big ones cost too much */
        outw(FW_CFG_PORT_SEL, keys[i]);
        uint32_t past = sizes[i] + 1024;
        for (uint32_t j = 0; j < past; j++, n++) {
            uint8_t v = inb(FW_CFG_PORT_DATA);
            if (j >= sizes[i] && keys[i] == FW_CFG_FILE_DIR)
                nonzero += v != 0;
        }
    }
    printf("HOSTILE: fw_cfg items=%u (files=%u) read past their ends, reads=%u "
           "dir_nonzero_past_end=%u\n", nk, count, n, nonzero);
}

/* ---- UARTs ---- */

static void uart_flood(unsigned port)
{
    uint16_t base = coms[port - 1];
    uart_init(base);
    for (uint64_t i = 0; i < n_arg; i++)
        outb(base, (uint8_t)('a' + i % 26)); /* no THRE wait: the FIFO overflows */
    uint8_t lsr = inb(base + 5);
    uart_write(base, "\r\nflood done\r\n", 14);
    printf("HOSTILE: com%u flooded with %lu bytes, LSR=0x%x\n", port, (unsigned long)n_arg, lsr);
}

static void uart_loopback_flood(void)
{
    unsigned n = 0, oe = 0;
    for (unsigned p = 0; p < 4; p++) {
        uint16_t base = coms[p];
        if (base == console_uart)
            continue;
        uart_init(base);
        outb(base + 4, 0x10 | 0x0f); /* loopback */
        for (uint64_t i = 0; i < n_arg; i++, n++)
            outb(base, (uint8_t)i);
        oe += (inb(base + 5) & 2) != 0;
        for (unsigned i = 0; i < 64; i++)
            (void)inb(base);
        outb(base + 4, 0x03);
    }
    printf("HOSTILE: loopback floods=%u bytes overruns_seen=%u\n", n, oe);
}

static void uart_regs_walk(void)
{
    unsigned n = 0;
    for (unsigned p = 0; p < 4; p++) {
        uint16_t base = coms[p];
        for (unsigned dlab = 0; dlab < 2; dlab++)
            for (unsigned reg = 0; reg < 8; reg++)
                for (unsigned v = reg; v < 256; v += 3, n++) {
                    outb(base + 3, dlab ? 0x83 : 0x03);
                    if (reg == 3 || (base == console_uart &&
                                     ((reg == 4 && (v & 0x10)) || (reg == 0 && !dlab))))
                        continue; /* keep the console readable */
                    outb((uint16_t)(base + reg), (uint8_t)v);
                    (void)inb((uint16_t)(base + 2));
                    (void)inb((uint16_t)(base + 5));
                }
        for (unsigned v = 0; v < 256; v++, n++) {
            outb(base + 3, (uint8_t)v);
            (void)inw(base);
            (void)inl(base + 4);
            outw(base + 6, 0xffff);
        }
        if (base != console_uart)
            uart_init(base);
    }
    uart_init(console_uart);
    outb(console_uart + 1, 0x01);
    printf("HOSTILE: UART register writes=%u\n", n);
}

/* ---- RTC ---- */

static bool rtc_ack = true;
static void on_rtc(unsigned v, void *a)
{
    (void)v;
    (void)a;
    rtc_irqs++;
    if (rtc_ack)
        (void)cmos_read(0x0c);
}

static void rtc_periodic(uint8_t rate)
{
    irq_set_handler(V_RTC, on_rtc, NULL);
    ioapic_route(8, V_RTC, false, false);
    cmos_write(0x0a, (uint8_t)(0x20 | rate));
    cmos_write(0x0b, (uint8_t)(cmos_read(0x0b) | 0x40));
    (void)cmos_read(0x0c);
}

static void rtc_periodic_off(void)
{
    cmos_write(0x0b, (uint8_t)(cmos_read(0x0b) & ~0x40));
    cmos_write(0x0a, 0x26);
    (void)cmos_read(0x0c);
}

static void wait_rtc_irqs(unsigned count, unsigned timeout_ms)
{
    unsigned start = rtc_irqs;
    uint64_t deadline = timeout_start(timeout_ms);
    while (rtc_irqs - start < count) {
        if (timeout_expired(deadline))
            test_fail("%u of %u RTC interrupts in %u ms", rtc_irqs - start, count, timeout_ms);
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    }
}

static void rtc_fastest(void)
{
    rtc_periodic(3); /* 8192 Hz, the fastest rate */
    wait_rtc_irqs((unsigned)n_arg, 60000);
    rtc_periodic_off();
    printf("HOSTILE: RTC periodic interrupts at 8192 Hz: %u\n", rtc_irqs);
}

static void rtc_noack(void)
{
    rtc_ack = false;
    rtc_periodic(3);
    sti();
    mdelay(200); /* one interrupt, then register C is never read */
    cli();
    unsigned got = rtc_irqs;
    rtc_ack = true;
    (void)cmos_read(0x0c);
    wait_rtc_irqs(100, 60000);
    /* rate storm: every rate, PIE on and off */
    for (uint64_t i = 0; i < n_arg; i++) {
        cmos_write(0x0a, (uint8_t)(0x20 | (i % 16)));
        cmos_write(0x0b, (uint8_t)((i & 16) ? 0x42 : 0x02));
    }
    rtc_periodic_off();
    printf("HOSTILE: RTC unacknowledged: %u interrupt(s); rate changes=%lu\n", got,
           (unsigned long)n_arg);
}

static void rtc_cmos_walk(void)
{
    struct rtc_time t;
    rtc_read(&t);
    uint8_t keep[128];
    for (unsigned r = 0; r < 128; r++)
        keep[r] = cmos_read((uint8_t)r);
    unsigned n = 0;
    for (unsigned r = 0; r < 256; r++)
        for (unsigned v = r & 15; v < 256; v += 31, n++) {
            outb(0x70, (uint8_t)r);
            outb(0x71, (uint8_t)v);
            (void)inb(0x71);
            (void)inb(0x70);
        }
    for (unsigned i = 0; i < 64; i++) {
        outw(0x70, (uint16_t)(i << 8 | i));
        (void)inw(0x70);
        outl(0x70, 0xffffffff);
        (void)inl(0x70);
    }
    /* put it back: stop updates, restore the clock and the rest, go */
    cmos_write(0x0b, 0x82);
    for (unsigned r = 0; r < 128; r++)
        if (r != 0x0a && r != 0x0b && r != 0x0c && r != 0x0d)
            cmos_write((uint8_t)r, keep[r]);
    cmos_write(0x0a, 0x26);
    cmos_write(0x0b, keep[0x0b] & ~0x70);
    (void)cmos_read(0x0c);
    /* the clock runs again: the seconds change within 3 s */
    uint8_t s0 = cmos_read(0);
    uint64_t deadline = timeout_start(3000);
    while (cmos_read(0) == s0)
        if (timeout_expired(deadline))
            test_fail("the RTC stopped after the CMOS walk");
    rtc_read(&t);
    printf("HOSTILE: CMOS accesses=%u, clock %04u-%02u-%02u %02u:%02u:%02u\n", n, t.year, t.month,
           t.day, t.hour, t.min, t.sec);
}

/* ---- i8042 and CF9 ---- */

static void i8042_garbage(void)
{
    unsigned n = 0;
    for (unsigned cmd = 0; cmd < 0xf0; cmd++)
        for (unsigned v = cmd & 15; v < 256; v += 17, n++) {
            if (cmd == 0xd1 && !(v & 1))
                continue; /* output port with the reset line low: a reset */
            outb(0x64, (uint8_t)cmd);
            (void)inb(0x64);
            outb(0x60, (uint8_t)v);
            (void)inb(0x60);
        }
    for (unsigned cmd = 0xf1; cmd <= 0xff; cmd += 2, n++)
        outb(0x64, (uint8_t)cmd); /* odd pulses leave the reset line alone */
    for (unsigned i = 0; i < 256; i++, n++) {
        outw(0x60, 0xffff);
        (void)inw(0x60);
        (void)inl(0x60);
        (void)inw(0x63);
    }
    printf("HOSTILE: i8042 accesses=%u\n", n);
}

static void cf9_garbage(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < n_arg; i++) {
        uint8_t v = (uint8_t)(i & ~4u);
        outb(0xcf9, v);
        (void)inb(0xcf9);
        n++;
    }
    printf("HOSTILE: CF9 writes without RST_CPU=%u, reads 0x%x\n", n, inb(0xcf9));
}

/* ---- halting and spinning ---- */

static void ap_halt(uint32_t id)
{
    (void)id;
    for (;;)
        __asm__ volatile("sti; hlt" ::: "memory");
}

static void ap_spin(uint32_t id)
{
    (void)id;
    for (;;)
        hostile_ticks++;
}

static void halt_sti(void)
{
    unsigned aps = smp_start_aps(ap_halt, 2000);
    rtc_periodic(10); /* 64 Hz: the guest's own clock for its sleep */
    sample("sleep-start");
    wait_rtc_irqs(64, 60000);
    sample("sleep-end");
    rtc_periodic_off();
    printf("HOSTILE: %u AP(s) halted with interrupts on; BSP slept 64 RTC ticks\n", aps);
}

/* ---- gdb ---- */

static void gdb_ticks(void)
{
    rtc_periodic(10);
    /* The host floods the gdb port; we count and say so every 16 ticks
     * (1/4 s) until it sends a byte. */
    for (;;) {
        unsigned start = rtc_irqs;
        cli();
        while (rtc_irqs - start < 16 && !uart_rx_ready(console_uart))
            __asm__ volatile("sti; hlt; cli" ::: "memory");
        if (uart_rx_ready(console_uart)) {
            (void)inb(console_uart);
            break;
        }
        hostile_ticks++;
        printf("HOSTILE: tick %lu\n", (unsigned long)hostile_ticks);
    }
    rtc_periodic_off();
}

int main(void)
{
    console_setup();
    if (!cmdline_get("case", name, sizeof(name)))
        test_fail("no case= on the command line");
    n_arg = cmdline_get_u64("n", 0, 1000);
    nfns = pci_enumerate(fns, ARRAY_SIZE(fns));
    rnd_bdf = pci_find_device(0x1af4, 0x1044, 0);
    printf("HOSTILE: case=%s n=%lu functions=%u\n", name, (unsigned long)n_arg, nfns);
    bool needs_rnd = !strncmp(name, "bar_", 4) || !strncmp(name, "msix_", 5) || is("pcicfg_window");
    if (needs_rnd && rnd_bdf < 0)
        test_fail("case %s needs virtio-rnd", name);
    if (rnd_bdf >= 0)
        rnd_request(VIRTIO_IRQ_POLL, "setup");

    /* Cases that end the machine or wait to be ended. */
    if (is("i8042_reset") || is("i8042_outport_reset") || is("cf9_reset") || is("cf9_full_reset")) {
        printf("HOSTILE: resetting\n");
        if (is("i8042_reset"))
            outb(0x64, 0xfe);
        else if (is("i8042_outport_reset")) {
            outb(0x64, 0xd1);
            outb(0x60, 0x02);
        } else {
            outb(0xcf9, 0x02);
            outb(0xcf9, is("cf9_full_reset") ? 0x0e : 0x06);
        }
        for (unsigned i = 0; i < 1000000; i++)
            cpu_relax();
        test_fail("still running after the reset request");
    }
    if (is("halt_sigterm")) {
        smp_start_aps(ap_halt, 2000);
        lapic_write(0x320, 1u << 16); /* timer masked: nothing wakes us */
        outb(console_uart + 1, 0);
        printf("HOSTILE: halting\n");
        for (;;)
            __asm__ volatile("sti; hlt" ::: "memory");
    }
    if (is("spin_sigterm") || is("spin_sti_sigterm") || is("spin_pwrbtn")) {
        smp_start_aps(ap_spin, 2000);
        uint16_t sts = 0, en = 0;
        if (is("spin_sti_sigterm"))
            rtc_periodic(3);
        if (is("spin_pwrbtn")) {
            const struct acpi_info *ai = acpi_get();
            const uint8_t *fadt = phys_to_ptr(ai->fadt);
            uint32_t evt;
            memcpy(&evt, fadt + 56, 4);
            sts = (uint16_t)evt;
            en = (uint16_t)(evt + fadt[88] / 2);
            outw(sts, 0x100);
            outw(en, 0x100);
        }
        printf("HOSTILE: spinning\n");
        bool seen = false;
        for (;;) {
            if (is("spin_sti_sigterm"))
                sti();
            else
                cli();
            for (unsigned i = 0; i < 100000; i++)
                hostile_ticks++;
            if (en && !seen && (inw(sts) & 0x100)) {
                seen = true;
                printf("HOSTILE: power button pressed; ignoring it\n");
            }
        }
    }

    sample("setup");
    if (is("bar_mem_toggle")) bar_mem_toggle();
    else if (is("bar_io_toggle")) bar_io_toggle();
    else if (is("bar_move")) bar_move();
    else if (is("bar_move_wild")) bar_move_wild();
    else if (is("bar_sizing_storm")) bar_sizing_storm();
    else if (is("msix_table_walk")) msix_table_walk();
    else if (is("msix_pba")) msix_pba();
    else if (is("msix_garbage_vectors")) msix_garbage_vectors();
    else if (is("msix_mask_storm")) msix_mask_storm();
    else if (is("cfg_walk_cf8")) cfg_walk_cf8();
    else if (is("cfg_walk_ecam")) cfg_walk_ecam();
    else if (is("cfg_garbage_cf8")) cfg_garbage(false);
    else if (is("cfg_garbage_ecam")) cfg_garbage(true);
    else if (is("cfg_unaligned")) cfg_unaligned();
    else if (is("pcicfg_window")) pcicfg_window();
    else if (is("fwcfg_scan")) fwcfg_scan();
    else if (is("fwcfg_past_end")) fwcfg_past_end();
    else if (!strncmp(name, "uart_flood_com", 14)) uart_flood((unsigned)(name[14] - '0'));
    else if (is("uart_loopback_flood")) uart_loopback_flood();
    else if (is("uart_regs_walk")) uart_regs_walk();
    else if (is("rtc_fastest")) rtc_fastest();
    else if (is("rtc_noack")) rtc_noack();
    else if (is("rtc_cmos_walk")) rtc_cmos_walk();
    else if (is("i8042_garbage")) i8042_garbage();
    else if (is("cf9_garbage")) cf9_garbage();
    else if (is("halt_sti")) halt_sti();
    else if (is("gdb_flood")) gdb_ticks();
    else test_fail("unknown case %s", name);
    sample("end");
    sane();
    return 0;
}
