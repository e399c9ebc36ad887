/* SPDX-License-Identifier: BSD-2-Clause */
/* Intel MultiProcessor Specification table finder. */
#ifndef GUEST_MPTABLE_H
#define GUEST_MPTABLE_H

#include <stdint.h>
#include <stdbool.h>

#define MPTABLE_MAX_CPUS 64

struct mptable_info {
    bool found;             /* a valid "_MP_" floating pointer */
    uint64_t fp_addr;
    const char *fp_where;   /* "ebda", "basemem" (0x9fc00-0x9ffff) or "bios" (0xf0000-0xfffff) */
    uint8_t spec_rev;       /* 1 = 1.1, 4 = 1.4 */
    uint8_t default_config; /* feature byte 1: nonzero = default configuration, no table */
    uint64_t table_addr;    /* "PCMP" configuration table, 0 if none */
    bool table_ok;          /* signature and checksum good */
    char oem[9], product[13];
    uint32_t lapic_addr;
    unsigned nr_cpus;       /* enabled processor entries */
    uint8_t apic_ids[MPTABLE_MAX_CPUS];
    int bsp_apic_id;        /* -1 if no entry has the BSP flag */
    unsigned nr_ioapics;
};

/* Finds and parses once, then returns the cached result. */
const struct mptable_info *mptable_get(void);

#endif
