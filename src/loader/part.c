/* MBR and GPT parsing (see part.h). */
#include "loader/part.h"

/* Names, paths and messages are cut to their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

uint32_t part_crc32(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0xffffffffu;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
	}
	return ~crc;
}

bool part_is_ext(part_read_fn rd, void *opaque, uint64_t off, uint64_t size)
{
	uint8_t sb[64];
	if (size < 2048 || rd(opaque, off + 1024, sb, sizeof(sb)))
		return false;
	return sb[56] == 0x53 && sb[57] == 0xef;
}

/* Adds [start, start+size) in sectors when it lies within the disk. */
static void add(struct part_table *t, unsigned index, uint64_t lba, uint64_t sectors,
		uint64_t disk_size, bool linux_fs, const char *type)
{
	if (t->n >= PART_MAX || !sectors || lba > disk_size / PART_SECTOR ||
	    sectors > disk_size / PART_SECTOR - lba)
		return;
	struct part *p = &t->p[t->n++];
	p->index = index;
	p->start = lba * PART_SECTOR;
	p->size = sectors * PART_SECTOR;
	p->linux_fs = linux_fs;
	snprintf(p->type, sizeof(p->type), "%s", type);
}

static bool is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

/* The chain of EBRs in the extended partition at [ext_lba, +ext_sectors). */
static void mbr_logicals(part_read_fn rd, void *opaque, uint64_t disk_size, struct part_table *t,
			 uint64_t ext_lba, uint64_t ext_sectors)
{
	uint64_t next = 0; /* relative to ext_lba */
	for (unsigned index = 5; index < 5 + 64; index++) {
		uint8_t ebr[PART_SECTOR];
		if (next >= ext_sectors || rd(opaque, (ext_lba + next) * PART_SECTOR, ebr, sizeof(ebr)) ||
		    ebr[510] != 0x55 || ebr[511] != 0xaa)
			return;
		const uint8_t *e = ebr + 446;
		uint64_t cur = ext_lba + next;
		if (e[4] && !is_extended(e[4])) {
			char type[8];
			snprintf(type, sizeof(type), "0x%02x", e[4]);
			uint64_t start = cur + le32(e + 8), count = le32(e + 12);
			/* A logical partition stays inside its extended one. */
			if (start + count <= ext_lba + ext_sectors)
				add(t, index, start, count, disk_size, e[4] == 0x83, type);
		}
		const uint8_t *l = e + 16;
		uint64_t rel = le32(l + 8);
		/* The next EBR must lie further on: no loops. */
		if (!is_extended(l[4]) || rel <= next)
			return;
		next = rel;
	}
}

static int gpt_parse(part_read_fn rd, void *opaque, uint64_t disk_size, struct part_table *t,
		     char *err, size_t errlen)
{
	uint8_t h[PART_SECTOR];
	int r = rd(opaque, PART_SECTOR, h, sizeof(h));
	if (r || memcmp(h, "EFI PART", 8)) {
		snprintf(err, errlen, "protective MBR without a GPT header");
		return -EINVAL;
	}
	uint32_t hsize = le32(h + 12);
	if (hsize < 92 || hsize > PART_SECTOR) {
		snprintf(err, errlen, "GPT header size %u", hsize);
		return -EINVAL;
	}
	uint32_t want = le32(h + 16);
	memset(h + 16, 0, 4);
	if (part_crc32(h, hsize) != want) {
		snprintf(err, errlen, "GPT header CRC mismatch");
		return -EINVAL;
	}
	uint64_t ents_lba = le64(h + 72);
	uint32_t count = le32(h + 80), esize = le32(h + 84), ecrc = le32(h + 88);
	if (esize < 128 || esize > 4096 || esize % 8 || count > 1024 ||
	    ents_lba > disk_size / PART_SECTOR ||
	    (uint64_t)count * esize > disk_size - ents_lba * PART_SECTOR) {
		snprintf(err, errlen, "GPT entry array out of range");
		return -EINVAL;
	}
	uint8_t buf[4096];
	uint32_t crc = 0xffffffffu;
	static const uint8_t linux_guid[16] = { 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
						0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4 };
	static const uint8_t zero[16];
	for (uint32_t i = 0; i < count; i++) {
		if ((r = rd(opaque, ents_lba * PART_SECTOR + (uint64_t)i * esize, buf, esize))) {
			snprintf(err, errlen, "GPT entries: %s", strerror(-r));
			return r;
		}
		/* The CRC runs over the whole array; computed incrementally. */
		for (uint32_t j = 0; j < esize; j++) {
			crc ^= buf[j];
			for (int k = 0; k < 8; k++)
				crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
		}
		if (!memcmp(buf, zero, 16))
			continue;
		uint64_t first = le64(buf + 32), last = le64(buf + 40);
		if (last < first)
			continue;
		char type[40];
		const uint8_t *g = buf;
		snprintf(type, sizeof(type),
			 "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", g[3],
			 g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13],
			 g[14], g[15]);
		add(t, i + 1, first, last - first + 1, disk_size, !memcmp(buf, linux_guid, 16), type);
	}
	if (~crc != ecrc) {
		snprintf(err, errlen, "GPT entry array CRC mismatch");
		t->n = 0;
		return -EINVAL;
	}
	t->kind = PART_GPT;
	return 0;
}

int part_parse(part_read_fn rd, void *opaque, uint64_t disk_size, struct part_table *t,
	       char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	uint8_t mbr[PART_SECTOR];
	if (disk_size < PART_SECTOR || rd(opaque, 0, mbr, sizeof(mbr)) || mbr[510] != 0x55 ||
	    mbr[511] != 0xaa)
		return 0;
	for (int i = 0; i < 4; i++)
		if (mbr[446 + 16 * i + 4] == 0xee)
			return gpt_parse(rd, opaque, disk_size, t, err, errlen);
	/* A boot sector with a signature but no sane entries (a FAT volume,
	 * say) is no partition table: every status byte is 0 or 0x80. */
	for (int i = 0; i < 4; i++) {
		uint8_t st = mbr[446 + 16 * i];
		if (st != 0 && st != 0x80)
			return 0;
	}
	t->kind = PART_MBR;
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = mbr + 446 + 16 * i;
		if (!e[4])
			continue;
		if (is_extended(e[4])) {
			mbr_logicals(rd, opaque, disk_size, t, le32(e + 8), le32(e + 12));
			continue;
		}
		char type[8];
		snprintf(type, sizeof(type), "0x%02x", e[4]);
		add(t, (unsigned)i + 1, le32(e + 8), le32(e + 12), disk_size, e[4] == 0x83, type);
	}
	return 0;
}
