/* MBR and GPT parsing (loader/part.c). */
#include <errno.h>
#include <string.h>

#include "loader/part.h"
#include "unit.h"

#define DISK (64u << 20)
static unsigned char disk[1 << 16]; /* the first 64 KiB; the rest reads as zero */

static int rd(void *opaque, uint64_t off, void *buf, size_t len)
{
	(void)opaque;
	if (off > DISK || len > DISK - off)
		return -EIO;
	memset(buf, 0, len);
	if (off < sizeof(disk))
		memcpy(buf, disk + off, len < sizeof(disk) - off ? len : sizeof(disk) - off);
	return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static void mbr_entry(unsigned base, int i, unsigned char type, uint32_t lba, uint32_t n)
{
	unsigned char *e = disk + base + 446 + 16 * i;
	e[0] = 0;
	e[4] = type;
	put32(e + 8, lba);
	put32(e + 12, n);
	disk[base + 510] = 0x55;
	disk[base + 511] = 0xaa;
}

int main(void)
{
	static struct part_table t;
	char err[128];

	/* Nothing, then an ext superblock. */
	CHECK_EQ(part_parse(rd, NULL, DISK, &t, err, sizeof(err)), 0);
	CHECK_EQ(t.kind, PART_NONE);
	CHECK(!part_is_ext(rd, NULL, 0, DISK));
	disk[1024 + 56] = 0x53;
	disk[1024 + 57] = 0xef;
	CHECK(part_is_ext(rd, NULL, 0, DISK));
	memset(disk, 0, sizeof(disk));

	/* MBR: a Linux partition, one past the disk's end (left out), an
	 * extended one with two logicals in a chain (at 8192 and 16384). */
	mbr_entry(0, 0, 0x83, 2048, 4096);
	mbr_entry(0, 1, 0x83, 100000, 200000);
	mbr_entry(0, 2, 0x05, 8192, 32768);
	CHECK_EQ(part_parse(rd, NULL, DISK, &t, err, sizeof(err)), 0);
	CHECK_EQ(t.kind, PART_MBR);
	CHECK_EQ(t.n, 1); /* the EBRs lie beyond the 64 KiB we model: none */
	CHECK_EQ(t.p[0].index, 1);
	CHECK_EQ(t.p[0].start, 2048 * 512);
	CHECK(t.p[0].linux_fs);
	/* EBR chain inside the modelled bytes: extended at LBA 16. */
	memset(disk, 0, sizeof(disk));
	mbr_entry(0, 0, 0x0f, 16, 100);
	mbr_entry(16 * 512, 0, 0x83, 2, 10);  /* logical 5 at 18 */
	mbr_entry(16 * 512, 1, 0x05, 40, 50); /* next EBR at 16 + 40 */
	mbr_entry(56 * 512, 0, 0x07, 2, 20);  /* logical 6 at 58 */
	mbr_entry(56 * 512, 1, 0x05, 20, 50); /* points back: the chain stops */
	CHECK_EQ(part_parse(rd, NULL, DISK, &t, err, sizeof(err)), 0);
	CHECK_EQ(t.n, 2);
	CHECK_EQ(t.p[0].index, 5);
	CHECK_EQ(t.p[0].start, 18 * 512);
	CHECK_EQ(t.p[1].index, 6);
	CHECK_EQ(t.p[1].start, 58 * 512);
	CHECK(!strcmp(t.p[1].type, "0x07") && !t.p[1].linux_fs);

	/* A boot sector whose "entries" are code: not a table. */
	memset(disk, 0, sizeof(disk));
	mbr_entry(0, 0, 0x83, 1, 1);
	disk[446] = 0x31;
	CHECK_EQ(part_parse(rd, NULL, DISK, &t, err, sizeof(err)), 0);
	CHECK_EQ(t.kind, PART_NONE);

	/* GPT: protective MBR, header at LBA 1, entries at LBA 2. */
	memset(disk, 0, sizeof(disk));
	mbr_entry(0, 0, 0xee, 1, DISK / 512 - 1);
	static const unsigned char linux_guid[16] = { 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72,
						      0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47,
						      0x7d, 0xe4 };
	unsigned char *ent = disk + 1024;
	memcpy(ent, linux_guid, 16);
	put64(ent + 32, 2048);
	put64(ent + 40, 4095);
	memset(ent + 128 * 2, 0x11, 16);
	put64(ent + 128 * 2 + 32, 8192);
	put64(ent + 128 * 2 + 40, 8191 + 1024);
	unsigned char *h = disk + 512;
	memcpy(h, "EFI PART", 8);
	put32(h + 12, 92);
	put64(h + 72, 2);
	put32(h + 80, 128);
	put32(h + 84, 128);
	put32(h + 88, part_crc32(ent, 128 * 128));
	put32(h + 16, part_crc32(h, 92));
	CHECK_EQ(part_parse(rd, NULL, DISK, &t, err, sizeof(err)), 0);
	CHECK_EQ(t.kind, PART_GPT);
	CHECK_EQ(t.n, 2);
	CHECK_EQ(t.p[0].index, 1);
	CHECK(t.p[0].linux_fs);
	CHECK(!strcmp(t.p[0].type, "0FC63DAF-8483-4772-8E79-3D69D8477DE4"));
	CHECK_EQ(t.p[1].index, 3);
	CHECK_EQ(t.p[1].size, 1024 * 512);
	/* A flipped bit in the entries: refused. */
	ent[40] ^= 1;
	CHECK_EQ(part_parse(rd, NULL, DISK, &t, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "CRC") != NULL);
	ent[40] ^= 1;
	h[20] ^= 1;
	CHECK_EQ(part_parse(rd, NULL, DISK, &t, err, sizeof(err)), -EINVAL);
	/* The standard check value of CRC-32. */
	CHECK_EQ(part_crc32("123456789", 9), 0xcbf43926);
	return UNIT_RESULT();
}
