/* libslirp on khyve's event loop (slirp.h). The loop is libslirp's "main
 * loop": after anything that may change its sockets (a frame in, a socket
 * event, a timer) slirp_pollfds_fill() says which descriptors it wants
 * and with which events; they go into a nested epoll descriptor that the
 * loop watches, and its timeout arms a loop timer. When either fires, one
 * poll(2) with timeout 0 collects the revents for slirp_pollfds_poll().
 * libslirp ≥ 4.7's timer_new_opaque timers are loop timers too. */
#include "backend/slirp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <dlfcn.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"

/* libslirp is opened when a VM first asks for it, not linked: with it
 * come GLib, PCRE2 and libm, over 1 MiB of every khyve's memory that a VM
 * without user networking never uses. */
static struct {
	__typeof__(slirp_new) *new_;
	__typeof__(slirp_cleanup) *cleanup;
	__typeof__(slirp_input) *input;
	__typeof__(slirp_pollfds_fill) *pollfds_fill;
	__typeof__(slirp_pollfds_poll) *pollfds_poll;
	__typeof__(slirp_add_hostfwd) *add_hostfwd;
	__typeof__(slirp_handle_timer) *handle_timer;
} lib;

static int load_libslirp(char *err, size_t errlen)
{
	static void *handle;
	if (handle)
		return 0;
	void *h = dlopen("libslirp.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "slirp: cannot load libslirp (Debian package libslirp0): %s",
			 dlerror());
		return -ENOENT;
	}
	struct {
		const char *name;
		void **slot;
	} syms[] = {
		{ "slirp_new", (void **)&lib.new_ },
		{ "slirp_cleanup", (void **)&lib.cleanup },
		{ "slirp_input", (void **)&lib.input },
		{ "slirp_pollfds_fill", (void **)&lib.pollfds_fill },
		{ "slirp_pollfds_poll", (void **)&lib.pollfds_poll },
		{ "slirp_add_hostfwd", (void **)&lib.add_hostfwd },
		{ "slirp_handle_timer", (void **)&lib.handle_timer },
	};
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		if (!(*syms[i].slot = dlsym(h, syms[i].name))) {
			snprintf(err, errlen, "slirp: libslirp lacks %s (version 4.7 or later needed)",
				 syms[i].name);
			dlclose(h);
			return -ENOENT;
		}
	}
	handle = h;
	return 0;
}

struct slirp_timer {
	struct slirp_be *s;
	struct evloop_timer *t;
	SlirpTimerId id;
	void *cb_opaque;
	SlirpTimerCb cb; /* the pre-4.7 kind */
};

struct pfd {
	int fd;
	uint32_t events; /* as in epoll now */
};

struct slirp_be {
	struct evloop *loop;
	Slirp *slirp;
	slirp_be_rx_fn rx;
	void *opaque;
	int epfd;
	struct evloop_source *ep_src;
	struct evloop_timer *poll_timer;
	/* what epfd watches, and this round's pollfds */
	struct pfd *cur;
	unsigned ncur, capcur;
	struct pollfd *pfds;
	unsigned npfds, cappfds;
	bool in_poll;
	bool dirty; /* frames went in since the last fill */
	bool rx_pending; /* frames went to rx since the last rx_done */
	uint64_t rx_frames;
	slirp_be_rx_done_fn rx_done;
	int64_t armed_ns; /* the poll timer's deadline, 0: not armed */
};

/* ---- hostfwd rules ---- */

struct fwd {
	bool udp;
	struct in_addr haddr, gaddr;
	int hport, gport;
};

