/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The smallest guest, for the start-to-exit benchmark: no page-table work
 * (the tables are static data), no boot-info parsing, no printf.  Output:
 *   Hello from the khyve test guest (<pvh|multiboot|unknown>)
 *   PASS
 * and exit code 0.
 */
#include "guest.h"

int main(void)
{
    const char *proto = boot_protocol_name();

    console_write("Hello from the khyve test guest (", 33);
    console_write(proto, strlen(proto));
    puts(")");
    return 0;
}
