#include "machine/machine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>

#include "backend/chardev.h"
#include "boot/tables.h"
#include "dev/acpi_pm.h"
#include "dev/debug_exit.h"
#include "dev/fw_cfg.h"
#include "dev/i8042.h"
#include "dev/reset_cf9.h"
#include "dev/rtc.h"
#include "dev/uart16550.h"
#include "machine/memmap.h"
#include "machine/slots.h"
#include "util/log.h"

struct machine {
	struct vm *vm;
	struct chardev *com_backend[MACHINE_COM_PORTS];
	struct uart16550 *com[MACHINE_COM_PORTS];
	struct rtc *rtc;
	struct i8042 *i8042;
	struct reset_cf9 *reset;
	struct acpi_pm *acpi_pm;
	struct fw_cfg *fw_cfg;
	struct debug_exit *debug_exit;
	struct chardev *stdio_console; /* the com port on stdio, if any */
	struct machine_pci *pci;
};

/* SIGTERM presses the power button when the guest listens for it, and
 * wakes a guest in S3 (as the button of a sleeping PC does); otherwise
 * (no ACPI in the guest, or not yet) it ends the VM as a poweroff. */
static void on_host_signal(void *opaque, int signo)
{
	struct machine *m = opaque;
	if (signo == SIGTERM && m->acpi_pm && acpi_pm_press_power_button(m->acpi_pm))
		return;
	/* With the console on stdio, an interrupt is the guest's to handle,
	 * as a Control-C typed at its console would be. */
	if (signo == SIGINT && m->stdio_console) {
		static const uint8_t ctrl_c = 0x03;
		chardev_inject_input(m->stdio_console, &ctrl_c, 1);
		return;
	}
	char why[64];
	snprintf(why, sizeof(why), "%s received", strsignal(signo));
	vm_request_exit(m->vm, VM_EXIT_POWEROFF, why);
}

/* ---- S3 (the ACPI PM device's sleep ops, under its lock) ---- */

static const char *vm_name(struct machine *m)
{
	return vm_platform(m->vm)->vm_name;
}

static bool on_guest_sleep(void *opaque)
{
	struct machine *m = opaque;
	if (vm_suspend(m->vm))
		return false;
	log_info("%s: guest suspended to RAM (ACPI S3)", vm_name(m));
	return true;
}

/* As firmware resuming from S3 does: a non-zero X_Firmware_Waking_Vector
 * is entered in 32-bit protected mode (khyve does not offer the 64-bit
 * wake, FACS flag 64BIT_WAKE_SUPPORTED_F), else Firmware_Waking_Vector in
 * real mode. Without either, firmware boots afresh: a reboot here. */
static void on_guest_wake(void *opaque, const char *cause)
{
	struct machine *m = opaque;
	uint32_t vector = 0;
	uint64_t x_vector = 0;
	struct vm_wake_entry entry = { 0 };
	bool usable = false;
	char why[128];
	if (acpi_facs_waking_vector(vm_mem(m->vm), &vector, &x_vector) == 0) {
		if (x_vector) {
			entry.protected32 = true;
			entry.vector = (uint32_t)x_vector;
			usable = x_vector <= 0xFFFFFFFFULL;
		} else if (vector) {
			entry.vector = vector;
			usable = vector < 0x100000; /* real mode reaches 1 MiB */
		}
	}
	if (!usable) {
		snprintf(why, sizeof(why), "woke from S3 (%s) without a usable waking vector in the FACS",
			 cause);
		log_info("%s: %s: rebooting, as firmware would", vm_name(m), why);
		vm_request_exit(m->vm, VM_EXIT_REBOOT, why);
		return;
	}
	log_info("%s: guest woken from S3 by the %s", vm_name(m), cause);
	vm_wake(m->vm, &entry);
}

static const struct acpi_pm_sleep_ops sleep_ops = {
	.sleep = on_guest_sleep,
	.wake = on_guest_wake,
};

static void on_rtc_alarm(void *opaque)
{
	struct machine *m = opaque;
	acpi_pm_rtc_alarm(m->acpi_pm);
}

int machine_wakeup(struct machine *m)
{
	return acpi_pm_wakeup(m->acpi_pm);
}

bool machine_suspended(struct machine *m)
{
	return acpi_pm_sleeping(m->acpi_pm);
}

static int fail_with(char *err, size_t errlen, int r, const char *what)
{
	snprintf(err, errlen, "%s: %s", what, strerror(r < 0 ? -r : r));
	return r < 0 ? r : -r;
}

