/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * IPI round-trip benchmark for bench/run (needs 2 vCPUs): the BSP sends
 * fixed vector 0x40 to the AP, whose handler sends vector 0x41 back; the BSP
 * spins (interrupts on) until that arrives, then sends the next.  Two
 * phases, one boot: the AP busy-polling (a PAUSE loop with interrupts on),
 * then the AP halted (STI; HLT, woken by each IPI).  With an in-kernel LAPIC
 * no step of this leaves the kernel: it measures the VMM's vCPU threads as
 * the host schedules them, and KVM's IPI and halt paths as the VMM set them
 * up.  Uses x2APIC when CPUID offers it (as Linux does), else xAPIC MMIO.
 * "n=<round trips per phase>" on the command line (default 20000) and
 * "warmup=<untimed round trips first in each phase>" (default 1000).
 * Output (integers; bench/run does the division):
 *   IPIBENCH: apic=<x2apic|xapic> bsp=<id> ap=<id> tsc_khz=<n> (<source>)
 *   IPIBENCH: mode=busy n=<n> cycles=<tsc cycles>
 *   IPIBENCH: mode=halt n=<n> cycles=<tsc cycles>
 *   PASS
 */
#include "guest.h"
#include "bench.h"

#define VEC_PING 0x40
#define VEC_PONG 0x41
static uint64_t warmup;
#define APIC_BASE_MSR 0x1b
#define APIC_BASE_EN (1ull << 11)
#define APIC_BASE_EXTD (1ull << 10)
#define ICR_ASSERT (1u << 14)

static bool x2;
static uintptr_t xapic;
static uint32_t bsp_id;
static volatile uint32_t ap_id, ap_ready, ap_halt, ap_stop, ap_stopped;
static volatile uint64_t pongs, pings;

static inline void eoi(void)
{
    if (x2)
        wrmsr(0x80b, 0);
    else
        *(volatile uint32_t *)(xapic + LAPIC_EOI) = 0;
}

/* No wait for the delivery-status bit: KVM delivers within the write. */
static inline void send_ipi(uint32_t dest, uint8_t vec)
{
    if (x2) {
        wrmsr(0x830, (uint64_t)dest << 32 | ICR_ASSERT | vec);
    } else {
        *(volatile uint32_t *)(xapic + LAPIC_ICR_HI) = dest << 24;
        *(volatile uint32_t *)(xapic + LAPIC_ICR_LO) = ICR_ASSERT | vec;
    }
}

static bool on_interrupt(struct trap_frame *f)
{
    if (f->vector == VEC_PING) {
        pings++;
        eoi();
        send_ipi(bsp_id, VEC_PONG);
        return true;
    }
    if (f->vector == VEC_PONG) {
        pongs++;
        eoi();
        return true;
    }
    return false;
}

static void apic_setup(void)
{
    if (x2)
        wrmsr(APIC_BASE_MSR, rdmsr(APIC_BASE_MSR) | APIC_BASE_EN | APIC_BASE_EXTD);
    lapic_enable();
}

static void ap_main(uint32_t apic)
{
    apic_setup();
    ap_id = apic;
    __atomic_store_n(&ap_ready, 1, __ATOMIC_RELEASE);
    sti();
    while (!ap_stop) {
        if (ap_halt)
            __asm__ volatile("sti; hlt" : : : "memory");
        else
            cpu_relax();
    }
    cli();
    ap_stopped = 1;
}

static void round_trips(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t want = pongs + 1;
        send_ipi(ap_id, VEC_PING);
        while (pongs != want)
            cpu_relax();
    }
}

static void phase(const char *mode, uint64_t n)
{
    round_trips(warmup);
    uint64_t t0 = rdtsc();
    round_trips(n);
    uint64_t t1 = rdtsc();
    printf("IPIBENCH: mode=%s n=%lu cycles=%lu\n", mode, n, t1 - t0);
}

int main(void)
{
    warmup = cmdline_get_u64("warmup", 0, 1000);
    uint64_t n = cmdline_get_u64("n", 0, 20000);
    uint32_t ecx;
    const char *src;

    cpuid(1, NULL, NULL, &ecx, NULL);
    x2 = (ecx & (1u << 21)) && !cmdline_has("xapic");
    xapic = (uintptr_t)lapic_base();
    uint64_t khz = bench_tsc_khz(bench_pm_timer_port(), 20, &src);

    set_exception_hook(on_interrupt);
    if (smp_start_aps(ap_main, 2000) < 1)
        test_fail("ipibench needs a second vCPU");
    apic_setup();
    bsp_id = this_apic_id();
    while (!__atomic_load_n(&ap_ready, __ATOMIC_ACQUIRE))
        cpu_relax();
    printf("IPIBENCH: apic=%s bsp=%u ap=%u tsc_khz=%lu (%s)\n", x2 ? "x2apic" : "xapic",
           bsp_id, ap_id, khz, src);
    sti();
    phase("busy", n);
    ap_halt = 1;
    phase("halt", n);
    /* The last ping wakes the AP to see ap_stop; its pong still comes. */
    ap_stop = 1;
    uint64_t want = pongs + 1;
    send_ipi(ap_id, VEC_PING);
    for (int i = 0; i < 10000000 && (pongs != want || !ap_stopped); i++)
        cpu_relax();
    cli();
    if (pings != pongs)
        test_fail("%lu pings, %lu pongs", (unsigned long)pings, (unsigned long)pongs);
    return 0;
}
