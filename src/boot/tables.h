/* The tables a guest reads to find its hardware: the MP table (Intel MP
 * spec 1.4) and ACPI. Both live in the BIOS area (0xE0000-0xFFFFF),
 * which the e820 map marks reserved. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"

#define ACPI_TABLES_GPA 0xE0000ULL /* XSDT, RSDT, FADT, FACS, MADT, DSDT, ... */
#define ACPI_TABLES_END 0xF0000ULL
#define ACPI_RSDP_GPA 0xF0000ULL
#define MPTABLE_GPA 0xF1000ULL /* floating pointer, then the config table */
#define MPTABLE_END 0xF8000ULL

#define IOAPIC_GPA 0xFEC00000ULL
#define LAPIC_GPA 0xFEE00000ULL

/* Fixed ACPI hardware ports (as bhyve lays them out). */
#define ACPI_PM1A_EVT_PORT 0x400 /* 4 bytes: PM1 status (2), enable (2) */
#define ACPI_PM1A_CNT_PORT 0x404 /* 2 bytes */
#define ACPI_PM_TMR_PORT 0x408   /* 4 bytes, 24-bit timer */
#define ACPI_SCI_IRQ 9
#define ACPI_RESET_PORT 0xCF9
#define ACPI_RESET_VALUE 0x06
#define ACPI_S5_SLP_TYP 5 /* the _S5 package's value, written to SLP_TYP */

struct platform_desc {
	unsigned ncpus;
	const uint32_t *apic_ids; /* ncpus entries, [0] is the boot CPU */
	uint8_t ioapic_id;
	unsigned ioapic_pins; /* 24 */
	bool com_present[4];  /* com1..com4 */
	uint64_t ram_below_4g, ram_above_4g;
};

/* Write the MP floating pointer and configuration table (processors, ISA
 * bus, IOAPIC, ISA interrupt routing). Returns 0 or -errno. */
int mptable_build(const struct guest_mem *gm, const struct platform_desc *desc);

/* Write the ACPI tables and the RSDP; stores the RSDP's address. */
int acpi_build(const struct guest_mem *gm, const struct platform_desc *desc,
	       uint64_t *rsdp_gpa);
