/* Fuzz target for MSI-X (src/pci/pci.c): the table and PBA in a memory BAR
 * (fuzz_pci_board.h, function 03.0, 1-96 vectors so the PBA has one or two
 * qwords), written and read at every size and offset, including across
 * entries and past the end of the BAR; the capability's enable and
 * function-mask bits through config space; vectors signalled by the device
 * (in range, out of range, PCI_NO_VECTOR) while masked, unmasked, enabled
 * or not; the BAR moved or its decoding switched off under it; MSI beside
 * it. The harness keeps a model of the table and checks, after every step:
 *   - every byte read from the table is the model's (address, data, and
 *     only the mask bit of the control word), the PBA shows exactly the
 *     pending vectors, and the rest of the BAR reads 0; the PBA and the
 *     reserved control bits ignore writes;
 *   - a signalled vector is delivered (with the message the table holds at
 *     that moment) exactly when MSI-X is enabled and neither the vector nor
 *     the function is masked; otherwise it is held pending while enabled
 *     and dropped while disabled; unmasking delivers what was pending, in
 *     vector order, once;
 *   - no vector is ever left pending while deliverable, no INTx moves and
 *     nothing asks the VM to exit.
 *
 * Run (clang build with -Dsanitize=true, e.g. build-fuzz):
 *   build-fuzz/tests/fuzz/fuzz_msix -jobs=1 -workers=1 -max_len=1024 \
 *       -runs=10000000 tests/fuzz/corpus/msix
 * fuzz_msix_replay replays the corpus with any compiler (meson test
 * fuzz_msix_corpus). */
#include "fuzz_pci_board.h"

#define MAXVEC 96
#define PBA_OFF 0x800u
#define BAR_SIZE 0x1000u

static struct {
	unsigned nvec;
	uint64_t addr[MAXVEC];
	uint32_t data[MAXVEC];
	bool masked[MAXVEC], pending[MAXVEC];
	bool enabled, maskall;
	unsigned msi_count; /* deliveries so far */
	uint64_t last_addr;
	uint32_t last_data;
} m;

static struct pci_dev *X(void)
{
	return B.dev[XDEV];
}

FUZZ_NOCOV static void model_deliver(unsigned v)
{
	m.msi_count++;
	m.last_addr = m.addr[v];
	m.last_data = m.data[v];
}

FUZZ_NOCOV static void model_flush_pending(void)
{
	if (!m.enabled || m.maskall)
		return;
	for (unsigned v = 0; v < m.nvec; v++)
		if (m.pending[v] && !m.masked[v]) {
			m.pending[v] = false;
			model_deliver(v);
		}
}

FUZZ_NOCOV static uint8_t model_byte(uint64_t o)
{
	if (o < m.nvec * 16ULL) {
		unsigned v = (unsigned)(o / 16), f = (unsigned)(o % 16);
		if (f < 8)
			return (uint8_t)(m.addr[v] >> (8 * f));
		if (f < 12)
			return (uint8_t)(m.data[v] >> (8 * (f - 8)));
		return f == 12 ? m.masked[v] : 0;
	}
	if (o >= PBA_OFF && o < PBA_OFF + (m.nvec + 63) / 64 * 8) {
		uint8_t b = 0;
		for (unsigned i = 0; i < 8; i++) {
			unsigned v = (unsigned)(o - PBA_OFF) * 8 + i;
			if (v < m.nvec && m.pending[v])
				b |= (uint8_t)(1u << i);
		}
		return b;
	}
	return 0;
}

