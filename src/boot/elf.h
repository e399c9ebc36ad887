/* A small, defensive ELF reader for kernel images (ELF32 and ELF64,
 * little-endian x86): the header, the program headers, notes, and loading
 * PT_LOAD segments at their physical addresses. Private to src/boot. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/loaders.h"

#define ELF_PT_LOAD 1
#define ELF_PT_NOTE 4
#define ELF_SHT_NOTE 7
#define ELF_PF_X 1
#define ELF_PF_W 2
#define ELF_EM_386 3
#define ELF_EM_X86_64 62
#define ELF_MAX_PHNUM 1024u
#define ELF_MAX_NOTE_SIZE (1u << 20)

#define XEN_ELFNOTE_PHYS32_ENTRY 18

struct elf_phdr {
	uint32_t type, flags;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
	bool skipped; /* a PT_LOAD elf_load() left out (headers or notes only) */
};

struct elf_image {
	int bits; /* 32 or 64 */
	uint16_t type, machine;
	uint64_t entry;
	unsigned phnum, ehsize, phentsize;
	uint64_t phoff;
	struct elf_phdr *ph; /* phnum entries, validated against the file */
	uint64_t shoff;
	unsigned shnum, shentsize;
};

bool elf_detect(const uint8_t *head, size_t len);
/* Parses and validates the header and the program headers (every PT_LOAD
 * and PT_NOTE lies within the file; p_filesz <= p_memsz; no wrap). */
int elf_parse(struct boot_ctx *c, const struct kfile *f, struct elf_image *elf);
void elf_free(struct elf_image *elf);

/* Looks for a note (name, type) in the PT_NOTE segments, then in the
 * SHT_NOTE sections. Returns 1 and copies up to desc_max bytes of its
 * descriptor (and its full size in *desc_len), 0 when absent, or a
 * negative errno (malformed notes or section headers). */
int elf_find_note(struct boot_ctx *c, const struct kfile *f, const struct elf_image *elf,
		  const char *name, uint32_t type, uint8_t *desc, size_t desc_max,
		  size_t *desc_len);

/* Loads every PT_LOAD (p_memsz > 0) at p_paddr, zeroing the bss part, after
 * claiming all of them (boot_claim_image: in RAM below 4 GiB, not
 * overlapping each other). A PT_LOAD that cannot be loaded where it asks
 * (outside RAM, above 4 GiB, in the EBDA/BIOS area) but holds nothing the
 * kernel runs, only the ELF and program headers or notes (what ld makes of
 * -Ttext without a linker script), is skipped instead, as QEMU's loader
 * in effect does (its writes there go nowhere), and marked so.
 * *end gets the highest end address of the loaded segments. */
int elf_load(struct boot_ctx *c, const struct kfile *f, struct elf_image *elf, uint64_t *end);

/* True when gpa lies inside a loaded segment ([p_paddr, p_paddr+p_memsz)). */
bool elf_paddr_loaded(const struct elf_image *elf, uint64_t gpa);
/* Maps a virtual address inside a PT_LOAD's [p_vaddr, p_vaddr+p_memsz) to
 * its physical address (GRUB's rule for e_entry); other addresses are
 * returned unchanged. */
uint64_t elf_vaddr_to_paddr(const struct elf_image *elf, uint64_t vaddr);
