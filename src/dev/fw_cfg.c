/* fw_cfg over port I/O, as QEMU's "comb" region at 0x510-0x511 behaves:
 * an 8-bit read at either port reads the data stream; a 16-bit write to
 * 0x510 selects an item (an 8-bit write to 0x510 selects too, a khyve
 * extension: QEMU would take it as a data write, which it ignores); other
 * writes are ignored; reads of other sizes give 0 (QEMU refuses them and
 * its invalid-access path reads 0).
 *
 * The selector's bit 15 picks the architecture-local items (none here) and
 * bit 14 asks for the write channel (ignored, as in QEMU since 2.4). */
#include "dev/fw_cfg.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define FW_CFG_ARCH_LOCAL 0x8000
#define FW_CFG_WRITE_CHANNEL 0x4000
#define FW_CFG_ENTRY_MASK 0x3FFF

#define FW_CFG_ID_TRADITIONAL 0x01

struct fw_cfg_blob {
	uint8_t *data;
	uint32_t len;
};

struct fw_cfg_file {
	char name[FW_CFG_FILE_NAME_MAX];
	struct fw_cfg_blob blob;
};

struct fw_cfg {
	struct platform *p;
	pthread_mutex_t lock;
	struct fw_cfg_blob items[FW_CFG_FILE_FIRST];
	struct fw_cfg_file *files;
	unsigned nfiles, cap;
	struct fw_cfg_blob dir; /* rebuilt each time FW_CFG_FILE_DIR is selected */
	/* The selected item: a snapshot of (data, len). Data buffers are
	 * freed only when replaced by fw_cfg_set_item, which reselects. */
	uint16_t selector;
	const uint8_t *cur;
	uint32_t cur_len, offset;
};

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int build_dir(struct fw_cfg *fw)
{
	size_t len = 4 + (size_t)fw->nfiles * 64;
	uint8_t *d = calloc(1, len);
	if (!d)
		return -ENOMEM;
	put_be32(d, fw->nfiles);
	for (unsigned i = 0; i < fw->nfiles; i++) {
		uint8_t *e = d + 4 + (size_t)i * 64;
		put_be32(e, fw->files[i].blob.len);
		uint16_t sel = (uint16_t)(FW_CFG_FILE_FIRST + i);
		e[4] = (uint8_t)(sel >> 8);
		e[5] = (uint8_t)sel;
		/* e[6..7] reserved */
		memcpy(e + 8, fw->files[i].name, FW_CFG_FILE_NAME_MAX);
	}
	free(fw->dir.data);
	fw->dir.data = d;
	fw->dir.len = (uint32_t)len;
	return 0;
}

static void select_item(struct fw_cfg *fw, uint16_t selector)
{
	fw->selector = selector;
	fw->offset = 0;
	fw->cur = NULL;
	fw->cur_len = 0;
	if (selector & FW_CFG_ARCH_LOCAL)
		return; /* no architecture-local items */
	unsigned key = selector & FW_CFG_ENTRY_MASK;
	const struct fw_cfg_blob *b = NULL;
	if (key == FW_CFG_FILE_DIR) {
		if (build_dir(fw) == 0)
			b = &fw->dir;
	} else if (key < FW_CFG_FILE_FIRST) {
		b = &fw->items[key];
	} else if (key - FW_CFG_FILE_FIRST < fw->nfiles) {
		b = &fw->files[key - FW_CFG_FILE_FIRST].blob;
	}
	if (b) {
		fw->cur = b->data;
		fw->cur_len = b->len;
	}
}

static uint8_t read_data(struct fw_cfg *fw)
{
	if (fw->offset >= fw->cur_len)
		return 0;
	return fw->cur[fw->offset++];
}

static uint64_t fw_cfg_read(void *opaque, uint64_t offset, unsigned size)
{
	struct fw_cfg *fw = opaque;
	(void)offset;
	if (size != 1)
		return 0;
	pthread_mutex_lock(&fw->lock);
	uint8_t v = read_data(fw);
	pthread_mutex_unlock(&fw->lock);
	return v;
}

static void fw_cfg_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct fw_cfg *fw = opaque;
	if (offset != 0 || size > 2)
		return; /* data writes are ignored */
	pthread_mutex_lock(&fw->lock);
	select_item(fw, (uint16_t)(size == 1 ? (value & 0xFF) : (value & 0xFFFF)));
	pthread_mutex_unlock(&fw->lock);
}

static const struct io_ops fw_cfg_ops = { .read = fw_cfg_read, .write = fw_cfg_write };
/* DMA is not offered: reads give all-ones, writes are dropped. */
static const struct io_ops fw_cfg_dma_ops = { .read = NULL, .write = NULL };

static int set_blob(struct fw_cfg_blob *b, const void *data, size_t len)
{
	if (len > UINT32_MAX)
		return -EINVAL;
	uint8_t *copy = NULL;
	if (len) {
		copy = malloc(len);
		if (!copy)
			return -ENOMEM;
		if (data)
			memcpy(copy, data, len);
		else
			memset(copy, 0, len);
	}
	free(b->data);
	b->data = copy;
	b->len = (uint32_t)len;
	return 0;
}

