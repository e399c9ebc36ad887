/* Fuzz target for fw_cfg (src/dev/fw_cfg.c): selector writes of every
 * size (keys, files, the directory, the architecture-local and write
 * channel bits, keys that do not exist), data reads one byte at a time and
 * far past the end, reads and writes of the wrong size, and the DMA port
 * with descriptors anywhere in guest RAM; interleaved with what the user
 * controls from the host side (fw_cfg_add_file names and contents,
 * fw_cfg_set_item, which reselects a selected item). The harness keeps its
 * own model of the items (the file directory in QEMU's format, built here)
 * and checks, after every access:
 *   - each data byte read is the model's (0 past the end, and the offset
 *     does not move there); other-size reads give 0; selector writes wider
 *     than 2 bytes and data-port writes change nothing;
 *   - the return codes of fw_cfg_add_file/fw_cfg_set_item;
 *   - DMA is not offered (FW_CFG_ID bit 1): its ports read all-ones and
 *     guest RAM (the descriptor and the buffer it names) stays untouched;
 *   - no interrupt, no exit request, and the heap does not grow with guest
 *     accesses (only by what the host side adds).
 *
 * Run (clang build with -Dsanitize=true, e.g. build-fuzz):
 *   build-fuzz/tests/fuzz/fuzz_fw_cfg -jobs=1 -workers=1 -max_len=1024 \
 *       -runs=10000000 tests/fuzz/corpus/fw_cfg
 * fuzz_fw_cfg_replay replays the corpus with any compiler (meson test
 * fuzz_fw_cfg_corpus). */
#include <errno.h>
#include <string.h>

#include "dev/fw_cfg.h"
#include "fake_platform.h"
#include "fuzz_input.h"

#define RAM (4ULL << 20)
#define MAX_MODEL_FILES 24
#define MAX_DATA 96

struct blob {
	uint8_t data[4 + MAX_MODEL_FILES * 64 + 64];
	uint32_t len;
};

static struct fake_platform fake;
static struct {
	struct blob items[FW_CFG_FILE_FIRST];
	char names[MAX_MODEL_FILES][FW_CFG_FILE_NAME_MAX];
	struct blob files[MAX_MODEL_FILES];
	unsigned nfiles;
	uint16_t selector;
	struct blob cur; /* a snapshot taken at selection, as the device does */
	uint32_t offset;
} m;

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static void set_blob(struct blob *b, const void *data, size_t len)
{
	memcpy(b->data, data, len);
	b->len = (uint32_t)len;
}

FUZZ_NOCOV static void model_select(uint16_t sel)
{
	m.selector = sel;
	m.offset = 0;
	m.cur.len = 0;
	if (sel & 0x8000)
		return;
	unsigned key = sel & 0x3FFF;
	if (key == FW_CFG_FILE_DIR) {
		uint8_t *d = m.cur.data;
		memset(d, 0, 4 + m.nfiles * 64);
		put_be(d, m.nfiles, 4);
		for (unsigned i = 0; i < m.nfiles; i++) {
			uint8_t *e = d + 4 + i * 64;
			put_be(e, m.files[i].len, 4);
			put_be(e + 4, FW_CFG_FILE_FIRST + i, 2);
			memcpy(e + 8, m.names[i], strlen(m.names[i]));
		}
		m.cur.len = 4 + m.nfiles * 64;
	} else if (key < FW_CFG_FILE_FIRST) {
		m.cur = m.items[key];
	} else if (key - FW_CFG_FILE_FIRST < m.nfiles) {
		m.cur = m.files[key - FW_CFG_FILE_FIRST];
	}
}

FUZZ_NOCOV static void model_init(void)
{
	memset(&m, 0, sizeof(m));
	uint8_t buf[E820_MAX_ENTRIES * 20];
	set_blob(&m.items[FW_CFG_SIGNATURE], "QEMU", 4);
	put_le(buf, 1, 4); /* traditional interface only: no DMA */
	set_blob(&m.items[FW_CFG_ID], buf, 4);
	memset(buf, 0, 16);
	set_blob(&m.items[FW_CFG_UUID], buf, 16);
	put_le(buf, fake.mem.size, 8);
	set_blob(&m.items[FW_CFG_RAM_SIZE], buf, 8);
	put_le(buf, 1, 2);
	set_blob(&m.items[FW_CFG_NB_CPUS], buf, 2);
	set_blob(&m.items[FW_CFG_MAX_CPUS], buf, 2);
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = guest_mem_e820(&fake.mem, map);
	for (int i = 0; i < n; i++) {
		put_le(buf + i * 20, map[i].addr, 8);
		put_le(buf + i * 20 + 8, map[i].size, 8);
		put_le(buf + i * 20 + 16, map[i].type, 4);
	}
	strcpy(m.names[0], "etc/e820");
	set_blob(&m.files[0], buf, (size_t)n * 20);
	m.nfiles = 1;
	model_select(FW_CFG_SIGNATURE);
}

