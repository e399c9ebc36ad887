/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Counts ACPI PM timer ticks (FADT PM_TMR_BLK, 24 bits, 3.579545 MHz) over
 * one second of the RTC, and checks the timer never runs backwards.
 * Output:
 *   PMTIMER: port=0x<port> ticks_per_rtc_second=<n>
 *   PASS
 */
#include "guest.h"

static uint8_t rtc_seconds(void)
{
    outb(0x70, 0x00);
    return inb(0x71);
}

static void wait_second_edge(void)
{
    uint8_t s = rtc_seconds();
    while (rtc_seconds() == s)
        ;
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

    wait_second_edge();
    uint32_t start = inl((uint16_t)port) & 0xffffff;
    uint32_t last = start;
    uint64_t ticks = 0;
    uint8_t s = rtc_seconds();
    while (rtc_seconds() == s) {
        uint32_t now = inl((uint16_t)port) & 0xffffff;
        ticks += (now - last) & 0xffffff;
        last = now;
    }
    printf("PMTIMER: port=0x%x ticks_per_rtc_second=%lu\n", port, (unsigned long)ticks);
    return 0;
}
