/* A machine without KVM for unit tests and fuzz harnesses: guest RAM, the
 * port-I/O and MMIO buses, an event loop, and a record of every interrupt,
 * MSI and exit request a device makes. Devices under test are created on
 * fake->p exactly as the VMM creates them, and driven through the buses as
 * a vCPU would drive them. No irqfd, ioeventfd or MSI routes: devices then
 * take their fallback paths (notify writes handled in place, signal_msi). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "dev/platform.h"
#include "mem/guest_mem.h"

#define FAKE_MAX_GSI 64

struct fake_platform {
	struct platform p;
	struct guest_mem mem;
	int irq_level[FAKE_MAX_GSI];
	unsigned irq_raises[FAKE_MAX_GSI]; /* low-to-high edges per GSI */
	unsigned msi_count;
	uint64_t last_msi_addr;
	uint32_t last_msi_data;
	int exit_status; /* -1 until a device requests an exit */
	char exit_reason[128];
	unsigned irq_bad_gsi; /* set_irq calls for a GSI >= FAKE_MAX_GSI */
	unsigned irq_sets[FAKE_MAX_GSI]; /* set_irq calls per GSI, changes or not */
};

/* ram_bytes of guest RAM (at least GUEST_MEM_MIN). Returns 0 or -errno. */
int fake_platform_init(struct fake_platform *f, uint64_t ram_bytes);
void fake_platform_fini(struct fake_platform *f);

/* Forget every recorded interrupt, MSI and exit request (levels too), as
 * between two fuzz inputs that reuse one platform. */
void fake_platform_clear_records(struct fake_platform *f);
/* Replace both buses by empty ones. Call only with nothing registered on
 * them (every device destroyed): it also frees the range tables that old
 * BAR moves left behind, which a bus keeps for its lifetime. Returns 0 or
 * -ENOMEM (the platform is then unusable). */
int fake_platform_renew_buses(struct fake_platform *f);

/* A vCPU's access; unclaimed reads give all-ones, as on a PC. */
uint64_t fake_pio_read(struct fake_platform *f, uint64_t port, unsigned size);
void fake_pio_write(struct fake_platform *f, uint64_t port, unsigned size, uint64_t value);
uint64_t fake_mmio_read(struct fake_platform *f, uint64_t addr, unsigned size);
void fake_mmio_write(struct fake_platform *f, uint64_t addr, unsigned size, uint64_t value);

/* Run the event loop's ready callbacks without blocking (timeout 0), as the
 * event-loop thread would. Returns how many callbacks ran, or -errno. */
int fake_loop_poll(struct fake_platform *f);