static void data_read(uint16_t port)
{
	uint8_t want = m.offset < m.cur.len ? m.cur.data[m.offset++] : 0;
	FUZZ_CHECK(fake_pio_read(&fake, port, 1) == want);
}

FUZZ_NOCOV static void check_quiet(void)
{
	for (unsigned g = 0; g < FAKE_MAX_GSI; g++)
		FUZZ_CHECK(fake.irq_sets[g] == 0);
	FUZZ_CHECK(fake.irq_bad_gsi == 0 && fake.exit_status == -1 && fake.msi_count == 0);
}

/* A DMA request as QEMU's interface takes it: a big-endian descriptor
 * (control, length, address) in guest RAM whose address is written to
 * 0x514 (high half) and 0x518 (low half, which starts the transfer). */
static void dma(struct fuzz_in *in, uint8_t op)
{
	uint64_t desc = fin_u32(in) % (RAM + 64);
	if (op & 0x80)
		desc = RAM - 16 + (desc & 31); /* straddling the end of RAM */
	uint8_t d[16];
	put_be(d, fin_u32(in), 4);                   /* control: read/skip/select/write */
	put_be(d + 4, fin_u32(in) % 8192, 4);        /* length */
	uint64_t addr = (op & 0x40) ? fin_u64(in) : fin_u32(in) % RAM;
	put_be(d + 8, addr, 8);
	guest_mem_write(&fake.mem, desc, d, sizeof(d)); /* dropped unless all RAM */
	uint8_t before[64], after[64];
	bool buf_ram = guest_mem_read(&fake.mem, addr, before, sizeof(before)) == 0;
	uint8_t dbefore[16], dafter[16];
	bool desc_ram = guest_mem_read(&fake.mem, desc, dbefore, 16) == 0;
	if (op & 0x20) {
		fake_pio_write(&fake, FW_CFG_PORT_DMA, 8, __builtin_bswap64(desc));
	} else {
		fake_pio_write(&fake, FW_CFG_PORT_DMA, 4, __builtin_bswap32((uint32_t)(desc >> 32)));
		fake_pio_write(&fake, FW_CFG_PORT_DMA + 4, 4, __builtin_bswap32((uint32_t)desc));
	}
	/* Not offered: nothing was read or written. */
	if (buf_ram) {
		guest_mem_read(&fake.mem, addr, after, sizeof(after));
		FUZZ_CHECK(!memcmp(before, after, sizeof(after)));
	}
	if (desc_ram) {
		guest_mem_read(&fake.mem, desc, dafter, 16);
		FUZZ_CHECK(!memcmp(dbefore, dafter, 16));
	}
	unsigned sz = fin_size(in), off = fin_u8(in) & 7;
	FUZZ_CHECK(fake_pio_read(&fake, FW_CFG_PORT_DMA + off, sz) == fuzz_ones(sz));
	/* The selection and its offset stay as they were. */
	data_read(FW_CFG_PORT_DATA);
}

static size_t host_add_file(struct fw_cfg *fw, struct fuzz_in *in)
{
	char name[64];
	unsigned n = fin_u8(in) % 60;
	for (unsigned i = 0; i < n; i++)
		name[i] = (char)fin_u8(in);
	name[n] = 0;
	uint8_t data[MAX_DATA];
	unsigned len = fin_u8(in) % MAX_DATA;
	for (unsigned i = 0; i < len; i++)
		data[i] = fin_u8(in);
	int want = 0;
	if (!name[0])
		want = -EINVAL;
	else if (strlen(name) >= FW_CFG_FILE_NAME_MAX)
		want = -ENAMETOOLONG;
	for (unsigned i = 0; i < m.nfiles && !want; i++)
		if (!strcmp(m.names[i], name))
			want = -EEXIST;
	if (!want && m.nfiles == MAX_MODEL_FILES)
		return 0; /* the model is full: do not add */
	int r = fw_cfg_add_file(fw, name, data, len);
	FUZZ_CHECK(r == want);
	if (r == 0) {
		strcpy(m.names[m.nfiles], name);
		set_blob(&m.files[m.nfiles++], data, len);
	}
	return r == 0 ? len + FW_CFG_FILE_NAME_MAX + 64 : 0;
}

