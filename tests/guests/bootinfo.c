/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Prints what the loader handed over (memory map, command line, modules,
 * RSDP) and what fw_cfg says.  Output (one item per line):
 *   BOOT: protocol=<pvh|multiboot|unknown> info=0x<addr> valid=<0|1> [pvh_version=<n>] [mb_flags=0x<hex>] [loader=<name>]
 *   E820 base=0x<16 hex> len=0x<16 hex> type=<n> (<name>)
 *   CMDLINE: <command line>
 *   MODULES: <count>
 *   MODULE <i>: addr=0x<hex> size=<bytes> sum=0x<8 hex> crc32=0x<8 hex> head=<hex of first 16 bytes> cmdline=<module cmdline>
 *   RAM: total=<bytes> (<MiB> MiB)
 *   RSDP: 0x<hex> (from boot info) | RSDP: none (from boot info)
 *   UNCLAIMED: inb=0x.. inw=0x.... inl=0x........   (reads of unclaimed port 0x5a0)
 *   HYPERVISOR: signature=<CPUID 0x40000000> max_leaf=0x.. features=0x..
 *   FWCFG: signature=QEMU ram=<bytes> cpus=<n> max_cpus=<n>  |  FWCFG: absent (signature=<4 bytes hex>)
 *   PASS
 */
#include "guest.h"

int main(void)
{
    const struct bootinfo *b = bootinfo();
    char sig[5];

    printf("BOOT: protocol=%s info=0x%x valid=%d", boot_protocol_name(), b->info_addr, b->valid);
    if (b->protocol == BOOT_PROTO_PVH)
        printf(" pvh_version=%u", b->pvh_version);
    if (b->protocol == BOOT_PROTO_MULTIBOOT)
        printf(" mb_flags=0x%x mem_lower=%uK mem_upper=%uK", b->mb_flags, b->mem_lower_kb,
               b->mem_upper_kb);
    if (b->loader_name)
        printf(" loader=%s", b->loader_name);
    printf("\n");

    for (unsigned i = 0; i < b->nr_mem; i++)
        printf("E820 base=0x%016lx len=0x%016lx type=%u (%s)\n", b->mem[i].base, b->mem[i].len,
               b->mem[i].type, e820_type_name(b->mem[i].type));
    printf("CMDLINE: %s\n", b->cmdline);
    printf("MODULES: %u\n", b->nr_modules_total);
    for (unsigned i = 0; i < b->nr_modules; i++) {
        const struct bootinfo_module *m = &b->modules[i];
        char head[40];
        unsigned n = m->size < 16 ? (unsigned)m->size : 16;
        const uint8_t *p = phys_to_ptr(m->addr);
        uint32_t sum = 0, crc = 0;

        if (m->addr + m->size <= 0x100000000ull) {
            sum = byte_sum32(p, m->size);
            crc = crc32(0, p, m->size);
            for (unsigned j = 0; j < n; j++)
                snprintf(head + 2 * j, 3, "%02x", p[j]);
        } else {
            n = 0;
        }
        head[2 * n] = 0;
        printf("MODULE %u: addr=0x%lx size=%lu sum=0x%08x crc32=0x%08x head=%s cmdline=%s\n", i,
               m->addr, m->size, sum, crc, head, m->cmdline);
    }
    uint64_t ram = bootinfo_ram_total();
    printf("RAM: total=%lu (%lu MiB)\n", ram, ram >> 20);
    if (b->rsdp)
        printf("RSDP: 0x%lx (from boot info)\n", b->rsdp);
    else
        printf("RSDP: none (from boot info)\n");

    fwcfg_signature(sig);
    if (!memcmp(sig, "QEMU", 4))
        printf("FWCFG: signature=%s ram=%lu cpus=%u max_cpus=%u\n", sig, fwcfg_ram_size(),
               fwcfg_nb_cpus(), fwcfg_max_cpus());
    else
        printf("FWCFG: absent (signature=%02x%02x%02x%02x)\n", (uint8_t)sig[0], (uint8_t)sig[1],
               (uint8_t)sig[2], (uint8_t)sig[3]);
    /* Nothing answers port 0x5a0: reads float high, as on real hardware. */
    printf("UNCLAIMED: inb=0x%x inw=0x%x inl=0x%x\n", inb(0x5a0), inw(0x5a0), inl(0x5a0));
    uint32_t eax, ebx, ecx, edx;
    cpuid(0x40000000, &eax, &ebx, &ecx, &edx);
    char hv[13];
    memcpy(hv, &ebx, 4);
    memcpy(hv + 4, &ecx, 4);
    memcpy(hv + 8, &edx, 4);
    hv[12] = '\0';
    for (int i = 0; i < 12; i++)
        if (hv[i] < 0x20 || hv[i] > 0x7e)
            hv[i] = hv[i] ? '?' : '\0';
    uint32_t features = 0;
    if (eax >= 0x40000001) {
        uint32_t b2, c2, d2;
        cpuid(0x40000001, &features, &b2, &c2, &d2);
    }
    printf("HYPERVISOR: signature=%s max_leaf=0x%x features=0x%x\n", hv, eax, features);
    if (!b->valid)
        test_fail("no valid boot information (protocol=%s, info=0x%x)", boot_protocol_name(),
                  b->info_addr);
    return 0;
}
