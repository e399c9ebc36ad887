/* SPDX-License-Identifier: BSD-2-Clause */
#include "smp.h"
#include "acpi.h"
#include "bootinfo.h"
#include "delay.h"
#include "fwcfg.h"
#include "io.h"
#include "lib.h"
#include "mptable.h"
#include "printf.h"

#define MSR_APIC_BASE 0x1b
#define APIC_BASE_ENABLE (1u << 11)
#define APIC_BASE_X2APIC (1u << 10)

extern char ap_trampoline_start[], ap_trampoline_end[];
extern volatile uint32_t ap_next_index;

static ap_fn_t ap_fn;
static volatile uint32_t checked_in;
static volatile uint32_t aps_done;
static volatile uint32_t cpu_apic[MAX_CPUS];
static uint32_t tramp_addr;

uint64_t lapic_base(void)
{
    return rdmsr(MSR_APIC_BASE) & 0xffffff000ull;
}

bool lapic_x2apic_mode(void)
{
    return rdmsr(MSR_APIC_BASE) & APIC_BASE_X2APIC;
}

uint32_t lapic_read(uint32_t reg)
{
    if (lapic_x2apic_mode())
        return (uint32_t)rdmsr(0x800 + (reg >> 4));
    return readl(lapic_base() + reg);
}

void lapic_write(uint32_t reg, uint32_t val)
{
    if (lapic_x2apic_mode())
        wrmsr(0x800 + (reg >> 4), val);
    else
        writel(lapic_base() + reg, val);
}

void lapic_enable(void)
{
    uint64_t msr = rdmsr(MSR_APIC_BASE);

    if (!(msr & APIC_BASE_ENABLE))
        wrmsr(MSR_APIC_BASE, msr | APIC_BASE_ENABLE);
    lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x1ff);
}

void lapic_send_ipi(uint32_t dest, uint32_t icr_lo)
{
    if (lapic_x2apic_mode()) {
        wrmsr(0x830, (uint64_t)dest << 32 | icr_lo);
        return;
    }
    uintptr_t b = lapic_base();
    writel(b + LAPIC_ICR_HI, dest << 24);
    writel(b + LAPIC_ICR_LO, icr_lo);
    for (uint32_t i = 0; i < 100000 && (readl(b + LAPIC_ICR_LO) & (1u << 12)); i++)
        cpu_relax();
}

uint32_t this_apic_id(void)
{
    uint32_t max, b, d;

    cpuid(0, &max, NULL, NULL, NULL);
    if (max >= 0xb) {
        cpuid_count(0xb, 0, NULL, &b, NULL, &d);
        if (b & 0xffff)
            return d;
    }
    cpuid(1, NULL, &b, NULL, NULL);
    return b >> 24;
}

unsigned smp_cpu_list(uint32_t *ids, unsigned max, const char **source)
{
    const struct mptable_info *mp;
    unsigned n;

    /* The MADT first: SeaBIOS's MP table lists one CPU per package only. */
    n = acpi_madt_cpus(ids, max);
    if (n) {
        *source = "madt";
        return MIN(n, max);
    }
    mp = mptable_get();
    if (mp->table_ok && mp->nr_cpus) {
        n = MIN(mp->nr_cpus, (unsigned)MPTABLE_MAX_CPUS);
        for (unsigned i = 0; i < n && i < max; i++)
            ids[i] = mp->apic_ids[i];
        *source = "mptable";
        return MIN(n, max);
    }
    if (fwcfg_present() && (n = fwcfg_nb_cpus()) > 0) {
        n = MIN(n, max);
        for (unsigned i = 0; i < n; i++)
            ids[i] = i;
        *source = "fwcfg";
        return n;
    }
    ids[0] = this_apic_id();
    *source = "self";
    return 1;
}

