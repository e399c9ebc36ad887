/* The MC146818 RTC/CMOS on a clock the test steps itself, so no check
 * depends on scheduling: time in BCD and binary, 12-hour mode, setting the
 * time, register C, UIP, the interrupts and when the timer would fire, the
 * alarm's wake hook, and the memory-size bytes; then one run on the host clock with the real
 * timerfd on an event loop thread, waiting for each interrupt to arrive. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/unit.h"
#include "port_io.h"
#include "dev/platform.h"
#include "dev/rtc.h"
#include "util/evloop.h"

#define REG_A 0x0A
#define REG_B 0x0B
#define REG_C 0x0C
#define REG_D 0x0D

static atomic_int irq_level[24];

static void rec_set_irq(struct platform *p, unsigned gsi, bool level)
{
	(void)p;
	if (gsi < 24)
		atomic_store(&irq_level[gsi], level);
}

static void rec_request_exit(struct platform *p, int status, const char *reason)
{
	(void)p;
	(void)status;
	(void)reason;
}


static uint8_t cmos_read(uint8_t idx)
{
	outb(0x70, idx);
	return inb(0x71);
}

static void cmos_write(uint8_t idx, uint8_t v)
{
	outb(0x70, idx);
	outb(0x71, v);
}

/* The RTC's clock in these tests: set by the test, never by the host, so
 * nothing depends on how the test is scheduled. */
#define NS 1000000000LL
static int64_t clock_ns;

static int64_t test_clock(void *ctx)
{
	(void)ctx;
	return clock_ns;
}

/* 2026-12-04 12:34:56 UTC, a Friday, plus ns. */
#define T0 1796387696LL
static void set_clock(int64_t sec, int64_t ns) { clock_ns = sec * NS + ns; }
static void advance_ns(int64_t ns) { clock_ns += ns; }

static int bcd(uint8_t v) { return (v >> 4) * 10 + (v & 0xF); }

/* Read the clock as a guest would (UIP is clear away from a boundary). */
static time_t read_clock(bool binary, bool h24)
{
	CHECK_EQ(cmos_read(REG_A) & 0x80, 0);
	int (*dec)(uint8_t) = binary ? NULL : bcd;
#define D(v) (dec ? dec(v) : (v))
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_sec = D(cmos_read(0x00));
	tm.tm_min = D(cmos_read(0x02));
	uint8_t h = cmos_read(0x04);
	if (h24) {
		tm.tm_hour = D(h);
	} else {
		tm.tm_hour = D(h & 0x7F) % 12 + ((h & 0x80) ? 12 : 0);
	}
	tm.tm_mday = D(cmos_read(0x07));
	tm.tm_mon = D(cmos_read(0x08)) - 1;
	int year = D(cmos_read(0x09)) + 100 * D(cmos_read(0x32));
	tm.tm_year = year - 1900;
	int wday = D(cmos_read(0x06)) - 1;
#undef D
	time_t t = timegm(&tm);
	struct tm check;
	gmtime_r(&t, &check);
	CHECK_EQ(check.tm_wday, wday);
	return t;
}

static time_t clock_sec(void) { return (time_t)(clock_ns / NS); }

static void test_time(void)
{
	set_clock(T0, 500000000);
	CHECK_EQ(cmos_read(REG_A) & 0x7F, 0x26);
	CHECK_EQ(cmos_read(REG_B), 0x02); /* 24 h, BCD */
	CHECK_EQ(cmos_read(REG_D), 0x80);

	/* BCD, 24 h: 12:34:56 on Friday 2026-12-04. */
	CHECK_EQ(read_clock(false, true), T0);
	CHECK_EQ(cmos_read(0x04), 0x12);
	CHECK_EQ(cmos_read(0x06), 6);
	/* Binary, 24 h. */
	cmos_write(REG_B, 0x06);
	CHECK_EQ(read_clock(true, true), T0);
	CHECK_EQ(cmos_read(0x00), 56);
	/* Binary, 12 h: 12 PM. */
	cmos_write(REG_B, 0x04);
	CHECK_EQ(read_clock(true, false), T0);
	CHECK_EQ(cmos_read(0x04), 0x80 | 12);
	/* The seconds tick with the clock. */
	advance_ns(NS);
	CHECK_EQ(read_clock(true, false), T0 + 1);
	/* BCD, 12 h, an hour later: 1 PM. */
	cmos_write(REG_B, 0x00);
	advance_ns(3600 * NS);
	CHECK_EQ(read_clock(false, false), T0 + 3601);
	CHECK_EQ(cmos_read(0x04), 0x81);
	cmos_write(REG_B, 0x02);
}

