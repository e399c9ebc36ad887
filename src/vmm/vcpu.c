#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bus/io_bus.h"
#include "util/log.h"
#include "util/thread_role.h"
#include "vmm/cpuid.h"
#include "vmm/vm_internal.h"

/* Sent to a vCPU thread to make KVM_RUN return. */
#define KICK_SIGNAL SIGUSR1

static __thread struct kvm_run *current_run;

static void kick_handler(int sig)
{
	(void)sig;
	/* Covers a kick that lands just before KVM_RUN is entered. */
	if (current_run)
		current_run->immediate_exit = 1;
}

void vcpu_install_kick_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL);
}

static void find_stats(struct vcpu *vcpu)
{
	vcpu->stats_fd = ioctl(vcpu->fd, KVM_GET_STATS_FD, NULL);
	if (vcpu->stats_fd < 0)
		return;
	struct kvm_stats_header h;
	if (pread(vcpu->stats_fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.num_desc > 4096 ||
	    h.name_size > 256)
		goto fail;
	size_t stride = sizeof(struct kvm_stats_desc) + h.name_size;
	uint8_t *descs = malloc(stride * h.num_desc);
	if (!descs)
		goto fail;
	if (pread(vcpu->stats_fd, descs, stride * h.num_desc, h.desc_offset) !=
	    (ssize_t)(stride * h.num_desc)) {
		free(descs);
		goto fail;
	}
	bool have_blocking = false, have_wakeup = false;
	for (uint32_t i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + i * stride);
		d->name[h.name_size - 1] = '\0';
		if (!strcmp(d->name, "blocking")) {
			vcpu->stat_blocking_off = h.data_offset + d->offset;
			have_blocking = true;
		} else if (!strcmp(d->name, "halt_wakeup")) {
			vcpu->stat_halt_wakeup_off = h.data_offset + d->offset;
			have_wakeup = true;
		}
	}
	free(descs);
	if (!have_blocking || !have_wakeup)
		vcpu->stat_blocking_off = vcpu->stat_halt_wakeup_off = 0;
	/* Kept open either way: khyvectl --get-stats reads it while the vCPU
	 * runs (opening one then would wait for KVM_RUN to return). */
	return;
fail:
	close(vcpu->stats_fd);
	vcpu->stats_fd = -1;
}

bool vcpu_blocked_stat(struct vcpu *vcpu, uint64_t *halt_wakeups)
{
	uint64_t blocking = 0;
	if (vcpu->stats_fd < 0 || !vcpu->stat_blocking_off ||
	    pread(vcpu->stats_fd, &blocking, 8, (off_t)vcpu->stat_blocking_off) != 8 ||
	    pread(vcpu->stats_fd, halt_wakeups, 8, (off_t)vcpu->stat_halt_wakeup_off) != 8)
		return false;
	return blocking != 0;
}

int vcpu_init(struct vm *vm, struct vcpu *vcpu, unsigned index, const struct kvm_cpuid2 *supported,
	      char *err, size_t errlen)
{
	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->apic_id = topology_apic_id(&vm->opt.topo, index);
	vcpu->stats_fd = -1;
	/* With the in-kernel LAPIC the vCPU id is its initial APIC ID. */
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)vcpu->apic_id);
	if (vcpu->fd < 0) {
		int e = errno;
		snprintf(err, errlen, "creating vCPU %u: %s", index, strerror(e));
		return -e;
	}
	int size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run)) {
		snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -EIO;
	}
	vcpu->run_size = (size_t)size;
	vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		int e = errno;
		vcpu->run = NULL;
		snprintf(err, errlen, "mapping vCPU %u: %s", index, strerror(e));
		return -e;
	}
	/* The vCPU's TSC rate for CPUID leaf 0x40000010; 0 (leaf left out)
	 * where KVM cannot say. */
	int khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);
	struct kvm_cpuid2 *cpuid =
		cpuid_for_vcpu(supported, &vm->opt.topo, index, khz > 0 ? (uint32_t)khz : 0);
	if (!cpuid) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid);
	int e = errno;
	free(cpuid);
	if (r < 0) {
		snprintf(err, errlen, "setting CPUID of vCPU %u: %s", index, strerror(e));
		return -e;
	}
	find_stats(vcpu);
	return vcpu_sleep_capture(vcpu, err, errlen);
}

void vcpu_fini(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->stats_fd >= 0)
		close(vcpu->stats_fd);
	if (vcpu->fd > 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
	vcpu->stats_fd = -1;
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64, bool db)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
		.dpl = 0, .db = db, .s = 1, .l = code64, .g = 1,
	};
}

