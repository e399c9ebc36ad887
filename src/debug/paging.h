/* Guest-virtual to guest-physical translation by walking the guest's page
 * tables as its processor would: no paging (real mode, or protected mode
 * with CR0.PG clear: linear = physical), 32-bit paging (4 KiB and, with
 * CR4.PSE, 4 MiB pages incl. PSE-36), PAE (4 KiB, 2 MiB), 4-level and,
 * with CR4.LA57, 5-level long-mode paging (4 KiB, 2 MiB, 1 GiB). Segment
 * bases are not applied: addresses are linear, as gdb means them.
 * Access rights are not checked: a debugger may look at anything mapped. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct paging_regs {
	uint64_t cr0, cr3, cr4, efer;
};

enum paging_mode {
	PAGING_NONE, PAGING_32, PAGING_PAE, PAGING_LONG4, PAGING_LONG5,
};

/* Reads guest-physical memory; 0 or a negative errno. */
typedef int (*paging_read_fn)(void *opaque, uint64_t gpa, void *buf, size_t len);

enum paging_mode paging_mode_of(const struct paging_regs *r);
const char *paging_mode_name(enum paging_mode mode);

struct paging_result {
	uint64_t gpa;
	uint64_t page_size;   /* of the mapping found; gva's offset within it is kept */
	unsigned levels;      /* table levels walked */
	uint64_t entries[5];  /* the entries read, top level first */
};

/* 0 and the translation, -EFAULT when gva is not mapped (or not
 * canonical), -EIO when a page-table entry cannot be read. */
int paging_translate(const struct paging_regs *r, uint64_t gva, paging_read_fn read,
		     void *opaque, struct paging_result *out);
