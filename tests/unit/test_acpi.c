/* ACPI, AML and MP table tests: the AML encodings, the tables' structure
 * and checksums in guest memory, and (when Debian's acpica-tools is
 * installed) iasl disassembling every table and recompiling the DSDT. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../unit/unit.h"
#include "boot/aml.h"
#include "boot/tables.h"
#include "mem/guest_mem.h"

static uint8_t sum8(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + b[i]);
	return s;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static bool bytes_eq(const struct aml *a, const uint8_t *want, size_t n)
{
	if (a->err || a->len != n || memcmp(a->buf, want, n)) {
		fprintf(stderr, "  got (err %d, %zu bytes):", a->err, a->len);
		for (size_t i = 0; i < a->len && i < 64; i++)
			fprintf(stderr, " %02x", a->buf[i]);
		fprintf(stderr, "\n");
		return false;
	}
	return true;
}

/* ---------------- AML encodings ---------------- */

static void test_pkglength(void)
{
	uint8_t b[4];
	/* Lengths count the PkgLength bytes themselves. */
	CHECK_EQ(aml_pkglength_encode(0, b), 1);
	CHECK_EQ(b[0], 1);
	CHECK_EQ(aml_pkglength_encode(62, b), 1);
	CHECK_EQ(b[0], 63);
	CHECK_EQ(aml_pkglength_encode(63, b), 2); /* 65 */
	CHECK_EQ(b[0], 0x40 | (65 & 0xF));
	CHECK_EQ(b[1], 65 >> 4);
	CHECK_EQ(aml_pkglength_encode(0xFFD, b), 2); /* 0xFFF */
	CHECK_EQ(b[0], 0x4F);
	CHECK_EQ(b[1], 0xFF);
	CHECK_EQ(aml_pkglength_encode(0xFFE, b), 3); /* 0x1001 */
	CHECK_EQ(b[0], 0x81);
	CHECK_EQ(b[1], 0x00);
	CHECK_EQ(b[2], 0x01);
	CHECK_EQ(aml_pkglength_encode(0xFFFFC, b), 3); /* 0xFFFFF */
	CHECK_EQ(aml_pkglength_encode(0xFFFFD, b), 4); /* 0x100001 */
	CHECK_EQ(b[0], 0xC1);
	CHECK_EQ(b[1], 0x00);
	CHECK_EQ(b[2], 0x00);
	CHECK_EQ(b[3], 0x01);
	CHECK_EQ(aml_pkglength_encode(0x0FFFFFFB, b), 4);
	CHECK_EQ(aml_pkglength_encode(0x0FFFFFFC, b), 0);
}

static void test_names_and_integers(void)
{
	struct aml a;

	aml_init(&a);
	aml_namestring(&a, "_S5");
	CHECK(bytes_eq(&a, (const uint8_t *)"_S5_", 4));
	aml_free(&a);

	aml_init(&a);
	aml_namestring(&a, "\\_SB.PCI0");
	static const uint8_t dual[] = { 0x5C, 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0' };
	CHECK(bytes_eq(&a, dual, sizeof(dual)));
	aml_free(&a);

	aml_init(&a);
	aml_namestring(&a, "\\_SB.PCI0.COM1");
	static const uint8_t multi[] = { 0x5C, 0x2F, 3,   '_', 'S', 'B', '_', 'P',
					 'C',  'I',  '0', 'C', 'O', 'M', '1' };
	CHECK(bytes_eq(&a, multi, sizeof(multi)));
	aml_free(&a);

	aml_init(&a);
	aml_namestring(&a, "^^RTC");
	static const uint8_t parent[] = { 0x5E, 0x5E, 'R', 'T', 'C', '_' };
	CHECK(bytes_eq(&a, parent, sizeof(parent)));
	aml_free(&a);

	aml_init(&a);
	aml_namestring(&a, "\\");
	static const uint8_t root[] = { 0x5C, 0x00 };
	CHECK(bytes_eq(&a, root, sizeof(root)));
	aml_free(&a);

	/* Bad names set a sticky error and later calls do nothing. */
	const char *bad[] = { "", "TOOLONG", "1ABC", "a_lc", "\\_SB..X", "A.", "AB-C" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_init(&a);
		aml_namestring(&a, bad[i]);
		CHECK_EQ(aml_error(&a), -EINVAL);
		aml_byte(&a, 1);
		size_t n;
		CHECK(aml_release(&a, &n) == NULL);
		CHECK_EQ(n, 0);
	}

	aml_init(&a);
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, UINT64_MAX);
	aml_integer(&a, 5);
	aml_integer(&a, 0x100);
	aml_integer(&a, 0x12345678);
	aml_integer(&a, 0x100000000ULL);
	static const uint8_t ints[] = { 0x00, 0x01, 0xFF, 0x0A, 0x05, 0x0B, 0x00, 0x01,
					0x0C, 0x78, 0x56, 0x34, 0x12, 0x0E, 0,    0,
					0,    0,    1,    0,    0,    0 };
	CHECK(bytes_eq(&a, ints, sizeof(ints)));
	aml_free(&a);

	aml_init(&a);
	aml_string(&a, "ab");
	static const uint8_t str[] = { 0x0D, 'a', 'b', 0 };
	CHECK(bytes_eq(&a, str, sizeof(str)));
	aml_free(&a);

	uint32_t v = 0;
	CHECK_EQ(aml_eisaid_value("PNP0A03", &v), 0);
	CHECK_EQ(v, 0x030AD041);
	CHECK_EQ(aml_eisaid_value("PNP0501", &v), 0);
	CHECK_EQ(v, 0x0105D041);
	CHECK_EQ(aml_eisaid_value("PNP0B00", &v), 0);
	CHECK_EQ(v, 0x000BD041);
	CHECK_EQ(aml_eisaid_value("PNP0a03", &v), -EINVAL);
	CHECK_EQ(aml_eisaid_value("PNP0A0", &v), -EINVAL);
	aml_init(&a);
	aml_name_eisaid(&a, "_HID", "PNP0A03");
	static const uint8_t hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0A, 0x03 };
	CHECK(bytes_eq(&a, hid, sizeof(hid)));
	aml_free(&a);
}

