/* The MC146818 real-time clock and its 128 bytes of CMOS at ports 0x70
 * (index; bit 7 masks NMI) and 0x71 (data), interrupting on IRQ 8. The
 * clock is the host's UTC clock plus an offset the guest sets by writing
 * the time registers. The CMOS holds the memory sizes firmware reads
 * (0x15-0x18, 0x30-0x31, 0x34-0x35, 0x5b-0x5d). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "dev/platform.h"

struct rtc;

#define RTC_PORT 0x70
#define RTC_IRQ 8

/* RAM sizes come from p->mem. Update, alarm and periodic interrupts run
 * on a timerfd on p->loop while the guest enables them (with no loop the
 * flags in register C are still kept, but no interrupt is raised until
 * the guest's next RTC access). Returns 0 or -errno. */
int rtc_create(struct platform *p, struct rtc **out);
/* Keep local time (bhyve's default) rather than UTC (bhyve -u, and the
 * state after rtc_create): the clock is shifted by the host's UTC offset
 * as it is now (a later DST change is not followed, as in bhyve). Call
 * before the guest runs; the guest's own settings stay relative to it. */
void rtc_set_localtime(struct rtc *rtc, bool localtime);
/* The clock the RTC keeps time by: nanoseconds of host CLOCK_REALTIME by
 * default (clock NULL). Another clock (a test that steps time itself, so
 * that nothing depends on scheduling) has no timer behind it: its owner
 * calls rtc_poll() once the clock reaches rtc_next_event_ns(). Call before
 * the guest runs. */
typedef int64_t rtc_clock_fn(void *ctx);
void rtc_set_clock(struct rtc *rtc, rtc_clock_fn *clock, void *ctx);
/* The clock time of the next event that can raise the interrupt, or 0 when
 * none can (no interrupt enabled, or IRQF still pending). */
int64_t rtc_next_event_ns(struct rtc *rtc);
/* Evaluate the flags at the clock's time now, as the timer does. */
void rtc_poll(struct rtc *rtc);
/* The RTC's alarm output as a PC's chipset sees it: fn(ctx) is called
 * each time the alarm raises the interrupt (AF set with AIE on asserts
 * IRQ8), without the RTC's lock held, on the thread that noticed: the
 * event loop's timer (which keeps running while the guest's vCPUs are
 * stopped, so an alarm armed before S3 wakes the guest) or a vCPU
 * accessing the RTC. NULL fn: none (the state after rtc_create). */
typedef void rtc_alarm_fn(void *ctx);
void rtc_set_wake_hook(struct rtc *rtc, rtc_alarm_fn *fn, void *ctx);
/* Call with the event loop stopped. */
void rtc_destroy(struct rtc *rtc);
