/* The Intel MultiProcessor Specification 1.4 tables: the floating pointer
 * structure (4.1) and the configuration table (4.2, 4.3) right after it,
 * at MPTABLE_GPA in the BIOS area where guests scan for "_MP_". */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "boot/tables.h"
#include "machine/memmap.h"

/* MP floating pointer structure (MP 1.4, 4.1, Table 4-1): 16 bytes. */
struct mp_fps {
	char signature[4];  /* 0: "_MP_" */
	uint32_t physptr;   /* 4: configuration table address */
	uint8_t length;     /* 8: in 16-byte units: 1 */
	uint8_t spec_rev;   /* 9: 4 = version 1.4 */
	uint8_t checksum;   /* 10 */
	uint8_t feature[5]; /* 11: [0] = 0: a config table exists; [1] bit 7 IMCRP */
} __attribute__((packed));
_Static_assert(sizeof(struct mp_fps) == 16, "MP floating pointer");
_Static_assert(offsetof(struct mp_fps, checksum) == 10, "MP floating pointer");

/* MP configuration table header (4.2, Table 4-2): 44 bytes. */
struct mp_config {
	char signature[4];     /* 0: "PCMP" */
	uint16_t base_length;  /* 4: header and base entries */
	uint8_t spec_rev;      /* 6: 4 */
	uint8_t checksum;      /* 7 */
	char oem_id[8];        /* 8 */
	char product_id[12];   /* 16 */
	uint32_t oem_table;    /* 28 */
	uint16_t oem_table_size; /* 32 */
	uint16_t entry_count;  /* 34 */
	uint32_t lapic_addr;   /* 36 */
	uint16_t ext_length;   /* 40 */
	uint8_t ext_checksum;  /* 42 */
	uint8_t reserved;      /* 43 */
} __attribute__((packed));
_Static_assert(sizeof(struct mp_config) == 44, "MP config header");
_Static_assert(offsetof(struct mp_config, entry_count) == 34, "MP config header");
_Static_assert(offsetof(struct mp_config, lapic_addr) == 36, "MP config header");

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_IOINT = 3, MP_LINT = 4 };

/* Processor entry (4.3.1, Table 4-4): 20 bytes. */
struct mp_processor {
	uint8_t type; /* 0 */
	uint8_t lapic_id;
	uint8_t lapic_version;
	uint8_t cpu_flags; /* bit 0 EN, bit 1 BP */
	uint32_t signature;
	uint32_t feature_flags;
	uint32_t reserved[2];
} __attribute__((packed));
_Static_assert(sizeof(struct mp_processor) == 20, "MP processor entry");
#define MP_CPU_EN 0x01
#define MP_CPU_BP 0x02

/* Bus entry (4.3.2, Table 4-7): 8 bytes. */
struct mp_bus {
	uint8_t type; /* 1 */
	uint8_t bus_id;
	char bus_type[6];
} __attribute__((packed));
_Static_assert(sizeof(struct mp_bus) == 8, "MP bus entry");

/* I/O APIC entry (4.3.3, Table 4-9): 8 bytes. */
struct mp_ioapic {
	uint8_t type; /* 2 */
	uint8_t id;
	uint8_t version;
	uint8_t flags; /* bit 0 EN */
	uint32_t addr;
} __attribute__((packed));
_Static_assert(sizeof(struct mp_ioapic) == 8, "MP IOAPIC entry");

/* I/O and local interrupt assignment entries (4.3.4, 4.3.5): 8 bytes. */
struct mp_intr {
	uint8_t type; /* 3 or 4 */
	uint8_t int_type; /* 0 INT, 1 NMI, 2 SMI, 3 ExtINT */
	uint16_t flags;   /* bits 1-0 polarity, bits 3-2 trigger mode */
	uint8_t src_bus;
	uint8_t src_irq;
	uint8_t dst_id;   /* IOAPIC id, or local APIC id (0xFF: all) */
	uint8_t dst_pin;  /* INTIN# or LINTIN# */
} __attribute__((packed));
_Static_assert(sizeof(struct mp_intr) == 8, "MP interrupt entry");