static void test_objects(void)
{
	struct aml a;

	/* Name (_S5_, Package (0x04) { 0x05, 0x05, Zero, Zero }) */
	aml_init(&a);
	aml_name(&a, "\\_S5");
	size_t p = aml_package_begin(&a, 4);
	aml_integer(&a, 5);
	aml_integer(&a, 5);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_end(&a, p);
	static const uint8_t s5[] = { 0x08, 0x5C, '_', 'S',  '5',  '_',  0x12, 0x08,
				      0x04, 0x0A, 5,   0x0A, 5,    0x00, 0x00 };
	CHECK(bytes_eq(&a, s5, sizeof(s5)));
	aml_free(&a);

	/* Device (DEV) { Name (_UID, One) } inside Scope (\_SB) */
	aml_init(&a);
	size_t sc = aml_scope_begin(&a, "\\_SB");
	size_t dv = aml_device_begin(&a, "DEV");
	aml_name_integer(&a, "_UID", 1);
	aml_end(&a, dv);
	aml_end(&a, sc);
	static const uint8_t dev[] = { 0x10, 0x13, 0x5C, '_', 'S', 'B', '_', 0x5B, 0x82, 0x0B,
				       'D',  'E',  'V',  '_', 0x08, '_', 'U', 'I',  'D',  0x01 };
	CHECK(bytes_eq(&a, dev, sizeof(dev)));
	aml_free(&a);

	/* Method (_PIC, 1, Serialized) { Store (Arg0, Local0) Return (Local0) } */
	aml_init(&a);
	size_t m = aml_method_begin(&a, "_PIC", 1, true, 0);
	aml_store(&a);
	aml_arg(&a, 0);
	aml_local(&a, 0);
	aml_return(&a);
	aml_local(&a, 0);
	aml_end(&a, m);
	static const uint8_t meth[] = { 0x14, 0x0B, '_',  'P',  'I', 'C',
					0x09, 0x70, 0x68, 0x60, 0xA4, 0x60 };
	CHECK(bytes_eq(&a, meth, sizeof(meth)));
	aml_free(&a);

	/* A body over 63 bytes takes a 2-byte PkgLength, inserted in place. */
	aml_init(&a);
	uint8_t big[100];
	memset(big, 0xAA, sizeof(big));
	aml_buffer(&a, big, sizeof(big));
	CHECK_EQ(a.len, 1 + 2 + 2 + 100);
	CHECK_EQ(a.buf[0], 0x11);
	CHECK_EQ(a.buf[1], 0x40 | ((2 + 2 + 100) & 0xF));
	CHECK_EQ(a.buf[2], (2 + 2 + 100) >> 4);
	CHECK_EQ(a.buf[3], 0x0A);
	CHECK_EQ(a.buf[4], 100);
	CHECK_EQ(a.buf[5], 0xAA);
	aml_free(&a);

	/* Too many package elements. */
	aml_init(&a);
	aml_package_begin(&a, 256);
	CHECK_EQ(aml_error(&a), -E2BIG);
	aml_free(&a);

	/* A resource template: IO + IRQNoFlags + end tag with checksum. */
	struct aml r;
	aml_init(&r);
	aml_res_io(&r, 0x3F8, 0x3F8, 1, 8);
	aml_res_irq_noflags(&r, 4);
	aml_init(&a);
	aml_resource_template(&a, &r);
	static const uint8_t rt_head[] = { 0x11, 0x10, 0x0A, 0x0D, 0x47, 0x01, 0xF8, 0x03,
					   0xF8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79 };
	CHECK(a.len == sizeof(rt_head) + 1 && !memcmp(a.buf, rt_head, sizeof(rt_head)));
	CHECK_EQ(sum8(a.buf + 4, 13), 0); /* descriptors + end tag sum to 0 */
	aml_free(&a);
	aml_free(&r);

	/* Address space descriptors have their declared lengths. */
	aml_init(&r);
	aml_res_word_bus_number(&r, 0, 255);
	CHECK_EQ(r.len, 16);
	CHECK_EQ(rd16(r.buf + 1), 13);
	CHECK_EQ(rd16(r.buf + 14), 256);
	aml_res_dword_io(&r, 0xD00, 0xFFFF);
	CHECK_EQ(r.len, 16 + 26);
	CHECK_EQ(rd32(r.buf + 16 + 22), 0xF300);
	aml_res_qword_memory(&r, false, AML_NON_CACHEABLE, 0x100000000ULL, 0x1FFFFFFFFULL);
	CHECK_EQ(r.len, 16 + 26 + 46);
	CHECK_EQ(rd64(r.buf + 42 + 38), 0x100000000ULL);
	CHECK_EQ(aml_error(&r), 0);
	aml_res_irq_noflags(&r, 16);
	CHECK_EQ(aml_error(&r), -EINVAL);
	aml_free(&r);
}

