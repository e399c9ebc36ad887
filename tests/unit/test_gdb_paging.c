/* Guest page-table walks (debug/paging.c) in every paging mode, against
 * tables built here the way a guest kernel would. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "debug/paging.h"
#include "unit.h"

#define MEM (8u << 20)

static uint8_t *mem;
static uint64_t next_table;

static int rd(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	(void)opaque;
	if (gpa >= MEM || len > MEM - gpa)
		return -EFAULT;
	memcpy(buf, mem + gpa, len);
	return 0;
}

static uint64_t alloc_table(void)
{
	uint64_t t = next_table;
	next_table += 4096;
	memset(mem + t, 0, 4096);
	return t;
}

static uint64_t get64(uint64_t at)
{
	uint64_t v;
	memcpy(&v, mem + at, 8);
	return v;
}

static void put64(uint64_t at, uint64_t v) { memcpy(mem + at, &v, 8); }
static void put32(uint64_t at, uint32_t v) { memcpy(mem + at, &v, 4); }

/* Map va to pa in 8-byte-entry tables of `levels` levels rooted at root;
 * leaf_level 1: 4 KiB, 2: 2 MiB, 3: 1 GiB. */
static void map64(uint64_t root, unsigned levels, uint64_t va, uint64_t pa, unsigned leaf_level)
{
	uint64_t table = root;
	for (unsigned level = levels; level > leaf_level; level--) {
		uint64_t slot = table + ((va >> (12 + 9 * (level - 1))) & 511) * 8;
		uint64_t e = get64(slot);
		if (!(e & 1)) {
			e = alloc_table() | 3;
			put64(slot, e);
		}
		table = e & 0x000ffffffffff000ull;
	}
	uint64_t slot = table + ((va >> (12 + 9 * (leaf_level - 1))) & 511) * 8;
	put64(slot, pa | 3 | (leaf_level > 1 ? 0x80 : 0));
}

static uint64_t xlate(const struct paging_regs *r, uint64_t va, int *err)
{
	struct paging_result res;
	*err = paging_translate(r, va, rd, NULL, &res);
	return res.gpa;
}

#define CHECK_XLATE(r, va, pa)                                   \
	do {                                                     \
		int _e;                                          \
		uint64_t _g = xlate(r, va, &_e);                 \
		CHECK_EQ(_e, 0);                                 \
		CHECK_EQ(_g, pa);                                \
	} while (0)

#define CHECK_FAULT(r, va)                                       \
	do {                                                     \
		int _e;                                          \
		xlate(r, va, &_e);                               \
		CHECK_EQ(_e, -EFAULT);                           \
	} while (0)

static void test_no_paging(void)
{
	struct paging_regs r = { .cr0 = 0x10 }; /* real mode */
	CHECK_EQ(paging_mode_of(&r), PAGING_NONE);
	CHECK_XLATE(&r, 0x7c00, 0x7c00);
	r.cr0 = 0x11; /* protected, PG clear */
	CHECK_XLATE(&r, 0x123456, 0x123456);
	CHECK(!strcmp(paging_mode_name(PAGING_NONE), "no paging"));
}

static void test_32bit(void)
{
	next_table = 0x100000;
	uint64_t pd = alloc_table(), pt = alloc_table();
	struct paging_regs r = { .cr0 = 0x80000011, .cr3 = pd | 0x18 /* PWT|PCD */ };
	CHECK_EQ(paging_mode_of(&r), PAGING_32);
	put32(pd + 1 * 4, (uint32_t)pt | 3);         /* 0x00400000 */
	put32(pt + 5 * 4, 0x123000 | 3);
	CHECK_XLATE(&r, 0x405abc, 0x123abc);
	CHECK_FAULT(&r, 0x406000);                    /* PTE not present */
	CHECK_FAULT(&r, 0x800000);                    /* PDE not present */
	CHECK_FAULT(&r, 0x100000000ull);              /* beyond 32 bits */
	/* 4 MiB pages need CR4.PSE; PSE-36 adds physical bits 32-39. */
	put32(pd + 2 * 4, 0x00c00000 | 0x83);
	put32(pd + 3 * 4, 0x00400000 | (1u << 13) | 0x83);
	r.cr4 = 0x10;
	CHECK_XLATE(&r, 0x812345, 0xc12345);
	CHECK_XLATE(&r, 0xc00123, 0x100400123ull);
	CHECK_XLATE(&r, 0x405abc, 0x123abc);
	/* Without PSE the PS bit is not looked at: the entry is a table. */
	r.cr4 = 0;
	int e;
	xlate(&r, 0x812345, &e);
	CHECK_EQ(e, -EIO); /* "table" at 0xc00000, outside this memory */
}

