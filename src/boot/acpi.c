/* ACPI tables, written in C (no iasl at run time). Layout references:
 * ACPI 6.5 chapter 5 (RSDP 5.2.5, header 5.2.6, RSDT 5.2.7, XSDT 5.2.8,
 * FADT 5.2.9, FACS 5.2.10, DSDT 5.2.11.1, MADT 5.2.12), the generic
 * address structure 5.2.3.2; Microsoft's SPCR (revision 2); the PCI
 * Firmware Specification 3.x for MCFG.
 *
 * Layout in guest memory: [ACPI_TABLES_GPA, ACPI_TABLES_END) holds, in
 * this order, FACS (64-byte aligned, first), DSDT, FADT, MADT, SPCR, MCFG
 * (when there is ECAM), XSDT and RSDT, each 16-byte aligned; the RSDP sits
 * alone at ACPI_RSDP_GPA. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot/aml.h"
#include "boot/tables.h"
#include "machine/memmap.h"

#define ACPI_OEM_ID "KHYVE "
#define ACPI_OEM_TABLE_ID "KHYVE   "
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_ID "KHYV"
#define ACPI_CREATOR_REVISION 1

/* ---- Table layouts ---- */

/* Root System Description Pointer (5.2.5.3): 36 bytes in ACPI 2.0+. */
struct acpi_rsdp {
	char signature[8];  /* 0: "RSD PTR " */
	uint8_t checksum;   /* 8: over the first 20 bytes */
	char oem_id[6];     /* 9 */
	uint8_t revision;   /* 15: 2 */
	uint32_t rsdt_addr; /* 16 */
	uint32_t length;    /* 20: 36 */
	uint64_t xsdt_addr; /* 24 */
	uint8_t ext_checksum; /* 32: over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");
_Static_assert(offsetof(struct acpi_rsdp, rsdt_addr) == 16, "RSDP");
_Static_assert(offsetof(struct acpi_rsdp, xsdt_addr) == 24, "RSDP");
_Static_assert(offsetof(struct acpi_rsdp, ext_checksum) == 32, "RSDP");

/* System Description Table Header (5.2.6): 36 bytes. */
struct acpi_header {
	char signature[4];      /* 0 */
	uint32_t length;        /* 4 */
	uint8_t revision;       /* 8 */
	uint8_t checksum;       /* 9 */
	char oem_id[6];         /* 10 */
	char oem_table_id[8];   /* 16 */
	uint32_t oem_revision;  /* 24 */
	char creator_id[4];     /* 28 */
	uint32_t creator_revision; /* 32 */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_header) == 36, "SDT header");
_Static_assert(offsetof(struct acpi_header, checksum) == 9, "SDT header");
_Static_assert(offsetof(struct acpi_header, creator_id) == 28, "SDT header");

