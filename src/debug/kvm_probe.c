#include "debug/kvm_probe.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/log.h"
#include "vmm/kvm.h"

#define MEM_SIZE 0x10000
#define PML4 0x1000
#define GDT 0x500
#define IDT 0x600
#define HANDLER 0x5000
#define STACK 0x8000
#define DATA 0x6000
#define PORT_DONE 0x10
#define PORT_IN_HANDLER 0x11

/* One code block per probe, 0x100 apart from 0x4000. */
static const uint8_t code_int3[] = { 0xcc, 0xe6, PORT_DONE, 0xf4 };   /* int3; out; hlt */
static const uint8_t code_break[] = { 0x90, 0x90, 0xe6, PORT_DONE, 0xf4 }; /* DR0 at +1 */
static const uint8_t code_watch[] = {
	0x90, 0xa2, DATA & 0xff, DATA >> 8, 0, 0, 0, 0, 0, 0, /* movabs %al, DATA */
	0x90, 0xe6, PORT_DONE, 0xf4,
};

static void put64(uint8_t *mem, uint64_t at, uint64_t v)
{
	memcpy(mem + at, &v, 8);
}

static void build_guest(uint8_t *mem)
{
	/* Identity map of the first 2 MiB. */
	put64(mem, PML4, 0x2000 | 3);
	put64(mem, 0x2000, 0x3000 | 3);
	put64(mem, 0x3000, 0x83);
	put64(mem, GDT + 8, 0x00af9a000000ffffull);  /* 0x08: 64-bit code */
	put64(mem, GDT + 16, 0x00cf92000000ffffull); /* 0x10: data */
	/* IDT: #DB and #BP go to HANDLER. */
	for (int v = 1; v <= 3; v += 2) {
		uint8_t *gate = mem + IDT + v * 16;
		gate[0] = HANDLER & 0xff;
		gate[1] = (HANDLER >> 8) & 0xff;
		gate[2] = 0x08;
		gate[5] = 0x8e;
	}
	static const uint8_t handler[] = { 0xe6, PORT_IN_HANDLER, 0xf4 }; /* out; hlt */
	memcpy(mem + 0x4000, code_int3, sizeof(code_int3));
	memcpy(mem + 0x4100, code_break, sizeof(code_break));
	memcpy(mem + 0x4200, code_watch, sizeof(code_watch));
	memcpy(mem + HANDLER, handler, sizeof(handler));
}

static void segment(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	*s = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
				   .present = 1, .s = 1, .l = code, .db = !code, .g = 1 };
}

/* Run one vCPU from rip with dbg; 1 if KVM reported the debug event. */
static int run_one(int vcpu, struct kvm_run *run, uint64_t rip, struct kvm_guest_debug *dbg,
		   uint32_t exception)
{
	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	segment(&sregs.cs, 0x08, 0xb, 1);
	segment(&sregs.ds, 0x10, 0x3, 0);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.tr = (struct kvm_segment){ .selector = 0x18, .limit = 0x67, .type = 0xb, .present = 1 };
	sregs.gdt.base = GDT;
	sregs.gdt.limit = 0x1f;
	sregs.idt.base = IDT;
	sregs.idt.limit = 0xfff;
	sregs.cr0 = 0x80000031; /* PG NE ET PE */
	sregs.cr3 = PML4;
	sregs.cr4 = 0x20;   /* PAE */
	sregs.efer = 0x500; /* LMA LME */
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	struct kvm_regs regs = { .rip = rip, .rsp = STACK, .rflags = 2 };
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0 || ioctl(vcpu, KVM_SET_GUEST_DEBUG, dbg) < 0)
		return -errno;
	for (int i = 0; i < 8; i++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (run->exit_reason == KVM_EXIT_INTR)
			continue;
		/* Anything else (the guest's handler, the end of the code, an
		 * emulation failure) means no. */
		return run->exit_reason == KVM_EXIT_DEBUG && run->debug.arch.exception == exception;
	}
	return 0;
}

/* A fresh vCPU (id) per probe: a failed one cannot spoil the next. */
static int probe(int kvm, int vm, unsigned id, const struct kvm_cpuid2 *cpuid, uint64_t rip,
		 struct kvm_guest_debug *dbg, uint32_t exception)
{
	long run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu < 0 || run_size < (long)sizeof(struct kvm_run)) {
		int e = -errno;
		if (vcpu >= 0)
			close(vcpu);
		return e;
	}
	int r = -EIO;
	struct kvm_run *run = MAP_FAILED;
	if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) == 0)
		run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run != MAP_FAILED) {
		r = run_one(vcpu, run, rip, dbg, exception);
		munmap(run, (size_t)run_size);
	}
	close(vcpu);
	return r;
}

unsigned kvm_probe_debug(void)
{
	char err[256];
	int kvm = kvm_open(err, sizeof(err));
	if (kvm < 0)
		return 0;
	unsigned caps = 0;
	int vm = -1, r = 0;
	uint8_t *mem = MAP_FAILED;
	/* Long mode needs CPUID to say so. */
	struct kvm_cpuid2 *cpuid = kvm_supported_cpuid(kvm);

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm < 0 || mem == MAP_FAILED || !cpuid)
		goto out;
	build_guest(mem);
	struct kvm_userspace_memory_region slot = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0 ||
	    ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0)
		goto out;

	struct kvm_guest_debug dbg = { .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP };
	if ((r = probe(kvm, vm, 0, cpuid, 0x4000, &dbg, 3)) > 0)
		caps |= KVM_PROBE_INT3;
	dbg = (struct kvm_guest_debug){ .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP };
	dbg.arch.debugreg[0] = 0x4101;
	dbg.arch.debugreg[7] = 0x2; /* G0, execute */
	if ((r = probe(kvm, vm, 1, cpuid, 0x4100, &dbg, 1)) > 0)
		caps |= KVM_PROBE_HW_BREAK;
	dbg.arch.debugreg[0] = DATA;
	dbg.arch.debugreg[7] = 0x2 | (1u << 16); /* G0, write, 1 byte */
	if ((r = probe(kvm, vm, 2, cpuid, 0x4200, &dbg, 1)) > 0)
		caps |= KVM_PROBE_HW_WATCH;
out:
	if (r < 0)
		log_debug("gdb: KVM debug probe: %s", strerror(-r));
	free(cpuid);
	if (vm >= 0)
		close(vm);
	if (mem != MAP_FAILED)
		munmap(mem, MEM_SIZE);
	close(kvm);
	return caps;
}
