/* Fuzz target for the MC146818 RTC and CMOS (src/dev/rtc.c): index and
 * data ports at every size, the time registers in BCD and binary, 12 and
 * 24 hour modes, SET, the divider, periodic (down to the fastest rate),
 * alarm and update interrupts, register C acknowledgement, and the clock
 * moving forward (by nanoseconds to days) or stepping back. The clock is
 * injected (rtc_set_clock), so runs are deterministic; the harness calls
 * rtc_poll() as the RTC's owner must. The RTC is compiled into this file
 * so that its state can be checked after every step:
 *   - IRQ 8 (and no other line) follows register C's IRQF, which is set
 *     exactly when a flag and its enable are both on; nothing asks to exit;
 *   - rtc_next_event_ns() is 0 while IRQF is pending, lies in the future
 *     after a data-port access, and is set whenever an enabled interrupt can come:
 *     at that time a poll raises the interrupt (no lost periodic interrupt);
 *   - reading C clears it and lowers the line; D reads 0x80 (valid RAM),
 *     the index port reads 0xFF, CMOS bytes read back what was written;
 *   - with the clock running, the time registers hold a valid time.
 *
 * Run (clang build with -Dsanitize=true, e.g. build-fuzz):
 *   build-fuzz/tests/fuzz/fuzz_rtc -jobs=1 -workers=1 -max_len=512 \
 *       -runs=10000000 tests/fuzz/corpus/rtc
 * fuzz_rtc_replay replays the corpus with any compiler (meson test
 * fuzz_rtc_corpus). */
#include "../../src/dev/rtc.c"

#include "fake_platform.h"
#include "fuzz_input.h"

static struct fake_platform fake;
static int64_t clk;
static unsigned wakes;
/* The RTC evaluated its flags and timer at clk (a data-port access or a
 * poll since the clock last moved). */
static bool evaluated;

static int64_t fake_clock(void *ctx)
{
	(void)ctx;
	return clk;
}

static void on_wake(void *ctx)
{
	/* Outside the RTC's lock (the hook reaches into other devices); by
	 * now the same access may already have cleared AIE or read C. */
	struct rtc *r = ctx;
	FUZZ_CHECK(pthread_mutex_trylock(&r->lock) == 0);
	pthread_mutex_unlock(&r->lock);
	wakes++;
}

FUZZ_NOCOV static void check_state(struct rtc *r)
{
	uint8_t c = r->cmos[REG_C], b = r->cmos[REG_B];
	bool irqf = c & b & (C_PF | C_AF | C_UF);
	FUZZ_CHECK(!!(c & C_IRQF) == irqf);
	FUZZ_CHECK(r->irq_level == irqf);
	FUZZ_CHECK(fake.irq_level[RTC_IRQ] == (int)irqf);
	for (unsigned g = 0; g < FAKE_MAX_GSI; g++)
		FUZZ_CHECK(g == RTC_IRQ || fake.irq_sets[g] == 0);
	FUZZ_CHECK(fake.irq_bad_gsi == 0 && fake.exit_status == -1);
	FUZZ_CHECK(r->index < 128);
	FUZZ_CHECK(!(r->cmos[REG_A] & A_UIP));
	if (!evaluated)
		return; /* the clock moved: nothing is evaluated until a data access */
	int64_t ne = rtc_next_event_ns(r);
	if (irqf) {
		FUZZ_CHECK(ne == 0);
		return;
	}
	FUZZ_CHECK(ne == 0 || ne > clk);
	unsigned rs = r->cmos[REG_A] & A_RS_MASK;
	bool can = (clock_updating(r) && (b & (B_UIE | B_AIE))) ||
		   ((b & B_PIE) && rs && divider_running(r));
	FUZZ_CHECK(can == (ne != 0));
}

static uint8_t cmos_get(unsigned idx)
{
	fake_pio_write(&fake, RTC_PORT, 1, idx);
	return (uint8_t)fake_pio_read(&fake, RTC_PORT + 1, 1);
}

static void cmos_set(unsigned idx, uint8_t v)
{
	fake_pio_write(&fake, RTC_PORT, 1, idx);
	fake_pio_write(&fake, RTC_PORT + 1, 1, v);
}