/* Generic Address Structure (5.2.3.2): 12 bytes. */
struct acpi_gas {
	uint8_t space_id; /* 0 memory, 1 system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size; /* 0 undefined, 1 byte, 2 word, 3 dword, 4 qword */
	uint64_t address;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS");
#define ACPI_GAS_IO 1

/* Fixed ACPI Description Table (5.2.9, Table 5.9), revision 6: 276 bytes. */
struct acpi_fadt {
	struct acpi_header h;    /* 0 */
	uint32_t firmware_ctrl;  /* 36 */
	uint32_t dsdt;           /* 40 */
	uint8_t reserved0;       /* 44 (INT_MODEL in ACPI 1.0) */
	uint8_t preferred_pm_profile; /* 45 */
	uint16_t sci_int;        /* 46 */
	uint32_t smi_cmd;        /* 48 */
	uint8_t acpi_enable;     /* 52 */
	uint8_t acpi_disable;    /* 53 */
	uint8_t s4bios_req;      /* 54 */
	uint8_t pstate_cnt;      /* 55 */
	uint32_t pm1a_evt_blk;   /* 56 */
	uint32_t pm1b_evt_blk;   /* 60 */
	uint32_t pm1a_cnt_blk;   /* 64 */
	uint32_t pm1b_cnt_blk;   /* 68 */
	uint32_t pm2_cnt_blk;    /* 72 */
	uint32_t pm_tmr_blk;     /* 76 */
	uint32_t gpe0_blk;       /* 80 */
	uint32_t gpe1_blk;       /* 84 */
	uint8_t pm1_evt_len;     /* 88 */
	uint8_t pm1_cnt_len;     /* 89 */
	uint8_t pm2_cnt_len;     /* 90 */
	uint8_t pm_tmr_len;      /* 91 */
	uint8_t gpe0_blk_len;    /* 92 */
	uint8_t gpe1_blk_len;    /* 93 */
	uint8_t gpe1_base;       /* 94 */
	uint8_t cst_cnt;         /* 95 */
	uint16_t p_lvl2_lat;     /* 96 */
	uint16_t p_lvl3_lat;     /* 98 */
	uint16_t flush_size;     /* 100 */
	uint16_t flush_stride;   /* 102 */
	uint8_t duty_offset;     /* 104 */
	uint8_t duty_width;      /* 105 */
	uint8_t day_alrm;        /* 106 */
	uint8_t mon_alrm;        /* 107 */
	uint8_t century;         /* 108 */
	uint16_t iapc_boot_arch; /* 109 */
	uint8_t reserved1;       /* 111 */
	uint32_t flags;          /* 112 */
	struct acpi_gas reset_reg; /* 116 */
	uint8_t reset_value;     /* 128 */
	uint16_t arm_boot_arch;  /* 129 */
	uint8_t minor_version;   /* 131 */
	uint64_t x_firmware_ctrl; /* 132 */
	uint64_t x_dsdt;         /* 140 */
	struct acpi_gas x_pm1a_evt_blk; /* 148 */
	struct acpi_gas x_pm1b_evt_blk; /* 160 */
	struct acpi_gas x_pm1a_cnt_blk; /* 172 */
	struct acpi_gas x_pm1b_cnt_blk; /* 184 */
	struct acpi_gas x_pm2_cnt_blk;  /* 196 */
	struct acpi_gas x_pm_tmr_blk;   /* 208 */
	struct acpi_gas x_gpe0_blk;     /* 220 */
	struct acpi_gas x_gpe1_blk;     /* 232 */
	struct acpi_gas sleep_control_reg; /* 244 */
	struct acpi_gas sleep_status_reg;  /* 256 */
	uint64_t hypervisor_vendor_id;     /* 268 */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT");
_Static_assert(offsetof(struct acpi_fadt, sci_int) == 46, "FADT");
_Static_assert(offsetof(struct acpi_fadt, pm1a_evt_blk) == 56, "FADT");
_Static_assert(offsetof(struct acpi_fadt, pm_tmr_blk) == 76, "FADT");
_Static_assert(offsetof(struct acpi_fadt, pm1_evt_len) == 88, "FADT");
_Static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT");
_Static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT");
_Static_assert(offsetof(struct acpi_fadt, reset_value) == 128, "FADT");
_Static_assert(offsetof(struct acpi_fadt, minor_version) == 131, "FADT");
_Static_assert(offsetof(struct acpi_fadt, x_firmware_ctrl) == 132, "FADT");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT");
_Static_assert(offsetof(struct acpi_fadt, x_pm1a_evt_blk) == 148, "FADT");
_Static_assert(offsetof(struct acpi_fadt, x_pm_tmr_blk) == 208, "FADT");
_Static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT");
_Static_assert(offsetof(struct acpi_fadt, hypervisor_vendor_id) == 268, "FADT");

/* FADT fixed feature flags (Table 5.10). */
#define FADT_F_WBINVD (1u << 0)
#define FADT_F_PROC_C1 (1u << 2)
#define FADT_F_PWR_BUTTON (1u << 4) /* set = control-method power button */
#define FADT_F_SLP_BUTTON (1u << 5) /* set = no fixed sleep button */
#define FADT_F_FIX_RTC (1u << 6)    /* set = no RTC wake status in PM1 */
#define FADT_F_TMR_VAL_EXT (1u << 8)
#define FADT_F_RESET_REG_SUP (1u << 10)
/* IA-PC boot architecture flags (Table 5.11). */
#define FADT_BOOT_LEGACY_DEVICES (1u << 0)
#define FADT_BOOT_8042 (1u << 1)
#define FADT_BOOT_VGA_NOT_PRESENT (1u << 2)

/* Firmware ACPI Control Structure (5.2.10): 64 bytes, no checksum. */
struct acpi_facs {
	char signature[4];          /* 0 */
	uint32_t length;            /* 4 */
	uint32_t hardware_signature; /* 8 */
	uint32_t firmware_waking_vector; /* 12 */
	uint32_t global_lock;       /* 16 */
	uint32_t flags;             /* 20 */
	uint64_t x_firmware_waking_vector; /* 24 */
	uint8_t version;            /* 32 */
	uint8_t reserved[3];        /* 33 */
	uint32_t ospm_flags;        /* 36 */
	uint8_t reserved2[24];      /* 40 */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS");
_Static_assert(offsetof(struct acpi_facs, version) == 32, "FACS");

/* Multiple APIC Description Table (5.2.12). */
struct acpi_madt {
	struct acpi_header h;
	uint32_t lapic_addr; /* 36 */
	uint32_t flags;      /* 40: bit 0 PCAT_COMPAT */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT");
#define MADT_PCAT_COMPAT 1u

enum {
	MADT_LAPIC = 0,
	MADT_IOAPIC = 1,
	MADT_ISO = 2,
	MADT_LAPIC_NMI = 4,
	MADT_X2APIC = 9,
	MADT_X2APIC_NMI = 10,
};

struct madt_lapic { /* 5.2.12.2: 8 bytes */
	uint8_t type, length;
	uint8_t uid;
	uint8_t apic_id;
	uint32_t flags; /* bit 0 enabled */
} __attribute__((packed));
_Static_assert(sizeof(struct madt_lapic) == 8, "MADT LAPIC");

struct madt_ioapic { /* 5.2.12.3: 12 bytes */
	uint8_t type, length;
	uint8_t id;
	uint8_t reserved;
	uint32_t addr;
	uint32_t gsi_base;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_ioapic) == 12, "MADT IOAPIC");

struct madt_iso { /* 5.2.12.5: 10 bytes */
	uint8_t type, length;
	uint8_t bus; /* 0 = ISA */
	uint8_t source;
	uint32_t gsi;
	uint16_t flags; /* MPS INTI flags */
} __attribute__((packed));
_Static_assert(sizeof(struct madt_iso) == 10, "MADT ISO");

struct madt_lapic_nmi { /* 5.2.12.7: 6 bytes */
	uint8_t type, length;
	uint8_t uid; /* 0xFF: all processors */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_lapic_nmi) == 6, "MADT LAPIC NMI");

struct madt_x2apic { /* 5.2.12.12: 16 bytes */
	uint8_t type, length;
	uint16_t reserved;
	uint32_t x2apic_id;
	uint32_t flags;
	uint32_t uid;
} __attribute__((packed));
_Static_assert(sizeof(struct madt_x2apic) == 16, "MADT x2APIC");

struct madt_x2apic_nmi { /* 5.2.12.13: 12 bytes */
	uint8_t type, length;
	uint16_t flags;
	uint32_t uid; /* 0xFFFFFFFF: all processors */
	uint8_t lint;
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct madt_x2apic_nmi) == 12, "MADT x2APIC NMI");

/* MPS INTI flags: polarity bits 1-0, trigger mode bits 3-2. */
#define MPS_INTI_POL_HIGH 0x1
#define MPS_INTI_POL_LOW 0x3
#define MPS_INTI_TRIG_EDGE (0x1 << 2)
#define MPS_INTI_TRIG_LEVEL (0x3 << 2)

/* Serial Port Console Redirection table, revision 2: 80 bytes. */
struct acpi_spcr {
	struct acpi_header h;
	uint8_t interface_type;   /* 36: 0 = full 16550 */
	uint8_t reserved0[3];     /* 37 */
	struct acpi_gas base;     /* 40 */
	uint8_t interrupt_type;   /* 52: bit 0 8259 IRQ, bit 1 IOAPIC GSI */
	uint8_t irq;              /* 53 */
	uint32_t gsi;             /* 54 */
	uint8_t baud_rate;        /* 58: 7 = 115200 */
	uint8_t parity;           /* 59 */
	uint8_t stop_bits;        /* 60 */
	uint8_t flow_control;     /* 61 */
	uint8_t terminal_type;    /* 62 */
	uint8_t language;         /* 63 */
	uint16_t pci_device_id;   /* 64 */
	uint16_t pci_vendor_id;   /* 66 */
	uint8_t pci_bus;          /* 68 */
	uint8_t pci_device;       /* 69 */
	uint8_t pci_function;     /* 70 */
	uint32_t pci_flags;       /* 71 */
	uint8_t pci_segment;      /* 75 */
	uint32_t reserved1;       /* 76 */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_spcr) == 80, "SPCR");