/* ---------------- Tables in guest memory ---------------- */

static const uint8_t *table_at(const struct guest_mem *gm, uint64_t gpa)
{
	const uint8_t *h = guest_mem_ptr(gm, gpa, 36);
	if (!h)
		return NULL;
	return guest_mem_ptr(gm, gpa, rd32(h + 4));
}

static void check_header(const uint8_t *t, const char *sig, uint8_t rev)
{
	CHECK(!memcmp(t, sig, 4));
	CHECK_EQ(t[8], rev);
	CHECK_EQ(sum8(t, rd32(t + 4)), 0);
	CHECK(!memcmp(t + 10, "KHYVE ", 6));
	CHECK(!memcmp(t + 16, "KHYVE   ", 8));
	CHECK(!memcmp(t + 28, "KHYV", 4));
}

static bool in_tables(uint64_t gpa, uint32_t len)
{
	return gpa >= ACPI_TABLES_GPA && gpa + len <= ACPI_TABLES_END;
}

struct seen {
	unsigned madt_cpus, madt_x2apic, madt_ioapic, madt_iso, madt_nmi;
	bool fadt, madt, spcr, mcfg;
	uint64_t dsdt, facs;
};

static void check_madt(const uint8_t *t, const struct platform_desc *d, struct seen *s)
{
	check_header(t, "APIC", 5);
	CHECK_EQ(rd32(t + 36), LAPIC_GPA);
	CHECK_EQ(rd32(t + 40), 1); /* PCAT_COMPAT */
	uint32_t len = rd32(t + 4);
	for (uint32_t off = 44; off < len;) {
		uint8_t type = t[off], elen = t[off + 1];
		CHECK(elen >= 2 && off + elen <= len);
		if (elen < 2)
			break;
		switch (type) {
		case 0:
			CHECK_EQ(elen, 8);
			CHECK(s->madt_cpus < d->ncpus);
			if (s->madt_cpus < d->ncpus) {
				CHECK_EQ(t[off + 2], s->madt_cpus);
				CHECK_EQ(t[off + 3], d->apic_ids[s->madt_cpus]);
			}
			CHECK_EQ(rd32(t + off + 4), 1);
			s->madt_cpus++;
			break;
		case 9:
			CHECK_EQ(elen, 16);
			CHECK(s->madt_cpus < d->ncpus);
			if (s->madt_cpus < d->ncpus) {
				CHECK_EQ(rd32(t + off + 4), d->apic_ids[s->madt_cpus]);
				CHECK_EQ(rd32(t + off + 12), s->madt_cpus);
			}
			s->madt_cpus++;
			s->madt_x2apic++;
			break;
		case 1:
			CHECK_EQ(elen, 12);
			CHECK_EQ(t[off + 2], d->ioapic_id);
			CHECK_EQ(rd32(t + off + 4), IOAPIC_GPA);
			CHECK_EQ(rd32(t + off + 8), 0);
			s->madt_ioapic++;
			break;
		case 2:
			CHECK_EQ(elen, 10);
			CHECK_EQ(t[off + 2], 0);
			if (t[off + 3] == 0) {
				CHECK_EQ(rd32(t + off + 4), 2);
				CHECK_EQ(rd16(t + off + 8), 0);
			} else {
				CHECK_EQ(t[off + 3], ACPI_SCI_IRQ);
				CHECK_EQ(rd32(t + off + 4), ACPI_SCI_IRQ);
				CHECK_EQ(rd16(t + off + 8), 0x000D); /* level, active high */
			}
			s->madt_iso++;
			break;
		case 4:
			CHECK_EQ(elen, 6);
			CHECK_EQ(t[off + 2], 0xFF);
			CHECK_EQ(t[off + 5], 1);
			s->madt_nmi++;
			break;
		case 10:
			CHECK_EQ(elen, 12);
			CHECK_EQ(rd32(t + off + 4), 0xFFFFFFFF);
			CHECK_EQ(t[off + 8], 1);
			break;
		default:
			CHECK(!"unexpected MADT entry");
		}
		off += elen;
	}
}

static void check_gas_io(const uint8_t *g, uint16_t port, uint8_t bits)
{
	CHECK_EQ(g[0], 1);
	CHECK_EQ(g[1], bits);
	CHECK_EQ(rd64(g + 4), port);
}

