/* SPDX-License-Identifier: BSD-2-Clause */
/* String and memory helpers (the subset of libc the guests need). */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strstr(const char *haystack, const char *needle);
/* Copies at most size-1 bytes and always terminates (if size > 0); returns strlen(src). */
size_t strlcpy(char *dst, const char *src, size_t size);

static inline bool is_digit(int c) { return c >= '0' && c <= '9'; }
static inline bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static inline bool is_xdigit(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* strtoull: base 0 means 0x -> 16, leading 0 -> 8, else 10. */
unsigned long long strtoull(const char *s, char **end, int base);
unsigned long strtoul(const char *s, char **end, int base);

/* zlib-compatible CRC-32 (python: zlib.crc32(data)). Pass 0 to start. */
uint32_t crc32(uint32_t crc, const void *data, size_t len);
/* 32-bit sum of the bytes, modulo 2^32 (python: sum(data) & 0xffffffff). */
uint32_t byte_sum32(const void *data, size_t len);

#endif
