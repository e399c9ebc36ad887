/* boot_load_kernel(): synthetic bzImage, PVH ELF (64 and 32), Multiboot
 * ELF32 and a.out-kludge images written to temp files and loaded into a
 * 64 MiB guest; the boot structures and entry state they produce; the
 * errors for malformed and truncated variants; random byte flips (run
 * under ASan/UBSan by the sanitizer build); and, when present, the real
 * kernels of the test kit (.kit/linux). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/boot.h"
#include "boot/loaders.h" /* the layout API, tested directly */
#include "mem/guest_mem.h"
#include "unit.h"

#define GUEST_SIZE (64ULL << 20)
#define BOOT_MAX_MODULES_TEST 65

static struct guest_mem gm;
static char err[512];
/* What the loader said through the inform callback on the last load. */
static char said[8192];

static void collect(void *opaque, const char *line)
{
	(void)opaque;
	size_t n = strlen(said);
	snprintf(said + n, sizeof(said) - n, "%s\n", line);
	if (getenv("TEST_BOOT_VERBOSE"))
		fprintf(stderr, "    | %s\n", line);
}

/* ---- little helpers ---- */

static void p16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static void p32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void p64(uint8_t *p, uint64_t v)
{
	p32(p, (uint32_t)v);
	p32(p + 4, (uint32_t)(v >> 32));
}
static uint16_t g16(uint64_t gpa)
{
	uint8_t b[2] = { 0 };
	guest_mem_read(&gm, gpa, b, 2);
	return (uint16_t)(b[0] | b[1] << 8);
}
static uint32_t g32(uint64_t gpa)
{
	uint32_t v = 0;
	guest_mem_read_u32(&gm, gpa, &v);
	return v;
}
static uint64_t g64(uint64_t gpa)
{
	return (uint64_t)g32(gpa) | (uint64_t)g32(gpa + 4) << 32;
}
static uint8_t g8(uint64_t gpa)
{
	uint8_t b = 0;
	guest_mem_read(&gm, gpa, &b, 1);
	return b;
}
static bool gstr_is(uint64_t gpa, const char *s)
{
	size_t n = strlen(s) + 1;
	char *buf = malloc(n);
	if (!buf || guest_mem_read(&gm, gpa, buf, n)) {
		free(buf);
		return false;
	}
	bool ok = memcmp(buf, s, n) == 0;
	if (!ok)
		fprintf(stderr, "guest string at 0x%llx is \"%.*s\", expected \"%s\"\n",
			(unsigned long long)gpa, (int)n, buf, s);
	free(buf);
	return ok;
}
static bool gmem_is(uint64_t gpa, const uint8_t *data, size_t len)
{
	const void *p = guest_mem_ptr(&gm, gpa, len);
	return p && memcmp(p, data, len) == 0;
}
static bool gmem_all(uint64_t gpa, uint8_t byte, size_t len)
{
	const uint8_t *p = guest_mem_ptr(&gm, gpa, len);
	if (!p)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] != byte)
			return false;
	return true;
}

/* Temp files, removed at exit. */
#define MAX_TMP 64
static char tmp_paths[MAX_TMP][64];
static int ntmp;

static void cleanup_tmp(void)
{
	for (int i = 0; i < ntmp; i++)
		unlink(tmp_paths[i]);
}

static const char *tmp_file(const void *data, size_t len)
{
	if (ntmp == MAX_TMP) {
		fprintf(stderr, "too many temp files\n");
		exit(2);
	}
	char *path = tmp_paths[ntmp];
	snprintf(path, 64, "/tmp/khyve-test-boot-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		exit(2);
	}
	ntmp++;
	if (len && write(fd, data, len) != (ssize_t)len) {
		perror("write");
		exit(2);
	}
	close(fd);
	return path;
}

/* Rewrites an existing temp file. */
static void rewrite(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len)) {
		perror(path);
		exit(2);
	}
	close(fd);
}

static int load(const char *path, enum boot_format fmt, const char *cmdline,
		const struct boot_module *mods, unsigned nmods, struct boot_entry *e)
{
	struct boot_request req = {
		.format = fmt,
		.kernel_path = path,
		.cmdline = cmdline,
		.modules = mods,
		.nr_modules = nmods,
		.rsdp_gpa = 0xF0000,
		.inform = collect,
	};
	err[0] = 0;
	said[0] = 0;
	int r = boot_load_kernel(&gm, &req, e, err, sizeof(err));
	if (r)
		CHECK(err[0] != 0); /* every failure says why */
	else
		CHECK(err[0] == 0);
	return r;
}

/* Loads and expects failure with a message containing "want". */
static void expect_fail_mods(const char *what, const void *img, size_t len, enum boot_format fmt,
			     const char *cmdline, const struct boot_module *mods, unsigned nmods,
			     const char *want)
{
	static const char *path;
	if (!path)
		path = tmp_file(NULL, 0);
	rewrite(path, img, len);
	struct boot_entry e;
	int r = load(path, fmt, cmdline, mods, nmods, &e);
	if (r == 0 || !strstr(err, want)) {
		fprintf(stderr, "%s: r=%d err=\"%s\", expected failure with \"%s\"\n", what, r, err,
			want);
		unit_failures++;
	} else if (getenv("TEST_BOOT_VERBOSE")) {
		fprintf(stderr, "  %-32s -> %s\n", what, err);
	}
	CHECK(e.rip == 0 && e.mode == 0);
}

static void expect_fail(const char *what, const void *img, size_t len, enum boot_format fmt,
			const char *want)
{
	expect_fail_mods(what, img, len, fmt, "console=ttyS0", NULL, 0, want);
}

static void check_gdt_and_e820_common(const struct boot_entry *e, bool long_mode)
{
	CHECK_EQ(e->gdt_base, BOOT_GDT_GPA);
	CHECK_EQ(e->gdt_limit, 0x2f);
	CHECK_EQ(e->code_sel, 0x10);
	CHECK_EQ(e->data_sel, 0x18);
	CHECK_EQ(e->tss_sel, 0x20);
	CHECK_EQ(e->rflags, 0x2);
	CHECK_EQ(g64(BOOT_GDT_GPA), 0);
	CHECK_EQ(g64(BOOT_GDT_GPA + 0x10), long_mode ? 0x00af9b000000ffffULL : 0x00cf9b000000ffffULL);
	CHECK_EQ(g64(BOOT_GDT_GPA + 0x18), 0x00cf93000000ffffULL);
	/* TSS: base 0, limit 0x67, present busy TSS */
	uint64_t tss = g64(BOOT_GDT_GPA + 0x20);
	CHECK_EQ(tss & 0xffff, 0x67);
	CHECK_EQ((tss >> 16) & 0xffffff, 0);
	CHECK_EQ(tss >> 56, 0);
	CHECK_EQ(e->rsp, BOOT_STACK_TOP);
	CHECK_EQ((tss >> 40) & 0xff, 0x8b);
	CHECK_EQ(g64(BOOT_GDT_GPA + 0x28), 0);
}

/* Compares a guest e820-style table with guest_mem_e820(). stride and
 * offsets of addr/size/type inside an entry. */
static void check_memmap(uint64_t gpa, unsigned count, unsigned stride, unsigned a, unsigned s,
			 unsigned t)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = guest_mem_e820(&gm, map);
	CHECK_EQ(count, n);
	for (int i = 0; i < n && (unsigned)i < count; i++) {
		uint64_t e = gpa + (uint64_t)i * stride;
		CHECK_EQ(g64(e + a), map[i].addr);
		CHECK_EQ(g64(e + s), map[i].size);
		CHECK_EQ(g32(e + t), map[i].type);
	}
}

/* ---- a synthetic bzImage ---- */

#define BZ_SETUP_SECTS 4
#define BZ_SETUP_SIZE ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PAYLOAD 8192
#define BZ_SIZE (BZ_SETUP_SIZE + BZ_PAYLOAD)

static void make_bz(uint8_t *img)
{
	memset(img, 0, BZ_SIZE);
	img[0x1f1] = BZ_SETUP_SECTS;
	p32(img + 0x1f4, BZ_PAYLOAD / 16);
	p16(img + 0x1fe, 0xAA55);
	img[0x200] = 0xeb;
	img[0x201] = 0x6a;
	memcpy(img + 0x202, "HdrS", 4);
	p16(img + 0x206, 0x020f);
	img[0x211] = 0x01;             /* LOADED_HIGH */
	p32(img + 0x214, 0x100000);    /* code32_start */
	p32(img + 0x22c, 0x7fffffff);  /* initrd_addr_max */
	p32(img + 0x230, 0x200000);    /* kernel_alignment */
	img[0x234] = 1;                /* relocatable */
	img[0x235] = 21;
	p16(img + 0x236, 0x3);         /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
	p32(img + 0x238, 2047);        /* cmdline_size */
	p64(img + 0x250, 0x12345678);  /* setup_data: must not reach the guest */
	p64(img + 0x258, 0x1000000);   /* pref_address */
	p32(img + 0x260, 0x800000);    /* init_size: 8 MiB */
	img[0x26c] = 0x5a;             /* past the header: not copied */
	for (unsigned i = 0; i < BZ_PAYLOAD; i++)
		img[BZ_SETUP_SIZE + i] = (uint8_t)(i * 7 + 3);
}

