/* Decoding a fuzz input into a guest's accesses, for the device harnesses
 * (fuzz_pci.c, fuzz_msix.c, fuzz_uart.c, fuzz_rtc.c, fuzz_fw_cfg.c). The
 * input is read front to back; past its end every read gives 0, so any
 * byte string is a valid program. FUZZ_CHECK aborts with the failed
 * invariant, which libFuzzer (and the corpus replay) reports as a crash. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline bool fin_more(const struct fuzz_in *in)
{
	return in->n > 0;
}

static inline uint8_t fin_u8(struct fuzz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* n (at most 8) bytes, little-endian. */
static inline uint64_t fin_le(struct fuzz_in *in, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)fin_u8(in) << (8 * i);
	return v;
}

static inline uint16_t fin_u16(struct fuzz_in *in) { return (uint16_t)fin_le(in, 2); }
static inline uint32_t fin_u32(struct fuzz_in *in) { return (uint32_t)fin_le(in, 4); }
static inline uint64_t fin_u64(struct fuzz_in *in) { return fin_le(in, 8); }

/* An access size: 1, 2, 4 or 8. */
static inline unsigned fin_size(struct fuzz_in *in)
{
	return 1u << (fin_u8(in) & 3);
}

/* A value for an access of size bytes. */
static inline uint64_t fin_value(struct fuzz_in *in, unsigned size)
{
	return fin_le(in, size);
}

static inline uint64_t fuzz_ones(unsigned size)
{
	return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

/* For the harness's own checking code: no coverage feedback (it would only
 * steer the fuzzer towards the checks, and cost most of the run time). */
#if defined(__clang__) && __clang_major__ >= 13
#define FUZZ_NOCOV __attribute__((no_sanitize("coverage")))
#else
#define FUZZ_NOCOV
#endif

#define FUZZ_CHECK(cond)                                                                     \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

/* Bytes the program has allocated on the heap now: the sanitizer's count
 * under ASan, glibc's otherwise. For "guest traffic does not grow host
 * memory" checks: compare two readings within one input. */
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#ifdef FUZZ_ASAN
/* From sanitizer/allocator_interface.h, which gcc does not install. */
size_t __sanitizer_get_current_allocated_bytes(void);
static inline size_t fuzz_heap_bytes(void)
{
	return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>
static inline size_t fuzz_heap_bytes(void)
{
	return mallinfo2().uordblks;
}
#endif
