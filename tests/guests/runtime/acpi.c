/* SPDX-License-Identifier: BSD-2-Clause */
#include "acpi.h"
#include "bootinfo.h"
#include "delay.h"
#include "io.h"
#include "lib.h"
#include "printf.h"

struct rsdp {
    char signature[8];
    uint8_t checksum;
    char oem_id[6];
    uint8_t revision;
    uint32_t rsdt;
    uint32_t length;        /* revision >= 2 */
    uint64_t xsdt;
    uint8_t ext_checksum;
    uint8_t reserved[3];
} __attribute__((packed));

static struct acpi_info info;
static bool walked;

bool acpi_checksum_ok(const void *p, uint32_t len)
{
    const uint8_t *b = p;
    uint8_t s = 0;

    for (uint32_t i = 0; i < len; i++)
        s += b[i];
    return s == 0;
}

static bool rsdp_valid(uint64_t pa)
{
    const struct rsdp *r = phys_to_ptr(pa);

    if (memcmp(r->signature, "RSD PTR ", 8) || !acpi_checksum_ok(r, 20))
        return false;
    if (r->revision >= 2 && (r->length < 36 || r->length > 4096 || !acpi_checksum_ok(r, r->length)))
        return false;
    return true;
}

static uint64_t scan(uint64_t start, uint64_t end)
{
    for (uint64_t a = start; a + 20 <= end; a += 16)
        if (*(volatile uint32_t *)phys_to_ptr(a) == 0x20445352 /* "RSD " */ && rsdp_valid(a))
            return a;
    return 0;
}

static uint64_t ebda_base(void)
{
    uint64_t ebda = (uint64_t)*(volatile uint16_t *)phys_to_ptr(0x40e) << 4;

    if (ebda >= 0x80000 && ebda < 0xa0000)
        return ebda;
    return 0;
}

uint64_t acpi_find_rsdp(const char **source)
{
    const struct bootinfo *b = bootinfo();
    uint64_t ebda, r;

    if (b->rsdp && b->rsdp < 0x100000000ull && rsdp_valid(b->rsdp)) {
        if (source)
            *source = "bootinfo";
        return b->rsdp;
    }
    ebda = ebda_base();
    if (ebda && (r = scan(ebda, ebda + 1024))) {
        if (source)
            *source = "ebda";
        return r;
    }
    if ((r = scan(0xe0000, 0x100000))) {
        if (source)
            *source = "bios";
        return r;
    }
    return 0;
}

static void add_table(uint64_t pa)
{
    const struct acpi_header *h;
    struct acpi_table_ref *t;

    if (!pa || pa >= 0x100000000ull || info.nr_tables >= ACPI_MAX_TABLES)
        return;
    for (unsigned i = 0; i < info.nr_tables; i++)
        if (info.tables[i].addr == pa)
            return;
    h = phys_to_ptr(pa);
    t = &info.tables[info.nr_tables++];
    memcpy(t->sig, h->signature, 4);
    t->sig[4] = 0;
    t->addr = pa;
    /* The FACS has no checksum (and its length field is at the same place). */
    t->length = h->length;
    if (!memcmp(h->signature, "FACS", 4))
        t->checksum_ok = true;
    else
        t->checksum_ok = h->length >= sizeof(*h) && h->length < (16u << 20) &&
                         acpi_checksum_ok(h, h->length);
    if (!t->checksum_ok)
        return;
    if (!memcmp(h->signature, "FACP", 4) && !info.fadt) {
        const uint8_t *f = (const uint8_t *)h;
        uint32_t len = h->length;
        uint64_t dsdt = 0, facs = 0;

        info.fadt = pa;
        if (len >= 40)
            facs = *(const uint32_t *)(f + 36);
        if (len >= 44)
            dsdt = *(const uint32_t *)(f + 40);
        if (len >= 68)
            info.pm1a_cnt = *(const uint32_t *)(f + 64);
        if (len >= 72)
            info.pm1b_cnt = *(const uint32_t *)(f + 68);
        if (len >= 116)
            info.hw_reduced = *(const uint32_t *)(f + 112) & (1u << 20);
        if (len >= 140 && *(const uint64_t *)(f + 132))
            facs = *(const uint64_t *)(f + 132);
        if (len >= 148 && *(const uint64_t *)(f + 140))
            dsdt = *(const uint64_t *)(f + 140);
        if (!info.pm1a_cnt && len >= 184) {
            const struct acpi_gas *g = (const struct acpi_gas *)(f + 172);   /* X_PM1a_CNT_BLK */
            if (g->space_id == 1)
                info.pm1a_cnt = (uint32_t)g->address;
        }
        if (len >= 256)
            memcpy(&info.sleep_control, f + 244, sizeof(info.sleep_control));
        info.dsdt = dsdt;
        add_table(dsdt);
        if (facs)
            add_table(facs);
    } else if (!memcmp(h->signature, "APIC", 4) && !info.madt) {
        info.madt = pa;
        info.lapic_addr = *(const uint32_t *)((const uint8_t *)h + 36);
    }
}

