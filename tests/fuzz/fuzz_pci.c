/* Fuzz target for PCI configuration space and BARs (src/pci/pci.c): the
 * guest's side of the bus (fuzz_pci_board.h has the devices). The input is
 * a sequence of accesses: 0xCF8 latches and 0xCFC-0xCFF data at every size
 * and offset, ECAM reads and writes of 1/2/4/8 bytes anywhere in its MiB,
 * BAR sizing and moves, COMMAND decode toggles, capability walks, accesses
 * to the BARs wherever they are mapped and to the windows around them,
 * and device-side INTx/MSI/MSI-X signals. Checked after every step:
 *   - mechanism #1 and ECAM read the same registers; absent functions,
 *     disabled or off-bus latches and misaligned ECAM accesses read
 *     all-ones, extended config space reads 0;
 *   - the IDs, class, header type and capability lists are read-only, and
 *     every capability walk ends, inside 0x40-0xFF, on the capabilities
 *     the devices declared; BAR sizing reads back the BAR's size mask;
 *   - a mapped BAR is decoded (COMMAND), is where its register says, and
 *     owns its whole range on the bus; bar_map calls match the mappings;
 *     BAR handlers only see offsets inside their BAR;
 *   - INTx: only the shared line GSI 19 moves, and it is high exactly when
 *     a function on it asserts INTx with INTx not disabled; nothing asks
 *     the VM to exit;
 *   - the heap does not grow with BAR moves (issue 9 defect 1: io_bus
 *     kept every replaced range table until the bus went; the input that
 *     found it is corpus/pci/regress-bar-sizing-heap-growth).
 *
 * Run (clang build with -Dsanitize=true, e.g. build-fuzz):
 *   build-fuzz/tests/fuzz/fuzz_pci -jobs=1 -workers=1 -max_len=1024 \
 *       -runs=10000000 tests/fuzz/corpus/pci
 * fuzz_pci_replay replays the corpus with any compiler (meson test
 * fuzz_pci_corpus). */
#include "fuzz_pci_board.h"

static uint32_t cf8_latch;

static uint32_t ones32(unsigned size)
{
	return (uint32_t)fuzz_ones(size > 4 ? 4 : size);
}

/* Registers a guest can never change (IDs, revision, class, header type,
 * status capability bit, capability pointer), per function. */
static uint8_t ro_snapshot[NDEV][0x40];
static const uint8_t ro_regs[] = { 0x00, 0x01, 0x02, 0x03, 0x08, 0x09, 0x0a, 0x0b, 0x0e, 0x34,
				   0x3d };

FUZZ_NOCOV static void snapshot_ro(void)
{
	for (unsigned i = 0; i < NDEV; i++)
		memcpy(ro_snapshot[i], B.dev[i]->cfg, 0x40);
}

FUZZ_NOCOV static void check_caps(unsigned i)
{
	static const uint8_t want[NDEV][3] = {
		{ 0 }, { PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX, 0 }, { 0 },
		{ PCI_CAP_ID_VNDR, PCI_CAP_ID_VNDR, 0 } };
	unsigned slot = dev_slot[i], func = dev_func[i];
	unsigned status = (unsigned)ecam_rd(slot, func, PCI_STATUS, 2);
	unsigned p = (unsigned)ecam_rd(slot, func, PCI_CAPABILITY_LIST, 1), k = 0;
	FUZZ_CHECK(!!(status & PCI_STATUS_CAP_LIST) == (want[i][0] != 0));
	if (!(status & PCI_STATUS_CAP_LIST))
		return;
	for (; p && k < 48; k++) {
		FUZZ_CHECK(p >= 0x40 && p <= 0xFC && !(p & 3));
		FUZZ_CHECK(ecam_rd(slot, func, p, 1) == want[i][k]);
		p = (unsigned)ecam_rd(slot, func, p + 1, 1);
	}
	FUZZ_CHECK(p == 0 && want[i][k] == 0);
}

