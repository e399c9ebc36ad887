#include "vmm/vm.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/sysinfo.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"
#include "util/thread_role.h"
#include "vmm/irq_routing.h"
#include "vmm/kvm.h"
#include "vmm/vm_internal.h"

/* KVM on Intel needs three pages of its own in guest-physical space for
 * real-mode emulation; put them just below the BIOS ROM area, in the MMIO
 * hole where nothing else lives. */
#define KVM_TSS_GPA 0xFFFBD000ULL
#define KVM_IDENTITY_MAP_GPA 0xFFFBC000ULL

/* How often the event loop looks for vCPUs halted for good. */
#define HALT_POLL_NS 100000000L

static const int handled_signals[] = { SIGTERM, SIGINT, SIGHUP };

void vm_block_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(handled_signals) / sizeof(handled_signals[0]); i++)
		sigaddset(&set, handled_signals[i]);
	sigaddset(&set, SIGUSR1); /* the vCPU kick; vCPU threads unblock it */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void platform_set_irq_hook(struct platform *p, unsigned gsi, bool level)
{
	struct vm *vm = p->vmm;
	struct kvm_irq_level irq = { .irq = gsi, .level = level };
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_guest("raising GSI %u failed: %s", gsi, strerror(errno));
}

static void platform_request_exit_hook(struct platform *p, int status, const char *reason)
{
	vm_request_exit(p->vmm, status, reason);
}

void vm_request_exit(struct vm *vm, int status, const char *reason)
{
	int expected = -1;
	if (status < 0)
		status = VM_EXIT_ERROR;
	if (!atomic_compare_exchange_strong(&vm->exit_status, &expected, status))
		return;
	snprintf(vm->exit_reason, sizeof(vm->exit_reason), "%s", reason ? reason : "");
	/* vCPUs parked for the debugger leave. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	uint64_t one = 1;
	ssize_t w = write(vm->exit_eventfd, &one, sizeof(one));
	(void)w;
}

const char *vm_exit_reason(const struct vm *vm) { return vm->exit_reason; }

int vm_reserve_mmio(struct vm *vm, uint64_t base, uint64_t size)
{
	return guest_mem_reserve(&vm->mem, base, size);
}
struct platform *vm_platform(struct vm *vm) { return &vm->platform; }
const struct guest_mem *vm_mem(struct vm *vm) { return &vm->mem; }
struct evloop *vm_loop(struct vm *vm) { return vm->loop; }
unsigned vm_vcpu_count(const struct vm *vm) { return vm->nvcpus; }
int vm_kvm_fd(const struct vm *vm) { return vm->vm_fd; }
int vm_vcpu_kvm_fd(const struct vm *vm, unsigned index) { return vm->vcpus[index].fd; }
uint32_t vm_apic_id(const struct vm *vm, unsigned index) { return vm->vcpus[index].apic_id; }

void vm_set_signal_handler(struct vm *vm, vm_signal_handler handler, void *opaque)
{
	vm->signal_handler = handler;
	vm->signal_opaque = opaque;
}

static unsigned guest_phys_bits(const struct kvm_cpuid2 *cpuid)
{
	for (uint32_t i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function == 0x80000008)
			return cpuid->entries[i].eax & 0xff;
	return 36;
}

static int check_mem_size(uint64_t size, unsigned phys_bits, char *err, size_t errlen)
{
	if (size < GUEST_MEM_MIN) {
		snprintf(err, errlen, "%llu bytes is too little memory (at least %llu MiB)",
			 (unsigned long long)size, GUEST_MEM_MIN >> 20);
		return -EINVAL;
	}
	if (size & 0xfff) {
		snprintf(err, errlen, "the memory size must be a multiple of 4 KiB");
		return -EINVAL;
	}
	uint64_t high = size > GUEST_LOWMEM_LIMIT ? size - GUEST_LOWMEM_LIMIT : 0;
	if (phys_bits < 64 && GUEST_HIGHMEM_BASE + high > (1ULL << phys_bits)) {
		snprintf(err, errlen, "%llu MiB of memory does not fit in the guest's %u-bit physical address space",
			 (unsigned long long)(size >> 20), phys_bits);
		return -EINVAL;
	}
	/* Guest RAM is reserved lazily; asking for more than the host has in
	 * RAM and swap would end in the guest being killed mid-write. */
	struct sysinfo si;
	if (sysinfo(&si) == 0) {
		uint64_t host = ((uint64_t)si.totalram + si.totalswap) * si.mem_unit;
		if (size > host) {
			snprintf(err, errlen, "%llu MiB of memory is more than the host's (%llu MiB)",
				 (unsigned long long)(size >> 20), (unsigned long long)(host >> 20));
			return -ENOMEM;
		}
	}
	return 0;
}

