/* kvm-caps: what this host's KVM offers that matters for exit and
 * interrupt speed. Prints one "NAME value" line per KVM_CHECK_EXTENSION of
 * interest, asked of /dev/kvm and of a fresh VM (some answers are per VM,
 * such as HALT_POLL), then the kvm and kvm_amd/kvm_intel module parameters
 * that shape the figures (halt polling, AVIC/APICv, nested paging).
 * bench/run prints it once per run, so the figures carry their context. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define CAP(x) { KVM_CAP_##x, #x }

static const struct {
	long cap;
	const char *name;
} caps[] = {
	CAP(IRQCHIP), CAP(SPLIT_IRQCHIP), CAP(IMMEDIATE_EXIT), CAP(HALT_POLL),
	CAP(X86_DISABLE_EXITS), CAP(X2APIC_API), CAP(COALESCED_MMIO), CAP(COALESCED_PIO),
	CAP(IOEVENTFD), CAP(IOEVENTFD_ANY_LENGTH), CAP(IRQFD), CAP(SIGNAL_MSI),
	CAP(TSC_DEADLINE_TIMER), CAP(GET_TSC_KHZ), CAP(TSC_CONTROL), CAP(ADJUST_CLOCK),
	CAP(SYNC_REGS), CAP(NR_VCPUS), CAP(MAX_VCPUS), CAP(MAX_VCPU_ID),
	CAP(SET_GUEST_DEBUG), CAP(SET_GUEST_DEBUG2), CAP(BINARY_STATS_FD), CAP(X86_USER_SPACE_MSR),
	CAP(X86_MSR_FILTER), CAP(NESTED_STATE), CAP(PMU_CAPABILITY), CAP(X86_BUS_LOCK_EXIT),
	CAP(X86_NOTIFY_VMEXIT), CAP(DIRTY_LOG_RING), CAP(MANUAL_DIRTY_LOG_PROTECT2),
	CAP(XSAVE), CAP(XCRS), CAP(EXIT_HYPERCALL), CAP(VM_DISABLE_NX_HUGE_PAGES),
	CAP(HYPERV_SYNIC), CAP(PV_MMU),
};

static void print_params(const char *module)
{
	char path[256];
	snprintf(path, sizeof(path), "/sys/module/%s/parameters", module);
	static const char *const wanted[] = { "halt_poll_ns", "halt_poll_ns_grow",
					      "halt_poll_ns_shrink", "avic", "enable_apicv",
					      "npt", "ept", "nrips", "vgif", "vls",
					      "pause_filter_count", "ple_gap", "nested",
					      "lapic_timer_advance_ns", "enable_pmu" };
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		char p[512], v[64] = "";
		snprintf(p, sizeof(p), "%s/%s", path, wanted[i]);
		FILE *f = fopen(p, "r");
		if (!f)
			continue;
		if (fgets(v, sizeof(v), f))
			v[strcspn(v, "\n")] = '\0';
		fclose(f);
		printf("%s.%s %s\n", module, wanted[i], v);
	}
}

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		perror("kvm-caps: /dev/kvm");
		return 1;
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		int sys = ioctl(kvm, KVM_CHECK_EXTENSION, caps[i].cap);
		int per_vm = vm >= 0 ? ioctl(vm, KVM_CHECK_EXTENSION, caps[i].cap) : -1;
		if (per_vm >= 0 && per_vm != sys)
			printf("%s %d (vm %d)\n", caps[i].name, sys, per_vm);
		else
			printf("%s %d\n", caps[i].name, sys);
	}
	int d = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_X86_DISABLE_EXITS);
	if (d > 0)
		printf("X86_DISABLE_EXITS offers:%s%s%s%s\n",
		       d & KVM_X86_DISABLE_EXITS_MWAIT ? " mwait" : "",
		       d & KVM_X86_DISABLE_EXITS_HLT ? " hlt" : "",
		       d & KVM_X86_DISABLE_EXITS_PAUSE ? " pause" : "",
		       d & KVM_X86_DISABLE_EXITS_CSTATE ? " cstate" : "");
	print_params("kvm");
	print_params("kvm_amd");
	print_params("kvm_intel");
	if (vm >= 0)
		close(vm);
	close(kvm);
	return 0;
}
