/* The main thread: the event loop (util/evloop.c), then khyve's way out.
 * - Waiting and reading: epoll, the signalfd, timers, eventfds.
 * - Character backends (stdio, pty, tcp), the control socket and the gdb
 *   stub: accepting and serving clients; a pty's FIONREAD; stdin's flags.
 * - libslirp, which runs on this loop: the guest's connections are host
 *   sockets it makes, binds, connects and polls; it reads resolv.conf.
 * - virtio-rnd (getrandom), virtio-console, khyvectl's requests: kicking
 *   and freezing vCPUs (SIGUSR1), the vCPU statistics (pread), the gdb
 *   stub's calls on a vCPU no thread runs any more.
 * - The way out: the control socket and pty links removed, the lock note
 *   rewritten, the VM directory removed on --destroy, and the teardown
 *   helper (vmm/vm.c vm_detach: clone with CLONE_VM only, which keeps a
 *   few descriptors with close_range and waits on a pipe). */
#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "sandbox/rules.h"

static const struct sandbox_rule rules[] = {
	SB_ALLOW(epoll_wait),
	SB_ALLOW(epoll_pwait),
	SB_ALLOW(epoll_ctl),
	SB_ALLOW(poll),
	SB_ALLOW(ppoll),
	SB_ALLOW(read),
	SB_ALLOW(readv),
	SB_ALLOW(pread64),
	SB_ALLOW(pwrite64),
	SB_ALLOW(lseek),
	SB_ALLOW(ftruncate),
	SB_ALLOW(fstat),
	SB_ALLOW(newfstatat),
	SB_ALLOW(timerfd_create), /* libslirp's timers */
	SB_ALLOW(timerfd_settime),
	SB_ALLOW(timerfd_gettime),
	SB_ALLOW(getrandom),
	SB_ALLOW(mincore), /* KHYVE_EXIT_STATS: the guest pages resident */
	SB_ALLOW_IF(tgkill, SB_ARG_EQ(2, SIGUSR1)),
	/* sockets: clients of ours, and libslirp's for the guest */
	SB_ALLOW(accept4),
	SB_ALLOW(accept),
	SB_ALLOW(socket),
	SB_ALLOW(connect),
	SB_ALLOW(bind),
	SB_ALLOW(listen),
	SB_ALLOW(shutdown),
	SB_ALLOW(recvfrom),
	SB_ALLOW(recvmsg),
	SB_ALLOW(sendto),
	SB_ALLOW(sendmsg),
	SB_ALLOW(getsockopt),
	SB_ALLOW(setsockopt),
	SB_ALLOW(getsockname),
	SB_ALLOW(getpeername),
	SB_ALLOW_IF(fcntl, SB_ARG_EQ(1, F_GETFL)),
	SB_ALLOW_IF(fcntl, SB_ARG_EQ(1, F_SETFL)),
	SB_ALLOW_IF(fcntl, SB_ARG_EQ(1, F_GETFD)),
	SB_ALLOW_IF(fcntl, SB_ARG_EQ(1, F_SETFD)),
	SB_ALLOW_IF(ioctl, SB_ARG_EQ(1, FIONREAD)),
	SB_ALLOW_IF(ioctl, SB_ARG_EQ(1, FIONBIO)),
	/* libslirp's resolv.conf, read only */
	SB_ALLOW_IF(openat, SB_ARG_MASK(2, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY)),
	/* the gdb stub on a vCPU whose thread has ended */
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
	/* the way out */
	SB_ALLOW(unlinkat),
	SB_ALLOW(unlink),
	SB_ALLOW(rmdir),
	SB_ALLOW(readlink),
	SB_ALLOW(flock),
	SB_ALLOW(pipe2),
	SB_ALLOW(close_range),
	SB_ALLOW_IF(clone, SB_ARG_EQ(0, CLONE_VM)),
};

const struct sandbox_rules sandbox_evloop_rules = SB_RULES("evloop", rules);
