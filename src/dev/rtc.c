/* MC146818 RTC and CMOS.
 *
 * Time: guest seconds = host CLOCK_REALTIME seconds + offset, so the
 * guest's seconds tick with the host's. The time registers are computed
 * on each read; writing one (with or without SET) moves the offset. While
 * register B's SET bit is on, the time is frozen in a latch that the
 * guest's writes edit, and clearing SET starts the clock from it.
 *
 * Flags: the update (UF), alarm (AF) and periodic (PF) flags of register C
 * are evaluated lazily for the span since the last evaluation, at every
 * access and when the timer fires, so a guest that polls register C sees
 * them without any timer. The timerfd runs only while an interrupt is
 * enabled in register B and IRQF is clear: once IRQF is set nothing more
 * can change until the guest reads C, so an unacknowledged RTC costs no
 * wakeups.
 *
 * The divider (register A bits 4-6) only gates the flags and UIP: with the
 * divider chain in reset (11x) no updates are signalled, but the time
 * itself keeps running. */
#include "dev/rtc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"

#define NS_PER_SEC 1000000000LL
#define UIP_WINDOW_NS 244000LL /* UIP is set this long before each update */

#define REG_SEC 0x00
#define REG_SEC_ALARM 0x01
#define REG_MIN 0x02
#define REG_MIN_ALARM 0x03
#define REG_HOUR 0x04
#define REG_HOUR_ALARM 0x05
#define REG_DOW 0x06
#define REG_DAY 0x07
#define REG_MONTH 0x08
#define REG_YEAR 0x09
#define REG_A 0x0A
#define REG_B 0x0B
#define REG_C 0x0C
#define REG_D 0x0D
#define REG_CENTURY 0x32

#define A_UIP 0x80
#define A_DV_MASK 0x70
#define A_RS_MASK 0x0F

#define B_SET 0x80
#define B_PIE 0x40
#define B_AIE 0x20
#define B_UIE 0x10
#define B_DM_BINARY 0x04
#define B_24H 0x02

#define C_IRQF 0x80
#define C_PF 0x40
#define C_AF 0x20
#define C_UF 0x10

#define D_VRT 0x80

#define ALARM_DONT_CARE 0xC0

struct rtc {
	struct platform *p;
	pthread_mutex_t lock;
	uint8_t cmos[128]; /* A-D at their indices; time registers unused */
	uint8_t index;
	bool nmi_masked; /* bit 7 of the index: kept, though nothing here raises NMIs */
	int64_t offset;        /* guest seconds minus host seconds */
	int64_t tz_offset;     /* the part of offset that rtc_set_localtime added */
	struct tm latched;     /* the time while SET is on */
	int64_t last_eval_ns;  /* host realtime up to which flags are evaluated */
	bool irq_level;
	int tfd;
	struct evloop_source *src;
	int64_t armed_ns; /* absolute host realtime the timer is armed for; 0: off */
	int64_t next_event_ns; /* what rearm() wants, armed or not; 0: none */
	rtc_clock_fn *clock;
	void *clock_ctx;
	rtc_alarm_fn *wake_fn;
	void *wake_ctx;
	bool alarm_raised; /* the alarm asserted IRQ8; wake_fn not yet told */
};