/* The host CPU's physical address width, as KVM reports it for guests
 * when it uses the host's (it may report less: vm_create checks again). */
static unsigned host_phys_bits(void)
{
	unsigned a, b, c, d;
	if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000008 &&
	    __get_cpuid(0x80000008, &a, &b, &c, &d))
		return a & 0xff;
	return 36;
}

int vm_check_mem_size(uint64_t size, char *err, size_t errlen)
{
	return check_mem_size(size, host_phys_bits(), err, errlen);
}

static int vm_ioctl_err(int r, const char *what, char *err, size_t errlen)
{
	if (r >= 0)
		return 0;
	int e = errno;
	snprintf(err, errlen, "%s: %s", what, strerror(e));
	return -e;
}

/* The vCPUs' descriptors made contiguous, in index order, so that the
 * sandbox's filters check "a vCPU of this VM" as one range
 * (sandbox/bpf_fds.h). Each is made beside its statistics descriptor
 * (vcpu.c), so they are moved: duplicated into the first free run of
 * nvcpus numbers above the highest, the originals then closed (the
 * kvm_run mappings keep no number). */
static int pack_vcpu_fds(struct vm *vm)
{
	unsigned n = vm->nvcpus;
	int top = 0;
	bool packed = true;
	for (unsigned i = 0; i < n; i++) {
		packed = packed && vm->vcpus[i].fd == vm->vcpus[0].fd + (int)i;
		if (vm->vcpus[i].fd > top)
			top = vm->vcpus[i].fd;
	}
	if (packed)
		return 0;
	int *fds = calloc(n, sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	int from = top + 1;
	unsigned made = 0;
	while (made < n) {
		/* The lowest free number at or above the one wanted: another
		 * descriptor holds the wanted one when it is not. */
		int want = made ? fds[0] + (int)made : from;
		int fd = fcntl(vm->vcpus[made].fd, F_DUPFD_CLOEXEC, want);
		if (fd < 0) {
			int e = errno;
			for (unsigned i = 0; i < made; i++)
				close(fds[i]);
			free(fds);
			return -e;
		}
		if (fd == want || !made) {
			fds[made++] = fd;
			continue;
		}
		for (unsigned i = 0; i < made; i++)
			close(fds[i]);
		close(fd);
		from = fd;
		made = 0;
	}
	for (unsigned i = 0; i < n; i++) {
		close(vm->vcpus[i].fd);
		vm->vcpus[i].fd = fds[i];
	}
	free(fds);
	return 0;
}

int vm_create(const struct vm_options *opt, struct vm **out, char *err, size_t errlen)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	vm->opt = *opt;
	vm->vm_fd = vm->exit_eventfd = vm->signal_fd = vm->halt_timer_fd = vm->post_eventfd = -1;
	atomic_init(&vm->exit_status, -1);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	struct kvm_cpuid2 *cpuid = NULL;
	int r;

	vm->kvm_fd = kvm_open(err, errlen);
	if (vm->kvm_fd < 0) {
		r = vm->kvm_fd;
		goto fail;
	}
	cpuid = kvm_supported_cpuid(vm->kvm_fd);
	if (!cpuid) {
		r = vm_ioctl_err(-1, "KVM_GET_SUPPORTED_CPUID", err, errlen);
		goto fail;
	}
	if ((r = check_mem_size(opt->mem_size, guest_phys_bits(cpuid), err, errlen)))
		goto fail;
	vm->kvm_max_vcpus = kvm_capability(vm->kvm_fd, KVM_CAP_MAX_VCPUS);
	if (!vm->kvm_max_vcpus)
		vm->kvm_max_vcpus = kvm_capability(vm->kvm_fd, KVM_CAP_NR_VCPUS);
	if (!vm->kvm_max_vcpus)
		vm->kvm_max_vcpus = 4;
	int max_id = kvm_capability(vm->kvm_fd, KVM_CAP_MAX_VCPU_ID);
	if ((int)opt->topo.cpus > vm->kvm_max_vcpus ||
	    (max_id && (int)topology_apic_id(&opt->topo, opt->topo.cpus - 1) >= max_id)) {
		snprintf(err, errlen, "%u vCPUs is more than this host's KVM allows (%d)",
			 opt->topo.cpus, vm->kvm_max_vcpus);
		r = -EINVAL;
		goto fail;
	}

	do
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->vm_fd < 0 && errno == EINTR);
	if ((r = vm_ioctl_err(vm->vm_fd, "KVM_CREATE_VM", err, errlen)))
		goto fail;

	if ((r = opt->mem_shared ? guest_mem_create_shared(&vm->mem, opt->mem_size,
							   opt->mem_from_fd ? opt->mem_fd : -1)
		 : opt->mem_from_fd ? guest_mem_create_from_fd(&vm->mem, opt->mem_size, opt->mem_fd, false)
				    : guest_mem_create(&vm->mem, opt->mem_size))) {
		snprintf(err, errlen, "cannot reserve %llu MiB of guest memory: %s",
			 (unsigned long long)(opt->mem_size >> 20), strerror(-r));
		goto fail;
	}
	struct guest_mem_region regions[2];
	int nregions = guest_mem_regions(&vm->mem, regions);
	for (int i = 0; i < nregions; i++) {
		struct kvm_userspace_memory_region slot = {
			.slot = (uint32_t)i, .guest_phys_addr = regions[i].gpa,
			.memory_size = regions[i].size, .userspace_addr = (uintptr_t)regions[i].host,
		};
		if ((r = vm_ioctl_err(ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot),
				      "KVM_SET_USER_MEMORY_REGION", err, errlen)))
			goto fail;
	}
	if ((r = vm_ioctl_err(ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA),
			      "KVM_SET_TSS_ADDR", err, errlen)))
		goto fail;
	if (kvm_capability(vm->kvm_fd, KVM_CAP_SET_IDENTITY_MAP_ADDR)) {
		uint64_t addr = KVM_IDENTITY_MAP_GPA;
		if ((r = vm_ioctl_err(ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &addr),
				      "KVM_SET_IDENTITY_MAP_ADDR", err, errlen)))
			goto fail;
	}
	if ((r = vm_ioctl_err(ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0), "KVM_CREATE_IRQCHIP", err,
			      errlen)))
		goto fail;
	struct kvm_pit_config pit = { .flags = 0 };
	if ((r = vm_ioctl_err(ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit), "KVM_CREATE_PIT2", err, errlen)))
		goto fail;
	/* Their power-on state, which a wake from S3 returns them to. */
	if ((r = vm_sleep_capture(vm, err, errlen)))
		goto fail;

	/* Port 0x80 (POST codes; Linux writes it for I/O delays) is absorbed
	 * in the kernel: an ioeventfd nobody reads, so writes never exit. */
	vm->post_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->post_eventfd >= 0) {
		struct kvm_ioeventfd post = {
			.addr = 0x80,
			.len = kvm_capability(vm->kvm_fd, KVM_CAP_IOEVENTFD_ANY_LENGTH) ? 0 : 1,
			.fd = vm->post_eventfd,
			.flags = KVM_IOEVENTFD_FLAG_PIO,
		};
		if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &post) < 0)
			log_debug("port 0x80 ioeventfd: %s", strerror(errno));
	}

	vm->nvcpus = opt->topo.cpus;
	vm->vcpus = calloc(vm->nvcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vm->vcpus[i].fd = -1;
	for (unsigned i = 0; i < vm->nvcpus; i++)
		if ((r = vcpu_init(vm, &vm->vcpus[i], i, cpuid, err, errlen)))
			goto fail;
	if ((r = pack_vcpu_fds(vm))) {
		snprintf(err, errlen, "placing the vCPUs' descriptors: %s", strerror(-r));
		goto fail;
	}
	free(cpuid);
	cpuid = NULL;

	vm->loop = evloop_create();
	vm->exit_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!vm->loop || vm->exit_eventfd < 0) {
		r = vm_ioctl_err(-1, "creating the event loop", err, errlen);
		goto fail;
	}

	vm->platform = (struct platform){
		.pio = io_bus_create("pio"),
		.mmio = io_bus_create("mmio"),
		.mem = &vm->mem,
		.loop = vm->loop,
		.vm_name = opt->name,
		.ncpus = vm->nvcpus,
		.max_cpus = vm->nvcpus,
		.set_irq = platform_set_irq_hook,
		.request_exit = platform_request_exit_hook,
		.vmm = vm,
	};
	if (!vm->platform.pio || !vm->platform.mmio || irq_routing_attach(vm)) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	*out = vm;
	return 0;
