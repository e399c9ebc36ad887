/* Guest physical memory: the layout, the e820 map that describes it, and
 * the ONLY way device and boot code may read or write the guest.
 *
 * Layout: RAM from 0 up to min(size, 3 GiB); the rest of RAM from 4 GiB.
 * [3 GiB, 4 GiB) is the MMIO hole (PCI windows, ECAM, IOAPIC, LAPIC). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_LOWMEM_LIMIT 0xC0000000ULL
#define GUEST_HIGHMEM_BASE 0x100000000ULL
#define GUEST_MEM_MIN (4ULL << 20)

/* Fixed places below 1 MiB that the boot code and the platform use. */
#define GUEST_EBDA_BASE 0x9FC00ULL
#define GUEST_BIOS_AREA_BASE 0xE0000ULL /* ACPI tables, MP table, RSDP */
#define GUEST_BIOS_AREA_END 0x100000ULL

struct guest_mem {
	uint8_t *host;      /* low RAM, then high RAM, contiguous in the host */
	uint64_t size;      /* all RAM */
	uint64_t low_size;  /* RAM below GUEST_LOWMEM_LIMIT */
	uint64_t high_size; /* RAM from GUEST_HIGHMEM_BASE */
	/* MMIO ranges in the hole that the e820 map marks reserved (PCI ECAM),
	 * added with guest_mem_reserve(). */
	unsigned nr_reserved;
	struct { uint64_t addr, size; } reserved[2];
	/* RAM that other processes can map (a vhost-user back end): a memfd,
	 * mapped shared, with low RAM at offset 0 and high RAM after it. */
	bool shared;
	int fd; /* meaningful only when shared */
};

/* A RAM region in guest-physical terms, for the KVM memory slots. */
struct guest_mem_region {
	uint64_t gpa, size;
	void *host;
	int fd;             /* the memfd (shared RAM), else -1 */
	uint64_t fd_offset; /* where the region starts in it */
};

int guest_mem_create(struct guest_mem *gm, uint64_t size);
/* RAM backed by the file fd (at least size bytes; the layout as above:
 * low RAM at offset 0, RAM from 4 GiB after it). shared: writes go to the
 * file (a loader preparing a named VM, ctl/vmdir.h); else the mapping is
 * private, copy on write, and the file never changes (khyve running a
 * prepared VM). The descriptor may be closed afterwards. */
int guest_mem_create_from_fd(struct guest_mem *gm, uint64_t size, int fd, bool shared);
/* RAM in a memfd mapped shared, so that its descriptor can be handed to
 * another process (guest_mem_regions gives it). src_fd >= 0: start with
 * the contents of that file (a named VM a loader prepared), copied, so
 * the file never changes, as with the private mapping above. */
int guest_mem_create_shared(struct guest_mem *gm, uint64_t size, int src_fd);
void guest_mem_destroy(struct guest_mem *gm);
/* Up to two regions (low, high). Returns their count. */
int guest_mem_regions(const struct guest_mem *gm, struct guest_mem_region out[2]);

/* True when [gpa, gpa+len) lies wholly in one RAM region. */
bool guest_mem_is_ram(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* A host pointer valid for exactly [gpa, gpa+len), or NULL if any of it is
 * not RAM (or len is 0 or the range wraps). The guest may change the bytes
 * at any moment: copy before validating what you read.
 *
 * How long a pointer may be kept. Guest RAM is mapped once, at
 * guest_mem_create, and is never moved or remapped until
 * guest_mem_destroy, which comes after every device is gone: so the
 * pointer stays a valid HOST address for the VM's whole life. Whether the
 * GUEST still means those bytes for the device is another matter: a
 * device keeps a pointer only while it owns the buffer the guest gave it,
 * from taking a chain to giving it back, and never across a device reset
 * (after a reset the guest may reuse the memory). Relied on by:
 * virtqueue.c (the ring areas, found at vq_init and kept until vq_reset),
 * vdev_work.h (chains taken, given back only in the same reset
 * generation, a reset waiting for those in flight), blk.c (io_uring reads
 * and writes straight into the chain's buffers), net.c (writev from and
 * copies into the chains), console.c (a receive buffer held across
 * calls, checked against the reset generation), rnd.c, vhost_net.c
 * (the kernel holds the memory table and ring addresses from a start to
 * the stop that every reset does). A future change
 * that remaps guest RAM (memory hot-plug, a balloon that unmaps) must
 * first stop every device, as a reset does. */
void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy to/from the guest. Return 0, or -EFAULT when the range is not RAM
 * (nothing is copied then). */
int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *dst, size_t len);
int guest_mem_write(const struct guest_mem *gm, uint64_t gpa, const void *src, size_t len);
int guest_mem_fill(const struct guest_mem *gm, uint64_t gpa, int byte, size_t len);

/* Little-endian scalar helpers; on a bad address reads give 0 and return
 * -EFAULT. */
int guest_mem_read_u32(const struct guest_mem *gm, uint64_t gpa, uint32_t *out);
int guest_mem_write_u32(const struct guest_mem *gm, uint64_t gpa, uint32_t value);
int guest_mem_write_u64(const struct guest_mem *gm, uint64_t gpa, uint64_t value);

/* Bytes of guest RAM the host has pages for (touched by guest or host). */
uint64_t guest_mem_resident_bytes(const struct guest_mem *gm);

/* The e820 map. */
enum e820_type { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3, E820_NVS = 4 };
struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
};
#define E820_MAX_ENTRIES 8
/* Mark [addr, addr+size) in the MMIO hole reserved in the e820 map.
 * Returns 0, -EINVAL (not inside the hole) or -ENOSPC. */
int guest_mem_reserve(struct guest_mem *gm, uint64_t addr, uint64_t size);
/* Fills out[] (E820_MAX_ENTRIES) and returns the count. */
int guest_mem_e820(const struct guest_mem *gm, struct e820_entry *out);
