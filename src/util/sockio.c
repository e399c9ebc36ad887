#include "util/sockio.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>

bool send_all_or_give_up(int fd, const void *buf, size_t len, int timeout_ms)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			if (poll(&pfd, 1, timeout_ms) > 0)
				continue;
		}
		return false;
	}
	return true;
}
