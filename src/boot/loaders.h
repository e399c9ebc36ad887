/* Private to src/boot: what the kernel-format loaders (linux.c, pvh.c,
 * multiboot.c) share with boot.c, elf.c and entry.c. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"

/* Detection reads this much of the kernel file; the Multiboot header must
 * lie wholly within it (Multiboot spec 3.1.1). */
#define BOOT_HEAD_LEN 8192u
#define BOOT_MAX_MODULES 64u
/* Nothing the image asks for may land below this (GDT, page tables, boot
 * info, TSS, stack, command lines). */
#define BOOT_AREA_END (BOOT_CMDLINE_GPA + BOOT_CMDLINE_MAX)
#define BOOT_4G 0x100000000ULL
#define BOOT_1M 0x100000ULL
#define BOOT_PAGE 0x1000ULL

/* A file being loaded: read with pread, never mapped or slurped. */
struct kfile {
	const char *path;
	int fd;
	uint64_t size;
};

struct boot_ctx {
	const struct guest_mem *gm;
	const struct boot_request *req;
	struct boot_entry *entry;
	char *err;
	size_t errlen;
	struct kfile kernel;
	size_t headlen;
	uint8_t head[BOOT_HEAD_LEN]; /* the first headlen bytes of the kernel */
};

/* Formats "fmt" into c->err and returns -errnum (errnum > 0). */
int boot_fail(struct boot_ctx *c, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

int kfile_open(struct boot_ctx *c, struct kfile *f, const char *path);
void kfile_close(struct kfile *f);
/* Read exactly len bytes at off; the caller has checked off+len <= size. */
int kfile_read(struct boot_ctx *c, const struct kfile *f, uint64_t off, void *buf, size_t len);
/* Read filesz bytes at off into guest memory at gpa and zero up to memsz
 * (memsz >= filesz). The whole range must be RAM. */
int kfile_load(struct boot_ctx *c, const struct kfile *f, uint64_t off, uint64_t filesz,
	       uint64_t gpa, uint64_t memsz);

static inline uint64_t align_up(uint64_t v, uint64_t a) /* a: power of 2; v small enough */
{
	return (v + a - 1) & ~(a - 1);
}
static inline uint64_t align_down(uint64_t v, uint64_t a)
{
	return v & ~(a - 1);
}
static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}
static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}
static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}
static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/* Refuses a kernel-image range [gpa, gpa+size) that is not wholly in RAM
 * below 4 GiB, or that overlaps the boot area or the EBDA/BIOS area.
 * "what" names it in the message ("ELF segment 2"). */
int boot_check_image_range(struct boot_ctx *c, const char *what, uint64_t gpa, uint64_t size);

/* Command-line strings in [BOOT_CMDLINE_GPA, +BOOT_CMDLINE_MAX). */
struct strarea {
	uint64_t next, end;
};
void strarea_init(struct strarea *s);
/* Writes "a" or "a b" (b non-NULL and non-empty) with a NUL; stores its gpa. */
int strarea_put(struct boot_ctx *c, struct strarea *s, const char *a, const char *b,
		uint64_t *gpa);

/* The request's modules, each page-aligned, placed one after another from
 * align_up(start) and wholly below min(low RAM end, 4 GiB). */
struct boot_loaded_module {
	uint64_t gpa, size;
};
int boot_load_modules(struct boot_ctx *c, uint64_t start, struct boot_loaded_module *out);

/* entry.c: write the GDT (and TSS / page tables) and fill c->entry. */
int boot_enter_long64(struct boot_ctx *c, uint64_t rip);
int boot_enter_prot32(struct boot_ctx *c, uint64_t rip);

/* linux.c */
bool linux_detect(const uint8_t *head, size_t len);
int linux_load(struct boot_ctx *c);

/* multiboot.c */
#define MB_MAGIC 0x1BADB002u
#define MB_BOOTLOADER_MAGIC 0x2BADB002u
#define MB_FLAG_PAGE_ALIGN (1u << 0)
#define MB_FLAG_MEMORY_INFO (1u << 1)
#define MB_FLAG_VIDEO_MODE (1u << 2)
#define MB_FLAG_AOUT_KLUDGE (1u << 16)
struct mb_header {
	bool found;          /* a valid header (magic, checksum) */
	bool bad_checksum;   /* only a magic with a wrong checksum was seen */
	bool truncated;      /* found, but its address fields are cut off */
	uint32_t offset;     /* file offset of the magic */
	uint32_t flags;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};
void multiboot_find(const uint8_t *head, size_t len, struct mb_header *mh);
struct elf_image;
/* elf may be NULL (a.out kludge image). */
int multiboot_load(struct boot_ctx *c, const struct mb_header *mh, const struct elf_image *elf);

/* pvh.c */
int pvh_load(struct boot_ctx *c, const struct elf_image *elf, uint32_t entry);
