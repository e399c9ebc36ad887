/* SPDX-License-Identifier: BSD-2-Clause */
#include "mptable.h"
#include "acpi.h"
#include "io.h"
#include "lib.h"

struct mpf {
    char signature[4];      /* "_MP_" */
    uint32_t physptr;
    uint8_t length;         /* in 16-byte units: 1 */
    uint8_t spec_rev;
    uint8_t checksum;
    uint8_t feature[5];
} __attribute__((packed));

struct mpc {
    char signature[4];      /* "PCMP" */
    uint16_t length;
    uint8_t spec_rev;
    uint8_t checksum;
    char oem[8];
    char product[12];
    uint32_t oem_table;
    uint16_t oem_size;
    uint16_t count;
    uint32_t lapic;
    uint16_t ext_length;
    uint8_t ext_checksum;
    uint8_t reserved;
} __attribute__((packed));

static struct mptable_info mp;
static bool done;

static uint64_t scan(uint64_t start, uint64_t end)
{
    for (uint64_t a = start; a + 16 <= end; a += 16) {
        const struct mpf *f = phys_to_ptr(a);
        if (*(volatile uint32_t *)f == 0x5f504d5f /* "_MP_" */ && f->length == 1 &&
            acpi_checksum_ok(f, 16))
            return a;
    }
    return 0;
}

static void copy_str(char *dst, const char *src, unsigned n)
{
    memcpy(dst, src, n);
    dst[n] = 0;
    for (int i = (int)n - 1; i >= 0 && (dst[i] == ' ' || dst[i] == 0); i--)
        dst[i] = 0;
}

const struct mptable_info *mptable_get(void)
{
    uint64_t ebda, a = 0;
    const struct mpf *f;
    const struct mpc *c;
    const uint8_t *p, *end;

    if (done)
        return &mp;
    done = true;
    mp.bsp_apic_id = -1;
    ebda = (uint64_t)*(volatile uint16_t *)phys_to_ptr(0x40e) << 4;
    if (ebda >= 0x80000 && ebda < 0xa0000 && (a = scan(ebda, ebda + 1024)))
        mp.fp_where = "ebda";
    else if ((a = scan(0x9fc00, 0xa0000)))
        mp.fp_where = "basemem";
    else if ((a = scan(0xf0000, 0x100000)))
        mp.fp_where = "bios";
    if (!a)
        return &mp;
    mp.found = true;
    mp.fp_addr = a;
    f = phys_to_ptr(a);
    mp.spec_rev = f->spec_rev;
    mp.default_config = f->feature[0];
    mp.table_addr = f->physptr;
    if (!f->physptr)
        return &mp;
    c = phys_to_ptr(f->physptr);
    if (memcmp(c->signature, "PCMP", 4) || c->length < sizeof(*c) ||
        !acpi_checksum_ok(c, c->length))
        return &mp;
    mp.table_ok = true;
    copy_str(mp.oem, c->oem, 8);
    copy_str(mp.product, c->product, 12);
    mp.lapic_addr = c->lapic;
    p = (const uint8_t *)(c + 1);
    end = (const uint8_t *)c + c->length;
    /* Walk by the table length, as Linux does: some firmware (qboot) leaves
     * the entry count at 0. */
    while (p < end) {
        switch (p[0]) {
        case 0:     /* processor: type, apic id, apic version, flags (1 enabled, 2 BSP), ... */
            if (p[3] & 1) {
                if (mp.nr_cpus < MPTABLE_MAX_CPUS)
                    mp.apic_ids[mp.nr_cpus] = p[1];
                mp.nr_cpus++;
                if (p[3] & 2)
                    mp.bsp_apic_id = p[1];
            }
            p += 20;
            break;
        case 2:     /* I/O APIC */
            if (p[3] & 1)
                mp.nr_ioapics++;
            p += 8;
            break;
        case 1:     /* bus */
        case 3:     /* I/O interrupt assignment */
        case 4:     /* local interrupt assignment */
            p += 8;
            break;
        default:    /* unknown: the size is unknown too, stop */
            p = end;
            break;
        }
    }
    return &mp;
}