const struct acpi_info *acpi_get(void)
{
    const struct rsdp *r;
    const struct acpi_header *root;

    if (walked)
        return &info;
    walked = true;
    info.rsdp = acpi_find_rsdp(&info.rsdp_source);
    if (!info.rsdp)
        return &info;
    info.found = true;
    r = phys_to_ptr(info.rsdp);
    info.revision = r->revision;
    memcpy(info.oem_id, r->oem_id, 6);
    info.oem_id[6] = 0;
    if (r->revision >= 2 && r->xsdt && r->xsdt < 0x100000000ull) {
        info.root = r->xsdt;
        info.xsdt = true;
    } else {
        info.root = r->rsdt;
    }
    if (!info.root)
        return &info;
    root = phys_to_ptr(info.root);
    info.root_checksum_ok = root->length >= sizeof(*root) && root->length < (1u << 20) &&
                            acpi_checksum_ok(root, root->length);
    if (!info.root_checksum_ok)
        return &info;
    unsigned esz = info.xsdt ? 8 : 4;
    unsigned n = (root->length - sizeof(*root)) / esz;
    const uint8_t *ents = (const uint8_t *)root + sizeof(*root);
    for (unsigned i = 0; i < n; i++) {
        uint64_t pa = info.xsdt ? *(const uint64_t *)(ents + 8 * i) : *(const uint32_t *)(ents + 4 * i);
        add_table(pa);
    }
    return &info;
}

const struct acpi_header *acpi_find_table(const char sig[4])
{
    const struct acpi_info *a = acpi_get();

    for (unsigned i = 0; i < a->nr_tables; i++)
        if (!memcmp(a->tables[i].sig, sig, 4) && a->tables[i].checksum_ok)
            return phys_to_ptr(a->tables[i].addr);
    return NULL;
}

unsigned acpi_madt_cpus(uint32_t *ids, unsigned max)
{
    const struct acpi_info *a = acpi_get();
    const struct acpi_header *h;
    const uint8_t *p, *end;
    unsigned n = 0;

    if (!a->madt)
        return 0;
    h = phys_to_ptr(a->madt);
    p = (const uint8_t *)h + 44;
    end = (const uint8_t *)h + h->length;
    while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
        uint32_t id = 0, flags = 0;
        bool cpu = false;

        if (p[0] == 0 && p[1] >= 8) {           /* processor local APIC */
            id = p[3];
            flags = *(const uint32_t *)(p + 4);
            cpu = true;
        } else if (p[0] == 9 && p[1] >= 16) {   /* processor local x2APIC */
            id = *(const uint32_t *)(p + 4);
            flags = *(const uint32_t *)(p + 8);
            cpu = true;
        }
        if (cpu && (flags & 3)) {
            bool dup = false;
            for (unsigned i = 0; i < n && i < max; i++)
                dup |= ids[i] == id;
            if (!dup) {
                if (n < max)
                    ids[n] = id;
                n++;
            }
        }
        p += p[1];
    }
    return n;
}

int acpi_s5_slp_typ(void)
{
    const struct acpi_info *a = acpi_get();
    const uint8_t *p, *end;

    if (!a->dsdt || a->dsdt >= 0x100000000ull)
        return -1;
    p = phys_to_ptr(a->dsdt);
    end = p + ((const struct acpi_header *)p)->length;
    for (p += sizeof(struct acpi_header); p + 8 < end; p++) {
        if (memcmp(p, "_S5_", 4))
            continue;
        /* NameOp (0x08) [\\] _S5_ PackageOp (0x12) PkgLength NumElements elem0 ... */
        if (!(p[-1] == 0x08 || (p[-1] == '\\' && p[-2] == 0x08)))
            continue;
        const uint8_t *q = p + 4;
        if (*q++ != 0x12)
            continue;
        q += (*q >> 6) + 1;         /* PkgLength */
        q++;                        /* NumElements */
        if (q >= end)
            return -1;
        if (*q == 0x0a)             /* BytePrefix */
            return q[1];
        if (*q == 0x00)             /* ZeroOp */
            return 0;
        if (*q == 0x01)             /* OneOp */
            return 1;
        if (*q == 0x0b)             /* WordPrefix */
            return q[1];
        return *q;
    }
    return -1;
}

void acpi_poweroff(int slp_typ)
{
    const struct acpi_info *a = acpi_get();

    if (slp_typ < 0) {
        slp_typ = acpi_s5_slp_typ();
        if (slp_typ < 0)
            slp_typ = 5;
    }
    if (a->pm1a_cnt) {
        uint16_t v = (uint16_t)(((slp_typ & 7) << 10) | (1u << 13));
        printf("ACPI: poweroff: PM1a_CNT port=0x%x <- 0x%04x (SLP_TYP=%d | SLP_EN)\n",
               a->pm1a_cnt, v, slp_typ);
        outw((uint16_t)a->pm1a_cnt, v);
        if (a->pm1b_cnt)
            outw((uint16_t)a->pm1b_cnt, v);
    } else if (a->hw_reduced && a->sleep_control.address) {
        uint8_t v = (uint8_t)(((slp_typ & 7) << 2) | (1u << 5));
        printf("ACPI: poweroff: SLEEP_CONTROL %s 0x%lx <- 0x%02x (SLP_TYP=%d | SLP_EN)\n",
               a->sleep_control.space_id == 1 ? "port" : "mmio", a->sleep_control.address, v,
               slp_typ);
        if (a->sleep_control.space_id == 1)
            outb((uint16_t)a->sleep_control.address, v);
        else if (a->sleep_control.space_id == 0)
            writeb(a->sleep_control.address, v);
    } else {
        printf("ACPI: poweroff: no PM1a_CNT_BLK or sleep control register\n");
        return;
    }
    mdelay(100);
}