static void check_fadt(const struct guest_mem *gm, const uint8_t *t, struct seen *s)
{
	check_header(t, "FACP", 6);
	CHECK_EQ(rd32(t + 4), 276);
	s->facs = rd32(t + 36);
	s->dsdt = rd32(t + 40);
	CHECK_EQ(rd64(t + 132), s->facs);
	CHECK_EQ(rd64(t + 140), s->dsdt);
	CHECK_EQ(s->facs % 64, 0);
	CHECK_EQ(rd16(t + 46), ACPI_SCI_IRQ);
	CHECK_EQ(rd32(t + 48), 0); /* SMI_CMD */
	CHECK_EQ(rd32(t + 56), ACPI_PM1A_EVT_PORT);
	CHECK_EQ(rd32(t + 64), ACPI_PM1A_CNT_PORT);
	CHECK_EQ(rd32(t + 76), ACPI_PM_TMR_PORT);
	CHECK_EQ(t[88], 4);
	CHECK_EQ(t[89], 2);
	CHECK_EQ(t[91], 4);
	uint16_t boot = rd16(t + 109);
	CHECK_EQ(boot & 3, 3); /* LEGACY_DEVICES | 8042 */
	uint32_t flags = rd32(t + 112);
	CHECK(flags & (1u << 0));   /* WBINVD */
	CHECK(flags & (1u << 2));   /* PROC_C1 */
	CHECK(!(flags & (1u << 4))); /* fixed power button */
	CHECK(flags & (1u << 5));   /* no sleep button */
	CHECK(!(flags & (1u << 8))); /* 24-bit timer */
	CHECK(flags & (1u << 10));  /* RESET_REG_SUP */
	CHECK(!(flags & (1u << 6))); /* FIX_RTC clear: RTC_STS wakes from S3 */
	check_gas_io(t + 116, ACPI_RESET_PORT, 8);
	CHECK_EQ(t[128], ACPI_RESET_VALUE);
	check_gas_io(t + 148, ACPI_PM1A_EVT_PORT, 32);
	check_gas_io(t + 172, ACPI_PM1A_CNT_PORT, 16);
	check_gas_io(t + 208, ACPI_PM_TMR_PORT, 32);

	const uint8_t *facs = guest_mem_ptr(gm, s->facs, 64);
	CHECK(facs && !memcmp(facs, "FACS", 4) && rd32(facs + 4) == 64);
	CHECK(in_tables(s->facs, 64));
	/* The waking vectors, where the wake from S3 reads them. */
	CHECK_EQ(s->facs, ACPI_FACS_GPA);
	uint32_t v32 = 1;
	uint64_t v64 = 1;
	CHECK_EQ(acpi_facs_waking_vector(gm, &v32, &v64), 0);
	CHECK_EQ(v32, 0);
	CHECK_EQ(v64, 0);
	uint32_t w32 = 0x9000;
	uint64_t w64 = 0x123456;
	CHECK_EQ(guest_mem_write(gm, s->facs + 12, &w32, 4), 0);
	CHECK_EQ(guest_mem_write(gm, s->facs + 24, &w64, 8), 0);
	CHECK_EQ(acpi_facs_waking_vector(gm, &v32, &v64), 0);
	CHECK_EQ(v32, 0x9000);
	CHECK_EQ(v64, 0x123456);
	w32 = 0;
	w64 = 0;
	CHECK_EQ(guest_mem_write(gm, s->facs + 12, &w32, 4), 0);
	CHECK_EQ(guest_mem_write(gm, s->facs + 24, &w64, 8), 0);
	const uint8_t *dsdt = table_at(gm, s->dsdt);
	CHECK(dsdt != NULL);
	if (dsdt) {
		check_header(dsdt, "DSDT", 2);
		CHECK(in_tables(s->dsdt, rd32(dsdt + 4)));
		/* Name (_S3_, Package (0x04) { One, One, Zero, Zero }), and _S5_ */
		static const uint8_t s3[] = { 0x08, '_', 'S', '3', '_', 0x12, 0x06,
					      0x04, 0x01, 0x01, 0x00, 0x00 };
		static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x08,
					      0x04, 0x0A, ACPI_S5_SLP_TYP, 0x0A, ACPI_S5_SLP_TYP };
		CHECK_EQ(ACPI_S3_SLP_TYP, 1);
		CHECK(memmem(dsdt, rd32(dsdt + 4), s3, sizeof(s3)) != NULL);
		CHECK(memmem(dsdt, rd32(dsdt + 4), s5, sizeof(s5)) != NULL);
	}
}

