/* src/sandbox: the BPF programs made at build time (filters.c) with a VM's
 * descriptors put in at run time (bpf_fds.c). Each program is rewritten
 * as khyve does it, then run three ways: through a small interpreter here
 * (the verdicts that matter, case by case; and against the program
 * libseccomp makes from the same lists with those descriptors written in,
 * as khyve made them at start before, over many calls), and through the
 * kernel in a child process (a vCPU's ioctl on a vCPU descriptor passes,
 * the same on the descriptor after the last vCPU's traps). */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <linux/vhost.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "sandbox/bpf_fds.h"
#include "sandbox/compile.h"
#include "sandbox/filters.h"
#include "unit.h"

#define VM_FD 100
#define VCPU_FIRST 200
#define NVCPU 3
static const struct sandbox_fds fds = { .vm = VM_FD, .vcpu_first = VCPU_FIRST, .nvcpu = NVCPU };

/* A copy of the role's program with fds in; NULL (and a failure) if the
 * sites are not the generator's. */
static struct sock_filter *patched(enum thread_role role, const struct sandbox_fds *f)
{
	const struct sandbox_filter *sf = &sandbox_filters[role];
	struct sock_filter *p = malloc(sf->len * sizeof(*p));
	memcpy(p, sf->prog, sf->len * sizeof(*p));
	int sites = sandbox_bpf_patch(p, sf->len, f);
	CHECK_EQ(sites, sf->sites);
	if (sites != sf->sites) {
		free(p);
		return NULL;
	}
	return p;
}

/* Classic BPF as seccomp runs it, for what libseccomp emits and the
 * rewrite adds; an instruction it does not know fails the test. */
static uint32_t run(const struct sock_filter *p, size_t len, const struct seccomp_data *d)
{
	uint32_t a = 0;
	for (size_t pc = 0; pc < len; pc++) {
		const struct sock_filter *f = &p[pc];
		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			memcpy(&a, (const char *)d + f->k, 4);
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= f->k;
			break;
		case BPF_ALU | BPF_SUB | BPF_K:
			a -= f->k;
			break;
		case BPF_JMP | BPF_JA:
			pc += f->k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == f->k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= f->k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGT | BPF_K:
			pc += a > f->k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += (a & f->k) ? f->jt : f->jf;
			break;
		case BPF_RET | BPF_K:
			return f->k;
		default:
			fprintf(stderr, "unknown BPF instruction 0x%04x at %zu\n", f->code, pc);
			unit_failures++;
			return 0;
		}
	}
	unit_failures++;
	return 0; /* fell off the end */
}

static uint32_t call(const struct sock_filter *p, size_t len, int nr, uint64_t a0, uint64_t a1,
		     uint64_t a2)
{
	struct seccomp_data d = { .nr = nr, .arch = AUDIT_ARCH_X86_64, .args = { a0, a1, a2 } };
	return run(p, len, &d) & SECCOMP_RET_ACTION_FULL;
}

#define ALLOW SECCOMP_RET_ALLOW
#define TRAP SECCOMP_RET_TRAP