/* Each test starts later than the last ended: the RTC, like the host's clock,
 * signals nothing while time runs backwards (the flags test checks that). */
#define T1 (T0 + 2 * 3600)
#define T2 (T0 + 3 * 3600)
#define T3 (T0 + 4 * 3600)
#define T4 (T0 + 6 * 86400)

static void test_set_time(void)
{
	set_clock(T1, 100000000);
	/* Set 1999-12-31 23:59:58 (BCD, 24 h) with SET held. */
	cmos_write(REG_B, 0x82);
	cmos_write(0x00, 0x58);
	cmos_write(0x02, 0x59);
	cmos_write(0x04, 0x23);
	cmos_write(0x07, 0x31);
	cmos_write(0x08, 0x12);
	cmos_write(0x09, 0x99);
	cmos_write(0x32, 0x19);
	/* Frozen while SET is on, however long. */
	advance_ns(5 * NS);
	CHECK_EQ(cmos_read(0x00), 0x58);
	CHECK_EQ(cmos_read(0x09), 0x99);
	set_clock(T1 + 5, NS - 1000); /* inside the UIP window: none while SET */
	CHECK_EQ(cmos_read(REG_A) & 0x80, 0);
	set_clock(T1 + 6, 100000000);
	cmos_write(REG_B, 0x02);
	struct tm want = { .tm_sec = 58, .tm_min = 59, .tm_hour = 23, .tm_mday = 31,
			   .tm_mon = 11, .tm_year = 99 };
	CHECK_EQ(read_clock(false, true), timegm(&want));
	CHECK_EQ(cmos_read(0x06), 6); /* a Friday */
	/* Two seconds on: the century rolls over. */
	advance_ns(2 * NS);
	CHECK_EQ(read_clock(false, true), timegm(&want) + 2);
	CHECK_EQ(cmos_read(0x32), 0x20);
	CHECK_EQ(cmos_read(0x09), 0x00);
	CHECK_EQ(cmos_read(0x06), 7); /* 2000-01-01, a Saturday */

	/* Without SET: a single register write moves the clock. */
	cmos_write(0x09, 0x26);
	cmos_write(0x32, 0x20);
	struct tm tm;
	time_t t = read_clock(false, true);
	gmtime_r(&t, &tm);
	CHECK_EQ(tm.tm_year + 1900, 2026);
	CHECK_EQ(tm.tm_mon, 0);
	CHECK_EQ(tm.tm_mday, 1);

	/* 0000-01-01 00:00:00, then month 0: that would be December of year
	 * -1, which the registers cannot show (the year read 0xFF, found by
	 * fuzz_rtc): the clock keeps its time instead. */
	cmos_write(REG_B, 0x82);
	cmos_write(0x00, 0x00);
	cmos_write(0x02, 0x00);
	cmos_write(0x04, 0x00);
	cmos_write(0x07, 0x01);
	cmos_write(0x08, 0x01);
	cmos_write(0x09, 0x00);
	cmos_write(0x32, 0x00);
	cmos_write(REG_B, 0x02);
	CHECK_EQ(cmos_read(0x09), 0x00);
	cmos_write(0x08, 0x00);
	CHECK_EQ(cmos_read(0x09), 0x00);
	CHECK_EQ(cmos_read(0x08), 0x01);
	CHECK_EQ(cmos_read(0x32), 0x00);

	/* Back to the clock's time, in binary and 12 h mode (PM bit). */
	time_t now = clock_sec();
	gmtime_r(&now, &tm);
	cmos_write(REG_B, 0x84);
	cmos_write(0x00, (uint8_t)tm.tm_sec);
	cmos_write(0x02, (uint8_t)tm.tm_min);
	int h12 = tm.tm_hour % 12;
	cmos_write(0x04, (uint8_t)((h12 ? h12 : 12) | (tm.tm_hour >= 12 ? 0x80 : 0)));
	cmos_write(0x07, (uint8_t)tm.tm_mday);
	cmos_write(0x08, (uint8_t)(tm.tm_mon + 1));
	cmos_write(0x09, (uint8_t)(tm.tm_year % 100));
	cmos_write(0x32, (uint8_t)((tm.tm_year + 1900) / 100));
	cmos_write(REG_B, 0x04);
	CHECK_EQ(read_clock(true, false), now);
	cmos_write(REG_B, 0x02);
	CHECK_EQ(read_clock(false, true), now);
}