FUZZ_NOCOV static int dec(const struct rtc *r, uint8_t v, bool *ok)
{
	if (binary_mode(r))
		return v;
	if ((v & 0x0F) > 9 || (v >> 4) > 9)
		*ok = false;
	return (v >> 4) * 10 + (v & 0x0F);
}

/* With the clock running, every time register reads a valid value. */
FUZZ_NOCOV static void check_time(struct rtc *r)
{
	if (r->cmos[REG_B] & B_SET)
		return; /* the latch holds what the guest wrote, valid or not */
	bool ok = true;
	int sec = dec(r, cmos_get(REG_SEC), &ok), min = dec(r, cmos_get(REG_MIN), &ok);
	uint8_t h = cmos_get(REG_HOUR);
	int dow = dec(r, cmos_get(REG_DOW), &ok), day = dec(r, cmos_get(REG_DAY), &ok);
	int mon = dec(r, cmos_get(REG_MONTH), &ok), year = dec(r, cmos_get(REG_YEAR), &ok);
	int cent = dec(r, cmos_get(REG_CENTURY), &ok);
	int hour;
	if (r->cmos[REG_B] & B_24H) {
		hour = dec(r, h, &ok);
		FUZZ_CHECK(hour <= 23);
	} else {
		hour = dec(r, h & 0x7F, &ok);
		FUZZ_CHECK(hour >= 1 && hour <= 12);
	}
	FUZZ_CHECK(ok);
	FUZZ_CHECK(sec <= 59 && min <= 59 && dow >= 1 && dow <= 7 && day >= 1 && day <= 31);
	FUZZ_CHECK(mon >= 1 && mon <= 12 && year <= 99 && cent <= 99);
}

/* A data-port read of the selected register, with what holds for it. */
static void checked_read(struct rtc *r)
{
	unsigned idx = r->index;
	uint8_t old = r->cmos[idx];
	uint8_t v = (uint8_t)fake_pio_read(&fake, RTC_PORT + 1, 1);
	switch (idx) {
	case REG_A:
		FUZZ_CHECK((v & 0x7F) == (r->cmos[REG_A] & 0x7F));
		FUZZ_CHECK(!(v & A_UIP) || clock_updating(r));
		break;
	case REG_C:
		FUZZ_CHECK(r->cmos[REG_C] == 0 && !r->irq_level && !fake.irq_level[RTC_IRQ]);
		break;
	case REG_D:
		FUZZ_CHECK(v == D_VRT);
		break;
	case REG_B:
		FUZZ_CHECK(v == old);
		break;
	default:
		if (idx >= 0x0E && idx != REG_CENTURY)
			FUZZ_CHECK(v == old);
	}
}

static void checked_write(struct rtc *r, uint8_t v)
{
	unsigned idx = r->index;
	fake_pio_write(&fake, RTC_PORT + 1, 1, v);
	if (idx >= 0x0E && idx != REG_CENTURY) {
		FUZZ_CHECK(r->cmos[idx] == v);
		fake_pio_write(&fake, RTC_PORT, 1, idx);
		FUZZ_CHECK(fake_pio_read(&fake, RTC_PORT + 1, 1) == v);
	}
}

/* The owner's timer: jump to the next event and poll, as the event loop
 * would; with an enabled periodic interrupt, it must be raised. */