_Static_assert(offsetof(struct acpi_spcr, base) == 40, "SPCR");
_Static_assert(offsetof(struct acpi_spcr, gsi) == 54, "SPCR");
_Static_assert(offsetof(struct acpi_spcr, pci_device_id) == 64, "SPCR");
_Static_assert(offsetof(struct acpi_spcr, pci_segment) == 75, "SPCR");

/* PCI Express memory-mapped configuration space table (PCI Firmware 3.x,
 * 4.1.2). */
struct acpi_mcfg {
	struct acpi_header h;
	uint64_t reserved; /* 36 */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_mcfg) == 44, "MCFG");

struct mcfg_alloc { /* 16 bytes */
	uint64_t base; /* bus 0's configuration space */
	uint16_t segment;
	uint8_t bus_start, bus_end;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct mcfg_alloc) == 16, "MCFG allocation");

/* ---- Helpers ---- */

static uint8_t checksum8(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + b[i]);
	return (uint8_t)(0x100 - sum);
}

static void fill_header(struct acpi_header *h, const char sig[4], uint32_t length, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = length;
	h->revision = rev;
	h->checksum = 0;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = ACPI_OEM_REVISION;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = ACPI_CREATOR_REVISION;
}

static struct acpi_gas gas_io(uint16_t port, uint8_t bits, uint8_t access_size)
{
	return (struct acpi_gas){ .space_id = ACPI_GAS_IO, .bit_width = bits,
				  .access_size = access_size, .address = port };
}

/* Places tables one after another in [ACPI_TABLES_GPA, ACPI_TABLES_END). */
struct acpi_layout {
	const struct guest_mem *gm;
	uint64_t next;
};

/* Writes a table (the checksum at offset 9 computed here unless nosum)
 * at the next free, aligned spot; returns its address in *gpa. */
static int place(struct acpi_layout *l, void *table, size_t len, uint64_t align, bool sum,
		 uint64_t *gpa)
{
	uint64_t at = (l->next + align - 1) & ~(align - 1);
	if (at > ACPI_TABLES_END || len > ACPI_TABLES_END - at)
		return -ENOSPC;
	if (sum) {
		struct acpi_header *h = table;
		h->checksum = 0;
		h->checksum = checksum8(table, len);
	}
	int rc = guest_mem_write(l->gm, at, table, len);
	if (rc)
		return rc;
	l->next = at + len;
	*gpa = at;
	return 0;
}

/* ---- DSDT ---- */

static void pci_mmio32(const struct platform_desc *d, uint32_t *base, uint32_t *limit)
{
	if (d->pci_mmio32_base == 0 && d->pci_mmio32_limit == 0) {
		*base = (uint32_t)PCI_MMIO32_DEFAULT_BASE;
		*limit = (uint32_t)PCI_MMIO32_DEFAULT_LIMIT;
	} else {
		*base = (uint32_t)d->pci_mmio32_base;
		*limit = (uint32_t)d->pci_mmio32_limit;
	}
}

static void ecam_range(const struct platform_desc *d, uint64_t *start, uint64_t *end)
{
	*start = d->pci_ecam_base + ((uint64_t)d->pci_ecam_bus_start << 20);
	*end = d->pci_ecam_base + (((uint64_t)d->pci_ecam_bus_end + 1) << 20) - 1;
}

