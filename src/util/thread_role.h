/* Each thread khyve makes says what it is once its own set-up is done
 * (files open, memory mapped, devices made), so that a policy (the
 * seccomp sandbox, src/sandbox/) can narrow what it may do from there on.
 * Library code only declares; the program decides what a role means:
 * without a policy (khyveload, khyvectl, unit tests) nothing happens.
 *
 * Adding a thread: give it a role here (or reuse one), call
 * thread_role_enter() at the top of its loop, and give the role its own
 * allowlist file in src/sandbox/. */
#pragma once

enum thread_role {
	THREAD_ROLE_VCPU,    /* a vCPU: KVM_RUN and its exits (vmm/vcpu.c) */
	THREAD_ROLE_EVLOOP,  /* the main thread: the event loop, then exit */
	THREAD_ROLE_STARTER, /* runs device start(): makes the device threads */
	THREAD_ROLE_BLK_IO,  /* a virtio-blk device's io_uring thread */
	THREAD_ROLE_NET_IO,  /* a virtio-net device's tap thread */
	THREAD_ROLE_FS_IO,   /* a virtio-fs device's thread (its back end's signals) */
	THREAD_ROLE_P9_IO,   /* a virtio-9p device's thread: the 9P file server */
	THREAD_ROLES
};

struct thread_role_policy {
	/* Called on the thread itself; does not return on failure. */
	void (*enter)(enum thread_role role);
	/* Runs fn(arg) on the thread allowed to make threads and returns
	 * its result (the caller waits). */
	int (*setup_call)(int (*fn)(void *arg), void *arg);
};

/* The program's policy; NULL: none. Set before any thread is made. */
void thread_role_set_policy(const struct thread_role_policy *policy);

/* The calling thread's set-up is done: from here on it is `role`. */
void thread_role_enter(enum thread_role role);

/* Run fn(arg) where new threads may be made (a device's start() makes its
 * thread), waiting for its result. Without a policy: fn(arg), here. */
int thread_role_setup_call(int (*fn)(void *arg), void *arg);
