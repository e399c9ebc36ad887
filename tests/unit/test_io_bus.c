#include <errno.h>
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

int main(void)
{
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