static void test_localtime(struct rtc *r)
{
	/* A zone three hours east of UTC, without DST. */
	setenv("TZ", "XYZ-3", 1);
	rtc_set_localtime(r, true);
	CHECK_EQ(read_clock(false, true), clock_sec() + 3 * 3600);
	rtc_set_localtime(r, true); /* idempotent */
	CHECK_EQ(read_clock(false, true), clock_sec() + 3 * 3600);
	rtc_set_localtime(r, false);
	CHECK_EQ(read_clock(false, true), clock_sec());
	unsetenv("TZ");
}

static void test_nmi_index(void)
{
	outb(0x70, 0x80 | 0x0D); /* NMI masked, register D */
	CHECK_EQ(inb(0x71), 0x80);
	outb(0x70, 0x80 | 0x40);
	outb(0x71, 0x5A);
	outb(0x70, 0x40);
	CHECK_EQ(inb(0x71), 0x5A);
	CHECK_EQ(inb(0x70), 0xFF); /* the index port is write-only */
	/* A word write: index, then data. */
	uint8_t d[8] = { 0x41, 0xA5 };
	io_bus_access(pio, 0x70, 2, true, d);
	CHECK_EQ(cmos_read(0x41), 0xA5);
}

static void test_uip(void)
{
	/* UIP shows for the 244 us before each second, and only then. */
	set_clock(T2, NS - 245000);
	CHECK_EQ(cmos_read(REG_A) & 0x80, 0);
	set_clock(T2, NS - 244000);
	CHECK_EQ(cmos_read(REG_A) & 0x80, 0x80);
	set_clock(T2, NS - 1);
	CHECK_EQ(cmos_read(REG_A) & 0x80, 0x80);
	set_clock(T2 + 1, 0);
	CHECK_EQ(cmos_read(REG_A) & 0x80, 0);
	set_clock(T2 + 1, 500000000);
	CHECK_EQ(cmos_read(REG_A) & 0x80, 0);
	/* None with the divider chain held in reset. */
	cmos_write(REG_A, 0x66);
	set_clock(T2 + 1, NS - 1000);
	CHECK_EQ(cmos_read(REG_A) & 0x80, 0);
	cmos_write(REG_A, 0x26);
	CHECK_EQ(cmos_read(REG_A) & 0x80, 0x80);
}

/* Step the clock to the RTC's next event and let it fire, as the timer would. */
static void fire_next_event(struct rtc *r)
{
	int64_t t = rtc_next_event_ns(r);
	CHECK(t > clock_ns);
	if (t > clock_ns)
		clock_ns = t;
	rtc_poll(r);
}

