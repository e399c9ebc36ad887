/* Multiboot v1 (the GNU Multiboot Specification 0.6.96): an ELF32/ELF64
 * image loaded by its program headers, or any image loaded by the header's
 * address fields (flag 16, the "a.out kludge"); the Multiboot information
 * structure at BOOT_INFO_GPA (or wherever boot_alloc() finds room beside
 * the image); the vCPU in flat 32-bit protected mode with
 * %eax = 0x2BADB002 and %ebx = &info. */
#include <errno.h>
#include <string.h>

#include "boot/elf.h"
#include "boot/loaders.h"

/* multiboot_info */
#define MI_FLAGS 0
#define MI_MEM_LOWER 4
#define MI_MEM_UPPER 8
#define MI_CMDLINE 16
#define MI_MODS_COUNT 20
#define MI_MODS_ADDR 24
#define MI_MMAP_LENGTH 44
#define MI_MMAP_ADDR 48
#define MI_BOOT_LOADER_NAME 64
#define MI_SIZE 116

#define MIF_MEMORY (1u << 0)
#define MIF_CMDLINE (1u << 2)
#define MIF_MODS (1u << 3)
#define MIF_MEM_MAP (1u << 6)
#define MIF_LOADER_NAME (1u << 9)

#define MMAP_OFF 0x80       /* {size=20, base u64, length u64, type u32} */
#define MMAP_ENTRY 24
#define NAME_OFF 0x140
#define MODS_OFF 0x150      /* {mod_start, mod_end, string, reserved} */
#define MODS_ENTRY 16

#define LOADER_NAME "khyve"

_Static_assert(MMAP_OFF >= MI_SIZE, "layout");
_Static_assert(MMAP_OFF + E820_MAX_ENTRIES * MMAP_ENTRY <= NAME_OFF, "layout");
_Static_assert(NAME_OFF + sizeof(LOADER_NAME) <= MODS_OFF, "layout");
_Static_assert(MODS_OFF + BOOT_MAX_MODULES * MODS_ENTRY <= BOOT_INFO_SIZE, "layout");

/* Flags the loader understands; any other bit in the low 16 is a
 * requirement it cannot meet. Video mode (bit 2) is a wish: no video. */
#define MB_FLAGS_KNOWN_REQUIRED (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMORY_INFO | MB_FLAG_VIDEO_MODE)

void multiboot_find(const uint8_t *head, size_t len, struct mb_header *mh)
{
	memset(mh, 0, sizeof(*mh));
	for (size_t off = 0; off + 12 <= len; off += 4) {
		if (get_le32(head + off) != MB_MAGIC)
			continue;
		uint32_t flags = get_le32(head + off + 4), sum = get_le32(head + off + 8);
		if ((uint32_t)(MB_MAGIC + flags + sum) != 0) {
			if (!mh->bad_checksum) {
				mh->bad_checksum = true;
				mh->offset = (uint32_t)off;
			}
			continue;
		}
		mh->found = true;
		mh->bad_checksum = false;
		mh->offset = (uint32_t)off;
		mh->flags = flags;
		if (flags & MB_FLAG_AOUT_KLUDGE) {
			if (off + 32 > len) {
				mh->truncated = true;
				return;
			}
			mh->header_addr = get_le32(head + off + 12);
			mh->load_addr = get_le32(head + off + 16);
			mh->load_end_addr = get_le32(head + off + 20);
			mh->bss_end_addr = get_le32(head + off + 24);
			mh->entry_addr = get_le32(head + off + 28);
		}
		return;
	}
}

