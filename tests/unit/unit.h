/* A tiny unit-test harness: CHECK records failures and goes on; main
 * returns non-zero when any failed, which meson test reports. */
#pragma once
#include <malloc.h>
#include <stdio.h>

static int unit_failures;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                               \
			unit_failures++;                                              \
		}                                                                     \
	} while (0)

#define CHECK_EQ(a, b)                                                                    \
	do {                                                                              \
		unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b); \
		if (_a != _b) {                                                           \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (0x%llx != 0x%llx)\n", \
				__FILE__, __LINE__, #a, #b, _a, _b);                      \
			unit_failures++;                                                  \
		}                                                                         \
	} while (0)

#define UNIT_RESULT() (unit_failures ? (fprintf(stderr, "%d failures\n", unit_failures), 1) : 0)

/* Bytes the program has allocated and not freed: from ASan's allocator in
 * the sanitizer build (where mallinfo2 reports nothing), else glibc's. */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));
static inline size_t unit_heap_bytes(void)
{
	if (__sanitizer_get_current_allocated_bytes)
		return __sanitizer_get_current_allocated_bytes();
	return mallinfo2().uordblks;
}
