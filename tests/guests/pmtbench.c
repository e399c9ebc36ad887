/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Exit-cost benchmark for bench/run: n reads of the ACPI PM timer (an exit
 * that the VMM serves in user space, in khyve and QEMU alike), and n CPUIDs
 * (an exit KVM serves in the kernel: the floor under the first).  The PM
 * timer's port comes from the FADT (bench.h), so the guest runs unchanged
 * under khyve and QEMU -M pc.  "n=<count>" on the command line (default
 * 100000) and "warmup=<untimed operations of each kind first>" (default 1000).
 * Output (integers only; bench/run does the division):
 *   PMTBENCH: port=0x<port> tsc_khz=<n> (<source>)    or   PMTBENCH: port=none ...
 *   PMTBENCH: op=pmtimer n=<n> cycles=<tsc cycles> ticks=<PM timer ticks>
 *   PMTBENCH: op=cpuid n=<n> cycles=<tsc cycles>
 *   PASS
 * The op=pmtimer line is left out when there is no PM timer.
 */
#include "guest.h"
#include "bench.h"

static uint64_t warmup;

static void cpuid_loop(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint32_t a, b, c, d;
        cpuid(0, &a, &b, &c, &d);
        __asm__ volatile("" : : "r"(a), "r"(b), "r"(c), "r"(d));
    }
}

int main(void)
{
    warmup = cmdline_get_u64("warmup", 0, 1000);
    uint64_t n = cmdline_get_u64("n", 0, 100000);
    uint16_t port = bench_pm_timer_port();
    const char *src;
    uint64_t khz = bench_tsc_khz(port, 20, &src);

    if (port)
        printf("PMTBENCH: port=0x%x tsc_khz=%lu (%s)\n", port, khz, src);
    else
        printf("PMTBENCH: port=none tsc_khz=%lu (%s)\n", khz, src);

    if (port) {
        for (uint64_t i = 0; i < warmup; i++)
            (void)bench_pm_read(port);
        /* The loop's own reads time it: ticks between the first and the last. */
        uint32_t first = bench_pm_read(port), last = first;
        uint64_t ticks = 0;
        uint64_t t0 = rdtsc();
        for (uint64_t i = 0; i < n; i++) {
            uint32_t now = bench_pm_read(port);
            ticks += (now - last) & PM_TIMER_MASK;
            last = now;
        }
        uint64_t t1 = rdtsc();
        printf("PMTBENCH: op=pmtimer n=%lu cycles=%lu ticks=%lu\n", n, t1 - t0, ticks);
    }

    cpuid_loop(warmup);
    uint64_t t0 = rdtsc();
    cpuid_loop(n);
    uint64_t t1 = rdtsc();
    printf("PMTBENCH: op=cpuid n=%lu cycles=%lu\n", n, t1 - t0);
    return 0;
}
