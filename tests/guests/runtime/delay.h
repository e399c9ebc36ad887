/* SPDX-License-Identifier: BSD-2-Clause */
/* TSC-based delays and timeouts. */
#ifndef GUEST_DELAY_H
#define GUEST_DELAY_H

#include <stdint.h>
#include <stdbool.h>

/*
 * TSC frequency in kHz, determined once: CPUID 0x40000010 (hypervisor timing
 * leaf), kvmclock (MSR 0x4b564d01), CPUID 0x15, CPUID 0x16, then a 10 ms PIT
 * channel-2 calibration; if all fail, 2 GHz is assumed.
 */
uint64_t tsc_khz(void);
/* Which of the above gave tsc_khz(): "cpuid-40000010", "kvmclock", "cpuid-15",
 * "cpuid-16", "pit", "assumed". */
const char *tsc_khz_source(void);

void udelay(uint64_t us);
void mdelay(uint64_t ms);

/* deadline = timeout_start(ms); while (!timeout_expired(deadline)) ... */
uint64_t timeout_start(uint64_t ms);
bool timeout_expired(uint64_t deadline);

uint64_t tsc_to_us(uint64_t cycles);

#endif
