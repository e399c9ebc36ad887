/* kvm-run-floor N [out|in|cpuid]: the least a VMM can do per exit. A
 * real-mode guest loops on one instruction and this program does nothing
 * but call KVM_RUN again:
 *   out    `out dx, al` to an unclaimed port (an exit to user space; default)
 *   in     `in eax, dx`, as a PM timer read is (an exit to user space)
 *   cpuid  N CPUIDs, all served in the kernel, then one `out` to stop
 * Prints "user_us_per_exit total_us_per_exit": what the syscall boundary
 * alone costs on this host, so the bench can say how much of a VMM's time
 * per exit is its own, and (in minus cpuid) what returning to user space
 * costs any VMM. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	const char *mode = argc > 2 ? argv[2] : "out";
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		perror("kvm-run-floor: /dev/kvm");
		return 1;
	}
	unsigned char *mem = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	static const unsigned char out_loop[] = { 0xba, 0xa0, 0x05, /* mov dx, 0x5a0 */
						  0xee,             /* out dx, al */
						  0xeb, 0xfd };     /* jmp back to out */
	static const unsigned char in_loop[] = { 0xba, 0xa0, 0x05,  /* mov dx, 0x5a0 */
						 0x66, 0xed,        /* in eax, dx */
						 0xeb, 0xfc };      /* jmp back to in */
	unsigned char cpuid_loop[] = { 0x66, 0xbe, 0, 0, 0, 0, /* mov esi, n */
				       0x66, 0x31, 0xc0,       /* 1: xor eax, eax */
				       0x0f, 0xa2,             /* cpuid */
				       0x66, 0x4e,             /* dec esi */
				       0x75, 0xf7,             /* jnz 1b */
				       0xba, 0xa0, 0x05,       /* mov dx, 0x5a0 */
				       0xee,                   /* out dx, al */
				       0xeb, 0xfd };
	uint32_t n32 = (uint32_t)n;
	memcpy(cpuid_loop + 2, &n32, 4);
	bool cpuid = !strcmp(mode, "cpuid");
	if (cpuid)
		memcpy(mem + 0x1000, cpuid_loop, sizeof(cpuid_loop));
	else if (!strcmp(mode, "in"))
		memcpy(mem + 0x1000, in_loop, sizeof(in_loop));
	else
		memcpy(mem + 0x1000, out_loop, sizeof(out_loop));
	struct kvm_userspace_memory_region region = { 0, 0, 0, 1 << 20, (unsigned long)mem };
	ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region);
	ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	ioctl(vm, KVM_CREATE_IRQCHIP, 0);
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	struct kvm_sregs sregs;
	ioctl(vcpu, KVM_GET_SREGS, &sregs);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	ioctl(vcpu, KVM_SET_SREGS, &sregs);
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 2 };
	ioctl(vcpu, KVM_SET_REGS, &regs);

	struct rusage before, after;
	struct timespec a, b;
	getrusage(RUSAGE_SELF, &before);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < (cpuid ? 1 : n); i++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0 || run->exit_reason != KVM_EXIT_IO) {
			fprintf(stderr, "kvm-run-floor: unexpected exit %u\n", run->exit_reason);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	getrusage(RUSAGE_SELF, &after);
	double user = (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
		      (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6;
	double total = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("%.4f %.3f\n", user / (double)n * 1e6, total / (double)n * 1e6);
	return 0;
}
