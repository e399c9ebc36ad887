/* The tables a guest reads to find its hardware: the MP table (Intel MP
 * spec 1.4) and ACPI, written from a description of the board. Both live
 * in the BIOS area (0xE0000-0xFFFFF, machine/memmap.h), which the e820 map
 * marks reserved. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "machine/memmap.h"
#include "mem/guest_mem.h"

struct platform_desc {
	unsigned ncpus;
	const uint32_t *apic_ids; /* ncpus entries, [0] is the boot CPU */
	uint8_t ioapic_id;
	unsigned ioapic_pins; /* IOAPIC_PINS */
	bool com_present[MACHINE_COM_PORTS]; /* machine_com_ports[i] is there */
	uint64_t ram_below_4g, ram_above_4g;

	/* PCI: all optional, zero means "none"/"default". */
	const struct pci_intx_route *pci_intx; /* n_pci_intx entries */
	unsigned n_pci_intx;
	/* The 32-bit MMIO window in PCI0's _CRS, [base, limit]; both zero
	 * means PCI_MMIO32_DEFAULT_BASE..PCI_MMIO32_DEFAULT_LIMIT. */
	uint64_t pci_mmio32_base, pci_mmio32_limit;
	/* A 64-bit MMIO window [base, base+size), size 0 = none. */
	uint64_t pci_mmio64_base, pci_mmio64_size;
	/* PCI ECAM (MCFG): emitted only when pci_ecam_base is non-zero (1 MiB
	 * aligned; it is bus 0's address, as in MCFG); covers buses
	 * [pci_ecam_bus_start, pci_ecam_bus_end] of segment 0, which the DSDT
	 * then reserves (PNP0C02) and makes PCI0's bus range, and PCI0
	 * becomes a PNP0A08 (PCI Express) root with _CID PNP0A03. */
	uint64_t pci_ecam_base;
	uint8_t pci_ecam_bus_start, pci_ecam_bus_end;
};

/* Write the MP floating pointer and configuration table (processors, PCI
 * and ISA buses, IOAPIC, ISA and PCI interrupt routing). Returns 0 or
 * -errno; -ERANGE when an APIC id does not fit the MP table's 8 bits
 * (>= 255: such a machine can only be described by ACPI). */
int mptable_build(const struct guest_mem *gm, const struct platform_desc *desc);

/* Write the ACPI tables and the RSDP; stores the RSDP's address. */
int acpi_build(const struct guest_mem *gm, const struct platform_desc *desc,
	       uint64_t *rsdp_gpa);

/* The waking vectors the guest left in the FACS at ACPI_FACS_GPA (ACPI
 * 5.2.10): Firmware_Waking_Vector (real mode) and X_Firmware_Waking_Vector
 * (0 when unused). Read as the guest left them, whatever else it wrote
 * there. Returns 0 or -errno. */
int acpi_facs_waking_vector(const struct guest_mem *gm, uint32_t *vector, uint64_t *x_vector);

/* Write every ACPI table reachable from the RSDP at rsdp_gpa into the
 * directory dir as <SIG>.dat (RSDP.dat, XSDT.dat, RSDT.dat, FACP.dat,
 * FACS.dat, DSDT.dat, APIC.dat, ...; a second table with the same
 * signature gets <SIG>2.dat), the form `iasl -d` and acpidump -b use.
 * Existing files of those names are replaced. Returns 0 or -errno. */
int acpi_dump_tables(const struct guest_mem *gm, uint64_t rsdp_gpa, const char *dir);
