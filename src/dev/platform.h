/* What a device sees of the machine it is part of. Devices never call KVM
 * and do not know which program they run in: they claim bus ranges, touch
 * guest memory through mem/, raise interrupts and ask the VM to end through
 * the hooks here, which the VMM provides. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "bus/io_bus.h"
#include "mem/guest_mem.h"

struct evloop;

/* bhyve's exit statuses. */
enum vm_exit_status {
	VM_EXIT_REBOOT = 0,
	VM_EXIT_POWEROFF = 1,
	VM_EXIT_HALT = 2,
	VM_EXIT_TRIPLE_FAULT = 3,
	VM_EXIT_ERROR = 4,
};

struct platform {
	struct io_bus *pio;
	struct io_bus *mmio;
	const struct guest_mem *mem;
	struct evloop *loop;
	const char *vm_name;
	unsigned ncpus;
	unsigned max_cpus;

	/* Drive an interrupt line (a GSI: ISA IRQs 0-15 are GSIs 0-15) to a
	 * level. ISA devices raise and lower it; the PIC and IOAPIC see the
	 * edge. Callable from any thread. */
	void (*set_irq)(struct platform *p, unsigned gsi, bool level);
	/* End the VM with the given process exit status (a vm_exit_status, or
	 * any other value for debug-exit). The first request wins. Callable
	 * from any thread; returns at once. */
	void (*request_exit)(struct platform *p, int status, const char *reason);

	/* Interrupt and doorbell plumbing for PCI devices (src/vmm/irq_routing.c).
	 * Each may be NULL (unit tests, or a VMM without them): devices then
	 * fall back to signal_msi and to handling notify writes themselves.
	 * All are callable from any thread. */
	/* Route a new GSI to an MSI message; returns the GSI or -errno. */
	int (*msi_route_add)(struct platform *p, uint64_t addr, uint32_t data);
	int (*msi_route_update)(struct platform *p, unsigned gsi, uint64_t addr, uint32_t data);
	void (*msi_route_remove)(struct platform *p, unsigned gsi);
	/* Writes to eventfd fd inject gsi, without this process (irqfd). */
	int (*irqfd)(struct platform *p, int fd, unsigned gsi, bool assign);
	/* Guest writes to [addr, addr+len) (len 0: any width, MMIO only)
	 * signal eventfd fd instead of exiting to a vCPU thread (ioeventfd). */
	int (*ioeventfd)(struct platform *p, int fd, uint64_t addr, unsigned len, bool pio,
			 bool assign);
	/* Deliver one MSI message now. */
	void (*signal_msi)(struct platform *p, uint64_t addr, uint32_t data);
	void *vmm; /* the VMM's own, opaque to devices */
};

static inline void platform_set_irq(struct platform *p, unsigned gsi, bool level)
{
	p->set_irq(p, gsi, level);
}

static inline void platform_request_exit(struct platform *p, int status, const char *reason)
{
	p->request_exit(p, status, reason);
}