static void check_tables(const struct guest_mem *gm, const struct platform_desc *d,
			 uint64_t rsdp_gpa)
{
	CHECK_EQ(rsdp_gpa, ACPI_RSDP_GPA);
	const uint8_t *r = guest_mem_ptr(gm, rsdp_gpa, 36);
	CHECK(r != NULL);
	if (!r)
		return;
	CHECK(!memcmp(r, "RSD PTR ", 8));
	CHECK_EQ(sum8(r, 20), 0);
	CHECK_EQ(sum8(r, 36), 0);
	CHECK_EQ(r[15], 2);
	CHECK_EQ(rd32(r + 20), 36);
	CHECK(!memcmp(r + 9, "KHYVE ", 6));
	uint64_t rsdt = rd32(r + 16), xsdt = rd64(r + 24);

	/* The XSDT and RSDT list the same tables. */
	const uint8_t *x = table_at(gm, xsdt), *rs = table_at(gm, rsdt);
	CHECK(x && rs);
	if (!x || !rs)
		return;
	check_header(x, "XSDT", 1);
	check_header(rs, "RSDT", 1);
	unsigned n = (rd32(x + 4) - 36) / 8;
	CHECK_EQ((rd32(rs + 4) - 36) / 4, n);
	CHECK_EQ(n, 2u + (d->com_present[0] ? 1 : 0) + (d->pci_ecam_base ? 1 : 0));

	struct seen s = { 0 };
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = rd64(x + 36 + 8 * i);
		CHECK_EQ(rd32(rs + 36 + 4 * i), gpa);
		const uint8_t *t = table_at(gm, gpa);
		CHECK(t != NULL);
		if (!t)
			continue;
		CHECK(in_tables(gpa, rd32(t + 4)));
		CHECK_EQ(sum8(t, rd32(t + 4)), 0);
		if (!memcmp(t, "FACP", 4)) {
			s.fadt = true;
			check_fadt(gm, t, &s);
		} else if (!memcmp(t, "APIC", 4)) {
			s.madt = true;
			check_madt(t, d, &s);
		} else if (!memcmp(t, "SPCR", 4)) {
			s.spcr = true;
			check_header(t, "SPCR", 2);
			CHECK_EQ(rd32(t + 4), 80);
			check_gas_io(t + 40, 0x3F8, 8);
			CHECK_EQ(t[53], 4);
			CHECK_EQ(t[58], 7);
		} else if (!memcmp(t, "MCFG", 4)) {
			s.mcfg = true;
			check_header(t, "MCFG", 1);
			CHECK_EQ(rd32(t + 4), 60);
			CHECK_EQ(rd64(t + 44), d->pci_ecam_base);
			CHECK_EQ(t[54], d->pci_ecam_bus_start);
			CHECK_EQ(t[55], d->pci_ecam_bus_end);
		} else {
			CHECK(!"unexpected table");
		}
	}
	CHECK(s.fadt && s.madt);
	CHECK_EQ(s.spcr, d->com_present[0]);
	CHECK_EQ(s.mcfg, d->pci_ecam_base != 0);
	CHECK_EQ(s.madt_cpus, d->ncpus);
	CHECK_EQ(s.madt_ioapic, 1);
	CHECK_EQ(s.madt_iso, 2);
	CHECK_EQ(s.madt_nmi, 1);
}

static void check_mptable(const struct guest_mem *gm, const struct platform_desc *d)
{
	const uint8_t *f = guest_mem_ptr(gm, MPTABLE_GPA, 16);
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(!memcmp(f, "_MP_", 4));
	CHECK_EQ(sum8(f, 16), 0);
	CHECK_EQ(f[8], 1);
	CHECK_EQ(f[9], 4);
	CHECK_EQ(f[11], 0);
	uint32_t cfg_gpa = rd32(f + 4);
	CHECK(cfg_gpa >= 0xF0000 && cfg_gpa < MPTABLE_END);
	const uint8_t *c = guest_mem_ptr(gm, cfg_gpa, 44);
	CHECK(c != NULL);
	if (!c)
		return;
	uint16_t len = rd16(c + 4);
	c = guest_mem_ptr(gm, cfg_gpa, len);
	CHECK(c != NULL && cfg_gpa + len <= MPTABLE_END);
	if (!c)
		return;
	CHECK(!memcmp(c, "PCMP", 4));
	CHECK_EQ(c[6], 4);
	CHECK_EQ(sum8(c, len), 0);
	CHECK(!memcmp(c + 8, "KHYVE   ", 8));
	CHECK(!memcmp(c + 16, "KHYVE       ", 12));
	CHECK_EQ(rd32(c + 36), LAPIC_GPA);

	unsigned count = rd16(c + 34), cpus = 0, buses = 0, ioapics = 0, ioints = 0, lints = 0;
	unsigned last_type = 0;
	bool pin2_irq0 = false, irq2 = false, sci_level = false;
	const uint8_t *p = c + 44;
	for (unsigned i = 0; i < count; i++) {
		CHECK(p < c + len);
		if (p >= c + len)
			break;
		CHECK(p[0] >= last_type); /* sorted by type */
		last_type = p[0];
		switch (p[0]) {
		case 0:
			CHECK(cpus < d->ncpus);
			if (cpus < d->ncpus)
				CHECK_EQ(p[1], d->apic_ids[cpus]);
			CHECK_EQ(p[2], 0x14);
			CHECK_EQ(p[3], cpus == 0 ? 3 : 1);
			cpus++;
			p += 20;
			break;
		case 1:
			CHECK(!memcmp(p + 2, buses == 0 ? "PCI   " : "ISA   ", 6));
			CHECK_EQ(p[1], buses);
			buses++;
			p += 8;
			break;
		case 2:
			CHECK_EQ(p[1], d->ioapic_id);
			CHECK_EQ(p[2], 0x11);
			CHECK_EQ(p[3], 1);
			CHECK_EQ(rd32(p + 4), IOAPIC_GPA);
			ioapics++;
			p += 8;
			break;
		case 3:
			CHECK_EQ(p[6], d->ioapic_id);
			if (p[4] == 1) { /* ISA */
				if (p[5] == 0)
					pin2_irq0 = p[7] == 2;
				else if (p[5] == 2)
					irq2 = true;
				else
					CHECK_EQ(p[7], p[5]);
				if (p[5] == ACPI_SCI_IRQ)
					sci_level = rd16(p + 2) == 0x0D;
			} else {
				CHECK_EQ(p[4], 0);
				CHECK_EQ(rd16(p + 2), 0x0F);
			}
			ioints++;
			p += 8;
			break;
		case 4:
			CHECK_EQ(p[1], lints == 0 ? 3 : 1); /* ExtINT, then NMI */
			CHECK_EQ(p[6], 0xFF);
			CHECK_EQ(p[7], lints);
			lints++;
			p += 8;
			break;
		default:
			CHECK(!"bad MP entry type");
			p = c + len;
		}
	}
	CHECK(p == c + len);
	CHECK_EQ(cpus, d->ncpus);
	CHECK_EQ(buses, 2);
	CHECK_EQ(ioapics, 1);
	CHECK_EQ(ioints, 15 + d->n_pci_intx);
	CHECK_EQ(lints, 2);
	CHECK(pin2_irq0);
	CHECK(!irq2);
	CHECK(sci_level);
}

