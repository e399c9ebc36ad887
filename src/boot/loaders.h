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
#define BOOT_INFO_SIZE (BOOT_INFO_END - BOOT_INFO_GPA)
#define BOOT_STACK_GPA 0x8000ULL    /* the usual stack: [0x8000, BOOT_STACK_TOP) */
#define BOOT_STACK_MOVED 0x4000ULL  /* its size when the image is in the way */
/* Boot data is never placed below this: the real-mode IVT and the BIOS
 * data area, which firmware would leave there. */
#define BOOT_DATA_FLOOR 0x500ULL
#define BOOT_4G 0x100000000ULL
#define BOOT_1M 0x100000ULL
#define BOOT_PAGE 0x1000ULL

/* A file being loaded: read with pread, never mapped or slurped. */
struct kfile {
	const char *path;
	int fd;
	uint64_t size;
};

/* One range of guest memory this boot uses (layout.c). */
struct boot_claim {
	uint64_t start, end; /* [start, end) */
	bool data;           /* khyve's boot data, not the image or a module */
	char what[56];       /* "ELF segment 2", "module 1", "the GDT" */
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
	/* The guest's e820 map, and what this boot has placed in it so far. */
	struct e820_entry map[E820_MAX_ENTRIES];
	int nmap;
	struct boot_claim *claims;
	unsigned nclaims, claims_cap;
	/* entry.c's pieces, placed by boot_place_cpu_data() */
	bool cpu_data_placed;
	uint64_t gdt_gpa, stack_top, pml4_gpa;
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

/* layout.c: the guest-physical map of one boot. */
void boot_layout_init(struct boot_ctx *c);
void boot_layout_free(struct boot_ctx *c);
/* NULL when [gpa, gpa+size) lies wholly in one RAM range of the e820 map
 * below 4 GiB (size > 0); otherwise where it lies instead, for a message:
 * "above 4 GiB", "outside guest RAM (64 MiB)", "in the EBDA/BIOS area
 * 0x9fc00-0xfffff". buf holds the text. */
const char *boot_not_ram(struct boot_ctx *c, uint64_t gpa, uint64_t size, char *buf, size_t len);
/* Records [gpa, gpa+size) as part of the image ("what" names it in
 * messages: "ELF segment 2", "the initrd"). Refuses a range that is not
 * wholly in e820 RAM below 4 GiB, or that overlaps anything claimed before
 * (the message names both). size 0 claims nothing. */
int boot_claim_image(struct boot_ctx *c, const char *what, uint64_t gpa, uint64_t size);
/* Places size bytes of boot data (align: a power of two): at prefer when
 * that range is free RAM, else at the lowest free, aligned RAM from
 * BOOT_DATA_FLOOR up, below 4 GiB, and not in a page the image or a module
 * touches. Says so through the inform callback when it had to move. */
int boot_alloc(struct boot_ctx *c, const char *what, uint64_t size, uint64_t align,
	       uint64_t prefer, uint64_t *gpa);
/* The same, where the usual place holds prefer_size bytes and a moved
 * piece only size; *got says which. */
int boot_alloc_sized(struct boot_ctx *c, const char *what, uint64_t size, uint64_t align,
		     uint64_t prefer, uint64_t prefer_size, uint64_t *gpa, uint64_t *got);
/* Calls the request's inform callback with one formatted line. */
void boot_inform(struct boot_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line listing every piece of boot data (after a successful load). */
void boot_inform_data(struct boot_ctx *c);

/* Command-line strings, in one piece of boot data of the size needed. */
struct strarea {
	uint64_t next, end;
};
/* Bytes strarea_put(a, b) takes: "a" or "a b", and a NUL. */
uint64_t strarea_need(const char *a, const char *b);
/* Places need bytes (at most BOOT_CMDLINE_MAX; 0: nothing) of strings. */
int strarea_init(struct boot_ctx *c, struct strarea *s, uint64_t need, const char *what);
/* Writes "a" or "a b" (b non-NULL and non-empty) with a NUL; stores its gpa. */
int strarea_put(struct boot_ctx *c, struct strarea *s, const char *a, const char *b,
		uint64_t *gpa);

/* The request's modules, each page-aligned, placed one after another from
 * align_up(max(start, 1 MiB)) and wholly below min(low RAM end, 4 GiB);
 * each is claimed as "module N". */
struct boot_loaded_module {
	uint64_t gpa, size;
};
int boot_load_modules(struct boot_ctx *c, uint64_t start, struct boot_loaded_module *out);

/* entry.c: place the GDT, the stack and (long_mode) the page tables; the
 * loaders call it before placing their other boot data, so that these keep
 * their usual places whenever those are free. boot_enter_*() call it too. */
int boot_place_cpu_data(struct boot_ctx *c, bool long_mode);
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
int multiboot_load(struct boot_ctx *c, const struct mb_header *mh, struct elf_image *elf);

/* pvh.c */
int pvh_load(struct boot_ctx *c, struct elf_image *elf, uint32_t entry);

/* freebsd.c */
/* Whether an ELF image is a FreeBSD kernel: ELFOSABI_FREEBSD in e_ident or
 * a "FreeBSD" ABI tag note (NT_FREEBSD_ABI_TAG). 1, 0, or -errno. */
int freebsd_detect(struct boot_ctx *c, const struct elf_image *elf);
int freebsd_load(struct boot_ctx *c, struct elf_image *elf);
