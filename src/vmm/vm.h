/* A KVM virtual machine: memory, in-kernel irqchip and PIT, one thread per
 * vCPU, and the event loop; devices attach through vm_platform(). */
#pragma once
#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/platform.h"
#include "vmm/topology.h"

struct vm;
/* The register state a loader (boot/boot.h) chose for the boot vCPU. */
struct boot_entry;

struct vm_options {
	const char *name;
	uint64_t mem_size;
	struct cpu_topology topo;
	/* The guest's RAM from a file (a named VM a loader prepared,
	 * ctl/vmdir.h), mapped privately: the run never changes the file.
	 * Otherwise anonymous memory. */
	bool mem_from_fd;
	int mem_fd;
	/* RAM another process can map (a vhost-user back end): a memfd,
	 * mapped shared; with mem_from_fd, the file's contents copied in. */
	bool mem_shared;
};

/* Whether a guest of size bytes of RAM can be had on this host (size,
 * alignment, the CPU's physical address width, the host's RAM and swap),
 * without opening /dev/kvm. 0, or -errno with a one-line reason. */
int vm_check_mem_size(uint64_t size, char *err, size_t errlen);

/* Returns 0, or -errno with a one-line reason in err; nothing is left
 * behind on failure. */
int vm_create(const struct vm_options *opt, struct vm **out, char *err, size_t errlen);
void vm_destroy(struct vm *vm);

struct platform *vm_platform(struct vm *vm);
const struct guest_mem *vm_mem(struct vm *vm);
struct evloop *vm_loop(struct vm *vm);
unsigned vm_vcpu_count(const struct vm *vm);
/* The KVM descriptors of the VM and of vCPU index, for the sandbox's
 * filters (which allow ioctls on these only). The vCPUs' are contiguous:
 * vCPU i's is vCPU 0's plus i. */
int vm_kvm_fd(const struct vm *vm);
int vm_vcpu_kvm_fd(const struct vm *vm, unsigned index);
uint32_t vm_apic_id(const struct vm *vm, unsigned index);

/* Mark [base, base+size) reserved in the guest's e820 map (the board's
 * PCI ECAM), before anything copies the map. */
int vm_reserve_mmio(struct vm *vm, uint64_t base, uint64_t size);

/* Where the boot vCPU starts. */
int vm_set_boot_entry(struct vm *vm, const struct boot_entry *entry, char *err, size_t errlen);

/* A handler for SIGTERM/SIGINT/SIGHUP (received on the event loop). If
 * none is set, they end the VM as a poweroff. */
typedef void (*vm_signal_handler)(void *opaque, int signo);
void vm_set_signal_handler(struct vm *vm, vm_signal_handler handler, void *opaque);

/* Run until the guest or the host ends the VM; returns the exit status
 * (enum vm_exit_status, or a debug-exit value). */
int vm_run(struct vm *vm);

void vm_request_exit(struct vm *vm, int status, const char *reason);
/* The reason given by whoever ended the VM. */
const char *vm_exit_reason(const struct vm *vm);

/* Before the caller ends the process (the VM has stopped): the kernel's
 * teardown of a VM (irqchip, PIT: several RCU grace periods, 10-20 ms)
 * is left to a child process that holds the VM's descriptors until this
 * process is gone, so whoever waits for khyve is not kept waiting for
 * it. Returns at once; the caller then exits without destroying the VM
 * (destroying it would wait for the teardown after all). */
void vm_detach(struct vm *vm);

/* Block the signals the event loop takes through signalfd, in the calling
 * thread (call early in main, before any thread exists). */
void vm_block_signals(void);

/* ---- Sleep (ACPI S3; sleep.c) ----
 * A suspended VM keeps its memory and devices; its vCPU threads park
 * (blocked, not spinning) and no guest code runs. Waking resets the vCPUs
 * and the in-kernel interrupt controllers as a PC's firmware does on S3
 * resume: the boot vCPU starts at the OS's waking vector, the others wait
 * for INIT/SIPI, the LAPICs, IOAPIC, PICs and PIT are at their power-on
 * state (lines a device still drives stay asserted). */
