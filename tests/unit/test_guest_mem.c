#include <errno.h>
#include <string.h>

#include "mem/guest_mem.h"
#include "unit.h"

int main(void)
{
	struct guest_mem gm;
	CHECK_EQ(guest_mem_create(&gm, 1ULL << 20), -EINVAL); /* below the minimum */
	CHECK_EQ(guest_mem_create(&gm, (64ULL << 20) + 1), -EINVAL);

	CHECK_EQ(guest_mem_create(&gm, 64ULL << 20), 0);
	CHECK_EQ(gm.low_size, 64ULL << 20);
	CHECK_EQ(gm.high_size, 0);
	CHECK(guest_mem_ptr(&gm, 0, 1) != NULL);
	CHECK(guest_mem_ptr(&gm, (64ULL << 20) - 4, 4) != NULL);
	CHECK(guest_mem_ptr(&gm, (64ULL << 20) - 4, 5) == NULL);
	CHECK(guest_mem_ptr(&gm, 0, 0) == NULL);
	CHECK(guest_mem_ptr(&gm, ~0ULL - 2, 8) == NULL); /* wraps */
	CHECK(guest_mem_ptr(&gm, GUEST_HIGHMEM_BASE, 1) == NULL);
	uint32_t v = 0;
	CHECK_EQ(guest_mem_write_u32(&gm, 0x1000, 0xdeadbeef), 0);
	CHECK_EQ(guest_mem_read_u32(&gm, 0x1000, &v), 0);
	CHECK_EQ(v, 0xdeadbeef);
	CHECK_EQ(guest_mem_read_u32(&gm, 64ULL << 20, &v), -EFAULT);
	CHECK_EQ(v, 0);
	char buf[16];
	CHECK_EQ(guest_mem_read(&gm, (64ULL << 20) - 8, buf, 16), -EFAULT);

	struct e820_entry map[E820_MAX_ENTRIES];
	int n = guest_mem_e820(&gm, map);
	CHECK_EQ(n, 4);
	uint64_t ram = 0;
	for (int i = 0; i < n; i++)
		if (map[i].type == E820_RAM)
			ram += map[i].size;
	CHECK_EQ(ram, (64ULL << 20) - (0x100000 - GUEST_EBDA_BASE));
	guest_mem_destroy(&gm);

	/* 5 GiB: 3 GiB low, 2 GiB from 4 GiB; the hole is not RAM. */
	CHECK_EQ(guest_mem_create(&gm, 5ULL << 30), 0);
	CHECK_EQ(gm.low_size, 3ULL << 30);
	CHECK_EQ(gm.high_size, 2ULL << 30);
	CHECK(guest_mem_ptr(&gm, (3ULL << 30) - 1, 1) != NULL);
	CHECK(guest_mem_ptr(&gm, 3ULL << 30, 1) == NULL);
	CHECK(guest_mem_ptr(&gm, (3ULL << 30) - 1, 2) == NULL);
	CHECK(guest_mem_ptr(&gm, GUEST_HIGHMEM_BASE, 4096) != NULL);
	CHECK(guest_mem_ptr(&gm, GUEST_HIGHMEM_BASE + (2ULL << 30) - 1, 1) != NULL);
	CHECK(guest_mem_ptr(&gm, GUEST_HIGHMEM_BASE + (2ULL << 30), 1) == NULL);
	CHECK_EQ(guest_mem_write_u64(&gm, GUEST_HIGHMEM_BASE + 8, 0x1122334455667788ULL), 0);
	CHECK_EQ(*(uint64_t *)guest_mem_ptr(&gm, GUEST_HIGHMEM_BASE + 8, 8), 0x1122334455667788ULL);
	n = guest_mem_e820(&gm, map);
	CHECK_EQ(n, 5);
	CHECK_EQ(map[4].addr, GUEST_HIGHMEM_BASE);
	CHECK_EQ(map[4].size, 2ULL << 30);
	struct guest_mem_region regions[2];
	CHECK_EQ(guest_mem_regions(&gm, regions), 2);
	guest_mem_destroy(&gm);
	return UNIT_RESULT();
}
