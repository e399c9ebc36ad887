/* Paths a process must not leave behind however it ends: disk lock notes,
 * console and control sockets. Each is registered when made and
 * unregistered when its owner removes it; whatever is still registered is
 * removed when the process exits (atexit: a normal or error exit, and
 * SIGTERM, which khyve turns into a normal exit) or dies of a crash signal
 * (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGQUIT) once
 * exitclean_catch_crashes() was called. After kill -9 nothing can run:
 * each kind of path has its own stale check where it is made again.
 *
 * Async-signal-safe where it runs (unlink, rmdir, atomics); a fixed table,
 * no allocation, so a crash handler may use it. */
#pragma once

enum exitclean_kind {
	EXITCLEAN_UNLINK, /* a file or socket */
	EXITCLEAN_RMDIR,  /* a directory, removed only when empty; after every unlink */
};

/* A handle (>= 0) for exitclean_forget, or -ENOSPC / -ENAMETOOLONG (the
 * path is then not guarded; callers go on: it is a courtesy). */
int exitclean_add(const char *path, enum exitclean_kind kind);
/* The owner removed (or kept) the path itself: stop guarding it. -1 is
 * ignored. */
void exitclean_forget(int handle);
/* Remove everything registered (files first, then empty directories,
 * deepest first). Safe in a signal handler; runs at most once per entry. */
void exitclean_run(void);
/* Clean up on the crash signals too, then die of them as before (a
 * handler installed earlier, e.g. a sanitizer's, still runs). */
void exitclean_catch_crashes(void);
