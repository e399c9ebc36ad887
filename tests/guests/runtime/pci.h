/* SPDX-License-Identifier: BSD-2-Clause */
/* PCI bus 0 from a test guest: config mechanism #1 and ECAM (from MCFG),
 * enumeration, BAR sizing, capabilities, the MP table's PCI INTx entries,
 * and the IOAPIC/LAPIC bits needed to take MSI and INTx interrupts. */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include <stdint.h>
#include <stdbool.h>

#define PCI_BDF(slot, func) ((uint16_t)(((slot) << 3) | (func)))
#define PCI_SLOT(bdf) ((bdf) >> 3)
#define PCI_FUNC(bdf) ((bdf) & 7)

/* Mechanism #1 (0xCF8/0xCFC), bus 0. */
uint32_t pci_cf8_read(uint16_t bdf, unsigned reg, unsigned size);
void pci_cf8_write(uint16_t bdf, unsigned reg, unsigned size, uint32_t v);
/* ECAM base of bus 0 from the MCFG table, 0 if none. */
uint64_t pci_ecam_base(void);
uint32_t pci_ecam_read(uint16_t bdf, unsigned reg, unsigned size);
void pci_ecam_write(uint16_t bdf, unsigned reg, unsigned size, uint32_t v);
/* ECAM when there is one, else mechanism #1. */
uint32_t pci_read(uint16_t bdf, unsigned reg, unsigned size);
void pci_write(uint16_t bdf, unsigned reg, unsigned size, uint32_t v);

/* Present functions of bus 0, in slot/function order. */
unsigned pci_enumerate(uint16_t *bdfs, unsigned max);
/* A function with this vendor:device, the n-th (0 first); -1 if none. */
int pci_find_device(uint16_t vendor, uint16_t device, unsigned n);

enum pci_bar_kind { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };
struct pci_bar_info {
    enum pci_bar_kind kind;
    bool prefetch;
    uint64_t addr, size;
};
/* Sizes BAR n the standard way (decoding off while all-ones is written,
 * then restored). A 64-bit BAR takes n and n+1. */
struct pci_bar_info pci_bar(uint16_t bdf, int n);
const char *pci_bar_kind_name(enum pci_bar_kind k);
/* Give every unassigned BAR of bus 0 an address (as firmware would; khyve
 * assigns them itself, QEMU without a BIOS does not), above everything
 * already assigned, and switch decoding on. Returns how many it placed. */
unsigned pci_assign_bars(void);
/* Program BAR n (address bits only). */
void pci_bar_set(uint16_t bdf, int n, uint64_t addr);

/* Capability offset with this id after start (0: from the list head);
 * 0 if none. */
unsigned pci_find_cap(uint16_t bdf, uint8_t id, unsigned start);

/* The MP table's I/O interrupt entry for PCI bus 0, device dev, pin
 * (0 = INTA#): the IOAPIC input, or -1. */
int mptable_pci_irq(unsigned dev, unsigned pin);

/* Interrupts: a handler per vector (32-254), run from the exception hook
 * with interrupts off; the runtime sends the LAPIC EOI afterwards. */
typedef void (*irq_handler_t)(unsigned vector, void *arg);
void irq_init(void); /* LAPIC on, the hook installed */
void irq_set_handler(unsigned vector, irq_handler_t fn, void *arg);
/* IOAPIC input gsi -> vector on this CPU (level, active low when level). */
void ioapic_route(unsigned gsi, unsigned vector, bool level, bool active_low);
void ioapic_mask(unsigned gsi, bool masked);
/* The MSI address/data that reach vector on this CPU (fixed, edge). */
uint64_t msi_address(void);
uint32_t msi_data(unsigned vector);

#endif