int vcpu_set_boot_entry(struct vcpu *vcpu, const struct boot_entry *entry)
{
	struct kvm_sregs sregs;
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	bool long_mode = entry->mode == BOOT_CPU_LONG64;
	flat_segment(&sregs.cs, entry->code_sel, 0xb, long_mode, !long_mode);
	flat_segment(&sregs.ds, entry->data_sel, 0x3, false, true);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	if (entry->tss_sel) {
		sregs.tr = (struct kvm_segment){ .base = 0, .limit = 0x67, .selector = entry->tss_sel,
						 .type = 0xb, .present = 1 };
	}
	sregs.gdt.base = entry->gdt_base;
	sregs.gdt.limit = entry->gdt_limit;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = entry->cr0;
	sregs.cr3 = entry->cr3;
	sregs.cr4 = entry->cr4;
	sregs.efer = entry->efer;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	struct kvm_regs regs;
	memset(&regs, 0, sizeof(regs));
	regs.rip = entry->rip;
	regs.rsp = entry->rsp;
	regs.rflags = entry->rflags ? entry->rflags : 0x2;
	regs.rax = entry->rax;
	regs.rbx = entry->rbx;
	regs.rsi = entry->rsi;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

static void dump_registers(struct vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		log_error("vCPU %u: cannot read registers: %s", vcpu->index, strerror(errno));
		return;
	}
	log_error("vCPU %u registers:", vcpu->index);
	log_error(" rip %016llx rsp %016llx rflags %08llx", r.rip, r.rsp, r.rflags);
	log_error(" rax %016llx rbx %016llx rcx %016llx rdx %016llx", r.rax, r.rbx, r.rcx, r.rdx);
	log_error(" rsi %016llx rdi %016llx rbp %016llx", r.rsi, r.rdi, r.rbp);
	log_error(" r8  %016llx r9  %016llx r10 %016llx r11 %016llx", r.r8, r.r9, r.r10, r.r11);
	log_error(" r12 %016llx r13 %016llx r14 %016llx r15 %016llx", r.r12, r.r13, r.r14, r.r15);
	log_error(" cs %04x (base %llx, l=%d db=%d) ss %04x ds %04x es %04x", s.cs.selector,
		  s.cs.base, s.cs.l, s.cs.db, s.ss.selector, s.ds.selector, s.es.selector);
	log_error(" cr0 %08llx cr2 %016llx cr3 %016llx cr4 %08llx efer %llx", s.cr0, s.cr2,
		  s.cr3, s.cr4, s.efer);
	log_error(" gdt %llx/%x idt %llx/%x", s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
	/* The instruction bytes, when RIP maps to RAM directly. */
	struct kvm_translation tr = { .linear_address = r.rip };
	if (ioctl(vcpu->fd, KVM_TRANSLATE, &tr) == 0 && tr.valid) {
		uint8_t code[16];
		if (guest_mem_read(&vcpu->vm->mem, tr.physical_address, code, sizeof(code)) == 0) {
			char hex[16 * 3 + 1];
			for (int i = 0; i < 16; i++)
				snprintf(hex + i * 3, 4, "%02x ", code[i]);
			log_error(" code at rip (gpa %llx): %s", tr.physical_address, hex);
		}
	}
}

static void fail(struct vcpu *vcpu, const char *what)
{
	log_error("vCPU %u: %s", vcpu->index, what);
	dump_registers(vcpu);
	vm_request_exit(vcpu->vm, VM_EXIT_ERROR, what);
}

/* Answers a halt-detection round: halted (or never started) with
 * interrupts off counts as halted for good. */
static void answer_halt_check(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	bool halted = false;
	struct kvm_mp_state mp;
	if (ioctl(vcpu->fd, KVM_GET_MP_STATE, &mp) == 0) {
		if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED || mp.mp_state == KVM_MP_STATE_INIT_RECEIVED) {
			halted = true;
		} else if (mp.mp_state == KVM_MP_STATE_HALTED) {
			struct kvm_regs r;
			halted = ioctl(vcpu->fd, KVM_GET_REGS, &r) == 0 && !(r.rflags & (1u << 9));
		}
	}
	if (halted)
		atomic_fetch_add(&vm->halt_yes, 1);
	if (atomic_fetch_add(&vm->halt_answers, 1) + 1 == (int)vm->nvcpus &&
	    atomic_load(&vm->halt_yes) == (int)vm->nvcpus)
		vm_request_exit(vm, VM_EXIT_HALT, "all vCPUs halted with interrupts disabled");
}

/* KVM_RUN returned because of the kick signal (either way KVM reports
 * it): re-arm, and answer a halt check if one was asked. */