static void test_flags(void)
{
	set_clock(T3 + 10, 300000000);
	cmos_read(REG_C);
	CHECK_EQ(cmos_read(REG_C), 0); /* read clears, and no time has passed */

	/* Periodic flag at 1024 Hz (RS = 6), polled: not before a period ends. */
	int64_t period = NS / 1024;
	clock_ns = (clock_ns / period + 1) * period - 1;
	cmos_read(REG_C);
	advance_ns(1);
	CHECK_EQ(cmos_read(REG_C), 0x40);
	advance_ns(period - 1);
	CHECK_EQ(cmos_read(REG_C), 0);
	/* No periodic flag with RS = 0. */
	cmos_write(REG_A, 0x20);
	advance_ns(NS / 2);
	CHECK_EQ(cmos_read(REG_C), 0);

	/* Polled: UF after a second boundary, with no interrupt enabled. */
	set_clock(T3 + 11, 10000000);
	CHECK_EQ(cmos_read(REG_C), 0x10);
	CHECK_EQ(cmos_read(REG_C), 0); /* read clears */
	CHECK_EQ(atomic_load(&irq_level[8]), 0);
	/* No UF with the divider in reset, or while SET holds the clock. */
	cmos_write(REG_A, 0x60);
	advance_ns(NS);
	CHECK_EQ(cmos_read(REG_C), 0);
	cmos_write(REG_A, 0x20);
	cmos_write(REG_B, 0x82);
	advance_ns(NS);
	CHECK_EQ(cmos_read(REG_C), 0);
	cmos_write(REG_B, 0x02);

	/* Alarm with all fields "don't care": AF every second. */
	cmos_write(0x01, 0xC0);
	cmos_write(0x03, 0xC0);
	cmos_write(0x05, 0xC0);
	advance_ns(NS);
	CHECK_EQ(cmos_read(REG_C), 0x30);
	/* An alarm twelve hours away: no AF until then. */
	struct tm tm;
	time_t now = read_clock(false, true); /* SET above held it back a second */
	gmtime_r(&now, &tm);
	cmos_write(REG_B, 0x06); /* binary */
	cmos_write(0x01, (uint8_t)tm.tm_sec);
	cmos_write(0x03, (uint8_t)tm.tm_min);
	cmos_write(0x05, (uint8_t)((tm.tm_hour + 12) % 24));
	advance_ns(NS);
	CHECK_EQ(cmos_read(REG_C), 0x10);
	advance_ns(12 * 3600 * NS - 2 * NS);
	CHECK_EQ(cmos_read(REG_C), 0x10);
	advance_ns(NS);
	CHECK_EQ(cmos_read(REG_C), 0x30);
	/* A jump of more than a day still finds the alarm once. */
	advance_ns(3 * 86400 * NS);
	CHECK_EQ(cmos_read(REG_C), 0x30);
	/* A clock stepped back signals nothing until it passes the old time. */
	advance_ns(-10 * NS);
	CHECK_EQ(cmos_read(REG_C), 0);
	advance_ns(5 * NS);
	CHECK_EQ(cmos_read(REG_C), 0);
	cmos_write(0x01, 0xC0);
	cmos_write(0x03, 0xC0);
	cmos_write(0x05, 0xC0);
	cmos_write(REG_B, 0x02);
	cmos_write(REG_A, 0x26);
}

static void test_irqs(struct rtc *r)
{
	set_clock(T4 + 20, 250000000);
	cmos_read(REG_C);
	CHECK_EQ(rtc_next_event_ns(r), 0); /* nothing enabled: no timer */

	/* Update-ended interrupt: at the next second, raised by the timer. */
	cmos_write(REG_B, 0x12); /* UIE */
	CHECK_EQ(rtc_next_event_ns(r), (T4 + 21) * NS);
	CHECK_EQ(atomic_load(&irq_level[8]), 0);
	fire_next_event(r);
	CHECK_EQ(atomic_load(&irq_level[8]), 1);
	/* Pending IRQF: nothing can change until C is read, so no timer. */
	CHECK_EQ(rtc_next_event_ns(r), 0);
	uint8_t c = cmos_read(REG_C);
	CHECK_EQ(c & 0x90, 0x90);
	CHECK_EQ(atomic_load(&irq_level[8]), 0);
	CHECK_EQ(rtc_next_event_ns(r), (T4 + 22) * NS);
	CHECK_EQ(cmos_read(REG_C) & 0x80, 0);
	/* Setting SET clears UIE. */
	cmos_write(REG_B, 0x92);
	CHECK_EQ(cmos_read(REG_B), 0x82);
	cmos_write(REG_B, 0x02);
	cmos_read(REG_C);

	/* Periodic interrupt at 1024 Hz (RS = 6). */
	cmos_write(REG_B, 0x42);
	int64_t period = NS / 1024;
	CHECK_EQ(rtc_next_event_ns(r), (clock_ns / period + 1) * period);
	fire_next_event(r);
	CHECK_EQ(atomic_load(&irq_level[8]), 1);
	CHECK_EQ(cmos_read(REG_C) & 0xC0, 0xC0);
	CHECK_EQ(atomic_load(&irq_level[8]), 0);
	fire_next_event(r); /* again after acknowledging */
	CHECK_EQ(atomic_load(&irq_level[8]), 1);
	cmos_write(REG_B, 0x02);
	CHECK_EQ(atomic_load(&irq_level[8]), 0); /* disabling drops IRQF */
	cmos_read(REG_C);
	CHECK_EQ(rtc_next_event_ns(r), 0);
	/* Enabling a flag that is already set raises IRQF at once. */
	advance_ns(2 * period);
	cmos_write(REG_B, 0x42);
	CHECK_EQ(atomic_load(&irq_level[8]), 1);
	cmos_write(REG_B, 0x02);
	cmos_read(REG_C);

	/* Alarm interrupt ("don't care" fields: every second). */
	cmos_write(REG_B, 0x22);
	fire_next_event(r);
	CHECK_EQ(atomic_load(&irq_level[8]), 1);
	CHECK_EQ(cmos_read(REG_C) & 0xA0, 0xA0);
	cmos_write(REG_B, 0x02);
	cmos_read(REG_C);
	CHECK_EQ(atomic_load(&irq_level[8]), 0);
}