static void test_pae(void)
{
	next_table = 0x200000;
	uint64_t pdpt = 0x1ffe0; /* 32-byte aligned, not page aligned */
	memset(mem + pdpt, 0, 32);
	struct paging_regs r = { .cr0 = 0x80000011, .cr4 = 0x20, .cr3 = pdpt };
	CHECK_EQ(paging_mode_of(&r), PAGING_PAE);
	uint64_t pd = alloc_table(), pt = alloc_table();
	put64(pdpt + 1 * 8, pd | 1);
	put64(pd + 0 * 8, pt | 3);
	put64(pt + 7 * 8, 0x777000 | 3);
	CHECK_XLATE(&r, 0x40007123, 0x777123);
	put64(pd + 1 * 8, 0xa00000 | 0x83); /* 2 MiB */
	CHECK_XLATE(&r, 0x40201234, 0xa01234);
	/* Physical addresses above 4 GiB (NX bit ignored). */
	put64(pt + 8 * 8, 0x8000000000000000ull | 0x123456000ull | 3);
	CHECK_XLATE(&r, 0x40008010, 0x123456010ull);
	CHECK_FAULT(&r, 0x80000000);
	CHECK_FAULT(&r, 0x40009000);
}

static void test_long_mode(unsigned levels)
{
	next_table = 0x300000;
	uint64_t root = alloc_table();
	struct paging_regs r = { .cr0 = 0x80000011, .cr4 = 0x20 | (levels == 5 ? 0x1000 : 0),
				 .efer = 0x500, .cr3 = root | 0x5 /* PCID */ };
	CHECK_EQ(paging_mode_of(&r), levels == 5 ? PAGING_LONG5 : PAGING_LONG4);
	uint64_t top = levels == 5 ? 0xff00000000000000ull : 0xffff800000000000ull;
	/* A kernel text mapping, a direct map with 2 MiB and 1 GiB pages,
	 * and user 4 KiB pages. */
	map64(root, levels, 0xffffffff81000000ull, 0x1000000, 2);
	map64(root, levels, top, 0, 3);
	map64(root, levels, 0x400000, 0x5000, 1);
	map64(root, levels, 0x7ffffffff000ull, 0x6000, 1);
	CHECK_XLATE(&r, 0xffffffff81000000ull + 0x1234, 0x1001234);
	CHECK_XLATE(&r, 0xffffffff811fffffull, 0x11fffff);
	CHECK_XLATE(&r, top + 0x12345678, 0x12345678);
	CHECK_XLATE(&r, 0x400abc, 0x5abc);
	CHECK_XLATE(&r, 0x7ffffffffff0ull, 0x6ff0);
	CHECK_FAULT(&r, 0x401000);
	CHECK_FAULT(&r, 0xffffffff81200000ull);
	if (levels == 4) {
		CHECK_FAULT(&r, 0x0000800000000000ull); /* not canonical with 48 bits */
		CHECK_FAULT(&r, 0x8000000000000000ull);
	} else {
		/* 57 bits: 0x0080000000000000 is the first non-canonical */
		CHECK_FAULT(&r, 0x0080000000000000ull);
		map64(root, levels, 0x00ff000000000000ull, 0x7000, 1);
		CHECK_XLATE(&r, 0x00ff000000000042ull, 0x7042);
	}
	struct paging_result res;
	CHECK_EQ(paging_translate(&r, 0x400abc, rd, NULL, &res), 0);
	CHECK_EQ(res.levels, levels);
	CHECK_EQ(res.page_size, 4096);
	CHECK_EQ(paging_translate(&r, top + 5, rd, NULL, &res), 0);
	CHECK_EQ(res.page_size, 1ull << 30);
	CHECK_EQ(res.levels, levels - 2);
	/* A table outside memory: -EIO, not a crash. */
	uint64_t bad = alloc_table();
	struct paging_regs rb = r;
	rb.cr3 = bad;
	put64(bad, 0x7fff000000ull | 3);
	CHECK_EQ(paging_translate(&rb, 0x1000, rd, NULL, &res), -EIO);
}

int main(void)
{
	mem = calloc(1, MEM);
	test_no_paging();
	test_32bit();
	test_pae();
	test_long_mode(4);
	test_long_mode(5);
	free(mem);
	return UNIT_RESULT();
}
