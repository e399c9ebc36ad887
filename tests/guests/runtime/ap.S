/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Application-processor start-up.
 *
 * ap_trampoline_start..ap_trampoline_end is real-mode code that smp.c copies
 * to a free 4 KiB page below 1 MiB; the SIPI vector is that page's number.
 * It is position independent (CS-relative), loads the BSP's GDT, enters
 * protected mode and far-jumps straight into ap_entry32 in the main image,
 * which reuses the BSP's page tables to enter long mode.  Each AP takes the
 * next per-CPU stack with an atomic increment and calls smp_ap_entry(index).
 */
#include "config.h"
#include "asm.h"

	.section .rodata.ap_trampoline, "a"
	.code16
	.balign 16
	.globl ap_trampoline_start
ap_trampoline_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl tramp_gdt_desc - ap_trampoline_start
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $ap_entry32
	.balign 8
tramp_gdt_desc:
	.word 31			/* 4 descriptors */
	.long gdt
	.globl ap_trampoline_end
ap_trampoline_end:

	.section .text.ap, "ax"
	.code32
ap_entry32:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	ENTER_LONG_MODE ap_entry64

	.code64
ap_entry64:
	lidt idt_desc
	movl $1, %eax
	lock xaddl %eax, ap_next_index(%rip)
	cmpl $MAX_CPUS, %eax
	jae 9f
	movl %eax, %edi			/* CPU index (BSP is 0) */
	movl %eax, %ecx
	incq %rcx
	imulq $STACK_SIZE, %rcx
	leaq cpu_stacks(%rcx), %rsp
	xorl %ebp, %ebp
	call smp_ap_entry
9:	cli
	hlt
	jmp 9b

	.data
	.balign 4
	.globl ap_next_index
ap_next_index:
	.long 1

	.section .note.GNU-stack, "", @progbits
