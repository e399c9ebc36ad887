# A kernel as small as they come, linked the way people link one by hand:
# `as` and plain `ld -Ttext=ADDR`, no linker script (see meson.build for the
# exact commands and tests/integration/test_boot_images.py for why). Without
# a script, GNU ld puts a read-only PT_LOAD for the ELF and program headers
# just below the text (at 0xff000 for -Ttext=0x100000, inside the BIOS area)
# and gives allocated notes a PT_LOAD of their own far above the text.
# khyve and QEMU must both boot the result.
#
# Assembled for 32-bit protected mode (the Multiboot and PVH entry state,
# paging off) with these symbols set by --defsym:
#   PVH=1     a Xen PVH entry note (ELF64 output) instead of a Multiboot header
#   KLUDGE=1  Multiboot header with the a.out-kludge address fields (flag 16)
#   NOTE=1    an extra allocated note section (.note.khyve)
#
# Output on COM1 (polled, no UART set-up needed), lines end in \r\n:
#   PLAINLD: hello (multiboot|pvh)
#   PLAINLD: image=0x........-0x........ info=0x........ cmdline_at=0x........
#   PLAINLD: cmdline=<the command line>
#   PASS
# or "FAIL: <why>" (wrong magic; the boot info, the command line or the
# stack inside the image; the image's data or bss not as linked). Then it
# writes its result to the debug-exit port 0xf4 (0 pass, 1 fail) and halts.

	.ifndef PVH
	.set PVH, 0
	.endif
	.ifndef KLUDGE
	.set KLUDGE, 0
	.endif
	.ifndef NOTE
	.set NOTE, 0
	.endif

	.set COM1, 0x3f8
	.set MB_MAGIC, 0x1BADB002
	.set MB_FLAGS, KLUDGE << 16
	.set MB_LOADER_MAGIC, 0x2BADB002
	.set PVH_MAGIC, 0x336ec578

	.text
	.code32
	.globl _start
image_start:
	.if PVH == 0
	.align 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.if KLUDGE
	.long mb_header		# header_addr
	.long image_start	# load_addr
	.long _edata		# load_end_addr (ld's default script defines it)
	.long _end		# bss_end_addr
	.long _start		# entry_addr
	.endif
	.endif

_start:
	cli
	cld
	mov %eax, boot_eax
	mov %ebx, boot_ebx
	mov %esp, boot_esp
	mov $stack_top, %esp

	mov $msg_hello, %esi
	call puts
	.if PVH
	mov $msg_pvh, %esi
	.else
	mov $msg_mb, %esi
	.endif
	call puts

	# the boot protocol's magic
	.if PVH
	mov boot_ebx, %ebx
	cmpl $PVH_MAGIC, (%ebx)
	mov $fail_magic, %esi
	jne fail
	mov 24(%ebx), %eax		# cmdline_paddr (low half)
	.else
	cmpl $MB_LOADER_MAGIC, boot_eax
	mov $fail_magic, %esi
	jne fail
	mov boot_ebx, %ebx
	xor %eax, %eax
	testl $4, (%ebx)		# MULTIBOOT_INFO_CMDLINE
	jz 1f
	mov 16(%ebx), %eax
1:
	.endif
	mov %eax, cmdline_at

	mov $msg_image, %esi
	call puts
	mov $image_start, %eax
	call puthex
	mov $'-', %al
	call putc
	mov $_end, %eax
	call puthex
	mov $msg_info, %esi
	call puts
	mov boot_ebx, %eax
	call puthex
	mov $msg_cmdline_at, %esi
	call puts
	mov cmdline_at, %eax
	call puthex
	mov $msg_crlf, %esi
	call puts

	mov $msg_cmdline, %esi
	call puts
	mov cmdline_at, %esi
	test %esi, %esi
	jz 2f
	mov $200, %ecx			# at most this much of it
3:	lodsb
	test %al, %al
	jz 2f
	call putc
	loop 3b