/* Loads by the header's address fields; sets *entry and *end. */
static int load_aout(struct boot_ctx *c, const struct mb_header *mh, uint64_t *entry,
		     uint64_t *end)
{
	const char *path = c->kernel.path;
	const uint64_t fsize = c->kernel.size;
	if (mh->load_addr > mh->header_addr)
		return boot_fail(c, ENOEXEC,
				 "%s: Multiboot load_addr 0x%x is above header_addr 0x%x", path,
				 mh->load_addr, mh->header_addr);
	uint64_t delta = mh->header_addr - mh->load_addr;
	if (delta > mh->offset)
		return boot_fail(c, ENOEXEC,
				 "%s: Multiboot header_addr 0x%x and load_addr 0x%x put the image "
				 "start 0x%llx bytes before the header, but the header is at file "
				 "offset 0x%x",
				 path, mh->header_addr, mh->load_addr, (unsigned long long)delta,
				 mh->offset);
	uint64_t load_off = mh->offset - delta;
	uint64_t size;
	if (mh->load_end_addr == 0) {
		size = fsize - load_off;
	} else {
		if (mh->load_end_addr < mh->load_addr)
			return boot_fail(c, ENOEXEC,
					 "%s: Multiboot load_end_addr 0x%x is below load_addr 0x%x",
					 path, mh->load_end_addr, mh->load_addr);
		size = mh->load_end_addr - mh->load_addr;
		if (size > fsize - load_off)
			return boot_fail(c, ENOEXEC,
					 "%s: Multiboot load_end_addr 0x%x asks for %llu bytes but the "
					 "file has only %llu from offset 0x%llx",
					 path, mh->load_end_addr, (unsigned long long)size,
					 (unsigned long long)(fsize - load_off),
					 (unsigned long long)load_off);
	}
	uint64_t memsz = size;
	if (mh->bss_end_addr) {
		if (mh->bss_end_addr < mh->load_addr + size)
			return boot_fail(c, ENOEXEC,
					 "%s: Multiboot bss_end_addr 0x%x is below the end of the "
					 "loaded image 0x%llx",
					 path, mh->bss_end_addr,
					 (unsigned long long)(mh->load_addr + size));
		memsz = mh->bss_end_addr - mh->load_addr;
	}
	if (memsz == 0)
		return boot_fail(c, ENOEXEC, "%s: the Multiboot image is empty", path);
	int r = boot_claim_image(c, "Multiboot image", mh->load_addr, memsz);
	if (r)
		return r;
	if (mh->entry_addr < mh->load_addr || mh->entry_addr - mh->load_addr >= memsz)
		return boot_fail(c, ENOEXEC,
				 "%s: Multiboot entry_addr 0x%x is outside the loaded image "
				 "0x%x-0x%llx",
				 path, mh->entry_addr, mh->load_addr,
				 (unsigned long long)(mh->load_addr + memsz - 1));
	r = kfile_load(c, &c->kernel, load_off, size, mh->load_addr, memsz);
	if (r)
		return r;
	boot_inform(c, "Multiboot image at 0x%x-0x%llx (%llu bytes from file offset 0x%llx)",
		    mh->load_addr, (unsigned long long)(mh->load_addr + memsz - 1),
		    (unsigned long long)size, (unsigned long long)load_off);
	*entry = mh->entry_addr;
	*end = mh->load_addr + memsz;
	return 0;
}

static int load_elf(struct boot_ctx *c, struct elf_image *elf, uint64_t *entry,
		    uint64_t *end)
{
	const char *path = c->kernel.path;
	int r = elf_load(c, &c->kernel, elf, end);
	if (r)
		return r;
	uint64_t e = elf_vaddr_to_paddr(elf, elf->entry);
	if (e >= BOOT_4G)
		return boot_fail(c, ENOEXEC, "%s: the ELF entry point 0x%llx is above 4 GiB", path,
				 (unsigned long long)e);
	if (!elf_paddr_loaded(elf, e))
		return boot_fail(c, ENOEXEC,
				 "%s: the ELF entry point 0x%llx is not inside any loaded segment",
				 path, (unsigned long long)e);
	*entry = e;
	return 0;
}

