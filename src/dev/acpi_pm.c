/* ACPI PM1 registers and PM timer.
 *
 * The event block is 4 bytes: PM1_STS (write 1 to clear) and PM1_EN, each
 * 16 bits; any access width is taken apart into bytes, so byte, word and
 * dword accesses all behave. There is no SMI handler (the FADT's SMI_CMD is
 * 0): ACPI mode is always on and SCI_EN always reads 1.
 *
 * Sleep: SLP_EN with SLP_TYP == ACPI_S5_SLP_TYP requests a power-off.
 * ACPI_S3_SLP_TYP asks the machine (the sleep ops) to suspend to RAM; the
 * guest sleeps until a wake event: the power button (always a wake event
 * while asleep, as ACPI says of PWRBTN_STS), the RTC alarm with RTC_EN
 * set, or a wake request from outside. Waking sets WAK_STS and the cause's
 * status bit, as a PC's chipset does; the registers here keep their
 * values over the sleep (a PC keeps PM1 in its resume well). A wake event
 * already pending when SLP_EN is written (it came after the OS cleared
 * the status bits) wakes the guest right away instead of being slept
 * through. Other sleep types, and S3 without sleep ops, are not supported:
 * the request is logged once and the "sleep" ends at once (WAK_STS is
 * set), so a guest that tries one wakes up instead of waiting forever for
 * WAK_STS.
 *
 * Not done: the timer overflow event (TMR_STS on bit 23 flips); TMR_EN is
 * stored but never raises the SCI. */
#include "dev/acpi_pm.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "machine/memmap.h"
#include "util/log.h"

#define STS_TMR 0x0001
#define STS_BM 0x0010
#define STS_GBL 0x0020
#define STS_PWRBTN 0x0100
#define STS_SLPBTN 0x0200
#define STS_RTC 0x0400
#define STS_WAK 0x8000

#define EN_TMR 0x0001
#define EN_GBL 0x0020
#define EN_PWRBTN 0x0100
#define EN_SLPBTN 0x0200
#define EN_RTC 0x0400
#define EN_MASK (EN_TMR | EN_GBL | EN_PWRBTN | EN_SLPBTN | EN_RTC)

#define CNT_SCI_EN 0x0001
#define CNT_BM_RLD 0x0002
#define CNT_GBL_RLS 0x0004 /* write-only */
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP (7 << CNT_SLP_TYP_SHIFT)
#define CNT_SLP_EN 0x2000 /* write-only */
#define CNT_MASK (CNT_BM_RLD | CNT_SLP_TYP)

struct acpi_pm {
	struct platform *p;
	pthread_mutex_t lock;
	uint16_t sts, en, cnt;
	bool sci_level;
	bool warned_sleep;
	bool sleeping; /* in S3 */
	const struct acpi_pm_sleep_ops *ops;
	void *ops_opaque;
	acpi_pm_clock_fn *clock; /* NULL: CLOCK_MONOTONIC */
	void *clock_ctx;
	int64_t t0_ns; /* the PM timer counts from here */
};

static void update_sci(struct acpi_pm *pm)
{
	bool level = (pm->sts & pm->en) != 0;
	if (level != pm->sci_level) {
		pm->sci_level = level;
		platform_set_irq(pm->p, ACPI_SCI_IRQ, level);
	}
}

/* A wake event ends the sleep (lock held). */
static void wake_locked(struct acpi_pm *pm, uint16_t cause_sts, const char *cause)
{
	pm->sleeping = false;
	pm->sts |= STS_WAK | cause_sts;
	update_sci(pm);
	if (pm->ops)
		pm->ops->wake(pm->ops_opaque, cause);
}

/* ---- PM1a event block: bytes 0-1 status, 2-3 enable ---- */

static uint64_t evt_read(void *opaque, uint64_t offset, unsigned size)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	uint8_t regs[4] = { (uint8_t)pm->sts, (uint8_t)(pm->sts >> 8), (uint8_t)pm->en,
			    (uint8_t)(pm->en >> 8) };
	pthread_mutex_unlock(&pm->lock);
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)(offset + i < 4 ? regs[offset + i] : 0xFF) << (8 * i);
	return v;
}

static void evt_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < size && offset + i < 4; i++) {
		unsigned byte = (unsigned)offset + i;
		uint16_t b = (uint16_t)((value >> (8 * i)) & 0xFF);
		if (byte < 2) {
			pm->sts &= (uint16_t)~(b << (8 * byte)); /* write 1 to clear */
		} else {
			unsigned sh = 8 * (byte - 2);
			pm->en = (uint16_t)((pm->en & ~(0xFF << sh)) | (b << sh));
			pm->en &= EN_MASK;
		}
	}
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

/* ---- PM1a control block ---- */

static uint64_t cnt_read(void *opaque, uint64_t offset, unsigned size)
{
	struct acpi_pm *pm = opaque;
	pthread_mutex_lock(&pm->lock);
	uint16_t cnt = pm->cnt | CNT_SCI_EN;
	pthread_mutex_unlock(&pm->lock);
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++) {
		uint64_t o = offset + i;
		v |= (uint64_t)(o < 2 ? (uint8_t)(cnt >> (8 * o)) : 0xFF) << (8 * i);
	}
	return v;
}