/* The wake hook: told when the alarm raises IRQ8 (AF with AIE), on the
 * timer's thread as on a vCPU's, and for nothing else. */
static atomic_int alarms;

static void count_alarm(void *ctx)
{
	CHECK(ctx == &alarms);
	atomic_fetch_add(&alarms, 1);
}

static void test_wake_hook(struct rtc *r)
{
	rtc_set_wake_hook(r, count_alarm, &alarms);
	set_clock(T4 + 40, 500000000);
	cmos_read(REG_C);
	cmos_write(REG_B, 0x06); /* binary, 24 h */
	uint8_t sec = cmos_read(0x00);
	cmos_write(0x01, (uint8_t)((sec + 2) % 60)); /* two seconds ahead */
	cmos_write(0x03, 0xC0);
	cmos_write(0x05, 0xC0);

	/* The update interrupt is no alarm. */
	cmos_write(REG_B, 0x16);
	fire_next_event(r);
	CHECK_EQ(atomic_load(&irq_level[8]), 1);
	CHECK_EQ(atomic_load(&alarms), 0);
	cmos_write(REG_B, 0x26); /* AIE only; the alarm second has not come */
	cmos_read(REG_C);
	CHECK_EQ(atomic_load(&irq_level[8]), 0);
	/* The timer reaches the alarm second: IRQ8, and the hook. */
	fire_next_event(r);
	CHECK_EQ(atomic_load(&irq_level[8]), 1);
	CHECK_EQ(atomic_load(&alarms), 1);
	CHECK_EQ(cmos_read(REG_C) & 0xB0, 0xB0); /* IRQF, AF, UF */
	CHECK_EQ(atomic_load(&alarms), 1);

	/* AF set while AIE is off raises nothing; enabling AIE then asserts
	 * IRQ8 because of the alarm, and that is what the hook reports (seen
	 * here on the vCPU's side, the register write). */
	cmos_write(REG_B, 0x06);
	advance_ns(60 * NS);
	CHECK_EQ(atomic_load(&alarms), 1);
	cmos_write(REG_B, 0x26);
	CHECK_EQ(atomic_load(&irq_level[8]), 1);
	CHECK_EQ(atomic_load(&alarms), 2);
	cmos_read(REG_C);

	rtc_set_wake_hook(r, NULL, NULL);
	advance_ns(60 * NS);
	cmos_read(REG_C);
	CHECK_EQ(atomic_load(&alarms), 2);
	cmos_write(0x01, 0xC0);
	cmos_write(REG_B, 0x02);
	cmos_read(REG_C);
	CHECK_EQ(atomic_load(&irq_level[8]), 0);
}

/* The host clock and a real timerfd on a running event loop: the interrupt
 * comes by itself. Waits for the event, however long the host takes. */
static bool wait_irq_level(int level, int max_seconds)
{
	struct timespec ms = { 0, 1000000L };
	for (int i = 0; i < max_seconds * 1000; i++) {
		if (atomic_load(&irq_level[8]) == level)
			return true;
		nanosleep(&ms, NULL);
	}
	return atomic_load(&irq_level[8]) == level;
}

static void test_host_timer(struct rtc *r)
{
	rtc_set_clock(r, NULL, NULL);
	cmos_read(REG_C);
	cmos_write(REG_B, 0x12); /* UIE: once a second */
	CHECK(wait_irq_level(1, 30));
	CHECK_EQ(cmos_read(REG_C) & 0x90, 0x90);
	CHECK(wait_irq_level(1, 30)); /* and again after acknowledging */
	cmos_write(REG_B, 0x42);      /* PIE, 1024 Hz */
	cmos_read(REG_C);
	CHECK(wait_irq_level(1, 30));
	cmos_write(REG_B, 0x02);
	cmos_read(REG_C);
	CHECK_EQ(atomic_load(&irq_level[8]), 0);
	CHECK_EQ(rtc_next_event_ns(r), 0);
}