static void dsdt_com(struct aml *a, unsigned i)
{
	char name[5];
	snprintf(name, sizeof(name), "COM%u", i + 1);
	size_t dev = aml_device_begin(a, name);
	aml_name_eisaid(a, "_HID", "PNP0501");
	aml_name_integer(a, "_UID", i + 1);
	struct aml r;
	aml_init(&r);
	aml_res_io(&r, machine_com_ports[i].port, machine_com_ports[i].port, 0x01, 0x08);
	aml_res_irq_noflags(&r, machine_com_ports[i].irq);
	aml_name(a, "_CRS");
	aml_resource_template(a, &r);
	aml_free(&r);
	aml_end(a, dev);
}

static void dsdt_pci0(struct aml *a, const struct platform_desc *d)
{
	bool ecam = d->pci_ecam_base != 0;
	size_t dev = aml_device_begin(a, "PCI0");
	if (ecam) {
		aml_name_eisaid(a, "_HID", "PNP0A08"); /* PCI Express root */
		aml_name_eisaid(a, "_CID", "PNP0A03");
	} else {
		aml_name_eisaid(a, "_HID", "PNP0A03");
	}
	aml_name_integer(a, "_ADR", 0);
	aml_name_integer(a, "_UID", 0);
	aml_name_integer(a, "_BBN", 0);

	struct aml r;
	aml_init(&r);
	if (ecam)
		aml_res_word_bus_number(&r, d->pci_ecam_bus_start, d->pci_ecam_bus_end);
	else
		aml_res_word_bus_number(&r, 0, 255);
	aml_res_io(&r, 0x0CF8, 0x0CF8, 0x01, 0x08); /* the config ports */
	aml_res_dword_io(&r, 0x0000, 0x0CF7);
	aml_res_dword_io(&r, 0x0D00, 0xFFFF);
	uint32_t base, limit;
	pci_mmio32(d, &base, &limit);
	aml_res_dword_memory(&r, false, AML_NON_CACHEABLE, base, limit);
	if (d->pci_mmio64_size)
		aml_res_qword_memory(&r, false, AML_NON_CACHEABLE, d->pci_mmio64_base,
				     d->pci_mmio64_base + d->pci_mmio64_size - 1);
	aml_name(a, "_CRS");
	aml_resource_template(a, &r);
	aml_free(&r);

	/* _PRT: Package { Address (dev << 16 | 0xFFFF), Pin, Source 0, GSI }.
	 * Only when some slot has an INTx route: an empty _PRT package is
	 * not a routing table (FreeBSD: "_PRT: Return Package has no
	 * elements"), and a bridge with nothing to route needs none. */
	if (d->n_pci_intx) {
		aml_name(a, "_PRT");
		size_t prt = aml_package_begin(a, d->n_pci_intx);
		for (unsigned i = 0; i < d->n_pci_intx; i++) {
			const struct pci_intx_route *rt = &d->pci_intx[i];
			size_t e = aml_package_begin(a, 4);
			aml_integer(a, (uint64_t)rt->dev << 16 | 0xFFFF);
			aml_integer(a, rt->pin);
			aml_integer(a, 0);
			aml_integer(a, rt->gsi);
			aml_end(a, e);
		}
		aml_end(a, prt);
	}

	/* The LPC devices, on PCI0 where their I/O ports are decoded. */
	for (unsigned i = 0; i < 4; i++)
		if (d->com_present[i])
			dsdt_com(a, i);

	size_t rtc = aml_device_begin(a, "RTC");
	aml_name_eisaid(a, "_HID", "PNP0B00");
	aml_init(&r);
	aml_res_io(&r, 0x70, 0x70, 0x01, 0x02);
	aml_res_irq_noflags(&r, 8);
	aml_name(a, "_CRS");
	aml_resource_template(a, &r);
	aml_free(&r);
	aml_end(a, rtc);

	size_t kbd = aml_device_begin(a, "KBD");
	aml_name_eisaid(a, "_HID", "PNP0303");
	aml_init(&r);
	aml_res_io(&r, 0x60, 0x60, 0x01, 0x01);
	aml_res_io(&r, 0x64, 0x64, 0x01, 0x01);
	aml_res_irq_noflags(&r, 1);
	aml_name(a, "_CRS");
	aml_resource_template(a, &r);
	aml_free(&r);
	aml_end(a, kbd);

	aml_end(a, dev);
}

/* One processor device (ACPI0007, ACPI 6.5 section 8.4) per vCPU, C000,
 * C001, ...: its _UID is the MADT's ACPI Processor UID for that CPU (the
 * CPU index, put_madt), which is how an OS pairs the two. Without them
 * FreeBSD attaches no cpuN to acpi0 (and so no cpufreq, C-states or
 * per-CPU sysctls); Linux pairs them to its CPUs the same way. The
 * deprecated Processor () object is not used, as QEMU's DSDT no longer
 * does. */
static void dsdt_cpus(struct aml *a, const struct platform_desc *d)
{
	for (unsigned i = 0; i < d->ncpus; i++) {
		char name[5];
		snprintf(name, sizeof(name), "C%03X", i & 0xFFF);
		size_t dev = aml_device_begin(a, name);
		aml_name_string(a, "_HID", "ACPI0007");
		aml_name_integer(a, "_UID", i);
		aml_end(a, dev);
	}
}

/* The DSDT's AML (without the header). Names at root scope carry no "\\"
 * prefix, as iasl would emit them: the unit test checks that iasl, given
 * its own disassembly of this DSDT, compiles back the very same bytes. */
