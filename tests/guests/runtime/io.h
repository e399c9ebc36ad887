/* SPDX-License-Identifier: BSD-2-Clause */
/* Port I/O, MMIO and CPU-instruction helpers. */
#ifndef GUEST_IO_H
#define GUEST_IO_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
    return v;
}

static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
    return v;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
    return v;
}

/* MMIO: physical == virtual (identity map), 3-4 GiB is uncached. */
static inline uint8_t readb(uintptr_t addr) { return *(volatile uint8_t *)addr; }
static inline uint16_t readw(uintptr_t addr) { return *(volatile uint16_t *)addr; }
static inline uint32_t readl(uintptr_t addr) { return *(volatile uint32_t *)addr; }
static inline uint64_t readq(uintptr_t addr) { return *(volatile uint64_t *)addr; }
static inline void writeb(uintptr_t addr, uint8_t v) { *(volatile uint8_t *)addr = v; }
static inline void writew(uintptr_t addr, uint16_t v) { *(volatile uint16_t *)addr = v; }
static inline void writel(uintptr_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }
static inline void writeq(uintptr_t addr, uint64_t v) { *(volatile uint64_t *)addr = v; }

/* Physical address -> pointer (identity mapped below 4 GiB).  The empty asm
 * hides the constant from gcc, which otherwise warns (-Warray-bounds) about
 * dereferencing small constant addresses such as the BDA's 0x40e. */
static inline void *phys_to_ptr(uint64_t pa)
{
    uintptr_t p = (uintptr_t)pa;
    __asm__("" : "+r"(p));
    return (void *)p;
}

static inline void cpuid_count(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b,
                               uint32_t *c, uint32_t *d)
{
    uint32_t ra, rb, rc, rd;
    __asm__ volatile("cpuid" : "=a"(ra), "=b"(rb), "=c"(rc), "=d"(rd) : "a"(leaf), "c"(sub));
    if (a) *a = ra;
    if (b) *b = rb;
    if (c) *c = rc;
    if (d) *d = rd;
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
    cpuid_count(leaf, 0, a, b, c, d);
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void) { __asm__ volatile("pause" : : : "memory"); }
static inline void barrier(void) { __asm__ volatile("" : : : "memory"); }
static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }
static inline void sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" : : : "memory"); }

/* cli; hlt forever (an NMI or SMI would only loop back to hlt). */
static inline __attribute__((__noreturn__)) void halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt" : : : "memory");
}

static inline uint64_t read_cr0(void) { uint64_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr2(void) { uint64_t v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr3(void) { uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr4(void) { uint64_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }

struct __attribute__((packed)) desc_ptr {
    uint16_t limit;
    uint64_t base;
};

static inline void lidt(const struct desc_ptr *d)
{
    __asm__ volatile("lidt %0" : : "m"(*d) : "memory");
}

#endif
