#include "debug/paging.h"

#include <errno.h>
#include <string.h>

#define CR0_PG (1ull << 31)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define EFER_LMA (1ull << 10)

#define PTE_P 1ull
#define PTE_PS (1ull << 7)
#define ADDR_MASK 0x000ffffffffff000ull /* bits 12..51 */

enum paging_mode paging_mode_of(const struct paging_regs *r)
{
	if (!(r->cr0 & CR0_PG))
		return PAGING_NONE;
	if (r->efer & EFER_LMA)
		return (r->cr4 & CR4_LA57) ? PAGING_LONG5 : PAGING_LONG4;
	if (r->cr4 & CR4_PAE)
		return PAGING_PAE;
	return PAGING_32;
}

const char *paging_mode_name(enum paging_mode mode)
{
	switch (mode) {
	case PAGING_NONE: return "no paging";
	case PAGING_32: return "32-bit paging";
	case PAGING_PAE: return "PAE paging";
	case PAGING_LONG4: return "4-level paging";
	case PAGING_LONG5: return "5-level paging";
	}
	return "?";
}

static int read_entry(paging_read_fn read, void *opaque, uint64_t gpa, size_t size,
		      uint64_t *out)
{
	uint8_t b[8];
	if (read(opaque, gpa, b, size))
		return -EIO;
	uint64_t v = 0;
	for (size_t i = 0; i < size; i++)
		v |= (uint64_t)b[i] << (8 * i);
	*out = v;
	return 0;
}

static int walk32(const struct paging_regs *r, uint64_t gva, paging_read_fn read, void *opaque,
		  struct paging_result *out)
{
	uint32_t va = (uint32_t)gva;
	uint64_t pde, pte;
	if (gva >> 32)
		return -EFAULT;
	if (read_entry(read, opaque, (r->cr3 & 0xfffff000u) + (va >> 22) * 4, 4, &pde))
		return -EIO;
	out->entries[out->levels++] = pde;
	if (!(pde & PTE_P))
		return -EFAULT;
	if ((pde & PTE_PS) && (r->cr4 & CR4_PSE)) {
		/* PSE-36: bits 13..20 of the entry are physical bits 32..39. */
		uint64_t base = (pde & 0xffc00000u) | ((pde >> 13) & 0xff) << 32;
		out->page_size = 4ull << 20;
		out->gpa = base | (va & 0x3fffff);
		return 0;
	}
	if (read_entry(read, opaque, (pde & 0xfffff000u) + ((va >> 12) & 0x3ff) * 4, 4, &pte))
		return -EIO;
	out->entries[out->levels++] = pte;
	if (!(pte & PTE_P))
		return -EFAULT;
	out->page_size = 4096;
	out->gpa = (pte & 0xfffff000u) | (va & 0xfff);
	return 0;
}

/* The common part of PAE and long mode: 8-byte entries, 9 bits per level,
 * large pages at the levels that allow them. */
static int walk64(uint64_t table, unsigned levels, uint64_t gva, paging_read_fn read,
		  void *opaque, struct paging_result *out)
{
	for (unsigned level = levels; level >= 1; level--) {
		unsigned shift = 12 + 9 * (level - 1);
		uint64_t e;
		if (read_entry(read, opaque, table + ((gva >> shift) & 511) * 8, 8, &e))
			return -EIO;
		out->entries[out->levels++] = e;
		if (!(e & PTE_P))
			return -EFAULT;
		/* PS: 1 GiB at level 3, 2 MiB at level 2. */
		if (level == 1 || ((level == 2 || level == 3) && (e & PTE_PS))) {
			uint64_t size = 1ull << shift;
			out->page_size = size;
			out->gpa = (e & ADDR_MASK & ~(size - 1)) | (gva & (size - 1));
			return 0;
		}
		table = e & ADDR_MASK;
	}
	return -EFAULT;
}

int paging_translate(const struct paging_regs *r, uint64_t gva, paging_read_fn read,
		     void *opaque, struct paging_result *out)
{
	memset(out, 0, sizeof(*out));
	switch (paging_mode_of(r)) {
	case PAGING_NONE:
		out->gpa = gva;
		out->page_size = 4096;
		return 0;
	case PAGING_32:
		return walk32(r, gva, read, opaque, out);
	case PAGING_PAE: {
		uint64_t pdpte;
		if (gva >> 32)
			return -EFAULT;
		if (read_entry(read, opaque, (r->cr3 & 0xffffffe0u) + (gva >> 30) * 8, 8, &pdpte))
			return -EIO;
		out->entries[out->levels++] = pdpte;
		if (!(pdpte & PTE_P))
			return -EFAULT;
		return walk64(pdpte & ADDR_MASK, 2, gva, read, opaque, out);
	}
	case PAGING_LONG4:
	case PAGING_LONG5: {
		unsigned levels = paging_mode_of(r) == PAGING_LONG5 ? 5 : 4;
		unsigned bits = 12 + 9 * levels; /* 48 or 57 */
		/* Canonical: the bits above the top one copy it. */
		int64_t top = (int64_t)(gva << (64 - bits)) >> (64 - bits);
		if ((uint64_t)top != gva)
			return -EFAULT;
		return walk64(r->cr3 & ADDR_MASK, levels, gva, read, opaque, out);
	}
	}
	return -EFAULT;
}