static void test_vcpu_program(void)
{
	struct sock_filter *p = patched(THREAD_ROLE_VCPU, &fds);
	if (!p)
		return;
	size_t n = sandbox_filters[THREAD_ROLE_VCPU].len;
	/* every vCPU, and only the vCPUs */
	for (int fd = VCPU_FIRST; fd < VCPU_FIRST + NVCPU; fd++) {
		CHECK_EQ(call(p, n, SYS_ioctl, fd, KVM_RUN, 0), ALLOW);
		CHECK_EQ(call(p, n, SYS_ioctl, fd, KVM_GET_REGS, 0), ALLOW);
	}
	CHECK_EQ(call(p, n, SYS_ioctl, VCPU_FIRST - 1, KVM_RUN, 0), TRAP);
	CHECK_EQ(call(p, n, SYS_ioctl, VCPU_FIRST + NVCPU, KVM_RUN, 0), TRAP);
	CHECK_EQ(call(p, n, SYS_ioctl, VM_FD, KVM_RUN, 0), TRAP);
	CHECK_EQ(call(p, n, SYS_ioctl, 0, KVM_RUN, 0), TRAP);
	/* far away on either side: the range check must not wrap */
	CHECK_EQ(call(p, n, SYS_ioctl, 0x7fffffff, KVM_RUN, 0), TRAP);
	CHECK_EQ(call(p, n, SYS_ioctl, 0xffffffff, KVM_RUN, 0), TRAP);
	/* 32-bit, as the kernel's ioctl takes the descriptor: the upper half
	 * does not count, as in every other descriptor rule */
	CHECK_EQ(call(p, n, SYS_ioctl, (1ULL << 32) | VCPU_FIRST, KVM_RUN, 0), ALLOW);
	CHECK_EQ(call(p, n, SYS_ioctl, (1ULL << 32) | (VCPU_FIRST + NVCPU), KVM_RUN, 0), TRAP);
	/* the request still counts on a vCPU */
	CHECK_EQ(call(p, n, SYS_ioctl, VCPU_FIRST, KVM_CREATE_VCPU, 0), TRAP);
	CHECK_EQ(call(p, n, SYS_ioctl, VCPU_FIRST, KVM_SET_USER_MEMORY_REGION, 0), TRAP);
	/* the VM: exactly its descriptor */
	CHECK_EQ(call(p, n, SYS_ioctl, VM_FD, KVM_IRQ_LINE, 0), ALLOW);
	CHECK_EQ(call(p, n, SYS_ioctl, VM_FD, KVM_IOEVENTFD, 0), ALLOW);
	CHECK_EQ(call(p, n, SYS_ioctl, VM_FD + 1, KVM_IRQ_LINE, 0), TRAP);
	CHECK_EQ(call(p, n, SYS_ioctl, VM_FD - 1, KVM_IRQ_LINE, 0), TRAP);
	CHECK_EQ(call(p, n, SYS_ioctl, VCPU_FIRST, KVM_IRQ_LINE, 0), TRAP);
	CHECK_EQ(call(p, n, SYS_ioctl, VM_FD, KVM_CREATE_VCPU, 0), TRAP);
	/* any descriptor where the rule says so */
	CHECK_EQ(call(p, n, SYS_ioctl, 2, TCGETS, 0), ALLOW);
	CHECK_EQ(call(p, n, SYS_ioctl, 77, VHOST_SET_VRING_CALL, 0), ALLOW);
	/* the rest of the list, and what no role allows */
	CHECK_EQ(call(p, n, SYS_write, 1, 0, 0), ALLOW);
	CHECK_EQ(call(p, n, SYS_tgkill, 1, 2, SIGUSR1), ALLOW);
	/* (the sanitizer runtimes' list allows any tgkill, in every role) */
	CHECK_EQ(call(p, n, SYS_tgkill, 1, 2, SIGKILL), sandbox_filters_sanitizer ? ALLOW : TRAP);
	CHECK_EQ(call(p, n, SYS_personality, 0xffffffff, 0, 0), TRAP);
	CHECK_EQ(call(p, n, SYS_execve, 0, 0, 0), TRAP);
	CHECK_EQ(call(p, n, SYS_mmap, 0, 4096, PROT_READ | PROT_EXEC), TRAP);
	CHECK_EQ(call(p, n, SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE), ALLOW);
	CHECK_EQ(call(p, n, SYS_clone3, 0, 0, 0), SECCOMP_RET_ERRNO);
	/* another architecture's calls (libseccomp's default: kill), and x32's */
	struct seccomp_data d = { .nr = SYS_write, .arch = AUDIT_ARCH_I386 };
	CHECK_EQ(run(p, n, &d) & SECCOMP_RET_ACTION_FULL, SECCOMP_RET_KILL_THREAD);
	d = (struct seccomp_data){ .nr = 0x40000000 | SYS_write, .arch = AUDIT_ARCH_X86_64 };
	CHECK(run(p, n, &d) != ALLOW);
	free(p);
}

