/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Enables the ACPI fixed-feature power button (PM1_EN.PWRBTN_EN) and waits
 * for a press (PM1_STS.PWRBTN_STS), as an OS does; then clears the status
 * and enters S5. The host presses the button with `kill -TERM`. Output:
 *   POWERBUTTON: waiting (PM1a_EVT=0x<port>)
 *   POWERBUTTON: pressed
 *   ACPI: poweroff: ...
 */
#include "guest.h"

#define PWRBTN (1u << 8)

int main(void)
{
    const struct acpi_info *ai = acpi_get();
    if (!ai->fadt)
        test_fail("no FADT");
    const uint8_t *fadt = phys_to_ptr(ai->fadt);
    uint32_t evt;
    memcpy(&evt, fadt + 56, 4); /* PM1a_EVT_BLK */
    uint8_t evt_len = fadt[88];
    if (!evt || evt_len < 4)
        test_fail("no PM1a event block (port 0x%x, length %u)", evt, evt_len);
    uint16_t sts = (uint16_t)evt, en = (uint16_t)(evt + evt_len / 2);

    outw(sts, PWRBTN); /* clear a stale status */
    outw(en, inw(en) | PWRBTN);
    if (!(inw(en) & PWRBTN))
        test_fail("PWRBTN_EN did not stick");
    printf("POWERBUTTON: waiting (PM1a_EVT=0x%x)\n", evt);
    while (!(inw(sts) & PWRBTN))
        mdelay(1);
    outw(sts, PWRBTN);
    if (inw(sts) & PWRBTN)
        test_fail("PWRBTN_STS did not clear on write-1");
    printf("POWERBUTTON: pressed\n");
    acpi_poweroff(-1);
    test_fail("still running after S5");
}
