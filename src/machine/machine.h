/* The PC that khyve builds from a parsed configuration: a VM (vmm/) plus
 * its platform devices (UARTs on the LPC bus, RTC, i8042, reset port,
 * ACPI PM, fw_cfg, debug-exit), the PCI devices of its slots, the tables
 * a guest reads (MP, ACPI) and the kernel to boot. The only code that
 * knows the whole board; it knows nothing of the command line (errors
 * name devices, not flags). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "machine/memmap.h"
#include "machine/slots.h"
#include "vmm/vm.h"

struct machine_config {
	struct vm_options vm;
	/* The character backend spec of machine_com_ports[i]; NULL: absent. */
	const char *com_backend[MACHINE_COM_PORTS];
	bool debug_exit;
	uint16_t debug_exit_port;
	bool rtc_localtime;
	struct boot_request boot;
	/* Start the boot vCPU here instead of loading boot.kernel_path: a
	 * named VM a loader prepared (its memory comes with vm.mem_fd). */
	const struct boot_entry *entry;
	const char *dump_acpi_dir; /* write the ACPI tables there */
	const struct machine_slots *pci; /* machine/slots.h; NULL: no PCI bus */
};

struct machine;

/* Build everything; on failure, a one-line reason and nothing left. */
int machine_build(const struct machine_config *cfg, struct machine **out, char *err, size_t errlen);
/* Run until the VM ends; returns the exit status. */
int machine_run(struct machine *m);
/* After machine_run, when the caller is about to end the process: hand
 * the kernel's slow teardown of the VM to a helper process (vm_detach),
 * so that whoever waits for this one is not kept waiting. The machine is
 * not destroyed; the caller exits next. */
void machine_detach(struct machine *m);
const char *machine_exit_reason(const struct machine *m);
/* Wake a guest suspended to RAM (ACPI S3), as QEMU's system_wakeup does:
 * the guest sees a power button wake. 0, or -EALREADY when it is not
 * suspended. Any thread (a wakeup request through the control socket). */
int machine_wakeup(struct machine *m);
/* Whether the guest is suspended to RAM now. */
bool machine_suspended(struct machine *m);
struct vm *machine_vm(struct machine *m);
/* Where machine_com_ports[i]'s backend can be reached (chardev_where), or
 * NULL when the port is absent. */
const char *machine_com_where(struct machine *m, int i);
void machine_destroy(struct machine *m);
