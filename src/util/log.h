/* Diagnostics. Library code returns errors; these are for cmd/ and for
 * reporting guest misbehaviour that must not stop the VM. */
#pragma once
#include <stdarg.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_program(const char *name);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* A terminal in raw mode needs "\r\n" line ends on stderr too. */
void log_set_raw_terminal(int raw);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

/* Rate-limited warning about a guest's behaviour, so a hostile guest
 * cannot flood the host's terminal. */
#define log_guest(...) log_guest_msg(__VA_ARGS__)
void log_guest_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