static void test_bzimage(void)
{
	static uint8_t img[BZ_SIZE];
	make_bz(img);
	const char *kpath = tmp_file(img, BZ_SIZE);
	uint8_t rd1[1001], rd2[3000];
	for (unsigned i = 0; i < sizeof(rd1); i++)
		rd1[i] = (uint8_t)(0x80 | i);
	for (unsigned i = 0; i < sizeof(rd2); i++)
		rd2[i] = (uint8_t)(i ^ 0x33);
	const char *r1 = tmp_file(rd1, sizeof(rd1)), *r2 = tmp_file(rd2, sizeof(rd2));
	struct boot_module mods[] = { { r1, NULL }, { r2, "ignored" } };

	/* garbage where the padding and boot_params go, to see them written */
	guest_mem_fill(&gm, BOOT_INFO_GPA, 0xee, BOOT_INFO_END - BOOT_INFO_GPA);

	struct boot_entry e;
	const char *cmdline = "console=ttyS0 root=/dev/vda rw";
	int r = load(kpath, BOOT_FORMAT_AUTO, cmdline, mods, 2, &e);
	CHECK_EQ(r, 0);
	if (r) {
		fprintf(stderr, "bzImage: %s\n", err);
		return;
	}
	CHECK(e.format_name && strcmp(e.format_name, "bzImage") == 0);
	CHECK_EQ(e.mode, BOOT_CPU_LONG64);
	CHECK_EQ(e.rip, 0x100200);
	CHECK_EQ(e.rsi, BOOT_INFO_GPA);
	CHECK_EQ(e.cr3, BOOT_PML4_GPA);
	CHECK_EQ(e.cr0 & 0x80000001ULL, 0x80000001ULL);
	CHECK_EQ(e.cr4 & 0x20, 0x20);
	CHECK_EQ(e.efer, 0x500);
	check_gdt_and_e820_common(&e, true);

	/* identity map of 4 GiB with 2 MiB pages */
	CHECK_EQ(g64(BOOT_PML4_GPA), 0x2003);
	CHECK_EQ(g64(BOOT_PML4_GPA + 8), 0);
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(g64(0x2000 + 8 * i), (0x3000 + 0x1000 * i) | 3);
	CHECK_EQ(g64(0x2000 + 8 * 4), 0);
	CHECK_EQ(g64(0x3000), 0x83);
	CHECK_EQ(g64(0x3008), 0x200083);
	CHECK_EQ(g64(0x4000), 0x40000083);
	CHECK_EQ(g64(0x6ff8), 0xffe00083ULL);

	/* the protected-mode kernel at 1 MiB */
	CHECK(gmem_is(0x100000, img + BZ_SETUP_SIZE, BZ_PAYLOAD));

	/* boot_params */
	const uint64_t bp = BOOT_INFO_GPA;
	CHECK_EQ(g8(bp + 0x1f1), BZ_SETUP_SECTS);
	CHECK_EQ(g32(bp + 0x202), 0x53726448);
	CHECK_EQ(g16(bp + 0x206), 0x020f);
	CHECK_EQ(g8(bp + 0x210), 0xff);
	CHECK_EQ(g8(bp + 0x211), 0x81);
	CHECK_EQ(g16(bp + 0x224), 0xfe00);
	CHECK_EQ(g32(bp + 0x228), BOOT_CMDLINE_GPA);
	CHECK_EQ(g64(bp + 0x250), 0);
	CHECK_EQ(g8(bp + 0x26c), 0);
	CHECK_EQ(g8(bp + 0x000), 0); /* zeroed, not left as garbage */
	CHECK_EQ(g8(bp + 0x1ef), 0); /* sentinel */
	CHECK_EQ(g64(bp + 0x070), 0xF0000);
	CHECK(gstr_is(BOOT_CMDLINE_GPA, cmdline));
	CHECK_EQ(g8(bp + 0x1e8), guest_mem_e820(&gm, (struct e820_entry[E820_MAX_ENTRIES]){ 0 }));
	check_memmap(bp + 0x2d0, g8(bp + 0x1e8), 20, 0, 8, 16);

	/* initrds: concatenated, 4-byte padded, as high as possible */
	uint64_t total = 1004 + 3000;
	uint64_t start = (GUEST_SIZE - total) & ~0xfffULL;
	CHECK_EQ(g32(bp + 0x218), start);
	CHECK_EQ(g32(bp + 0x21c), total);
	CHECK_EQ(g32(bp + 0x0c0), 0);
	CHECK_EQ(g32(bp + 0x0c4), 0);
	CHECK(gmem_is(start, rd1, sizeof(rd1)));
	CHECK(gmem_all(start + 1001, 0, 3));
	CHECK(gmem_is(start + 1004, rd2, sizeof(rd2)));

	/* no initrd, no command line */
	r = load(kpath, BOOT_FORMAT_LINUX, NULL, NULL, 0, &e);
	CHECK_EQ(r, 0);
	CHECK_EQ(g32(bp + 0x218), 0);
	CHECK_EQ(g32(bp + 0x21c), 0);
	CHECK(gstr_is(BOOT_CMDLINE_GPA, ""));

	/* initrd_addr_max honoured */
	static uint8_t v[BZ_SIZE];
	memcpy(v, img, BZ_SIZE);
	p32(v + 0x22c, 0x1ffffff);
	const char *vpath = tmp_file(v, BZ_SIZE);
	r = load(vpath, BOOT_FORMAT_AUTO, "x", mods, 1, &e);
	CHECK_EQ(r, 0);
	CHECK_EQ(g32(bp + 0x218), 0x2000000 - 0x1000);
	CHECK_EQ(g32(bp + 0x21c), 1004);

	/* a command line of exactly cmdline_size bytes is fine */
	char *longcmd = malloc(5000);
	memset(longcmd, 'a', 2047);
	longcmd[2047] = 0;
	CHECK_EQ(load(kpath, BOOT_FORMAT_AUTO, longcmd, NULL, 0, &e), 0);
	longcmd[2047] = 'b';
	longcmd[2048] = 0;
	expect_fail_mods("cmdline too long", img, BZ_SIZE, BOOT_FORMAT_AUTO, longcmd, NULL, 0,
			 "the command line is 2048 bytes but this kernel takes at most 2047 "
			 "(cmdline_size)");
	free(longcmd);

	/* ---- errors ---- */
#define VARIANT(what, stmt, want)                                    \
	do {                                                         \
		memcpy(v, img, BZ_SIZE);                             \
		stmt;                                                \
		expect_fail(what, v, BZ_SIZE, BOOT_FORMAT_AUTO, want); \
	} while (0)
	VARIANT("old protocol", p16(v + 0x206, 0x0205),
		"boot protocol 2.05 is too old (need 2.06 for the 64-bit entry)");
	VARIANT("no XLF_KERNEL_64", p16(v + 0x236, 0x2),
		"XLF_KERNEL_64 is not set in xloadflags");
	VARIANT("no LOADED_HIGH", v[0x211] = 0, "LOADED_HIGH is not set");
	VARIANT("no boot flag", p16(v + 0x1fe, 0), "boot flag 0xAA55");
	VARIANT("setup_sects too big", v[0x1f1] = 63,
		"setup_sects says 63 sectors but the file is only 10752 bytes");
	VARIANT("syssize too big", p32(v + 0x1f4, 0x100000), "syssize says the kernel is");
	VARIANT("init_size too big", p32(v + 0x260, 0x7000000),
		"the kernel needs RAM up to 0x8000000 (128 MiB; init_size 0x7000000 at 0x1000000) "
		"but the guest has only 64 MiB");
	VARIANT("kernel_alignment", p32(v + 0x230, 0x3000), "kernel_alignment 0x3000 is not a power of two");
	VARIANT("kernel_alignment 0", p32(v + 0x230, 0), "kernel_alignment 0x0 is not a power of two");
	VARIANT("pref_address low", p64(v + 0x258, 0x1000),
		"pref_address 0x1000 is not between 1 MiB and 4 GiB");
	VARIANT("pref_address huge", p64(v + 0x258, 0xffffffffffff0000ULL),
		"pref_address 0xffffffffffff0000 is not between 1 MiB and 4 GiB");
	VARIANT("relocatable: pref_address + init_size past RAM", p64(v + 0x258, 0x3a00000),
		"the kernel needs RAM up to 0x4200000 (66 MiB; init_size 0x800000 at 0x3a00000)");
	VARIANT("relocatable: alignment above pref_address",
		(p64(v + 0x258, 0x100000), p32(v + 0x230, 0x4000000)),
		"the kernel needs RAM up to 0x4800000 (72 MiB; init_size 0x800000 at 0x4000000)");
	VARIANT("pref_address + init_size past RAM", (v[0x234] = 0, p64(v + 0x258, 0x3c00000)),
		"the kernel needs RAM up to 0x4400000");
	VARIANT("no HdrS", v[0x202] = 'X', "not a bzImage, ELF/PVH or Multiboot image");
	{
		memcpy(v, img, BZ_SIZE);
		v[0x202] = 'X';
		expect_fail("explicit linux, no HdrS", v, BZ_SIZE, BOOT_FORMAT_LINUX,
			    "not a bzImage (no \"HdrS\" signature at 0x202)");
	}
	expect_fail("setup_sects 63 in 4096 bytes",
		    (memcpy(v, img, BZ_SIZE), v[0x1f1] = 63, v), 4096, BOOT_FORMAT_AUTO,
		    "setup_sects says 63 sectors but the file is only 4096 bytes");
	expect_fail("setup_sects 0 means 4", (memcpy(v, img, BZ_SIZE), v[0x1f1] = 0, v),
		    BZ_SETUP_SIZE, BOOT_FORMAT_AUTO,
		    "setup_sects says 0 sectors but the file is only 2560 bytes");
	/* initrd that cannot fit between the kernel's init_size and initrd_addr_max */
	memcpy(v, img, BZ_SIZE);
	p32(v + 0x22c, 0x1800000 + 0x7ff); /* the kernel needs up to 0x1800000 */
	expect_fail_mods("initrd does not fit", v, BZ_SIZE, BOOT_FORMAT_AUTO, "", mods, 2,
			 "the initrd (1 MiB) does not fit in guest RAM (64 MiB) between the kernel "
			 "(which needs up to 0x1800000) and 0x1800800");
	struct boot_module missing[] = { { r1, NULL }, { "/nonexistent/initrd.img", NULL } };
	expect_fail_mods("missing initrd", img, BZ_SIZE, BOOT_FORMAT_AUTO, "", missing, 2,
			 "/nonexistent/initrd.img: No such file or directory");
	struct boot_module dir[] = { { "/tmp", NULL } };
	expect_fail_mods("initrd is a directory", img, BZ_SIZE, BOOT_FORMAT_AUTO, "", dir, 1,
			 "/tmp: not a regular file");
	expect_fail("explicit PVH on a bzImage", img, BZ_SIZE, BOOT_FORMAT_PVH,
		    "not a PVH kernel: not an ELF file");
	expect_fail("explicit Multiboot on a bzImage", img, BZ_SIZE, BOOT_FORMAT_MULTIBOOT,
		    "not a Multiboot image: no Multiboot header in the first 8192 bytes");

	/* every truncation fails cleanly */
	static const size_t cuts[] = { 1, 3, 0x100, 0x1f2, 0x201, 0x205, 0x207, 0x237, 0x261,
				       0x400, BZ_SETUP_SIZE - 1, BZ_SETUP_SIZE };
	for (unsigned i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		char what[64];
		snprintf(what, sizeof(what), "bzImage cut at %zu", cuts[i]);
		expect_fail(what, img, cuts[i], BOOT_FORMAT_AUTO, "");
	}
#undef VARIANT
}

/* ---- ELF builders ---- */

struct seg {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
	uint32_t flags; /* p_flags; 0 means RWX (7) */
};

/* Writes an ELF header and program headers at 0 (phdrs right after the
 * ELF header). */