static int parse_port(const char *s, size_t n, int *port)
{
	char buf[8];
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	char *end;
	long v = strtol(buf, &end, 10);
	if (*end || v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

static int parse_addr(const char *s, size_t n, struct in_addr *a, struct in_addr dflt)
{
	char buf[INET_ADDRSTRLEN];
	if (n == 0) {
		*a = dflt;
		return 0;
	}
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	return inet_pton(AF_INET, buf, a) == 1 ? 0 : -1;
}

static int parse_fwd(const char *rule, struct fwd *f)
{
	const char *p = rule;
	f->udp = false;
	if (!strncmp(p, "tcp:", 4)) {
		p += 4;
	} else if (!strncmp(p, "udp:", 4)) {
		f->udp = true;
		p += 4;
	} else if (*p == ':') {
		p++; /* protocol omitted: tcp */
	}
	const char *c1 = strchr(p, ':'), *dash = c1 ? strchr(c1, '-') : NULL;
	const char *c2 = dash ? strchr(dash, ':') : NULL;
	if (!c1 || !dash || !c2)
		return -1;
	struct in_addr any = { htonl(INADDR_ANY) }, guest;
	inet_pton(AF_INET, "10.0.2.15", &guest);
	if (parse_addr(p, (size_t)(c1 - p), &f->haddr, any) ||
	    parse_port(c1 + 1, (size_t)(dash - c1 - 1), &f->hport) ||
	    parse_addr(dash + 1, (size_t)(c2 - dash - 1), &f->gaddr, guest) ||
	    parse_port(c2 + 1, strlen(c2 + 1), &f->gport))
		return -1;
	return 0;
}

int slirp_be_check_hostfwd(const char *rule, char *err, size_t errlen)
{
	struct fwd f;
	if (parse_fwd(rule, &f)) {
		snprintf(err, errlen,
			 "hostfwd=%s: expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT",
			 rule);
		return -EINVAL;
	}
	return 0;
}

/* ---- the poll round ---- */

static void refill(struct slirp_be *s);

static int add_poll(int fd, int events, void *opaque)
{
	struct slirp_be *s = opaque;
	if (s->npfds == s->cappfds) {
		unsigned cap = s->cappfds ? 2 * s->cappfds : 16;
		struct pollfd *p = realloc(s->pfds, cap * sizeof(*p));
		if (!p)
			return -1; /* libslirp then gets no events for it this round */
		s->pfds = p;
		s->cappfds = cap;
	}
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	s->pfds[s->npfds] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)s->npfds++;
}

static int get_revents(int idx, void *opaque)
{
	struct slirp_be *s = opaque;
	if (idx < 0 || (unsigned)idx >= s->npfds)
		return 0;
	short r = s->pfds[idx].revents;
	int ev = 0;
	if (r & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (r & (POLLERR | POLLNVAL))
		ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

static void drop_cur(struct slirp_be *s, unsigned i)
{
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->cur[i].fd, NULL);
	s->cur[i] = s->cur[--s->ncur];
}

/* Make epfd watch exactly this round's pollfds. */
static void sync_epoll(struct slirp_be *s)
{
	/* Gone: not asked for this round. */
	for (unsigned i = 0; i < s->ncur;) {
		bool keep = false;
		for (unsigned k = 0; k < s->npfds && !keep; k++)
			keep = s->pfds[k].fd == s->cur[i].fd;
		if (keep)
			i++;
		else
			drop_cur(s, i);
	}
	for (unsigned k = 0; k < s->npfds; k++) {
		uint32_t ev = (uint32_t)s->pfds[k].events; /* POLLIN == EPOLLIN etc. */
		struct epoll_event e = { .events = ev, .data.fd = s->pfds[k].fd };
		unsigned i = 0;
		while (i < s->ncur && s->cur[i].fd != s->pfds[k].fd)
			i++;
		if (i < s->ncur) {
			if (s->cur[i].events == ev)
				continue;
			/* A closed descriptor left epoll by itself and its number
			 * may be a new socket's now: add it again. */
			if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, e.data.fd, &e) < 0 && errno == ENOENT)
				epoll_ctl(s->epfd, EPOLL_CTL_ADD, e.data.fd, &e);
			s->cur[i].events = ev;
			continue;
		}
		if (s->ncur == s->capcur) {
			unsigned cap = s->capcur ? 2 * s->capcur : 16;
			struct pfd *p = realloc(s->cur, cap * sizeof(*p));
			if (!p)
				continue;
			s->cur = p;
			s->capcur = cap;
		}
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, e.data.fd, &e) < 0 && errno == EEXIST)
			epoll_ctl(s->epfd, EPOLL_CTL_MOD, e.data.fd, &e);
		s->cur[s->ncur++] = (struct pfd){ e.data.fd, ev };
	}
}