static uint32_t pick_trampoline(void)
{
    if (bootinfo_page_is_free(0x8000))
        return 0x8000;
    for (uint32_t pa = 0x9000; pa < 0x9f000; pa += 0x1000)
        if (bootinfo_page_is_free(pa))
            return pa;
    for (uint32_t pa = 0x1000; pa < 0x8000; pa += 0x1000)
        if (bootinfo_page_is_free(pa))
            return pa;
    return 0x8000;
}

void smp_ap_entry(unsigned index)
{
    uint32_t id = this_apic_id();

    cpu_apic[index] = id;
    __atomic_add_fetch(&checked_in, 1, __ATOMIC_SEQ_CST);
    if (ap_fn)
        ap_fn(id);
    __atomic_add_fetch(&aps_done, 1, __ATOMIC_SEQ_CST);
    halt_forever();
}

static bool wait_checked_in(uint32_t target, uint64_t deadline)
{
    while (__atomic_load_n(&checked_in, __ATOMIC_ACQUIRE) < target) {
        if (timeout_expired(deadline))
            return false;
        cpu_relax();
    }
    return true;
}

unsigned smp_start_aps(ap_fn_t fn, uint32_t timeout_ms)
{
    uint32_t ids[MAX_CPUS];
    const char *src;
    unsigned n = smp_cpu_list(ids, MAX_CPUS, &src);
    uint32_t self = this_apic_id();
    size_t tsize = (size_t)(ap_trampoline_end - ap_trampoline_start);
    uint32_t vector;
    bool hv;
    uint32_t c;

    ap_fn = fn;
    cpu_apic[0] = self;
    if (n <= 1)
        return 0;
    tramp_addr = pick_trampoline();
    memcpy(phys_to_ptr(tramp_addr), ap_trampoline_start, tsize);
    vector = tramp_addr >> 12;
    cpuid(1, NULL, NULL, &c, NULL);
    hv = c & (1u << 31);
    lapic_enable();

    if (!strcmp(src, "fwcfg")) {
        /* No table to name the APs: broadcast to all excluding self. */
        lapic_send_ipi(0, 0x000c4500);              /* INIT, assert, all-but-self */
        mdelay(hv ? 1 : 10);
        for (int i = 0; i < 2; i++) {
            lapic_send_ipi(0, 0x000c4600 | vector);  /* SIPI, all-but-self */
            udelay(200);
        }
        wait_checked_in(n - 1, timeout_start(timeout_ms));
        return checked_in;
    }

    for (unsigned i = 0; i < n; i++) {
        uint32_t before = checked_in;

        if (ids[i] == self)
            continue;
        if (before + 1 >= MAX_CPUS) {
            printf("SMP: AP %u not started: more than %u CPUs\n", ids[i], MAX_CPUS);
            continue;
        }
        lapic_send_ipi(ids[i], 0x0000c500);         /* INIT, level assert */
        lapic_send_ipi(ids[i], 0x00008500);         /* INIT, level de-assert */
        mdelay(hv ? 1 : 10);
        for (int s = 0; s < 2; s++) {
            lapic_send_ipi(ids[i], 0x00004600 | vector);     /* STARTUP */
            if (wait_checked_in(before + 1, timeout_start(1)))
                break;
        }
        if (!wait_checked_in(before + 1, timeout_start(timeout_ms)))
            printf("SMP: AP %u did not start\n", ids[i]);
    }
    return checked_in;
}

bool smp_wait_aps_done(unsigned n, uint32_t timeout_ms)
{
    uint64_t deadline = timeout_start(timeout_ms);

    while (__atomic_load_n(&aps_done, __ATOMIC_ACQUIRE) < n) {
        if (timeout_expired(deadline))
            return false;
        cpu_relax();
    }
    return true;
}

unsigned smp_cpus_online(void)
{
    return 1 + checked_in;
}

uint32_t smp_cpu_apic_id(unsigned index)
{
    return index < MAX_CPUS ? cpu_apic[index] : 0;
}

uint32_t smp_trampoline_addr(void)
{
    return tramp_addr;
}
