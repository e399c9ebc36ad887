/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdarg.h>
#include "runtime.h"
#include "io.h"
#include "printf.h"

const char *boot_protocol_name(void)
{
    switch (boot_protocol) {
    case BOOT_PROTO_PVH:
        return "pvh";
    case BOOT_PROTO_MULTIBOOT:
        return "multiboot";
    default:
        return "unknown";
    }
}

unsigned cpu_index(void)
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    uintptr_t base = (uintptr_t)cpu_stacks;

    if (sp < base || sp >= (uintptr_t)cpu_stacks_end)
        return 0;
    return (unsigned)((sp - base) / STACK_SIZE);
}

noreturn void guest_exit(uint32_t code)
{
    outl(0xf4, code);
    printf("EXIT: code=%u (no debug-exit device), halting\n", code);
    halt_forever();
}

noreturn void test_pass(void)
{
    puts("PASS");
    guest_exit(EXIT_PASS);
}

noreturn void test_fail(const char *fmt, ...)
{
    char buf[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    printf("FAIL: %s\n", buf);
    guest_exit(EXIT_FAIL);
}

void runtime_start(void)
{
    int rc = main();

    if (rc == 0)
        test_pass();
    printf("FAIL: main returned %d\n", rc);
    guest_exit((uint32_t)rc);
}

static exception_hook_t hook;
static volatile uint32_t in_trap[MAX_CPUS];

void set_exception_hook(exception_hook_t h)
{
    hook = h;
}

const char *exception_name(unsigned v)
{
    static const char *const names[32] = {
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
        "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "RSVD",
        "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "RSVD", "RSVD",
        "RSVD", "RSVD", "RSVD", "RSVD", "#HV", "#VC", "#SX", "RSVD",
    };
    return v < 32 ? names[v] : "IRQ";
}

void trap_handler(struct trap_frame *f)
{
    unsigned cpu = cpu_index();
    char buf[256];
    int n;

    if (f->vector == 0xff)
        return;
    if (hook && hook(f))
        return;
    if (cpu < MAX_CPUS && in_trap[cpu]++) {
        /* fault while reporting a fault: get out without printing */
        guest_exit(EXIT_EXCEPTION);
    }
    n = snprintf(buf, sizeof(buf),
                 "EXCEPTION: vector=%lu (%s) error=0x%lx rip=0x%lx cs=0x%lx rflags=0x%lx "
                 "rsp=0x%lx cr2=0x%lx cpu=%u\n",
                 f->vector, exception_name((unsigned)f->vector), f->error, f->rip, f->cs,
                 f->rflags, f->rsp, read_cr2(), cpu);
    console_write_unlocked(buf, (size_t)n);
    n = snprintf(buf, sizeof(buf), "BACKTRACE:");
    uint64_t *fp = (uint64_t *)f->rbp;
    for (int i = 0; i < 8 && n < 200; i++) {
        if ((uintptr_t)fp < (uintptr_t)cpu_stacks || (uintptr_t)fp >= (uintptr_t)cpu_stacks_end - 16 ||
            ((uintptr_t)fp & 7))
            break;
        n += snprintf(buf + n, sizeof(buf) - n, " 0x%lx", fp[1]);
        fp = (uint64_t *)fp[0];
    }
    n += snprintf(buf + n, sizeof(buf) - n, "\n");
    console_write_unlocked(buf, (size_t)n);
    n = snprintf(buf, sizeof(buf), "FAIL: unexpected exception %lu (%s) at rip=0x%lx\n", f->vector,
                 exception_name((unsigned)f->vector), f->rip);
    console_write_unlocked(buf, (size_t)n);
    guest_exit(EXIT_EXCEPTION);
}
