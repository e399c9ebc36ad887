/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * COM1 input by polling LSR.DR.  Output:
 *   READY
 *   GOT: <line>          (the first line received; ends at \r or \n, max 200 chars)
 *   PASS
 * If no complete line arrives within timeout_ms (command line "timeout=<ms>",
 * default 30000): "FAIL: timeout waiting for input (got <n> chars)", exit 1.
 */
#include "guest.h"

int main(void)
{
    char line[201];
    unsigned n = 0;
    uint64_t timeout_ms = cmdline_get_u64("timeout", 0, 30000);
    uint64_t deadline;

    puts("READY");
    deadline = timeout_start(timeout_ms);
    for (;;) {
        int c;

        if (timeout_expired(deadline))
            test_fail("timeout waiting for input (got %u chars)", n);
        if (!uart_rx_ready(COM1)) {
            cpu_relax();
            continue;
        }
        c = inb(COM1);
        if (c == '\r' || c == '\n') {
            if (n == 0)
                continue;       /* a stray \n after \r, or an empty line */
            break;
        }
        if (n < sizeof(line) - 1)
            line[n++] = (char)c;
    }
    line[n] = 0;
    printf("GOT: %s\n", line);
    return 0;
}