/* ---------------- iasl ---------------- */

static bool have_iasl(void)
{
	return system("command -v iasl >/dev/null 2>&1") == 0;
}

static int run(const char *cmd)
{
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static bool file_exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 && st.st_size > 0;
}

static bool grep(const char *dir, const char *file, const char *pattern)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "grep -q -- '%s' '%s/%s'", pattern, dir, file);
	return run(cmd) == 0;
}

static uint8_t *slurp(const char *dir, const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *buf = malloc(1 << 20);
	*len = buf ? fread(buf, 1, 1 << 20, f) : 0;
	fclose(f);
	return buf;
}

/* The AML after the 36-byte headers must be identical, except that iasl
 * writes 0 ("valid") as every resource template's EndTag checksum where
 * we write the real checksum (ACPI 6.4.2.9 allows both). */
static bool same_aml(const char *dir, const char *ours_name, const char *iasl_name)
{
	size_t ol = 0, il = 0;
	uint8_t *o = slurp(dir, ours_name, &ol), *i = slurp(dir, iasl_name, &il);
	bool ok = o && i && ol == il && ol > 36;
	unsigned endtags = 0;
	if (o && i && ol != il)
		fprintf(stderr, "DSDT length %zu, iasl's %zu\n", ol, il);
	for (size_t k = 36; ok && k < ol; k++) {
		if (o[k] == i[k])
			continue;
		if (o[k - 1] == 0x79 && i[k - 1] == 0x79 && i[k] == 0) {
			endtags++;
			continue;
		}
		fprintf(stderr, "DSDT differs from iasl's at byte %zu: %02x != %02x\n", k, o[k],
			i[k]);
		ok = false;
	}
	CHECK(endtags > 0);
	free(o);
	free(i);
	return ok;
}

static void remove_dir(const char *dir)
{
	DIR *dd = opendir(dir);
	if (!dd)
		return;
	for (struct dirent *de; (de = readdir(dd));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(dd), de->d_name, 0);
	closedir(dd);
	rmdir(dir);
}

/* How often needle occurs in dir/name. */
static unsigned count_in(const char *dir, const char *name, const char *needle)
{
	size_t len = 0;
	uint8_t *buf = slurp(dir, name, &len);
	unsigned n = 0;
	size_t nl = strlen(needle);
	for (size_t i = 0; buf && i + nl <= len; i++)
		n += memcmp(buf + i, needle, nl) == 0;
	free(buf);
	return n;
}

/* The DSDT holds, for each vCPU i, Device (C00i) { _HID "ACPI0007",
 * _UID i }, byte for byte, and the MADT gave CPU i the UID i. */
static void check_cpu_devices(const uint8_t *dsdt, size_t len, const struct platform_desc *d)
{
	for (unsigned i = 0; i < d->ncpus; i++) {
		char name[5];
		snprintf(name, sizeof(name), "C%03X", i & 0xFFF);
		struct aml a;
		aml_init(&a);
		size_t dev = aml_device_begin(&a, name);
		aml_name_string(&a, "_HID", "ACPI0007");
		aml_name_integer(&a, "_UID", i);
		aml_end(&a, dev);
		bool found = false;
		for (size_t off = 0; !found && off + a.len <= len; off++)
			found = memcmp(dsdt + off, a.buf, a.len) == 0;
		CHECK(found);
		aml_free(&a);
	}
}

