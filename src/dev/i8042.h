/* Just enough of the i8042 keyboard controller (ports 0x60 data, 0x64
 * status/command) for guests that probe it and for the reset line:
 * command 0xFE (or any 0xF0-0xFE pulse with bit 0 clear) and an output
 * port write (0xD1) with bit 0 clear end the VM with VM_EXIT_REBOOT. There
 * is no keyboard and no mouse; the controller raises no interrupts. */
#pragma once
#include "dev/platform.h"

struct i8042;

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64

int i8042_create(struct platform *p, struct i8042 **out);
void i8042_destroy(struct i8042 *k);
