/* Port-I/O and MMIO dispatch. Devices claim address ranges; a vCPU thread
 * asks the bus which device serves an access. Lookups are lock-free: the
 * range table is immutable and replaced whole when it changes (PCI BAR
 * moves), so vCPU threads never contend on the dispatch path. A replaced
 * table is freed once no thread can still be reading it (epochs per
 * reading thread, io_bus.c), so memory stays flat however often a guest
 * remaps. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct io_ops {
	/* offset is relative to the start of the claimed range; size is 1, 2,
	 * 4 or 8. A handler may be NULL: reads then give all-ones, writes are
	 * dropped. */
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

struct io_bus;

struct io_bus *io_bus_create(const char *name);
void io_bus_destroy(struct io_bus *bus);

/* Claim [base, base+len). Fails with -EEXIST when it overlaps a claimed
 * range and -EINVAL for an empty or wrapping range. */
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    const struct io_ops *ops, void *opaque, const char *owner);
/* Release the range that starts at base (exactly as registered). */
int io_bus_unregister(struct io_bus *bus, uint64_t base);

/* Dispatch one access. data holds up to 8 bytes, little-endian. Returns
 * false when nothing claims addr (reads are then filled with 0xff). */
bool io_bus_access(struct io_bus *bus, uint64_t addr, unsigned size, bool is_write,
		   uint8_t *data);

/* Name of the owner of addr, for diagnostics; NULL if unclaimed. */
const char *io_bus_owner(struct io_bus *bus, uint64_t addr);

/* How many replaced tables are still kept for readers that may hold them
 * (for tests: it stays small however often the table changes). */
size_t io_bus_retained_tables(struct io_bus *bus);