FUZZ_NOCOV static void model_write(uint64_t off, unsigned size, uint64_t value)
{
	bool unmasked = false;
	for (unsigned i = 0; i < size; i++) {
		uint64_t o = off + i;
		if (o >= m.nvec * 16ULL)
			continue;
		unsigned v = (unsigned)(o / 16), f = (unsigned)(o % 16);
		uint8_t b = (uint8_t)(value >> (8 * i));
		if (f < 8) {
			m.addr[v] = (m.addr[v] & ~(0xFFULL << (8 * f))) | (uint64_t)b << (8 * f);
		} else if (f < 12) {
			unsigned s = 8 * (f - 8);
			m.data[v] = (m.data[v] & ~(0xFFu << s)) | (uint32_t)b << s;
		} else if (f == 12) {
			if (m.masked[v] && !(b & 1))
				unmasked = true;
			m.masked[v] = b & 1;
		}
	}
	if (unmasked)
		model_flush_pending();
}

static uint64_t table_base(bool *mapped)
{
	const struct pci_bar *b = &X()->bar[1];
	*mapped = b->mapped;
	return b->mapped_addr;
}

FUZZ_NOCOV static void check_state(void)
{
	FUZZ_CHECK(fake.msi_count == m.msi_count);
	if (m.msi_count) {
		FUZZ_CHECK(fake.last_msi_addr == m.last_addr);
		FUZZ_CHECK(fake.last_msi_data == m.last_data);
	}
	FUZZ_CHECK(pci_msix_enabled(X()) == m.enabled);
	FUZZ_CHECK(X()->msix_maskall == m.maskall);
	for (unsigned v = 0; v < m.nvec; v++) {
		const struct pci_msix_vector *e = &X()->msix[v];
		FUZZ_CHECK(e->addr == m.addr[v] && e->data == m.data[v]);
		FUZZ_CHECK(e->ctrl == (uint32_t)m.masked[v]);
		FUZZ_CHECK(e->pending == m.pending[v]);
		/* Never pending while it could be delivered. */
		FUZZ_CHECK(!(e->pending && m.enabled && !m.maskall && !m.masked[v]));
	}
	for (unsigned g = 0; g < FAKE_MAX_GSI; g++)
		FUZZ_CHECK(fake.irq_sets[g] == 0);
	FUZZ_CHECK(fake.exit_status == -1);
}

FUZZ_NOCOV static void bar_read(uint64_t off, unsigned size)
{
	bool mapped;
	uint64_t base = table_base(&mapped);
	if (!mapped)
		return;
	uint64_t v = fake_mmio_read(&fake, base + off, size);
	if (off >= BAR_SIZE)
		return; /* past the BAR: whoever is there, or all-ones */
	uint64_t want = 0;
	for (unsigned i = 0; i < size; i++)
		want |= (uint64_t)model_byte(off + i) << (8 * i);
	FUZZ_CHECK(v == want);
}

static void bar_write(uint64_t off, unsigned size, uint64_t value)
{
	bool mapped;
	uint64_t base = table_base(&mapped);
	if (!mapped)
		return;
	fake_mmio_write(&fake, base + off, size, value);
	if (off < BAR_SIZE)
		model_write(off, size, value);
}

static void cap_write(unsigned reg_off, unsigned size, uint32_t v)
{
	unsigned cap = X()->msix_cap;
	ecam_wr(dev_slot[XDEV], dev_func[XDEV], cap + reg_off, size, v);
	uint16_t ctl = pci_get_u16(X(), cap + 2);
	/* Only enable and function mask are writable; the table size stays. */
	FUZZ_CHECK((ctl & 0x07FF) == m.nvec - 1);
	FUZZ_CHECK(pci_get_u32(X(), cap + 4) == 1 && pci_get_u32(X(), cap + 8) == (PBA_OFF | 1));
	/* Any write to the control bytes re-evaluates (as pci.c does). */
	if (reg_off + size > 2 && reg_off < 4) {
		m.enabled = ctl & PCI_MSIX_FLAGS_ENABLE;
		m.maskall = ctl & PCI_MSIX_FLAGS_MASKALL;
		model_flush_pending();
	}
}

