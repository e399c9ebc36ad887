/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Boot entry for the freestanding test guests.
 *
 *  - Multiboot v1 header (first thing in the image, at 0x100000).  Its magic
 *    comes from the linker symbol __mb_magic, which is 0 unless the link
 *    defines __mb_enable (see guest.ld and meson.build): the plain ELF64 guest
 *    must not look like a multiboot kernel, or QEMU would refuse to PVH-boot it.
 *  - Xen PVH ELF note (XEN_ELFNOTE_PHYS32_ENTRY -> pvh_entry).
 *  - 32-bit entry points: both record the protocol and EBX, load our GDT,
 *    switch to long mode with the static identity-mapped page tables
 *    (0-4 GiB with 2 MiB pages, 3-4 GiB uncached) and call runtime_start().
 *  - GDT, the static IDT (256 interrupt gates) and the exception stubs.
 */
#include "config.h"
#include "asm.h"

/* ------------------------------------------------------------------------ */
	.section .multiboot, "a"
	.balign 4
	.globl mb_header
mb_header:
	.long __mb_magic		/* 0x1BADB002, or 0 in the PVH-only image */
	.long __mb_flags		/* page-align modules | mem info | a.out kludge */
	.long __mb_checksum
	.long mb_header			/* header_addr */
	.long __image_start		/* load_addr */
	.long __load_end		/* load_end_addr */
	.long __image_end		/* bss_end_addr */
	.long _start			/* entry_addr */

/* ------------------------------------------------------------------------ */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4				/* namesz: "Xen\0" */
	.long 8				/* descsz (a quad, as Linux's vmlinux does) */
	.long 18			/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.quad pvh_entry
	.balign 4

/* ------------------------------------------------------------------------ */
	.section .boot.text, "ax"
	.code32

	/* Multiboot entry (also the ELF e_entry): EAX = 0x2BADB002, EBX = info. */
	.globl _start
_start:
	cli
	cld
	movl $BOOT_PROTO_MULTIBOOT, %esi
	cmpl $MULTIBOOT_BOOTLOADER_MAGIC, %eax
	je 1f
	movl $BOOT_PROTO_UNKNOWN, %esi
1:	jmp common32

	/* PVH entry: EBX = struct hvm_start_info. */
	.globl pvh_entry
pvh_entry:
	cli
	cld
	movl $BOOT_PROTO_PVH, %esi

common32:
	movl %esi, boot_protocol
	movl %ebx, boot_info_addr
	movl %eax, boot_eax
	lgdt gdt_desc32
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	ENTER_LONG_MODE long_entry

	.code64
long_entry:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq $(cpu_stacks + STACK_SIZE), %rsp
	lidt idt_desc
	/* Zero .bss (small: the stacks live in .stack, which is not zeroed). */
	movq $__bss_start, %rdi
	movq $__bss_stop, %rcx
	subq %rdi, %rcx
	shrq $3, %rcx
	xorl %eax, %eax
	rep stosq
	xorl %ebp, %ebp
	call runtime_start
2:	cli
	hlt
	jmp 2b

/* ------------------------------------------------------------------------ */
/*
 * Exception/interrupt stubs: 256 stubs of exactly 16 bytes each, in one
 * 4 KiB-aligned block, so the static IDT below can encode their addresses
 * as __isr_lo16 + 16 * vector (no carry into the high half).
 */
	.section .isr, "ax"
	.code64
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	.if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	/* the CPU pushed an error code */
	.else
	pushq $0
	.endif
	pushq $vec
	jmp trap_common
	.set vec, vec + 1
	.endr
	.balign 16
isr_stubs_end:

	.text
	.code64
trap_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rbx
	pushq %rbp
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call trap_handler
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rbp
	popq %rbx
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp
	iretq

/* ------------------------------------------------------------------------ */
	.data
	.balign 8
	.globl boot_protocol, boot_info_addr, boot_eax
boot_protocol:	.long 0
boot_info_addr:	.long 0
boot_eax:	.long 0

	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* SEL_CODE64 */
	.quad 0x00cf92000000ffff	/* SEL_DATA */
	.quad 0x00cf9a000000ffff	/* SEL_CODE32 */
gdt_end:

	.balign 8
	.globl gdt_desc32
gdt_desc32:
	.word gdt_end - gdt - 1
	.long gdt

	.balign 16
	.globl idt
idt:
	.set vec, 0
	.rept 256
	.word __isr_lo16 + 16 * vec	/* offset 15:0 */
	.word SEL_CODE64
	.byte 0				/* IST */
	.byte 0x8e			/* present, DPL 0, 64-bit interrupt gate */
	.word __isr_hi16		/* offset 31:16 */
	.long 0				/* offset 63:32 */
	.long 0
	.set vec, vec + 1
	.endr
idt_end:

	.balign 16
	.globl idt_desc
idt_desc:
	.word idt_end - idt - 1
	.quad idt

/* ------------------------------------------------------------------------ */
/* Identity map of 0-4 GiB with 2 MiB pages; 3-4 GiB (MMIO: IOAPIC, LAPIC,
 * PCI holes) is mapped uncached (PCD|PWT). */
	.section .pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + 0x3
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0003
	.quad pd + 0x1003
	.quad pd + 0x2003
	.quad pd + 0x3003
	.fill 508, 8, 0
pd:
	.set addr, 0
	.rept 2048
	.if addr >= 0xC0000000
	.quad addr + 0x9b		/* P | RW | PWT | PCD | PS */
	.else
	.quad addr + 0x83		/* P | RW | PS */
	.endif
	.set addr, addr + 0x200000
	.endr

/* ------------------------------------------------------------------------ */
	.section .stack, "aw", @nobits
	.balign 4096
	.globl cpu_stacks
cpu_stacks:
	.skip MAX_CPUS * STACK_SIZE
	.globl cpu_stacks_end
cpu_stacks_end:

	.section .note.GNU-stack, "", @progbits