static void make_elf(uint8_t *img, int bits, uint16_t machine, uint64_t entry,
		     const struct seg *segs, unsigned n)
{
	memcpy(img, "\x7f" "ELF", 4);
	img[4] = bits == 32 ? 1 : 2;
	img[5] = 1;
	img[6] = 1;
	p16(img + 16, 2);
	p16(img + 18, machine);
	p32(img + 20, 1);
	if (bits == 32) {
		p32(img + 24, (uint32_t)entry);
		p32(img + 28, 52);
		p16(img + 40, 52);
		p16(img + 42, 32);
		p16(img + 44, (uint16_t)n);
		for (unsigned i = 0; i < n; i++) {
			uint8_t *p = img + 52 + 32 * i;
			p32(p, segs[i].type);
			p32(p + 4, (uint32_t)segs[i].offset);
			p32(p + 8, (uint32_t)segs[i].vaddr);
			p32(p + 12, (uint32_t)segs[i].paddr);
			p32(p + 16, (uint32_t)segs[i].filesz);
			p32(p + 20, (uint32_t)segs[i].memsz);
			p32(p + 24, segs[i].flags ? segs[i].flags : 7);
			p32(p + 28, (uint32_t)segs[i].align);
		}
	} else {
		p64(img + 24, entry);
		p64(img + 32, 64);
		p16(img + 52, 64);
		p16(img + 54, 56);
		p16(img + 56, (uint16_t)n);
		for (unsigned i = 0; i < n; i++) {
			uint8_t *p = img + 64 + 56 * i;
			p32(p, segs[i].type);
			p32(p + 4, segs[i].flags ? segs[i].flags : 7);
			p64(p + 8, segs[i].offset);
			p64(p + 16, segs[i].vaddr);
			p64(p + 24, segs[i].paddr);
			p64(p + 32, segs[i].filesz);
			p64(p + 40, segs[i].memsz);
			p64(p + 48, segs[i].align);
		}
	}
}

static size_t put_note(uint8_t *p, const char *name, uint32_t type, const void *desc,
		       uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;
	p32(p, namesz);
	p32(p + 4, descsz);
	p32(p + 8, type);
	memcpy(p + 12, name, namesz);
	size_t off = 12 + ((namesz + 3) & ~3u);
	memcpy(p + off, desc, descsz);
	return off + ((descsz + 3) & ~3u);
}

/* ELF64 (or 32) PVH image: a PT_LOAD of 0x1000 bytes at file 0x1000 loaded
 * at 0x200000 with 0x2000 bytes of bss, and a PT_NOTE at file 0x2000 with a
 * GNU note and the Xen PHYS32_ENTRY note (4 or 8 bytes). */
#define PVH_SIZE 0x2100
#define PVH_LOAD 0x200000
#define PVH_ENTRY 0x200010
#define PVH_NOTE_OFF 0x2000