FUZZ_NOCOV static void check_state(void)
{
	for (unsigned i = 0; i < NDEV; i++) {
		struct pci_dev *d = B.dev[i];
		for (unsigned k = 0; k < sizeof(ro_regs); k++)
			FUZZ_CHECK(d->cfg[ro_regs[k]] == ro_snapshot[i][ro_regs[k]]);
		FUZZ_CHECK((d->cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST) ==
			   (ro_snapshot[i][PCI_STATUS] & PCI_STATUS_CAP_LIST));
		uint16_t cmd = pci_get_u16(d, PCI_COMMAND);
		int mapped = 0;
		for (int n = 0; n < 6; n++) {
			const struct pci_bar *b = &d->bar[n];
			if (!b->mapped)
				continue;
			mapped++;
			bool io = b->type == PCI_BAR_IO;
			FUZZ_CHECK(cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY));
			FUZZ_CHECK(b->mapped_addr == b->addr && b->addr != 0);
			struct io_bus *bus = io ? fake.p.pio : fake.p.mmio;
			FUZZ_CHECK(io_bus_owner(bus, b->mapped_addr) == d->name);
			FUZZ_CHECK(io_bus_owner(bus, b->mapped_addr + b->size - 1) == d->name);
			FUZZ_CHECK(!io || b->mapped_addr + b->size <= 0x10000);
		}
		if (i == XDEV)
			FUZZ_CHECK(B.maps - B.unmaps == mapped);
		FUZZ_CHECK(d->intx_on == (d->intx_level && d->intx_pin && !d->intx_disabled));
		FUZZ_CHECK(d->intx_disabled == !!(cmd & PCI_COMMAND_INTX_DISABLE));
	}
	/* The two INTA# of slots 3 and 11 share GSI 19. */
	bool line = B.dev[1]->intx_on || B.dev[2]->intx_on;
	FUZZ_CHECK(fake.irq_level[19] == (int)line);
	for (unsigned g = 0; g < FAKE_MAX_GSI; g++)
		FUZZ_CHECK(g == 19 || fake.irq_sets[g] == 0);
	FUZZ_CHECK(fake.irq_bad_gsi == 0 && fake.exit_status == -1);
	/* The config ports and ECAM stay where they are. */
	FUZZ_CHECK(io_bus_owner(fake.p.pio, PCI_CONFIG_DATA_PORT) != NULL);
	FUZZ_CHECK(io_bus_owner(fake.p.mmio, PCI_ECAM_BASE + PCI_ECAM_SIZE - 1) != NULL);
}

/* What the latch selects, for a data access at 0xCFC + off. */
static bool cf8_target(unsigned off, unsigned size, unsigned *slot, unsigned *func, unsigned *reg)
{
	if (!(cf8_latch & 0x80000000u) || ((cf8_latch >> 16) & 0xFF) || off + size > 4)
		return false;
	*slot = (cf8_latch >> 11) & 31;
	*func = (cf8_latch >> 8) & 7;
	*reg = (cf8_latch & 0xFC) + off;
	return true;
}

FUZZ_NOCOV static void cfc_read(unsigned off, unsigned size)
{
	uint64_t v = fake_pio_read(&fake, PCI_CONFIG_DATA_PORT + off, size);
	unsigned slot, func, reg;
	if (!cf8_target(off, size, &slot, &func, &reg) || !dev_at(slot, func)) {
		FUZZ_CHECK(v == fuzz_ones(size));
		return;
	}
	/* The same register through ECAM (reg is aligned for size here, or
	 * ECAM refuses it: then compare byte by byte). */
	uint64_t e = 0;
	for (unsigned i = 0; i < size; i++)
		e |= ecam_rd(slot, func, reg + i, 1) << (8 * i);
	if (reg < PCI_STATUS + 2 && reg + size > PCI_STATUS)
		return; /* STATUS.INTERRUPT follows the device's INTx, not config */
	FUZZ_CHECK(v == e);
}

FUZZ_NOCOV static void ecam_read_checked(unsigned slot, unsigned func, unsigned reg, unsigned size)
{
	uint64_t v = ecam_rd(slot, func, reg, size);
	struct pci_dev *d = dev_at(slot, func);
	if (size == 8) { /* two dwords; the second may be the next function's */
		if ((reg & 3) || (!d && reg + 8 <= 0x1000))
			FUZZ_CHECK(v == ((reg & 3) || !d ? ~0ULL : v));
		return;
	}
	if ((reg & (size - 1)) || !d)
		FUZZ_CHECK(v == fuzz_ones(size));
	else if (reg >= PCI_CFG_SIZE)
		FUZZ_CHECK(v == 0); /* no extended space */
	else if (reg < 0x40 && reg != PCI_STATUS && reg != PCI_STATUS + 1 && !(reg < PCI_STATUS && reg + size > PCI_STATUS))
		FUZZ_CHECK(v == (pci_get_u32(d, reg & ~3u) >> (8 * (reg & 3)) & ones32(size)));
}

