/* vCPU threads (vmm/vcpu.c): KVM_RUN and what handling its exits takes.
 * - Their own state, by request and only on the VM's vCPU descriptors:
 *   the halt check, the gdb stub's calls (run on the vCPU's thread), the
 *   register dump of a failing vCPU, and the wake from S3 (the last vCPU
 *   to park resets every vCPU).
 * - The VM: interrupts (KVM_IRQ_LINE, MSI, their routes and irqfds, made
 *   on first use), queue kicks moving to ioeventfds when the driver sets a
 *   queue up, the interrupt controllers' reset on an S3 wake.
 * - Kicking the other vCPUs (SIGUSR1, to this process only) when one stops
 *   for the debugger.
 * - Device registers: console output (write, or send on a socket), timers
 *   (the RTC's alarm and periodic interrupt: timerfd), kicks
 *   without an ioeventfd (write), a driver's reset reading the kicks left
 *   (read). Starting a device runs on the starter thread (futex only). */
#include <linux/kvm.h>
#include <linux/vhost.h>
#include <signal.h>

#include "sandbox/rules.h"

static const struct sandbox_rule rules[] = {
	SB_IOCTL(SB_FD_VCPUS, KVM_RUN),
	SB_IOCTL(SB_FD_VCPUS, KVM_GET_REGS),
	SB_IOCTL(SB_FD_VCPUS, KVM_SET_REGS),
	SB_IOCTL(SB_FD_VCPUS, KVM_GET_SREGS),
	SB_IOCTL(SB_FD_VCPUS, KVM_SET_SREGS),
	SB_IOCTL(SB_FD_VCPUS, KVM_GET_FPU),
	SB_IOCTL(SB_FD_VCPUS, KVM_SET_FPU),
	SB_IOCTL(SB_FD_VCPUS, KVM_GET_DEBUGREGS),
	SB_IOCTL(SB_FD_VCPUS, KVM_SET_DEBUGREGS),
	SB_IOCTL(SB_FD_VCPUS, KVM_SET_GUEST_DEBUG),
	SB_IOCTL(SB_FD_VCPUS, KVM_GET_MSRS),
	SB_IOCTL(SB_FD_VCPUS, KVM_TRANSLATE),
	SB_IOCTL(SB_FD_VCPUS, KVM_GET_MP_STATE),
	SB_IOCTL(SB_FD_VCPUS, KVM_SET_MP_STATE),
	SB_IOCTL(SB_FD_VCPUS, KVM_SET_LAPIC),
	SB_IOCTL(SB_FD_VCPUS, KVM_GET_VCPU_EVENTS),
	SB_IOCTL(SB_FD_VCPUS, KVM_SET_VCPU_EVENTS),
	SB_IOCTL(SB_FD_VM, KVM_IOEVENTFD),
	SB_IOCTL(SB_FD_VM, KVM_GET_IRQCHIP),
	SB_IOCTL(SB_FD_VM, KVM_SET_IRQCHIP),
	SB_IOCTL(SB_FD_VM, KVM_SET_PIT2),
	SB_ALLOW_IF(tgkill, SB_ARG_EQ(2, SIGUSR1)),
	SB_ALLOW(read),
	SB_ALLOW(sendto),
	SB_ALLOW(timerfd_settime),
	SB_ALLOW(timerfd_gettime),
	SB_ALLOW(poll), /* a console backend that cannot take output yet */
	SB_ALLOW(epoll_ctl), /* a live queue's kick, watched by the loop */
	/* A vector masked or unmasked: vhost-net's and virtiofsd's completions
	 * rebound before the write completes (VHOST_SET_VRING_CALL; the
	 * vhost-user message and its answer); a virtio-fs reset takes the
	 * rings back from virtiofsd (GET_VRING_BASE). */
	SB_IOCTL(SB_FD_ANY, VHOST_SET_VRING_CALL),
	/* The driver's reset stops vhost-net before the write completes. */
	SB_IOCTL(SB_FD_ANY, VHOST_NET_SET_BACKEND),
	SB_IOCTL(SB_FD_ANY, VHOST_GET_VRING_BASE),
	SB_ALLOW(sendmsg),
	SB_ALLOW(recvmsg), /* and poll, above */
};

const struct sandbox_rules sandbox_vcpu_rules = SB_RULES("vcpu", rules);