static int build_dsdt_aml(const struct platform_desc *d, struct aml *a)
{
	aml_init(a);

	/* \_S3_ and \_S5_: SLP_TYPa, SLP_TYPb, reserved, reserved. S3
	 * (suspend to RAM) as QEMU offers it; no S1, S2 or S4. */
	aml_name(a, "_S3");
	size_t s3 = aml_package_begin(a, 4);
	aml_integer(a, ACPI_S3_SLP_TYP);
	aml_integer(a, ACPI_S3_SLP_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a, s3);
	aml_name(a, "_S5"); /* at root scope: no "\\" needed */
	size_t s5 = aml_package_begin(a, 4);
	aml_integer(a, ACPI_S5_SLP_TYP);
	aml_integer(a, ACPI_S5_SLP_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a, s5);

	/* \_PIC(mode): the OS says PIC (0) or APIC (1); kept for _PRT. */
	aml_name_integer(a, "PICM", 0);
	size_t pic = aml_method_begin(a, "_PIC", 1, false, 0);
	aml_store(a);
	aml_arg(a, 0);
	aml_namestring(a, "PICM"); /* found by the upward search */
	aml_end(a, pic);

	size_t sb = aml_scope_begin(a, "_SB");
	dsdt_cpus(a, d);
	dsdt_pci0(a, d);

	if (d->pci_ecam_base) {
		/* Motherboard resources: Linux trusts MCFG only when the ECAM
		 * area is reserved by a PNP0C02 device. */
		size_t mres = aml_device_begin(a, "MRES");
		aml_name_eisaid(a, "_HID", "PNP0C02");
		aml_name_integer(a, "_UID", 0);
		uint64_t start, end;
		ecam_range(d, &start, &end);
		struct aml r;
		aml_init(&r);
		if (end <= 0xFFFFFFFFULL)
			aml_res_dword_memory(&r, true, AML_NON_CACHEABLE, (uint32_t)start,
					     (uint32_t)end);
		else
			aml_res_qword_memory(&r, true, AML_NON_CACHEABLE, start, end);
		aml_name(a, "_CRS");
		aml_resource_template(a, &r);
		aml_free(&r);
		aml_end(a, mres);
	}
	aml_end(a, sb);
	return aml_error(a);
}

/* ---- The tables ---- */

static int put_dsdt(struct acpi_layout *l, const struct platform_desc *d, uint64_t *gpa)
{
	struct aml a;
	int rc = build_dsdt_aml(d, &a);
	if (rc) {
		aml_free(&a);
		return rc;
	}
	size_t len = sizeof(struct acpi_header) + a.len;
	uint8_t *t = calloc(1, len);
	if (!t) {
		aml_free(&a);
		return -ENOMEM;
	}
	/* Revision 2: integers are 64 bits. */
	fill_header((struct acpi_header *)t, "DSDT", (uint32_t)len, 2);
	memcpy(t + sizeof(struct acpi_header), a.buf, a.len);
	aml_free(&a);
	rc = place(l, t, len, 16, true, gpa);
	free(t);
	return rc;
}

/* First in the layout, so at ACPI_FACS_GPA, where the wake from S3 reads
 * the vectors (acpi_facs_waking_vector). */
_Static_assert(ACPI_FACS_GPA == ACPI_TABLES_GPA && (ACPI_FACS_GPA & 63) == 0, "FACS");
static int put_facs(struct acpi_layout *l, uint64_t *gpa)
{
	struct acpi_facs f = { .signature = { 'F', 'A', 'C', 'S' }, .length = sizeof(f),
			       .version = 2 };
	return place(l, &f, sizeof(f), 64, false, gpa);
}

int acpi_facs_waking_vector(const struct guest_mem *gm, uint32_t *vector, uint64_t *x_vector)
{
	struct acpi_facs f;
	int rc = guest_mem_read(gm, ACPI_FACS_GPA, &f, sizeof(f));
	if (rc)
		return rc;
	*vector = f.firmware_waking_vector;
	*x_vector = f.x_firmware_waking_vector;
	return 0;
}

static int put_fadt(struct acpi_layout *l, uint64_t facs, uint64_t dsdt, uint64_t *gpa)
{
	struct acpi_fadt f;
	memset(&f, 0, sizeof(f));
	fill_header(&f.h, "FACP", sizeof(f), 6);
	f.minor_version = 3; /* ACPI 6.3; the layout is unchanged since 6.0 */
	f.firmware_ctrl = (uint32_t)facs;
	f.dsdt = (uint32_t)dsdt;
	f.x_firmware_ctrl = facs;
	f.x_dsdt = dsdt;
	f.preferred_pm_profile = 0; /* unspecified */
	f.sci_int = ACPI_SCI_IRQ;
	f.smi_cmd = 0; /* no SMM: ACPI is always enabled (SCI_EN reads 1) */

	f.pm1a_evt_blk = ACPI_PM1A_EVT_PORT;
	f.pm1a_cnt_blk = ACPI_PM1A_CNT_PORT;
	f.pm_tmr_blk = ACPI_PM_TMR_PORT;
	f.pm1_evt_len = 4;
	f.pm1_cnt_len = 2;
	f.pm_tmr_len = 4;
	f.x_pm1a_evt_blk = gas_io(ACPI_PM1A_EVT_PORT, 32, 2);
	f.x_pm1a_cnt_blk = gas_io(ACPI_PM1A_CNT_PORT, 16, 2);
	f.x_pm_tmr_blk = gas_io(ACPI_PM_TMR_PORT, 32, 3);

	/* No C2/C3: latencies above 100/1000 us say "not supported". */
	f.p_lvl2_lat = 101;
	f.p_lvl3_lat = 1001;

	f.iapc_boot_arch = FADT_BOOT_LEGACY_DEVICES | FADT_BOOT_8042 | FADT_BOOT_VGA_NOT_PRESENT;
	/* PWR_BUTTON clear: the power button is the fixed-feature one in PM1.
	 * SLP_BUTTON set: there is no sleep button. FIX_RTC clear: the RTC
	 * alarm wakes from S3 through RTC_STS/RTC_EN in PM1. TMR_VAL_EXT
	 * clear: the PM timer is 24 bits. */
	f.flags = FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP;
	f.reset_reg = gas_io(ACPI_RESET_PORT, 8, 1);
	f.reset_value = ACPI_RESET_VALUE;
	return place(l, &f, sizeof(f), 16, true, gpa);
}

