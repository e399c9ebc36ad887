/* The PCI bus the pci and msix fuzz targets drive, built as src/pci's unit
 * test builds one (tests/unit/test_pci.c), on the fake platform:
 *   00.0 a host bridge: no BARs, no interrupts;
 *   03.0 BAR0 I/O 32, BAR1 32-bit 4 KiB holding the MSI-X table (at 0)
 *        and PBA (at 0x800), BAR2 64-bit prefetchable 16 KiB, BAR4 64-bit
 *        256 MiB (placed above 4 GiB), MSI, MSI-X (nvec vectors), INTA#,
 *        and a bar_map callback;
 *   0b.0 BAR0 32-bit 16 bytes, BAR5 I/O 4, INTA# (the same line as 03.0),
 *        and its own config handlers for 0x40 and up (so no capabilities);
 *   0b.2 no BARs, two vendor capabilities, the core's default handlers.
 * Every BAR but the MSI-X one is served by bar_ops, which checks that the
 * offsets it gets lie inside the BAR. */
#pragma once
#include <string.h>

#include "fake_platform.h"
#include "fuzz_input.h"
#include "pci/pci.h"
#include "util/log.h"

#define NDEV 4
#define XDEV 1 /* 03.0 */

struct bar_tag {
	unsigned dev, n;
	uint64_t size;
};

struct board {
	struct pci_bus *bus;
	struct pci_dev *dev[NDEV];
	struct bar_tag tags[NDEV][6];
	uint8_t priv_cfg[256]; /* 0b.0's own registers from 0x40 */
	int maps, unmaps;      /* bar_map calls for 03.0 */
	uint64_t bar_accesses;
};

static struct fake_platform fake;
static struct board B;

static const unsigned dev_slot[NDEV] = { 0, 3, 11, 11 };
static const unsigned dev_func[NDEV] = { 0, 0, 0, 2 };

static uint64_t bar_rd(void *opaque, uint64_t off, unsigned size)
{
	const struct bar_tag *t = opaque;
	FUZZ_CHECK(off < t->size); /* the bus only dispatches inside the range */
	FUZZ_CHECK(size == 1 || size == 2 || size == 4 || size == 8);
	B.bar_accesses++;
	return (uint64_t)t->dev << 56 | (uint64_t)t->n << 48 | off;
}

static void bar_wr(void *opaque, uint64_t off, unsigned size, uint64_t v)
{
	(void)v;
	bar_rd(opaque, off, size);
}

static const struct io_ops bar_ops = { bar_rd, bar_wr };

static void on_bar_map(struct pci_dev *d, int bar, uint64_t addr, bool mapped)
{
	FUZZ_CHECK(d == B.dev[XDEV] && bar >= 0 && bar < 6);
	FUZZ_CHECK(d->bar[bar].mapped == mapped);
	FUZZ_CHECK(!mapped || d->bar[bar].mapped_addr == addr);
	if (mapped)
		B.maps++;
	else
		B.unmaps++;
}

static const struct pci_dev_ops x_ops = { .bar_map = on_bar_map };

static uint32_t priv_read(struct pci_dev *d, unsigned reg, unsigned size)
{
	FUZZ_CHECK(d == B.dev[2] && reg >= 0x40 && reg + size <= PCI_CFG_SIZE);
	uint32_t v = 0;
	memcpy(&v, &B.priv_cfg[reg], size);
	return v;
}

static void priv_write(struct pci_dev *d, unsigned reg, unsigned size, uint32_t v)
{
	FUZZ_CHECK(d == B.dev[2] && reg >= 0x40 && reg + size <= PCI_CFG_SIZE);
	memcpy(&B.priv_cfg[reg], &v, size);
}

static const struct pci_dev_ops priv_ops = { .cfg_read = priv_read, .cfg_write = priv_write };

static void bar(unsigned i, int n, enum pci_bar_type type, uint64_t size, bool pf)
{
	B.tags[i][n] = (struct bar_tag){ i, (unsigned)n, size };
	if (pci_bar_init(B.dev[i], n, type, size, pf, &bar_ops, &B.tags[i][n]))
		abort();
}

/* Build the board on a fresh pair of buses; nvec MSI-X vectors (1-128). */
static void board_create(unsigned nvec)
{
	if (!fake.p.pio) {
		if (fake_platform_init(&fake, GUEST_MEM_MIN))
			abort();
		log_set_level(LOG_ERROR); /* BARs placed over others are reported */
	}
	if (fake_platform_renew_buses(&fake))
		abort();
	fake_platform_clear_records(&fake);
	memset(&B, 0, sizeof(B));
	if (pci_bus_create(&fake.p, &B.bus))
		abort();
	static const uint32_t cls[NDEV] = { 0x060000, 0x020000, 0x010000, 0x078000 };
	static const struct pci_dev_ops *ops[NDEV] = { NULL, &x_ops, &priv_ops, NULL };
	for (unsigned i = 0; i < NDEV; i++)
		if (pci_dev_create(B.bus, dev_slot[i], dev_func[i], i == XDEV ? "x" : "dev", 0x1af4,
				   (uint16_t)(0x1040 + i), cls[i], (uint8_t)i, ops[i], NULL,
				   &B.dev[i]))
			abort();
	bar(1, 0, PCI_BAR_IO, 32, false);
	bar(1, 1, PCI_BAR_MEM32, 4096, false);
	bar(1, 2, PCI_BAR_MEM64, 16384, true);
	bar(1, 4, PCI_BAR_MEM64, 256ULL << 20, false);
	if (pci_msi_init(B.dev[1]) || pci_msix_init(B.dev[1], nvec, 1, 0, 0x800))
		abort();
	pci_intx_init(B.dev[1], 1);
	bar(2, 0, PCI_BAR_MEM32, 16, false);
	bar(2, 5, PCI_BAR_IO, 4, false);
	pci_intx_init(B.dev[2], 1);
	if (!pci_cap_add(B.dev[3], PCI_CAP_ID_VNDR, 12) || !pci_cap_add(B.dev[3], PCI_CAP_ID_VNDR, 3))
		abort();
	struct pci_intx_route routes[8];
	char err[256];
	if (pci_bus_finish(B.bus, routes, 8, err, sizeof(err)) != 2)
		abort();
}

static void board_destroy(void)
{
	pci_bus_destroy(B.bus);
	B.bus = NULL;
}

/* ---- config space as a guest reaches it ---- */

static inline uint64_t ecam_addr(unsigned slot, unsigned func, unsigned reg)
{
	return PCI_ECAM_BASE + ((uint64_t)slot << 15 | func << 12 | reg);
}

static inline uint64_t ecam_rd(unsigned slot, unsigned func, unsigned reg, unsigned size)
{
	return fake_mmio_read(&fake, ecam_addr(slot, func, reg), size);
}

static inline void ecam_wr(unsigned slot, unsigned func, unsigned reg, unsigned size, uint64_t v)
{
	fake_mmio_write(&fake, ecam_addr(slot, func, reg), size, v);
}

static inline struct pci_dev *dev_at(unsigned slot, unsigned func)
{
	for (unsigned i = 0; i < NDEV; i++)
		if (dev_slot[i] == slot && dev_func[i] == func)
			return B.dev[i];
	return NULL;
}

/* Slot and function: mostly the ones that exist. */
static inline void pick_fn(struct fuzz_in *in, unsigned *slot, unsigned *func)
{
	uint8_t b = fin_u8(in);
	if (b & 0x80) {
		*slot = b & 31;
		*func = fin_u8(in) & 7;
	} else {
		unsigned i = b % NDEV;
		*slot = dev_slot[i];
		*func = dev_func[i];
	}
}