static void notify(unsigned v)
{
	pci_msix_notify(X(), v);
	if (v >= m.nvec || !m.enabled)
		return;
	if (m.maskall || m.masked[v])
		m.pending[v] = true;
	else
		model_deliver(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	memset(&m, 0, sizeof(m));
	m.nvec = 1 + fin_u8(&in) % MAXVEC;
	board_create(m.nvec);
	for (unsigned v = 0; v < m.nvec; v++)
		m.masked[v] = true; /* masked at reset */
	check_state();

	while (fin_more(&in)) {
		uint8_t op = fin_u8(&in);
		switch (op & 7) {
		case 0: { /* a table or PBA write, any size, any offset */
			unsigned sz = fin_size(&in);
			uint64_t off = fin_u16(&in) % (BAR_SIZE + 16);
			if (op & 0x80) /* the PBA and around it */
				off = PBA_OFF - 8 + off % 32;
			bar_write(off, sz, fin_value(&in, sz));
			break;
		}
		case 1: { /* a read */
			unsigned sz = fin_size(&in);
			uint64_t off = fin_u16(&in) % (BAR_SIZE + 16);
			if (op & 0x80)
				off = PBA_OFF - 8 + off % 32;
			bar_read(off, sz);
			break;
		}
		case 2: { /* the capability: enable, function mask, the rest */
			unsigned reg_off = (op >> 3) & 15, sz = 1u << (fin_u8(&in) % 3);
			if (reg_off + sz > 12 || (reg_off & (sz - 1))) {
				reg_off = 2;
				sz = 2;
			}
			cap_write(reg_off, sz, fin_u32(&in));
			break;
		}
		case 3: { /* the device signals */
			unsigned v = fin_u8(&in);
			if (op & 0x80)
				v = (op & 0x40) ? PCI_NO_VECTOR : m.nvec + (v & 3);
			else
				v %= m.nvec;
			for (unsigned i = 0, n = 1 + ((op >> 3) & 7); i < n; i++)
				notify(v);
			break;
		}
		case 4: { /* a driver programs a vector: address, data, unmask */
			unsigned v = fin_u8(&in) % m.nvec;
			bar_write(v * 16, 4, 0xFEE00000u | (fin_u16(&in) & 0xFFF0));
			bar_write(v * 16 + 4, 4, 0);
			bar_write(v * 16 + 8, 4, fin_u16(&in));
			if (op & 0x80)
				bar_write(v * 16 + 8, 8, fin_u64(&in)); /* data and control at once */
			else
				bar_write(v * 16 + 12, 4, op >> 6 & 1);
			break;
		}
		case 5: { /* decoding off and on, or the BAR moved */
			uint16_t cmd = pci_get_u16(X(), PCI_COMMAND);
			if (op & 0x80) {
				uint32_t a = (uint32_t)(PCI_MMIO32_BASE + (fin_u32(&in) % (1u << 29))) & ~0xFFFu;
				ecam_wr(dev_slot[XDEV], dev_func[XDEV], PCI_BAR0 + 4, 4, a);
			} else {
				ecam_wr(dev_slot[XDEV], dev_func[XDEV], PCI_COMMAND, 2,
					cmd ^ PCI_COMMAND_MEMORY);
			}
			break;
		}
		case 6: { /* MSI beside it: its deliveries go through the same hook */
			unsigned cap = X()->msi_cap, reg = fin_u8(&in) % 24;
			ecam_wr(dev_slot[XDEV], dev_func[XDEV], cap + (reg & ~3u), 4, fin_u32(&in));
			pci_msi_notify(X());
			/* Whatever MSI delivered is not the MSI-X model's. */
			m.msi_count = fake.msi_count;
			m.last_addr = fake.last_msi_addr;
			m.last_data = fake.last_msi_data;
			break;
		}
		case 7: /* read back entries and the PBA, 8 bytes at a time */
			for (unsigned v = fin_u8(&in) % m.nvec, n = 0; v < m.nvec && n < 4; v++, n++) {
				bar_read(v * 16, 8);
				bar_read(v * 16 + 8, 8);
			}
			bar_read(PBA_OFF, 8);
			bar_read(PBA_OFF + 8, 8);
			break;
		}
		check_state();
	}
	board_destroy();
	return 0;
}
