/* The boot vCPU's starting state: a GDT with flat segments (and a TSS for
 * TR), identity-mapped page tables for long mode, and the control
 * registers, written into guest memory and struct boot_entry.
 *
 * Each lives at its usual place (BOOT_GDT_GPA, BOOT_PML4_GPA, the stack
 * below BOOT_STACK_TOP) unless the image is there; then boot_alloc() finds
 * it room elsewhere.
 *
 * GDT (the Linux boot protocol's selectors):
 *   0x00 null, 0x08 unused,
 *   0x10 code: flat 4 GiB, execute/read; L=1 in long mode, D=1 otherwise
 *   0x18 data: flat 4 GiB, read/write
 *   0x20 TSS: base 0, limit 0x67, busy (type 11); a 16-byte 64-bit TSS
 *        descriptor in long mode, 8 bytes otherwise. Base 0 as the PVH ABI
 *        says; nothing the boot CPU does at CPL 0 without task switches
 *        reads the TSS, so what lies at 0 does not matter. */
#include <errno.h>
#include <string.h>

#include "boot/loaders.h"

#define SEL_CODE 0x10
#define SEL_DATA 0x18
#define SEL_TSS 0x20
#define GDT_SIZE 0x30
#define TSS_LIMIT 0x67

#define CR0_PE (1ULL << 0)
#define CR0_ET (1ULL << 4)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define PTE_P 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL

static uint64_t seg_desc(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
	return (uint64_t)(limit & 0xffff) | (uint64_t)(base & 0xffffff) << 16 |
	       (uint64_t)access << 40 | (uint64_t)((limit >> 16) & 0xf) << 48 |
	       (uint64_t)(flags & 0xf) << 52 | (uint64_t)(base >> 24) << 56;
}

int boot_place_cpu_data(struct boot_ctx *c, bool long_mode)
{
	if (c->cpu_data_placed)
		return 0;
	int r = boot_alloc(c, "the GDT", GDT_SIZE, 16, BOOT_GDT_GPA, &c->gdt_gpa);
	/* No boot protocol promises a stack; the usual one is generous, one
	 * that has to move is smaller. */
	uint64_t stack = 0, size = 0;
	if (!r)
		r = boot_alloc_sized(c, "the stack", BOOT_STACK_MOVED, 16, BOOT_STACK_GPA,
				     BOOT_STACK_TOP - BOOT_STACK_GPA, &stack, &size);
	c->stack_top = stack + size;
	if (!r && long_mode)
		r = boot_alloc(c, "the page tables", 6 * BOOT_PAGE, BOOT_PAGE, BOOT_PML4_GPA,
			       &c->pml4_gpa);
	if (!r)
		c->cpu_data_placed = true;
	return r;
}

static int write_gdt(struct boot_ctx *c, bool long_mode)
{
	uint8_t gdt[GDT_SIZE] = { 0 };
	/* flags: G=8, D/B=4, L=2 */
	put_le64(gdt + SEL_CODE, seg_desc(0, 0xfffff, 0x9b, long_mode ? 0xa : 0xc));
	put_le64(gdt + SEL_DATA, seg_desc(0, 0xfffff, 0x93, 0xc));
	put_le64(gdt + SEL_TSS, seg_desc(0, TSS_LIMIT, 0x8b, 0));
	/* gdt[0x28..0x2f]: base bits 63:32 of the 64-bit TSS descriptor, 0 */
	int r = boot_place_cpu_data(c, long_mode);
	if (r)
		return r;
	if (guest_mem_write(c->gm, c->gdt_gpa, gdt, sizeof(gdt)))
		return boot_fail(c, EFAULT, "cannot write the GDT at 0x%llx",
				 (unsigned long long)c->gdt_gpa);
	struct boot_entry *e = c->entry;
	e->gdt_base = c->gdt_gpa;
	e->gdt_limit = GDT_SIZE - 1;
	e->code_sel = SEL_CODE;
	e->data_sel = SEL_DATA;
	e->tss_sel = SEL_TSS;
	e->rflags = 0x2;
	e->rsp = c->stack_top;
	return 0;
}

/* PML4 -> one PDPT -> four PDs of 2 MiB pages: 0-4 GiB identity-mapped. */
static int write_page_tables(struct boot_ctx *c)
{
	uint8_t page[BOOT_PAGE];
	const uint64_t pml4 = c->pml4_gpa, pdpt = pml4 + 0x1000, pd = pml4 + 0x2000;
	int r = 0;

	memset(page, 0, sizeof(page));
	put_le64(page, pdpt | PTE_P | PTE_RW);
	r |= guest_mem_write(c->gm, pml4, page, sizeof(page));

	memset(page, 0, sizeof(page));
	for (unsigned i = 0; i < 4; i++)
		put_le64(page + 8 * i, (pd + i * BOOT_PAGE) | PTE_P | PTE_RW);
	r |= guest_mem_write(c->gm, pdpt, page, sizeof(page));

	for (unsigned i = 0; i < 4; i++) {
		for (unsigned j = 0; j < 512; j++) {
			uint64_t addr = ((uint64_t)i << 30) | ((uint64_t)j << 21);
			put_le64(page + 8 * j, addr | PTE_P | PTE_RW | PTE_PS);
		}
		r |= guest_mem_write(c->gm, pd + i * BOOT_PAGE, page, sizeof(page));
	}
	if (r)
		return boot_fail(c, EFAULT, "cannot write the page tables at 0x%llx",
				 (unsigned long long)pml4);
	return 0;
}

int boot_enter_long64(struct boot_ctx *c, uint64_t rip)
{
	int r = write_gdt(c, true);
	if (!r)
		r = write_page_tables(c);
	if (r)
		return r;
	struct boot_entry *e = c->entry;
	e->mode = BOOT_CPU_LONG64;
	e->rip = rip;
	e->cr0 = CR0_PE | CR0_ET | CR0_PG;
	e->cr3 = c->pml4_gpa;
	e->cr4 = CR4_PAE;
	e->efer = EFER_LME | EFER_LMA;
	return 0;
}

int boot_enter_prot32(struct boot_ctx *c, uint64_t rip)
{
	int r = write_gdt(c, false);
	if (r)
		return r;
	struct boot_entry *e = c->entry;
	e->mode = BOOT_CPU_PROT32;
	e->rip = rip;
	e->cr0 = CR0_PE | CR0_ET;
	e->cr3 = 0;
	e->cr4 = 0;
	e->efer = 0;
	return 0;
}
