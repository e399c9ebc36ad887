/* src/util/exitclean: what is registered goes when the process exits or
 * dies of a crash signal; what was forgotten stays. Each case runs in a
 * child process, which is what ends. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/exitclean.h"
#include "unit.h"

static char base[] = "/tmp/khyve-test-exitclean-XXXXXX";

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", base, name);
}

static void make_file(const char *name)
{
	char p[256];
	path_of(p, sizeof(p), name);
	FILE *f = fopen(p, "w");
	if (f)
		fclose(f);
}

static bool exists(const char *name)
{
	char p[256];
	struct stat st;
	path_of(p, sizeof(p), name);
	return lstat(p, &st) == 0;
}

/* In the child: a/ with a/note and a/keep, a/sub/ with a/sub/note; the
 * notes and both directories registered, keep made after (so a/ stays:
 * only empty directories go), forget one. */
static void child(int how)
{
	char p[256];
	path_of(p, sizeof(p), "a");
	mkdir(p, 0700);
	exitclean_add(p, EXITCLEAN_RMDIR);
	path_of(p, sizeof(p), "a/sub");
	mkdir(p, 0700);
	exitclean_add(p, EXITCLEAN_RMDIR);
	make_file("a/sub/note");
	path_of(p, sizeof(p), "a/sub/note");
	exitclean_add(p, EXITCLEAN_UNLINK);
	make_file("a/kept");
	path_of(p, sizeof(p), "a/kept");
	exitclean_forget(exitclean_add(p, EXITCLEAN_UNLINK));
	exitclean_catch_crashes();
	if (how == 0)
		exit(3);
	if (how == 1)
		raise(SIGSEGV);
	if (how == 2)
		abort();
	if (how == 3) {
		/* a real fault: a store to a page taken away */
		volatile int *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap((void *)page, 4096);
		*page = 1;
	}
	_exit(9);
}

static void one(int how, int want_sig)
{
	pid_t pid = fork();
	if (pid == 0)
		child(how);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
#ifdef __SANITIZE_ADDRESS__
	/* The handler from before, the sanitizer's, reports and exits. */
	if (want_sig)
		CHECK(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
#else
	if (want_sig)
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == want_sig);
#endif
	else
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	CHECK(!exists("a/sub/note"));
	CHECK(!exists("a/sub"));
	CHECK(exists("a/kept")); /* forgotten, and a/ not empty */
	CHECK(exists("a"));
	char p[256];
	path_of(p, sizeof(p), "a/kept");
	unlink(p);
	path_of(p, sizeof(p), "a");
	rmdir(p);
}

int main(void)
{
	CHECK(mkdtemp(base));
	one(0, 0);
	one(1, SIGSEGV);
	one(2, SIGABRT);
	one(3, SIGSEGV);
	CHECK(rmdir(base) == 0);
	return UNIT_RESULT();
}
