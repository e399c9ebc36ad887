#include "sandbox/sandbox.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/rules.h"
#include "util/terminal.h"
#include "util/thread_role.h"
#include "vmm/vm.h"

/* syscall_names.c, generated at build time from libseccomp's own table:
 * the SIGSYS handler may not allocate, so no lookup happens there. */
extern const char *const sandbox_syscall_names[];
extern const unsigned sandbox_syscall_names_count;

/* One list per role, in enum thread_role's order. */
static const struct sandbox_rules *const role_rules[THREAD_ROLES] = {
	[THREAD_ROLE_VCPU] = &sandbox_vcpu_rules,
	[THREAD_ROLE_EVLOOP] = &sandbox_evloop_rules,
	[THREAD_ROLE_STARTER] = &sandbox_starter_rules,
	[THREAD_ROLE_BLK_IO] = &sandbox_blk_io_rules,
	[THREAD_ROLE_NET_IO] = &sandbox_net_io_rules,
	[THREAD_ROLE_FS_IO] = &sandbox_fs_io_rules,
	[THREAD_ROLE_P9_IO] = &sandbox_p9_io_rules,
};

/* The roles whose threads the starter makes: its list holds theirs. */
static const enum thread_role device_roles[] = { THREAD_ROLE_BLK_IO, THREAD_ROLE_NET_IO,
						 THREAD_ROLE_FS_IO, THREAD_ROLE_P9_IO };

#define MAX_FDS 64
static int vm_fd = -1;
static int vcpu_fds[MAX_FDS];
static unsigned nvcpu_fds;
static int test_role = -1; /* SANDBOX_TEST_ENV */

static __thread const char *thread_role_name;

/* ---- the report ---- */

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, long v)
{
	char digits[24];
	int n = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
	do
		digits[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < (int)sizeof(digits));
	if (v < 0 && at < cap)
		buf[at++] = '-';
	while (n && at < cap)
		buf[at++] = digits[--n];
	return at;
}

/* Async-signal-safe, and only calls every role allows (common.c). */
static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	(void)sig;
	(void)uctx;
	terminal_restore();
	int nr = si->si_syscall;
	const char *name = nr >= 0 && (unsigned)nr < sandbox_syscall_names_count &&
					   sandbox_syscall_names[nr]
				   ? sandbox_syscall_names[nr]
				   : "?";
	char buf[200];
	size_t n = 0, cap = sizeof(buf) - 1;
	/* Raw terminals want CR LF; a leading one ends the guest's line. */
	n = put(buf, n, cap, "\r\nkhyve: sandbox: thread ");
	n = put(buf, n, cap, thread_role_name ? thread_role_name : "?");
	n = put(buf, n, cap, " made forbidden system call ");
	n = put(buf, n, cap, name);
	n = put(buf, n, cap, " (");
	n = put_num(buf, n, cap, nr);
	n = put(buf, n, cap, ")\n");
	ssize_t w = write(STDERR_FILENO, buf + 2, n - 2);
	(void)w;
	_exit(4);
}

/* ---- filters ---- */

static int add_rule(scmp_filter_ctx ctx, const struct sandbox_rule *r)
{
	struct scmp_arg_cmp args[4];
	unsigned n = r->nargs;
	memcpy(args, r->args, n * sizeof(args[0]));
	int rc;
	switch (r->fd) {
	case SB_FD_ANY:
		rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, n, args);
		break;
	case SB_FD_VM:
		args[n] = (struct scmp_arg_cmp)SB_ARG_EQ(0, vm_fd);
		rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, n + 1, args);
		break;
	case SB_FD_VCPUS:
		rc = 0;
		for (unsigned i = 0; i < nvcpu_fds && !rc; i++) {
			args[n] = (struct scmp_arg_cmp)SB_ARG_EQ(0, vcpu_fds[i]);
			rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, n + 1, args);
		}
		break;
	default:
		rc = -EINVAL;
	}
	/* The same rule twice (two lists sharing one) is no error. */
	return rc == -EEXIST ? 0 : rc;
}

static int add_rules(scmp_filter_ctx ctx, const struct sandbox_rules *list)
{
	for (size_t i = 0; i < list->n; i++) {
		int r = add_rule(ctx, &list->rules[i]);
		if (r)
			return r;
	}
	return 0;
}