static int put_madt(struct acpi_layout *l, const struct platform_desc *d, uint64_t *gpa)
{
	/* Worst case size: every CPU an x2APIC entry. */
	size_t cap = sizeof(struct acpi_madt) + d->ncpus * sizeof(struct madt_x2apic) +
		     sizeof(struct madt_ioapic) + 2 * sizeof(struct madt_iso) +
		     sizeof(struct madt_lapic_nmi) + sizeof(struct madt_x2apic_nmi);
	uint8_t *t = calloc(1, cap);
	if (!t)
		return -ENOMEM;
	struct acpi_madt *m = (struct acpi_madt *)t;
	m->lapic_addr = (uint32_t)LAPIC_GPA;
	m->flags = MADT_PCAT_COMPAT;
	size_t off = sizeof(*m);
	bool any_x2apic = false;

	/* Processors, the boot CPU first; UIDs are CPU indexes. Ids (or
	 * UIDs) that do not fit a byte take an x2APIC entry. */
	for (unsigned i = 0; i < d->ncpus; i++) {
		uint32_t id = d->apic_ids[i];
		if (id < 0xFF && i < 0xFF) {
			struct madt_lapic e = { .type = MADT_LAPIC, .length = sizeof(e),
						.uid = (uint8_t)i, .apic_id = (uint8_t)id,
						.flags = 1 };
			memcpy(t + off, &e, sizeof(e));
			off += sizeof(e);
		} else {
			struct madt_x2apic e = { .type = MADT_X2APIC, .length = sizeof(e),
						 .x2apic_id = id, .flags = 1, .uid = i };
			memcpy(t + off, &e, sizeof(e));
			off += sizeof(e);
			any_x2apic = true;
		}
	}

	struct madt_ioapic io = { .type = MADT_IOAPIC, .length = sizeof(io), .id = d->ioapic_id,
				  .addr = (uint32_t)IOAPIC_GPA, .gsi_base = 0 };
	memcpy(t + off, &io, sizeof(io));
	off += sizeof(io);

	/* IRQ0 (the PIT) arrives on IOAPIC pin 2; the SCI is level, active
	 * high, as the PM device drives it. */
	struct madt_iso isos[2] = {
		{ .type = MADT_ISO, .length = sizeof(struct madt_iso), .bus = 0, .source = 0,
		  .gsi = 2, .flags = 0 },
		{ .type = MADT_ISO, .length = sizeof(struct madt_iso), .bus = 0,
		  .source = ACPI_SCI_IRQ, .gsi = ACPI_SCI_IRQ,
		  .flags = MPS_INTI_POL_HIGH | MPS_INTI_TRIG_LEVEL },
	};
	memcpy(t + off, isos, sizeof(isos));
	off += sizeof(isos);

	struct madt_lapic_nmi nmi = { .type = MADT_LAPIC_NMI, .length = sizeof(nmi),
				      .uid = 0xFF, .flags = 0, .lint = 1 };
	memcpy(t + off, &nmi, sizeof(nmi));
	off += sizeof(nmi);
	if (any_x2apic) {
		struct madt_x2apic_nmi xn = { .type = MADT_X2APIC_NMI, .length = sizeof(xn),
					      .flags = 0, .uid = 0xFFFFFFFF, .lint = 1 };
		memcpy(t + off, &xn, sizeof(xn));
		off += sizeof(xn);
	}

	/* Revision 5 (ACPI 6.3); flags bit 1 (online capable) stays clear. */
	fill_header(&m->h, "APIC", (uint32_t)off, 5);
	int rc = place(l, t, off, 16, true, gpa);
	free(t);
	return rc;
}

static int put_spcr(struct acpi_layout *l, uint64_t *gpa)
{
	struct acpi_spcr s;
	memset(&s, 0, sizeof(s));
	fill_header(&s.h, "SPCR", sizeof(s), 2);
	s.interface_type = 0; /* full 16550 */
	s.base = gas_io(machine_com_ports[0].port, 8, 1);
	s.interrupt_type = 0x03; /* 8259 IRQ and IOAPIC GSI */
	s.irq = machine_com_ports[0].irq;
	s.gsi = machine_com_ports[0].irq;
	s.baud_rate = 7; /* 115200 */
	s.parity = 0;
	s.stop_bits = 1;
	s.flow_control = 0;
	s.terminal_type = 0; /* VT100 */
	s.pci_device_id = 0xFFFF; /* not a PCI device */
	s.pci_vendor_id = 0xFFFF;
	return place(l, &s, sizeof(s), 16, true, gpa);
}

