/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Halts with interrupts off, forever.  With "smp=1" on the command line the
 * APs are started first and halt the same way.  Output:
 *   HALT: cpus=<n online>           (APs, if any, are already halted)
 * then nothing: every CPU is in cli; hlt.
 */
#include "guest.h"

int main(void)
{
    unsigned cpus = 1;

    /* "smp=1" (or a bare "smp") starts the APs; "smp=0" does not. */
    if (cmdline_get_u64("smp", 0, cmdline_has("smp") ? 1 : 0))
        cpus += smp_start_aps(NULL, 2000);
    printf("HALT: cpus=%u\n", cpus);
    halt_forever();
}
