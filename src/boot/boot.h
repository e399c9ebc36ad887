/* Loading a kernel for direct boot: a Linux bzImage (64-bit boot protocol),
 * an ELF with a PVH entry note, or a Multiboot v1 image. The loader writes
 * the kernel, its modules/initrd, the command line and the boot structures
 * (boot_params / hvm_start_info / multiboot info, GDT, page tables) into
 * guest memory and says how the boot vCPU must start. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "mem/guest_mem.h"

enum boot_format {
	BOOT_FORMAT_AUTO,
	BOOT_FORMAT_LINUX,     /* bzImage, 64-bit boot protocol */
	BOOT_FORMAT_PVH,       /* ELF with XEN_ELFNOTE_PHYS32_ENTRY */
	BOOT_FORMAT_MULTIBOOT, /* Multiboot v1: ELF32/ELF64 or a.out kludge */
	BOOT_FORMAT_FREEBSD,   /* FreeBSD amd64 ELF kernel as bhyveload loads it
				* (boot/freebsd.h) */
};

struct boot_module {
	const char *path;
	const char *args; /* may be NULL; multiboot module string is "path args" */
};

struct boot_request {
	enum boot_format format;
	const char *kernel_path;
	const char *cmdline; /* may be NULL */
	const struct boot_module *modules; /* for Linux: initrds, concatenated */
	unsigned nr_modules;
	uint64_t rsdp_gpa; /* 0 when the machine has no ACPI */
	/* FreeBSD only: the kenv ("name=value" strings, a later setting of a
	 * name wins) and the kernel's MODINFO_NAME (NULL:
	 * /boot/kernel/kernel). The command line is the kernel's arguments
	 * ("-s -v"): its boot flags count towards the howto. */
	const char *const *env;
	unsigned nr_env;
	const char *kernel_name;
	/* FreeBSD only: module i's MODINFO_NAME, the path the kernel knows
	 * it by (NULL, or a NULL entry: /boot/kernel/BASENAME for an ELF
	 * module, /boot/BASENAME for other files). A module's args may start
	 * with "-t TYPE" (the loader's load -t: "md_image", ...); without
	 * it, the file must be an ELF relocatable object, a kernel module;
	 * the rest of args are its arguments. */
	const char *const *module_names;
	/* Optional: called with one informational line at a time (no program
	 * name, no newline) saying what the loader decided: where each part
	 * of the image, the modules and the boot data went, which ELF
	 * segments it skipped and why. khyve --verbose prints them. */
	void (*inform)(void *opaque, const char *line);
	void *inform_opaque;
};

enum boot_cpu_mode {
	BOOT_CPU_PROT32, /* flat 32-bit protected mode, paging off */
	BOOT_CPU_LONG64, /* 64-bit long mode with identity-mapped page tables */
};

/* The boot vCPU's state at the first instruction. Segments are flat
 * (base 0, limit 4 GiB); the selectors index the GDT the loader wrote at
 * gdt_base. */
struct boot_entry {
	enum boot_cpu_mode mode;
	uint64_t rip, rsp, rflags;
	uint64_t rax, rbx, rsi;
	uint64_t cr0, cr3, cr4, efer;
	uint64_t gdt_base;
	uint16_t gdt_limit;
	/* tss_sel 0: none in the GDT. The loaders' TSS descriptor is base 0,
	 * limit 0x67, type 11 (busy; a 64-bit TSS in long mode), as the PVH
	 * ABI asks for TR. */
	uint16_t code_sel, data_sel, tss_sel;
	const char *format_name; /* "bzImage", "PVH ELF", "Multiboot", "FreeBSD ELF" */
};

/* Returns 0, or a negative errno with a one-line reason in err (without
 * the program name), e.g. "vmlinuz: not a bzImage, ELF/PVH or Multiboot
 * image", "initrd.img: No such file or directory". */
int boot_load_kernel(const struct guest_mem *gm, const struct boot_request *req,
		     struct boot_entry *entry, char *err, size_t errlen);

/* Where the loaders put their own boot data (GDT, page tables, boot info,
 * command lines, stack) when the image leaves room: the classic places
 * below 1 MiB, outside the EBDA and BIOS area. Where the kernel image or
 * its modules occupy one of them, that piece moves to the lowest free RAM
 * instead (src/boot/layout.c); struct boot_entry (gdt_base, cr3, rsp,
 * rbx/rsi) says where everything went. Boot data always lies in RAM of the
 * e820 map, which the guest may reuse once it has read it. */
#define BOOT_GDT_GPA 0x0500ULL
#define BOOT_PML4_GPA 0x1000ULL    /* then PDPT 0x2000, PDs 0x3000-0x6fff */
#define BOOT_INFO_GPA 0x7000ULL    /* boot_params / hvm_start_info / mb info */
#define BOOT_INFO_END 0x8000ULL
#define BOOT_CMDLINE_GPA 0x20000ULL
#define BOOT_CMDLINE_MAX 0x10000ULL /* including module strings (multiboot) */
#define BOOT_STACK_TOP 0x20000ULL  /* rsp at entry: a stack in 0x8000-0x1ffff */
