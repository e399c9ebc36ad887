/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Resets the machine: through the i8042 keyboard controller (0x64 <- 0xfe),
 * or through the reset control register (0xcf9 <- 0x02, then 0x06) with
 * "method=cf9" on the command line.  Output:
 *   RESET: method=<kbd|cf9>
 *   FAIL: still running 500 ms after reset via <method>     (exit code 1)
 */
#include "guest.h"

int main(void)
{
    char method[16] = "kbd";

    cmdline_get("method", method, sizeof(method));
    if (strcmp(method, "cf9") && strcmp(method, "kbd"))
        test_fail("unknown reset method '%s' (use method=kbd or method=cf9)", method);
    printf("RESET: method=%s\n", method);
    if (!strcmp(method, "cf9")) {
        outb(0xcf9, 0x02);
        outb(0xcf9, 0x06);
    } else {
        /* wait (bounded) for the input buffer to be empty, then pulse reset */
        for (int i = 0; i < 10000 && (inb(0x64) & 0x02); i++)
            cpu_relax();
        outb(0x64, 0xfe);
    }
    mdelay(500);
    test_fail("still running 500 ms after reset via %s", method);
}
