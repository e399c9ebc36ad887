/* The ACPI fixed hardware at the ports in boot/tables.h: the PM1a event
 * block (PM1_STS, PM1_EN), the PM1a control block (SCI_EN reads as always
 * set; SLP_EN with SLP_TYP == ACPI_S5_SLP_TYP powers off) and the 24-bit
 * PM timer at 3.579545 MHz. The SCI (ACPI_SCI_IRQ) is asserted while
 * PM1_STS & PM1_EN is non-zero. */
#pragma once
#include <stdbool.h>

#include "dev/platform.h"

struct acpi_pm;

#define ACPI_PM_TIMER_HZ 3579545ULL

int acpi_pm_create(struct platform *p, struct acpi_pm **out);
void acpi_pm_destroy(struct acpi_pm *pm);

/* Press the power button: sets PWRBTN_STS and raises the SCI if the guest
 * enabled it. Thread-safe. */
void acpi_pm_press_power_button(struct acpi_pm *pm);
/* Whether the guest has PWRBTN_EN set now (its ACPI button handling is
 * up), i.e. whether a button press would reach it. Thread-safe. */
bool acpi_pm_guest_enabled_button(struct acpi_pm *pm);