enum { MP_INT = 0, MP_NMI = 1, MP_SMI = 2, MP_EXTINT = 3 };
#define MP_POL_CONFORM 0x0
#define MP_POL_HIGH 0x1
#define MP_POL_LOW 0x3
#define MP_TRIG_CONFORM (0x0 << 2)
#define MP_TRIG_EDGE (0x1 << 2)
#define MP_TRIG_LEVEL (0x3 << 2)

#define MP_BUS_PCI 0
#define MP_BUS_ISA 1

#define MP_LAPIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11 /* what KVM's IOAPIC reports */

static uint8_t checksum8(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + b[i]);
	return (uint8_t)(0x100 - sum);
}

/* CPU signature and feature flags for the processor entries: the host's
 * CPUID leaf 1 (the guest sees a filtered version of it; the MP table's
 * copy is informational), or a plain family 6 with FPU and APIC. */
static void cpu_signature(uint32_t *sig, uint32_t *features)
{
	*sig = 0x00000600;
	*features = (1u << 0) | (1u << 9); /* FPU, APIC */
#if defined(__x86_64__) || defined(__i386__)
	unsigned eax, ebx, ecx, edx;
	if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
		*sig = eax & 0x0FFF3FFF; /* stepping, model, family, type, ext */
		*features = edx;
	}
#endif
}

