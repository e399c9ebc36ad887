/* SPDX-License-Identifier: BSD-2-Clause */
#include "delay.h"
#include "io.h"

static uint64_t khz;
static const char *khz_source;

struct pvclock_vcpu_time_info {
    uint32_t version;
    uint32_t pad0;
    uint64_t tsc_timestamp;
    uint64_t system_time;
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags;
    uint8_t pad[2];
} __attribute__((packed));

static struct pvclock_vcpu_time_info pvclock __attribute__((aligned(64)));

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define MSR_KVM_SYSTEM_TIME     0x12
#define KVM_FEATURE_CLOCKSOURCE  (1u << 0)
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)

static uint64_t hv_max_leaf(bool *is_kvm)
{
    uint32_t a, b, c, d;

    cpuid(1, NULL, NULL, &c, NULL);
    if (!(c & (1u << 31)))
        return 0;
    cpuid(0x40000000, &a, &b, &c, &d);
    *is_kvm = b == 0x4b4d564b && c == 0x564b4d56 && d == 0x4d;
    return a;
}

static uint64_t from_kvmclock(uint32_t max_leaf, bool is_kvm)
{
    uint32_t feat, msr;
    uint64_t k;

    if (!is_kvm || max_leaf < 0x40000001)
        return 0;
    cpuid(0x40000001, &feat, NULL, NULL, NULL);
    if (feat & KVM_FEATURE_CLOCKSOURCE2)
        msr = MSR_KVM_SYSTEM_TIME_NEW;
    else if (feat & KVM_FEATURE_CLOCKSOURCE)
        msr = MSR_KVM_SYSTEM_TIME;
    else
        return 0;
    pvclock.tsc_to_system_mul = 0;
    wrmsr(msr, (uint64_t)(uintptr_t)&pvclock | 1);
    barrier();
    uint32_t mul = *(volatile uint32_t *)&pvclock.tsc_to_system_mul;
    int8_t shift = *(volatile int8_t *)&pvclock.tsc_shift;
    wrmsr(msr, 0);
    if (!mul)
        return 0;
    k = (1000000ull << 32) / mul;
    if (shift < 0)
        k <<= -shift;
    else
        k >>= shift;
    return k;
}

static uint64_t from_pit(void)
{
    const uint16_t latch = 11932;   /* 10 ms at 1.193182 MHz */
    uint64_t t0, t1;
    uint32_t loops = 0;

    outb(0x61, (inb(0x61) & ~0x02) | 0x01);  /* gate channel 2 on, speaker off */
    outb(0x43, 0xb0);                         /* ch2, lo/hi, mode 0, binary */
    outb(0x42, latch & 0xff);
    outb(0x42, latch >> 8);
    t0 = rdtsc();
    /* Bounded both ways: each poll is a port exit (microseconds), and a
     * missing PIT must not cost more than ~1e9 cycles. */
    while (!(inb(0x61) & 0x20)) {
        if (++loops > 200000 || rdtsc() - t0 > 1000000000ull)
            return 0;
    }
    t1 = rdtsc();
    if (loops < 2)          /* OUT2 was high at once: no PIT */
        return 0;
    return (t1 - t0) / 10;
}

uint64_t tsc_khz(void)
{
    uint32_t a, b, c, d, max;
    bool is_kvm = false;
    uint64_t hvmax, k;

    if (khz)
        return khz;
    hvmax = hv_max_leaf(&is_kvm);
    if (hvmax >= 0x40000010) {
        cpuid(0x40000010, &a, NULL, NULL, NULL);
        if (a) {
            khz_source = "cpuid-40000010";
            return khz = a;
        }
    }
    k = from_kvmclock(hvmax, is_kvm);
    if (k > 1000) {
        khz_source = "kvmclock";
        return khz = k;
    }
    cpuid(0, &max, NULL, NULL, NULL);
    if (max >= 0x15) {
        cpuid(0x15, &a, &b, &c, &d);
        if (a && b && c) {
            khz_source = "cpuid-15";
            return khz = (uint64_t)c * b / a / 1000;
        }
    }
    if (max >= 0x16) {
        cpuid(0x16, &a, NULL, NULL, NULL);
        if (a) {
            khz_source = "cpuid-16";
            return khz = (uint64_t)a * 1000;
        }
    }
    k = from_pit();
    if (k > 100000) {
        khz_source = "pit";
        return khz = k;
    }
    khz_source = "assumed";
    return khz = 2000000;
}

const char *tsc_khz_source(void)
{
    tsc_khz();
    return khz_source;
}

void udelay(uint64_t us)
{
    uint64_t end = rdtsc() + us * tsc_khz() / 1000;

    while ((int64_t)(rdtsc() - end) < 0)
        cpu_relax();
}

void mdelay(uint64_t ms)
{
    udelay(ms * 1000);
}

uint64_t timeout_start(uint64_t ms)
{
    return rdtsc() + ms * tsc_khz();
}

bool timeout_expired(uint64_t deadline)
{
    return (int64_t)(rdtsc() - deadline) >= 0;
}

uint64_t tsc_to_us(uint64_t cycles)
{
    return cycles * 1000 / tsc_khz();
}