static void refill(struct slirp_be *s)
{
	uint32_t timeout = 1000; /* ms; libslirp lowers it for its own timers */
	s->npfds = 0;
	s->dirty = false;
	lib.pollfds_fill(s->slirp, &timeout, add_poll, s);
	sync_epoll(s);
	/* An earlier deadline than needed only costs an early round: keep
	 * the armed one unless this one is sooner (a syscall less a round). */
	int64_t when = evloop_now_ns() + (int64_t)timeout * 1000000;
	if (!s->armed_ns || when < s->armed_ns) {
		evloop_timer_mod(s->poll_timer, when);
		s->armed_ns = when;
	}
}

static void rx_done(struct slirp_be *s)
{
	if (s->rx_pending && s->rx_done) {
		s->rx_pending = false;
		s->rx_done(s->opaque);
	}
}

/* One libslirp round; returns how many of its descriptors were ready. */
static int poll_once(struct slirp_be *s)
{
	int r = s->npfds ? poll(s->pfds, s->npfds, 0) : 0;
	lib.pollfds_poll(s->slirp, r < 0, get_revents, s);
	refill(s);
	return r;
}

/* libslirp reads one datagram (or one socket buffer) per socket per
 * round: while sockets stay ready and give frames, run further rounds at
 * once, up to a budget, and hand the guest what they made in one batch. */
#define SLIRP_ROUNDS 16

static void poll_round(struct slirp_be *s)
{
	if (s->in_poll)
		return;
	s->in_poll = true;
	/* Again only while a round gave the guest frames (a socket that
	 * just reports an error would make every round look busy). */
	for (int i = 0; i < SLIRP_ROUNDS; i++) {
		uint64_t before = s->rx_frames;
		if (poll_once(s) <= 0 || s->rx_frames == before)
			break;
	}
	s->in_poll = false;
	rx_done(s);
}

static void on_sockets(void *opaque, uint32_t events)
{
	(void)events;
	poll_round(opaque);
}

static void on_poll_timeout(void *opaque)
{
	struct slirp_be *s = opaque;
	s->armed_ns = 0;
	poll_round(s);
}

/* ---- libslirp's callbacks ---- */

static ssize_t cb_send(const void *buf, size_t len, void *opaque)
{
	struct slirp_be *s = opaque;
	s->rx(s->opaque, buf, len);
	s->rx_pending = true;
	s->rx_frames++;
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	log_guest("slirp: %s", msg);
}

static int64_t cb_clock(void *opaque)
{
	(void)opaque;
	return evloop_now_ns();
}

static void on_timer(void *opaque)
{
	struct slirp_timer *t = opaque;
	if (t->cb)
		t->cb(t->cb_opaque);
	else
		lib.handle_timer(t->s->slirp, t->id, t->cb_opaque);
	refill(t->s);
	rx_done(t->s);
}

static struct slirp_timer *timer_make(struct slirp_be *s)
{
	struct slirp_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->s = s;
	if (!(t->t = evloop_timer_new(s->loop, on_timer, t))) {
		free(t);
		return NULL;
	}
	return t;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_timer *t = timer_make(opaque);
	if (t) {
		t->cb = cb;
		t->cb_opaque = cb_opaque;
	}
	return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct slirp_timer *t = timer_make(opaque);
	if (t) {
		t->id = id;
		t->cb_opaque = cb_opaque;
	}
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	(void)opaque;
	struct slirp_timer *t = timer;
	if (!t)
		return;
	evloop_timer_free(t->t);
	free(t);
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	struct slirp_timer *t = timer;
	if (t)
		evloop_timer_mod(t->t, expire_ms < 0 ? 0 : expire_ms * 1000000);
}