fail:
	free(cpuid);
	vm_destroy(vm);
	return r;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	for (unsigned i = 0; vm->vcpus && i < vm->nvcpus; i++)
		vcpu_fini(&vm->vcpus[i]);
	free(vm->vcpus);
	io_bus_destroy(vm->platform.pio);
	io_bus_destroy(vm->platform.mmio);
	irq_routing_detach(vm);
	evloop_destroy(vm->loop);
	int *fds[] = { &vm->exit_eventfd, &vm->signal_fd, &vm->halt_timer_fd, &vm->post_eventfd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	guest_mem_destroy(&vm->mem);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	free(vm);
}

int vm_set_boot_entry(struct vm *vm, const struct boot_entry *entry, char *err, size_t errlen)
{
	int r = vcpu_set_boot_entry(&vm->vcpus[0], entry);
	if (r)
		snprintf(err, errlen, "setting the boot vCPU's registers: %s", strerror(-r));
	return r;
}

static void on_exit_event(void *opaque, uint32_t events)
{
	(void)events;
	struct vm *vm = opaque;
	evloop_stop(vm->loop);
}

static void on_signal(void *opaque, uint32_t events)
{
	(void)events;
	struct vm *vm = opaque;
	struct signalfd_siginfo si;
	while (read(vm->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (vm->signal_handler) {
			vm->signal_handler(vm->signal_opaque, (int)si.ssi_signo);
		} else {
			char why[64];
			snprintf(why, sizeof(why), "%s received", strsignal((int)si.ssi_signo));
			vm_request_exit(vm, VM_EXIT_POWEROFF, why);
		}
	}
}

/* A guest whose every vCPU sits in HLT with interrupts off can never run
 * again (bhyve's "halt" exit). KVM handles HLT in the kernel, so look at
 * its statistics: only when every vCPU has been blocked without a wakeup
 * since the last look are the vCPUs kicked to report their state. */
static void on_halt_timer(void *opaque, uint32_t events)
{
	(void)events;
	struct vm *vm = opaque;
	uint64_t ticks;
	ssize_t n = read(vm->halt_timer_fd, &ticks, sizeof(ticks));
	(void)n;
	bool all_stuck = true;
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		uint64_t wakeups = 0;
		bool blocked = vcpu_blocked_stat(v, &wakeups);
		if (v->stats_fd >= 0 && v->stat_blocking_off &&
		    (!blocked || wakeups != v->last_halt_wakeup))
			all_stuck = false;
		v->last_halt_wakeup = wakeups;
	}
	if (!all_stuck)
		return;
	atomic_store(&vm->halt_answers, 0);
	atomic_store(&vm->halt_yes, 0);
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		atomic_store(&vm->vcpus[i].check_halt, true);
		vcpu_kick(&vm->vcpus[i]);
	}
}

