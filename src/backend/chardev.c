/* Character backends: the spec dispatcher and the fd-backed core.
 *
 * Input: the fd is watched on the event loop (level-triggered EPOLLIN)
 * once a receiver is set. Each wakeup asks the receiver how much it can
 * take and reads at most that. When it can take nothing, input is paused
 * (the source is switched to edge-triggered with no EPOLLIN, so a hangup
 * while paused wakes the loop once rather than spinning) until
 * chardev_resume_input(). EOF or a read error ends input (for good, unless
 * the backend supplies new fds, as the TCP backend does for its next
 * client); it never ends the VM.
 *
 * Output goes to the out fd (if any) and, with a log, to the log file too.
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
#include "backend/listen.h"
#include "util/evloop.h"
#include "util/log.h"

/* How long one chardev_write may wait for a full non-blocking output
 * before it starts dropping bytes. */
#define CHARDEV_WRITE_WAIT_MS 100

struct chardev {
	struct evloop *loop;
	int in_fd, out_fd;
	bool own_in_fd, own_out_fd;
	void (*before_close)(void *opaque);
	void (*on_close)(void *opaque);
	void (*on_input_end)(void *opaque);
	void *close_opaque;

	pthread_mutex_t lock; /* the input side */
	struct chardev_receiver rx;
	bool have_rx;
	struct evloop_source *src;
	bool input_done; /* EOF, error, or an fd that cannot be polled */
	bool paused;
	bool in_not_socket;       /* recv(MSG_DONTWAIT) failed with ENOTSOCK */
	unsigned long resume_gen; /* bumped by every chardev_resume_input */

	pthread_mutex_t out_lock; /* the output side */
	bool congested;           /* output was full: drop instead of waiting */
	bool out_not_socket;      /* send(MSG_NOSIGNAL) failed with ENOTSOCK */
	int log_fd;               /* a copy of all output; -1: none */
	bool log_failed;
	char where[128];          /* chardev_where */
};

const char *chardev_where(const struct chardev *chr)
{
	return chr->where;
}

void chardev_set_where(struct chardev *chr, const char *where)
{
	snprintf(chr->where, sizeof(chr->where), "%s", where);
}

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
	ssize_t n = -1;
	errno = ENOTSOCK;
	/* A socket is read without blocking whatever its flags (an fd= socket
	 * keeps the ones it came with); anything else is non-blocking. */
	if (!c->in_not_socket)
		n = recv(c->in_fd, buf, want, MSG_DONTWAIT);
	if (n < 0 && errno == ENOTSOCK) {
		c->in_not_socket = true;
		n = read(c->in_fd, buf, want);
	}
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
	if (c->on_input_end)
		c->on_input_end(c->close_opaque);
}