/* Sizing as a driver does it: all-ones, read the mask back, restore. */
static void size_bar(unsigned i, int n, bool via_cf8)
{
	struct pci_dev *d = B.dev[i];
	unsigned slot = dev_slot[i], func = dev_func[i], reg = PCI_BAR0 + 4 * (unsigned)n;
	uint32_t old = (uint32_t)ecam_rd(slot, func, reg, 4);
	uint32_t v;
	if (via_cf8) {
		cf8_latch = 0x80000000u | slot << 11 | func << 8 | reg;
		fake_pio_write(&fake, PCI_CONFIG_ADDRESS_PORT, 4, cf8_latch);
		fake_pio_write(&fake, PCI_CONFIG_DATA_PORT, 4, 0xFFFFFFFF);
		v = (uint32_t)fake_pio_read(&fake, PCI_CONFIG_DATA_PORT, 4);
	} else {
		ecam_wr(slot, func, reg, 4, 0xFFFFFFFF);
		v = (uint32_t)ecam_rd(slot, func, reg, 4);
	}
	const struct pci_bar *b = &d->bar[n];
	bool upper = n > 0 && d->bar[n - 1].type == PCI_BAR_MEM64;
	if (upper) {
		uint64_t mask = ~(d->bar[n - 1].size - 1) >> 32;
		FUZZ_CHECK(v == (uint32_t)mask);
	} else if (b->type == PCI_BAR_NONE) {
		FUZZ_CHECK(v == 0);
	} else if (b->type == PCI_BAR_IO) {
		FUZZ_CHECK(v == ((uint32_t)~(b->size - 1) | 1u));
	} else {
		uint32_t low = (b->type == PCI_BAR_MEM64 ? 4u : 0u) | (b->prefetch ? 8u : 0u);
		FUZZ_CHECK(v == (((uint32_t)~(b->size - 1) & ~0xFu) | low));
	}
	ecam_wr(slot, func, reg, 4, old);
}

