/* What every thread needs, whatever its role: locks and condition
 * variables (futex), ending itself or khyve, memory for malloc (never
 * executable), the clock, its signal mask and handlers' return, writing
 * (its eventfds, interrupts, the log on stderr), and the SIGSYS report's
 * own calls (the terminal restore: glibc's tcsetattr makes TCSETS, then
 * TCGETS to check it).
 * And raising an interrupt: any thread that completes work may be the
 * first to raise a given MSI, which makes its KVM route and irqfd then
 * (pci/pci.c msi_fire); without routes, KVM_SIGNAL_MSI or KVM_IRQ_LINE. */
#include <linux/kvm.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ioctl.h>

#include "sandbox/rules.h"

static const struct sandbox_rule rules[] = {
	SB_ALLOW(futex),
	SB_ALLOW(exit),
	SB_ALLOW(exit_group),
	SB_ALLOW(rt_sigreturn),
	SB_ALLOW(restart_syscall),
	SB_ALLOW(rt_sigprocmask),
	SB_ALLOW(clock_gettime),
	SB_ALLOW(clock_nanosleep),
	SB_ALLOW(nanosleep),
	SB_ALLOW(sched_yield),
	SB_ALLOW(getpid),
	SB_ALLOW(gettid),
	SB_ALLOW(write),
	SB_ALLOW(writev),
	SB_ALLOW(brk),
	SB_NO_EXEC(mmap),
	SB_NO_EXEC(mprotect),
	SB_ALLOW(munmap),
	SB_ALLOW(madvise),
	SB_ALLOW(mremap),
	SB_ALLOW_IF(ioctl, SB_ARG_EQ(1, TCSETS)),
	SB_ALLOW_IF(ioctl, SB_ARG_EQ(1, TCGETS)),
	SB_IOCTL(SB_FD_VM, KVM_IRQ_LINE),
	SB_IOCTL(SB_FD_VM, KVM_SIGNAL_MSI),
	SB_IOCTL(SB_FD_VM, KVM_IRQFD),
	SB_IOCTL(SB_FD_VM, KVM_SET_GSI_ROUTING),
	SB_ALLOW(eventfd2),
	/* A crash signal (util/exitclean.c): the handler passes a signal sent
	 * from outside on to the main thread, which removes what must not be
	 * left; then the handler from before is put back and the signal sent
	 * again. */
	SB_ALLOW(rt_sigaction),
	SB_ALLOW_IF(tgkill, SB_ARG_EQ(2, SIGSEGV)),
	SB_ALLOW_IF(tgkill, SB_ARG_EQ(2, SIGBUS)),
	SB_ALLOW_IF(tgkill, SB_ARG_EQ(2, SIGILL)),
	SB_ALLOW_IF(tgkill, SB_ARG_EQ(2, SIGFPE)),
	SB_ALLOW_IF(tgkill, SB_ARG_EQ(2, SIGABRT)),
	SB_ALLOW_IF(tgkill, SB_ARG_EQ(2, SIGQUIT)),
	SB_ALLOW(close),
};

const struct sandbox_rules sandbox_common_rules = SB_RULES("common", rules);
