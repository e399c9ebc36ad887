/* The board's address and IRQ map, written once: where the firmware
 * tables, the interrupt controllers, the ACPI fixed hardware, the PCI
 * windows and the COM ports are. The devices that sit there (pci/,
 * dev/acpi_pm), the tables that describe them to the guest (boot/acpi,
 * boot/mptable) and the board that puts them there (machine/) all read
 * it from here. Guest RAM's own layout (the low/high split, the BIOS area)
 * is mem/'s, in mem/guest_mem.h; memmap.c checks that the two agree. */
#pragma once
#include <stdint.h>

/* ---- The BIOS area (0xE0000-0xFFFFF, reserved in e820) ---- */
#define ACPI_TABLES_GPA 0xE0000ULL /* XSDT, RSDT, FADT, FACS, MADT, DSDT, ... */
#define ACPI_TABLES_END 0xF0000ULL
#define ACPI_RSDP_GPA 0xF0000ULL
#define MPTABLE_GPA 0xF1000ULL /* floating pointer, then the config table */
#define MPTABLE_END 0xF8000ULL
/* The FACS is the first table, where the guest writes its waking vector. */
#define ACPI_FACS_GPA ACPI_TABLES_GPA

/* ---- Interrupt controllers ---- */
#define IOAPIC_GPA 0xFEC00000ULL
#define LAPIC_GPA 0xFEE00000ULL
#define IOAPIC_PINS 24

/* ---- ACPI fixed hardware (ports as bhyve lays them out) ---- */
#define ACPI_PM1A_EVT_PORT 0x400 /* 4 bytes: PM1 status (2), enable (2) */
#define ACPI_PM1A_CNT_PORT 0x404 /* 2 bytes */
#define ACPI_PM_TMR_PORT 0x408   /* 4 bytes, 24-bit timer */
#define ACPI_SCI_IRQ 9
#define ACPI_RESET_PORT 0xCF9 /* the reset_cf9 device's port */
#define ACPI_RESET_VALUE 0x06
#define ACPI_S5_SLP_TYP 5 /* the _S5 package's value, written to SLP_TYP */
#define ACPI_S3_SLP_TYP 1 /* _S3's: QEMU's value (piix4 and ich9 alike) */

/* ---- PCI (bus 0) ----
 *   0xC0000000-0xDFFFFFFF  32-bit BARs (and 64-bit BARs of at most 128 MiB)
 *   0xE0000000-0xE00FFFFF  ECAM for bus 0 (MCFG; reserved in e820)
 *   above RAM              larger 64-bit BARs
 * I/O BARs take ports 0x2000-0xFFFF; INTx pins go to IOAPIC inputs 16-23
 * (level, active low). */
#define PCI_ECAM_BASE 0xE0000000ULL
#define PCI_ECAM_SIZE (1ULL << 20) /* bus 0 only */
#define PCI_MMIO32_BASE 0xC0000000ULL
#define PCI_MMIO32_LIMIT 0xDFFFFFFFULL /* inclusive */
#define PCI_IO_BASE 0x2000u
#define PCI_IO_LIMIT 0xFFFFu /* inclusive */
#define PCI_INTX_GSI_BASE 16
#define PCI_INTX_GSI_COUNT 8
/* The 32-bit MMIO window the DSDT gives PCI0 when no PCI bus says
 * otherwise: the whole hole below the IOAPIC. */
#define PCI_MMIO32_DEFAULT_BASE 0xC0000000ULL
#define PCI_MMIO32_DEFAULT_LIMIT 0xFEBFFFFFULL /* inclusive */

/* One PCI INTx route: device dev (0-31) on bus, pin 0-3 (INTA#-INTD#),
 * wired to IOAPIC input gsi (level, active low as on PCs). The PCI bus
 * fixes them; the same list feeds the MP table and the DSDT's _PRT. */
struct pci_intx_route {
	uint8_t bus; /* only bus 0 for now (the MP table knows one PCI bus) */
	uint8_t dev;
	uint8_t pin;
	uint32_t gsi;
};

/* ---- COM ports (16550 UARTs on the LPC bus) ---- */
#define MACHINE_COM_PORTS 4
struct machine_com_port {
	const char *name; /* "com1".."com4" */
	uint16_t port;
	uint8_t irq;
};
extern const struct machine_com_port machine_com_ports[MACHINE_COM_PORTS];