2:	mov $msg_crlf, %esi
	call puts

	# nothing the loader handed over may lie inside the image
	mov boot_ebx, %eax
	mov $fail_info, %esi
	call check_outside
	mov cmdline_at, %eax
	test %eax, %eax
	jz 4f
	mov $fail_cmdline, %esi
	call check_outside
4:	mov boot_esp, %eax
	test %eax, %eax			# a loader that gives no stack may leave 0
	jz 5f
	sub $4, %eax
	mov $fail_stack, %esi
	call check_outside
5:
	# the image as linked: data intact, bss zeroed
	cmpl $0x600dda7a, data_word
	mov $fail_data, %esi
	jne fail
	cmpl $0, bss_word
	mov $fail_bss, %esi
	jne fail

	mov $msg_pass, %esi
	call puts
	xor %eax, %eax
	jmp done
fail:
	push %esi
	mov $msg_fail, %esi
	call puts
	pop %esi
	call puts
	mov $msg_crlf, %esi
	call puts
	mov $1, %eax
done:
	mov $0xf4, %dx
	out %eax, %dx
6:	hlt
	jmp 6b

# %eax: an address the loader gave; fails with the message in %esi when it
# lies in [image_start, _end).
check_outside:
	cmp $image_start, %eax
	jb 1f
	cmp $_end, %eax
	jae 1f
	add $4, %esp
	jmp fail
1:	ret

# putc: %al to COM1, once the transmitter holds nothing
putc:
	push %edx
	push %eax
	mov $COM1 + 5, %dx
1:	in %dx, %al
	test $0x20, %al
	jz 1b
	pop %eax
	mov $COM1, %dx
	out %al, %dx
	pop %edx
	ret

# puts: the NUL-terminated string at %esi
puts:
	push %eax
1:	lodsb
	test %al, %al
	jz 2f
	call putc
	jmp 1b
2:	pop %eax
	ret

# puthex: "0x" and %eax in 8 hex digits
puthex:
	push %ecx
	push %ebx
	mov %eax, %ebx
	mov $'0', %al
	call putc
	mov $'x', %al
	call putc
	mov $8, %ecx
1:	rol $4, %ebx
	mov %ebx, %eax
	and $0xf, %eax
	mov hexdigits(%eax), %al
	call putc
	loop 1b
	pop %ebx
	pop %ecx
	ret

	.section .rodata
hexdigits:	.ascii "0123456789abcdef"
msg_hello:	.asciz "PLAINLD: hello "
msg_mb:		.asciz "(multiboot)\r\n"
msg_pvh:	.asciz "(pvh)\r\n"
msg_image:	.asciz "PLAINLD: image="
msg_info:	.asciz " info="
msg_cmdline_at:	.asciz " cmdline_at="
msg_cmdline:	.asciz "PLAINLD: cmdline="
msg_crlf:	.asciz "\r\n"
msg_pass:	.asciz "PASS\r\n"
msg_fail:	.asciz "FAIL: "
fail_magic:	.asciz "wrong boot protocol magic"
fail_info:	.asciz "the boot info lies inside the image"
fail_cmdline:	.asciz "the command line lies inside the image"
fail_stack:	.asciz "the stack lies inside the image"
fail_data:	.asciz "the image's data is not as linked"
fail_bss:	.asciz "the image's bss is not zero"

	.data
	.align 4
data_word:	.long 0x600dda7a

	.bss
	.align 16
boot_eax:	.long 0
boot_ebx:	.long 0
boot_esp:	.long 0
cmdline_at:	.long 0
bss_word:	.long 0
	.align 16
	.skip 4096
stack_top:

	.if PVH
	# XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit entry point
	.section .note.Xen, "a"
	.align 4
	.long 4, 4, 18
	.asciz "Xen"
	.long _start
	.endif

	.if NOTE
	.section .note.khyve, "a"
	.align 4
	.long 6, 4, 1
	.asciz "khyve"
	.align 4
	.long 0x12345678
	.endif

	.section .note.GNU-stack, "", @progbits
