/* The "stdio" backend: the guest's console on khyve's own terminal. One per
 * process. The terminal goes raw (util/terminal.h restores it on every
 * way out); input is read on the event loop, output written to stdout.
 *
 * Input is read from a private, non-blocking open file description of
 * stdin (reopened through /proc/self/fd/0) where possible. Setting
 * O_NONBLOCK on fd 0 itself would also affect stdout and stderr when they
 * share the terminal's description, and would stay set in the user's shell
 * if khyve were killed. When stdin cannot be reopened (a socket), fd 0
 * itself is made non-blocking and its flags restored on close and at
 * exit. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/chardev_internal.h"
#include "util/log.h"
#include "util/terminal.h"

static atomic_bool stdio_in_use;
static int stdin_saved_flags = -1; /* fd 0's flags when we changed them */

static void restore_stdin_flags(void)
{
	if (stdin_saved_flags >= 0) {
		fcntl(STDIN_FILENO, F_SETFL, stdin_saved_flags);
		stdin_saved_flags = -1;
	}
}

static void stdio_closed(void *opaque)
{
	(void)opaque;
	restore_stdin_flags();
	atomic_store(&stdio_in_use, false);
}

/* A non-blocking fd to read stdin from, or -1 when there is no stdin. */
static int open_input(bool *own)
{
	*own = false;
	int fl = fcntl(STDIN_FILENO, F_GETFL);
	if (fl < 0)
		return -1; /* stdin closed */
	int fd = open("/proc/self/fd/0", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0) {
		*own = true;
		return fd;
	}
	if (!(fl & O_NONBLOCK)) {
		static bool registered;
		if (fcntl(STDIN_FILENO, F_SETFL, fl | O_NONBLOCK) < 0)
			return STDIN_FILENO; /* read once per wakeup anyway */
		stdin_saved_flags = fl;
		if (!registered) {
			atexit(restore_stdin_flags);
			registered = true;
		}
	}
	return STDIN_FILENO;
}

int chardev_stdio_open(const char *args, struct evloop *loop, struct chardev **out,
		       char *err, size_t errlen)
{
	if (args && *args) {
		snprintf(err, errlen, "the stdio backend takes no options ('%s')", args);
		return -EINVAL;
	}
	if (atomic_exchange(&stdio_in_use, true)) {
		snprintf(err, errlen, "stdio is already used by another port");
		return -EBUSY;
	}
	if (isatty(STDIN_FILENO)) {
		int r = terminal_enter_raw(STDIN_FILENO);
		if (r < 0)
			log_warn("cannot put the terminal in raw mode: %s", strerror(-r));
	}
	bool own_in;
	int in_fd = open_input(&own_in);
	struct chardev_fd_config cfg = {
		.in_fd = in_fd,
		.out_fd = fcntl(STDOUT_FILENO, F_GETFL) >= 0 ? STDOUT_FILENO : -1,
		.own_in_fd = own_in, /* a reopened stdin is ours */
		.on_close = stdio_closed,
	};
	int r = chardev_fd_new(loop, &cfg, out);
	if (r < 0) {
		if (own_in)
			close(in_fd);
		restore_stdin_flags();
		atomic_store(&stdio_in_use, false);
		snprintf(err, errlen, "stdio: %s", strerror(-r));
		return r;
	}
	chardev_set_where(*out, "stdio");
	return 0;
}