static void run_timer(struct rtc *r, bool ack)
{
	int64_t ne = rtc_next_event_ns(r);
	if (!ne)
		return;
	uint8_t b = r->cmos[REG_B];
	unsigned rs = r->cmos[REG_A] & A_RS_MASK;
	bool pie = (b & B_PIE) && rs && divider_running(r) && !(r->cmos[REG_C] & C_IRQF);
	int64_t period = rs ? periodic_ns(rs) : 0;
	/* After the clock stepped back, nothing is due until it passes the
	 * point it had reached (last_eval_ns). */
	bool periodic_due = pie && ne % period == 0 && ne > r->last_eval_ns;
	if (ne > clk)
		clk = ne;
	rtc_poll(r);
	evaluated = true;
	if (periodic_due)
		FUZZ_CHECK((r->cmos[REG_C] & C_PF) && r->irq_level && fake.irq_level[RTC_IRQ]);
	if (ack) {
		fake_pio_write(&fake, RTC_PORT, 1, REG_C);
		checked_read(r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fake.p.pio && fake_platform_init(&fake, 64ULL << 20))
		abort();
	if (fake_platform_renew_buses(&fake))
		abort();
	fake_platform_clear_records(&fake);
	struct fuzz_in in = { data, size };
	/* 2026-12-07 00:00:00 UTC, plus up to a day and a second. */
	clk = 1796601600LL * NS_PER_SEC + (int64_t)(fin_u32(&in) % 86400) * NS_PER_SEC +
	      (int64_t)(fin_u32(&in) % NS_PER_SEC);
	wakes = 0;
	evaluated = true;
	/* With an injected clock the timerfd is never armed: create the RTC
	 * without the event loop (no timerfd), which saves three system calls
	 * per input. */
	struct evloop *loop = fake.p.loop;
	fake.p.loop = NULL;
	struct rtc *r;
	int err = rtc_create(&fake.p, &r);
	fake.p.loop = loop;
	if (err)
		abort();
	rtc_set_clock(r, fake_clock, NULL);
	rtc_set_wake_hook(r, on_wake, r);
	check_state(r);

	while (fin_more(&in)) {
		uint8_t op = fin_u8(&in);
		/* Every access but to the index port alone evaluates. */
		bool data_access = true;
		switch (op & 7) {
		case 0: /* select a register (bit 7: NMI mask) */
			fake_pio_write(&fake, RTC_PORT, 1, fin_u8(&in));
			data_access = false;
			break;
		case 1: /* write the selected register */
			checked_write(r, fin_u8(&in));
			break;
		case 2: /* read it */
			checked_read(r);
			break;
		case 3: { /* any size at 0x70 or 0x71: byte accesses in turn */
			unsigned sz = fin_size(&in), port = (op >> 3) & 1;
			data_access = port || sz > 1;
			if (op & 0x80) {
				fake_pio_write(&fake, RTC_PORT + port, sz, fin_value(&in, sz));
			} else {
				uint64_t v = fake_pio_read(&fake, RTC_PORT + port, sz);
				if (port == 0)
					FUZZ_CHECK((v & 0xFF) == 0xFF); /* the index is write-only */
			}
			break;
		}
		case 4: { /* time passes, or steps back */
			static const int64_t unit[8] = { 1, 1000, 1000000, 61035, 976562,
							 NS_PER_SEC, 3600 * NS_PER_SEC, -NS_PER_SEC };
			unsigned u = (op >> 3) & 7;
			int64_t d = (int64_t)fin_u16(&in) * unit[u];
			/* Each second passed costs the alarm a comparison (up to
			 * a day's worth): keep long jumps short or rare, or the
			 * fuzzer spends its time there. */
			if (u == 5 || u == 7)
				d /= 1024; /* up to a minute */
			if (u == 6)
				d = (op & 0x80) ? d % (50 * 3600 * NS_PER_SEC) : d / 3600 / 64;
			clk += d;
			evaluated = data_access = false;
			break;
		}
		case 5: /* the owner's timer fires, some times over */
			data_access = false; /* run_timer knows */
			for (unsigned i = 0, n = 1 + ((op >> 3) & 15); i < n; i++)
				run_timer(r, op & 0x80);
			break;
		case 6: /* a register by index, then the running time */
			cmos_set(fin_u8(&in) & 0x7F, fin_u8(&in));
			check_time(r);
			break;
		case 7: { /* set the time as a driver does: SET, fields, clear SET */
			uint8_t b = r->cmos[REG_B];
			cmos_set(REG_B, b | B_SET);
			for (unsigned i = 0, n = (op >> 3) & 7; i < n; i++) {
				static const uint8_t regs[8] = { REG_SEC, REG_MIN, REG_HOUR, REG_DAY,
								 REG_MONTH, REG_YEAR, REG_CENTURY,
								 REG_DOW };
				cmos_set(regs[fin_u8(&in) & 7], fin_u8(&in));
			}
			cmos_set(REG_B, (op & 0x80) ? fin_u8(&in) & ~B_SET : b & ~B_SET);
			check_time(r);
			break;
		}
		}
		if (data_access)
			evaluated = true;
		check_state(r);
	}
	rtc_destroy(r);
	return 0;
}
