/* SPDX-License-Identifier: BSD-2-Clause */
#include "bootinfo.h"
#include "config.h"
#include "io.h"
#include "lib.h"
#include "runtime.h"

struct hvm_start_info {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;      /* version >= 1 */
    uint32_t memmap_entries;
    uint32_t reserved;
};

struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};

struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower;
    uint32_t mem_upper;
    uint32_t boot_device;
    uint32_t cmdline;
    uint32_t mods_count;
    uint32_t mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length;
    uint32_t mmap_addr;
    uint32_t drives_length;
    uint32_t drives_addr;
    uint32_t config_table;
    uint32_t boot_loader_name;
};

struct multiboot_mod {
    uint32_t mod_start;
    uint32_t mod_end;
    uint32_t string;
    uint32_t reserved;
};

struct multiboot_mmap {
    uint32_t size;              /* of the rest of the entry */
    uint64_t addr;
    uint64_t len;
    uint32_t type;
} __attribute__((packed));

#define MB_INFO_MEMORY   (1u << 0)
#define MB_INFO_CMDLINE  (1u << 2)
#define MB_INFO_MODS     (1u << 3)
#define MB_INFO_MMAP     (1u << 6)
#define MB_INFO_LOADER   (1u << 9)

static struct bootinfo bi;
static bool parsed;
static char strpool[4096];
static size_t strpool_used;

/* Copies a string from guest-physical memory into the pool (bounded). */
static const char *save_string(uint64_t pa)
{
    const char *src;
    size_t room, n;
    char *dst;

    if (!pa || pa >= 0x100000000ull)
        return "";
    src = phys_to_ptr(pa);
    room = sizeof(strpool) - strpool_used;
    if (room < 2)
        return "";
    n = strnlen(src, room - 1);
    dst = strpool + strpool_used;
    memcpy(dst, src, n);
    dst[n] = 0;
    strpool_used += n + 1;
    return dst;
}

static void add_mem(uint64_t base, uint64_t len, uint32_t type)
{
    if (bi.nr_mem < BOOTINFO_MAX_MEM) {
        bi.mem[bi.nr_mem].base = base;
        bi.mem[bi.nr_mem].len = len;
        bi.mem[bi.nr_mem].type = type;
        bi.nr_mem++;
    }
}

static void add_module(uint64_t addr, uint64_t size, uint64_t cmdline_pa)
{
    bi.nr_modules_total++;
    if (bi.nr_modules < BOOTINFO_MAX_MODULES) {
        bi.modules[bi.nr_modules].addr = addr;
        bi.modules[bi.nr_modules].size = size;
        bi.modules[bi.nr_modules].cmdline = save_string(cmdline_pa);
        bi.nr_modules++;
    }
}

static void parse_pvh(const struct hvm_start_info *si)
{
    if (si->magic != PVH_START_MAGIC)
        return;
    bi.valid = true;
    bi.pvh_version = si->version;
    bi.cmdline = save_string(si->cmdline_paddr);
    bi.rsdp = si->rsdp_paddr;
    if (si->modlist_paddr && si->modlist_paddr < 0x100000000ull) {
        const struct hvm_modlist_entry *m = phys_to_ptr(si->modlist_paddr);
        for (uint32_t i = 0; i < si->nr_modules && i < 256; i++)
            add_module(m[i].paddr, m[i].size, m[i].cmdline_paddr);
    }
    if (si->version >= 1 && si->memmap_paddr && si->memmap_paddr < 0x100000000ull) {
        const struct hvm_memmap_table_entry *e = phys_to_ptr(si->memmap_paddr);
        for (uint32_t i = 0; i < si->memmap_entries; i++)
            add_mem(e[i].addr, e[i].size, e[i].type);
    }
}