static void test_other_roles(void)
{
	/* The main thread may read a vCPU's registers (the gdb stub on a
	 * vCPU no thread runs any more), never run one. */
	struct sock_filter *p = patched(THREAD_ROLE_EVLOOP, &fds);
	if (p) {
		size_t n = sandbox_filters[THREAD_ROLE_EVLOOP].len;
		CHECK_EQ(call(p, n, SYS_ioctl, VCPU_FIRST + 2, KVM_GET_REGS, 0), ALLOW);
		CHECK_EQ(call(p, n, SYS_ioctl, VCPU_FIRST + 3, KVM_GET_REGS, 0), TRAP);
		CHECK_EQ(call(p, n, SYS_ioctl, VCPU_FIRST, KVM_RUN, 0), TRAP);
		CHECK_EQ(call(p, n, SYS_ioctl, VM_FD, KVM_SIGNAL_MSI, 0), ALLOW);
		CHECK_EQ(call(p, n, SYS_ioctl, VM_FD + 1, KVM_SIGNAL_MSI, 0), TRAP);
		CHECK_EQ(call(p, n, SYS_epoll_wait, 3, 0, 0), ALLOW);
		free(p);
	}
	/* Every role: the VM's interrupts on the VM only (common.c), and
	 * nothing left of the generator's constants. */
	for (int role = 0; role < THREAD_ROLES; role++) {
		p = patched(role, &fds);
		if (!p)
			continue;
		size_t n = sandbox_filters[role].len;
		CHECK_EQ(call(p, n, SYS_ioctl, VM_FD, KVM_IRQFD, 0), ALLOW);
		CHECK_EQ(call(p, n, SYS_ioctl, VCPU_FIRST, KVM_IRQFD, 0), TRAP);
		CHECK_EQ(call(p, n, SYS_personality, 0xffffffff, 0, 0), TRAP);
		CHECK_EQ(sandbox_bpf_patch(p, n, NULL), 0);
		free(p);
	}
	/* A range of one vCPU, at descriptor 0's neighbour. */
	struct sandbox_fds one = { .vm = 3, .vcpu_first = 4, .nvcpu = 1 };
	p = patched(THREAD_ROLE_VCPU, &one);
	if (p) {
		size_t n = sandbox_filters[THREAD_ROLE_VCPU].len;
		CHECK_EQ(call(p, n, SYS_ioctl, 4, KVM_RUN, 0), ALLOW);
		CHECK_EQ(call(p, n, SYS_ioctl, 3, KVM_RUN, 0), TRAP);
		CHECK_EQ(call(p, n, SYS_ioctl, 5, KVM_RUN, 0), TRAP);
		CHECK_EQ(call(p, n, SYS_ioctl, 3, KVM_IRQ_LINE, 0), ALLOW);
		free(p);
	}
}

/* What the rewrite refuses: a constant of the sites' anywhere else, a
 * jump into a site, a site whose accumulator is used after it. */
static void test_refused(void)
{
	struct sock_filter site[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, SB_SITE_VCPU_MASK),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SB_SITE_VCPU_VALUE, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
	};
	struct sock_filter p[8];
	memcpy(p, site, sizeof(site));
	CHECK_EQ(sandbox_bpf_patch(p, 5, NULL), 1);
	CHECK_EQ(sandbox_bpf_patch(p, 5, &fds), 1);
	struct seccomp_data d = { .args = { VCPU_FIRST + 1 } };
	CHECK_EQ(run(p, 5, &d), SECCOMP_RET_ALLOW);
	d.args[0] = VCPU_FIRST + NVCPU;
	CHECK_EQ(run(p, 5, &d), SECCOMP_RET_TRAP);

	memcpy(p, site, sizeof(site));
	p[3] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SB_SITE_VM_VALUE);
	CHECK_EQ(sandbox_bpf_patch(p, 5, &fds), -EINVAL);
	CHECK_EQ(p[1].k, SB_SITE_VCPU_MASK); /* nothing rewritten */

	/* the masks swapped between kinds */
	memcpy(p, site, sizeof(site));
	p[1].k = SB_SITE_VM_MASK;
	CHECK_EQ(sandbox_bpf_patch(p, 5, &fds), -EINVAL);

	/* a jump onto the site's compare */
	struct sock_filter q[] = {
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 7, 2, 0),
		site[0], site[1], site[2], site[3], site[4],
	};
	CHECK_EQ(sandbox_bpf_patch(q, 6, &fds), -EINVAL);

	/* the masked accumulator used again after the site */
	memcpy(p, site, sizeof(site));
	p[3] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 5, 0, 0);
	p[4] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP);
	CHECK_EQ(sandbox_bpf_patch(p, 5, &fds), -EINVAL);

	/* a jump out of the program */
	memcpy(p, site, sizeof(site));
	p[2].jf = 9;
	CHECK_EQ(sandbox_bpf_patch(p, 5, &fds), -EINVAL);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The same verdict as libseccomp's own program with the descriptors in,
 * call for call: every system call with descriptors around the VM's and
 * the vCPUs', then random calls whose arguments are the constants the
 * lists compare with (either half of a 64-bit argument). */