static int put_mcfg(struct acpi_layout *l, const struct platform_desc *d, uint64_t *gpa)
{
	struct {
		struct acpi_mcfg m;
		struct mcfg_alloc a;
	} __attribute__((packed)) t;
	memset(&t, 0, sizeof(t));
	fill_header(&t.m.h, "MCFG", sizeof(t), 1);
	t.a.base = d->pci_ecam_base;
	t.a.segment = 0;
	t.a.bus_start = d->pci_ecam_bus_start;
	t.a.bus_end = d->pci_ecam_bus_end;
	return place(l, &t, sizeof(t), 16, true, gpa);
}

static int put_rsdt_xsdt(struct acpi_layout *l, const uint64_t *tables, unsigned n,
			 uint64_t *xsdt, uint64_t *rsdt)
{
	uint8_t buf[sizeof(struct acpi_header) + 8 * 8];
	if (n > 8)
		return -E2BIG;

	size_t len = sizeof(struct acpi_header) + 8 * (size_t)n;
	memset(buf, 0, sizeof(buf));
	fill_header((struct acpi_header *)buf, "XSDT", (uint32_t)len, 1);
	for (unsigned i = 0; i < n; i++)
		memcpy(buf + sizeof(struct acpi_header) + 8 * i, &tables[i], 8);
	int rc = place(l, buf, len, 16, true, xsdt);
	if (rc)
		return rc;

	len = sizeof(struct acpi_header) + 4 * (size_t)n;
	memset(buf, 0, sizeof(buf));
	fill_header((struct acpi_header *)buf, "RSDT", (uint32_t)len, 1);
	for (unsigned i = 0; i < n; i++) {
		uint32_t a = (uint32_t)tables[i];
		memcpy(buf + sizeof(struct acpi_header) + 4 * i, &a, 4);
	}
	return place(l, buf, len, 16, true, rsdt);
}

static int check_desc(const struct platform_desc *d)
{
	if (d->ncpus == 0 || !d->apic_ids)
		return -EINVAL;
	if (d->n_pci_intx && !d->pci_intx)
		return -EINVAL;
	unsigned pins = d->ioapic_pins ? d->ioapic_pins : 24;
	for (unsigned i = 0; i < d->n_pci_intx; i++) {
		const struct pci_intx_route *r = &d->pci_intx[i];
		if (r->bus != 0 || r->dev > 31 || r->pin > 3 || r->gsi >= pins)
			return -EINVAL;
	}
	if (d->pci_mmio32_base || d->pci_mmio32_limit) {
		if (d->pci_mmio32_limit < d->pci_mmio32_base ||
		    d->pci_mmio32_limit > 0xFFFFFFFFULL)
			return -EINVAL;
	}
	if (d->pci_mmio64_size &&
	    d->pci_mmio64_base + d->pci_mmio64_size - 1 < d->pci_mmio64_base)
		return -EINVAL;
	if (d->pci_ecam_base) {
		if (d->pci_ecam_bus_end < d->pci_ecam_bus_start || (d->pci_ecam_base & 0xFFFFF))
			return -EINVAL;
		uint64_t start, end;
		ecam_range(d, &start, &end);
		if (end < start)
			return -EINVAL;
	}
	return 0;
}

int acpi_build(const struct guest_mem *gm, const struct platform_desc *desc,
	       uint64_t *rsdp_gpa)
{
	if (!gm || !desc || !rsdp_gpa)
		return -EINVAL;
	int rc = check_desc(desc);
	if (rc)
		return rc;
	rc = guest_mem_fill(gm, ACPI_TABLES_GPA, 0, ACPI_TABLES_END - ACPI_TABLES_GPA);
	if (rc)
		return rc;

	struct acpi_layout l = { .gm = gm, .next = ACPI_TABLES_GPA };
	uint64_t facs, dsdt, fadt, madt, spcr, mcfg, xsdt, rsdt;
	uint64_t listed[8];
	unsigned n = 0;

	if ((rc = put_facs(&l, &facs)) || (rc = put_dsdt(&l, desc, &dsdt)) ||
	    (rc = put_fadt(&l, facs, dsdt, &fadt)) || (rc = put_madt(&l, desc, &madt)))
		return rc;
	listed[n++] = fadt;
	listed[n++] = madt;
	if (desc->com_present[0]) {
		if ((rc = put_spcr(&l, &spcr)))
			return rc;
		listed[n++] = spcr;
	}
	if (desc->pci_ecam_base) {
		if ((rc = put_mcfg(&l, desc, &mcfg)))
			return rc;
		listed[n++] = mcfg;
	}
	if ((rc = put_rsdt_xsdt(&l, listed, n, &xsdt, &rsdt)))
		return rc;

	struct acpi_rsdp r;
	memset(&r, 0, sizeof(r));
	memcpy(r.signature, "RSD PTR ", 8);
	memcpy(r.oem_id, ACPI_OEM_ID, 6);
	r.revision = 2;
	r.rsdt_addr = (uint32_t)rsdt;
	r.length = sizeof(r);
	r.xsdt_addr = xsdt;
	r.checksum = checksum8(&r, 20);
	r.ext_checksum = checksum8(&r, sizeof(r));
	rc = guest_mem_write(gm, ACPI_RSDP_GPA, &r, sizeof(r));
	if (rc)
		return rc;
	*rsdp_gpa = ACPI_RSDP_GPA;
	return 0;
}

/* ---- Dumping ---- */

#define DUMP_MAX_TABLES 64
#define DUMP_MAX_TABLE_LEN (4u << 20)

struct dumper {
	const struct guest_mem *gm;
	int dirfd;
	unsigned count;
	uint64_t done[DUMP_MAX_TABLES]; /* addresses already written */
	char sigs[DUMP_MAX_TABLES][4];
};

