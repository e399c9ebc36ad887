/* Character backends: the spec dispatcher and the fd-backed core.
 *
 * Input: the fd is watched on the event loop (level-triggered EPOLLIN)
 * once a receiver is set. Each wakeup asks the receiver how much it can
 * take and reads at most that. When it can take nothing, input is paused
 * (the source is switched to edge-triggered with no EPOLLIN, so a hangup
 * while paused wakes the loop once rather than spinning) until
 * chardev_resume_input(). EOF or a read error ends input for good; it
 * never ends the VM.
 *
 * Locks: the receiver's callbacks are called without any chardev lock
 * held, so a device may call chardev_resume_input() or chardev_write()
 * while holding its own lock without risking an ABBA deadlock. */
#include "backend/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/chardev_internal.h"
#include "util/evloop.h"
#include "util/log.h"

/* How long one chardev_write may wait for a full non-blocking output
 * before it starts dropping bytes. */
#define CHARDEV_WRITE_WAIT_MS 100

struct chardev {
	struct evloop *loop;
	int in_fd, out_fd;
	bool own_in_fd, own_out_fd;
	void (*on_close)(void *opaque);
	void *close_opaque;

	pthread_mutex_t lock; /* the input side */
	struct chardev_receiver rx;
	bool have_rx;
	struct evloop_source *src;
	bool input_done; /* EOF, error, or an fd that cannot be polled */
	bool paused;
	unsigned long resume_gen; /* bumped by every chardev_resume_input */

	pthread_mutex_t out_lock; /* the output side */
	bool congested;           /* output was full: drop instead of waiting */
	bool out_not_socket;      /* send(MSG_NOSIGNAL) failed with ENOTSOCK */
};

/* ---- input ---- */

static void stop_input_locked(struct chardev *c)
{
	if (c->src) {
		evloop_remove(c->loop, c->src);
		c->src = NULL;
	}
	c->input_done = true;
	c->paused = false;
}