int machine_build(const struct machine_config *cfg, struct machine **out, char *err, size_t errlen)
{
	struct machine *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	struct vm_options vmo = cfg->vm;
	vmo.mem_shared = vmo.mem_shared || machine_slots_need_shared_ram(cfg->pci);
	int r = vm_create(&vmo, &m->vm, err, errlen);
	if (r)
		goto fail;
	/* The PCI ECAM area, before anything copies the e820 map. */
	if (cfg->pci && (r = vm_reserve_mmio(m->vm, PCI_ECAM_BASE, PCI_ECAM_SIZE))) {
		fail_with(err, errlen, r, "reserving the PCI ECAM area");
		goto fail;
	}
	struct platform *p = vm_platform(m->vm);
	const struct guest_mem *gm = vm_mem(m->vm);

	for (int i = 0; i < MACHINE_COM_PORTS; i++) {
		if (!cfg->com_backend[i])
			continue;
		char why[256];
		r = chardev_open(cfg->com_backend[i], vm_loop(m->vm), &m->com_backend[i], why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "%s: %s", machine_com_ports[i].name, why);
			goto fail;
		}
		if (!strncmp(cfg->com_backend[i], "stdio", 5) &&
		    (cfg->com_backend[i][5] == '\0' || cfg->com_backend[i][5] == ','))
			m->stdio_console = m->com_backend[i];
		r = uart16550_create(p, machine_com_ports[i].port, machine_com_ports[i].irq,
				     m->com_backend[i], &m->com[i]);
		if (r) {
			fail_with(err, errlen, r, machine_com_ports[i].name);
			goto fail;
		}
	}
	if ((r = rtc_create(p, &m->rtc))) {
		fail_with(err, errlen, r, "rtc");
		goto fail;
	}
	rtc_set_localtime(m->rtc, cfg->rtc_localtime);
	if ((r = i8042_create(p, &m->i8042))) {
		fail_with(err, errlen, r, "i8042");
		goto fail;
	}
	if ((r = reset_cf9_create(p, &m->reset))) {
		fail_with(err, errlen, r, "reset port");
		goto fail;
	}
	if ((r = acpi_pm_create(p, &m->acpi_pm))) {
		fail_with(err, errlen, r, "acpi pm");
		goto fail;
	}
	acpi_pm_set_sleep_ops(m->acpi_pm, &sleep_ops, m);
	rtc_set_wake_hook(m->rtc, on_rtc_alarm, m);
	if ((r = fw_cfg_create(p, &m->fw_cfg))) {
		fail_with(err, errlen, r, "fw_cfg");
		goto fail;
	}
	if (cfg->debug_exit && (r = debug_exit_create(p, cfg->debug_exit_port, &m->debug_exit))) {
		snprintf(err, errlen, "the debug-exit port 0x%x: %s", cfg->debug_exit_port,
			 r == -EEXIST ? "already used by another device" : strerror(-r));
		goto fail;
	}

	unsigned ncpus = vm_vcpu_count(m->vm);
	uint32_t apic_ids[TOPOLOGY_MAX_CPUS];
	for (unsigned i = 0; i < ncpus; i++)
		apic_ids[i] = vm_apic_id(m->vm, i);
	struct platform_desc desc = {
		.ncpus = ncpus,
		.apic_ids = apic_ids,
		/* What KVM's in-kernel IOAPIC's ID register reads after reset:
		 * the MADT and the MP table must name that ID (FreeBSD checks:
		 * "ioapic0: MADT APIC ID 1 != hw id 0"). IOAPIC and local APIC
		 * IDs are separate name spaces since the xAPIC, so 0 beside
		 * CPU 0 is fine; QEMU uses 0 as well. */
		.ioapic_id = 0,
		.ioapic_pins = IOAPIC_PINS,
		.ram_below_4g = gm->low_size,
		.ram_above_4g = gm->high_size,
	};
	for (int i = 0; i < MACHINE_COM_PORTS; i++)
		desc.com_present[i] = cfg->com_backend[i] != NULL;
	if (cfg->pci && (r = machine_pci_create(p, cfg->pci, &desc, &m->pci, err, errlen)))
		goto fail;
	if ((r = mptable_build(gm, &desc))) {
		fail_with(err, errlen, r, "building the MP table");
		goto fail;
	}
	uint64_t rsdp = 0;
	if ((r = acpi_build(gm, &desc, &rsdp))) {
		fail_with(err, errlen, r, "building the ACPI tables");
		goto fail;
	}
	if (cfg->dump_acpi_dir && (r = acpi_dump_tables(gm, rsdp, cfg->dump_acpi_dir))) {
		fail_with(err, errlen, r, cfg->dump_acpi_dir);
		goto fail;
	}

	if (cfg->boot.kernel_path) {
		struct boot_request req = cfg->boot;
		req.rsdp_gpa = rsdp;
		struct boot_entry entry;
		if ((r = boot_load_kernel(gm, &req, &entry, err, errlen)))
			goto fail;
		if ((r = vm_set_boot_entry(m->vm, &entry, err, errlen)))
			goto fail;
	}
	if (cfg->entry && (r = vm_set_boot_entry(m->vm, cfg->entry, err, errlen)))
		goto fail;
	vm_set_signal_handler(m->vm, on_host_signal, m);
	*out = m;
	return 0;
fail:
	machine_destroy(m);
	return r ? r : -EINVAL;
}

int machine_run(struct machine *m) { return vm_run(m->vm); }

struct vm *machine_vm(struct machine *m) { return m->vm; }

const char *machine_com_where(struct machine *m, int i)
{
	if (i < 0 || i >= MACHINE_COM_PORTS || !m->com_backend[i])
		return NULL;
	return chardev_where(m->com_backend[i]);
}

void machine_detach(struct machine *m) { vm_detach(m->vm); }

const char *machine_exit_reason(const struct machine *m) { return vm_exit_reason(m->vm); }

void machine_destroy(struct machine *m)
{
	if (!m)
		return;
	machine_pci_destroy(m->pci);
	if (m->debug_exit)
		debug_exit_destroy(m->debug_exit);
	if (m->fw_cfg)
		fw_cfg_destroy(m->fw_cfg);
	if (m->acpi_pm)
		acpi_pm_destroy(m->acpi_pm);
	if (m->reset)
		reset_cf9_destroy(m->reset);
	if (m->i8042)
		i8042_destroy(m->i8042);
	if (m->rtc)
		rtc_destroy(m->rtc);
	for (int i = 0; i < MACHINE_COM_PORTS; i++) {
		if (m->com[i])
			uart16550_destroy(m->com[i]);
		if (m->com_backend[i])
			chardev_close(m->com_backend[i]);
	}
	vm_destroy(m->vm);
	free(m);
}