static size_t make_pvh(uint8_t *img, int bits, unsigned desc_bytes)
{
	memset(img, 0, PVH_SIZE);
	uint8_t *n = img + PVH_NOTE_OFF;
	size_t nl = put_note(n, "GNU", 3, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	uint8_t d[8] = { 0 };
	p64(d, PVH_ENTRY);
	nl += put_note(n + nl, "Xen", 18, d, desc_bytes);
	struct seg segs[] = {
		{ 1, 0x1000, 0xffffffff80200000ULL, PVH_LOAD, 0x1000, 0x3000, 0x1000, 0 },
		{ 4, PVH_NOTE_OFF, 0, 0, nl, nl, 4, 0 },
	};
	if (bits == 32)
		segs[0].vaddr = 0xc0200000;
	make_elf(img, bits, bits == 32 ? 3 : 62, 0x1000000, segs, 2);
	for (unsigned i = 0; i < 0x1000; i++)
		img[0x1000 + i] = (uint8_t)(i * 13 + 1);
	return PVH_SIZE;
}

static void test_pvh(void)
{
	static uint8_t img[PVH_SIZE], v[PVH_SIZE];
	make_pvh(img, 64, 4);
	const char *kpath = tmp_file(img, PVH_SIZE);
	uint8_t m1[5000], m2[10];
	memset(m1, 0x11, sizeof(m1));
	memset(m2, 0x22, sizeof(m2));
	const char *mp1 = tmp_file(m1, sizeof(m1)), *mp2 = tmp_file(m2, sizeof(m2));
	struct boot_module mods[] = { { mp1, "first module args" }, { mp2, NULL } };

	guest_mem_fill(&gm, PVH_LOAD, 0xaa, 0x4000); /* bss must be zeroed */
	struct boot_entry e;
	int r = load(kpath, BOOT_FORMAT_AUTO, "console=hvc0", mods, 2, &e);
	CHECK_EQ(r, 0);
	if (r) {
		fprintf(stderr, "PVH: %s\n", err);
		return;
	}
	CHECK(e.format_name && strcmp(e.format_name, "PVH ELF") == 0);
	CHECK_EQ(e.mode, BOOT_CPU_PROT32);
	CHECK_EQ(e.rip, PVH_ENTRY);
	CHECK_EQ(e.rbx, BOOT_INFO_GPA);
	CHECK_EQ(e.cr0, 0x11);
	CHECK_EQ(e.cr4, 0);
	CHECK_EQ(e.efer, 0);
	check_gdt_and_e820_common(&e, false);
	CHECK(gmem_is(PVH_LOAD, img + 0x1000, 0x1000));
	CHECK(gmem_all(PVH_LOAD + 0x1000, 0, 0x2000));

	const uint64_t si = BOOT_INFO_GPA;
	CHECK_EQ(g32(si + 0), 0x336ec578);
	CHECK_EQ(g32(si + 4), 1);
	CHECK_EQ(g32(si + 8), 0);
	CHECK_EQ(g32(si + 12), 2);
	CHECK(gstr_is(g64(si + 24), "console=hvc0"));
	CHECK_EQ(g64(si + 32), 0xF0000);
	check_memmap(g64(si + 40), g32(si + 48), 24, 0, 8, 16);
	uint64_t ml = g64(si + 16);
	CHECK(ml >= BOOT_INFO_GPA && ml < BOOT_INFO_END);
	CHECK_EQ(g64(ml), PVH_LOAD + 0x3000); /* page-aligned right above the kernel */
	CHECK_EQ(g64(ml + 8), sizeof(m1));
	CHECK(gstr_is(g64(ml + 16), "first module args"));
	CHECK_EQ(g64(ml + 32), PVH_LOAD + 0x3000 + 0x2000);
	CHECK_EQ(g64(ml + 40), sizeof(m2));
	CHECK_EQ(g64(ml + 48), 0);
	CHECK(gmem_is(g64(ml), m1, sizeof(m1)));
	CHECK(gmem_is(g64(ml + 32), m2, sizeof(m2)));

	/* no command line: cmdline_paddr 0; no modules: modlist 0 */
	CHECK_EQ(load(kpath, BOOT_FORMAT_PVH, NULL, NULL, 0, &e), 0);
	CHECK_EQ(g64(si + 24), 0);
	CHECK_EQ(g32(si + 12), 0);
	CHECK_EQ(g64(si + 16), 0);

	/* 8-byte descriptor; ELF32 with only a PVH note */
	make_pvh(v, 64, 8);
	const char *p8 = tmp_file(v, PVH_SIZE);
	CHECK_EQ(load(p8, BOOT_FORMAT_AUTO, "", NULL, 0, &e), 0);
	CHECK_EQ(e.rip, PVH_ENTRY);
	make_pvh(v, 32, 4);
	const char *p32_ = tmp_file(v, PVH_SIZE);
	CHECK_EQ(load(p32_, BOOT_FORMAT_AUTO, "", NULL, 0, &e), 0);
	CHECK(e.format_name && strcmp(e.format_name, "PVH ELF") == 0);
	CHECK_EQ(e.rip, PVH_ENTRY);

	/* note only in a section (no PT_NOTE): section header table at 0x2080 */
	{
		make_pvh(v, 64, 4);
		uint8_t *ph1 = v + 64 + 56;
		p32(ph1, 6); /* PT_PHDR: ignored */
		uint8_t *sh = v + 0x2080 - 0x40;
		memset(sh, 0, 0x80);
		uint8_t *s1 = sh + 64;
		p32(s1 + 4, 7);              /* SHT_NOTE */
		p64(s1 + 24, PVH_NOTE_OFF);  /* sh_offset */
		p64(s1 + 32, 0x2c);          /* sh_size: the GNU note (0x18) + Xen note (0x14) */
		p64(s1 + 48, 4);
		p64(v + 40, 0x2080 - 0x40);  /* e_shoff */
		p16(v + 58, 64);
		p16(v + 60, 2);
		const char *ps = tmp_file(v, PVH_SIZE);
		r = load(ps, BOOT_FORMAT_AUTO, "", NULL, 0, &e);
		CHECK_EQ(r, 0);
		if (r)
			fprintf(stderr, "PVH note in a section: %s\n", err);
		CHECK_EQ(e.rip, PVH_ENTRY);
		p16(v + 60, 200); /* section table past EOF */
		expect_fail("section table past EOF", v, PVH_SIZE, BOOT_FORMAT_AUTO,
			    "the ELF section header table (200 entries at 0x2040) extends past the "
			    "end of the file");
	}

	/* ---- errors ---- */
	uint8_t *ph0 = v + 64, *ph1 = v + 64 + 56;
#define VARIANT(what, stmt, want)                                      \
	do {                                                           \
		make_pvh(v, 64, 4);                                    \
		stmt;                                                  \
		expect_fail(what, v, PVH_SIZE, BOOT_FORMAT_AUTO, want); \
	} while (0)
	VARIANT("phdr past EOF", p64(ph1 + 8, 0x20f0),
		"ELF program header 1 extends past the end of the file");
	VARIANT("huge p_filesz", p64(ph0 + 32, 0xffffffffffffff00ULL),
		"ELF program header 0 extends past the end of the file");
	VARIANT("huge p_offset", p64(ph0 + 8, 0xfffffffffffff000ULL),
		"ELF program header 0 extends past the end of the file");
	VARIANT("filesz > memsz", p64(ph0 + 40, 0x800),
		"ELF program header 0 has p_filesz 0x1000 larger than p_memsz 0x800");
	VARIANT("segment wraps", (p64(ph0 + 24, 0xfffffffffffff000ULL), p64(ph0 + 40, 0x2000)),
		"ELF program header 0 wraps around the address space");
	VARIANT("segment outside RAM", p64(ph0 + 24, 0x10000000),
		"ELF segment 0 at 0x10000000-0x10002fff does not fit in guest RAM (64 MiB)");
	VARIANT("segment above 4G", p64(ph0 + 24, 0x100000000ULL),
		"ELF segment 0 at 0x100000000 (12288 bytes) does not fit below 4 GiB");
	VARIANT("segment in BIOS area", p64(ph0 + 24, 0x9f000),
		"ELF segment 0 at 0x9f000-0xa1fff overlaps the EBDA/BIOS area 0x9fc00-0xfffff, "
		"which is not RAM");
	uint8_t *ph2 = v + 64 + 2 * 56;
	VARIANT("overlapping segments",
		(p16(v + 56, 3), p32(ph2, 1), p64(ph2 + 8, 0x1000), p64(ph2 + 24, PVH_LOAD + 0x2000),
		 p64(ph2 + 32, 0x100), p64(ph2 + 40, 0x100)),
		"ELF segment 2 at 0x202000-0x2020ff overlaps ELF segment 0 at 0x200000-0x202fff");
	VARIANT("entry outside", (p64(ph0 + 24, 0x400000)),
		"the PVH entry 0x200010 is not inside any loaded segment");
	VARIANT("phentsize", p16(v + 54, 55), "ELF e_phentsize is 55, expected 56");
	VARIANT("phnum 0", p16(v + 56, 0), "the ELF file has no program headers");
	VARIANT("phnum huge", p16(v + 56, 0xffff), "too many ELF program headers (65535; at most 1024)");
	VARIANT("phnum past EOF", p16(v + 56, 200),
		"the ELF program header table (200 entries at 0x40) extends past the end of the file");
	VARIANT("phoff overflow", p64(v + 32, 0xffffffffffffffc0ULL),
		"the ELF program header table (2 entries at 0xffffffffffffffc0) extends past");
	VARIANT("big endian", v[5] = 2, "not a little-endian ELF file");
	VARIANT("bad class", v[4] = 3, "unknown ELF class 3");
	VARIANT("machine", p16(v + 18, 183), "ELF machine 183 is not x86");
	VARIANT("type", p16(v + 16, 1), "ELF type 1 is not an executable");
	VARIANT("no PT_LOAD", p32(ph0, 6), "the ELF file has no loadable segments");
	VARIANT("bad note namesz", p32(v + PVH_NOTE_OFF, 0x7fffffff),
		"malformed note in ELF program header 1");
	VARIANT("bad note descsz", p32(v + PVH_NOTE_OFF + 4, 0xfffffff0),
		"malformed note in ELF program header 1");
	VARIANT("PVH desc size", p32(v + PVH_NOTE_OFF + 0x18 + 4, 2),
		"the PVH entry note has a 2-byte value (expected 4 or 8)");
	VARIANT("no PVH note", p32(v + PVH_NOTE_OFF + 0x18 + 8, 17),
		"not a bzImage, ELF/PVH or Multiboot image (an ELF64 file with neither a PVH "
		"entry note nor a Multiboot header)");
	{
		make_pvh(v, 64, 4);
		p32(v + PVH_NOTE_OFF + 0x18 + 8, 17);
		expect_fail("explicit PVH, no note", v, PVH_SIZE, BOOT_FORMAT_PVH,
			    "not a PVH kernel: no XEN_ELFNOTE_PHYS32_ENTRY note");
		make_pvh(v, 64, 8);
		p32(v + PVH_NOTE_OFF + 0x18 + 16, 0x10000000);
		p32(v + PVH_NOTE_OFF + 0x18 + 20, 1);
		expect_fail("PVH entry above 4G", v, PVH_SIZE, BOOT_FORMAT_AUTO,
			    "the PVH entry 0x110000000 is above 4 GiB");
		make_pvh(v, 64, 4);
		expect_fail("explicit Linux on an ELF", v, PVH_SIZE, BOOT_FORMAT_LINUX,
			    "not a bzImage (no \"HdrS\" signature at 0x202; it is an ELF file)");
	}
	{
		struct boot_module many[BOOT_MAX_MODULES_TEST];
		for (unsigned i = 0; i < BOOT_MAX_MODULES_TEST; i++)
			many[i] = (struct boot_module){ mp2, NULL };
		expect_fail_mods("too many modules", img, PVH_SIZE, BOOT_FORMAT_AUTO, "", many,
				 BOOT_MAX_MODULES_TEST, "too many modules (65; at most 64)");
		/* 64 modules are fine */
		CHECK_EQ(load(kpath, BOOT_FORMAT_AUTO, "", many, 64, &e), 0);
		CHECK_EQ(g32(si + 12), 64);
	}
	{
		/* a module too large for the guest: a sparse 80 MiB file */
		const char *big = tmp_file(NULL, 0);
		CHECK_EQ(truncate(big, 80 << 20), 0);
		struct boot_module bm[] = { { big, NULL } };
		expect_fail_mods("module too large", img, PVH_SIZE, BOOT_FORMAT_AUTO, "", bm, 1,
				 ": module of 81920 KiB does not fit in guest RAM (64 MiB) above the "
				 "kernel and the modules before it (0x203000)");
		/* too many module strings */
		static char args[40000];
		memset(args, 'x', sizeof(args) - 1);
		struct boot_module sm[] = { { mp2, args }, { mp2, args } };
		expect_fail_mods("module strings too long", img, PVH_SIZE, BOOT_FORMAT_AUTO, "", sm, 2,
				 "the command line and module strings are longer than the 64 KiB");
	}
	static const size_t cuts[] = { 1, 4, 5, 16, 40, 63, 64, 100, 176, 0x1000, 0x1fff, 0x2010 };
	for (unsigned i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		char what[64];
		snprintf(what, sizeof(what), "PVH cut at %zu", cuts[i]);
		expect_fail(what, img, cuts[i], BOOT_FORMAT_AUTO, "");
	}
#undef VARIANT
}

/* ---- Multiboot ---- */

static void put_mb_header(uint8_t *p, uint32_t flags)
{
	p32(p, 0x1BADB002);
	p32(p + 4, flags);
	p32(p + 8, (uint32_t)-(0x1BADB002u + flags));
}

/* ELF32 with a Multiboot header at file 0x1000 (inside the PT_LOAD), code
 * linked at 0xc0100000 and loaded at 0x100000, e_entry virtual. */
#define MBE_SIZE 0x1800
static void make_mb_elf(uint8_t *img, int bits, uint32_t flags)
{
	memset(img, 0, MBE_SIZE);
	struct seg segs[] = { { 1, 0x1000, 0xc0100000, 0x100000, 0x800, 0x1000, 0x1000, 0 } };
	make_elf(img, bits, 3, 0xc0100020, segs, 1);
	for (unsigned i = 0; i < 0x800; i++)
		img[0x1000 + i] = (uint8_t)(i * 5);
	put_mb_header(img + 0x1000, flags);
}

/* A raw image with an a.out-kludge header at 0x40, to be loaded at
 * 0x300000 (file offset 0 -> 0x300000), 0x1000 bytes + bss to 0x304000. */
#define AOUT_SIZE 0x1000
static void make_aout(uint8_t *img)
{
	for (unsigned i = 0; i < AOUT_SIZE; i++)
		img[i] = (uint8_t)(i * 3 + 1);
	uint8_t *h = img + 0x40;
	put_mb_header(h, 0x00010003);
	p32(h + 12, 0x300040);          /* header_addr */
	p32(h + 16, 0x300000);          /* load_addr */
	p32(h + 20, 0x300000 + AOUT_SIZE); /* load_end_addr */
	p32(h + 24, 0x304000);          /* bss_end_addr */
	p32(h + 28, 0x300080);          /* entry_addr */
}

static void check_mb_info(uint64_t mi, const char *kpath, const char *cmdline,
			  uint64_t mods_floor, const struct boot_module *mods, unsigned nmods,
			  const size_t *sizes)
{
	uint32_t flags = g32(mi);
	CHECK_EQ(flags & 0x24d, 0x24d); /* MEM, CMDLINE, MODS, MMAP, LOADER_NAME */
	CHECK_EQ(g32(mi + 4), 639);
	CHECK_EQ(g32(mi + 8), (GUEST_SIZE - 0x100000) >> 10);
	char want[512];
	if (cmdline && *cmdline)
		snprintf(want, sizeof(want), "%s %s", kpath, cmdline);
	else
		snprintf(want, sizeof(want), "%s", kpath);
	CHECK(gstr_is(g32(mi + 16), want));
	CHECK_EQ(g32(mi + 20), nmods);
	uint64_t ma = g32(mi + 24);
	uint64_t prev_end = mods_floor;
	for (unsigned i = 0; i < nmods; i++) {
		uint64_t m = ma + 16 * i;
		uint32_t start = g32(m), end = g32(m + 4);
		CHECK_EQ(start & 0xfff, 0);
		CHECK(start >= prev_end);
		CHECK_EQ(end - start, sizes[i]);
		prev_end = end;
		if (mods[i].args)
			snprintf(want, sizeof(want), "%s %s", mods[i].path, mods[i].args);
		else
			snprintf(want, sizeof(want), "%s", mods[i].path);
		CHECK(gstr_is(g32(m + 8), want));
	}
	if (nmods)
		CHECK_EQ(g32(ma), (mods_floor + 0xfff) & ~0xfffULL);
	uint32_t mlen = g32(mi + 44), maddr = g32(mi + 48);
	CHECK_EQ(mlen % 24, 0);
	for (uint32_t off = 0; off < mlen; off += 24)
		CHECK_EQ(g32(maddr + off), 20);
	check_memmap(maddr + 4, mlen / 24, 24, 0, 8, 16);
	CHECK(gstr_is(g32(mi + 64), "khyve"));
}

static void test_multiboot(void)
{
	static uint8_t img[MBE_SIZE], v[MBE_SIZE];
	make_mb_elf(img, 32, 0x3);
	const char *kpath = tmp_file(img, MBE_SIZE);
	uint8_t m1[100], m2[9000];
	memset(m1, 0x41, sizeof(m1));
	memset(m2, 0x42, sizeof(m2));
	const char *mp1 = tmp_file(m1, sizeof(m1)), *mp2 = tmp_file(m2, sizeof(m2));
	struct boot_module mods[] = { { mp1, "arg1 arg2" }, { mp2, NULL } };
	const size_t sizes[] = { sizeof(m1), sizeof(m2) };

	struct boot_entry e;
	int r = load(kpath, BOOT_FORMAT_AUTO, "quiet debug", mods, 2, &e);
	CHECK_EQ(r, 0);
	if (r) {
		fprintf(stderr, "Multiboot ELF: %s\n", err);
		return;
	}
	CHECK(e.format_name && strcmp(e.format_name, "Multiboot") == 0);
	CHECK_EQ(e.mode, BOOT_CPU_PROT32);
	CHECK_EQ(e.rip, 0x100020);
	CHECK_EQ(e.rax, 0x2BADB002);
	CHECK_EQ(e.rbx, BOOT_INFO_GPA);
	CHECK_EQ(e.cr0, 0x11);
	check_gdt_and_e820_common(&e, false);
	CHECK(gmem_is(0x100000, img + 0x1000, 0x800));
	CHECK(gmem_all(0x100800, 0, 0x800));
	CHECK_EQ(e.rbx, BOOT_INFO_GPA);
	check_mb_info(e.rbx, kpath, "quiet debug", 0x101000, mods, 2, sizes);
	CHECK(gmem_is(g32(g32(BOOT_INFO_GPA + 24)), m1, sizeof(m1)));
	CHECK(gmem_is(g32(g32(BOOT_INFO_GPA + 24) + 16), m2, sizeof(m2)));

	/* no command line: just the path */
	CHECK_EQ(load(kpath, BOOT_FORMAT_MULTIBOOT, NULL, NULL, 0, &e), 0);
	check_mb_info(e.rbx, kpath, NULL, 0, NULL, 0, NULL);

	/* ELF64 container with a Multiboot header; entry below 4 GiB */
	make_mb_elf(v, 64, 0x2);
	const char *p64_ = tmp_file(v, MBE_SIZE);
	CHECK_EQ(load(p64_, BOOT_FORMAT_AUTO, "x", NULL, 0, &e), 0);
	CHECK_EQ(e.rip, 0x100020);
	CHECK(e.format_name && strcmp(e.format_name, "Multiboot") == 0);

	/* ELF32 with both a Multiboot header and a PVH note: Multiboot;
	 * the same as ELF64: PVH */
	{
		static uint8_t b[PVH_SIZE];
		make_pvh(b, 32, 4);
		put_mb_header(b + 0x1000, 0);
		p32(b + 24, 0xc0200000); /* e_entry: virtual, in the PT_LOAD */
		const char *pb = tmp_file(b, PVH_SIZE);
		CHECK_EQ(load(pb, BOOT_FORMAT_AUTO, "", NULL, 0, &e), 0);
		CHECK(e.format_name && strcmp(e.format_name, "Multiboot") == 0);
		CHECK_EQ(e.rip, 0x200000);
	}

	/* a.out kludge */
	static uint8_t a[AOUT_SIZE], av[AOUT_SIZE];
	make_aout(a);
	const char *apath = tmp_file(a, AOUT_SIZE);
	guest_mem_fill(&gm, 0x300000, 0xcc, 0x5000);
	r = load(apath, BOOT_FORMAT_AUTO, "aout", mods, 2, &e);
	CHECK_EQ(r, 0);
	if (r)
		fprintf(stderr, "a.out kludge: %s\n", err);
	CHECK_EQ(e.rip, 0x300080);
	CHECK_EQ(e.rax, 0x2BADB002);
	CHECK(gmem_is(0x300000, a, AOUT_SIZE));
	CHECK(gmem_all(0x300000 + AOUT_SIZE, 0, 0x3000));
	check_mb_info(e.rbx, apath, "aout", 0x304000, mods, 2, sizes);
	/* load_end_addr 0: the rest of the file; bss_end 0: none */
	memcpy(av, a, AOUT_SIZE);
	p32(av + 0x40 + 20, 0);
	p32(av + 0x40 + 24, 0);
	const char *ap2 = tmp_file(av, AOUT_SIZE);
	CHECK_EQ(load(ap2, BOOT_FORMAT_MULTIBOOT, NULL, mods, 1, &e), 0);
	CHECK_EQ(g32(g32(BOOT_INFO_GPA + 24)), 0x301000);

	/* ---- errors ---- */
#define VARIANT(what, stmt, want)                                       \
	do {                                                            \
		make_mb_elf(v, 32, 0x3);                                \
		stmt;                                                   \
		expect_fail(what, v, MBE_SIZE, BOOT_FORMAT_AUTO, want);  \
	} while (0)
	VARIANT("required flag", put_mb_header(v + 0x1000, 0x0b),
		"the Multiboot header requires features khyve does not support (flags 0x8)");
	VARIANT("bad checksum", p32(v + 0x1008, 0),
		"not a bzImage, ELF/PVH or Multiboot image (an ELF32 file with neither");
	VARIANT("entry not loaded", p32(v + 24, 0x500000),
		"the ELF entry point 0x500000 is not inside any loaded segment");
	{
		make_mb_elf(v, 32, 0x3);
		p32(v + 0x1008, 0);
		expect_fail("explicit Multiboot, bad checksum", v, MBE_SIZE, BOOT_FORMAT_MULTIBOOT,
			    "not a Multiboot image: the header at 0x1000 has a bad checksum");
		make_mb_elf(v, 64, 0x3);
		p64(v + 24, 0x100000020ULL);
		expect_fail("ELF64 entry above 4G", v, MBE_SIZE, BOOT_FORMAT_AUTO,
			    "the ELF entry point 0x100000020 is above 4 GiB");
	}
#undef VARIANT
#define VARIANT(what, stmt, want)                                        \
	do {                                                             \
		make_aout(av);                                           \
		stmt;                                                    \
		expect_fail(what, av, AOUT_SIZE, BOOT_FORMAT_AUTO, want); \
	} while (0)
	uint8_t *h = av + 0x40;
	VARIANT("load_addr > header_addr", p32(h + 16, 0x300100),
		"Multiboot load_addr 0x300100 is above header_addr 0x300040");
	VARIANT("header_addr too far", p32(h + 12, 0x300100),
		"Multiboot header_addr 0x300100 and load_addr 0x300000 put the image start 0x100 "
		"bytes before the header, but the header is at file offset 0x40");
	VARIANT("load_end < load", p32(h + 20, 0x2fffff),
		"Multiboot load_end_addr 0x2fffff is below load_addr 0x300000");
	VARIANT("load_end past EOF", p32(h + 20, 0x302000),
		"Multiboot load_end_addr 0x302000 asks for 8192 bytes but the file has only 4096 "
		"from offset 0x0");
	VARIANT("bss_end < load_end", p32(h + 24, 0x300800),
		"Multiboot bss_end_addr 0x300800 is below the end of the loaded image 0x301000");
	VARIANT("entry outside", p32(h + 28, 0x304000),
		"Multiboot entry_addr 0x304000 is outside the loaded image 0x300000-0x303fff");
	VARIANT("load outside RAM",
		(p32(h + 12, 0xf0000040), p32(h + 16, 0xf0000000), p32(h + 20, 0xf0001000),
		 p32(h + 24, 0), p32(h + 28, 0xf0000080)),
		"Multiboot image at 0xf0000000-0xf0000fff does not fit in guest RAM (64 MiB)");
	VARIANT("bss to 4G",
		(p32(h + 12, 0xfffff840), p32(h + 16, 0xfffff800), p32(h + 20, 0),
		 p32(h + 24, 0), p32(h + 28, 0xfffff880)),
		"does not fit below 4 GiB");
	VARIANT("no address fields", put_mb_header(h, 0x3),
		"the Multiboot header at 0x40 has no address fields (flag 16) and the file is not ELF");
	VARIANT("garbage", memset(av, 0x90, AOUT_SIZE),
		"not a bzImage, ELF/PVH or Multiboot image");
	{
		/* header with address fields cut off by the end of the file */
		uint8_t t[20];
		memset(t, 0, sizeof(t));
		put_mb_header(t + 4, 0x10000);
		expect_fail("truncated kludge header", t, sizeof(t), BOOT_FORMAT_AUTO,
			    "the Multiboot header at 0x4 is cut off by the end of the file");
		/* header past the first 8192 bytes is not looked at */
		static uint8_t big[9000];
		memset(big, 0, sizeof(big));
		put_mb_header(big + 8192, 0x10000);
		expect_fail("header past 8 KiB", big, sizeof(big), BOOT_FORMAT_MULTIBOOT,
			    "no Multiboot header in the first 8192 bytes");
		put_mb_header(big + 8176, 0x10000);
		expect_fail("header straddles 8 KiB", big, sizeof(big), BOOT_FORMAT_MULTIBOOT,
			    "the Multiboot header at 0x1ff0 extends past the first 8192 bytes");
	}
	for (size_t cut = 1; cut < AOUT_SIZE; cut = cut * 2 + 1) {
		char what[64];
		snprintf(what, sizeof(what), "a.out cut at %zu", cut);
		make_aout(av);
		expect_fail(what, av, cut, BOOT_FORMAT_AUTO, "");
	}
#undef VARIANT
}

/* ---- placement: images where the boot data usually goes, segments that
 * hold only headers or notes, and real collisions ---- */

/* Neither range overlaps the other. */
static bool apart(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a + alen <= b || b + blen <= a;
}

/* What `ld -m elf_i386 -Ttext=0x100000` makes of a Multiboot kernel with
 * one allocated note section, without a linker script: a read-only
 * PT_LOAD for the ELF and program headers at 0xff000 (in the BIOS area),
 * the text at 1 MiB (Multiboot header first), data with bss, and the note
 * in a PT_LOAD of its own far above (0x8049010: outside a 64 MiB guest),
 * which a PT_NOTE covers too. */
#define LD32_SIZE 0x2100
#define LD32_PHNUM 5
#define LD32_HDRS (52 + 32 * LD32_PHNUM) /* 0xd4 */
#define LD32_NOTE_PADDR 0x8049010
static void make_ld32(uint8_t *img)
{
	memset(img, 0, LD32_SIZE);
	struct seg segs[LD32_PHNUM] = {
		{ 1, 0, 0xff000, 0xff000, LD32_HDRS, LD32_HDRS, 0x1000, 4 },
		{ 1, 0x1000, 0x100000, 0x100000, 0x40, 0x40, 0x1000, 5 },
		{ 1, 0x2000, 0x101000, 0x101000, 0x10, 0x20, 0x1000, 6 },
		{ 1, 0x2010, LD32_NOTE_PADDR, LD32_NOTE_PADDR, 0x14, 0x14, 0x1000, 4 },
		{ 4, 0x2010, LD32_NOTE_PADDR, LD32_NOTE_PADDR, 0x14, 0x14, 4, 4 },
	};
	make_elf(img, 32, 3, 0x100010, segs, LD32_PHNUM);
	put_mb_header(img + 0x1000, 0x3);
	for (unsigned i = 0x10; i < 0x40; i++)
		img[0x1000 + i] = (uint8_t)(0x90 + i);
	memset(img + 0x2000, 0xda, 0x10);
	put_note(img + 0x2010, "GNU", 3, "\x11\x22\x33\x44", 4);
}

/* The same for `ld -Ttext=0x100000` and an ELF64 PVH kernel: the headers
 * at 0xff000, the Xen PHYS32_ENTRY note in a PT_LOAD at note_paddr. */
#define LD64_SIZE 0x2200
#define LD64_HDRS (64 + 56 * LD32_PHNUM) /* 0x158 */
static void make_ld64(uint8_t *img, uint64_t note_paddr)
{
	memset(img, 0, LD64_SIZE);
	uint8_t d[4];
	p32(d, 0x100000);
	struct seg segs[LD32_PHNUM] = {
		{ 1, 0, 0xff000, 0xff000, LD64_HDRS, LD64_HDRS, 0x1000, 4 },
		{ 1, 0x1000, 0x100000, 0x100000, 0x40, 0x40, 0x1000, 5 },
		{ 1, 0x2000, 0x101000, 0x101000, 0x10, 0x10, 0x1000, 6 },
		{ 1, 0x2158, note_paddr, note_paddr, 0x14, 0x14, 0x1000, 4 },
		{ 4, 0x2158, note_paddr, note_paddr, 0x14, 0x14, 4, 4 },
	};
	make_elf(img, 64, 62, 0x100000, segs, LD32_PHNUM);
	for (unsigned i = 0; i < 0x40; i++)
		img[0x1000 + i] = (uint8_t)(0x40 + i);
	memset(img + 0x2000, 0xdb, 0x10);
	put_note(img + 0x2158, "Xen", 18, d, 4);
}

static void test_skip_headers_and_notes(void)
{
	static uint8_t img[LD32_SIZE], v[LD32_SIZE];
	make_ld32(img);
	const char *kpath = tmp_file(img, LD32_SIZE);
	uint8_t m1[300];
	memset(m1, 0x6d, sizeof(m1));
	struct boot_module mods[] = { { tmp_file(m1, sizeof(m1)), NULL } };

	/* the BIOS area keeps what is there (here: a pattern) */
	guest_mem_fill(&gm, 0xff000, 0x77, 0x1000);
	guest_mem_fill(&gm, 0x101000, 0xcc, 0x1000);
	struct boot_entry e;
	int r = load(kpath, BOOT_FORMAT_AUTO, "x", mods, 1, &e);
	CHECK_EQ(r, 0);
	if (r) {
		fprintf(stderr, "ld-style ELF32: %s\n", err);
		return;
	}
	CHECK(e.format_name && strcmp(e.format_name, "Multiboot") == 0);
	CHECK_EQ(e.rip, 0x100010);
	CHECK_EQ(e.rbx, BOOT_INFO_GPA);
	CHECK(gmem_all(0xff000, 0x77, 0x1000));
	CHECK(gmem_is(0x100000, img + 0x1000, 0x40));
	CHECK(gmem_is(0x101000, img + 0x2000, 0x10));
	CHECK(gmem_all(0x101010, 0, 0x10));
	CHECK(strstr(said, "ELF segment 0 at 0xff000-0xff0d3 skipped: it holds only the ELF and "
			   "program headers and lies in the EBDA/BIOS area 0x9fc00-0xfffff, which "
			   "is not RAM\n"));
	CHECK(strstr(said, "ELF segment 3 at 0x8049010-0x8049023 skipped: it holds only notes and "
			   "lies outside guest RAM (64 MiB)\n"));
	CHECK(strstr(said, "ELF segment 1 at 0x100000-0x10003f (64 bytes from file offset 0x1000)\n"));
	CHECK(strstr(said, "Multiboot entry at 0x100010 in 32-bit protected mode\n"));
	/* modules follow the loaded segments, not the skipped note */
	CHECK_EQ(g32(g32(e.rbx + 24)), 0x102000);
	if (!strstr(said, "skipped"))
		fprintf(stderr, "said:\n%s", said);

	/* the headers PT_LOAD in RAM (linked at 0x10000 instead): loaded, as
	 * QEMU does */
	make_ld32(v);
	p32(v + 52 + 8, 0xf000);
	p32(v + 52 + 12, 0xf000);
	const char *lowp = tmp_file(v, LD32_SIZE);
	CHECK_EQ(load(lowp, BOOT_FORMAT_AUTO, "", NULL, 0, &e), 0);
	CHECK(gmem_is(0xf000, v, LD32_HDRS));
	CHECK(strstr(said, "ELF segment 0 at 0xf000-0xf0d3 (212 bytes from file offset 0x0)\n"));

	/* anything more than headers or notes out there is refused */
	uint8_t *ph0 = v + 52, *ph3 = v + 52 + 3 * 32, *ph4 = v + 52 + 4 * 32;
#define VARIANT(what, stmt, want)                                         \
	do {                                                              \
		make_ld32(v);                                             \
		stmt;                                                     \
		expect_fail(what, v, LD32_SIZE, BOOT_FORMAT_AUTO, want);   \
	} while (0)
	VARIANT("executable headers segment", p32(ph0 + 24, 5),
		"ELF segment 0 at 0xff000-0xff0d3 overlaps the EBDA/BIOS area 0x9fc00-0xfffff");
	VARIANT("headers segment with bss", p32(ph0 + 20, 0x200),
		"ELF segment 0 at 0xff000-0xff1ff overlaps the EBDA/BIOS area");
	VARIANT("headers segment with code after the headers", (p32(ph0 + 16, 0x100),
		p32(ph0 + 20, 0x100), v[0xf0] = 0xc3),
		"ELF segment 0 at 0xff000-0xff0ff overlaps the EBDA/BIOS area");
	VARIANT("headers segment with more than padding", (p32(ph0 + 16, 0x200),
		p32(ph0 + 20, 0x200)), "ELF segment 0 at 0xff000-0xff1ff overlaps the EBDA/BIOS area");
	VARIANT("writable note segment", p32(ph3 + 24, 6),
		"ELF segment 3 at 0x8049010-0x8049023 does not fit in guest RAM (64 MiB)");
	VARIANT("note segment without a PT_NOTE", p32(ph4, 6),
		"ELF segment 3 at 0x8049010-0x8049023 does not fit in guest RAM (64 MiB)");
	VARIANT("note segment with data after the note", (p32(ph3 + 16, 0x30), p32(ph3 + 20, 0x30),
		v[0x2038] = 1), "ELF segment 3 at 0x8049010-0x804903f does not fit in guest RAM");
#undef VARIANT
	/* zero padding after the note is fine */
	make_ld32(v);
	p32(ph3 + 16, 0x20);
	p32(ph3 + 20, 0x20);
	const char *padp = tmp_file(v, LD32_SIZE);
	CHECK_EQ(load(padp, BOOT_FORMAT_AUTO, "", NULL, 0, &e), 0);
	CHECK(strstr(said, "ELF segment 3 at 0x8049010-0x804902f skipped"));
	/* the entry inside a skipped segment is not inside a loaded one */
	make_ld32(v);
	p32(v + 24, 0xff010);
	expect_fail("entry in the headers segment", v, LD32_SIZE, BOOT_FORMAT_AUTO,
		    "the ELF entry point 0xff010 is not inside any loaded segment");

	/* ELF64 PVH: the note PT_LOAD in RAM is loaded; outside RAM, skipped */
	static uint8_t p[LD64_SIZE];
	make_ld64(p, 0x400158);
	const char *pp = tmp_file(p, LD64_SIZE);
	guest_mem_fill(&gm, 0xff000, 0x77, 0x1000);
	r = load(pp, BOOT_FORMAT_AUTO, "console=ttyS0", mods, 1, &e);
	CHECK_EQ(r, 0);
	if (r)
		fprintf(stderr, "ld-style ELF64 PVH: %s\n", err);
	CHECK(e.format_name && strcmp(e.format_name, "PVH ELF") == 0);
	CHECK_EQ(e.rip, 0x100000);
	CHECK(gmem_all(0xff000, 0x77, 0x1000));
	CHECK(gmem_is(0x400158, p + 0x2158, 0x14));
	CHECK(strstr(said, "ELF segment 0 at 0xff000-0xff157 skipped: it holds only the ELF and "
			   "program headers"));
	CHECK_EQ(g64(g64(e.rbx + 16)), 0x401000); /* the module above the note */
	make_ld64(p, 0x10000000);
	rewrite(pp, p, LD64_SIZE);
	r = load(pp, BOOT_FORMAT_AUTO, "console=ttyS0", mods, 1, &e);
	CHECK_EQ(r, 0);
	CHECK(strstr(said, "ELF segment 3 at 0x10000000-0x10000013 skipped: it holds only notes "
			   "and lies outside guest RAM (64 MiB)"));
	CHECK_EQ(g64(g64(e.rbx + 16)), 0x102000);
	/* above 4 GiB too */
	make_ld64(p, 0x100000000ULL);
	rewrite(pp, p, LD64_SIZE);
	CHECK_EQ(load(pp, BOOT_FORMAT_AUTO, "", NULL, 0, &e), 0);
	CHECK(strstr(said, "ELF segment 3 at 0x100000000-0x100000013 skipped: it holds only notes "
			   "and lies above 4 GiB"));
}

/* Every piece of boot data the entry state and the Multiboot information
 * point at lies in RAM, apart from [img, img+len) and from each module. */
static void check_mb_data_apart(const struct boot_entry *e, uint64_t img, uint64_t len)
{
	uint64_t mi = e->rbx;
	uint32_t cmd = g32(mi + 16), nmods = g32(mi + 20), mods = g32(mi + 24);
	uint64_t cmdlen = 0;
	while (cmdlen < 0x10000 && g8(cmd + cmdlen))
		cmdlen++;
	const uint64_t data[][2] = {
		{ mi, 0x1000 }, { e->gdt_base, e->gdt_limit + 1u }, { e->rsp - 0x1000, 0x1000 },
		{ cmd, cmdlen + 1 },
	};
	for (unsigned i = 0; i < sizeof(data) / sizeof(data[0]); i++) {
		CHECK(guest_mem_is_ram(&gm, data[i][0], data[i][1]));
		CHECK(data[i][0] + data[i][1] <= GUEST_EBDA_BASE || data[i][0] >= 0x100000);
		CHECK(data[i][0] >= 0x500);
		CHECK(apart(data[i][0], data[i][1], img, len));
		for (uint32_t m = 0; m < nmods; m++) {
			uint32_t s = g32(mods + 16 * m), t = g32(mods + 16 * m + 4);
			CHECK(apart(data[i][0], data[i][1], s, t - s));
			CHECK(apart(s, t - s, img, len));
		}
		for (unsigned j = 0; j < i; j++)
			CHECK(apart(data[i][0], data[i][1], data[j][0], data[j][1]));
	}
}

static void test_boot_data_moves(void)
{
	/* A Multiboot a.out-kludge image at 0x1000 with bss to 0x40000: it
	 * covers the usual boot info, stack and command line. */
	static uint8_t a[AOUT_SIZE];
	make_aout(a);
	uint8_t *h = a + 0x40;
	p32(h + 12, 0x1040);
	p32(h + 16, 0x1000);
	p32(h + 20, 0x1000 + AOUT_SIZE);
	p32(h + 24, 0x40000);
	p32(h + 28, 0x1080);
	const char *apath = tmp_file(a, AOUT_SIZE);
	uint8_t m1[100], m2[9000];
	memset(m1, 0x41, sizeof(m1));
	memset(m2, 0x42, sizeof(m2));
	struct boot_module mods[] = { { tmp_file(m1, sizeof(m1)), "arg1 arg2" },
				      { tmp_file(m2, sizeof(m2)), NULL } };
	const size_t sizes[] = { sizeof(m1), sizeof(m2) };
	guest_mem_fill(&gm, 0x1000, 0xcc, 0x3f000);
	struct boot_entry e;
	int r = load(apath, BOOT_FORMAT_AUTO, "low kernel", mods, 2, &e);
	CHECK_EQ(r, 0);
	if (r) {
		fprintf(stderr, "a.out at 0x1000: %s\n", err);
		return;
	}
	CHECK_EQ(e.rip, 0x1080);
	CHECK(gmem_is(0x1000, a, AOUT_SIZE)); /* nothing of khyve's on the image */
	CHECK(gmem_all(0x1000 + AOUT_SIZE, 0, 0x40000 - 0x1000 - AOUT_SIZE));
	CHECK(e.rbx != BOOT_INFO_GPA);
	check_mb_info(e.rbx, apath, "low kernel", 0x100000, mods, 2, sizes);
	check_mb_data_apart(&e, 0x1000, 0x3f000);
	CHECK(strstr(said, "the Multiboot information moved to 0x"));
	CHECK(strstr(said, ": its usual place 0x7000-0x7fff overlaps Multiboot image at "
			   "0x1000-0x3ffff\n"));
	CHECK(strstr(said, "the stack moved to 0x"));
	CHECK(strstr(said, "boot data: "));
	if (!strstr(said, "moved"))
		fprintf(stderr, "said:\n%s", said);

	/* A PVH ELF whose segment covers all of RAM below 640 KiB (bss from
	 * 0): boot data goes above 1 MiB, beside the modules. */
	static uint8_t pv[PVH_SIZE];
	make_pvh(pv, 64, 4);
	uint8_t *ph0 = pv + 64;
	p64(ph0 + 24, 0x200000 - 0x200000); /* p_paddr 0 */
	p64(ph0 + 40, GUEST_EBDA_BASE);     /* p_memsz */
	p32(pv + PVH_NOTE_OFF + 0x18 + 16, 0x10); /* PVH entry 0x10 */
	const char *ppath = tmp_file(pv, PVH_SIZE);
	r = load(ppath, BOOT_FORMAT_AUTO, "console=hvc0", mods, 2, &e);
	CHECK_EQ(r, 0);
	if (r) {
		fprintf(stderr, "PVH over all low RAM: %s\n", err);
		return;
	}
	CHECK_EQ(e.rip, 0x10);
	CHECK(gmem_is(0, pv + 0x1000, 0x1000));
	CHECK(gmem_all(0x1000, 0, GUEST_EBDA_BASE - 0x1000));
	CHECK(e.rbx >= 0x100000);
	CHECK_EQ(g32(e.rbx), 0x336ec578);
	CHECK(gstr_is(g64(e.rbx + 24), "console=hvc0"));
	uint64_t ml = g64(e.rbx + 16);
	CHECK_EQ(g64(ml), 0x100000); /* modules first, at 1 MiB */
	CHECK(gmem_is(g64(ml), m1, sizeof(m1)));
	CHECK(gmem_is(g64(ml + 32), m2, sizeof(m2)));
	CHECK(gstr_is(g64(ml + 16), "arg1 arg2"));
	const uint64_t pieces[][2] = {
		{ e.rbx, 0x1000 }, { e.gdt_base, 0x30 }, { e.rsp - 0x4000, 0x4000 },
		{ g64(ml), sizeof(m1) }, { g64(ml + 32), sizeof(m2) },
	};
	for (unsigned i = 0; i < 5; i++) {
		CHECK(pieces[i][0] >= 0x100000);
		for (unsigned j = 0; j < i; j++)
			CHECK(apart(pieces[i][0], pieces[i][1], pieces[j][0], pieces[j][1]));
	}

	/* the bzImage's boot data stays where it always was */
	static uint8_t bz[BZ_SIZE];
	make_bz(bz);
	CHECK_EQ(load(tmp_file(bz, BZ_SIZE), BOOT_FORMAT_AUTO, "x", NULL, 0, &e), 0);
	CHECK_EQ(e.rsi, BOOT_INFO_GPA);
	CHECK_EQ(e.cr3, BOOT_PML4_GPA);
	CHECK_EQ(e.rsp, BOOT_STACK_TOP);
	CHECK(!strstr(said, "moved"));
	CHECK(strstr(said, "boot data: the page tables at 0x1000-0x6fff") ||
	      strstr(said, "the page tables at 0x1000-0x6fff"));

	/* No room at all: a 4 MiB guest whose RAM the image fills. */
	struct guest_mem small;
	if (guest_mem_create(&small, 4ULL << 20) == 0) {
		static uint8_t f[PVH_SIZE];
		make_pvh(f, 64, 4);
		uint8_t *q0 = f + 64, *q1 = f + 64 + 56;
		p64(q0 + 24, 0);
		p64(q0 + 40, GUEST_EBDA_BASE);
		/* the PT_NOTE becomes a second PT_LOAD over 1-4 MiB (bss); the
		 * note is then found in the sections: none, so keep a PT_NOTE by
		 * making it a third header */
		p16(f + 56, 3);
		memcpy(f + 64 + 2 * 56, q1, 56);
		p32(q1, 1);
		p64(q1 + 8, 0x1000);
		p64(q1 + 24, 0x100000);
		p64(q1 + 32, 0);
		p64(q1 + 40, 0x300000);
		p32(f + PVH_NOTE_OFF + 0x18 + 16, 0x10);
		struct boot_request req = { .kernel_path = tmp_file(f, PVH_SIZE) };
		r = boot_load_kernel(&small, &req, &e, err, sizeof(err));
		CHECK(r == -ENOMEM);
		CHECK(strstr(err, ": no room for the GDT (48 bytes) in guest RAM (4 MiB) "
				  "below 4 GiB beside the kernel image and its modules"));
		if (getenv("TEST_BOOT_VERBOSE"))
			fprintf(stderr, "  %-32s -> %s\n", "no room", err);
		guest_mem_destroy(&small);
	}
}

/* The layout API itself: a real collision names both parties; boot data
 * moves around claims. */
static void test_layout_api(void)
{
	struct boot_ctx *c = calloc(1, sizeof(*c));
	struct boot_request req = { .inform = collect };
	c->gm = &gm;
	c->req = &req;
	c->err = err;
	c->errlen = sizeof(err);
	c->kernel.path = "kernel";
	boot_layout_init(c);
	said[0] = 0;
	err[0] = 0;
	CHECK_EQ(boot_claim_image(c, "ELF segment 1", 0x200000, 0x10000), 0);
	CHECK_EQ(boot_claim_image(c, "ELF segment 2", 0x210000, 0x1000), 0); /* adjacent is fine */
	CHECK(boot_claim_image(c, "the initrd", 0x20f000, 0x3000) == -EINVAL);
	CHECK(strcmp(err, "kernel: the initrd at 0x20f000-0x211fff overlaps ELF segment 1 at "
			  "0x200000-0x20ffff") == 0);
	CHECK(boot_claim_image(c, "module 1", 0x9f000, 0x1000) == -EINVAL);
	CHECK(strstr(err, "kernel: module 1 at 0x9f000-0x9ffff overlaps the EBDA/BIOS area "
			  "0x9fc00-0xfffff, which is not RAM"));
	CHECK(boot_claim_image(c, "module 1", 0x3fff000, 0x2000) == -ENOMEM);
	CHECK(strstr(err, "kernel: module 1 at 0x3fff000-0x4000fff does not fit in guest RAM "
			  "(64 MiB)"));
	CHECK_EQ(boot_claim_image(c, "ELF segment 3", 0x6000, 0x3000), 0);
	uint64_t at = 0;
	CHECK_EQ(boot_alloc(c, "the GDT", 0x30, 16, 0x500, &at), 0);
	CHECK_EQ(at, 0x500);
	/* 0x7000 is taken: first fit, page aligned, from 0x500 up */
	CHECK_EQ(boot_alloc(c, "the boot info", 0x1000, 0x1000, 0x7000, &at), 0);
	CHECK_EQ(at, 0x1000);
	CHECK(strstr(said, "the boot info moved to 0x1000-0x1fff: its usual place 0x7000-0x7fff "
			   "overlaps ELF segment 3 at 0x6000-0x8fff\n"));
	/* a place that is not RAM moves too */
	CHECK_EQ(boot_alloc(c, "a table", 0x100, 16, 0xe0000, &at), 0);
	CHECK_EQ(at, 0x530);
	CHECK(strstr(said, "its usual place 0xe0000-0xe00ff is not RAM"));
	/* too big for any free range */
	CHECK(boot_alloc(c, "a huge thing", 0x4000000, 16, 0x100000, &at) == -ENOMEM);
	CHECK(strstr(err, "no room for a huge thing (67108864 bytes)"));
	boot_layout_free(c);
	free(c);
}

static void test_generic_errors(void)
{
	struct boot_entry e;
	CHECK(load("/nonexistent/vmlinuz", BOOT_FORMAT_AUTO, "", NULL, 0, &e) == -ENOENT);
	CHECK(strcmp(err, "/nonexistent/vmlinuz: No such file or directory") == 0);
	CHECK(load("/tmp", BOOT_FORMAT_AUTO, "", NULL, 0, &e) < 0);
	CHECK(strstr(err, "/tmp: not a regular file"));
	CHECK(load(NULL, BOOT_FORMAT_AUTO, "", NULL, 0, &e) < 0);
	CHECK(strstr(err, "no kernel file given"));
	expect_fail("empty file", "", 0, BOOT_FORMAT_AUTO, "the file is empty");
	expect_fail("text file", "hello, world\n", 13, BOOT_FORMAT_AUTO,
		    "not a bzImage, ELF/PVH or Multiboot image");
	expect_fail("bad format", "x", 1, (enum boot_format)7, "unknown kernel format 7");
	/* a tiny err buffer is fine */
	char small[8];
	struct boot_request req = { .kernel_path = "/nonexistent/x" };
	CHECK(boot_load_kernel(&gm, &req, &e, small, sizeof(small)) < 0);
	CHECK(strlen(small) == 7);
}

/* ---- random byte flips ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static void fuzz_one(const char *name, const uint8_t *img, size_t len, size_t hot,
		     unsigned iters)
{
	uint8_t *v = malloc(len);
	const char *path = tmp_file(NULL, 0);
	uint8_t m[64];
	memset(m, 0x5a, sizeof(m));
	const char *mp = tmp_file(m, sizeof(m));
	struct boot_module mods[] = { { mp, "a" }, { mp, NULL } };
	unsigned ok = 0;
	for (unsigned it = 0; it < iters; it++) {
		memcpy(v, img, len);
		unsigned flips = 1 + (unsigned)(rng() % 4);
		for (unsigned f = 0; f < flips; f++) {
			size_t at = (rng() & 1) ? rng() % hot : rng() % len;
			switch (rng() % 4) {
			case 0: v[at] ^= (uint8_t)(1u << (rng() % 8)); break;
			case 1: v[at] = (uint8_t)rng(); break;
			case 2: v[at] = 0xff; break;
			default: v[at] = 0; break;
			}
		}
		size_t flen = (rng() % 8 == 0) ? rng() % (len + 1) : len;
		rewrite(path, v, flen);
		struct boot_entry e;
		enum boot_format fmt = (enum boot_format)(rng() % 4);
		int r = load(path, fmt, (it & 1) ? "console=ttyS0" : NULL, mods, (unsigned)(rng() % 3), &e);
		if (r == 0) {
			ok++;
			/* whatever loaded, the entry point is in guest RAM */
			CHECK(guest_mem_is_ram(&gm, e.rip, 1));
			CHECK(e.format_name != NULL);
		} else {
			CHECK(r < 0 && err[0]);
		}
	}
	if (getenv("TEST_BOOT_VERBOSE"))
		fprintf(stderr, "fuzz %s: %u of %u mutants loaded\n", name, ok, iters);
	free(v);
}

