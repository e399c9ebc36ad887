#include "sandbox/sandbox.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/bpf_fds.h"
#include "sandbox/filters.h"
#include "util/terminal.h"
#include "util/thread_role.h"
#include "vmm/vm.h"

/* syscall_names.c, generated at build time from libseccomp's own table:
 * the SIGSYS handler may not allocate, so no lookup happens there. */
extern const char sandbox_syscall_name_text[];
extern const unsigned short sandbox_syscall_name_at[]; /* 0: none */
extern const unsigned sandbox_syscall_names_count;

/* Each role's program with this VM's descriptors in (bpf_fds.h): made
 * once by sandbox_start, before any thread is under a filter. */
static struct sock_filter *programs[THREAD_ROLES];
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
					   sandbox_syscall_name_at[nr]
				   ? sandbox_syscall_name_text + sandbox_syscall_name_at[nr]
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

/* This thread only (no TSYNC): every thread gets its own. */
static int install(enum thread_role role)
{
	struct sock_fprog fp = { .len = sandbox_filters[role].len, .filter = programs[role] };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0)
		return -errno;
	return 0;
}

static void enter(enum thread_role role)
{
	const char *name = sandbox_filters[role].name;
	/* The thread's first malloc binds it to an arena, and once there are
	 * eight glibc first counts the CPUs (reading /sys, which no role
	 * may): done here, before the filter, as when libseccomp allocated
	 * on every thread at this point (16 vCPUs trapped without it). */
	void *volatile first = malloc(1);
	free(first);
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

static void free_programs(void)
{
	for (int i = 0; i < THREAD_ROLES; i++) {
		free(programs[i]);
		programs[i] = NULL;
	}
}

/* Every role's program with the VM's descriptors in, or none. */
static int make_programs(struct vm *vm, char *err, size_t errlen)
{
	unsigned n = vm_vcpu_count(vm);
	struct sandbox_fds fds = { .vm = (unsigned)vm_kvm_fd(vm),
				   .vcpu_first = (unsigned)vm_vcpu_kvm_fd(vm, 0), .nvcpu = n };
	/* vm.c promises them contiguous; a range check needs them so. */
	for (unsigned i = 0; i < n; i++)
		if (vm_vcpu_kvm_fd(vm, i) != (int)(fds.vcpu_first + i)) {
			snprintf(err, errlen, "sandbox: the vCPUs' descriptors are not contiguous");
			return -EINVAL;
		}
	for (int i = 0; i < THREAD_ROLES; i++) {
		const struct sandbox_filter *f = &sandbox_filters[i];
		size_t size = f->len * sizeof(*f->prog);
		programs[i] = malloc(size);
		if (!programs[i]) {
			free_programs();
			snprintf(err, errlen, "sandbox: out of memory");
			return -ENOMEM;
		}
		memcpy(programs[i], f->prog, size);
		int sites = sandbox_bpf_patch(programs[i], f->len, &fds);
		if (sites != f->sites) {
			free_programs();
			snprintf(err, errlen,
				 "sandbox: the %s filter's descriptor checks are not what was built "
				 "(%d found, %u expected)",
				 f->name, sites, f->sites);
			return -EINVAL;
		}
	}
	return 0;
}

int sandbox_start(struct vm *vm, char *err, size_t errlen)
{
	int r = make_programs(vm, err, errlen);
	if (r)
		return r;
	const char *test = getenv(SANDBOX_TEST_ENV);
	for (int i = 0; test && i < THREAD_ROLES; i++)
		if (!strcmp(test, sandbox_filters[i].name))
			test_role = i;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		int e = errno;
		free_programs();
		snprintf(err, errlen, "sandbox: SIGSYS handler: %s", strerror(e));
		return -e;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128 * 1024);
	pthread_t t;
	r = pthread_create(&t, &attr, starter_main, NULL);
	pthread_attr_destroy(&attr);
	if (r) {
		free_programs();
		snprintf(err, errlen, "sandbox: starting the starter thread: %s", strerror(r));
		return -r;
	}
	pthread_detach(t);
	thread_role_set_policy(&policy);
	return 0;
}
