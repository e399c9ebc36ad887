#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "bus/io_bus.h"
#include "unit.h"

static uint64_t last_write;
static uint64_t last_offset;

static uint64_t rd(void *opaque, uint64_t offset, unsigned size)
{
	(void)size;
	return (uintptr_t)opaque + offset;
}

static void wr(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	(void)opaque;
	(void)size;
	last_offset = offset;
	last_write = value;
}

static const struct io_ops ops = { rd, wr };

/* Issue 9, defect 1: a guest flipping a BAR's decoding (COMMAND.MEM)
 * makes the bus publish a new range table at every map and unmap. The
 * replaced tables must be freed once no reader can hold them, so the
 * memory in use stays flat however often the guest remaps. */
static void test_remap_storm_is_flat(void)
{
	struct io_bus *bus = io_bus_create("storm");
	/* A realistic table: a few dozen ranges, as a PC with PCI has. */
	for (int i = 0; i < 32; i++)
		CHECK_EQ(io_bus_register(bus, 0x1000 + 0x100 * (uint64_t)i, 0x10, &ops, NULL, "dev"), 0);
	uint8_t data[8];
	/* Warm up, so that malloc's own arenas are in place. */
	for (int i = 0; i < 1000; i++) {
		io_bus_register(bus, 0x100000, 0x1000, &ops, NULL, "bar");
		io_bus_access(bus, 0x100004, 4, false, data);
		io_bus_unregister(bus, 0x100000);
	}
	size_t before = unit_heap_bytes();
	for (int i = 0; i < 200000; i++) {
		CHECK_EQ(io_bus_register(bus, 0x100000, 0x1000, &ops, NULL, "bar"), 0);
		io_bus_access(bus, 0x100004, 4, false, data);
		CHECK_EQ(io_bus_unregister(bus, 0x100000), 0);
		io_bus_access(bus, 0x100004, 4, false, data);
	}
	size_t after = unit_heap_bytes();
	/* Before the fix: 400k tables of ~1.3 KiB each, over 500 MB. */
	CHECK(after < before + (1u << 20));
	CHECK(io_bus_retained_tables(bus) <= 2);
	io_bus_destroy(bus);
}

/* Readers dispatch without locks while a writer replaces tables; with
 * old tables freed, a reader must never touch a freed one (ASan build),
 * and must always see the ranges that never move. */
#define READERS 3
static atomic_bool stop_readers;
static atomic_ulong reader_errors, reader_loops;

static void *reader_main(void *opaque)
{
	struct io_bus *bus = opaque;
	uint8_t data[8];
	while (!atomic_load(&stop_readers)) {
		memset(data, 0, sizeof(data));
		if (!io_bus_access(bus, 0x3f9, 1, false, data) || data[0] != 0x01)
			atomic_fetch_add(&reader_errors, 1);
		io_bus_access(bus, 0x100010, 4, false, data); /* the moving range */
		const char *o = io_bus_owner(bus, 0x100010);
		if (o && strcmp(o, "bar"))
			atomic_fetch_add(&reader_errors, 1);
		atomic_fetch_add(&reader_loops, 1);
	}
	return NULL;
}

static void test_concurrent_remap(void)
{
	struct io_bus *bus = io_bus_create("race");
	CHECK_EQ(io_bus_register(bus, 0x3f8, 8, &ops, (void *)0x100, "com1"), 0);
	pthread_t th[READERS];
	for (int i = 0; i < READERS; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, reader_main, bus), 0);
	for (int i = 0; i < 100000; i++) {
		CHECK_EQ(io_bus_register(bus, 0x100000, 0x1000, &ops, NULL, "bar"), 0);
		CHECK_EQ(io_bus_unregister(bus, 0x100000), 0);
	}
	/* Do not depend on scheduling: the readers may or may not have run
	 * much; whatever they did must have been right. */
	atomic_store(&stop_readers, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(atomic_load(&reader_errors), 0);
	/* With every reader gone, the next change frees all that was kept
	 * (while a reader sat in one dispatch, tables replaced meanwhile had
	 * to wait for it). */
	CHECK_EQ(io_bus_register(bus, 0x100000, 0x1000, &ops, NULL, "bar"), 0);
	CHECK(io_bus_retained_tables(bus) <= 1);
	io_bus_destroy(bus);
}

int main(void)
{
	test_remap_storm_is_flat();
	test_concurrent_remap();

	struct io_bus *bus = io_bus_create("test");
	CHECK_EQ(io_bus_register(bus, 0x3f8, 8, &ops, (void *)0x100, "com1"), 0);
	CHECK_EQ(io_bus_register(bus, 0x70, 2, &ops, (void *)0x200, "rtc"), 0);
	CHECK_EQ(io_bus_register(bus, 0x3fc, 1, &ops, NULL, "overlap"), -EEXIST);
	CHECK_EQ(io_bus_register(bus, 0x3f0, 9, &ops, NULL, "overlap"), -EEXIST);
	CHECK_EQ(io_bus_register(bus, 0x10, 0, &ops, NULL, "empty"), -EINVAL);
	CHECK_EQ(io_bus_register(bus, ~0ULL, 2, &ops, NULL, "wrap"), -EINVAL);

	uint8_t data[8];
	CHECK(io_bus_access(bus, 0x3fa, 1, false, data));
	CHECK_EQ(data[0], 0x02);
	CHECK(io_bus_access(bus, 0x71, 1, false, data));
	CHECK_EQ(data[0], 0x01);
	memset(data, 0, sizeof(data));
	CHECK(!io_bus_access(bus, 0x80, 4, false, data));
	CHECK_EQ(data[0] & data[1] & data[2] & data[3], 0xff);
	data[0] = 0x41;
	CHECK(io_bus_access(bus, 0x3f9, 1, true, data));
	CHECK_EQ(last_write, 0x41);
	CHECK_EQ(last_offset, 1);
	CHECK(!io_bus_access(bus, 0x3f7, 1, true, data));
	CHECK(!io_bus_access(bus, 0x400, 1, true, data));
	CHECK(!strcmp(io_bus_owner(bus, 0x3ff), "com1"));
	CHECK(io_bus_owner(bus, 0x400) == NULL);

	CHECK_EQ(io_bus_unregister(bus, 0x3f8), 0);
	CHECK(!io_bus_access(bus, 0x3f8, 1, false, data));
	CHECK_EQ(io_bus_unregister(bus, 0x3f8), -ENOENT);
	CHECK(io_bus_access(bus, 0x70, 1, false, data));
	io_bus_destroy(bus);
	return UNIT_RESULT();
}
