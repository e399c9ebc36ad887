/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Helpers shared by the benchmark guests (pmtbench, ipibench), header-only so
 * that each guest stays one .c file: where the ACPI PM timer is, and a TSC
 * rate measured against it, so the same guest times itself alike under
 * khyve and QEMU (-M pc: PIIX4 PM base 0x600 + 8; khyve: 0x408).
 */
#ifndef GUEST_BENCH_H
#define GUEST_BENCH_H

#include "guest.h"

#define PM_TIMER_HZ 3579545ull
#define PM_TIMER_MASK 0xffffffu

/*
 * The PM timer's I/O port from the FADT: X_PM_TMR_BLK (a GAS, ACPI 2.0+)
 * when it names an I/O port, else PM_TMR_BLK with PM_TMR_LEN == 4.  0 when
 * there is none (no ACPI, or a hardware-reduced FADT such as microvm's).
 */
static inline uint16_t bench_pm_timer_port(void)
{
    const struct acpi_info *ai = acpi_get();
    if (!ai->fadt)
        return 0;
    const uint8_t *fadt = phys_to_ptr(ai->fadt);
    uint32_t len = ((const struct acpi_header *)fadt)->length;
    if (len >= 220) {
        const struct acpi_gas *g = (const struct acpi_gas *)(fadt + 208);
        if (g->space_id == 1 && g->address && g->address <= 0xfffc)
            return (uint16_t)g->address;
    }
    if (len >= 92) {
        uint32_t port;
        memcpy(&port, fadt + 76, 4);
        if (port && port <= 0xfffc && fadt[91] == 4)
            return (uint16_t)port;
    }
    return 0;
}

static inline uint32_t bench_pm_read(uint16_t port)
{
    return inl(port) & PM_TIMER_MASK;
}

/*
 * TSC kHz measured against the PM timer over `ms` milliseconds (each read
 * samples the timer mid-exit, so the exit cost cancels out), or the
 * runtime's tsc_khz() when there is no PM timer.  *source names which.
 */
static inline uint64_t bench_tsc_khz(uint16_t pm_port, unsigned ms, const char **source)
{
    if (!pm_port) {
        *source = tsc_khz_source();
        return tsc_khz();
    }
    uint64_t want = PM_TIMER_HZ * ms / 1000, ticks = 0;
    uint32_t last = bench_pm_read(pm_port);
    uint64_t t0 = rdtsc(), t1;
    do {
        uint32_t now = bench_pm_read(pm_port);
        t1 = rdtsc();
        ticks += (now - last) & PM_TIMER_MASK;
        last = now;
    } while (ticks < want);
    *source = "pm-timer";
    return (t1 - t0) * PM_TIMER_HZ / (ticks * 1000);
}

#endif