int multiboot_load(struct boot_ctx *c, const struct mb_header *mh, struct elf_image *elf)
{
	const struct boot_request *req = c->req;
	const char *path = c->kernel.path;
	const struct guest_mem *gm = c->gm;

	if (!mh->found)
		return boot_fail(c, ENOEXEC, "%s: not a Multiboot image", path);
	if (mh->truncated)
		return boot_fail(c, ENOEXEC,
				 "%s: the Multiboot header at 0x%x %s", path, mh->offset,
				 c->headlen < BOOT_HEAD_LEN ? "is cut off by the end of the file"
							    : "extends past the first 8192 bytes");
	uint32_t unknown = mh->flags & 0xffffu & ~MB_FLAGS_KNOWN_REQUIRED;
	if (unknown)
		return boot_fail(c, ENOTSUP,
				 "%s: the Multiboot header requires features khyve does not support "
				 "(flags 0x%x)",
				 path, unknown);

	uint64_t entry = 0, end = 0;
	int r;
	if (mh->flags & MB_FLAG_AOUT_KLUDGE)
		r = load_aout(c, mh, &entry, &end);
	else if (elf)
		r = load_elf(c, elf, &entry, &end);
	else
		r = boot_fail(c, ENOEXEC,
			      "%s: the Multiboot header has no address fields (flag 16) and the "
			      "file is not a usable ELF",
			      path);
	if (r)
		return r;

	/* Modules are always page-aligned, which satisfies flag 0 too. */
	struct boot_loaded_module mods[BOOT_MAX_MODULES];
	r = boot_load_modules(c, end, mods);
	if (r)
		return r;

	uint8_t info[BOOT_INFO_SIZE];
	memset(info, 0, sizeof(info));
	uint64_t ia;
	r = boot_place_cpu_data(c, false);
	if (!r)
		r = boot_alloc(c, "the Multiboot information", sizeof(info), BOOT_PAGE, BOOT_INFO_GPA, &ia);
	if (r)
		return r;
	struct strarea sa;
	uint64_t need = strarea_need(path, req->cmdline);
	for (unsigned i = 0; i < req->nr_modules; i++)
		need += strarea_need(req->modules[i].path, req->modules[i].args);
	r = strarea_init(c, &sa, need, "the command line and module strings");
	if (r)
		return r;
	uint64_t cmdline_gpa;
	r = strarea_put(c, &sa, path, req->cmdline, &cmdline_gpa);
	if (r)
		return r;
	for (unsigned i = 0; i < req->nr_modules; i++) {
		uint64_t s;
		r = strarea_put(c, &sa, req->modules[i].path, req->modules[i].args, &s);
		if (r)
			return r;
		uint8_t *m = info + MODS_OFF + i * MODS_ENTRY;
		put_le32(m, (uint32_t)mods[i].gpa);
		put_le32(m + 4, (uint32_t)(mods[i].gpa + mods[i].size));
		put_le32(m + 8, (uint32_t)s);
	}

	struct e820_entry map[E820_MAX_ENTRIES];
	int n = guest_mem_e820(gm, map);
	for (int i = 0; i < n; i++) {
		uint8_t *e = info + MMAP_OFF + i * MMAP_ENTRY;
		put_le32(e, MMAP_ENTRY - 4);
		put_le64(e + 4, map[i].addr);
		put_le64(e + 12, map[i].size);
		put_le32(e + 20, map[i].type);
	}
	memcpy(info + NAME_OFF, LOADER_NAME, sizeof(LOADER_NAME));

	uint64_t upper = gm->low_size > BOOT_1M ? (gm->low_size - BOOT_1M) >> 10 : 0;
	put_le32(info + MI_FLAGS, MIF_MEMORY | MIF_CMDLINE | MIF_MODS | MIF_MEM_MAP | MIF_LOADER_NAME);
	put_le32(info + MI_MEM_LOWER, (uint32_t)(GUEST_EBDA_BASE >> 10));
	put_le32(info + MI_MEM_UPPER, (uint32_t)upper);
	put_le32(info + MI_CMDLINE, (uint32_t)cmdline_gpa);
	put_le32(info + MI_MODS_COUNT, req->nr_modules);
	put_le32(info + MI_MODS_ADDR, (uint32_t)(ia + MODS_OFF));
	put_le32(info + MI_MMAP_LENGTH, (uint32_t)(n * MMAP_ENTRY));
	put_le32(info + MI_MMAP_ADDR, (uint32_t)(ia + MMAP_OFF));
	put_le32(info + MI_BOOT_LOADER_NAME, (uint32_t)(ia + NAME_OFF));
	if (guest_mem_write(gm, ia, info, sizeof(info)))
		return boot_fail(c, EFAULT, "%s: cannot write the Multiboot information", path);

	r = boot_enter_prot32(c, entry);
	if (r)
		return r;
	c->entry->rax = MB_BOOTLOADER_MAGIC;
	c->entry->rbx = ia;
	c->entry->format_name = "Multiboot";
	return 0;
}
