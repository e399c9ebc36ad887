/* The reset control register at port 0xCF9 (one byte; the PCI
 * configuration ports around it belong to the PCI module). Writing
 * RST_CPU (bit 2) ends the VM with VM_EXIT_REBOOT; SYS_RST (bit 1) and
 * FULL_RST (bit 3) are kept and read back. */
#pragma once
#include "dev/platform.h"

struct reset_cf9;

#define RESET_CF9_PORT 0xCF9

int reset_cf9_create(struct platform *p, struct reset_cf9 **out);
void reset_cf9_destroy(struct reset_cf9 *r);
