/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Console output on COM1 and a small printf.
 * Conversions: %d %i %u %x %X %o %c %s %p %%, length modifiers hh h l ll z j t,
 * flags '-' '0' '+' ' ' '#', field width and precision (also '*').
 * The console turns "\n" into "\r\n".  printf() output is atomic per call
 * across CPUs (a console spinlock), up to 512 bytes per call.
 */
#ifndef GUEST_PRINTF_H
#define GUEST_PRINTF_H

#include <stdarg.h>
#include <stddef.h>

#define PRINTF_FMT(a, b) __attribute__((format(printf, a, b)))

int printf(const char *fmt, ...) PRINTF_FMT(1, 2);
int vprintf(const char *fmt, va_list ap) PRINTF_FMT(1, 0);
int snprintf(char *buf, size_t size, const char *fmt, ...) PRINTF_FMT(3, 4);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) PRINTF_FMT(3, 0);
int puts(const char *s);            /* appends a newline */
int putchar(int c);

/* Raw console write under the console lock (with \n -> \r\n). */
/* The I/O base of the console UART: COM1 unless the guest moves it. */
extern unsigned short console_uart;
void console_write(const char *s, size_t n);
/* For fatal paths: take the lock if possible, else write anyway. */
void console_write_unlocked(const char *s, size_t n);

#endif