static void cnt_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct acpi_pm *pm = opaque;
	bool poweroff = false;
	pthread_mutex_lock(&pm->lock);
	uint16_t w = pm->cnt;
	for (unsigned i = 0; i < size && offset + i < 2; i++) {
		unsigned sh = 8 * ((unsigned)offset + i);
		w = (uint16_t)((w & ~(0xFF << sh)) | (((value >> (8 * i)) & 0xFF) << sh));
	}
	pm->cnt = w & CNT_MASK;
	if (w & CNT_SLP_EN) {
		unsigned typ = (w & CNT_SLP_TYP) >> CNT_SLP_TYP_SHIFT;
		if (typ == ACPI_S5_SLP_TYP) {
			poweroff = true;
		} else if (typ == ACPI_S3_SLP_TYP && !pm->sleeping && pm->ops &&
			   pm->ops->sleep(pm->ops_opaque)) {
			pm->sleeping = true;
			if (pm->sts & STS_PWRBTN)
				wake_locked(pm, 0, "power button");
			else if (pm->sts & pm->en & STS_RTC)
				wake_locked(pm, 0, "RTC alarm");
		} else if (!pm->sleeping) {
			if (!pm->warned_sleep) {
				pm->warned_sleep = true;
				log_guest("ACPI sleep type %u is not supported; waking at once", typ);
			}
			pm->sts |= STS_WAK;
		}
	}
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	if (poweroff)
		platform_request_exit(pm->p, VM_EXIT_POWEROFF, "ACPI S5");
}

/* ---- PM timer ---- */

static int64_t clock_ns(const struct acpi_pm *pm)
{
	if (pm->clock)
		return pm->clock(pm->clock_ctx);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static uint32_t timer_ticks(const struct acpi_pm *pm)
{
	uint64_t ns = (uint64_t)(clock_ns(pm) - pm->t0_ns);
	uint64_t ticks = ns / 1000000000ULL * ACPI_PM_TIMER_HZ +
			 ns % 1000000000ULL * ACPI_PM_TIMER_HZ / 1000000000ULL;
	return (uint32_t)(ticks & 0xFFFFFF);
}

static uint64_t tmr_read(void *opaque, uint64_t offset, unsigned size)
{
	struct acpi_pm *pm = opaque; /* the clock never changes while the guest runs */
	uint32_t t = timer_ticks(pm);
	uint64_t v = 0;
	for (unsigned i = 0; i < size; i++) {
		uint64_t o = offset + i;
		v |= (uint64_t)(o < 4 ? (uint8_t)(t >> (8 * o)) : 0xFF) << (8 * i);
	}
	return v;
}

static const struct io_ops evt_ops = { .read = evt_read, .write = evt_write };
static const struct io_ops cnt_ops = { .read = cnt_read, .write = cnt_write };
static const struct io_ops tmr_ops = { .read = tmr_read, .write = NULL };

void acpi_pm_set_clock(struct acpi_pm *pm, acpi_pm_clock_fn *clock, void *ctx)
{
	pm->clock = clock;
	pm->clock_ctx = ctx;
	pm->t0_ns = clock_ns(pm);
}

bool acpi_pm_press_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	bool heard = pm->sleeping || (pm->en & EN_PWRBTN);
	pm->sts |= STS_PWRBTN;
	if (pm->sleeping)
		wake_locked(pm, STS_PWRBTN, "power button");
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return heard;
}

void acpi_pm_rtc_alarm(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= STS_RTC;
	if (pm->sleeping && (pm->en & EN_RTC))
		wake_locked(pm, STS_RTC, "RTC alarm");
	update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

int acpi_pm_wakeup(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	bool sleeping = pm->sleeping;
	if (sleeping)
		wake_locked(pm, STS_PWRBTN, "wake request");
	pthread_mutex_unlock(&pm->lock);
	return sleeping ? 0 : -EALREADY;
}

bool acpi_pm_sleeping(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	bool sleeping = pm->sleeping;
	pthread_mutex_unlock(&pm->lock);
	return sleeping;
}

void acpi_pm_set_sleep_ops(struct acpi_pm *pm, const struct acpi_pm_sleep_ops *ops,
			   void *opaque)
{
	pthread_mutex_lock(&pm->lock);
	pm->ops = ops;
	pm->ops_opaque = opaque;
	pthread_mutex_unlock(&pm->lock);
}

bool acpi_pm_guest_enabled_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	bool en = pm->en & EN_PWRBTN;
	pthread_mutex_unlock(&pm->lock);
	return en;
}

int acpi_pm_create(struct platform *p, struct acpi_pm **out)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -ENOMEM;
	pm->p = p;
	pthread_mutex_init(&pm->lock, NULL);
	pm->t0_ns = clock_ns(pm);
	int r = io_bus_register(p->pio, ACPI_PM1A_EVT_PORT, 4, &evt_ops, pm, "acpi-pm1-evt");
	if (r == 0) {
		r = io_bus_register(p->pio, ACPI_PM1A_CNT_PORT, 2, &cnt_ops, pm, "acpi-pm1-cnt");
		if (r < 0)
			io_bus_unregister(p->pio, ACPI_PM1A_EVT_PORT);
	}
	if (r == 0) {
		r = io_bus_register(p->pio, ACPI_PM_TMR_PORT, 4, &tmr_ops, pm, "acpi-pm-tmr");
		if (r < 0) {
			io_bus_unregister(p->pio, ACPI_PM1A_EVT_PORT);
			io_bus_unregister(p->pio, ACPI_PM1A_CNT_PORT);
		}
	}
	if (r < 0) {
		pthread_mutex_destroy(&pm->lock);
		free(pm);
		return r;
	}
	*out = pm;
	return 0;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm)
		return;
	io_bus_unregister(pm->p->pio, ACPI_PM1A_EVT_PORT);
	io_bus_unregister(pm->p->pio, ACPI_PM1A_CNT_PORT);
	io_bus_unregister(pm->p->pio, ACPI_PM_TMR_PORT);
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}