static size_t host_set_item(struct fw_cfg *fw, struct fuzz_in *in)
{
	uint16_t key = fin_u8(in) & 0x3F;
	if (fin_u8(in) & 1)
		key |= (uint16_t)(fin_u8(in) << 8);
	uint8_t data[MAX_DATA];
	unsigned len = fin_u8(in) % MAX_DATA;
	for (unsigned i = 0; i < len; i++)
		data[i] = fin_u8(in);
	int r = fw_cfg_set_item(fw, key, data, len);
	if (key >= FW_CFG_FILE_FIRST || key == FW_CFG_FILE_DIR) {
		FUZZ_CHECK(r == -EINVAL);
		return 0;
	}
	FUZZ_CHECK(r == 0);
	set_blob(&m.items[key], data, len);
	if ((m.selector & 0xBFFF) == key)
		model_select(m.selector); /* the device reselects: offset 0 */
	return len;
}

static uint16_t pick_selector(struct fuzz_in *in, uint8_t op)
{
	uint16_t sel = fin_u16(in);
	if (!(op & 0x80)) /* mostly keys that exist, with the high bits sometimes */
		sel = (uint16_t)((sel & 0xFF) % (FW_CFG_FILE_FIRST + m.nfiles + 2) |
				 (op & 0x40 ? sel & 0xC000 : 0));
	return sel;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fake.p.pio && fake_platform_init(&fake, RAM))
		abort();
	if (fake_platform_renew_buses(&fake))
		abort();
	fake_platform_clear_records(&fake);
	struct fw_cfg *fw;
	if (fw_cfg_create(&fake.p, &fw))
		abort();
	model_init();
	size_t heap0 = fuzz_heap_bytes(), added = 0;

	struct fuzz_in in = { data, size };
	while (fin_more(&in)) {
		uint8_t op = fin_u8(&in);
		switch (op & 15) {
		case 0: /* select, 16-bit */
		case 1: {
			uint16_t sel = pick_selector(&in, op);
			fake_pio_write(&fake, FW_CFG_PORT_SEL, 2, sel);
			model_select(sel);
			break;
		}
		case 2: { /* select, 8-bit (khyve's extension) */
			uint8_t sel = (uint8_t)pick_selector(&in, op);
			fake_pio_write(&fake, FW_CFG_PORT_SEL, 1, sel);
			model_select(sel);
			break;
		}
		case 3: /* one data byte, at either port */
			data_read((op & 0x10) ? FW_CFG_PORT_SEL : FW_CFG_PORT_DATA);
			break;
		case 4:
		case 5: /* a run of data bytes, often past the end */
			for (unsigned i = 0, n = fin_u8(&in) + (op & 0x10 ? 256u : 0u); i < n; i++)
				data_read(FW_CFG_PORT_DATA);
			break;
		case 6: { /* wrong-size reads give 0 and do not advance */
			unsigned sz = 2u << (op >> 4 & 1 ? 1 : 0) << (op >> 5 & 1);
			FUZZ_CHECK(fake_pio_read(&fake, FW_CFG_PORT_SEL + (op >> 6 & 1), sz) == 0);
			data_read(FW_CFG_PORT_DATA);
			break;
		}
		case 7: { /* writes that select nothing: wide selector, data port */
			unsigned sz = (op & 0x10) ? 4u + (op & 0x20 ? 4u : 0u) : 1u << (op >> 5 & 3);
			uint16_t port = (op & 0x10) ? FW_CFG_PORT_SEL : FW_CFG_PORT_DATA;
			fake_pio_write(&fake, port, sz, fin_value(&in, sz));
			data_read(FW_CFG_PORT_DATA);
			break;
		}
		case 8:
		case 9:
			dma(&in, op);
			break;
		case 10: { /* neighbours nobody claims */
			static const uint16_t ports[4] = { 0x50F, 0x512, 0x513, 0x51C };
			unsigned sz = fin_size(&in);
			FUZZ_CHECK(fake_pio_read(&fake, ports[op >> 4 & 3], sz) == fuzz_ones(sz));
			break;
		}
		case 11: /* the host adds a file */
			added += host_add_file(fw, &in);
			break;
		case 12: /* the host replaces an item */
			added += host_set_item(fw, &in);
			break;
		default: { /* read a whole item as firmware does, then the directory */
			uint16_t sel = pick_selector(&in, op & 0x7F);
			fake_pio_write(&fake, FW_CFG_PORT_SEL, 2, sel);
			model_select(sel);
			for (uint32_t i = 0, n = m.cur.len + 1; i < n; i++)
				data_read(FW_CFG_PORT_DATA);
			break;
		}
		}
		check_quiet();
		/* Directory snapshots are replaced, not kept. */
		FUZZ_CHECK(fuzz_heap_bytes() <= heap0 + added + 2 * sizeof(m.cur.data) + 4096);
	}
	fw_cfg_destroy(fw);
	return 0;
}