static int install(enum thread_role role)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return -ENOMEM;
	/* This thread only: every thread gets its own (SCMP_FLTATR_CTL_TSYNC
	 * stays off). */
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 0);
	/* glibc tries clone3 first and falls back to clone, whose flags a
	 * filter can check: nobody may use clone3. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (!r)
		r = add_rules(ctx, &sandbox_common_rules);
	if (!r)
		r = add_rules(ctx, role_rules[role]);
	if (!r && role == THREAD_ROLE_STARTER)
		for (size_t i = 0; i < sizeof(device_roles) / sizeof(device_roles[0]) && !r; i++)
			r = add_rules(ctx, role_rules[device_roles[i]]);
#ifdef KHYVE_SANITIZE
	if (!r)
		r = add_rules(ctx, &sandbox_sanitizer_rules);
	if (!r && role == THREAD_ROLE_EVLOOP)
		r = add_rules(ctx, &sandbox_sanitizer_exit_rules);
#endif
	/* The vCPUs' KVM_RUN is the call made most: looked at first. */
	if (!r)
		r = seccomp_syscall_priority(ctx, SCMP_SYS(ioctl), 255);
	if (!r)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

static void enter(enum thread_role role)
{
	const char *name = role_rules[role]->name;
	int r = install(role);
	if (r) {
		/* The thread cannot go on without the filter it was promised. */
		char buf[160];
		terminal_restore();
		snprintf(buf, sizeof(buf), "khyve: sandbox: cannot install the %s filter: %s\n", name,
			 strerror(-r));
		ssize_t w = write(STDERR_FILENO, buf, strlen(buf));
		(void)w;
		_exit(4);
	}
	thread_role_name = name;
	if ((int)role == test_role) {
		test_role = -1;
		syscall(SYS_personality, 0xffffffffUL); /* forbidden in every role */
	}
}

/* ---- the starter: device start() and the threads it makes ---- */

static pthread_mutex_t starter_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t starter_cond = PTHREAD_COND_INITIALIZER;
static int (*call_fn)(void *);
static void *call_arg;
static int call_result;
static bool call_pending, call_done;

static void *starter_main(void *unused)
{
	(void)unused;
	enter(THREAD_ROLE_STARTER);
	pthread_mutex_lock(&starter_lock);
	for (;;) {
		while (!call_pending || call_done)
			pthread_cond_wait(&starter_cond, &starter_lock);
		int (*fn)(void *) = call_fn;
		void *arg = call_arg;
		pthread_mutex_unlock(&starter_lock);
		int r = fn(arg);
		pthread_mutex_lock(&starter_lock);
		call_result = r;
		call_done = true;
		pthread_cond_broadcast(&starter_cond);
	}
	return NULL;
}

static int setup_call(int (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&starter_lock);
	while (call_pending)
		pthread_cond_wait(&starter_cond, &starter_lock);
	call_fn = fn;
	call_arg = arg;
	call_pending = true;
	call_done = false;
	pthread_cond_broadcast(&starter_cond);
	while (!call_done)
		pthread_cond_wait(&starter_cond, &starter_lock);
	int r = call_result;
	call_pending = false;
	pthread_cond_broadcast(&starter_cond);
	pthread_mutex_unlock(&starter_lock);
	return r;
}

static const struct thread_role_policy policy = { .enter = enter, .setup_call = setup_call };

int sandbox_start(struct vm *vm, char *err, size_t errlen)
{
	nvcpu_fds = vm_vcpu_count(vm);
	if (nvcpu_fds > MAX_FDS) {
		snprintf(err, errlen, "sandbox: %u vCPUs is more than it handles (%d)", nvcpu_fds,
			 MAX_FDS);
		return -E2BIG;
	}
	vm_fd = vm_kvm_fd(vm);
	for (unsigned i = 0; i < nvcpu_fds; i++)
		vcpu_fds[i] = vm_vcpu_kvm_fd(vm, i);
	const char *test = getenv(SANDBOX_TEST_ENV);
	for (int i = 0; test && i < THREAD_ROLES; i++)
		if (!strcmp(test, role_rules[i]->name))
			test_role = i;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		int e = errno;
		snprintf(err, errlen, "sandbox: SIGSYS handler: %s", strerror(e));
		return -e;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128 * 1024);
	pthread_t t;
	int r = pthread_create(&t, &attr, starter_main, NULL);
	pthread_attr_destroy(&attr);
	if (r) {
		snprintf(err, errlen, "sandbox: starting the starter thread: %s", strerror(r));
		return -r;
	}
	pthread_detach(t);
	thread_role_set_policy(&policy);
	return 0;
}
