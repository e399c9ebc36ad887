/* The virtio PCI emulations (one per device file), for the board's table
 * of emulations (machine/registry.c). */
#pragma once
#include "pci/slots.h"

extern const struct pci_emul pci_emul_virtio_blk;     /* blk.c */
extern const struct pci_emul pci_emul_virtio_net;     /* net.c */
extern const struct pci_emul pci_emul_virtio_console; /* console.c */
extern const struct pci_emul pci_emul_virtio_rnd;     /* rnd.c */
extern const struct pci_emul pci_emul_virtio_fs;      /* fs.c */
extern const struct pci_emul pci_emul_virtio_9p;      /* p9.c */
