/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Echo on a second serial port, for the serial backend tests.
 * Command line: port=<1..4> (default 2), timeout=<ms> (default 30000),
 * ack=1 (after BYE, wait for one more byte before ending: a pty throws
 * away what its reader has not read when khyve exits and closes it).
 * On COM1:
 *   ECHO: ready on com<n>
 * then every byte read from that port is written back to it, lower-case
 * letters turned upper-case (so the test can tell an echo from a
 * loopback), until a 'Q' arrives; then, on that port:
 *   BYE <count>\r\n          (count: the bytes received before the Q)
 * and on COM1:
 *   ECHO: <count> bytes
 *   PASS
 * If nothing arrives for timeout ms: "FAIL: timeout after <count> bytes".
 */
#include "guest.h"

static const uint16_t bases[4] = { COM1, COM2, COM3, COM4 };

int main(void)
{
    unsigned port = (unsigned)cmdline_get_u64("port", 10, 2);
    uint64_t timeout_ms = cmdline_get_u64("timeout", 10, 30000);
    unsigned count = 0;

    if (port < 1 || port > 4)
        test_fail("port=%u is not 1..4", port);
    uint16_t base = bases[port - 1];
    uart_init(base);
    printf("ECHO: ready on com%u\n", port);
    for (;;) {
        int c = uart_getc_timeout(base, (uint32_t)timeout_ms);
        if (c < 0)
            test_fail("timeout after %u bytes", count);
        if (c == 'Q')
            break;
        count++;
        if (c >= 'a' && c <= 'z')
            c -= 'a' - 'A';
        uart_putc(base, (char)c);
    }
    char bye[32];
    int n = snprintf(bye, sizeof(bye), "BYE %u\r\n", count);
    uart_write(base, bye, (size_t)n);
    if (cmdline_get_u64("ack", 10, 0) && uart_getc_timeout(base, (uint32_t)timeout_ms) < 0)
        test_fail("no acknowledgement of BYE");
    printf("ECHO: %u bytes\n", count);
    return 0;
}
