#include "util/exitclean.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A khyve has a few disks and console ports, each with at most three
 * entries (a lock note, its directory and locks/). */
#define SLOTS 128

enum { FREE, CLAIMED, READY };

struct slot {
	atomic_int state;
	enum exitclean_kind kind;
	char path[PATH_MAX];
};

static struct slot slots[SLOTS];
static atomic_bool atexit_done;

static void run_at_exit(void) { exitclean_run(); }

int exitclean_add(const char *path, enum exitclean_kind kind)
{
	size_t len = strlen(path);
	if (len >= PATH_MAX)
		return -ENAMETOOLONG;
	if (!atomic_exchange(&atexit_done, true))
		atexit(run_at_exit);
	for (int i = 0; i < SLOTS; i++) {
		int expect = FREE;
		if (!atomic_compare_exchange_strong(&slots[i].state, &expect, CLAIMED))
			continue;
		memcpy(slots[i].path, path, len + 1);
		slots[i].kind = kind;
		atomic_store(&slots[i].state, READY);
		return i;
	}
	return -ENOSPC;
}

void exitclean_forget(int handle)
{
	if (handle >= 0 && handle < SLOTS)
		atomic_store(&slots[handle].state, FREE);
}

/* Take slot i for removal if it is still registered (once only). */
static bool take(int i, enum exitclean_kind kind)
{
	int expect = READY;
	if (slots[i].kind != kind || atomic_load(&slots[i].state) != READY)
		return false;
	return atomic_compare_exchange_strong(&slots[i].state, &expect, CLAIMED);
}

void exitclean_run(void)
{
	int saved = errno;
	for (int i = 0; i < SLOTS; i++)
		if (take(i, EXITCLEAN_UNLINK))
			unlink(slots[i].path);
	/* Directories deepest first: a longer path never contains a shorter
	 * one's parent. */
	for (;;) {
		int best = -1;
		size_t best_len = 0;
		for (int i = 0; i < SLOTS; i++) {
			if (slots[i].kind != EXITCLEAN_RMDIR || atomic_load(&slots[i].state) != READY)
				continue;
			size_t n = strlen(slots[i].path);
			if (best < 0 || n > best_len) {
				best = i;
				best_len = n;
			}
		}
		if (best < 0)
			break;
		if (take(best, EXITCLEAN_RMDIR)) /* else forgotten meanwhile: look again */
			rmdir(slots[best].path);
	}
	errno = saved;
}

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGQUIT };
#define NCRASH (sizeof(crash_signals) / sizeof(crash_signals[0]))
static struct sigaction before[NCRASH];

static atomic_int cleaner_tid; /* the thread that called exitclean_catch_crashes */

static void restore(int sig)
{
	for (size_t i = 0; i < NCRASH; i++)
		if (crash_signals[i] == sig)
			sigaction(sig, &before[i], NULL);
}

/* Only the thread that set this up removes files: other threads may be
 * sandboxed without unlink (src/sandbox/). A signal someone sent to the
 * process goes on to that thread; a fault of another thread's own kills
 * the process as before, and the next khyve finds what it left stale. */
static void on_crash(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	int cleaner = atomic_load(&cleaner_tid);
	if (cleaner && gettid() != cleaner) {
		if (info->si_code <= 0) {
			syscall(SYS_tgkill, getpid(), cleaner, sig);
			return;
		}
		restore(sig);
		return;
	}
	exitclean_run();
	restore(sig);
	/* A fault happens again when this handler returns, now to the handler
	 * from before; a signal sent by someone must be sent again. */
	if (info->si_code <= 0)
		raise(sig);
}

void exitclean_catch_crashes(void)
{
	atomic_store(&cleaner_tid, gettid());
	/* No SA_RESETHAND: a signal passed on to the cleaning thread must
	 * still find this handler. */
	struct sigaction sa = { .sa_sigaction = on_crash, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NCRASH; i++) {
		sigaction(crash_signals[i], NULL, &before[i]);
		/* One ignored since before (SIGQUIT in a shell's background
		 * job) stays ignored. */
		if (before[i].sa_handler != SIG_IGN)
			sigaction(crash_signals[i], &sa, NULL);
	}
}
