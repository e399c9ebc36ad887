#include "util/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *program = "khyve";
static enum log_level current_level = LOG_INFO;
static int raw_terminal;

void log_set_program(const char *name) { program = name; }
void log_set_level(enum log_level level) { current_level = level; }
enum log_level log_get_level(void) { return current_level; }
void log_set_raw_terminal(int raw) { raw_terminal = raw; }

static void vlog(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const prefix[] = {
		[LOG_ERROR] = "", [LOG_WARN] = "warning: ", [LOG_INFO] = "", [LOG_DEBUG] = "debug: ",
	};
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%s: %s", program, prefix[level]);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(buf) - 3)
		len = sizeof(buf) - 3;
	if (raw_terminal)
		buf[len++] = '\r';
	buf[len++] = '\n';
	/* One write() so concurrent threads do not interleave within a line. */
	ssize_t w = write(STDERR_FILENO, buf, len);
	(void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > current_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void log_guest_msg(const char *fmt, ...)
{
	/* At most 10 reports per second, and say how many were dropped. */
	static atomic_long window_start;
	static atomic_int in_window;
	static atomic_int dropped;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	long now = ts.tv_sec;
	if (atomic_exchange(&window_start, now) != now)
		atomic_store(&in_window, 0);
	if (atomic_fetch_add(&in_window, 1) >= 10) {
		atomic_fetch_add(&dropped, 1);
		return;
	}
	int lost = atomic_exchange(&dropped, 0);
	if (lost)
		log_msg(LOG_WARN, "guest: %d more reports suppressed", lost);
	va_list ap;
	va_start(ap, fmt);
	char msg[900];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(LOG_WARN, "guest: %s", msg);
}
