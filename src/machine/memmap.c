#include "machine/memmap.h"

#include "mem/guest_mem.h"

const struct machine_com_port machine_com_ports[MACHINE_COM_PORTS] = {
	{ "com1", 0x3F8, 4 },
	{ "com2", 0x2F8, 3 },
	{ "com3", 0x3E8, 4 },
	{ "com4", 0x2E8, 3 },
};

/* The map and guest RAM's layout (mem/) must not overlap. */
_Static_assert(ACPI_TABLES_GPA >= GUEST_BIOS_AREA_BASE && MPTABLE_END <= GUEST_BIOS_AREA_END,
	       "the firmware tables live in the BIOS area");
_Static_assert(PCI_MMIO32_BASE >= GUEST_LOWMEM_LIMIT && PCI_MMIO32_DEFAULT_BASE >= GUEST_LOWMEM_LIMIT,
	       "PCI windows start above low RAM");
_Static_assert(PCI_ECAM_BASE > PCI_MMIO32_LIMIT && PCI_ECAM_BASE + PCI_ECAM_SIZE <= IOAPIC_GPA,
	       "ECAM between the 32-bit BARs and the IOAPIC");
_Static_assert(PCI_INTX_GSI_BASE + PCI_INTX_GSI_COUNT <= IOAPIC_PINS, "INTx on IOAPIC pins");
