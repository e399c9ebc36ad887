/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Counts the CPUs the platform describes (MP table, MADT, fw_cfg), starts
 * every AP with INIT-SIPI-SIPI and reports each CPU's CPUID topology.
 * Output:
 *   MPTABLE: at 0x<addr> (<where>) cpus=<n> ids=<id,id,...> bsp=<id>   |  MPTABLE: none
 *   MADT: cpus=<n> ids=<id,...>                                        |  MADT: none
 *   FWCFG: cpus=<n> max_cpus=<n>                                       |  FWCFG: absent
 *   SMP: expecting <n> CPUs (from <mptable|madt|fwcfg|self>)
 *   BSP <apicid>
 *   TOPO <apicid>: leaf1_apic=<n> leaf1_count=<n> x2apic=<n> smt_shift=<n> core_shift=<n> smt_count=<n> core_count=<n> pkg=<n> core=<n> thread=<n>
 *      (or "TOPO <apicid>: leaf1_apic=<n> leaf1_count=<n> leafB=none")
 *   CPU <apicid> up          (one per AP, each followed by its TOPO line)
 *   CPUS: <n>                (CPUs online, BSP included)
 *   PASS | FAIL: <n> of <m> CPUs came up
 * Lines from different CPUs never interleave within a line; the order of
 * the AP blocks follows start-up order.
 */
#include "guest.h"

static void print_cpu(const char *what, uint32_t apic)
{
    uint32_t max, b, c, d, b1;
    unsigned smt_shift = 0, core_shift = 0, smt_count = 0, core_count = 0;
    bool leafb = false;
    char line[300];
    int n;

    cpuid(0, &max, NULL, NULL, NULL);
    cpuid(1, NULL, &b1, NULL, NULL);
    if (!strcmp(what, "BSP"))
        n = snprintf(line, sizeof(line), "BSP %u\n", apic);
    else
        n = snprintf(line, sizeof(line), "CPU %u up\n", apic);
    n += snprintf(line + n, sizeof(line) - n, "TOPO %u: leaf1_apic=%u leaf1_count=%u", apic, b1 >> 24,
                  (b1 >> 16) & 0xff);
    if (max >= 0xb) {
        uint32_t a;
        cpuid_count(0xb, 0, &a, &b, &c, &d);
        leafb = (b & 0xffff) != 0;
        for (uint32_t sub = 0; leafb && sub < 8; sub++) {
            cpuid_count(0xb, sub, &a, &b, &c, &d);
            unsigned type = (c >> 8) & 0xff;
            if (!type)
                break;
            if (type == 1) {
                smt_shift = a & 0x1f;
                smt_count = b & 0xffff;
            } else if (type == 2) {
                core_shift = a & 0x1f;
                core_count = b & 0xffff;
            }
        }
    }
    if (leafb) {
        unsigned x2 = d;
        unsigned cs = core_shift ? core_shift : smt_shift;
        n += snprintf(line + n, sizeof(line) - n,
                      " x2apic=%u smt_shift=%u core_shift=%u smt_count=%u core_count=%u"
                      " pkg=%u core=%u thread=%u\n",
                      x2, smt_shift, core_shift, smt_count, core_count, x2 >> cs,
                      (x2 >> smt_shift) & ((1u << (cs - smt_shift)) - 1),
                      x2 & ((1u << smt_shift) - 1));
    } else {
        n += snprintf(line + n, sizeof(line) - n, " leafB=none\n");
    }
    console_write(line, (size_t)MIN(n, (int)sizeof(line) - 1));
}

static void ap_main(uint32_t apic)
{
    print_cpu("CPU", apic);
}

static void print_ids(const char *prefix, const uint32_t *ids, unsigned n)
{
    char buf[300];
    int len = snprintf(buf, sizeof(buf), "%s", prefix);

    for (unsigned i = 0; i < n && len < 280; i++)
        len += snprintf(buf + len, sizeof(buf) - len, "%s%u", i ? "," : "", ids[i]);
    printf("%s\n", buf);
}

int main(void)
{
    const struct mptable_info *mp = mptable_get();
    uint32_t ids[MAX_CPUS];
    unsigned n, expected, started;
    const char *src;
    char pfx[128];

    if (mp->table_ok) {
        uint32_t mpids[MPTABLE_MAX_CPUS];
        for (unsigned i = 0; i < mp->nr_cpus && i < MPTABLE_MAX_CPUS; i++)
            mpids[i] = mp->apic_ids[i];
        snprintf(pfx, sizeof(pfx), "MPTABLE: at 0x%lx (%s) bsp=%d cpus=%u ids=", mp->fp_addr,
                 mp->fp_where, mp->bsp_apic_id, mp->nr_cpus);
        print_ids(pfx, mpids, MIN(mp->nr_cpus, (unsigned)MPTABLE_MAX_CPUS));
    } else if (mp->found) {
        printf("MPTABLE: floating pointer at 0x%lx but no valid table (default config %u)\n",
               mp->fp_addr, mp->default_config);
    } else {
        printf("MPTABLE: none\n");
    }
    n = acpi_madt_cpus(ids, MAX_CPUS);
    if (acpi_get()->madt) {
        snprintf(pfx, sizeof(pfx), "MADT: cpus=%u ids=", n);
        print_ids(pfx, ids, MIN(n, (unsigned)MAX_CPUS));
    } else {
        printf("MADT: none\n");
    }
    unsigned fw_cpus = 0;
    if (fwcfg_present()) {
        fw_cpus = fwcfg_nb_cpus();
        printf("FWCFG: cpus=%u max_cpus=%u\n", fw_cpus, fwcfg_max_cpus());
    } else {
        printf("FWCFG: absent\n");
    }

    expected = smp_cpu_list(ids, MAX_CPUS, &src);
    printf("SMP: expecting %u CPUs (from %s)\n", expected, src);
    if (fw_cpus && fw_cpus != expected)
        printf("SMP: WARNING: fw_cfg reports %u CPUs, %s %u\n", fw_cpus, src, expected);

    print_cpu("BSP", this_apic_id());
    started = smp_start_aps(ap_main, 2000);
    if (!smp_wait_aps_done(started, 2000))
        printf("SMP: WARNING: not every AP finished printing\n");
    printf("CPUS: %u\n", 1 + started);
    if (1 + started != expected)
        test_fail("%u of %u CPUs came up", 1 + started, expected);
    return 0;
}