static int compare_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

struct teardown_args {
	int gate;
	int ready;
	int nkeep;
	int keep[TOPOLOGY_MAX_CPUS + 4];
};

/* Runs in a process that shares khyve's address space but has its own
 * descriptor table: it keeps only the VM's descriptors, and waits for
 * khyve to be gone. Only async-signal-safe calls: khyve has threads.
 * _exit ends this helper process only, never khyve. */
static int teardown_main(void *opaque)
{
	const struct teardown_args *t = opaque;
	int next = 0;
	for (int i = 0; i < t->nkeep; i++) {
		if (t->keep[i] > next)
			close_range((unsigned)next, (unsigned)t->keep[i] - 1, 0);
		next = t->keep[i] + 1;
	}
	close_range((unsigned)next, ~0u, 0);
	/* Now only the VM's descriptors are held here: khyve may go (its
	 * disks' locks, taps and sockets are released with it). */
	char byte = 1;
	while (write(t->ready, &byte, 1) < 0 && errno == EINTR)
		;
	close(t->ready);
	while (read(t->gate, &byte, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

void vm_detach(struct vm *vm)
{
	/* The teardown process shares the address space (CLONE_VM) so that
	 * neither the guest memory nor the VM dies with this process: both
	 * go when it exits, after whoever waits for khyve has been told. If
	 * it cannot be started, the caller's exit tears the VM down itself. */
	const size_t stack_size = 64 * 1024;
	uint8_t *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return;
	int gate[2], ready[2];
	if (pipe2(gate, O_CLOEXEC) < 0) {
		munmap(stack, stack_size);
		return;
	}
	if (pipe2(ready, O_CLOEXEC) < 0) {
		close(gate[0]);
		close(gate[1]);
		munmap(stack, stack_size);
		return;
	}
	struct teardown_args *t = (struct teardown_args *)stack;
	t->nkeep = 0;
	t->gate = gate[0];
	t->ready = ready[1];
	t->keep[t->nkeep++] = gate[0];
	t->keep[t->nkeep++] = ready[1];
	t->keep[t->nkeep++] = vm->vm_fd;
	for (unsigned i = 0; i < vm->nvcpus; i++)
		if (vm->vcpus[i].fd >= 0)
			t->keep[t->nkeep++] = vm->vcpus[i].fd;
	qsort(t->keep, (size_t)t->nkeep, sizeof(int), compare_int);
	if (clone(teardown_main, stack + stack_size, CLONE_VM, t) < 0) {
		close(gate[0]);
		close(gate[1]);
		close(ready[0]);
		close(ready[1]);
		munmap(stack, stack_size);
		return;
	}
	close(gate[0]);
	close(ready[1]);
	/* Until the helper has dropped its copies of khyve's other
	 * descriptors, a disk image's lock or a tap would outlive khyve and
	 * refuse the VM's next start. A byte, or EOF if the helper died. */
	char byte;
	while (read(ready[0], &byte, 1) < 0 && errno == EINTR)
		;
	close(ready[0]);
	/* gate[1] closes when this process is gone, releasing the child;
	 * the stack is the child's until then. */
}

int vm_run(struct vm *vm)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(handled_signals) / sizeof(handled_signals[0]); i++)
		sigaddset(&set, handled_signals[i]);
	vm->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	vm->halt_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (vm->signal_fd < 0 || vm->halt_timer_fd < 0 ||
	    !evloop_add(vm->loop, vm->exit_eventfd, EPOLLIN, on_exit_event, vm) ||
	    !evloop_add(vm->loop, vm->signal_fd, EPOLLIN, on_signal, vm) ||
	    !evloop_add(vm->loop, vm->halt_timer_fd, EPOLLIN, on_halt_timer, vm)) {
		log_error("setting up the event loop: %s", strerror(errno));
		return VM_EXIT_ERROR;
	}
	struct itimerspec its = { .it_interval = { 0, HALT_POLL_NS }, .it_value = { 0, HALT_POLL_NS } };
	timerfd_settime(vm->halt_timer_fd, 0, &its, NULL);

	vcpu_install_kick_handler();
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		int r = vcpu_start(&vm->vcpus[i]);
		if (r) {
			log_error("starting vCPU %u: %s", i, strerror(-r));
			vm_request_exit(vm, VM_EXIT_ERROR, "cannot start a vCPU thread");
			break;
		}
	}
	/* The vCPU threads are made: from here on this thread is the loop's. */
	thread_role_enter(THREAD_ROLE_EVLOOP);
	int r = evloop_run(vm->loop);
	if (r)
		vm_request_exit(vm, VM_EXIT_ERROR, "event loop failed");
	return atomic_load(&vm->exit_status);
}
