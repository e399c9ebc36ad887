/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Measures the ACPI PM timer (FADT PM_TMR_BLK, 24 bits, 3.579545 MHz)
 * against one second of the RTC, and checks the timer never runs
 * backwards. Each RTC second edge is bracketed by a PM timer read before
 * the last RTC read that showed the old second and one after the first that
 * showed the new one, so the bounds hold however the vCPU is scheduled:
 * a preempted vCPU only widens them.
 * Output:
 *   PMTIMER: port=0x<port> ticks_per_rtc_second=<min>..<max>
 *   PASS
 */
#include "guest.h"

static uint16_t pm_port;
static uint32_t pm_last;
static uint64_t pm_ticks; /* the 24-bit timer, extended */

static uint64_t pm_now(void)
{
    uint32_t now = inl(pm_port) & 0xffffff;
    pm_ticks += (now - pm_last) & 0xffffff;
    pm_last = now;
    return pm_ticks;
}

static uint8_t rtc_seconds(void)
{
    outb(0x70, 0x00);
    return inb(0x71);
}

/* The next change of the RTC's seconds happened between *lo and *hi. */
static void second_edge(uint64_t *lo, uint64_t *hi)
{
    uint64_t before = pm_now();
    uint8_t s = rtc_seconds();
    for (;;) {
        uint64_t next = pm_now();
        if (rtc_seconds() != s)
            break;
        before = next;
    }
    *lo = before;
    *hi = pm_now();
}

int main(void)
{
    const struct acpi_info *ai = acpi_get();
    if (!ai->fadt)
        test_fail("no FADT");
    const uint8_t *fadt = phys_to_ptr(ai->fadt);
    uint32_t port;
    memcpy(&port, fadt + 76, 4); /* PM_TMR_BLK */
    if (!port || fadt[91] != 4)
        test_fail("no PM timer (port 0x%x, length %u)", port, fadt[91]);
    pm_port = (uint16_t)port;
    pm_last = inl(pm_port) & 0xffffff;

    uint64_t lo1, hi1, lo2, hi2;
    second_edge(&lo1, &hi1);
    second_edge(&lo2, &hi2);
    printf("PMTIMER: port=0x%x ticks_per_rtc_second=%lu..%lu\n", port,
           (unsigned long)(lo2 - hi1), (unsigned long)(hi2 - lo1));
    return 0;
}