static void test_fuzz(void)
{
	unsigned iters = 400;
	const char *env = getenv("TEST_BOOT_FUZZ_ITERS");
	if (env && atoi(env) > 0)
		iters = (unsigned)atoi(env);
	static uint8_t bz[BZ_SIZE], pvh[PVH_SIZE], pvh32[PVH_SIZE], mbe[MBE_SIZE], aout[AOUT_SIZE];
	static uint8_t ld32[LD32_SIZE], ld64[LD64_SIZE];
	make_ld32(ld32);
	make_ld64(ld64, 0x10000000);
	make_bz(bz);
	make_pvh(pvh, 64, 4);
	make_pvh(pvh32, 32, 8);
	make_mb_elf(mbe, 32, 0x3);
	make_aout(aout);
	fuzz_one("bzImage", bz, BZ_SIZE, 0x280, iters);
	fuzz_one("PVH64", pvh, PVH_SIZE, 0x200, iters);
	fuzz_one("PVH64 notes", pvh, PVH_SIZE, PVH_SIZE, iters);
	fuzz_one("PVH32", pvh32, PVH_SIZE, 0x200, iters);
	fuzz_one("Multiboot ELF", mbe, MBE_SIZE, 0x100, iters);
	fuzz_one("a.out", aout, AOUT_SIZE, 0x60, iters);
	fuzz_one("ld ELF32", ld32, LD32_SIZE, LD32_HDRS, iters);
	fuzz_one("ld ELF64", ld64, LD64_SIZE, LD64_HDRS, iters);
}