static void bar_access(struct fuzz_in *in, uint8_t op)
{
	unsigned i = 1 + fin_u8(in) % 2;
	int n = fin_u8(in) % 6;
	struct pci_bar *b = &B.dev[i]->bar[n];
	unsigned size = fin_size(in);
	uint64_t off = fin_u16(in) % (b->size > 0xFFF0 ? 0xFFF0 : b->size + 8);
	if (!b->mapped)
		return;
	bool io = b->type == PCI_BAR_IO;
	uint64_t a = b->mapped_addr + off;
	if (op & 0x80) {
		uint64_t v = fin_value(in, size);
		if (io)
			fake_pio_write(&fake, a, size, v);
		else
			fake_mmio_write(&fake, a, size, v);
		return;
	}
	uint64_t v = io ? fake_pio_read(&fake, a, size) : fake_mmio_read(&fake, a, size);
	if (off >= b->size || b->ops != &bar_ops)
		return;
	uint64_t want = ((uint64_t)i << 56 | (uint64_t)n << 48 | off) & fuzz_ones(size);
	FUZZ_CHECK(v == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	board_create(1 + fin_u8(&in) % 96);
	cf8_latch = 0;
	snapshot_ro();
	check_state();
	size_t heap0 = fuzz_heap_bytes();

	while (fin_more(&in)) {
		uint8_t op = fin_u8(&in);
		unsigned slot, func;
		switch (op & 15) {
		case 0: { /* latch an address, mostly a sensible one */
			uint32_t a;
			if (op & 0x80) {
				a = fin_u32(&in);
			} else {
				pick_fn(&in, &slot, &func);
				a = 0x80000000u | slot << 11 | func << 8 | fin_u8(&in);
			}
			fake_pio_write(&fake, PCI_CONFIG_ADDRESS_PORT, 4, a);
			cf8_latch = a & 0x80FFFFFCu;
			FUZZ_CHECK(fake_pio_read(&fake, PCI_CONFIG_ADDRESS_PORT, 4) == cf8_latch);
			break;
		}
		case 1: { /* 0xCF8-0xCFB at other sizes: the latch ignores them */
			unsigned off = (op >> 4) & 3, sz = fin_size(&in);
			if (op & 0x80)
				fake_pio_write(&fake, PCI_CONFIG_ADDRESS_PORT + off, sz, fin_value(&in, sz));
			else
				fake_pio_read(&fake, PCI_CONFIG_ADDRESS_PORT + off, sz);
			if (off || sz != 4) /* a dword at 0xCF8 is op 0's business */
				FUZZ_CHECK(fake_pio_read(&fake, PCI_CONFIG_ADDRESS_PORT, 4) == cf8_latch);
			else if (op & 0x80)
				cf8_latch = (uint32_t)fake_pio_read(&fake, PCI_CONFIG_ADDRESS_PORT, 4);
			break;
		}
		case 2: /* data read at 0xCFC + off */
			cfc_read((op >> 4) & 3, fin_size(&in));
			break;
		case 3: { /* data write */
			unsigned sz = fin_size(&in);
			fake_pio_write(&fake, PCI_CONFIG_DATA_PORT + ((op >> 4) & 3), sz,
				       fin_value(&in, sz));
			break;
		}
		case 4: { /* ECAM read */
			pick_fn(&in, &slot, &func);
			unsigned reg = fin_u16(&in) & 0xFFF;
			if (!(op & 0x80))
				reg &= 0xFF;
			ecam_read_checked(slot, func, reg, fin_size(&in));
			break;
		}
		case 5: { /* ECAM write */
			pick_fn(&in, &slot, &func);
			unsigned reg = fin_u16(&in) & 0xFFF, sz = fin_size(&in);
			if (!(op & 0x80))
				reg &= 0xFF;
			ecam_wr(slot, func, reg, sz, fin_value(&in, sz));
			break;
		}
		case 6: /* COMMAND: decoding and INTx disable on and off */
			pick_fn(&in, &slot, &func);
			ecam_wr(slot, func, PCI_COMMAND, 2, fin_u16(&in));
			break;
		case 7: /* size a BAR */
			size_bar(fin_u8(&in) % NDEV, (op >> 4) % 6, op & 0x80);
			break;
		case 8: { /* move a BAR: to a place in its window, or anywhere */
			unsigned i = 1 + (op >> 7), n = (op >> 4) & 7;
			if (n > 5)
				break;
			uint32_t v = fin_u32(&in);
			if (!(v & 1) && (op & 0x08)) /* keep it in the 32-bit window */
				v = (uint32_t)(PCI_MMIO32_BASE + (v % (1u << 29))) | (v & 0xF);
			ecam_wr(dev_slot[i], dev_func[i], PCI_BAR0 + 4 * n, 4, v);
			break;
		}
		case 9: /* the devices signal */
			switch ((op >> 4) & 3) {
			case 0:
				pci_intx_set(B.dev[1 + (op >> 6 & 1)], op & 0x80);
				break;
			case 1:
				pci_msi_notify(B.dev[1 + (op >> 6 & 1)]);
				break;
			default:
				pci_msix_notify(B.dev[1 + (op >> 6 & 1)], fin_u16(&in));
				break;
			}
			break;
		case 10: /* capability walks */
			for (unsigned i = 0; i < NDEV; i++)
				check_caps(i);
			break;
		case 11:
		case 12:
			bar_access(&in, op);
			break;
		case 13: { /* anywhere in the MMIO hole or the port space */
			unsigned sz = fin_size(&in);
			if (op & 0x10) {
				uint64_t a = PCI_MMIO32_BASE + fin_u32(&in) % 0x40000000u;
				if (op & 0x80)
					fake_mmio_write(&fake, a, sz, fin_value(&in, sz));
				else
					fake_mmio_read(&fake, a, sz);
			} else {
				uint64_t a = fin_u16(&in);
				if (op & 0x80)
					fake_pio_write(&fake, a, sz, fin_value(&in, sz));
				else
					fake_pio_read(&fake, a, sz);
			}
			break;
		}
		default: { /* a sweep of one function's config space */
			pick_fn(&in, &slot, &func);
			unsigned sz = 1u << ((op >> 4) & 3);
			for (unsigned reg = 0; reg < 0x100; reg += sz)
				ecam_read_checked(slot, func, reg, sz);
			break;
		}
		}
		check_state();
		FUZZ_CHECK(fuzz_heap_bytes() <= heap0 + 16384);
	}
	for (unsigned i = 0; i < NDEV; i++)
		check_caps(i);
	board_destroy();
	FUZZ_CHECK(B.maps == B.unmaps);
	return 0;
}
