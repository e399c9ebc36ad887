/* The controlling terminal in raw mode for a stdio console, restored on
 * every way out: normal exit, signals handled by the event loop, and fatal
 * signals (the crash handler restores it before the default action). */
#pragma once

/* Puts fd (a tty) in raw mode and arranges the restores. Returns 0 or
 * -errno; not a tty is not an error (nothing to do). */
int terminal_enter_raw(int fd);
/* Async-signal-safe. */
void terminal_restore(void);
