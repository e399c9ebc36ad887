/* SPDX-License-Identifier: BSD-2-Clause */
#include "rtc.h"
#include "io.h"
#include "lib.h"

uint8_t cmos_read(uint8_t reg)
{
    outb(0x70, reg);
    return inb(0x71);
}

void cmos_write(uint8_t reg, uint8_t val)
{
    outb(0x70, reg);
    outb(0x71, val);
}

static int wait_uip(void)
{
    /* An update cycle takes < 2 ms; each poll is a port exit (several us). */
    for (uint32_t i = 0; i < 100000; i++)
        if (!(cmos_read(0x0a) & 0x80))
            return 0;
    return -1;
}

struct raw {
    uint8_t sec, min, hour, day, mon, year, cent;
};

static int read_raw(struct raw *r)
{
    if (wait_uip())
        return -1;
    r->sec = cmos_read(0x00);
    r->min = cmos_read(0x02);
    r->hour = cmos_read(0x04);
    r->day = cmos_read(0x07);
    r->mon = cmos_read(0x08);
    r->year = cmos_read(0x09);
    r->cent = cmos_read(0x32);
    return 0;
}

static unsigned bcd(uint8_t v)
{
    return (v >> 4) * 10 + (v & 15);
}

int rtc_read(struct rtc_time *t)
{
    struct raw a, b;
    int tries;
    unsigned cent;
    bool pm;

    if (read_raw(&a))
        return -1;
    for (tries = 0; tries < 10; tries++) {
        if (read_raw(&b))
            return -1;
        if (!memcmp(&a, &b, sizeof(a)))
            break;
        a = b;
    }
    if (tries == 10)
        return -1;
    t->reg_a = cmos_read(0x0a);
    t->reg_b = cmos_read(0x0b);
    t->century = a.cent;
    pm = a.hour & 0x80;
    a.hour &= 0x7f;
    if (!(t->reg_b & 0x04)) {       /* BCD */
        t->sec = bcd(a.sec);
        t->min = bcd(a.min);
        t->hour = bcd(a.hour);
        t->day = bcd(a.day);
        t->month = bcd(a.mon);
        t->year = bcd(a.year);
        cent = bcd(a.cent);
    } else {
        t->sec = a.sec;
        t->min = a.min;
        t->hour = a.hour;
        t->day = a.day;
        t->month = a.mon;
        t->year = a.year;
        cent = a.cent;
    }
    if (!(t->reg_b & 0x02)) {       /* 12-hour mode */
        t->hour %= 12;
        if (pm)
            t->hour += 12;
    }
    if (cent < 19 || cent > 21)
        cent = 20;
    t->year += cent * 100;
    return 0;
}
