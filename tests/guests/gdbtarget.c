/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A target for the GDB stub tests: named functions to break at, globals
 * the guest acts on, a loop to interrupt, a variable to watch, a second
 * CPU, and a virtual address that is not identity-mapped.
 *
 * Command line: spin=1 (wait in spin_until_released() until the debugger
 * sets `released`), smp=1 (start the APs; each loops in ap_loop() until
 * the BSP is done).
 *
 * Output on COM1:
 *   GDBTARGET: start
 *   ANSWER: <answer>            (after gdb_target_function(); 1 unless changed)
 *   SPIN: waiting               (spin=1, after 1000 rounds of the loop)
 *   SPIN: released after <n> rounds
 *   WATCHED: 0x<watched>        (set to 0x1234 by touch_watched())
 *   CPUS: <n>                   (smp=1)
 *   PASS
 *
 * high_message points at `message` through a second mapping at
 * 0xffff800000000000 + its physical address (PML4 entry 256 = entry 0).
 * first_code_byte is the first byte of gdb_target_function as the guest
 * read it (before calling it): an int3 (0xcc) while a debugger has a
 * software breakpoint there.
 */
#include "guest.h"

volatile int answer = 1;
volatile int released;
volatile unsigned long spin_rounds;
volatile unsigned long watched;
volatile int aps_go_home;
volatile unsigned ap_rounds[MAX_CPUS];
const char message[] = "khyve gdb target";
const char *volatile high_message;
volatile uint8_t first_code_byte; /* gdb_target_function's first byte, as main saw it */

#define HIGH_ALIAS 0xffff800000000000ul

__attribute__((noinline)) int gdb_target_function(int x)
{
    int doubled = x * 2;

    doubled += answer;
    return doubled;
}

__attribute__((noinline)) void spin_until_released(void)
{
    while (!released) {
        if (++spin_rounds == 1000) /* in the loop for a while: a debugger sees it spin */
            puts("SPIN: waiting");
        cpu_relax();
    }
    printf("SPIN: released after %lu rounds\n", spin_rounds);
}

__attribute__((noinline)) void touch_watched(void)
{
    watched = 0x1234;
}

static void ap_loop(uint32_t apic_id)
{
    unsigned i = apic_id < MAX_CPUS ? apic_id : MAX_CPUS - 1;

    while (!aps_go_home) {
        ap_rounds[i]++;
        cpu_relax();
    }
}

static void map_high_alias(void)
{
    uint64_t *pml4 = phys_to_ptr(read_cr3() & ~0xfffull);

    pml4[256] = pml4[0];
    high_message = (const char *)(HIGH_ALIAS + (uint64_t)(uintptr_t)message);
}

int main(void)
{
    unsigned aps = 0;

    map_high_alias();
    puts("GDBTARGET: start");
    first_code_byte = *(volatile const uint8_t *)(uintptr_t)gdb_target_function;
    if (cmdline_get_u64("smp", 10, 0))
        aps = smp_start_aps(ap_loop, 1000);
    int r = gdb_target_function(20);
    printf("ANSWER: %d (%d)\n", answer, r);
    if (cmdline_get_u64("spin", 10, 0))
        spin_until_released();
    touch_watched();
    printf("WATCHED: 0x%lx\n", watched);
    if (cmdline_get_u64("smp", 10, 0)) {
        aps_go_home = 1;
        printf("CPUS: %u\n", aps + 1);
    }
    return 0;
}
