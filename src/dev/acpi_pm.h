/* The ACPI fixed hardware at the ports in machine/memmap.h: the PM1a event
 * block (PM1_STS, PM1_EN), the PM1a control block (SCI_EN reads as always
 * set; SLP_EN with SLP_TYP == ACPI_S5_SLP_TYP powers off, with
 * ACPI_S3_SLP_TYP suspends to RAM) and the 24-bit PM timer at 3.579545
 * MHz. The SCI (ACPI_SCI_IRQ) is asserted while PM1_STS & PM1_EN is
 * non-zero. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "dev/platform.h"

struct acpi_pm;

#define ACPI_PM_TIMER_HZ 3579545ULL

int acpi_pm_create(struct platform *p, struct acpi_pm **out);
/* The clock the PM timer counts by, in nanoseconds: CLOCK_MONOTONIC by
 * default (clock NULL); a test steps its own. The timer starts at 0 when
 * the clock is set. Call before the guest runs. */
typedef int64_t acpi_pm_clock_fn(void *ctx);
void acpi_pm_set_clock(struct acpi_pm *pm, acpi_pm_clock_fn *clock, void *ctx);
void acpi_pm_destroy(struct acpi_pm *pm);

/* What S3 asks of the machine. Both are called with the device's lock
 * held, so that a wake never overtakes the sleep it ends: they must not
 * call back into this device. */
struct acpi_pm_sleep_ops {
	/* The guest asked for S3: stop its vCPUs, keep its memory. Returns
	 * false when the machine cannot; the guest then wakes at once. */
	bool (*sleep)(void *opaque);
	/* A wake event ends the sleep (WAK_STS and the cause's status bit are
	 * set): run the guest again from its waking vector. cause: "power
	 * button", "RTC alarm", "wake request". */
	void (*wake)(void *opaque, const char *cause);
};
/* Without ops (the state after acpi_pm_create), S3 is refused as other
 * sleep types are: logged once, and WAK_STS is set at once. */
void acpi_pm_set_sleep_ops(struct acpi_pm *pm, const struct acpi_pm_sleep_ops *ops,
			   void *opaque);

/* Press the power button: sets PWRBTN_STS; while the guest sleeps that is
 * a wake event (whatever PWRBTN_EN says, as on a PC), otherwise it raises
 * the SCI if the guest enabled it. Returns whether the guest will notice:
 * it slept, or it has PWRBTN_EN set. Thread-safe. */
bool acpi_pm_press_power_button(struct acpi_pm *pm);
/* Whether the guest has PWRBTN_EN set now (its ACPI button handling is
 * up), i.e. whether a button press would reach it. Thread-safe. */
bool acpi_pm_guest_enabled_button(struct acpi_pm *pm);
/* The RTC raised its alarm interrupt: sets RTC_STS, which wakes a
 * sleeping guest that set RTC_EN (and raises the SCI if it is awake and
 * set RTC_EN). Thread-safe. */
void acpi_pm_rtc_alarm(struct acpi_pm *pm);
/* Wake a sleeping guest from outside (a wakeup request from the host); as QEMU's
 * system_wakeup, the guest sees a power button wake (PWRBTN_STS).
 * -EALREADY when the guest is not asleep. Thread-safe. */
int acpi_pm_wakeup(struct acpi_pm *pm);
/* Whether the guest is in S3 now. Thread-safe. */
bool acpi_pm_sleeping(struct acpi_pm *pm);