int fw_cfg_set_item(struct fw_cfg *fw, uint16_t key, const void *data, size_t len)
{
	if (key >= FW_CFG_FILE_FIRST || key == FW_CFG_FILE_DIR)
		return -EINVAL;
	pthread_mutex_lock(&fw->lock);
	int r = set_blob(&fw->items[key], data, len);
	/* The old buffer is gone: reselect so a reader never sees it. */
	if (r == 0 && (fw->selector & (FW_CFG_ARCH_LOCAL | FW_CFG_ENTRY_MASK)) == key)
		select_item(fw, fw->selector);
	pthread_mutex_unlock(&fw->lock);
	return r;
}

int fw_cfg_add_file(struct fw_cfg *fw, const char *name, const void *data, size_t len)
{
	if (!name || !name[0] || len > UINT32_MAX)
		return -EINVAL;
	if (strlen(name) >= FW_CFG_FILE_NAME_MAX)
		return -ENAMETOOLONG;
	int r = 0;
	pthread_mutex_lock(&fw->lock);
	for (unsigned i = 0; i < fw->nfiles; i++) {
		if (!strcmp(fw->files[i].name, name)) {
			r = -EEXIST;
			goto out;
		}
	}
	if (fw->nfiles >= FW_CFG_MAX_FILES) {
		r = -ENOSPC;
		goto out;
	}
	if (fw->nfiles == fw->cap) {
		unsigned cap = fw->cap ? fw->cap * 2 : 8;
		struct fw_cfg_file *f = realloc(fw->files, cap * sizeof(*f));
		if (!f) {
			r = -ENOMEM;
			goto out;
		}
		fw->files = f;
		fw->cap = cap;
	}
	struct fw_cfg_file *f = &fw->files[fw->nfiles];
	memset(f, 0, sizeof(*f));
	strcpy(f->name, name);
	r = set_blob(&f->blob, data, len);
	if (r == 0)
		fw->nfiles++;
out:
	pthread_mutex_unlock(&fw->lock);
	return r;
}

static int add_fixed_items(struct fw_cfg *fw)
{
	const struct platform *p = fw->p;
	uint8_t buf[16];
	int r = 0;

	r |= set_blob(&fw->items[FW_CFG_SIGNATURE], "QEMU", 4);
	put_le(buf, FW_CFG_ID_TRADITIONAL, 4);
	r |= set_blob(&fw->items[FW_CFG_ID], buf, 4);
	r |= set_blob(&fw->items[FW_CFG_UUID], NULL, 16);
	put_le(buf, p->mem ? p->mem->size : 0, 8);
	r |= set_blob(&fw->items[FW_CFG_RAM_SIZE], buf, 8);
	unsigned ncpus = p->ncpus ? p->ncpus : 1;
	unsigned max_cpus = p->max_cpus >= ncpus ? p->max_cpus : ncpus;
	put_le(buf, ncpus, 2);
	r |= set_blob(&fw->items[FW_CFG_NB_CPUS], buf, 2);
	put_le(buf, max_cpus, 2);
	r |= set_blob(&fw->items[FW_CFG_MAX_CPUS], buf, 2);
	if (r)
		return -ENOMEM;

	if (p->mem) {
		struct e820_entry map[E820_MAX_ENTRIES];
		int n = guest_mem_e820(p->mem, map);
		uint8_t e820[E820_MAX_ENTRIES * 20];
		for (int i = 0; i < n; i++) {
			put_le(e820 + i * 20, map[i].addr, 8);
			put_le(e820 + i * 20 + 8, map[i].size, 8);
			put_le(e820 + i * 20 + 16, map[i].type, 4);
		}
		r = fw_cfg_add_file(fw, "etc/e820", e820, (size_t)n * 20);
	}
	return r;
}

static void free_all(struct fw_cfg *fw)
{
	for (unsigned i = 0; i < FW_CFG_FILE_FIRST; i++)
		free(fw->items[i].data);
	for (unsigned i = 0; i < fw->nfiles; i++)
		free(fw->files[i].blob.data);
	free(fw->files);
	free(fw->dir.data);
	pthread_mutex_destroy(&fw->lock);
	free(fw);
}

int fw_cfg_create(struct platform *p, struct fw_cfg **out)
{
	struct fw_cfg *fw = calloc(1, sizeof(*fw));
	if (!fw)
		return -ENOMEM;
	fw->p = p;
	pthread_mutex_init(&fw->lock, NULL);
	int r = add_fixed_items(fw);
	if (r == 0)
		r = io_bus_register(p->pio, FW_CFG_PORT_SEL, 2, &fw_cfg_ops, fw, "fw_cfg");
	if (r == 0) {
		r = io_bus_register(p->pio, FW_CFG_PORT_DMA, 8, &fw_cfg_dma_ops, fw, "fw_cfg-dma");
		if (r < 0)
			io_bus_unregister(p->pio, FW_CFG_PORT_SEL);
	}
	if (r < 0) {
		free_all(fw);
		return r;
	}
	select_item(fw, FW_CFG_SIGNATURE);
	*out = fw;
	return 0;
}

void fw_cfg_destroy(struct fw_cfg *fw)
{
	if (!fw)
		return;
	io_bus_unregister(fw->p->pio, FW_CFG_PORT_SEL);
	io_bus_unregister(fw->p->pio, FW_CFG_PORT_DMA);
	free_all(fw);
}
