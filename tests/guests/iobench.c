/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Port-I/O exit-cost benchmark: "n=<count> port=<hex>" on the command line
 * (defaults n=1000 port=0x80); n outb writes of the value 0 in a tight loop.
 * Output:
 *   IOBENCH: n=<n> port=0x<hex>
 *   DONE
 *   IOBENCH: cycles=<tsc cycles for the loop>
 *   PASS
 * (No TSC calibration here: the benchmark compares wall-clock runs with
 * n=0 and n=N, so the guest does nothing it need not do.)
 */
#include "guest.h"

int main(void)
{
    uint64_t n = cmdline_get_u64("n", 0, 1000);
    uint64_t port = cmdline_get_u64("port", 16, 0x80);
    uint64_t t0, t1;

    if (port > 0xffff)
        test_fail("bad port 0x%lx", port);
    printf("IOBENCH: n=%lu port=0x%lx\n", n, port);
    t0 = rdtsc();
    for (uint64_t i = 0; i < n; i++)
        outb((uint16_t)port, 0);
    t1 = rdtsc();
    puts("DONE");
    printf("IOBENCH: cycles=%lu\n", t1 - t0);
    return 0;
}
