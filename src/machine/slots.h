/* The PCI devices of a board: bhyve's "[bus:]slot[:function],emulation[,conf]"
 * (numbers in decimal, as bhyve reads them: "010" is slot 10), parsed and
 * checked against the registry, and bus 0 built from them. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "boot/tables.h"
#include "dev/platform.h"

/* All the slots of one board, parsed. */
struct machine_slots;

/* Parse one spec into *slots (allocated on first use). A slot given
 * twice, an unknown emulation or a bad conf is an error with a reason
 * (which does not repeat the spec). */
int machine_slots_add(struct machine_slots **slots, const char *spec, char *err, size_t errlen);
void machine_slots_free(struct machine_slots *slots);
/* Whether any device needs guest RAM another process can map. */
bool machine_slots_need_shared_ram(const struct machine_slots *slots);

/* The PCI side of a built board. */
struct machine_pci;

/* Build the bus and the devices of slots. Fills desc's PCI fields (the
 * INTx route array belongs to the returned machine_pci). */
int machine_pci_create(struct platform *p, const struct machine_slots *slots,
		       struct platform_desc *desc, struct machine_pci **out, char *err, size_t errlen);
void machine_pci_destroy(struct machine_pci *pm);
struct pci_bus *machine_pci_bus(struct machine_pci *pm);
