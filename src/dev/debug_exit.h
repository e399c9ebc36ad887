/* QEMU's isa-debug-exit, for test guests: a write of value V (of the
 * access's size) to any of the 4 ports at the base ends the VM with exit
 * status (V << 1) | 1. Reads give all-ones. */
#pragma once
#include <stdint.h>

#include "dev/platform.h"

struct debug_exit;

#define DEBUG_EXIT_PORT 0xF4

int debug_exit_create(struct platform *p, uint16_t port, struct debug_exit **out);
void debug_exit_destroy(struct debug_exit *d);