static void cb_register_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque; /* the next fill reports it */
}

static void cb_unregister_fd(int fd, void *opaque)
{
	struct slirp_be *s = opaque;
	for (unsigned i = 0; i < s->ncur; i++)
		if (s->cur[i].fd == fd) {
			drop_cur(s, i);
			break;
		}
}

static void cb_notify(void *opaque)
{
	struct slirp_be *s = opaque;
	evloop_timer_mod(s->poll_timer, 0); /* a round soon, on the loop */
	s->armed_ns = 1;
}

static const SlirpCb callbacks = {
	.send_packet = cb_send,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_fd,
	.unregister_poll_fd = cb_unregister_fd,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

/* ---- life ---- */

int slirp_be_open(struct evloop *loop, const char *const *hostfwd, unsigned nhostfwd,
		  bool restricted, slirp_be_rx_fn rx, slirp_be_rx_done_fn done, void *opaque,
		  struct slirp_be **out, char *err, size_t errlen)
{
	int lr = load_libslirp(err, errlen);
	if (lr)
		return lr;
	struct slirp_be *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->rx = rx;
	s->rx_done = done;
	s->opaque = opaque;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	int r = -errno;
	if (s->epfd < 0) {
		snprintf(err, errlen, "slirp: epoll: %s", strerror(-r));
		free(s);
		return r;
	}
	SlirpConfig cfg = {
		.version = 4,
		.restricted = restricted,
		.in_enabled = true,
		.vhostname = "khyve",
		.if_mtu = 1500,
		.if_mru = 1500,
		.enable_emu = false,
	};
	inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
	inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
	inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
	inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
	inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
	if (!(s->poll_timer = evloop_timer_new(loop, on_poll_timeout, s)) ||
	    !(s->ep_src = evloop_add(loop, s->epfd, EPOLLIN, on_sockets, s))) {
		r = -errno;
		snprintf(err, errlen, "slirp: event loop: %s", strerror(-r));
		goto fail;
	}
	if (!(s->slirp = lib.new_(&cfg, &callbacks, s))) {
		r = -ENOMEM;
		snprintf(err, errlen, "slirp: cannot start libslirp");
		goto fail;
	}
	for (unsigned i = 0; i < nhostfwd; i++) {
		struct fwd f;
		if (parse_fwd(hostfwd[i], &f)) {
			r = slirp_be_check_hostfwd(hostfwd[i], err, errlen);
			goto fail;
		}
		if (lib.add_hostfwd(s->slirp, f.udp, f.haddr, f.hport, f.gaddr, f.gport) < 0) {
			r = -EADDRINUSE;
			snprintf(err, errlen, "slirp: hostfwd=%s: cannot listen on port %d", hostfwd[i],
				 f.hport);
			goto fail;
		}
	}
	refill(s);
	*out = s;
	return 0;
fail:
	slirp_be_close(s);
	return r;
}

int slirp_be_input(struct slirp_be *s, const uint8_t *frame, size_t len)
{
	if (len < 14 || len > SLIRP_BE_FRAME_MAX)
		return -EINVAL;
	lib.input(s->slirp, frame, (int)len);
	s->dirty = true;
	return 0;
}

void slirp_be_flush(struct slirp_be *s)
{
	if (s->dirty && !s->in_poll)
		refill(s);
	s->dirty = false;
	if (!s->in_poll)
		rx_done(s);
}

void slirp_be_close(struct slirp_be *s)
{
	if (!s)
		return;
	if (s->slirp)
		lib.cleanup(s->slirp); /* frees its timers through cb_timer_free */
	if (s->ep_src)
		evloop_remove(s->loop, s->ep_src);
	evloop_timer_free(s->poll_timer);
	if (s->epfd >= 0)
		close(s->epfd);
	free(s->cur);
	free(s->pfds);
	free(s);
}
