/* The OK prompt's line editor: on a terminal in raw mode, left/right,
 * Home/End (and ^A/^E), backspace/delete, ^U (kill line), ^K (kill to
 * end), ^W (kill word), up/down through the history, ^C (drop the line),
 * ^D on an empty line (end of input), ^L (redraw). Not a terminal: lines
 * are read as they come, without echo. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define LE_LINE_MAX 1024
#define LE_HISTORY 100

struct lineedit {
	int in, out;
	bool tty;
	char *hist[LE_HISTORY];
	unsigned nhist;
	/* Input read ahead (not a terminal, or escape sequences). */
	char pending[4096];
	size_t npending;
	bool eof;
};

void le_init(struct lineedit *le, int in, int out, bool tty);
void le_free(struct lineedit *le);
/* Reads one line into buf (without its end). 1 a line, 0 end of input,
 * -EINTR when interrupted by a signal. */
int le_readline(struct lineedit *le, const char *prompt, char *buf, size_t len);
/* One byte, waiting at most timeout_ms (-1 forever): 1, 0 on timeout,
 * -1 at end of input. */
int le_getc(struct lineedit *le, int timeout_ms, char *c);
/* Output, with "\n" made "\r\n" on a raw terminal. */
void le_write(struct lineedit *le, const char *s, size_t n);
void le_puts(struct lineedit *le, const char *s);
void le_add_history(struct lineedit *le, const char *line);
