/* The starter thread (sandbox.c): runs a device's start() when a vCPU
 * sets DRIVER_OK (the vCPU waits), which makes the device's thread and
 * what it uses. Its list also holds every device role's (sandbox.c adds
 * them): the threads it makes inherit its filter before narrowing to
 * their own, and filters only ever narrow.
 * - Making threads: clone with the flags glibc's pthread_create passes
 *   (clone3 says ENOSYS, so that glibc falls back to clone, whose flags a
 *   filter can see), their stacks and guard pages, signal masks.
 * - What start() makes: eventfds, an epoll set, an io_uring (virtio-blk),
 *   the tap's offloads (TUNSETOFFLOAD).
 * - What the threads it makes need to put their own filter on (this list
 *   is theirs until then): no_new_privs and seccomp's filter mode. */
#include <linux/seccomp.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>

#include "sandbox/rules.h"

#define THREAD_FLAGS                                                                          \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |   \
	 CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)

static const struct sandbox_rule rules[] = {
	SB_ALLOW_IF(clone, SB_ARG_EQ(0, THREAD_FLAGS)),
	SB_ALLOW(set_robust_list),
	SB_ALLOW(rseq),
	SB_ALLOW(sigaltstack),
	SB_ALLOW(rt_sigaction),
	SB_ALLOW_IF(prctl, SB_ARG_EQ(0, PR_SET_NAME)), /* the new thread names itself */
	SB_ALLOW_IF(prctl, SB_ARG_EQ(0, PR_SET_NO_NEW_PRIVS)),
	SB_ALLOW_IF(seccomp, SB_ARG_EQ(0, SECCOMP_SET_MODE_FILTER)),
	SB_ALLOW(epoll_create1),
	SB_ALLOW(epoll_ctl),
	SB_ALLOW(io_uring_setup),
	SB_ALLOW(io_uring_register),
	SB_IOCTL(SB_FD_ANY, TUNSETOFFLOAD),
	/* virtio-fs: the vhost-user messages that hand virtiofsd the memory
	 * table and rings (fds passed with SCM_RIGHTS), and their answers. */
	SB_ALLOW(sendmsg),
	SB_ALLOW(recvmsg),
	SB_ALLOW(poll),
};

const struct sandbox_rules sandbox_starter_rules = SB_RULES("starter", rules);
