/* The line editor (see lineedit.h). */
#include "loader/lineedit.h"

/* Names, paths and messages are cut to their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void le_init(struct lineedit *le, int in, int out, bool tty)
{
	memset(le, 0, sizeof(*le));
	le->in = in;
	le->out = out;
	le->tty = tty;
}

void le_free(struct lineedit *le)
{
	for (unsigned i = 0; i < le->nhist; i++)
		free(le->hist[i]);
	le->nhist = 0;
}

static void raw_write(struct lineedit *le, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(le->out, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

void le_write(struct lineedit *le, const char *s, size_t n)
{
	if (!le->tty) {
		raw_write(le, s, n);
		return;
	}
	size_t start = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) {
			raw_write(le, s + start, i - start);
			raw_write(le, "\r\n", 2);
			start = i + 1;
		}
	raw_write(le, s + start, n - start);
}

void le_puts(struct lineedit *le, const char *s)
{
	le_write(le, s, strlen(s));
}

int le_getc(struct lineedit *le, int timeout_ms, char *c)
{
	if (le->npending) {
		*c = le->pending[0];
		memmove(le->pending, le->pending + 1, --le->npending);
		return 1;
	}
	if (le->eof)
		return -1;
	struct pollfd p = { .fd = le->in, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? -2 : -1;
	if (r == 0)
		return 0;
	ssize_t n = read(le->in, le->pending, le->tty ? 64 : sizeof(le->pending));
	if (n < 0 && errno == EINTR)
		return -2;
	if (n <= 0) {
		le->eof = true;
		return -1;
	}
	le->npending = (size_t)n;
	return le_getc(le, 0, c);
}

void le_add_history(struct lineedit *le, const char *line)
{
	if (!line[0] || (le->nhist && !strcmp(le->hist[le->nhist - 1], line)))
		return;
	char *copy = strdup(line);
	if (!copy)
		return;
	if (le->nhist == LE_HISTORY) {
		free(le->hist[0]);
		memmove(le->hist, le->hist + 1, (LE_HISTORY - 1) * sizeof(le->hist[0]));
		le->nhist--;
	}
	le->hist[le->nhist++] = copy;
}

/* Redraws prompt and line, and puts the cursor at pos. */
static void redraw(struct lineedit *le, const char *prompt, const char *buf, size_t n, size_t pos)
{
	char tail[32];
	raw_write(le, "\r", 1);
	raw_write(le, prompt, strlen(prompt));
	raw_write(le, buf, n);
	raw_write(le, "\x1b[K", 3);
	if (n > pos) {
		int k = snprintf(tail, sizeof(tail), "\x1b[%zuD", n - pos);
		raw_write(le, tail, (size_t)k);
	}
}

static int readline_plain(struct lineedit *le, char *buf, size_t len)
{
	size_t n = 0;
	for (;;) {
		char c;
		int r = le_getc(le, -1, &c);
		if (r == -2)
			return -EINTR;
		if (r < 0) {
			buf[n] = 0;
			return n ? 1 : 0;
		}
		if (c == '\n') {
			if (n && buf[n - 1] == '\r')
				n--;
			buf[n] = 0;
			return 1;
		}
		if (n + 1 < len)
			buf[n++] = c;
	}
}

int le_readline(struct lineedit *le, const char *prompt, char *buf, size_t len)
{
	if (!le->tty)
		return readline_plain(le, buf, len);
	size_t n = 0, pos = 0;
	unsigned hpos = le->nhist;
	char saved[LE_LINE_MAX] = "";
	buf[0] = 0;
	raw_write(le, prompt, strlen(prompt));
	for (;;) {
		char c;
		int r = le_getc(le, -1, &c);
		if (r == -2)
			return -EINTR;
		if (r < 0) {
			raw_write(le, "\r\n", 2);
			buf[n] = 0;
			return n ? 1 : 0;
		}
		if (c == '\r' || c == '\n') {
			raw_write(le, "\r\n", 2);
			buf[n] = 0;
			le_add_history(le, buf);
			return 1;
		}
		if (c == 0x04) { /* ^D */
			if (!n) {
				raw_write(le, "\r\n", 2);
				return 0;
			}
			if (pos < n) {
				memmove(buf + pos, buf + pos + 1, n - pos - 1);
				n--;
			}
		} else if (c == 0x03) { /* ^C: drop the line */
			raw_write(le, "^C\r\n", 4);
			n = pos = 0;
			hpos = le->nhist;
			raw_write(le, prompt, strlen(prompt));
			continue;
		} else if (c == 0x7f || c == 0x08) {
			if (pos) {
				memmove(buf + pos - 1, buf + pos, n - pos);
				n--;
				pos--;
			}
		} else if (c == 0x01) {
			pos = 0;
		} else if (c == 0x05) {
			pos = n;
		} else if (c == 0x02) {
			if (pos)
				pos--;
		} else if (c == 0x06) {
			if (pos < n)
				pos++;
		} else if (c == 0x15) { /* ^U */
			memmove(buf, buf + pos, n - pos);
			n -= pos;
			pos = 0;
		} else if (c == 0x0b) { /* ^K */
			n = pos;
		} else if (c == 0x17) { /* ^W */
			size_t p = pos;
			while (p && buf[p - 1] == ' ')
				p--;
			while (p && buf[p - 1] != ' ')
				p--;
			memmove(buf + p, buf + pos, n - pos);
			n -= pos - p;
			pos = p;
		} else if (c == 0x0c) { /* ^L */
			raw_write(le, "\x1b[H\x1b[2J", 7);
		} else if (c == 0x1b) {
			char a = 0, b = 0;
			if (le_getc(le, 100, &a) != 1 || (a != '[' && a != 'O') ||
			    le_getc(le, 100, &b) != 1)
				continue;
			if (b >= '0' && b <= '9') { /* ESC [ n ~ */
				char t = 0;
				if (le_getc(le, 100, &t) != 1 || t != '~')
					continue;
				if (b == '3' && pos < n) { /* Delete */
					memmove(buf + pos, buf + pos + 1, n - pos - 1);
					n--;
				} else if (b == '1' || b == '7') {
					pos = 0;
				} else if (b == '4' || b == '8') {
					pos = n;
				}
			} else if (b == 'D') {
				if (pos)
					pos--;
			} else if (b == 'C') {
				if (pos < n)
					pos++;
			} else if (b == 'H') {
				pos = 0;
			} else if (b == 'F') {
				pos = n;
			} else if (b == 'A' || b == 'B') {
				if (b == 'A' && hpos == 0)
					continue;
				if (b == 'B' && hpos >= le->nhist)
					continue;
				if (hpos == le->nhist) {
					buf[n] = 0;
					snprintf(saved, sizeof(saved), "%s", buf);
				}
				hpos += b == 'A' ? -1u : 1u;
				const char *h = hpos == le->nhist ? saved : le->hist[hpos];
				snprintf(buf, len, "%s", h);
				n = pos = strlen(buf);
			}
		} else if ((unsigned char)c >= 0x20 && n + 1 < len) {
			memmove(buf + pos + 1, buf + pos, n - pos);
			buf[pos++] = c;
			n++;
			if (pos == n) { /* typing at the end: no redraw */
				raw_write(le, &c, 1);
				continue;
			}
		} else {
			continue;
		}
		redraw(le, prompt, buf, n, pos);
	}
}