static void on_input(void *opaque, uint32_t events)
{
	struct chardev *c = opaque;
	(void)events;

	pthread_mutex_lock(&c->lock);
	if (!c->have_rx || c->input_done || c->paused) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	struct chardev_receiver rx = c->rx;
	unsigned long gen = c->resume_gen;
	pthread_mutex_unlock(&c->lock);

	size_t room = rx.can_receive(rx.opaque);
	if (room == 0) {
		pthread_mutex_lock(&c->lock);
		/* A resume that raced with can_receive wins: stay watching. */
		if (gen == c->resume_gen && c->src && !c->input_done) {
			c->paused = true;
			evloop_modify(c->loop, c->src, EPOLLET);
		}
		pthread_mutex_unlock(&c->lock);
		return;
	}

	uint8_t buf[512];
	size_t want = room < sizeof(buf) ? room : sizeof(buf);
	ssize_t n = read(c->in_fd, buf, want);
	if (n > 0) {
		rx.receive(rx.opaque, buf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	/* EOF (a closed pipe, /dev/null) or an error (EIO from a hung-up
	 * tty): no more input, the VM goes on. */
	if (n < 0)
		log_debug("character input ends: %s", strerror(errno));
	pthread_mutex_lock(&c->lock);
	stop_input_locked(c);
	pthread_mutex_unlock(&c->lock);
}

void chardev_set_receiver(struct chardev *c, const struct chardev_receiver *rx)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	if (!rx) {
		c->have_rx = false;
		if (c->src) {
			evloop_remove(c->loop, c->src);
			c->src = NULL;
		}
		c->paused = false;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->rx = *rx;
	c->have_rx = true;
	if (c->in_fd >= 0 && c->loop && !c->src && !c->input_done) {
		c->paused = false;
		c->src = evloop_add(c->loop, c->in_fd, EPOLLIN, on_input, c);
		if (!c->src) {
			/* EPERM: a regular file or /dev/null, which epoll
			 * cannot watch. Treat it as input at its end. */
			if (errno != EPERM)
				log_warn("cannot watch character input: %s", strerror(errno));
			c->input_done = true;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

void chardev_resume_input(struct chardev *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->resume_gen++;
	if (c->paused && c->src) {
		c->paused = false;
		evloop_modify(c->loop, c->src, EPOLLIN);
	}
	pthread_mutex_unlock(&c->lock);
}

void chardev_inject_input(struct chardev *c, const uint8_t *buf, size_t len)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	struct chardev_receiver rx = c->rx;
	bool have_rx = c->have_rx;
	pthread_mutex_unlock(&c->lock);
	if (!have_rx)
		return;
	size_t room = rx.can_receive(rx.opaque);
	if (room)
		rx.receive(rx.opaque, buf, len < room ? len : room);
}

/* ---- output ---- */

static ssize_t out_once(struct chardev *c, const uint8_t *buf, size_t len)
{
	if (!c->out_not_socket) {
		/* On a socket, a vanished peer must not raise SIGPIPE. */
		ssize_t n = send(c->out_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0 || errno != ENOTSOCK)
			return n;
		c->out_not_socket = true;
	}
	return write(c->out_fd, buf, len);
}

ssize_t chardev_write(struct chardev *c, const void *buf, size_t len)
{
	if (!c || c->out_fd < 0)
		return (ssize_t)len; /* dropped */
	const uint8_t *p = buf;
	size_t done = 0;
	pthread_mutex_lock(&c->out_lock);
	while (done < len) {
		ssize_t n = out_once(c, p + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			c->congested = false;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c->congested)
				break; /* still full: drop without waiting again */
			struct pollfd pfd = { .fd = c->out_fd, .events = POLLOUT };
			int r = poll(&pfd, 1, CHARDEV_WRITE_WAIT_MS);
			if (r > 0)
				continue;
			if (r < 0 && errno == EINTR)
				continue;
			c->congested = true;
			break;
		}
		break; /* EPIPE, EIO...: nobody reads; drop */
	}
	pthread_mutex_unlock(&c->out_lock);
	return (ssize_t)done;
}

/* ---- lifetime ---- */

int chardev_fd_new(struct evloop *loop, const struct chardev_fd_config *cfg,
		   struct chardev **out)
{
	struct chardev *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->in_fd = cfg->in_fd;
	c->out_fd = cfg->out_fd;
	c->own_in_fd = cfg->own_in_fd;
	c->own_out_fd = cfg->own_out_fd;
	c->on_close = cfg->on_close;
	c->close_opaque = cfg->close_opaque;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->out_lock, NULL);
	*out = c;
	return 0;
}

/* Call with the event loop stopped, or from the loop thread. */
void chardev_close(struct chardev *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	stop_input_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (c->own_in_fd && c->in_fd >= 0)
		close(c->in_fd);
	if (c->own_out_fd && c->out_fd >= 0 && !(c->own_in_fd && c->out_fd == c->in_fd))
		close(c->out_fd);
	if (c->on_close)
		c->on_close(c->close_opaque);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->out_lock);
	free(c);
}

/* ---- specs ---- */

static int parse_fd(const char *s, char **end)
{
	errno = 0;
	long v = strtol(s, end, 10);
	if (errno || *end == s || v < -1 || v > 1 << 20)
		return -2;
	return (int)v;
}

/* "fd=R,W": an already open pair of descriptors (-1 for none), for tests
 * and internal use. The caller keeps ownership; R is made non-blocking. */
static int chardev_fd_open_spec(const char *args, struct evloop *loop, struct chardev **out,
				char *err, size_t errlen)
{
	char *end;
	int in_fd = parse_fd(args, &end);
	int out_fd = -2;
	if (in_fd >= -1 && *end == ',')
		out_fd = parse_fd(end + 1, &end);
	if (in_fd < -1 || out_fd < -1 || *end) {
		snprintf(err, errlen, "bad fd backend '%s' (expected fd=R,W)", args);
		return -EINVAL;
	}
	if (in_fd >= 0) {
		int fl = fcntl(in_fd, F_GETFL);
		if (fl < 0 || fcntl(in_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			int e = errno;
			snprintf(err, errlen, "fd %d: %s", in_fd, strerror(e));
			return -e;
		}
	}
	if (out_fd >= 0 && fcntl(out_fd, F_GETFL) < 0) {
		int e = errno;
		snprintf(err, errlen, "fd %d: %s", out_fd, strerror(e));
		return -e;
	}
	struct chardev_fd_config cfg = { .in_fd = in_fd, .out_fd = out_fd };
	int r = chardev_fd_new(loop, &cfg, out);
	if (r < 0)
		snprintf(err, errlen, "%s", strerror(-r));
	return r;
}

static const struct {
	const char *name;
	bool listed; /* named in the "expected" list of the error message */
	int (*open)(const char *args, struct evloop *loop, struct chardev **out, char *err,
		    size_t errlen);
} backends[] = {
	{ "stdio", true, chardev_stdio_open },
	{ "fd", false, chardev_fd_open_spec },
};

int chardev_open(const char *spec, struct evloop *loop, struct chardev **out, char *err,
		 size_t errlen)
{
	if (errlen)
		err[0] = '\0';
	*out = NULL;
	if (!spec)
		spec = "";
	const char *eq = strchr(spec, '=');
	size_t nlen = eq ? (size_t)(eq - spec) : strlen(spec);
	const char *args = eq ? eq + 1 : "";
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (strlen(backends[i].name) == nlen && !strncmp(spec, backends[i].name, nlen))
			return backends[i].open(args, loop, out, err, errlen);
	}
	char expected[128] = "";
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (!backends[i].listed)
			continue;
		size_t l = strlen(expected);
		snprintf(expected + l, sizeof(expected) - l, "%s%s", l ? ", " : "",
			 backends[i].name);
	}
	snprintf(err, errlen, "unknown serial backend '%s' (expected %s)", spec, expected);
	return -EINVAL;
}