static void handle_kick(struct vcpu *vcpu)
{
	vcpu->run->immediate_exit = 0;
	if (atomic_exchange(&vcpu->check_halt, false))
		answer_halt_check(vcpu);
}

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		io_bus_access(vcpu->vm->platform.pio, run->io.port, run->io.size, is_write, data);
}

static void vcpu_park(struct vcpu *vcpu);
static void vcpu_debug_exit(struct vcpu *vcpu);
static void vcpu_thread_done(struct vcpu *vcpu);

/* One exit KVM_RUN returned with. */
static void handle_exit(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	struct kvm_run *run = vcpu->run;
	char what[160];
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vcpu);
		break;
	case KVM_EXIT_MMIO:
		io_bus_access(vm->platform.mmio, run->mmio.phys_addr, run->mmio.len,
			      run->mmio.is_write, run->mmio.data);
		break;
	case KVM_EXIT_SHUTDOWN:
		snprintf(what, sizeof(what), "triple fault on vCPU %u", vcpu->index);
		vm_request_exit(vm, VM_EXIT_TRIPLE_FAULT, what);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			vm_request_exit(vm, VM_EXIT_REBOOT, "reset");
		else if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			vm_request_exit(vm, VM_EXIT_POWEROFF, "shutdown");
		else {
			snprintf(what, sizeof(what), "system event %u", run->system_event.type);
			fail(vcpu, what);
		}
		break;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; khyve always has one. */
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error (suberror %u%s), %u data words: %llx %llx %llx %llx",
			 run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? ": instruction emulation failed" : "",
			 run->internal.ndata,
			 run->internal.ndata > 0 ? (unsigned long long)run->internal.data[0] : 0ULL,
			 run->internal.ndata > 1 ? (unsigned long long)run->internal.data[1] : 0ULL,
			 run->internal.ndata > 2 ? (unsigned long long)run->internal.data[2] : 0ULL,
			 run->internal.ndata > 3 ? (unsigned long long)run->internal.data[3] : 0ULL);
		fail(vcpu, what);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed (hardware reason 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		fail(vcpu, what);
		break;
	case KVM_EXIT_INTR:
		handle_kick(vcpu);
		break;
	case KVM_EXIT_DEBUG:
		vcpu_debug_exit(vcpu);
		break;
	default:
		snprintf(what, sizeof(what), "unhandled KVM exit reason %u", run->exit_reason);
		fail(vcpu, what);
		break;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	struct kvm_run *run = vcpu->run;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	pthread_setname_np(pthread_self(), name);
	current_run = run;
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	thread_role_enter(THREAD_ROLE_VCPU);

	char what[160];
	while (atomic_load_explicit(&vm->exit_status, memory_order_relaxed) < 0) {
		if (atomic_load(&vcpu->want_stop) || atomic_load(&vm->sleeping) ||
		    atomic_load(&vm->frozen)) {
			vcpu_park(vcpu);
			continue;
		}
		int r = ioctl(vcpu->fd, KVM_RUN, 0);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				handle_kick(vcpu);
				continue;
			}
			snprintf(what, sizeof(what), "KVM_RUN failed: %s", strerror(errno));
			fail(vcpu, what);
			break;
		}
		handle_exit(vcpu);
	}
	current_run = NULL;
	vcpu_thread_done(vcpu);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int r = pthread_create(&vcpu->thread, &attr, vcpu_thread, vcpu);
	pthread_attr_destroy(&attr);
	if (r)
		return -r;
	vcpu->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (vcpu->started)
		pthread_kill(vcpu->thread, KICK_SIGNAL);
}

/* ---- Pausing for the debugger ----
 * A vCPU asked to stop (want_stop) parks before its next KVM_RUN; the kick
 * signal makes a KVM_RUN in progress return. While parked it waits on
 * vm->pause_cond and runs the calls posted to it (vm_vcpu_call), so its
 * registers and KVM_SET_GUEST_DEBUG are handled on its own thread. */

static bool vcpu_is_idle(const struct vcpu *v)
{
	return !v->started || v->parked || v->done;
}

/* Finish the exit KVM_RUN last returned with, without running guest code:
 * an I/O or MMIO access is complete only once KVM_RUN is entered again,
 * and KVM_RUN with immediate_exit set returns right after completing it.
 * An emulated string instruction may exit again first; those exits are
 * handled, a bounded number of them. */
static void vcpu_complete_exit(struct vcpu *vcpu)
{
	for (int i = 0; i < 64; i++) {
		vcpu->run->immediate_exit = 1;
		int r = ioctl(vcpu->fd, KVM_RUN, 0);
		vcpu->run->immediate_exit = 0;
		if (r < 0)
			return;
		handle_exit(vcpu);
	}
}