static void parse_multiboot(const struct multiboot_info *mi)
{
    bi.valid = true;
    bi.mb_flags = mi->flags;
    if (mi->flags & MB_INFO_MEMORY) {
        bi.mem_lower_kb = mi->mem_lower;
        bi.mem_upper_kb = mi->mem_upper;
    }
    if (mi->flags & MB_INFO_CMDLINE)
        bi.cmdline = save_string(mi->cmdline);
    if (mi->flags & MB_INFO_LOADER)
        bi.loader_name = save_string(mi->boot_loader_name);
    if ((mi->flags & MB_INFO_MODS) && mi->mods_addr) {
        const struct multiboot_mod *m = phys_to_ptr(mi->mods_addr);
        for (uint32_t i = 0; i < mi->mods_count && i < 256; i++)
            add_module(m[i].mod_start, m[i].mod_end - m[i].mod_start, m[i].string);
    }
    if ((mi->flags & MB_INFO_MMAP) && mi->mmap_addr) {
        uint32_t off = 0;
        while (off + sizeof(struct multiboot_mmap) <= mi->mmap_length) {
            const struct multiboot_mmap *e = phys_to_ptr((uint64_t)mi->mmap_addr + off);
            add_mem(e->addr, e->len, e->type);
            if (e->size < 20)
                break;
            off += e->size + 4;
        }
    } else if (mi->flags & MB_INFO_MEMORY) {
        bi.mem_synthesized = true;
        add_mem(0, (uint64_t)mi->mem_lower * 1024, E820_RAM);
        add_mem(0x100000, (uint64_t)mi->mem_upper * 1024, E820_RAM);
    }
}

const struct bootinfo *bootinfo(void)
{
    if (parsed)
        return &bi;
    parsed = true;
    bi.protocol = boot_protocol;
    bi.info_addr = boot_info_addr;
    bi.cmdline = "";
    if (boot_info_addr) {
        if (boot_protocol == BOOT_PROTO_PVH)
            parse_pvh(phys_to_ptr(boot_info_addr));
        else if (boot_protocol == BOOT_PROTO_MULTIBOOT)
            parse_multiboot(phys_to_ptr(boot_info_addr));
    }
    return &bi;
}

uint64_t bootinfo_ram_total(void)
{
    const struct bootinfo *b = bootinfo();
    uint64_t t = 0;

    for (unsigned i = 0; i < b->nr_mem; i++)
        if (b->mem[i].type == E820_RAM)
            t += b->mem[i].len;
    return t;
}

bool bootinfo_is_ram(uint64_t addr, uint64_t len)
{
    const struct bootinfo *b = bootinfo();

    if (!b->nr_mem)
        return true;
    for (unsigned i = 0; i < b->nr_mem; i++)
        if (b->mem[i].type == E820_RAM && addr >= b->mem[i].base &&
            addr + len <= b->mem[i].base + b->mem[i].len)
            return true;
    return false;
}

bool bootinfo_page_is_free(uint32_t pa)
{
    const struct bootinfo *b = bootinfo();

    if (!bootinfo_is_ram(pa, 4096))
        return false;
    if (b->info_addr && b->info_addr < pa + 4096 && b->info_addr + 4096 > pa)
        return false;
    for (unsigned i = 0; i < b->nr_modules; i++)
        if (b->modules[i].addr < pa + 4096 && b->modules[i].addr + b->modules[i].size > pa)
            return false;
    return true;
}

const char *e820_type_name(uint32_t type)
{
    switch (type) {
    case E820_RAM: return "ram";
    case E820_RESERVED: return "reserved";
    case E820_ACPI: return "acpi";
    case E820_NVS: return "nvs";
    case E820_UNUSABLE: return "unusable";
    default: return "other";
    }
}

/* Finds word `key` (ending at '=', ' ' or end); returns pointer to it. */
static const char *find_word(const char *key, bool need_value)
{
    const char *s = bootinfo()->cmdline;
    size_t kl = strlen(key);

    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        if (!strncmp(s, key, kl)) {
            char end = s[kl];
            if (end == '=' || (!need_value && (end == 0 || end == ' ' || end == '\t')))
                return s;
        }
        while (*s && *s != ' ' && *s != '\t')
            s++;
    }
    return NULL;
}

bool cmdline_has(const char *word)
{
    return find_word(word, false) != NULL;
}

bool cmdline_get(const char *key, char *buf, size_t size)
{
    const char *s = find_word(key, true);
    size_t n = 0;

    if (!s)
        return false;
    s += strlen(key) + 1;
    while (s[n] && s[n] != ' ' && s[n] != '\t')
        n++;
    if (size) {
        if (n > size - 1)
            n = size - 1;
        memcpy(buf, s, n);
        buf[n] = 0;
    }
    return true;
}

uint64_t cmdline_get_u64(const char *key, int base, uint64_t def)
{
    char buf[32], *end;
    uint64_t v;

    if (!cmdline_get(key, buf, sizeof(buf)) || !buf[0])
        return def;
    v = strtoull(buf, &end, base);
    return *end ? def : v;
}
