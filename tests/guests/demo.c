/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A friendly tour of what the guest can see, for a human at the console;
 * then "Press any key to power off." and, on a key from COM1, an ACPI S5
 * soft-off (SLP_TYP from the DSDT's \_S5_, else 5, written with SLP_EN to
 * the FADT's PM1a_CNT_BLK, or to the sleep control register on hardware-
 * reduced ACPI).  If the machine is still alive after that, it leaves
 * through the debug-exit port with code 0.  Waits for the key forever.
 */
#include "guest.h"

static void size_str(char *buf, size_t n, uint64_t bytes)
{
    if (bytes >= (1ull << 30) && !(bytes & ((1ull << 30) - 1)))
        snprintf(buf, n, "%lu GiB", bytes >> 30);
    else if (bytes >= (1ull << 20))
        snprintf(buf, n, "%lu MiB", bytes >> 20);
    else if (bytes >= 1024)
        snprintf(buf, n, "%lu KiB", bytes >> 10);
    else
        snprintf(buf, n, "%lu bytes", bytes);
}

static void show_ids(const char *what, const uint32_t *ids, unsigned n)
{
    printf("  %-10s %u CPU%s (APIC IDs", what, n, n == 1 ? "" : "s");
    for (unsigned i = 0; i < n && i < 16; i++)
        printf("%s%u", i ? ", " : " ", ids[i]);
    printf(")\n");
}

int main(void)
{
    const struct bootinfo *b = bootinfo();
    const struct mptable_info *mp = mptable_get();
    const struct acpi_info *a = acpi_get();
    uint32_t ids[MAX_CPUS];
    char sz[32];
    unsigned n;
    bool fw = fwcfg_present();
    struct rtc_time t;
    int s5;

    printf("\n");
    printf("==========================================================\n");
    printf("  khyve demo guest\n");
    printf("==========================================================\n");
    printf("Booted via %s (boot info at 0x%x)\n", boot_protocol_name(), b->info_addr);
    printf("Command line: \"%s\"\n", b->cmdline);

    printf("\nCPUs:\n");
    n = acpi_madt_cpus(ids, MAX_CPUS);
    if (a->madt)
        show_ids("MADT:", ids, MIN(n, (unsigned)MAX_CPUS));
    else
        printf("  MADT:      none\n");
    if (mp->table_ok) {
        for (unsigned i = 0; i < mp->nr_cpus && i < MAX_CPUS; i++)
            ids[i] = mp->apic_ids[i];
        show_ids("MP table:", ids, MIN(mp->nr_cpus, (unsigned)MAX_CPUS));
    } else {
        printf("  MP table:  none\n");
    }
    if (fw)
        printf("  fw_cfg:    %u CPU%s (max %u)\n", fwcfg_nb_cpus(), fwcfg_nb_cpus() == 1 ? "" : "s",
               fwcfg_max_cpus());
    printf("  this CPU:  APIC ID %u\n", this_apic_id());

    printf("\nMemory map (%s):\n", b->mem_synthesized ? "from mem_lower/mem_upper" : "e820");
    for (unsigned i = 0; i < b->nr_mem; i++) {
        if (!b->mem[i].len)
            continue;
        size_str(sz, sizeof(sz), b->mem[i].len);
        printf("  0x%016lx - 0x%016lx  %-9s %s\n", b->mem[i].base,
               b->mem[i].base + b->mem[i].len - (b->mem[i].len ? 1 : 0),
               e820_type_name(b->mem[i].type), sz);
    }
    size_str(sz, sizeof(sz), bootinfo_ram_total());
    printf("  Total RAM: %s\n", sz);
    if (fw) {
        size_str(sz, sizeof(sz), fwcfg_ram_size());
        printf("  fw_cfg RAM size: %s\n", sz);
    }

    printf("\nModules: %u\n", b->nr_modules_total);
    for (unsigned i = 0; i < b->nr_modules; i++) {
        size_str(sz, sizeof(sz), b->modules[i].size);
        printf("  %u: at 0x%lx, %s, \"%s\"\n", i, b->modules[i].addr, sz, b->modules[i].cmdline);
    }

    printf("\nACPI:\n");
    if (!a->found) {
        printf("  no RSDP found\n");
    } else {
        printf("  RSDP at 0x%lx (found via %s, revision %u, OEM \"%s\")\n", a->rsdp, a->rsdp_source,
               a->revision, a->oem_id);
        printf("  %s at 0x%lx%s\n", a->xsdt ? "XSDT" : "RSDT", a->root,
               a->root_checksum_ok ? "" : " (BAD CHECKSUM)");
        printf("  tables:");
        for (unsigned i = 0; i < a->nr_tables; i++)
            printf(" %s%s", a->tables[i].sig, a->tables[i].checksum_ok ? "" : "(bad checksum)");
        printf("\n");
        if (a->pm1a_cnt)
            printf("  PM1a_CNT_BLK: port 0x%x\n", a->pm1a_cnt);
        if (a->hw_reduced)
            printf("  hardware-reduced ACPI, sleep control register at 0x%lx\n",
                   a->sleep_control.address);
        s5 = acpi_s5_slp_typ();
        if (s5 >= 0)
            printf("  \\_S5_ sleep type: %d\n", s5);
        else
            printf("  \\_S5_ not found in the DSDT (will use 5)\n");
    }

    printf("\nDevices:\n");
    if (fw) {
        size_str(sz, sizeof(sz), fwcfg_ram_size());
        printf("  fw_cfg:    signature \"QEMU\" (RAM %s, %u CPUs)\n", sz, fwcfg_nb_cpus());
    } else {
        printf("  fw_cfg:    not present\n");
    }
    if (!rtc_read(&t))
        printf("  RTC:       %04u-%02u-%02u %02u:%02u:%02u\n", t.year, t.month, t.day, t.hour,
               t.min, t.sec);
    else
        printf("  RTC:       not answering\n");
    printf("  COM1 0x3f8: %s\n", uart_probe(COM1) ? "present" : "absent");
    printf("  COM2 0x2f8: %s\n", uart_probe(COM2) ? "present" : "absent");
    printf("  TSC:       %lu kHz (from %s)\n", tsc_khz(), tsc_khz_source());

    printf("\nPress any key to power off.\n");
    while (!uart_rx_ready(COM1))
        udelay(500);
    int c = inb(COM1);
    printf("Key 0x%02x received, powering off...\n", c & 0xff);
    acpi_poweroff(-1);
    printf("ACPI power-off did not work; leaving through the debug-exit port.\n");
    guest_exit(0);
}
