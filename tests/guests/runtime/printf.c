/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdint.h>
#include <stdbool.h>
#include "printf.h"
#include "lib.h"
#include "uart.h"
#include "spinlock.h"
#include "runtime.h"

/* The UART printf writes to (a guest may move its console off COM1). */
unsigned short console_uart = COM1;

static spinlock_t console_lock = SPINLOCK_INIT;
static volatile unsigned console_owner;     /* cpu_index() + 1, 0 if free */

static void raw_write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            uart_putc(console_uart, '\r');
        uart_putc(console_uart, s[i]);
    }
}

static unsigned console_lock_acquire(void)
{
    unsigned me = cpu_index() + 1;

    if (console_owner == me)        /* re-entered from an exception handler */
        return 0;
    spin_lock(&console_lock);
    console_owner = me;
    return me;
}

static void console_lock_release(unsigned token)
{
    if (!token)
        return;
    console_owner = 0;
    spin_unlock(&console_lock);
}

void console_write(const char *s, size_t n)
{
    unsigned t = console_lock_acquire();

    raw_write(s, n);
    console_lock_release(t);
}

void console_write_unlocked(const char *s, size_t n)
{
    raw_write(s, n);
}

/* ---- formatting engine ---- */

struct sink {
    char *buf;
    size_t size;
    size_t len;         /* would-be length */
};

static void emit(struct sink *k, char c)
{
    if (k->len + 1 < k->size)
        k->buf[k->len] = c;
    k->len++;
}

static void emit_pad(struct sink *k, char c, int n)
{
    while (n-- > 0)
        emit(k, c);
}

enum { F_LEFT = 1, F_ZERO = 2, F_PLUS = 4, F_SPACE = 8, F_ALT = 16 };

static void emit_number(struct sink *k, unsigned long long v, bool neg, unsigned base,
                        bool upper, int flags, int width, int prec, const char *prefix)
{
    char tmp[24];
    int n = 0, plen = 0, zeros = 0, total;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char sign = 0;

    if (neg)
        sign = '-';
    else if (flags & F_PLUS)
        sign = '+';
    else if (flags & F_SPACE)
        sign = ' ';
    if (v == 0 && prec == 0)
        n = 0;
    else
        do {
            tmp[n++] = digits[v % base];
            v /= base;
        } while (v);
    if (prefix)
        plen = (int)strlen(prefix);
    if (prec > n)
        zeros = prec - n;
    total = n + zeros + plen + (sign ? 1 : 0);
    if ((flags & F_ZERO) && !(flags & F_LEFT) && prec < 0 && width > total) {
        zeros += width - total;
        total = width;
    }
    if (!(flags & F_LEFT))
        emit_pad(k, ' ', width - total);
    if (sign)
        emit(k, sign);
    for (int i = 0; i < plen; i++)
        emit(k, prefix[i]);
    emit_pad(k, '0', zeros);
    while (n)
        emit(k, tmp[--n]);
    if (flags & F_LEFT)
        emit_pad(k, ' ', width - total);
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink k = { buf, size, 0 };

    for (; *fmt; fmt++) {
        int flags = 0, width = 0, prec = -1, lmod = 0;   /* lmod: -2 hh, -1 h, 1 l, 2 ll */
        unsigned long long v;
        bool neg;

        if (*fmt != '%') {
            emit(&k, *fmt);
            continue;
        }
        fmt++;
        for (;; fmt++) {
            if (*fmt == '-') flags |= F_LEFT;
            else if (*fmt == '0') flags |= F_ZERO;
            else if (*fmt == '+') flags |= F_PLUS;
            else if (*fmt == ' ') flags |= F_SPACE;
            else if (*fmt == '#') flags |= F_ALT;
            else break;
        }
        if (*fmt == '*') {
            width = va_arg(ap, int);
            if (width < 0) {
                flags |= F_LEFT;
                width = -width;
            }
            fmt++;
        } else {
            while (is_digit(*fmt))
                width = width * 10 + (*fmt++ - '0');
        }
        if (*fmt == '.') {
            fmt++;
            prec = 0;
            if (*fmt == '*') {
                prec = va_arg(ap, int);
                fmt++;
            } else {
                while (is_digit(*fmt))
                    prec = prec * 10 + (*fmt++ - '0');
            }
        }
        for (;; fmt++) {
            if (*fmt == 'h') lmod = lmod == -1 ? -2 : -1;
            else if (*fmt == 'l') lmod = lmod == 1 ? 2 : 1;
            else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't') lmod = 2;
            else break;
        }
        switch (*fmt) {
        case 'd':
        case 'i': {
            long long s;
            if (lmod >= 2) s = va_arg(ap, long long);
            else if (lmod == 1) s = va_arg(ap, long);
            else s = va_arg(ap, int);
            if (lmod == -1) s = (short)s;
            if (lmod == -2) s = (signed char)s;
            neg = s < 0;
            v = neg ? -(unsigned long long)s : (unsigned long long)s;
            emit_number(&k, v, neg, 10, false, flags, width, prec, NULL);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o':
            if (lmod >= 2) v = va_arg(ap, unsigned long long);
            else if (lmod == 1) v = va_arg(ap, unsigned long);
            else v = va_arg(ap, unsigned int);
            if (lmod == -1) v = (unsigned short)v;
            if (lmod == -2) v = (unsigned char)v;
            if (*fmt == 'u')
                emit_number(&k, v, false, 10, false, flags, width, prec, NULL);
            else if (*fmt == 'o')
                emit_number(&k, v, false, 8, false, flags, width, prec,
                            (flags & F_ALT) && v ? "0" : NULL);
            else
                emit_number(&k, v, false, 16, *fmt == 'X', flags, width, prec,
                            (flags & F_ALT) && v ? (*fmt == 'X' ? "0X" : "0x") : NULL);
            break;
        case 'p':
            v = (uintptr_t)va_arg(ap, void *);
            emit_number(&k, v, false, 16, false, flags, width, prec, "0x");
            break;
        case 'c': {
            char c = (char)va_arg(ap, int);
            if (!(flags & F_LEFT))
                emit_pad(&k, ' ', width - 1);
            emit(&k, c);
            if (flags & F_LEFT)
                emit_pad(&k, ' ', width - 1);
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            int n;
            if (!s)
                s = "(null)";
            n = (int)(prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s));
            if (!(flags & F_LEFT))
                emit_pad(&k, ' ', width - n);
            for (int i = 0; i < n; i++)
                emit(&k, s[i]);
            if (flags & F_LEFT)
                emit_pad(&k, ' ', width - n);
            break;
        }
        case '%':
            emit(&k, '%');
            break;
        case 0:
            fmt--;
            break;
        default:
            emit(&k, '%');
            emit(&k, *fmt);
            break;
        }
    }
    if (size)
        buf[k.len < size ? k.len : size - 1] = 0;
    return (int)k.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int vprintf(const char *fmt, va_list ap)
{
    char buf[512];
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);

    console_write(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    return n;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int puts(const char *s)
{
    unsigned t = console_lock_acquire();
    size_t n = strlen(s);

    raw_write(s, n);
    raw_write("\n", 1);
    console_lock_release(t);
    return (int)n + 1;
}

int putchar(int c)
{
    char ch = (char)c;

    console_write(&ch, 1);
    return (unsigned char)c;
}
