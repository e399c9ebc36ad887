/* What can be plugged into the board, by name: the PCI emulations (each
 * defined in its own device file) and the COM ports. The one place that
 * lists them all. */
#pragma once
#include <stddef.h>

#include "machine/memmap.h"
#include "pci/slots.h"

/* The emulation called name[0..len), or NULL. */
const struct pci_emul *machine_emul_find(const char *name, size_t len);
/* "a, b, c": every emulation's name, for messages. */
void machine_emul_names(char *buf, size_t len);
/* The COM port called name ("com1".."com4"), or NULL. */
const struct machine_com_port *machine_com_find(const char *name);