/* Every vCPU is parked or its thread has ended (pause_lock held). */
static bool all_parked(const struct vm *vm)
{
	for (unsigned i = 0; i < vm->nvcpus; i++)
		if (!vm->vcpus[i].parked && !vm->vcpus[i].done)
			return false;
	return true;
}

/* Parked for the debugger (want_stop) or while the VM sleeps (sleep.c). */
static void vcpu_park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	bool completed = false;
	char why[160];
	pthread_mutex_lock(&vm->pause_lock);
	vcpu->parked = true;
	pthread_cond_broadcast(&vm->pause_cond);
	for (;;) {
		if (vcpu->call_pending) {
			int (*fn)(void *, int) = vcpu->call_fn;
			void *arg = vcpu->call_arg;
			pthread_mutex_unlock(&vm->pause_lock);
			int r = fn(arg, vcpu->fd);
			pthread_mutex_lock(&vm->pause_lock);
			vcpu->call_result = r;
			vcpu->call_pending = false;
			pthread_cond_broadcast(&vm->pause_cond);
			continue;
		}
		if (atomic_load(&vm->exit_status) >= 0)
			break;
		if (atomic_load(&vm->sleeping)) {
			if (!completed) {
				/* Not parked meanwhile: no wake may reset it. */
				completed = true;
				vcpu->parked = false;
				pthread_mutex_unlock(&vm->pause_lock);
				vcpu_complete_exit(vcpu);
				pthread_mutex_lock(&vm->pause_lock);
				vcpu->parked = true;
				pthread_cond_broadcast(&vm->pause_cond);
				continue;
			}
			if (vm->wake_pending && all_parked(vm)) {
				if (vm_sleep_wake_locked(vm, why, sizeof(why))) {
					pthread_mutex_unlock(&vm->pause_lock);
					log_error("%s", why);
					vm_request_exit(vm, VM_EXIT_ERROR, why);
					pthread_mutex_lock(&vm->pause_lock);
				}
				continue;
			}
		} else if (!atomic_load(&vcpu->want_stop) && !atomic_load(&vm->frozen)) {
			break;
		}
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	}
	vcpu->parked = false;
	pthread_mutex_unlock(&vm->pause_lock);
}