static void check_mem(uint64_t low, uint64_t high, const uint8_t want[][2], size_t n)
{
	struct guest_mem gm = { .host = NULL, .size = low + high, .low_size = low,
				.high_size = high };
	struct io_bus *bus = io_bus_create("pio2");
	struct io_bus *save = pio;
	pio = bus;
	struct platform p = { .pio = bus, .mem = &gm, .ncpus = 2, .set_irq = rec_set_irq,
			      .request_exit = rec_request_exit };
	struct rtc *r = NULL;
	CHECK_EQ(rtc_create(&p, &r), 0);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ(cmos_read(want[i][0]), want[i][1]);
	unsigned sum = 0;
	for (unsigned i = 0x10; i <= 0x2d; i++)
		sum += cmos_read((uint8_t)i);
	CHECK_EQ(cmos_read(0x2e), (sum >> 8) & 0xFF);
	CHECK_EQ(cmos_read(0x2f), sum & 0xFF);
	CHECK_EQ(cmos_read(0x5f), 1); /* CPUs - 1 */
	rtc_destroy(r);
	pio = save;
	io_bus_destroy(bus);
}

static void test_memory_bytes(void)
{
	/* 512 MiB. */
	static const uint8_t m512[][2] = {
		{ 0x15, 0x80 }, { 0x16, 0x02 },          /* 640 KiB */
		{ 0x17, 0xFF }, { 0x18, 0xFF },          /* 511 MiB in KiB, capped */
		{ 0x30, 0xFF }, { 0x31, 0xFF },
		{ 0x34, 0x00 }, { 0x35, 0x1F },          /* (512-16) MiB / 64 KiB = 0x1F00 */
		{ 0x5b, 0x00 }, { 0x5c, 0x00 }, { 0x5d, 0x00 },
	};
	check_mem(512ULL << 20, 0, m512, sizeof(m512) / sizeof(m512[0]));
	/* 6 GiB: 3 GiB low, 3 GiB from 4 GiB. */
	static const uint8_t m6g[][2] = {
		{ 0x15, 0x80 }, { 0x16, 0x02 },
		{ 0x17, 0xFF }, { 0x18, 0xFF },
		{ 0x30, 0xFF }, { 0x31, 0xFF },
		{ 0x34, 0x00 }, { 0x35, 0xBF },          /* (3072-16) MiB / 64 KiB = 0xBF00 */
		{ 0x5b, 0x00 }, { 0x5c, 0xC0 }, { 0x5d, 0x00 }, /* 3 GiB / 64 KiB = 0xC000 */
	};
	check_mem(3ULL << 30, 3ULL << 30, m6g, sizeof(m6g) / sizeof(m6g[0]));
	/* 20 MiB: the extended-memory count is not capped. */
	static const uint8_t m20[][2] = {
		{ 0x17, 0x00 }, { 0x18, 0x4C }, /* 19 MiB = 19456 KiB = 0x4C00 */
		{ 0x30, 0x00 }, { 0x31, 0x4C },
		{ 0x34, 0x40 }, { 0x35, 0x00 }, /* 4 MiB / 64 KiB = 0x40 */
	};
	check_mem(20ULL << 20, 0, m20, sizeof(m20) / sizeof(m20[0]));
}

static void *loop_thread(void *arg)
{
	evloop_run(arg);
	return NULL;
}

int main(void)
{
	pio = io_bus_create("pio");
	struct evloop *loop = evloop_create();
	struct guest_mem gm;
	CHECK_EQ(guest_mem_create(&gm, 8ULL << 20), 0);
	struct platform p = {
		.pio = pio,
		.mem = &gm,
		.loop = loop,
		.ncpus = 1,
		.max_cpus = 1,
		.set_irq = rec_set_irq,
		.request_exit = rec_request_exit,
	};
	struct rtc *r = NULL;
	CHECK_EQ(rtc_create(&p, &r), 0);
	rtc_set_clock(r, test_clock, NULL);
	pthread_t th;
	pthread_create(&th, NULL, loop_thread, loop);

	test_time();
	test_set_time();
	test_localtime(r);
	test_nmi_index();
	test_uip();
	test_flags();
	test_irqs(r);
	test_wake_hook(r);
	test_memory_bytes();
	test_host_timer(r);

	evloop_stop(loop);
	pthread_join(th, NULL);
	rtc_destroy(r);
	evloop_destroy(loop);
	guest_mem_destroy(&gm);
	io_bus_destroy(pio);
	return UNIT_RESULT();
}
