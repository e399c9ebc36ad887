/* Shared between vm.c and vcpu.c only. */
#pragma once
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "boot/boot.h"
#include "vmm/vm.h"

struct vcpu {
	struct vm *vm;
	unsigned index;
	uint32_t apic_id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
	/* KVM's binary statistics, for spotting a vCPU blocked in HLT without
	 * stopping it. -1 or offsets of 0 when unavailable. */
	int stats_fd;
	uint64_t stat_blocking_off, stat_halt_wakeup_off;
	uint64_t last_halt_wakeup;
	atomic_bool check_halt;
	/* Pausing for the debugger (end of vcpu.c); the rest under
	 * vm->pause_lock. */
	atomic_bool want_stop; /* park before the next KVM_RUN */
	bool parked;
	bool done; /* the thread has ended */
	bool call_pending;
	int (*call_fn)(void *arg, int vcpu_fd);
	void *call_arg;
	int call_result;
	/* The state KVM created the vCPU in (before any boot entry), which a
	 * wake from S3 returns it to (sleep.c). */
	struct kvm_regs reset_regs;
	struct kvm_sregs reset_sregs;
	struct kvm_lapic_state reset_lapic;
};

struct vm {
	struct vm_options opt;
	int kvm_fd, vm_fd;
	struct guest_mem mem;
	struct platform platform;
	struct evloop *loop;
	struct vcpu *vcpus;
	unsigned nvcpus;
	int kvm_max_vcpus;

	atomic_int exit_status; /* -1 while running */
	char exit_reason[160];
	int exit_eventfd;
	int signal_fd;
	int halt_timer_fd;
	int post_eventfd;
	struct irq_routing *irq_routing; /* irq_routing.c */
	vm_signal_handler signal_handler;
	void *signal_opaque;

	/* Halt detection: answers from kicked vCPUs for one round. */
	atomic_int halt_answers;
	atomic_int halt_yes;

	/* Pausing for the debugger (end of vcpu.c). */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond; /* any change of parked/call/want_stop */
	vm_debug_exit_fn debug_exit;
	void *debug_opaque;

	/* Frozen by the operator (vm_freeze): set under pause_lock, read
	 * anywhere. */
	atomic_bool frozen;

	/* Sleep (sleep.c): set under pause_lock; sleeping is read anywhere. */
	atomic_bool sleeping;
	bool wake_pending; /* vm_wake was called; the last vCPU to park resets */
	struct vm_wake_entry wake_entry;
	/* The power-on state of the PICs, the IOAPIC and the PIT. */
	struct kvm_irqchip reset_chip[3];
	struct kvm_pit_state2 reset_pit;
};

int vcpu_init(struct vm *vm, struct vcpu *vcpu, unsigned index, const struct kvm_cpuid2 *supported,
	      char *err, size_t errlen);
void vcpu_fini(struct vcpu *vcpu);
int vcpu_set_boot_entry(struct vcpu *vcpu, const struct boot_entry *entry);
int vcpu_start(struct vcpu *vcpu);
void vcpu_kick(struct vcpu *vcpu);
/* Whether KVM says the vCPU is blocked (halted or waiting for SIPI), and
 * how often it has woken from a halt. False if stats are unavailable. */
bool vcpu_blocked_stat(struct vcpu *vcpu, uint64_t *halt_wakeups);
void vcpu_install_kick_handler(void);

/* sleep.c */
/* Record the power-on state to return to on wake: the VM's just after
 * its irqchip and PIT are created, each vCPU's just after it is. */
int vm_sleep_capture(struct vm *vm, char *err, size_t errlen);
int vcpu_sleep_capture(struct vcpu *vcpu, char *err, size_t errlen);
/* With pause_lock held and every vCPU parked (or ended), when
 * wake_pending: reset the machine, clear sleeping and wake_pending. On
 * failure, a reason in err (the caller ends the VM, without the lock). */
int vm_sleep_wake_locked(struct vm *vm, char *err, size_t errlen);
