/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Jumps to an address in the MMIO hole where nothing is mapped: no CPU can
 * fetch instructions there, so the VMM gets an exit it cannot handle and
 * must end with status 4, printing the vCPU's registers. Output:
 *   MMIOJUMP: jumping to 0xd0000000
 */
#include "guest.h"

int main(void)
{
    printf("MMIOJUMP: jumping to 0xd0000000\n");
    void (*nowhere)(void) = (void (*)(void))0xd0000000UL;
    nowhere();
    test_fail("returned from the MMIO hole");
}