struct vm_wake_entry {
	/* false: real mode at CS = vector >> 4, IP = vector & 0xF (the FACS's
	 * Firmware_Waking_Vector, as SeaBIOS and OVMF jump there); true:
	 * 32-bit protected mode, flat segments, paging off, EIP = vector (its
	 * X_Firmware_Waking_Vector). */
	bool protected32;
	uint32_t vector;
};
/* Stop every vCPU; returns at once (the vCPUs park as soon as they leave
 * KVM_RUN, the caller's own at the top of its loop). -EALREADY if the VM
 * sleeps already. Any thread. */
int vm_suspend(struct vm *vm);
/* End the sleep: once every vCPU has parked, one of them resets the
 * machine as above and all run again. Returns at once; -EALREADY when
 * the VM is not suspended or a wake is already under way. Any thread. */
int vm_wake(struct vm *vm, const struct vm_wake_entry *entry);
bool vm_suspended(struct vm *vm);

/* ---- For the debugger (src/debug/) ----
 * vCPUs can be paused: each parks before its next KVM_RUN, and while
 * parked runs calls posted to it, so that its registers and debug state
 * can be read and set (KVM wants vCPU ioctls from the vCPU's thread or
 * while it is idle). */
struct kvm_debug_exit_arch;
/* Called on the vCPU's thread for a KVM_EXIT_DEBUG; vcpu_fd is that
 * vCPU's. Return true to park every vCPU (the debugger reports a stop,
 * then calls vm_pause_vcpus), false to let the vCPU go on. */
typedef bool (*vm_debug_exit_fn)(void *opaque, unsigned index, int vcpu_fd,
				 const struct kvm_debug_exit_arch *arch);
void vm_set_debug_handler(struct vm *vm, vm_debug_exit_fn fn, void *opaque);
/* Every vCPU parks before its first instruction (a debugger that asked to
 * attach first); before vm_run. */
void vm_hold_vcpus(struct vm *vm);
/* Ask every vCPU to park and wait until all have (or their threads have
 * ended). Not from a vCPU thread. 0, or -ETIMEDOUT. */
int vm_pause_vcpus(struct vm *vm, int timeout_ms);
/* Run fn(arg, vcpu_fd) on the parked vCPU's thread and return its result;
 * -EBUSY when that vCPU is not parked. */
int vm_vcpu_call(struct vm *vm, unsigned index, int (*fn)(void *arg, int vcpu_fd), void *arg);
/* Let the vCPUs with run[i] set (all when run is NULL) go on. */
void vm_resume_vcpus(struct vm *vm, const bool *run);

/* ---- For the control socket (src/ctl/) ----
 * Freezing stops every vCPU for an operator (khyvectl --suspend): each
 * parks as it does for the debugger (kicked out of KVM_RUN with the kick
 * signal and immediate_exit), independently of the debugger's own
 * pausing, so neither lets go what the other holds. */
/* Freeze and wait until every vCPU has parked (or its thread ended). Not
 * from a vCPU thread. 0, -EALREADY when frozen already, or -ETIMEDOUT (then
 * nothing stays frozen). */
int vm_freeze(struct vm *vm, int timeout_ms);
/* Let the frozen vCPUs go. -EALREADY when not frozen. */
int vm_thaw(struct vm *vm);
bool vm_frozen(struct vm *vm);

/* A vCPU's registers as KVM keeps them. */
struct vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_debugregs dregs;
};
/* Of a parked (or not running) vCPU; -EBUSY when it runs, -EINVAL for a
 * vCPU that does not exist. */
int vm_vcpu_get_state(struct vm *vm, unsigned index, struct vcpu_state *st);
int vm_vcpu_set_state(struct vm *vm, unsigned index, const struct vcpu_state *st);

/* KVM's binary statistics of a vCPU (KVM_GET_STATS_FD), read while it
 * runs: fn is called once per statistic with its name and its values (one,
 * or a histogram's buckets). -ENOTSUP when KVM has none, -EINVAL for a
 * vCPU that does not exist. */
typedef void (*vm_stat_fn)(void *opaque, const char *name, const uint64_t *values, unsigned n);
int vm_vcpu_stats(struct vm *vm, unsigned index, vm_stat_fn fn, void *opaque);
