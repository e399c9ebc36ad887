/* x86-64 registers as gdb sees them: the order and sizes of the 'g'
 * packet and of p/P register numbers, converted from and to KVM's
 * structures, and the target description (qXfer:features:read) that
 * names them: org.gnu.gdb.i386.core, .sse and .segments (fs_base,
 * gs_base), and org.khyve.gdb.i386.sys with the control registers and
 * EFER. */
#pragma once
#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct x86_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
};

/* Which of the three parts a register write changed. */
#define X86_PART_REGS 1u
#define X86_PART_SREGS 2u
#define X86_PART_FPU 4u

enum {
	X86_REG_RAX = 0, X86_REG_RSP = 7, X86_REG_RIP = 16, X86_REG_EFLAGS = 17,
	X86_REG_CS = 18, X86_REG_ST0 = 24, X86_REG_FCTRL = 32, X86_REG_XMM0 = 40,
	X86_REG_MXCSR = 56, X86_REG_FS_BASE = 57, X86_REG_GS_BASE = 58, X86_REG_CR0 = 59,
	X86_REG_CR2, X86_REG_CR3, X86_REG_CR4, X86_REG_CR8, X86_REG_EFER,
	X86_NREGS
};

/* Size in bytes of register n, 0 if there is no such register. */
size_t x86_reg_size(unsigned n);
const char *x86_reg_name(unsigned n);
/* All registers back to back, as in a 'g' reply. */
size_t x86_regs_total_size(void);

/* Copy register n out (little-endian, x86_reg_size(n) bytes). */
void x86_reg_get(const struct x86_state *st, unsigned n, uint8_t *out);
/* Set register n from in; returns the X86_PART_* it changed. */
unsigned x86_reg_set(struct x86_state *st, unsigned n, const uint8_t *in);

/* The target description, NUL-terminated. */
const char *x86_target_xml(void);