static int write_file(int dirfd, const char *name, const void *p, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	const uint8_t *b = p;
	while (len) {
		ssize_t w = write(fd, b, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int err = -errno;
			close(fd);
			return err;
		}
		b += w;
		len -= (size_t)w;
	}
	if (close(fd) < 0)
		return -errno;
	return 0;
}

/* Writes the table at gpa (a header with its length at offset 4, or a
 * fixed-size FACS) as <SIG>.dat, once per address. */
static int dump_one(struct dumper *d, uint64_t gpa)
{
	if (gpa == 0)
		return 0;
	for (unsigned i = 0; i < d->count; i++)
		if (d->done[i] == gpa)
			return 0;
	if (d->count == DUMP_MAX_TABLES)
		return -E2BIG;

	uint8_t head[8];
	int rc = guest_mem_read(d->gm, gpa, head, sizeof(head));
	if (rc)
		return rc;
	uint32_t len;
	memcpy(&len, head + 4, 4);
	if (len < (memcmp(head, "FACS", 4) ? sizeof(struct acpi_header) : 8) ||
	    len > DUMP_MAX_TABLE_LEN)
		return -EINVAL;
	char sig[5];
	for (int i = 0; i < 4; i++) {
		char c = (char)head[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '_';
		sig[i] = ok ? c : '_';
	}
	sig[4] = '\0';
	unsigned same = 0;
	for (unsigned i = 0; i < d->count; i++)
		if (!memcmp(d->sigs[i], sig, 4))
			same++;

	uint8_t *t = malloc(len);
	if (!t)
		return -ENOMEM;
	/* Copy once: the guest might change the bytes under us. */
	rc = guest_mem_read(d->gm, gpa, t, len);
	if (rc) {
		free(t);
		return rc;
	}
	char name[32];
	if (same)
		snprintf(name, sizeof(name), "%s%u.dat", sig, same + 1);
	else
		snprintf(name, sizeof(name), "%s.dat", sig);
	rc = write_file(d->dirfd, name, t, len);
	if (!rc) {
		d->done[d->count] = gpa;
		memcpy(d->sigs[d->count], sig, 4);
		d->count++;
	}

	/* The FADT points further, at the FACS and the DSDT. */
	if (!rc && !memcmp(sig, "FACP", 4)) {
		uint64_t facs = 0, dsdt = 0;
		uint32_t v32;
		if (len >= offsetof(struct acpi_fadt, dsdt) + 4) {
			memcpy(&v32, t + offsetof(struct acpi_fadt, firmware_ctrl), 4);
			facs = v32;
			memcpy(&v32, t + offsetof(struct acpi_fadt, dsdt), 4);
			dsdt = v32;
		}
		uint64_t v64;
		if (len >= offsetof(struct acpi_fadt, x_dsdt) + 8) {
			memcpy(&v64, t + offsetof(struct acpi_fadt, x_firmware_ctrl), 8);
			if (v64)
				facs = v64;
			memcpy(&v64, t + offsetof(struct acpi_fadt, x_dsdt), 8);
			if (v64)
				dsdt = v64;
		}
		free(t);
		rc = dump_one(d, facs);
		if (!rc)
			rc = dump_one(d, dsdt);
		return rc;
	}
	free(t);
	return rc;
}

/* Dumps an RSDT (entry size 4) or XSDT (8) and every table it lists. */
static int dump_sdt(struct dumper *d, uint64_t gpa, unsigned esize)
{
	if (gpa == 0)
		return 0;
	struct acpi_header h;
	int rc = guest_mem_read(d->gm, gpa, &h, sizeof(h));
	if (rc)
		return rc;
	if (h.length < sizeof(h) || h.length > DUMP_MAX_TABLE_LEN)
		return -EINVAL;
	rc = dump_one(d, gpa);
	if (rc)
		return rc;
	unsigned n = (h.length - (unsigned)sizeof(h)) / esize;
	for (unsigned i = 0; i < n; i++) {
		uint64_t addr = 0;
		rc = guest_mem_read(d->gm, gpa + sizeof(h) + (uint64_t)i * esize, &addr, esize);
		if (rc)
			return rc;
		rc = dump_one(d, addr);
		if (rc)
			return rc;
	}
	return 0;
}

int acpi_dump_tables(const struct guest_mem *gm, uint64_t rsdp_gpa, const char *dir)
{
	if (!gm || !dir)
		return -EINVAL;
	struct acpi_rsdp r;
	int rc = guest_mem_read(gm, rsdp_gpa, &r, 20);
	if (rc)
		return rc;
	if (memcmp(r.signature, "RSD PTR ", 8))
		return -EINVAL;
	size_t rlen = 20;
	if (r.revision >= 2) {
		rc = guest_mem_read(gm, rsdp_gpa, &r, sizeof(r));
		if (rc)
			return rc;
		rlen = sizeof(r);
	}

	struct dumper *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->gm = gm;
	d->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0) {
		rc = -errno;
		free(d);
		return rc;
	}
	rc = write_file(d->dirfd, "RSDP.dat", &r, rlen);
	if (!rc && rlen == sizeof(r))
		rc = dump_sdt(d, r.xsdt_addr, 8);
	if (!rc)
		rc = dump_sdt(d, r.rsdt_addr, 4);
	if (!rc && d->count == 0)
		rc = -ENOENT; /* an RSDP that points nowhere */
	close(d->dirfd);
	free(d);
	return rc;
}
