/* Parsers for user-supplied numbers in bhyve's syntax. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* bhyve's memory size: "512M", "2G", "1024k", "4096" (bare numbers are MiB).
 * Returns 0 and stores bytes, or -EINVAL / -ERANGE. */
int parse_mem_size(const char *text, uint64_t *bytes);

/* An unsigned integer in C notation (decimal, 0x hex, 0 octal), whole string,
 * no sign, not above max. Returns 0 or -EINVAL / -ERANGE. */
int parse_uint(const char *text, uint64_t max, uint64_t *value);
