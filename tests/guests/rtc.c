/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Reads the CMOS RTC.  Output:
 *   RTC: YYYY-MM-DD HH:MM:SS regB=0x<2 hex> regA=0x<2 hex> century=0x<2 hex> mode=<bcd|binary> <24h|12h>
 *   PASS  (or FAIL: <reason> if the clock could not be read or is out of range)
 */
#include "guest.h"

int main(void)
{
    struct rtc_time t;

    if (rtc_read(&t))
        test_fail("RTC: update-in-progress never cleared or no stable reading");
    printf("RTC: %04u-%02u-%02u %02u:%02u:%02u regB=0x%02x regA=0x%02x century=0x%02x mode=%s %s\n",
           t.year, t.month, t.day, t.hour, t.min, t.sec, t.reg_b, t.reg_a, t.century,
           (t.reg_b & 0x04) ? "binary" : "bcd", (t.reg_b & 0x02) ? "24h" : "12h");
    if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.min > 59 ||
        t.sec > 59)
        test_fail("RTC: value out of range");
    return 0;
}
