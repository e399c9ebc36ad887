/* The entry state a loader leaves in a named VM (the file `entry` in its
 * directory, ctl/vmdir.h), from which `khyve NAME` starts the boot vCPU.
 *
 * Format, version 1: text, one "key=value" per line, '#' lines ignored.
 * The first line is "khyve-entry 1". Numbers are C integers (0x... hex or
 * decimal). Keys:
 *
 *   mem=BYTES          the guest's memory size (that of the file `mem`)
 *   mode=long64|prot32 the boot vCPU's mode (boot/boot.h)
 *   rip= rsp= rflags= rax= rbx= rsi=
 *   cr0= cr3= cr4= efer=
 *   gdt_base= gdt_limit=
 *   code_sel= data_sel= tss_sel=   (selectors into the loader's GDT; the
 *                      segments are flat, as boot/boot.h describes)
 *   format=TEXT        what was booted ("PVH ELF", "bzImage", ...)
 *   cmdline=TEXT       the kernel command line, for people
 *   load=KIND ADDR SIZE NAME   what was loaded where, one line each (at
 *                      most CTL_ENTRY_MAX_LOADS), for people: KIND is a
 *                      word (kernel, initrd, module, ...), ADDR and SIZE
 *                      guest-physical, NAME the rest of the line
 *
 * mem, mode and rip are required; every other register is 0 when absent
 * (rflags then 0x2). A key this version does not know, a repeated key, a
 * bad number or a line longer than 4096 bytes makes the file unreadable:
 * a VM is never booted from half-understood state. A later version
 * changes the first line. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "vmm/vm.h"

#define CTL_ENTRY_VERSION 1
#define CTL_ENTRY_MAX_LOADS 32
#define CTL_ENTRY_TEXT_MAX 1024

struct ctl_entry_load {
	char kind[16];
	uint64_t addr, size;
	char name[256];
};

struct ctl_entry {
	uint64_t mem_size;
	/* entry.format_name points at format below. */
	struct boot_entry entry;
	char format[64];
	char cmdline[CTL_ENTRY_TEXT_MAX];
	unsigned nloads;
	struct ctl_entry_load loads[CTL_ENTRY_MAX_LOADS];
};

/* Fill e from a loader's result: the entry, the memory size, the command
 * line (may be NULL). Loads are added with ctl_entry_add_load. */
void ctl_entry_init(struct ctl_entry *e, uint64_t mem_size, const struct boot_entry *entry,
		    const char *cmdline);
/* 0, or -ENOSPC when CTL_ENTRY_MAX_LOADS are there already. */
int ctl_entry_add_load(struct ctl_entry *e, const char *kind, uint64_t addr, uint64_t size,
		       const char *name);

/* The text of e into buf; the length it needs (as snprintf). */
size_t ctl_entry_format(const struct ctl_entry *e, char *buf, size_t len);
/* Parse text (not NUL-terminated) into e. 0, or -EINVAL with the reason
 * (naming the line) in err. */
int ctl_entry_parse(const char *text, size_t len, struct ctl_entry *e, char *err, size_t errlen);

/* The boot vCPU's registers as khyve will set them from e (vmm/vcpu.c's
 * vcpu_set_boot_entry: flat segments, every other register 0), for
 * khyvectl on a prepared VM. */
void ctl_entry_to_state(const struct ctl_entry *e, struct vcpu_state *st);
/* The other way: 0, or -EINVAL when st holds something an entry state
 * cannot say (a register other than those above, a segment that is not
 * flat): the name of the first such register in *what. */
int ctl_entry_from_state(struct ctl_entry *e, const struct vcpu_state *st, const char **what);
