/* FreeBSD amd64 kernels loaded the way bhyveload(8) loads them: FreeBSD's
 * loader (stand/common/load_elf.c, load_elf_obj.c, module.c) running as
 * userboot (stand/userboot/userboot/bootinfo64.c, elf64_freebsd.c) and
 * libvmmapi's vm_setup_freebsd_registers().
 *
 * What the kernel is handed, all physical addresses below 2 GiB:
 *   - the kernel's PT_LOAD segments at p_vaddr - (e_entry & ~0xffffff)
 *     (0xffffffff80200000 -> 2 MiB), then its symbol table and string
 *     table, each preceded by its 64-bit size (MODINFOMD_SSYM..ESYM);
 *   - each further file page-aligned after it: ELF relocatable modules
 *     (.ko, "elf obj module") with their sections laid out as
 *     load_elf_obj.c does, and raw files ("md_image", ...);
 *   - the kenv block ("name=value\0...\0\0") on the next page
 *     (MODINFOMD_ENVP);
 *   - the MODINFO records (modulep) on the page after it; kernend is the
 *     page after those (MODINFOMD_KERNEND);
 *   - the boot vCPU in 64-bit mode at e_entry, with page tables mapping
 *     0-4 GiB 1:1 and KERNBASE (0xffffffff80000000) + 0-2 GiB to 0-2 GiB,
 *     a 3-entry GDT (null, code 0x08, data 0x10), CR0 PE|NE|PG, CR4 PAE,
 *     EFER LME|LMA, and on the stack, as 32-bit words: a return address
 *     of 0, modulep, kernend (locore.S btext reads 4(%rsp) and 8(%rsp)).
 *
 * boot_load_kernel() loads this way for BOOT_FORMAT_FREEBSD, and for
 * BOOT_FORMAT_AUTO when the ELF is a FreeBSD kernel (ELFOSABI_FREEBSD or a
 * "FreeBSD" ABI note) that has no PVH entry note or was given modules or a
 * kenv (PVH cannot carry those). The pieces below are public for tests and
 * for khyveload. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define FBSD_KERNBASE 0xffffffff80000000ULL
#define FBSD_PAGE 0x1000ULL
/* What the boot page tables map at KERNBASE (and so where everything the
 * kernel is handed must end). */
#define FBSD_MAP_LIMIT 0x80000000ULL

/* sys/sys/linker.h */
#define MODINFO_END 0x0000
#define MODINFO_NAME 0x0001
#define MODINFO_TYPE 0x0002
#define MODINFO_ADDR 0x0003
#define MODINFO_SIZE 0x0004
#define MODINFO_EMPTY 0x0005
#define MODINFO_ARGS 0x0006
#define MODINFO_METADATA 0x8000
#define MODINFOMD_ELFHDR 0x0002
#define MODINFOMD_SSYM 0x0003
#define MODINFOMD_ESYM 0x0004
#define MODINFOMD_DYNAMIC 0x0005
#define MODINFOMD_ENVP 0x0006
#define MODINFOMD_HOWTO 0x0007
#define MODINFOMD_KERNEND 0x0008
#define MODINFOMD_SHDR 0x0009
#define MODINFOMD_CTORS_ADDR 0x000a
#define MODINFOMD_CTORS_SIZE 0x000b
#define MODINFOMD_FW_HANDLE 0x000c
/* sys/amd64/include/metadata.h */
#define MODINFOMD_SMAP 0x1001

/* sys/sys/reboot.h */
#define RB_ASKNAME 0x001
#define RB_SINGLE 0x002
#define RB_DFLTROOT 0x020
#define RB_KDB 0x040
#define RB_VERBOSE 0x800
#define RB_SERIAL 0x1000
#define RB_CDROM 0x2000
#define RB_GDB 0x8000
#define RB_MUTE 0x10000
#define RB_PAUSE 0x100000
#define RB_MULTIPLE 0x20000000

/* The file types the kernel looks for. */
#define FBSD_TYPE_KERNEL "elf kernel"
#define FBSD_TYPE_OBJ "elf obj module"

/* One metadata record of a file: MODINFO_METADATA | type, size bytes. */
struct fbsd_md {
	uint32_t type; /* MODINFOMD_* (without MODINFO_METADATA) */
	uint32_t size;
	const void *data;
};

/* One preloaded file as the kernel sees it (struct preloaded_file). */
struct fbsd_file {
	const char *name, *type, *args; /* args may be NULL */
	uint64_t addr, size;
	const struct fbsd_md *md;
	unsigned nmd;
};

/* Writes the MODINFO records of files[0..n) (the kernel first), as
 * bi_copymodules64() does, and MODINFO_END, into buf (NULL: only
 * measures). Returns the number of bytes. */
size_t freebsd_modinfo(const struct fbsd_file *files, unsigned n, uint8_t *buf);

/* The boot howto flags (RB_*) that the loader computes
 * (bi_getboothowto): "-s -v"-style flags in the kernel's arguments
 * (kargs may be NULL), the boot_* variables of env (boot_single,
 * boot_verbose, boot_serial, ...; set at all means on, as in the loader)
 * and console=comconsole. env: n "name=value" strings. */
uint32_t freebsd_howto(const char *kargs, const char *const *env, unsigned n);

/* The kenv block for env (n "name=value" strings): each name once, with
 * the value of its last setting, in the order of first setting; each
 * string NUL-terminated, the block ended by an empty string. Into buf
 * (NULL: measure). Returns its size, or 0 when an entry is not
 * "name=value" with a non-empty name (*bad says which one). */
size_t freebsd_env_block(const char *const *env, unsigned n, uint8_t *buf, unsigned *bad);
