/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Loads a zero-limit IDT, then raises an exception: it cannot be delivered
 * (#GP), neither can the #GP (#DF), nor the #DF: the CPU shuts down (triple
 * fault).  "how=<ud2|int3|pf|de>" on the command line picks the first
 * exception (default ud2: this host's KVM emulator cannot deliver int3 from
 * long mode and reports an emulation failure instead of the triple fault).
 * "keepidt=1" skips loading the empty IDT, so the runtime's exception
 * handler reports the exception instead (EXCEPTION:/BACKTRACE:/FAIL: lines,
 * exit code 2): a check that guest bugs are visible.
 * Output:
 *   TRIPLEFAULT: loading an empty IDT and executing <how>
 *   FAIL: still running after the triple fault     (exit code 1, never expected)
 */
#include "guest.h"

int main(void)
{
    static const struct desc_ptr empty = { 0, 0 };
    char how[8] = "ud2";

    cmdline_get("how", how, sizeof(how));
    printf("TRIPLEFAULT: loading an empty IDT and executing %s\n", how);
    if (!cmdline_get_u64("keepidt", 0, 0))
        lidt(&empty);
    if (!strcmp(how, "int3")) {
        __asm__ volatile("int3");
    } else if (!strcmp(how, "pf")) {
        (void)*(volatile uint32_t *)phys_to_ptr(0x100000000000ull);   /* unmapped */
    } else if (!strcmp(how, "de")) {
        unsigned zero = 0;
        __asm__ volatile("divl %1" : : "a"(1), "r"(zero), "d"(0));
    } else {
        __asm__ volatile("ud2");
    }
    test_fail("still running after the triple fault");
}
