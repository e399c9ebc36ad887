/* The MC146818 RTC/CMOS: time in BCD and binary against the host clock,
 * 12-hour mode, setting the time, register C, UIP, the interrupts (with
 * the event loop in a thread), and the memory-size bytes. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/unit.h"
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

static struct io_bus *pio;

static void outb(uint16_t port, uint8_t v)
{
	uint8_t d[8] = { v };
	io_bus_access(pio, port, 1, true, d);
}

static uint8_t inb(uint16_t port)
{
	uint8_t d[8] = { 0 };
	io_bus_access(pio, port, 1, false, d);
	return d[0];
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

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int bcd(uint8_t v) { return (v >> 4) * 10 + (v & 0xF); }

/* Read the clock as a guest would: wait for UIP to clear, then read. */
static time_t read_clock(bool binary, bool h24)
{
	while (cmos_read(REG_A) & 0x80)
		;
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

static long long diff_now(time_t t)
{
	long long d = (long long)t - (long long)time(NULL);
	return d < 0 ? -d : d;
}

static void test_time(void)
{
	CHECK_EQ(cmos_read(REG_A) & 0x7F, 0x26);
	CHECK_EQ(cmos_read(REG_B), 0x02); /* 24 h, BCD */
	CHECK_EQ(cmos_read(REG_D), 0x80);

	/* BCD, 24 h. */
	CHECK(diff_now(read_clock(false, true)) <= 2);
	/* Binary, 24 h. */
	cmos_write(REG_B, 0x06);
	CHECK(diff_now(read_clock(true, true)) <= 2);
	/* Binary, 12 h. */
	cmos_write(REG_B, 0x04);
	CHECK(diff_now(read_clock(true, false)) <= 2);
	/* BCD, 12 h. */
	cmos_write(REG_B, 0x00);
	CHECK(diff_now(read_clock(false, false)) <= 2);
	uint8_t h = cmos_read(0x04);
	CHECK((h & 0x7F) >= 1 && (h & 0x7F) <= 0x12);
	cmos_write(REG_B, 0x02);
}

static void test_set_time(void)
{
	/* Set 1999-12-31 23:59:58 (BCD, 24 h) with SET held. */
	cmos_write(REG_B, 0x82);
	cmos_write(0x00, 0x58);
	cmos_write(0x02, 0x59);
	cmos_write(0x04, 0x23);
	cmos_write(0x07, 0x31);
	cmos_write(0x08, 0x12);
	cmos_write(0x09, 0x99);
	cmos_write(0x32, 0x19);
	/* Frozen while SET is on. */
	CHECK_EQ(cmos_read(0x00), 0x58);
	CHECK_EQ(cmos_read(0x09), 0x99);
	CHECK_EQ(cmos_read(REG_A) & 0x80, 0); /* no UIP while SET */
	cmos_write(REG_B, 0x02);
	struct tm want = { .tm_sec = 58, .tm_min = 59, .tm_hour = 23, .tm_mday = 31,
			   .tm_mon = 11, .tm_year = 99 };
	time_t t = read_clock(false, true);
	long long d = (long long)t - (long long)timegm(&want);
	CHECK(d >= 0 && d <= 2);
	CHECK_EQ(cmos_read(0x06), 6); /* a Friday */

	/* Without SET: a single register write moves the clock. */
	cmos_write(0x09, 0x26);
	cmos_write(0x32, 0x20);
	t = read_clock(false, true);
	struct tm tm;
	gmtime_r(&t, &tm);
	CHECK(tm.tm_year + 1900 == 2026 || tm.tm_year + 1900 == 2027);

	/* Back to the host's time, in binary and 12 h mode (PM bit). */
	time_t now = time(NULL);
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
	CHECK(diff_now(read_clock(true, false)) <= 2);
	cmos_write(REG_B, 0x02);
	CHECK(diff_now(read_clock(false, true)) <= 2);
}

static void test_localtime(struct rtc *r)
{
	/* A zone three hours east of UTC, without DST. */
	setenv("TZ", "XYZ-3", 1);
	rtc_set_localtime(r, true);
	long long d = (long long)read_clock(false, true) - (long long)time(NULL);
	CHECK(d >= 3 * 3600 - 2 && d <= 3 * 3600 + 2);
	rtc_set_localtime(r, true); /* idempotent */
	d = (long long)read_clock(false, true) - (long long)time(NULL);
	CHECK(d >= 3 * 3600 - 2 && d <= 3 * 3600 + 2);
	rtc_set_localtime(r, false);
	CHECK(diff_now(read_clock(false, true)) <= 2);
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
	/* UIP shows for the 244 us before each second. Sleep until just
	 * before a second ends, then poll across the boundary; a loaded
	 * machine may deschedule us over the window, so try a few seconds.
	 * UIP must never show in the middle of a second. */
	bool seen = false, wrong = false;
	for (int attempt = 0; attempt < 5 && !seen; attempt++) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		long to_boundary_ms = (1000000000L - now.tv_nsec) / 1000000L;
		if (to_boundary_ms > 3)
			sleep_ms((int)to_boundary_ms - 3);
		for (int i = 0; i < 200000 && !seen; i++) {
			struct timespec before, after;
			clock_gettime(CLOCK_REALTIME, &before);
			uint8_t a = cmos_read(REG_A);
			clock_gettime(CLOCK_REALTIME, &after);
			if (a & 0x80) {
				seen = true;
				if (before.tv_sec == after.tv_sec && after.tv_nsec < 500000000L)
					wrong = true;
			}
			if (after.tv_sec != now.tv_sec && after.tv_nsec > 5000000L)
				break; /* well past this boundary */
		}
	}
	CHECK(seen);
	CHECK(!wrong);
	/* Away from the boundary it is clear. */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_nsec > 100000000L)
		sleep_ms((int)((1100000000L - now.tv_nsec) / 1000000L));
	clock_gettime(CLOCK_REALTIME, &now);
	uint8_t a = cmos_read(REG_A);
	struct timespec after;
	clock_gettime(CLOCK_REALTIME, &after);
	if (after.tv_sec == now.tv_sec && after.tv_nsec < 900000000L)
		CHECK_EQ(a & 0x80, 0);
}

