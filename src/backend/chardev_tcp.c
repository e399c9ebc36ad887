/* The tcp backend: "tcp=127.0.0.1:4444" listens there; one client
 * at a time is the other end of the serial line (a terminal through
 * `nc`, `socat`, or gdb's `target remote host:port` for kgdb). While no
 * client is connected, the guest's output is dropped. A second client is
 * told the port is busy and disconnected; when the client leaves, the
 * next one may connect. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

struct tcp_port {
	struct evloop *loop;
	struct chardev *chr;
	int listen_fd;
	struct evloop_source *listen_src;
	bool connected;
	char where[80];
};

static void on_accept(void *opaque, uint32_t events)
{
	struct tcp_port *t = opaque;
	(void)events;
	int fd = accept4(t->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (t->connected) {
		static const char busy[] = "khyve: this serial port already has a client\r\n";
		ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
		close(fd);
		log_info("serial port %s: refused a second client", t->where);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t->connected = true;
	chardev_fd_replace(t->chr, fd, fd, true);
}

/* The client hung up: wait for the next. */
static void on_input_end(void *opaque)
{
	struct tcp_port *t = opaque;
	chardev_fd_replace(t->chr, -1, -1, false);
	t->connected = false;
}

static void tcp_closed(void *opaque)
{
	struct tcp_port *t = opaque;
	evloop_remove(t->loop, t->listen_src);
	close(t->listen_fd);
	free(t);
}

int chardev_tcp_open(const char *args, struct evloop *loop, struct chardev **out, char *err,
		     size_t errlen)
{
	struct tcp_port *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	char why[200];
	t->loop = loop;
	t->listen_fd = tcp_listen_spec(args, t->where, sizeof(t->where), why, sizeof(why));
	if (t->listen_fd < 0) {
		int r = t->listen_fd;
		snprintf(err, errlen, "tcp=%s", why);
		free(t);
		return r;
	}
	if (loop)
		t->listen_src = evloop_add(loop, t->listen_fd, EPOLLIN, on_accept, t);
	if (!loop || !t->listen_src) {
		snprintf(err, errlen, "tcp=%s: cannot watch the socket", args);
		close(t->listen_fd);
		free(t);
		return -EIO;
	}
	struct chardev_fd_config cfg = {
		.in_fd = -1, .out_fd = -1,
		.on_close = tcp_closed, .on_input_end = on_input_end, .close_opaque = t,
	};
	int r = chardev_fd_new(loop, &cfg, &t->chr);
	if (r) {
		tcp_closed(t);
		snprintf(err, errlen, "%s", strerror(-r));
		return r;
	}
	*out = t->chr;
	char where[96];
	snprintf(where, sizeof(where), "tcp:%s", t->where);
	chardev_set_where(t->chr, where);
	log_info("serial port listening on %s", t->where);
	return 0;
}