int mptable_build(const struct guest_mem *gm, const struct platform_desc *desc)
{
	if (!gm || !desc || desc->ncpus == 0 || !desc->apic_ids)
		return -EINVAL;
	if (desc->n_pci_intx && !desc->pci_intx)
		return -EINVAL;
	for (unsigned i = 0; i < desc->ncpus; i++)
		if (desc->apic_ids[i] >= 0xFF) /* 8-bit ids; 0xFF means "all" */
			return -ERANGE;
	unsigned pins = desc->ioapic_pins ? desc->ioapic_pins : 24;
	for (unsigned i = 0; i < desc->n_pci_intx; i++) {
		const struct pci_intx_route *r = &desc->pci_intx[i];
		if (r->bus != 0 || r->dev > 31 || r->pin > 3 || r->gsi >= pins || r->gsi > 0xFF)
			return -EINVAL;
	}

	/* Entries, in the order the spec wants them (sorted by type). */
	size_t nentries = desc->ncpus + 2 + 1 + 15 + desc->n_pci_intx + 2;
	size_t size = sizeof(struct mp_config) + desc->ncpus * sizeof(struct mp_processor) +
		      (nentries - desc->ncpus) * 8;
	uint64_t cfg_gpa = MPTABLE_GPA + sizeof(struct mp_fps);
	if (size > 0xFFFF || nentries > 0xFFFF || cfg_gpa + size > MPTABLE_END)
		return -ENOSPC;

	uint8_t *buf = calloc(1, size);
	if (!buf)
		return -ENOMEM;
	struct mp_config *cfg = (struct mp_config *)buf;
	memcpy(cfg->signature, "PCMP", 4);
	cfg->base_length = (uint16_t)size;
	cfg->spec_rev = 4;
	memcpy(cfg->oem_id, "KHYVE   ", 8);
	memcpy(cfg->product_id, "KHYVE       ", 12);
	cfg->entry_count = (uint16_t)nentries;
	cfg->lapic_addr = (uint32_t)LAPIC_GPA;
	uint8_t *p = buf + sizeof(*cfg);

	uint32_t sig, features;
	cpu_signature(&sig, &features);
	for (unsigned i = 0; i < desc->ncpus; i++) {
		struct mp_processor e = {
			.type = MP_PROCESSOR,
			.lapic_id = (uint8_t)desc->apic_ids[i],
			.lapic_version = MP_LAPIC_VERSION,
			.cpu_flags = MP_CPU_EN | (i == 0 ? MP_CPU_BP : 0),
			.signature = sig,
			.feature_flags = features,
		};
		memcpy(p, &e, sizeof(e));
		p += sizeof(e);
	}

	struct mp_bus buses[2] = {
		{ .type = MP_BUS, .bus_id = MP_BUS_PCI, .bus_type = { 'P', 'C', 'I', ' ', ' ', ' ' } },
		{ .type = MP_BUS, .bus_id = MP_BUS_ISA, .bus_type = { 'I', 'S', 'A', ' ', ' ', ' ' } },
	};
	memcpy(p, buses, sizeof(buses));
	p += sizeof(buses);

	struct mp_ioapic io = {
		.type = MP_IOAPIC,
		.id = desc->ioapic_id,
		.version = MP_IOAPIC_VERSION,
		.flags = 0x01,
		.addr = (uint32_t)IOAPIC_GPA,
	};
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);

	/* ISA IRQs: identity onto IOAPIC pins, except IRQ 0 (the PIT) on pin
	 * 2 and IRQ 2 (the cascade) not routed. The SCI is level, active
	 * high, as the MADT's override says. */
	for (unsigned irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue;
		struct mp_intr e = {
			.type = MP_IOINT,
			.int_type = MP_INT,
			.flags = MP_POL_CONFORM | MP_TRIG_CONFORM,
			.src_bus = MP_BUS_ISA,
			.src_irq = (uint8_t)irq,
			.dst_id = desc->ioapic_id,
			.dst_pin = (uint8_t)(irq == 0 ? 2 : irq),
		};
		if (irq == ACPI_SCI_IRQ)
			e.flags = MP_POL_HIGH | MP_TRIG_LEVEL;
		memcpy(p, &e, sizeof(e));
		p += sizeof(e);
	}

	/* PCI INTx: source "IRQ" is device << 2 | pin (MP 1.4, D.3). */
	for (unsigned i = 0; i < desc->n_pci_intx; i++) {
		const struct pci_intx_route *r = &desc->pci_intx[i];
		struct mp_intr e = {
			.type = MP_IOINT,
			.int_type = MP_INT,
			.flags = MP_POL_LOW | MP_TRIG_LEVEL,
			.src_bus = MP_BUS_PCI,
			.src_irq = (uint8_t)(r->dev << 2 | r->pin),
			.dst_id = desc->ioapic_id,
			.dst_pin = (uint8_t)r->gsi,
		};
		memcpy(p, &e, sizeof(e));
		p += sizeof(e);
	}

	/* Local interrupts: the 8259 on LINT0 (virtual wire), NMI on LINT1. */
	struct mp_intr lints[2] = {
		{ .type = MP_LINT, .int_type = MP_EXTINT, .src_bus = MP_BUS_ISA, .src_irq = 0,
		  .dst_id = 0xFF, .dst_pin = 0 },
		{ .type = MP_LINT, .int_type = MP_NMI, .src_bus = MP_BUS_ISA, .src_irq = 0,
		  .dst_id = 0xFF, .dst_pin = 1 },
	};
	memcpy(p, lints, sizeof(lints));
	p += sizeof(lints);

	if ((size_t)(p - buf) != size) {
		free(buf);
		return -EINVAL; /* unreachable: the size arithmetic above is wrong */
	}
	cfg->checksum = checksum8(buf, size);

	struct mp_fps fps = {
		.signature = { '_', 'M', 'P', '_' },
		.physptr = (uint32_t)cfg_gpa,
		.length = 1,
		.spec_rev = 4,
	};
	fps.checksum = checksum8(&fps, sizeof(fps));

	int rc = guest_mem_fill(gm, MPTABLE_GPA, 0, MPTABLE_END - MPTABLE_GPA);
	if (!rc)
		rc = guest_mem_write(gm, MPTABLE_GPA, &fps, sizeof(fps));
	if (!rc)
		rc = guest_mem_write(gm, cfg_gpa, buf, size);
	free(buf);
	return rc;
}
