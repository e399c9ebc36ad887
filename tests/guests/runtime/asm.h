/* SPDX-License-Identifier: BSD-2-Clause */
/* Assembly helpers shared by entry.S and ap.S (assembler only). */
#ifndef GUEST_ASM_H
#define GUEST_ASM_H

/*
 * From 32-bit protected mode (flat segments loaded, paging off) to long mode
 * with the static page tables, then a far jump to the 64-bit label `target`.
 * Uses no stack.  Clobbers EAX, ECX, EDX.
 */
.macro ENTER_LONG_MODE target
	movl %cr4, %eax
	orl $0x20, %eax			/* CR4.PAE */
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xC0000080, %ecx		/* IA32_EFER */
	rdmsr
	orl $0x100, %eax		/* LME */
	wrmsr
	movl %cr0, %eax
	andl $0x9fffffff, %eax		/* clear CD, NW: caches on */
	orl $0x80010021, %eax		/* PG | WP | NE | PE */
	movl %eax, %cr0
	ljmp $SEL_CODE64, $\target
.endm

#endif