/* Start watching in_fd if there is a receiver and nothing stops it. */
static void watch_input_locked(struct chardev *c)
{
	if (c->have_rx && c->in_fd >= 0 && c->loop && !c->src && !c->input_done) {
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
	watch_input_locked(c);
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

/* The log is a regular file: plain blocking writes. */
static void log_output_locked(struct chardev *c, const uint8_t *p, size_t len)
{
	while (len && !c->log_failed) {
		ssize_t n = write(c->log_fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("serial log: %s; logging stops", n < 0 ? strerror(errno) : "short write");
			c->log_failed = true;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
}

ssize_t chardev_write(struct chardev *c, const void *buf, size_t len)
{
	if (!c)
		return (ssize_t)len; /* dropped */
	const uint8_t *p = buf;
	size_t done = 0;
	pthread_mutex_lock(&c->out_lock);
	if (c->log_fd >= 0)
		log_output_locked(c, p, len);
	if (c->out_fd < 0) {
		pthread_mutex_unlock(&c->out_lock);
		return (ssize_t)len; /* dropped */
	}
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
	c->before_close = cfg->before_close;
	c->on_close = cfg->on_close;
	c->on_input_end = cfg->on_input_end;
	c->close_opaque = cfg->close_opaque;
	c->log_fd = -1;
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
	if (c->before_close)
		c->before_close(c->close_opaque);
	if (c->own_in_fd && c->in_fd >= 0)
		close(c->in_fd);
	if (c->own_out_fd && c->out_fd >= 0 && !(c->own_in_fd && c->out_fd == c->in_fd))
		close(c->out_fd);
	if (c->log_fd >= 0)
		close(c->log_fd);
	if (c->on_close)
		c->on_close(c->close_opaque);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->out_lock);
	free(c);
}

void chardev_fd_replace(struct chardev *c, int in_fd, int out_fd, bool own)
{
	pthread_mutex_lock(&c->lock);
	stop_input_locked(c);
	int old_in = c->own_in_fd ? c->in_fd : -1;
	c->in_fd = in_fd;
	c->own_in_fd = own && in_fd >= 0;
	c->input_done = false;
	pthread_mutex_lock(&c->out_lock);
	int old_out = c->own_out_fd ? c->out_fd : -1;
	c->out_fd = out_fd;
	c->own_out_fd = own && out_fd >= 0;
	c->congested = false;
	c->out_not_socket = false;
	pthread_mutex_unlock(&c->out_lock);
	watch_input_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (old_in >= 0)
		close(old_in);
	if (old_out >= 0 && old_out != old_in)
		close(old_out);
}

void chardev_set_log(struct chardev *c, int log_fd)
{
	pthread_mutex_lock(&c->out_lock);
	if (c->log_fd >= 0)
		close(c->log_fd);
	c->log_fd = log_fd;
	c->log_failed = false;
	pthread_mutex_unlock(&c->out_lock);
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

/* "fd=R,W" (-1 for none): descriptors khyve inherited, for tests and for
 * programs that start khyve with a pipe or socket pair. Their flags are
 * left alone: O_NONBLOCK belongs to the open file description, which the
 * process that passed them shares, and setting it there would make that
 * process's own reads and writes fail with EAGAIN (and stay set after
 * khyve exits). Input still never blocks the event loop: a socket is read
 * with MSG_DONTWAIT; a pipe, FIFO or terminal that is not already
 * non-blocking is reopened through /proc/self/fd as a new, non-blocking
 * description of the same file, which khyve owns. Output may block, as a
 * slow reader of stdout does, for at most one chardev_write. */
static int parse_fd_pair(const char *args, int *in_fd, int *out_fd, char *err, size_t errlen)
{
	char *end;
	*in_fd = parse_fd(args, &end);
	*out_fd = -2;
	if (*in_fd >= -1 && *end == ',')
		*out_fd = parse_fd(end + 1, &end);
	if (*in_fd < -1 || *out_fd < -1 || *end) {
		snprintf(err, errlen, "bad fd backend '%s' (expected fd=R,W)", args);
		return -EINVAL;
	}
	return 0;
}

static bool is_socket(int fd)
{
	int type;
	socklen_t len = sizeof(type);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

static int chardev_fd_open_spec(const char *args, struct evloop *loop, struct chardev **out,
				char *err, size_t errlen)
{
	int in_fd, out_fd;
	int r = parse_fd_pair(args, &in_fd, &out_fd, err, errlen);
	if (r)
		return r;
	int fl = in_fd >= 0 ? fcntl(in_fd, F_GETFL) : 0;
	if (fl < 0 || (out_fd >= 0 && fcntl(out_fd, F_GETFL) < 0)) {
		int e = errno;
		snprintf(err, errlen, "fd %d: %s", fl < 0 ? in_fd : out_fd, strerror(e));
		return -e;
	}
	bool own_in = false;
	if (in_fd >= 0 && !(fl & O_NONBLOCK) && !is_socket(in_fd)) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", in_fd);
		int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			int e = errno;
			snprintf(err, errlen, "fd %d: cannot read it without blocking: %s", in_fd,
				 strerror(e));
			return -e;
		}
		in_fd = fd;
		own_in = true;
	}
	struct chardev_fd_config cfg = { .in_fd = in_fd, .out_fd = out_fd, .own_in_fd = own_in };
	r = chardev_fd_new(loop, &cfg, out);
	if (r < 0) {
		if (own_in)
			close(in_fd);
		snprintf(err, errlen, "%s", strerror(-r));
	}
	return r;
}

static const struct {
	const char *name;
	int (*open)(const char *args, struct evloop *loop, struct chardev **out, char *err,
		    size_t errlen);
} backends[] = {
	{ "stdio", chardev_stdio_open },
	{ "tcp", chardev_tcp_open },
	{ "pty", chardev_pty_open }, /* pty=PATH: PATH need not contain a '/' */
	{ "fd", chardev_fd_open_spec }, /* inherited descriptors: khyve(8) */
};

#define EXPECTED_BACKENDS "stdio, a path for a pty, tcp=[ADDRESS:]PORT, log=FILE"

/* "log=FILE": created (mode 0644 less the umask) or truncated. */
static int open_log(const char *path, int *fd, char *err, size_t errlen)
{
	if (!*path) {
		snprintf(err, errlen, "log=: missing the file name");
		return -EINVAL;
	}
	*fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
	if (*fd < 0) {
		int e = errno;
		snprintf(err, errlen, "log=%s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

static int open_backend(const char *spec, size_t speclen, struct evloop *loop,
			struct chardev **out, char *err, size_t errlen)
{
	char *copy = strndup(spec, speclen);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = -EINVAL;
	char *eq = strchr(copy, '=');
	size_t nlen = eq ? (size_t)(eq - copy) : strlen(copy);
	const char *args = eq ? eq + 1 : "";
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (strlen(backends[i].name) == nlen && !strncmp(copy, backends[i].name, nlen)) {
			r = backends[i].open(args, loop, out, err, errlen);
			goto done;
		}
	}
	/* bhyve names a device node (/dev/nmdm0A); here any path is where
	 * the symlink to a new pty goes. */
	if (strchr(copy, '/')) {
		r = chardev_pty_open(copy, loop, out, err, errlen);
		goto done;
	}
	snprintf(err, errlen, "unknown serial backend '%s' (expected %s)", copy,
		 EXPECTED_BACKENDS);
done:
	free(copy);
	return r;
}

/* spec: BACKEND, BACKEND,log=FILE or log=FILE (output only). FILE is the
 * rest of the spec, commas and all. Returns FILE (or NULL) and sets
 * *backend_len to the length of BACKEND (0 when there is none). */
static const char *split_log(const char *spec, size_t *backend_len)
{
	*backend_len = strlen(spec);
	if (!strncmp(spec, "log=", 4)) {
		*backend_len = 0;
		return spec + 4;
	}
	const char *l = strstr(spec, ",log=");
	if (!l)
		return NULL;
	*backend_len = (size_t)(l - spec);
	return l + 5;
}

int chardev_open(const char *spec, struct evloop *loop, struct chardev **out, char *err,
		 size_t errlen)
{
	*out = NULL;
	int r = chardev_check_spec(spec, err, errlen);
	if (r)
		return r;
	if (!spec)
		spec = "";
	size_t speclen;
	const char *log_path = split_log(spec, &speclen);
	int log_fd = -1;
	if (log_path && (r = open_log(log_path, &log_fd, err, errlen)))
		return r;
	if (speclen) {
		r = open_backend(spec, speclen, loop, out, err, errlen);
	} else {
		struct chardev_fd_config cfg = { .in_fd = -1, .out_fd = -1 };
		r = chardev_fd_new(loop, &cfg, out);
		if (r)
			snprintf(err, errlen, "%s", strerror(-r));
	}
	if (r) {
		if (log_fd >= 0)
			close(log_fd);
		return r;
	}
	if (log_fd >= 0)
		chardev_set_log(*out, log_fd);
	return 0;
}

int chardev_check_spec(const char *spec, char *err, size_t errlen)
{
	if (errlen)
		err[0] = '\0';
	if (!spec)
		spec = "";
	size_t speclen;
	const char *log_path = split_log(spec, &speclen);
	if (!speclen && !log_path) {
		snprintf(err, errlen, "missing the serial backend (expected %s)", EXPECTED_BACKENDS);
		return -EINVAL;
	}
	if (log_path && !*log_path) {
		snprintf(err, errlen, "log=: missing the file name");
		return -EINVAL;
	}
	if (!speclen)
		return 0;
	char *copy = strndup(spec, speclen);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = 0;
	bool has_slash = strchr(copy, '/') != NULL;
	char *eq = strchr(copy, '=');
	const char *args = eq ? eq + 1 : "";
	if (eq)
		*eq = '\0';
	int in_fd, out_fd;
	if (!strcmp(copy, "stdio")) {
		if (*args) {
			snprintf(err, errlen, "the stdio backend takes no options ('%s')", args);
			r = -EINVAL;
		}
	} else if (!strcmp(copy, "tcp")) {
		char why[200];
		if ((r = tcp_check_spec(args, why, sizeof(why))))
			snprintf(err, errlen, "tcp=%s", why);
	} else if (!strcmp(copy, "pty")) {
		if (!*args) {
			snprintf(err, errlen, "pty=: missing the path of the link");
			r = -EINVAL;
		}
	} else if (!strcmp(copy, "fd")) {
		r = parse_fd_pair(args, &in_fd, &out_fd, err, errlen);
	} else if (has_slash) {
		r = 0; /* a path for a pty link */
	} else {
		if (eq)
			*eq = '=';
		snprintf(err, errlen, "unknown serial backend '%s' (expected %s)", copy,
			 EXPECTED_BACKENDS);
		r = -EINVAL;
	}
	free(copy);
	return r;
}