static void test_same_as_libseccomp(const struct sandbox_fds *f)
{
	for (int role = 0; role < THREAD_ROLES; role++) {
		size_t rlen = 0;
		struct sock_filter *ref = sandbox_compile_bpf(role, sandbox_filters_sanitizer, f, &rlen);
		struct sock_filter *p = patched(role, f);
		CHECK(ref && p);
		if (!ref || !p) {
			free(ref);
			free(p);
			continue;
		}
		size_t n = sandbox_filters[role].len;
		uint64_t pool[512];
		size_t npool = 0;
		uint64_t fdv[] = { 0, 1, 2, f->vm - 1, f->vm, f->vm + 1, f->vcpu_first - 1,
				   f->vcpu_first + f->nvcpu - 1, f->vcpu_first + f->nvcpu,
				   (1ULL << 32) | f->vm, (1ULL << 32) | f->vcpu_first, 0xffffffffULL };
		for (size_t i = 0; i < sizeof(fdv) / sizeof(fdv[0]); i++)
			pool[npool++] = fdv[i];
		for (unsigned i = 0; i < f->nvcpu && npool < 64; i++)
			pool[npool++] = f->vcpu_first + i;
		for (size_t i = 0; i < rlen && npool < 500; i++)
			if (BPF_CLASS(ref[i].code) == BPF_JMP || BPF_CLASS(ref[i].code) == BPF_ALU) {
				pool[npool++] = ref[i].k;
				pool[npool++] = (uint64_t)ref[i].k << 32;
			}
		int mismatches = 0;
		for (int nr = 0; nr < 460; nr++)
			for (size_t i = 0; i < sizeof(fdv) / sizeof(fdv[0]); i++) {
				struct seccomp_data d = { .nr = nr, .arch = AUDIT_ARCH_X86_64,
							  .args = { fdv[i] } };
				mismatches += run(ref, rlen, &d) != run(p, n, &d);
			}
		for (int k = 0; k < 200000; k++) {
			struct seccomp_data d = { .arch = AUDIT_ARCH_X86_64 };
			/* mostly the calls the programs name */
			d.nr = (int)(next() % 8 ? pool[next() % npool] % 460 : next() % 460);
			if (next() % 2)
				d.nr = SYS_ioctl;
			for (int a = 0; a < 6; a++) {
				d.args[a] = pool[next() % npool];
				if (next() % 16 == 0)
					d.args[a] |= pool[next() % npool] << 32;
			}
			if (run(ref, rlen, &d) != run(p, n, &d) && mismatches++ < 5)
				fprintf(stderr, "%s: nr %d args %llx %llx %llx: libseccomp %x, ours %x\n",
					sandbox_filters[role].name, d.nr,
					(unsigned long long)d.args[0], (unsigned long long)d.args[1],
					(unsigned long long)d.args[2], run(ref, rlen, &d), run(p, n, &d));
		}
		CHECK_EQ(mismatches, 0);
		free(ref);
		free(p);
	}
}

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	(void)sig;
	(void)uctx;
	_exit(si->si_syscall == SYS_ioctl ? 40 : 41);
}

/* In a child: the vCPU program with /dev/null standing in for the VM and
 * its vCPUs at chosen numbers. Returns the child's exit status. */
static int kernel_run(int probe_fd, unsigned long request)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, VM_FD) < 0)
			_exit(50);
		for (int i = 0; i < NVCPU; i++)
			if (dup2(null, VCPU_FIRST + i) < 0)
				_exit(50);
		struct sock_filter *p = patched(THREAD_ROLE_VCPU, &fds);
		if (!p)
			_exit(51);
		struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
		sigaction(SIGSYS, &sa, NULL);
		struct sock_fprog fp = { .len = sandbox_filters[THREAD_ROLE_VCPU].len, .filter = p };
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0)
			_exit(52);
		/* let through: /dev/null knows no KVM request */
		int r = ioctl(probe_fd, request, 0);
		_exit(r < 0 && errno == ENOTTY ? 0 : 53);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static void test_through_the_kernel(void)
{
	CHECK_EQ(kernel_run(VCPU_FIRST, KVM_RUN), 0);
	CHECK_EQ(kernel_run(VCPU_FIRST + NVCPU - 1, KVM_RUN), 0);
	CHECK_EQ(kernel_run(VCPU_FIRST + NVCPU, KVM_RUN), 40);
	CHECK_EQ(kernel_run(VM_FD, KVM_RUN), 40);
	CHECK_EQ(kernel_run(VM_FD, KVM_IRQ_LINE), 0);
	CHECK_EQ(kernel_run(VCPU_FIRST, KVM_IRQ_LINE), 40);
}

int main(void)
{
	for (int role = 0; role < THREAD_ROLES; role++) {
		CHECK(sandbox_filters[role].name && sandbox_filters[role].len > 0);
		CHECK(sandbox_filters[role].sites > 0);
	}
#ifdef KHYVE_SANITIZE
	CHECK_EQ(sandbox_filters_sanitizer, 1);
#else
	CHECK_EQ(sandbox_filters_sanitizer, 0);
#endif
	test_vcpu_program();
	test_other_roles();
	test_refused();
	test_same_as_libseccomp(&fds);
	/* 64 vCPUs (64 alternatives per rule in libseccomp's own) */
	test_same_as_libseccomp(&(struct sandbox_fds){ .vm = 9, .vcpu_first = 10, .nvcpu = 64 });
	test_through_the_kernel();
	return UNIT_RESULT();
}
