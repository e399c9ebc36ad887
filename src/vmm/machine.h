/* The PC that khyve builds: a VM plus its platform devices (UARTs on the
 * LPC bus, RTC, i8042, reset port, ACPI PM, fw_cfg, debug-exit), the
 * tables a guest reads (MP, ACPI) and the kernel to boot. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "vmm/vm.h"

#define MACHINE_COM_PORTS 4

struct machine_config {
	struct vm_options vm;
	const char *com_backend[MACHINE_COM_PORTS]; /* -l comN,BACKEND; NULL: absent */
	bool debug_exit;
	uint16_t debug_exit_port;
	bool rtc_localtime;
	struct boot_request boot;
	const char *dump_acpi_dir; /* write the ACPI tables there */
	const struct pci_config *pci; /* the -s devices (pci/slots.h); NULL: no PCI bus */
};

struct machine;

/* Build everything; on failure, a one-line reason and nothing left. */
int machine_build(const struct machine_config *cfg, struct machine **out, char *err, size_t errlen);
/* Run until the VM ends; returns the exit status. */
int machine_run(struct machine *m);
const char *machine_exit_reason(const struct machine *m);
/* Wake a guest suspended to RAM (ACPI S3), as QEMU's system_wakeup does:
 * the guest sees a power button wake. 0, or -EALREADY when it is not
 * suspended. Any thread (khyvectl --wakeup, through the control socket). */
int machine_wakeup(struct machine *m);
/* Whether the guest is suspended to RAM now. */
bool machine_suspended(struct machine *m);
struct vm *machine_vm(struct machine *m);
void machine_destroy(struct machine *m);

/* The LPC devices -l knows, by name. */
struct lpc_device_info {
	const char *name;
	uint16_t port;
	unsigned irq;
};
const struct lpc_device_info *lpc_device_find(const char *name);