/* Dumps the tables into a temp dir; with iasl, disassembles them. */
static void dump_check(const struct guest_mem *gm, uint64_t rsdp, const struct platform_desc *d,
		       bool iasl)
{
	char dir[] = "/tmp/khyve-acpi-XXXXXX";
	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	CHECK_EQ(acpi_dump_tables(gm, rsdp, dir), 0);
	/* RSDP, XSDT, RSDT, FACP, FACS, DSDT, APIC [, SPCR] [, MCFG] */
	char cmd[1024];
	unsigned files = 0;
	DIR *dd = opendir(dir);
	CHECK(dd != NULL);
	for (struct dirent *de; dd && (de = readdir(dd));)
		files += de->d_name[0] != '.';
	if (dd)
		closedir(dd);
	CHECK_EQ(files, 7 + (d->com_present[0] ? 1 : 0) + (d->pci_ecam_base ? 1 : 0));
	size_t rl = 0;
	uint8_t *rsdp_file = slurp(dir, "RSDP.dat", &rl);
	const void *rsdp_mem = guest_mem_ptr(gm, rsdp, 36);
	CHECK(rsdp_file && rsdp_mem && rl == 36 && !memcmp(rsdp_file, rsdp_mem, 36));
	free(rsdp_file);
	size_t dl = 0;
	uint8_t *dsdt = slurp(dir, "DSDT.dat", &dl);
	CHECK(dsdt && dl > 36);
	if (dsdt && dl > 36)
		check_cpu_devices(dsdt + 36, dl - 36, d);
	free(dsdt);
	if (!iasl)
		goto out;

	/* RSDP.dat is not given to iasl: its binary loader only takes tables
	 * with a standard header ("Loading an RSDP is not supported", ACPICA
	 * acfileio.c); check_tables() has checked the RSDP itself. */
	CHECK(file_exists(dir, "RSDP.dat"));
	const char *tables[] = { "XSDT", "RSDT", "FACP", "FACS", "DSDT", "APIC", "SPCR", "MCFG" };
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char dat[16], dsl[16];
		snprintf(dat, sizeof(dat), "%s.dat", tables[i]);
		snprintf(dsl, sizeof(dsl), "%s.dsl", tables[i]);
		if (!strcmp(tables[i], "SPCR") && !d->com_present[0])
			continue;
		if (!strcmp(tables[i], "MCFG") && !d->pci_ecam_base) {
			CHECK(!file_exists(dir, dat));
			continue;
		}
		CHECK(file_exists(dir, dat));
		/* iasl writes X.dsl next to X.dat; its console output goes to
		 * a log we search for problems. */
		snprintf(cmd, sizeof(cmd), "cd '%s' && iasl -d %s > %s.log 2>&1", dir, dat,
			 tables[i]);
		int rc = run(cmd);
		if (rc != 0)
			fprintf(stderr, "iasl -d %s: exit %d (see %s/%s.log)\n", dat, rc, dir,
				tables[i]);
		CHECK_EQ(rc, 0);
		CHECK(file_exists(dir, dsl));
		char log[16];
		snprintf(log, sizeof(log), "%s.log", tables[i]);
		/* Bad checksums, lengths or unknown fields show up as these. */
		CHECK(!grep(dir, log, "Error"));
		CHECK(!grep(dir, log, "Warning"));
		CHECK(!grep(dir, dsl, "Incorrect checksum"));
		CHECK(!grep(dir, dsl, "Invalid"));
		CHECK(!grep(dir, dsl, "\\*\\*\\*\\*"));
	}
	CHECK(grep(dir, "DSDT.dsl", "_S5_"));
	CHECK(grep(dir, "DSDT.dsl", "_S3_"));
	CHECK(grep(dir, "DSDT.dsl", "PNP0A03"));
	CHECK(grep(dir, "DSDT.dsl", "PNP0B00"));
	CHECK_EQ(grep(dir, "DSDT.dsl", "PNP0501"), d->com_present[0] || d->com_present[1]);
	CHECK(grep(dir, "DSDT.dsl", "ResourceTemplate"));
	CHECK(grep(dir, "APIC.dsl", "Processor Local APIC"));
	CHECK(grep(dir, "FACP.dsl", "PM1A Event Block Address : 00000400"));
	/* A processor device per vCPU, and a _PRT only when there are routes
	 * (issue 10: FreeBSD rejects an empty one). */
	CHECK_EQ(count_in(dir, "DSDT.dsl", "\"ACPI0007\""), d->ncpus);
	CHECK_EQ(count_in(dir, "DSDT.dsl", "Name (_PRT,"), d->n_pci_intx ? 1 : 0);
	if (d->com_present[0])
		CHECK(grep(dir, "DSDT.dsl", "0x03F8"));

	/* And the disassembled DSDT compiles back without errors. */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && iasl -p rt DSDT.dsl > rt.log 2>&1 && test -s rt.aml", dir);
	int rc = run(cmd);
	if (rc != 0)
		fprintf(stderr, "iasl DSDT.dsl: exit %d (see %s/rt.log)\n", rc, dir);
	CHECK_EQ(rc, 0);
	/* ...into exactly our AML (the headers differ in the compiler id). */
	CHECK(same_aml(dir, "DSDT.dat", "rt.aml"));
