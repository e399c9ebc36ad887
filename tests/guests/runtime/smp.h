/* SPDX-License-Identifier: BSD-2-Clause */
/* Local APIC and application-processor start-up (INIT-SIPI-SIPI). */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include <stdint.h>
#include <stdbool.h>
#include "config.h"

#define LAPIC_DEFAULT_BASE 0xfee00000u
#define LAPIC_ID    0x020
#define LAPIC_VER   0x030
#define LAPIC_EOI   0x0b0
#define LAPIC_SVR   0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310

uint64_t lapic_base(void);              /* from IA32_APIC_BASE */
bool lapic_x2apic_mode(void);
uint32_t lapic_read(uint32_t reg);      /* xAPIC MMIO, or the x2APIC MSR in x2APIC mode */
void lapic_write(uint32_t reg, uint32_t val);
/* Sets the software-enable bit with spurious vector 0xff. */
void lapic_enable(void);
/* Sends an IPI: dest APIC ID, ICR low word; waits for delivery. */
void lapic_send_ipi(uint32_t dest, uint32_t icr_lo);

/* This CPU's APIC ID: CPUID 0xB EDX (x2APIC ID) if leaf 0xB exists, else
 * CPUID 1 EBX[31:24]. */
uint32_t this_apic_id(void);

/*
 * The CPUs the platform describes: the MADT's enabled (or online-capable)
 * processors, else the MP table's enabled processors, else fw_cfg's CPU
 * count (APIC IDs assumed 0..n-1), else just this CPU.  *source is "madt",
 * "mptable", "fwcfg" or "self".  (MADT first because SeaBIOS's MP table
 * lists only one CPU per package.)
 */
unsigned smp_cpu_list(uint32_t *apic_ids, unsigned max, const char **source);

typedef void (*ap_fn_t)(uint32_t apic_id);

/*
 * Starts every CPU of smp_cpu_list() except this one, one at a time, with
 * INIT-SIPI-SIPI; the real-mode trampoline goes to a free RAM page below
 * 1 MiB (0x8000 preferred).  Each AP enters long mode on the BSP's page
 * tables with its own stack and calls fn(apic_id) (fn may be NULL), then
 * halts with cli; hlt.  Waits up to timeout_ms for each AP to check in; an AP
 * that does not prints "SMP: AP <id> did not start".  Without MP/MADT tables
 * (fw_cfg count only) it broadcasts the IPIs instead.
 * Returns the number of APs that checked in.  Call once.
 */
unsigned smp_start_aps(ap_fn_t fn, uint32_t timeout_ms);
/* Waits until n APs have returned from fn; false on timeout. */
bool smp_wait_aps_done(unsigned n, uint32_t timeout_ms);
/* CPUs online: 1 + APs checked in. */
unsigned smp_cpus_online(void);
/* APIC ID of CPU index i (0 = BSP), as recorded at check-in. */
uint32_t smp_cpu_apic_id(unsigned index);
/* Where the trampoline was put (0 before smp_start_aps). */
uint32_t smp_trampoline_addr(void);

/* Called by ap.S */
void smp_ap_entry(unsigned index);

#endif
