/* SPDX-License-Identifier: BSD-2-Clause */
/* Start-up, exit and exception handling. */
#ifndef GUEST_RUNTIME_H
#define GUEST_RUNTIME_H

#include <stdint.h>
#include <stdbool.h>
#include <stdnoreturn.h>
#include "config.h"

/* Recorded by the 32-bit entry code. */
extern uint32_t boot_protocol;      /* BOOT_PROTO_PVH / _MULTIBOOT / _UNKNOWN */
extern uint32_t boot_info_addr;     /* EBX at entry */
extern uint32_t boot_eax;           /* EAX at entry */

/* "pvh", "multiboot" or "unknown". */
const char *boot_protocol_name(void);

/* The guest's entry point, called on the BSP in long mode.  Returning 0
 * prints "PASS" and exits with code 0; returning n != 0 prints
 * "FAIL: main returned n" and exits with code n. */
int main(void);

/* 0 on the BSP, 1.. on APs in start-up order (derived from the stack). */
unsigned cpu_index(void);

/*
 * Writes `code` to the isa-debug-exit port 0xf4 (32-bit); the VMM exits with
 * status (code << 1) | 1.  If that returns (no such device), prints
 * "EXIT: code=<n> (no debug-exit device), halting" and does cli; hlt forever.
 */
noreturn void guest_exit(uint32_t code);
/* Prints "PASS" and exits with EXIT_PASS (0). */
noreturn void test_pass(void);
/* Prints "FAIL: <message>" and exits with EXIT_FAIL (1). */
noreturn void test_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rdi, rsi, rbp, rbx, rdx, rcx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
};

/*
 * Optional hook for tests that expect an exception: return true to resume
 * at frame->rip (which the hook may change), false for the default report:
 *   EXCEPTION: vector=<n> (<name>) error=0x<hex> rip=0x<hex> cs=... rflags=... rsp=... cr2=0x<hex> cpu=<i>
 *   BACKTRACE: 0x<ret> 0x<ret> ...
 *   FAIL: unexpected exception <n> (<name>) at rip=0x<hex>
 * and guest_exit(EXIT_EXCEPTION).  Vector 0xff (the LAPIC spurious vector)
 * is ignored.
 */
typedef bool (*exception_hook_t)(struct trap_frame *frame);
void set_exception_hook(exception_hook_t hook);
const char *exception_name(unsigned vector);

/* Used by the entry code. */
void runtime_start(void);
void trap_handler(struct trap_frame *frame);

extern char __image_start[], __image_end[], __load_end[];
extern char cpu_stacks[], cpu_stacks_end[];

#endif
