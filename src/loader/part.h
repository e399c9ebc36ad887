/* Partition tables of khyveload's disks: MBR (with logical partitions in
 * an extended one) and GPT, parsed from bytes a read callback hands over.
 * The bytes come from a disk image the guest may have written: every
 * offset and count is checked against the disk's size. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PART_MAX 128
#define PART_SECTOR 512u

enum part_kind { PART_NONE, PART_MBR, PART_GPT };

struct part {
	unsigned index;      /* 1-based: disk0p<index>: (MBR logicals from 5) */
	uint64_t start, size; /* bytes */
	bool linux_fs;       /* MBR type 0x83 or GPT "Linux filesystem" */
	char type[40];       /* "0x83", or the GPT type GUID */
};

struct part_table {
	enum part_kind kind;
	unsigned n;
	struct part p[PART_MAX];
};

/* Reads len bytes at off of the disk; 0 or -errno. */
typedef int (*part_read_fn)(void *opaque, uint64_t off, void *buf, size_t len);

/* 0 (kind PART_NONE when there is no table: no 0x55AA signature), or
 * -EINVAL with a reason in err for a table that is there but broken (a
 * GPT whose header or entries fail their CRC). Partitions that do not lie
 * within disk_size are left out. */
int part_parse(part_read_fn rd, void *opaque, uint64_t disk_size, struct part_table *t,
	       char *err, size_t errlen);

/* True when an ext2/3/4 superblock (magic 0xEF53) lies at byte 1024 of
 * the bytes read at off. */
bool part_is_ext(part_read_fn rd, void *opaque, uint64_t off, uint64_t size);

uint32_t part_crc32(const void *buf, size_t len);