/* ---- the kit's real kernels, when built ---- */

/* Looks for .kit/linux/NAME: in $KHYVE_KIT_DIR, next to the source tree
 * that __FILE__ names (relative to the build directory, or absolute), or in
 * a parent of the working directory or of this executable. */
static char *kit_file(const char *name)
{
	static char buf[4096];
	const char *dir = getenv("KHYVE_KIT_DIR");
	if (dir) {
		snprintf(buf, sizeof(buf), "%s/%s", dir, name);
		return access(buf, R_OK) == 0 ? buf : NULL;
	}
	const char *f = __FILE__, *tail = strstr(f, "tests/unit/test_boot.c");
	if (tail) {
		snprintf(buf, sizeof(buf), "%.*s.kit/linux/%s", (int)(tail - f), f, name);
		if (access(buf, R_OK) == 0)
			return buf;
	}
	char base[2][2048] = { "", "" };
	if (!getcwd(base[0], sizeof(base[0])))
		base[0][0] = 0;
	ssize_t n = readlink("/proc/self/exe", base[1], sizeof(base[1]) - 1);
	base[1][n > 0 ? n : 0] = 0;
	for (int b = 0; b < 2; b++) {
		char *d = base[b];
		for (int up = 0; up < 6 && d[0] == '/'; up++) {
			int len = snprintf(buf, sizeof(buf), "%s/.kit/linux/%s", d, name);
			if (len > 0 && (size_t)len < sizeof(buf) && access(buf, R_OK) == 0)
				return buf;
			char *slash = strrchr(d, '/');
			if (!slash)
				break;
			*slash = 0;
		}
	}
	return NULL;
}