static int64_t host_realtime_ns(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static int64_t now_ns(const struct rtc *r)
{
	return r->clock(r->clock_ctx);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool binary_mode(const struct rtc *r)
{
	return r->cmos[REG_B] & B_DM_BINARY;
}

static uint8_t encode(const struct rtc *r, int v)
{
	if (binary_mode(r))
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static int decode(const struct rtc *r, uint8_t v)
{
	if (binary_mode(r))
		return v;
	return (v >> 4) * 10 + (v & 0x0F);
}

static uint8_t encode_hour(const struct rtc *r, int hour)
{
	if (r->cmos[REG_B] & B_24H)
		return encode(r, hour);
	int h = hour % 12;
	return encode(r, h ? h : 12) | (hour >= 12 ? 0x80 : 0);
}

static int decode_hour(const struct rtc *r, uint8_t v)
{
	if (r->cmos[REG_B] & B_24H)
		return decode(r, v);
	int h = decode(r, v & 0x7F) % 12;
	return (v & 0x80) ? h + 12 : h;
}

/* The divider chain counts (DV = 010, or the test modes 000/001); 11x
 * holds it in reset. */
static bool divider_running(const struct rtc *r)
{
	return ((r->cmos[REG_A] & A_DV_MASK) >> 4) < 6;
}

static bool clock_updating(const struct rtc *r)
{
	return !(r->cmos[REG_B] & B_SET) && divider_running(r);
}

/* Periodic interrupt period for rate select rs (1-15), from 32.768 kHz. */
static int64_t periodic_ns(unsigned rs)
{
	unsigned hz = rs <= 2 ? 256u >> (rs - 1) : 65536u >> rs;
	return NS_PER_SEC / hz;
}

static void guest_tm(const struct rtc *r, int64_t now_ns, struct tm *tm)
{
	time_t t = (time_t)(floor_div(now_ns, NS_PER_SEC) + r->offset);
	gmtime_r(&t, tm);
}

static bool alarm_matches(const struct rtc *r, int64_t guest_sec)
{
	int64_t sod = guest_sec % 86400;
	if (sod < 0)
		sod += 86400;
	int hour = (int)(sod / 3600), min = (int)(sod / 60 % 60), sec = (int)(sod % 60);
	uint8_t as = r->cmos[REG_SEC_ALARM], am = r->cmos[REG_MIN_ALARM],
		ah = r->cmos[REG_HOUR_ALARM];
	if ((as & ALARM_DONT_CARE) != ALARM_DONT_CARE && decode(r, as) != sec)
		return false;
	if ((am & ALARM_DONT_CARE) != ALARM_DONT_CARE && decode(r, am) != min)
		return false;
	if ((ah & ALARM_DONT_CARE) != ALARM_DONT_CARE && decode_hour(r, ah) != hour)
		return false;
	return true;
}

static void update_irq(struct rtc *r)
{
	/* IRQF follows the flags and their enables (QEMU does the same when
	 * register B changes); reading C clears it with the flags. */
	bool irqf = r->cmos[REG_C] & r->cmos[REG_B] & (C_PF | C_AF | C_UF);
	if (irqf)
		r->cmos[REG_C] |= C_IRQF;
	else
		r->cmos[REG_C] &= ~C_IRQF;
	if (irqf != r->irq_level) {
		if (irqf && (r->cmos[REG_C] & r->cmos[REG_B] & C_AF))
			r->alarm_raised = true;
		r->irq_level = irqf;
		platform_set_irq(r->p, RTC_IRQ, irqf);
	}
}

/* Set the flags for everything that happened in (last_eval_ns, now_ns]. */
static void catch_up(struct rtc *r, int64_t now_ns)
{
	int64_t last = r->last_eval_ns;
	if (now_ns <= last)
		return; /* the host clock stepped back: no events until it passes */
	r->last_eval_ns = now_ns;
	if (clock_updating(r)) {
		int64_t s0 = floor_div(last, NS_PER_SEC), s1 = floor_div(now_ns, NS_PER_SEC);
		if (s1 > s0) {
			r->cmos[REG_C] |= C_UF;
			/* The alarm compares the time of day: a day covers it. */
			int64_t from = s1 - s0 > 86400 ? s1 - 86399 : s0 + 1;
			for (int64_t s = from; s <= s1 && !(r->cmos[REG_C] & C_AF); s++)
				if (alarm_matches(r, s + r->offset))
					r->cmos[REG_C] |= C_AF;
		}
	}
	unsigned rs = r->cmos[REG_A] & A_RS_MASK;
	if (rs && divider_running(r)) {
		int64_t period = periodic_ns(rs);
		if (floor_div(now_ns, period) > floor_div(last, period))
			r->cmos[REG_C] |= C_PF;
	}
	update_irq(r);
}

/* Arm the timer for the next event that could raise the interrupt, or
 * disarm it when none can. */
static void rearm(struct rtc *r, int64_t now_ns)
{
	int64_t want = 0;
	uint8_t b = r->cmos[REG_B];
	if (!(r->cmos[REG_C] & C_IRQF)) {
		if (clock_updating(r) && (b & (B_UIE | B_AIE)))
			want = (floor_div(now_ns, NS_PER_SEC) + 1) * NS_PER_SEC;
		unsigned rs = r->cmos[REG_A] & A_RS_MASK;
		if ((b & B_PIE) && rs && divider_running(r)) {
			int64_t period = periodic_ns(rs);
			int64_t next = (floor_div(now_ns, period) + 1) * period;
			if (!want || next < want)
				want = next;
		}
	}
	r->next_event_ns = want;
	/* A clock other than the host's has no timerfd behind it: its owner
	 * calls rtc_poll() at next_event_ns instead. */
	if (r->tfd < 0 || r->clock != host_realtime_ns || want == r->armed_ns)
		return;
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(want / NS_PER_SEC);
	its.it_value.tv_nsec = (long)(want % NS_PER_SEC);
	if (timerfd_settime(r->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		log_warn("rtc: timerfd_settime: %s", strerror(errno));
		return;
	}
	r->armed_ns = want;
}

/* Unlock, then tell the wake hook of an alarm interrupt raised meanwhile
 * (outside the lock: the hook reaches into other devices). */
static void unlock_and_notify(struct rtc *r)
{
	bool raised = r->alarm_raised;
	r->alarm_raised = false;
	rtc_alarm_fn *fn = r->wake_fn;
	void *ctx = r->wake_ctx;
	pthread_mutex_unlock(&r->lock);
	if (raised && fn)
		fn(ctx);
}

void rtc_poll(struct rtc *r)
{
	pthread_mutex_lock(&r->lock);
	int64_t now = now_ns(r);
	catch_up(r, now);
	r->armed_ns = -1; /* fired (or stale): force a fresh arming */
	rearm(r, now);
	unlock_and_notify(r);
}

static void on_timer(void *opaque, uint32_t events)
{
	struct rtc *r = opaque;
	uint64_t expirations;
	(void)events;
	ssize_t n = read(r->tfd, &expirations, sizeof(expirations));
	(void)n;
	rtc_poll(r);
}

/* ---- registers ---- */

static void current_tm(const struct rtc *r, int64_t now_ns, struct tm *tm)
{
	if (r->cmos[REG_B] & B_SET)
		*tm = r->latched;
	else
		guest_tm(r, now_ns, tm);
}

static uint8_t read_time_reg(const struct rtc *r, unsigned idx, int64_t now_ns)
{
	struct tm tm;
	current_tm(r, now_ns, &tm);
	switch (idx) {
	case REG_SEC:
		return encode(r, tm.tm_sec > 59 ? 59 : tm.tm_sec);
	case REG_MIN:
		return encode(r, tm.tm_min);
	case REG_HOUR:
		return encode_hour(r, tm.tm_hour);
	case REG_DOW:
		return encode(r, tm.tm_wday + 1);
	case REG_DAY:
		return encode(r, tm.tm_mday);
	case REG_MONTH:
		return encode(r, tm.tm_mon + 1);
	case REG_YEAR: /* (a latched year may be negative: never an invalid BCD digit) */
		return encode(r, ((tm.tm_year + 1900) % 100 + 100) % 100);
	case REG_CENTURY: {
		int c = (tm.tm_year + 1900) / 100;
		return encode(r, c < 0 ? 0 : c > 99 ? 99 : c);
	}
	}
	return 0;
}

static void start_clock(struct rtc *r, const struct tm *tm, int64_t now_ns)
{
	struct tm t = *tm;
	t.tm_isdst = 0;
	time_t guest = timegm(&t); /* normalizes t: month 0 of year 0 is year -1 */
	if (guest == (time_t)-1 && t.tm_year != 69)
		return; /* cannot represent it: keep the old time */
	if (t.tm_year < -1900 || t.tm_year > 9999 - 1900)
		return; /* the registers show years 0000-9999 only: keep the old time */
	r->offset = (int64_t)guest - floor_div(now_ns, NS_PER_SEC);
}

static void write_time_reg(struct rtc *r, unsigned idx, uint8_t v, int64_t now_ns)
{
	struct tm tm;
	current_tm(r, now_ns, &tm);
	int year = tm.tm_year + 1900;
	switch (idx) {
	case REG_SEC:
		tm.tm_sec = decode(r, v & 0x7F);
		break;
	case REG_MIN:
		tm.tm_min = decode(r, v & 0x7F);
		break;
	case REG_HOUR:
		tm.tm_hour = decode_hour(r, v);
		break;
	case REG_DOW:
		return; /* computed from the date */
	case REG_DAY:
		tm.tm_mday = decode(r, v);
		break;
	case REG_MONTH:
		tm.tm_mon = decode(r, v) - 1;
		break;
	case REG_YEAR:
		tm.tm_year = year - year % 100 + decode(r, v) % 100 - 1900;
		break;
	case REG_CENTURY:
		tm.tm_year = decode(r, v) * 100 + year % 100 - 1900;
		break;
	}
	if (r->cmos[REG_B] & B_SET)
		r->latched = tm; /* normalized when SET clears */
	else
		start_clock(r, &tm, now_ns);
}

static bool is_time_reg(unsigned idx)
{
	return idx == REG_SEC || idx == REG_MIN || idx == REG_HOUR || idx == REG_DOW ||
	       idx == REG_DAY || idx == REG_MONTH || idx == REG_YEAR || idx == REG_CENTURY;
}

static uint8_t cmos_read(struct rtc *r, int64_t now)
{
	unsigned idx = r->index;
	if (is_time_reg(idx))
		return read_time_reg(r, idx, now);
	switch (idx) {
	case REG_A: {
		uint8_t v = r->cmos[REG_A] & ~A_UIP;
		if (clock_updating(r) &&
		    (now % NS_PER_SEC + NS_PER_SEC) % NS_PER_SEC >= NS_PER_SEC - UIP_WINDOW_NS)
			v |= A_UIP;
		return v;
	}
	case REG_C: {
		uint8_t v = r->cmos[REG_C];
		r->cmos[REG_C] = 0;
		update_irq(r);
		return v;
	}
	case REG_D:
		return D_VRT;
	}
	return r->cmos[idx];
}

static void cmos_write(struct rtc *r, uint8_t v, int64_t now)
{
	unsigned idx = r->index;
	if (is_time_reg(idx)) {
		write_time_reg(r, idx, v, now);
		return;
	}
	switch (idx) {
	case REG_A:
		r->cmos[REG_A] = v & ~A_UIP;
		return;
	case REG_B: {
		uint8_t old = r->cmos[REG_B];
		if (v & B_SET)
			v &= ~B_UIE; /* setting SET clears UIE */
		if (!(old & B_SET) && (v & B_SET))
			guest_tm(r, now, &r->latched);
		r->cmos[REG_B] = v;
		if ((old & B_SET) && !(v & B_SET))
			start_clock(r, &r->latched, now);
		update_irq(r);
		return;
	}
	case REG_C:
	case REG_D:
		return; /* read-only */
	}
	r->cmos[idx] = v;
}

static uint8_t rtc_read_byte(struct rtc *r, unsigned port)
{
	if (port == 0)
		return 0xFF; /* the index register is write-only */
	int64_t now = now_ns(r);
	catch_up(r, now);
	uint8_t v = cmos_read(r, now);
	rearm(r, now);
	return v;
}

static void rtc_write_byte(struct rtc *r, unsigned port, uint8_t v)
{
	if (port == 0) {
		r->index = v & 0x7F;
		r->nmi_masked = v & 0x80;
		return;
	}
	int64_t now = now_ns(r);
	catch_up(r, now);
	cmos_write(r, v, now);
	update_irq(r);
	rearm(r, now);
}

/* A wide access (outw 0x70: index, then data) acts as byte accesses. */
static uint64_t rtc_read(void *opaque, uint64_t offset, unsigned size)
{
	struct rtc *r = opaque;
	uint64_t v = ~0ULL;
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < size && offset + i < 2; i++) {
		v &= ~(0xFFULL << (8 * i));
		v |= (uint64_t)rtc_read_byte(r, (unsigned)offset + i) << (8 * i);
	}
	unlock_and_notify(r);
	return v;
}

static void rtc_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct rtc *r = opaque;
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < size && offset + i < 2; i++)
		rtc_write_byte(r, (unsigned)offset + i, (uint8_t)(value >> (8 * i)));
	unlock_and_notify(r);
}

static const struct io_ops rtc_ops = {
	.read = rtc_read,
	.write = rtc_write,
};

static void set16(uint8_t *cmos, unsigned idx, uint64_t v)
{
	cmos[idx] = (uint8_t)v;
	cmos[idx + 1] = (uint8_t)(v >> 8);
}

static void init_cmos(struct rtc *r)
{
	const struct guest_mem *gm = r->p->mem;
	uint64_t low = gm ? gm->low_size : 0, high = gm ? gm->high_size : 0;
	uint8_t *c = r->cmos;

	c[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz periodic rate */
	c[REG_B] = B_24H;
	c[REG_D] = D_VRT;

	uint64_t base_kib = low / 1024 < 640 ? low / 1024 : 640;
	set16(c, 0x15, base_kib);
	uint64_t ext_kib = low > (1 << 20) ? (low - (1 << 20)) / 1024 : 0;
	if (ext_kib > 0xFFFF)
		ext_kib = 0xFFFF;
	set16(c, 0x17, ext_kib);
	set16(c, 0x30, ext_kib);
	uint64_t above16m = low > (16 << 20) ? (low - (16 << 20)) / 65536 : 0;
	if (above16m > 0xFFFF)
		above16m = 0xFFFF;
	set16(c, 0x34, above16m);
	uint64_t above4g = high / 65536;
	if (above4g > 0xFFFFFF)
		above4g = 0xFFFFFF;
	c[0x5b] = (uint8_t)above4g;
	c[0x5c] = (uint8_t)(above4g >> 8);
	c[0x5d] = (uint8_t)(above4g >> 16);
	unsigned ncpus = r->p->ncpus;
	c[0x5f] = (uint8_t)(ncpus ? ncpus - 1 : 0); /* SeaBIOS: CPUs - 1 */

	unsigned sum = 0;
	for (unsigned i = 0x10; i <= 0x2d; i++)
		sum += c[i];
	c[0x2e] = (uint8_t)(sum >> 8);
	c[0x2f] = (uint8_t)sum;
}

int rtc_create(struct platform *p, struct rtc **out)
{
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->p = p;
	r->tfd = -1;
	pthread_mutex_init(&r->lock, NULL);
	/* glibc reads the time zone file at its first time conversion, even
	 * gmtime_r's: now, during set-up, not on a vCPU under the sandbox. */
	tzset();
	init_cmos(r);
	r->clock = host_realtime_ns;
	r->last_eval_ns = now_ns(r);
	int err;
	if (p->loop) {
		r->tfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
		if (r->tfd < 0) {
			err = -errno;
			goto fail;
		}
		r->src = evloop_add(p->loop, r->tfd, EPOLLIN, on_timer, r);
		if (!r->src) {
			err = -errno;
			goto fail;
		}
	}
	err = io_bus_register(p->pio, RTC_PORT, 2, &rtc_ops, r, "rtc");
	if (err < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	if (r->src)
		evloop_remove(p->loop, r->src);
	if (r->tfd >= 0)
		close(r->tfd);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return err;
}

void rtc_set_localtime(struct rtc *r, bool local)
{
	int64_t tz = 0;
	if (local) {
		time_t now = time(NULL);
		struct tm lt;
		tzset();
		if (localtime_r(&now, &lt))
			tz = lt.tm_gmtoff;
	}
	pthread_mutex_lock(&r->lock);
	r->offset += tz - r->tz_offset;
	r->tz_offset = tz;
	pthread_mutex_unlock(&r->lock);
}

void rtc_set_clock(struct rtc *r, rtc_clock_fn *clock, void *ctx)
{
	pthread_mutex_lock(&r->lock);
	r->clock = clock ? clock : host_realtime_ns;
	r->clock_ctx = ctx;
	r->last_eval_ns = now_ns(r);
	r->armed_ns = -1;
	rearm(r, r->last_eval_ns);
	pthread_mutex_unlock(&r->lock);
}

void rtc_set_wake_hook(struct rtc *r, rtc_alarm_fn *fn, void *ctx)
{
	pthread_mutex_lock(&r->lock);
	r->wake_fn = fn;
	r->wake_ctx = ctx;
	pthread_mutex_unlock(&r->lock);
}

int64_t rtc_next_event_ns(struct rtc *r)
{
	pthread_mutex_lock(&r->lock);
	int64_t t = r->next_event_ns;
	pthread_mutex_unlock(&r->lock);
	return t;
}

void rtc_destroy(struct rtc *r)
{
	if (!r)
		return;
	io_bus_unregister(r->p->pio, RTC_PORT);
	if (r->src)
		evloop_remove(r->p->loop, r->src);
	if (r->tfd >= 0)
		close(r->tfd);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
