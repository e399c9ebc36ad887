#include "util/terminal.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "util/log.h"

static struct termios saved;
static int saved_fd = -1;

void terminal_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSANOW, &saved);
		saved_fd = -1;
	}
}

static void crash_handler(int sig)
{
	terminal_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_crash_handlers(void)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP };
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		/* Do not replace a handler someone else (ASan) installed. */
		if (sigaction(fatal[i], NULL, &sa) == 0 && sa.sa_handler != SIG_DFL)
			continue;
		sa.sa_handler = crash_handler;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESETHAND;
		sigaction(fatal[i], &sa, NULL);
	}
}

int terminal_enter_raw(int fd)
{
	if (!isatty(fd))
		return 0;
	struct termios t;
	if (tcgetattr(fd, &t) < 0)
		return -errno;
	saved = t;
	saved_fd = fd;
	static bool registered;
	if (!registered) {
		atexit(terminal_restore);
		install_crash_handlers();
		registered = true;
	}
	cfmakeraw(&t);
	/* Keep output post-processing off too: the guest sends its own CRs. */
	if (tcsetattr(fd, TCSANOW, &t) < 0)
		return -errno;
	log_set_raw_terminal(1);
	return 0;
}