static void wait_next_second(void)
{
	time_t s = time(NULL);
	while (time(NULL) == s)
		sleep_ms(5);
	sleep_ms(5);
}

static bool wait_irq(int level, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (atomic_load(&irq_level[8]) == level)
			return true;
		sleep_ms(1);
	}
	return atomic_load(&irq_level[8]) == level;
}

static void test_flags_and_irqs(void)
{
	cmos_read(REG_C);
	CHECK_EQ(cmos_read(REG_C), 0);

	/* Polled: UF after a second boundary, with no interrupt enabled. */
	wait_next_second();
	uint8_t c = cmos_read(REG_C);
	CHECK_EQ(c & 0x90, 0x10);
	CHECK_EQ(cmos_read(REG_C), 0); /* read clears */
	CHECK_EQ(atomic_load(&irq_level[8]), 0);

	/* Alarm with all fields "don't care": AF every second. */
	cmos_write(0x01, 0xC0);
	cmos_write(0x03, 0xC0);
	cmos_write(0x05, 0xC0);
	wait_next_second();
	CHECK_EQ(cmos_read(REG_C) & 0x30, 0x30);
	/* An alarm that cannot match now: no AF. */
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	cmos_write(REG_B, 0x06); /* binary */
	cmos_write(0x05, (uint8_t)((tm.tm_hour + 12) % 24));
	cmos_read(REG_C);
	wait_next_second();
	CHECK_EQ(cmos_read(REG_C) & 0x30, 0x10);
	cmos_write(0x05, 0xC0);
	cmos_write(REG_B, 0x02);

	/* Update-ended interrupt from the timer. */
	cmos_read(REG_C);
	cmos_write(REG_B, 0x12); /* UIE */
	CHECK(wait_irq(1, 1500));
	c = cmos_read(REG_C);
	CHECK_EQ(c & 0x90, 0x90);
	CHECK_EQ(atomic_load(&irq_level[8]), 0);
	CHECK_EQ(cmos_read(REG_C) & 0x80, 0);
	/* Setting SET clears UIE. */
	cmos_write(REG_B, 0x92);
	CHECK_EQ(cmos_read(REG_B), 0x82);
	cmos_write(REG_B, 0x02);
	cmos_read(REG_C);

	/* Periodic interrupt at 1024 Hz (RS = 6). */
	cmos_write(REG_B, 0x42);
	CHECK(wait_irq(1, 200));
	CHECK_EQ(cmos_read(REG_C) & 0xC0, 0xC0);
	CHECK(wait_irq(1, 200)); /* again after acknowledging */
	cmos_write(REG_B, 0x02);
	CHECK_EQ(atomic_load(&irq_level[8]), 0); /* disabling drops IRQF */
	cmos_read(REG_C);
	sleep_ms(20);
	CHECK_EQ(atomic_load(&irq_level[8]), 0);

	/* Alarm interrupt. */
	cmos_write(REG_B, 0x22);
	CHECK(wait_irq(1, 1500));
	CHECK_EQ(cmos_read(REG_C) & 0xA0, 0xA0);
	cmos_write(REG_B, 0x02);
	cmos_read(REG_C);
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
	pthread_t th;
	pthread_create(&th, NULL, loop_thread, loop);

	test_time();
	test_set_time();
	test_localtime(r);
	test_nmi_index();
	test_uip();
	test_flags_and_irqs();
	test_memory_bytes();

	evloop_stop(loop);
	pthread_join(th, NULL);
	rtc_destroy(r);
	evloop_destroy(loop);
	guest_mem_destroy(&gm);
	io_bus_destroy(pio);
	return UNIT_RESULT();
}
