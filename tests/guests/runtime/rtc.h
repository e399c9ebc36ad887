/* SPDX-License-Identifier: BSD-2-Clause */
/* CMOS (MC146818) real-time clock through ports 0x70/0x71. */
#ifndef GUEST_RTC_H
#define GUEST_RTC_H

#include <stdint.h>

struct rtc_time {
    unsigned year;          /* full year, e.g. 2026 (century from reg 0x32 if sane, else 20) */
    unsigned month, day;
    unsigned hour, min, sec;    /* 24-hour */
    uint8_t reg_a, reg_b;   /* raw status registers A and B */
    uint8_t century;        /* raw register 0x32 */
};

uint8_t cmos_read(uint8_t reg);
void cmos_write(uint8_t reg, uint8_t val);
/* Waits for UIP to clear, reads until two reads agree, converts BCD/12h
 * per register B.  0 on success, -1 if UIP never cleared or no stable read. */
int rtc_read(struct rtc_time *t);

#endif
