/* Writing to a peer that may stop reading (a debugger, khyvectl). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* Send all of buf on the non-blocking-safe socket fd, waiting at most
 * timeout_ms each time the peer's buffer is full. False when the peer is
 * gone or stopped reading for that long. Never raises SIGPIPE. */
bool send_all_or_give_up(int fd, const void *buf, size_t len, int timeout_ms);
