/* A character backend for unit tests and fuzz harnesses: it implements
 * backend/chardev.h in memory, so a device (a UART) sees the same calls as
 * with a real backend, with no fds, threads or timing. Bytes the device
 * writes are counted and the last ones kept; input is queued by the test
 * and handed over by fake_chardev_pump() as the event loop would hand it:
 * the receiver says how much room it has, and when it has none, input
 * pauses until the device calls chardev_resume_input(), exactly as the real
 * backend (src/backend/chardev.c) does. A device that forgets to resume
 * therefore stalls here too, and a test sees the input left queued.
 *
 * Compile fake_chardev.c INSTEAD of src/backend/chardev*.c (the symbols are
 * the same): fuzz harnesses that build the code under test themselves add
 * fake_chardev_src (tests/fake/meson.build). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/chardev.h"

#define FAKE_CHARDEV_QUEUE 4096 /* bytes of queued input at most */
#define FAKE_CHARDEV_OUT_KEEP 256 /* the last bytes of output kept */

struct fake_chardev_stats {
	uint64_t out_bytes;   /* every byte chardev_write was given */
	uint64_t in_delivered; /* bytes handed to the receiver */
	size_t in_queued;     /* bytes still waiting */
	bool paused;          /* the receiver had no room and did not resume */
	bool have_rx;
	unsigned resumes;     /* chardev_resume_input calls */
};

/* A new backend, with nothing queued. Returns NULL only without memory. */
struct chardev *fake_chardev_new(void);
/* Frees it (as chardev_close does). */

/* Queue input (what a user types); bytes beyond FAKE_CHARDEV_QUEUE are
 * dropped. Returns how many were queued. */
size_t fake_chardev_queue(struct chardev *c, const uint8_t *buf, size_t len);
/* One event-loop wakeup: unless paused, ask the receiver for room and hand
 * over at most that much (or pause when it has none). Returns the bytes
 * delivered. */
size_t fake_chardev_pump(struct chardev *c);
void fake_chardev_stats(const struct chardev *c, struct fake_chardev_stats *out);
/* The n-th most recent output byte (0: the last); -1 if there is none. */
int fake_chardev_out_byte(const struct chardev *c, unsigned n);