static long maxrss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void test_kit(void)
{
	char bz[4096], vm[4096], rd[4096];
	const char *p;
	bz[0] = vm[0] = rd[0] = 0;
	if ((p = kit_file("bzImage")))
		snprintf(bz, sizeof(bz), "%s", p);
	if ((p = kit_file("vmlinux")))
		snprintf(vm, sizeof(vm), "%s", p);
	if ((p = kit_file("initramfs.cpio.gz")))
		snprintf(rd, sizeof(rd), "%s", p);
	if (!bz[0] && !vm[0]) {
		fprintf(stderr, "test_boot: no .kit/linux kernels, skipping the real-kernel checks\n");
		return;
	}
	struct guest_mem big;
	if (guest_mem_create(&big, 512ULL << 20)) {
		CHECK(!"guest_mem_create 512 MiB");
		return;
	}
	struct boot_module mods[] = { { rd, NULL } };
	struct boot_request req = { .cmdline = "console=ttyS0 panic=-1", .rsdp_gpa = 0xF0000 };
	struct boot_entry e;
	long rss0 = maxrss_kib();
	if (bz[0]) {
		req.kernel_path = bz;
		req.modules = mods;
		req.nr_modules = rd[0] ? 1 : 0;
		int r = boot_load_kernel(&big, &req, &e, err, sizeof(err));
		CHECK_EQ(r, 0);
		if (r)
			fprintf(stderr, "kit bzImage: %s\n", err);
		CHECK_EQ(e.mode, BOOT_CPU_LONG64);
		CHECK_EQ(e.rip, 0x100200);
		CHECK(e.format_name && strcmp(e.format_name, "bzImage") == 0);
		uint8_t hdr[4];
		guest_mem_read(&big, BOOT_INFO_GPA + 0x202, hdr, 4);
		CHECK(memcmp(hdr, "HdrS", 4) == 0);
		uint32_t rdimg = 0, rdsize = 0;
		guest_mem_read_u32(&big, BOOT_INFO_GPA + 0x218, &rdimg);
		guest_mem_read_u32(&big, BOOT_INFO_GPA + 0x21c, &rdsize);
		if (rd[0]) {
			CHECK(rdimg >= (64u << 20) && rdimg + (uint64_t)rdsize <= (512u << 20));
			uint8_t gz[2] = { 0 };
			guest_mem_read(&big, rdimg, gz, 2);
			CHECK(gz[0] == 0x1f && gz[1] == 0x8b);
		}
		/* too small a guest for its init_size */
		struct guest_mem small;
		if (guest_mem_create(&small, 32ULL << 20) == 0) {
			req.nr_modules = 0;
			CHECK(boot_load_kernel(&small, &req, &e, err, sizeof(err)) == -ENOMEM);
			CHECK(strstr(err, "but the guest has only 32 MiB"));
			if (getenv("TEST_BOOT_VERBOSE"))
				fprintf(stderr, "  kit bzImage in 32 MiB -> %s\n", err);
			guest_mem_destroy(&small);
		}
	}
	if (vm[0]) {
		req.kernel_path = vm;
		req.modules = mods;
		req.nr_modules = rd[0] ? 1 : 0;
		req.format = BOOT_FORMAT_AUTO;
		int r = boot_load_kernel(&big, &req, &e, err, sizeof(err));
		CHECK_EQ(r, 0);
		if (r)
			fprintf(stderr, "kit vmlinux: %s\n", err);
		CHECK_EQ(e.mode, BOOT_CPU_PROT32);
		CHECK(e.format_name && strcmp(e.format_name, "PVH ELF") == 0);
		/* the kit's PVH entry (kit.env PVH_ENTRY=0x1000850 for its kernel) */
		CHECK(e.rip >= 0x1000000 && e.rip < 0x4000000);
		uint32_t magic = 0;
		guest_mem_read_u32(&big, BOOT_INFO_GPA, &magic);
		CHECK_EQ(magic, 0x336ec578);
		if (getenv("TEST_BOOT_VERBOSE"))
			fprintf(stderr, "  kit vmlinux: PVH entry 0x%llx\n", (unsigned long long)e.rip);
	}
	long rss1 = maxrss_kib();
	if (getenv("TEST_BOOT_VERBOSE"))
		fprintf(stderr, "  kit: peak RSS %ld KiB before, %ld KiB after loading\n", rss0, rss1);
	guest_mem_destroy(&big);
}

int main(void)
{
	atexit(cleanup_tmp);
	if (guest_mem_create(&gm, GUEST_SIZE)) {
		fprintf(stderr, "guest_mem_create failed\n");
		return 1;
	}
	test_generic_errors();
	test_bzimage();
	test_pvh();
	test_multiboot();
	test_skip_headers_and_notes();
	test_boot_data_moves();
	test_layout_api();
	test_fuzz();
	test_kit();
	guest_mem_destroy(&gm);
	return UNIT_RESULT();
}
