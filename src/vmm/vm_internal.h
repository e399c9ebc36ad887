/* Shared between vm.c and vcpu.c only. */
#pragma once
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

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
