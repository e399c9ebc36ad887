/* PVH direct boot (xen/include/public/arch-x86/hvm/start_info.h): the ELF's
 * PT_LOAD segments at their physical addresses, hvm_start_info version 1 at
 * BOOT_INFO_GPA or wherever boot_alloc() finds room beside the image (with
 * the memory map and the module list after it), and the
 * vCPU in flat 32-bit protected mode at the XEN_ELFNOTE_PHYS32_ENTRY
 * address with %ebx = &hvm_start_info. */
#include <errno.h>
#include <string.h>

#include "boot/elf.h"
#include "boot/loaders.h"

#define HVM_START_MAGIC 0x336ec578u
#define HVM_START_VERSION 1

/* hvm_start_info */
#define SI_MAGIC 0
#define SI_VERSION 4
#define SI_FLAGS 8
#define SI_NR_MODULES 12
#define SI_MODLIST_PADDR 16
#define SI_CMDLINE_PADDR 24
#define SI_RSDP_PADDR 32
#define SI_MEMMAP_PADDR 40
#define SI_MEMMAP_ENTRIES 48
#define SI_SIZE 56

#define MEMMAP_OFF 0x40     /* hvm_memmap_table_entry[], 24 bytes each */
#define MEMMAP_ENTRY 24
#define MODLIST_OFF 0x100   /* hvm_modlist_entry[], 32 bytes each */
#define MODLIST_ENTRY 32

_Static_assert(MEMMAP_OFF >= SI_SIZE, "layout");
_Static_assert(MEMMAP_OFF + E820_MAX_ENTRIES * MEMMAP_ENTRY <= MODLIST_OFF, "layout");
_Static_assert(MODLIST_OFF + BOOT_MAX_MODULES * MODLIST_ENTRY <= BOOT_INFO_SIZE, "layout");

int pvh_load(struct boot_ctx *c, struct elf_image *elf, uint32_t entry)
{
	const struct boot_request *req = c->req;
	const char *path = c->kernel.path;
	uint64_t end;
	int r = elf_load(c, &c->kernel, elf, &end);
	if (r)
		return r;
	if (!elf_paddr_loaded(elf, entry))
		return boot_fail(c, ENOEXEC,
				 "%s: the PVH entry 0x%x is not inside any loaded segment", path, entry);

	struct boot_loaded_module mods[BOOT_MAX_MODULES];
	r = boot_load_modules(c, end, mods);
	if (r)
		return r;

	uint8_t info[BOOT_INFO_SIZE];
	memset(info, 0, sizeof(info));
	uint64_t ia;
	r = boot_place_cpu_data(c, false);
	if (!r)
		r = boot_alloc(c, "hvm_start_info", sizeof(info), BOOT_PAGE, BOOT_INFO_GPA, &ia);
	if (r)
		return r;
	struct strarea sa;
	uint64_t need = req->cmdline ? strarea_need(req->cmdline, NULL) : 0;
	for (unsigned i = 0; i < req->nr_modules; i++)
		if (req->modules[i].args)
			need += strarea_need(req->modules[i].args, NULL);
	r = strarea_init(c, &sa, need, "the command line and module strings");
	if (r)
		return r;
	uint64_t cmdline_gpa = 0;
	if (req->cmdline) {
		r = strarea_put(c, &sa, req->cmdline, NULL, &cmdline_gpa);
		if (r)
			return r;
	}
	for (unsigned i = 0; i < req->nr_modules; i++) {
		uint8_t *m = info + MODLIST_OFF + i * MODLIST_ENTRY;
		uint64_t args_gpa = 0;
		if (req->modules[i].args) {
			r = strarea_put(c, &sa, req->modules[i].args, NULL, &args_gpa);
			if (r)
				return r;
		}
		put_le64(m, mods[i].gpa);
		put_le64(m + 8, mods[i].size);
		put_le64(m + 16, args_gpa);
	}

	struct e820_entry map[E820_MAX_ENTRIES];
	int n = guest_mem_e820(c->gm, map);
	for (int i = 0; i < n; i++) {
		uint8_t *e = info + MEMMAP_OFF + i * MEMMAP_ENTRY;
		put_le64(e, map[i].addr);
		put_le64(e + 8, map[i].size);
		put_le32(e + 16, map[i].type);
	}
	put_le32(info + SI_MAGIC, HVM_START_MAGIC);
	put_le32(info + SI_VERSION, HVM_START_VERSION);
	put_le32(info + SI_FLAGS, 0);
	put_le32(info + SI_NR_MODULES, req->nr_modules);
	put_le64(info + SI_MODLIST_PADDR, req->nr_modules ? ia + MODLIST_OFF : 0);
	put_le64(info + SI_CMDLINE_PADDR, cmdline_gpa);
	put_le64(info + SI_RSDP_PADDR, req->rsdp_gpa);
	put_le64(info + SI_MEMMAP_PADDR, ia + MEMMAP_OFF);
	put_le32(info + SI_MEMMAP_ENTRIES, (uint32_t)n);
	if (guest_mem_write(c->gm, ia, info, sizeof(info)))
		return boot_fail(c, EFAULT, "%s: cannot write hvm_start_info", path);

	r = boot_enter_prot32(c, entry);
	if (r)
		return r;
	c->entry->rbx = ia;
	c->entry->format_name = "PVH ELF";
	return 0;
}