static void vcpu_thread_done(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	pthread_mutex_lock(&vm->pause_lock);
	vcpu->done = true;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

static void vcpu_debug_exit(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	if (!vm->debug_exit) {
		fail(vcpu, "debug exit without a debugger");
		return;
	}
	if (!vm->debug_exit(vm->debug_opaque, vcpu->index, vcpu->fd, &vcpu->run->debug.arch))
		return;
	/* Stop everyone; this vCPU parks at the top of its loop. */
	vm_hold_vcpus(vm);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		if (i != vcpu->index)
			vcpu_kick(&vm->vcpus[i]);
}

void vm_set_debug_handler(struct vm *vm, vm_debug_exit_fn fn, void *opaque)
{
	pthread_mutex_lock(&vm->pause_lock);
	vm->debug_exit = fn;
	vm->debug_opaque = opaque;
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_hold_vcpus(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nvcpus; i++)
		atomic_store(&vm->vcpus[i].want_stop, true);
}

/* CLOCK_REALTIME (pthread_cond_timedwait's clock) ms from now. */
static struct timespec realtime_after_ms(long ms)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Kick every vCPU until each has parked (or ended), up to timeout_ms. */
static int wait_all_idle(struct vm *vm, int timeout_ms)
{
	struct timespec deadline = realtime_after_ms(timeout_ms);
	int r = 0;
	pthread_mutex_lock(&vm->pause_lock);
	for (;;) {
		bool all = true;
		for (unsigned i = 0; i < vm->nvcpus; i++) {
			if (!vcpu_is_idle(&vm->vcpus[i])) {
				all = false;
				vcpu_kick(&vm->vcpus[i]);
			}
		}
		if (all)
			break;
		/* Kicks again every 10 ms: one can land just before a vCPU
		 * blocks in a device handler rather than in KVM_RUN. */
		struct timespec t = realtime_after_ms(10);
		if (t.tv_sec > deadline.tv_sec ||
		    (t.tv_sec == deadline.tv_sec && t.tv_nsec > deadline.tv_nsec))
			t = deadline;
		if (pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &t) == ETIMEDOUT &&
		    (t.tv_sec == deadline.tv_sec && t.tv_nsec == deadline.tv_nsec)) {
			r = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&vm->pause_lock);
	return r;
}

int vm_pause_vcpus(struct vm *vm, int timeout_ms)
{
	vm_hold_vcpus(vm);
	return wait_all_idle(vm, timeout_ms);
}

int vm_vcpu_call(struct vm *vm, unsigned index, int (*fn)(void *arg, int vcpu_fd), void *arg)
{
	if (index >= vm->nvcpus)
		return -EINVAL;
	struct vcpu *v = &vm->vcpus[index];
	pthread_mutex_lock(&vm->pause_lock);
	if (!v->started || v->done) {
		/* No thread uses the vCPU. */
		pthread_mutex_unlock(&vm->pause_lock);
		return fn(arg, v->fd);
	}
	if (!v->parked || v->call_pending) {
		pthread_mutex_unlock(&vm->pause_lock);
		return -EBUSY;
	}
	v->call_fn = fn;
	v->call_arg = arg;
	v->call_pending = true;
	pthread_cond_broadcast(&vm->pause_cond);
	while (v->call_pending)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	int r = v->call_result;
	pthread_mutex_unlock(&vm->pause_lock);
	return r;
}

void vm_resume_vcpus(struct vm *vm, const bool *run)
{
	pthread_mutex_lock(&vm->pause_lock);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		if (!run || run[i])
			atomic_store(&vm->vcpus[i].want_stop, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

/* ---- Freezing for the operator (khyvectl --suspend) ---- */

int vm_freeze(struct vm *vm, int timeout_ms)
{
	pthread_mutex_lock(&vm->pause_lock);
	bool was = atomic_exchange(&vm->frozen, true);
	pthread_mutex_unlock(&vm->pause_lock);
	if (was)
		return -EALREADY;
	int r = wait_all_idle(vm, timeout_ms);
	if (r)
		vm_thaw(vm);
	return r;
}

int vm_thaw(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	bool was = atomic_exchange(&vm->frozen, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	return was ? 0 : -EALREADY;
}

bool vm_frozen(struct vm *vm)
{
	return atomic_load(&vm->frozen);
}

static int get_state_fn(void *arg, int fd)
{
	struct vcpu_state *st = arg;
	if (ioctl(fd, KVM_GET_REGS, &st->regs) < 0 || ioctl(fd, KVM_GET_SREGS, &st->sregs) < 0 ||
	    ioctl(fd, KVM_GET_DEBUGREGS, &st->dregs) < 0)
		return -errno;
	return 0;
}

static int set_state_fn(void *arg, int fd)
{
	const struct vcpu_state *st = arg;
	if (ioctl(fd, KVM_SET_SREGS, &st->sregs) < 0 || ioctl(fd, KVM_SET_REGS, &st->regs) < 0 ||
	    ioctl(fd, KVM_SET_DEBUGREGS, &st->dregs) < 0)
		return -errno;
	return 0;
}

int vm_vcpu_get_state(struct vm *vm, unsigned index, struct vcpu_state *st)
{
	memset(st, 0, sizeof(*st));
	return vm_vcpu_call(vm, index, get_state_fn, st);
}

int vm_vcpu_set_state(struct vm *vm, unsigned index, const struct vcpu_state *st)
{
	return vm_vcpu_call(vm, index, set_state_fn, (void *)st);
}

int vm_vcpu_stats(struct vm *vm, unsigned index, vm_stat_fn fn, void *opaque)
{
	if (index >= vm->nvcpus)
		return -EINVAL;
	int fd = vm->vcpus[index].stats_fd;
	if (fd < 0)
		return -ENOTSUP;
	struct kvm_stats_header h;
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.num_desc > 4096 ||
	    h.name_size > 256 || h.name_size == 0)
		return -EIO;
	size_t stride = sizeof(struct kvm_stats_desc) + h.name_size;
	uint8_t *descs = malloc(stride * h.num_desc);
	if (!descs)
		return -ENOMEM;
	int r = 0;
	if (pread(fd, descs, stride * h.num_desc, h.desc_offset) != (ssize_t)(stride * h.num_desc)) {
		r = -EIO;
		goto out;
	}
	for (uint32_t i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + i * stride);
		d->name[h.name_size - 1] = '\0';
		unsigned n = d->size;
		if (n == 0 || n > 1024)
			continue;
		uint64_t vals[1024];
		if (pread(fd, vals, n * sizeof(uint64_t), (off_t)(h.data_offset + d->offset)) !=
		    (ssize_t)(n * sizeof(uint64_t)))
			continue;
		fn(opaque, d->name, vals, n);
	}
out:
	free(descs);
	return r;
}
