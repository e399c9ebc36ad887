/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Boot information from PVH (struct hvm_start_info) or Multiboot v1
 * (struct multiboot_info), normalized into one struct.  Strings are copied
 * into the runtime's own buffer, so the loader's memory may be reused.
 */
#ifndef GUEST_BOOTINFO_H
#define GUEST_BOOTINFO_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#define BOOTINFO_MAX_MEM     64
#define BOOTINFO_MAX_MODULES 16

/* E820 types */
#define E820_RAM       1
#define E820_RESERVED  2
#define E820_ACPI      3
#define E820_NVS       4
#define E820_UNUSABLE  5

struct bootinfo_mem {
    uint64_t base;
    uint64_t len;
    uint32_t type;          /* E820_* */
};

struct bootinfo_module {
    uint64_t addr;          /* physical */
    uint64_t size;          /* bytes */
    const char *cmdline;    /* never NULL ("" if none) */
};

struct bootinfo {
    uint32_t protocol;      /* BOOT_PROTO_* (config.h) */
    uint32_t info_addr;     /* physical address of the loader's structure (EBX) */
    bool valid;             /* magic/structure recognized */
    uint32_t pvh_version;   /* PVH: hvm_start_info.version */
    uint32_t mb_flags;      /* multiboot: info flags */
    uint32_t mem_lower_kb;  /* multiboot: mem_lower/mem_upper (if flags bit 0) */
    uint32_t mem_upper_kb;
    const char *cmdline;    /* never NULL */
    const char *loader_name;/* multiboot boot_loader_name, or NULL */
    uint64_t rsdp;          /* PVH rsdp_paddr, 0 if not given */
    unsigned nr_mem;
    bool mem_synthesized;   /* multiboot without mmap: built from mem_lower/upper */
    struct bootinfo_mem mem[BOOTINFO_MAX_MEM];
    unsigned nr_modules;    /* how many are in modules[] */
    unsigned nr_modules_total;  /* how many the loader passed */
    struct bootinfo_module modules[BOOTINFO_MAX_MODULES];
};

/* Parses on first call (BSP, before APs start), then returns the same struct. */
const struct bootinfo *bootinfo(void);

/* Sum of the lengths of E820_RAM entries. */
uint64_t bootinfo_ram_total(void);
/* Is [addr, addr+len) entirely inside one E820_RAM entry? true if no map. */
bool bootinfo_is_ram(uint64_t addr, uint64_t len);
/* Is the 4 KiB page at pa RAM that neither the boot information nor a
 * module occupies (free for a guest's own trampolines)? */
bool bootinfo_page_is_free(uint32_t pa);
const char *e820_type_name(uint32_t type);

/*
 * Command-line helpers: the command line is split at spaces into words;
 * "key=value" words are looked up by key.  (Multiboot loaders put the kernel
 * path first; it is just another word.)
 */
bool cmdline_has(const char *word);     /* a bare word or a key with any value */
/* Copies the value of key= into buf; false if absent. */
bool cmdline_get(const char *key, char *buf, size_t size);
/* Value parsed with strtoull(base); def if absent or not a number. */
uint64_t cmdline_get_u64(const char *key, int base, uint64_t def);

#endif
