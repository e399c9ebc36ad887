#include "debug/kvm_probe.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/kvm.h"

#define MEM_SIZE 0x10000
#define PML4 0x1000
#define GDT 0x500
#define IDT 0x600
#define CODE 0x4000
#define HANDLER 0x5000
#define STACK 0x8000
#define PORT_AFTER_INT3 0x10
#define PORT_IN_HANDLER 0x11

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
	/* IDT entry 3: interrupt gate to HANDLER. */
	uint8_t *gate = mem + IDT + 3 * 16;
	gate[0] = HANDLER & 0xff;
	gate[1] = (HANDLER >> 8) & 0xff;
	gate[2] = 0x08;
	gate[5] = 0x8e;
	static const uint8_t code[] = { 0xcc, 0xe6, PORT_AFTER_INT3, 0xf4 }; /* int3; out; hlt */
	static const uint8_t handler[] = { 0xe6, PORT_IN_HANDLER, 0xf4 };     /* out; hlt */
	memcpy(mem + CODE, code, sizeof(code));
	memcpy(mem + HANDLER, handler, sizeof(handler));
}

static void segment(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	*s = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
				   .present = 1, .s = 1, .l = code, .db = !code, .g = 1 };
}

static int run_probe(int vm, int vcpu, struct kvm_run *run)
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
	sregs.cr4 = 0x20; /* PAE */
	sregs.efer = 0x500; /* LMA LME */
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	struct kvm_regs regs = { .rip = CODE, .rsp = STACK, .rflags = 2 };
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return -errno;
	struct kvm_guest_debug dbg = { .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP };
	if (ioctl(vcpu, KVM_SET_GUEST_DEBUG, &dbg) < 0)
		return -errno;
	(void)vm;
	for (int i = 0; i < 8; i++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (run->exit_reason == KVM_EXIT_DEBUG)
			return run->debug.arch.exception == 3;
		if (run->exit_reason == KVM_EXIT_IO)
			return 0; /* the int3 went to the guest (or past it) */
		if (run->exit_reason != KVM_EXIT_INTR)
			return 0;
	}
	return 0;
}

int kvm_probe_int3_intercept(void)
{
	char err[256];
	int kvm = kvm_open(err, sizeof(err));
	if (kvm < 0)
		return kvm;
	int vm = -1, vcpu = -1, r;
	uint8_t *mem = MAP_FAILED;
	struct kvm_run *run = MAP_FAILED;
	long run_size = 0;
	struct kvm_cpuid2 *cpuid = NULL;

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		r = -errno;
		goto out;
	}
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	build_guest(mem);
	struct kvm_userspace_memory_region slot = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0 ||
	    ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) {
		r = -errno;
		goto out;
	}
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || run_size < (long)sizeof(struct kvm_run)) {
		r = -errno;
		goto out;
	}
	/* Long mode needs CPUID to say so. */
	cpuid = kvm_supported_cpuid(kvm);
	if (!cpuid || ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) {
		r = -errno;
		goto out;
	}
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	r = run_probe(vm, vcpu, run);
out:
	free(cpuid);
	if (run != MAP_FAILED)
		munmap(run, (size_t)run_size);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	if (mem != MAP_FAILED)
		munmap(mem, MEM_SIZE);
	close(kvm);
	return r < 0 ? r : r != 0;
}