out:

	if (!unit_failures && !getenv("KHYVE_KEEP_ACPI")) {
		remove_dir(dir);
	} else {
		fprintf(stderr, "tables kept in %s\n", dir); /* KHYVE_KEEP_ACPI */
	}
}

/* ---------------- Driver ---------------- */

static void build_and_check(const struct platform_desc *d, bool iasl)
{
	struct guest_mem gm;
	CHECK_EQ(guest_mem_create(&gm, 64ULL << 20), 0);
	uint64_t rsdp = 0;
	int rc = acpi_build(&gm, d, &rsdp);
	CHECK_EQ(rc, 0);
	if (rc == 0)
		check_tables(&gm, d, rsdp);
	bool mp_ok = true;
	for (unsigned i = 0; i < d->ncpus; i++)
		mp_ok &= d->apic_ids[i] < 0xFF;
	rc = mptable_build(&gm, d);
	if (mp_ok) {
		CHECK_EQ(rc, 0);
		if (rc == 0)
			check_mptable(&gm, d);
	} else {
		CHECK_EQ(rc, -ERANGE);
	}
	if (rsdp)
		dump_check(&gm, rsdp, d, iasl);
	guest_mem_destroy(&gm);
}

static void test_bad_desc(void)
{
	struct guest_mem gm;
	CHECK_EQ(guest_mem_create(&gm, 16ULL << 20), 0);
	uint64_t rsdp;
	uint32_t ids[1] = { 0 };
	struct platform_desc d = { .ncpus = 0, .apic_ids = ids };
	CHECK_EQ(acpi_build(&gm, &d, &rsdp), -EINVAL);
	CHECK_EQ(mptable_build(&gm, &d), -EINVAL);
	d.ncpus = 1;
	struct pci_intx_route bad = { .bus = 0, .dev = 3, .pin = 4, .gsi = 16 };
	d.pci_intx = &bad;
	d.n_pci_intx = 1;
	CHECK_EQ(acpi_build(&gm, &d, &rsdp), -EINVAL);
	CHECK_EQ(mptable_build(&gm, &d), -EINVAL);
	d.n_pci_intx = 0;
	d.pci_ecam_base = 0xE0000000;
	d.pci_ecam_bus_start = 5;
	d.pci_ecam_bus_end = 4;
	CHECK_EQ(acpi_build(&gm, &d, &rsdp), -EINVAL);
	/* Dumping from a place with no RSDP. */
	CHECK_EQ(acpi_dump_tables(&gm, 0x1000, "/tmp"), -EINVAL);
	guest_mem_destroy(&gm);
}

int main(void)
{
	test_pkglength();
	test_names_and_integers();
	test_objects();
	test_bad_desc();

	bool iasl = have_iasl();
	if (!iasl)
		fprintf(stderr, "iasl not found: skipping the disassembly checks "
				"(apt-get install acpica-tools)\n");

	static const uint32_t ids1[] = { 0 };
	struct platform_desc one = {
		.ncpus = 1, .apic_ids = ids1, .ioapic_id = 0, .ioapic_pins = 24,
		.com_present = { true, false, false, false },
		.ram_below_4g = 64ULL << 20,
	};
	build_and_check(&one, iasl);

	static const uint32_t ids4[] = { 0, 1, 4, 5 };
	struct platform_desc four = {
		.ncpus = 4, .apic_ids = ids4, .ioapic_id = 4, .ioapic_pins = 24,
		.com_present = { true, true, false, false },
		.ram_below_4g = 64ULL << 20,
	};
	build_and_check(&four, iasl);

	/* No serial ports: no SPCR. */
	struct platform_desc noserial = one;
	noserial.com_present[0] = false;
	build_and_check(&noserial, iasl);

	/* What PCI will add: INTx routes, windows, ECAM (MCFG). */
	static const struct pci_intx_route routes[] = {
		{ 0, 1, 0, 16 }, { 0, 1, 1, 17 }, { 0, 2, 0, 17 }, { 0, 2, 1, 18 },
	};
	struct platform_desc pci = four;
	pci.com_present[2] = pci.com_present[3] = true;
	pci.pci_intx = routes;
	pci.n_pci_intx = sizeof(routes) / sizeof(routes[0]);
	pci.pci_mmio32_base = 0xC0000000;
	pci.pci_mmio32_limit = 0xDFFFFFFF;
	pci.pci_mmio64_base = 0x800000000ULL;
	pci.pci_mmio64_size = 0x800000000ULL;
	pci.pci_ecam_base = 0xE0000000;
	pci.pci_ecam_bus_start = 0;
	pci.pci_ecam_bus_end = 255;
	build_and_check(&pci, iasl);

	/* APIC ids past 254 take x2APIC entries (and no MP table). */
	static const uint32_t idsx[] = { 0, 1, 300 };
	struct platform_desc x2 = four;
	x2.ncpus = 3;
	x2.apic_ids = idsx;
	build_and_check(&x2, iasl);

	return UNIT_RESULT();
}
