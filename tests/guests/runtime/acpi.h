/* SPDX-License-Identifier: BSD-2-Clause */
/* Minimal ACPI: RSDP, RSDT/XSDT walk, FADT and MADT. */
#ifndef GUEST_ACPI_H
#define GUEST_ACPI_H

#include <stdint.h>
#include <stdbool.h>

struct acpi_header {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    uint32_t creator_id;
    uint32_t creator_revision;
} __attribute__((packed));

struct acpi_gas {
    uint8_t space_id;       /* 0 memory, 1 I/O */
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;
    uint64_t address;
} __attribute__((packed));

#define ACPI_MAX_TABLES 32

struct acpi_table_ref {
    char sig[5];
    uint64_t addr;
    uint32_t length;
    bool checksum_ok;
};

struct acpi_info {
    bool found;             /* a valid RSDP */
    uint64_t rsdp;
    const char *rsdp_source;/* "bootinfo", "ebda", "bios" */
    uint8_t revision;       /* RSDP revision */
    char oem_id[7];
    uint64_t root;          /* RSDT or XSDT address */
    bool xsdt;
    bool root_checksum_ok;
    unsigned nr_tables;     /* entries of the root table (valid ones + DSDT/FACS from FADT) */
    struct acpi_table_ref tables[ACPI_MAX_TABLES];
    uint64_t fadt, madt, dsdt;
    uint32_t pm1a_cnt;      /* FADT PM1a_CNT_BLK (I/O port), 0 if none */
    uint32_t pm1b_cnt;
    bool hw_reduced;        /* FADT flags bit 20 */
    struct acpi_gas sleep_control;  /* FADT SLEEP_CONTROL_REG (hw-reduced) */
    uint32_t lapic_addr;    /* from the MADT */
};

/* RSDP physical address: from the boot info if given (and valid), else the
 * first KiB of the EBDA, else 0xE0000-0xFFFFF; 0 if none. */
uint64_t acpi_find_rsdp(const char **source);
/* Walks everything once and caches it. */
const struct acpi_info *acpi_get(void);
/* A table by signature (checksum-valid only), or NULL. */
const struct acpi_header *acpi_find_table(const char sig[4]);
bool acpi_checksum_ok(const void *p, uint32_t len);
/* MADT processor entries (local APIC type 0 and x2APIC type 9) that are
 * enabled or online-capable; returns how many (up to max are stored). */
unsigned acpi_madt_cpus(uint32_t *apic_ids, unsigned max);
/* SLP_TYPa of \_S5_ found by scanning the DSDT AML; -1 if not found. */
int acpi_s5_slp_typ(void);
/* Tries an ACPI S5 soft-off; returns only if still alive (after ~100 ms).
 * slp_typ < 0: use the DSDT's _S5_, else 5.  Prints what it does. */
void acpi_poweroff(int slp_typ);

#endif
