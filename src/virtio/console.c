/* virtio-console (5.3) with multiple ports.
 *
 * conf: [@]NAME=BACKEND[,[@]NAME=BACKEND]... (up to 16 ports), as bhyve's
 * port1=/path/to/port1.sock. Each port is named NAME in the guest
 * (/sys/class/virtio-ports/vportNpM/name); '@' makes it a console port
 * (hvc0, hvc1, ...). BACKEND is
 *   stdio            khyve's terminal (one user per process)
 *   pty=PATH         a new pty, symlinked at PATH
 *   tcp=[ADDR:]PORT  a TCP listener (one client at a time)
 *   fd=R:W           descriptors khyve inherited (-1 for none), as -l's
 *                    fd=R,W; ':' since ',' separates ports (khyve-run's
 *                    channel to its guest init)
 *   PATH             a UNIX socket khyve listens on, as bhyve does (one
 *                    client at a time; the port is "open" for the guest
 *                    while a client is connected)
 * Everything runs on the event loop: kicks, backend input, the control
 * queues, each kick served within one budget (vdev_work.h); output goes
 * to the backend outside the device lock. Bytes from the guest while
 * nobody listens are dropped.
 *
 * A socket port's conn_fd is written only on the event loop and under
 * out_lock, and read under out_lock (port_output, which a vCPU reaches
 * through emerg_wr) or on the loop: a vCPU never sends to a descriptor
 * that was closed (and maybe reused) under it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend/chardev.h"
#include "pci/slots.h"
#include "util/evloop.h"
#include "util/exitclean.h"
#include "util/log.h"
#include "virtio/vdev_work.h"
#include "virtio/virtio_pci.h"

#define CON_MAX_PORTS 16
#define CON_QUEUE_SIZE 64
#define CON_CHAIN_MAX 16
#define CON_CFG_SIZE 12
#define CON_CTRL_PENDING 128

#define VIRTIO_CONSOLE_F_SIZE 0
#define VIRTIO_CONSOLE_F_MULTIPORT 1
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2

#define CTRL_DEVICE_READY 0
#define CTRL_DEVICE_ADD 1
#define CTRL_PORT_READY 3
#define CTRL_CONSOLE_PORT 4
#define CTRL_RESIZE 5
#define CTRL_PORT_OPEN 6
#define CTRL_PORT_NAME 7

#define Q_CTRL_RX 2 /* device to driver */
#define Q_CTRL_TX 3 /* driver to device */

struct con_port_cfg {
	char *name;
	char *backend;
	bool console;
};

struct con_settings {
	unsigned n;
	struct con_port_cfg port[CON_MAX_PORTS];
	char *buf;
};

struct console;

struct con_port {
	struct console *c;
	unsigned id;
	const struct con_port_cfg *cfg;
	struct chardev *chr; /* stdio, pty, tcp */
	/* a UNIX socket */
	char *sock_path;
	int sock_guard; /* util/exitclean.h: removed however khyve ends */
	int listen_fd, conn_fd;
	struct evloop_source *listen_src, *conn_src;
	bool host_connected;
	bool rx_paused;
	/* A receive buffer taken from the guest, not yet filled. */
	bool held;
	uint32_t held_gen;
	struct vq_chain hc;
	struct iovec hiov[CON_CHAIN_MAX];
};

struct con_msg {
	uint32_t id;
	uint16_t event, value;
	const char *name; /* PORT_NAME */
};

struct console {
	struct virtio_dev *v;
	struct platform *p;
	struct con_settings s;
	unsigned nports;
	struct con_port port[CON_MAX_PORTS];
	uint8_t cfg[CON_CFG_SIZE];
	/* control messages waiting for a buffer on the control receive queue */
	struct con_msg pending[CON_CTRL_PENDING];
	unsigned npending;
	struct iovec tx_iov[CON_CHAIN_MAX]; /* the loop's, for vdev_serve */
	pthread_mutex_t out_lock;           /* socket ports' conn_fd and output */
};

static unsigned rxq_of(unsigned port) { return port == 0 ? 0 : 2 + 2 * port; }
static unsigned txq_of(unsigned port) { return rxq_of(port) + 1; }

static bool multiport(struct console *c)
{
	return virtio_has_feature(c->v, VIRTIO_CONSOLE_F_MULTIPORT);
}

/* Which port a queue belongs to; -1 for the control queues. */
static int port_of_queue(unsigned q)
{
	if (q < 2)
		return 0;
	if (q < 4)
		return -1;
	return (int)(q - 2) / 2;
}

/* ---- control messages (vdev->lock held) ---- */

static void flush_ctrl(struct console *c)
{
	struct virtio_dev *v = c->v;
	struct virtqueue *vq = virtio_queue(v, Q_CTRL_RX);
	bool pushed = false;
	unsigned done = 0;
	while (vq && done < c->npending) {
		struct iovec iov[CON_CHAIN_MAX];
		struct vq_chain ch = { .cap = CON_CHAIN_MAX, .iov = iov };
		int got = vq_pop(vq, &ch);
		if (got < 0) {
			virtio_queue_broken(v, Q_CTRL_RX);
			break;
		}
		if (got == 0)
			break;
		const struct con_msg *m = &c->pending[done++];
		uint8_t msg[8 + 64];
		size_t len = 8;
		memcpy(msg, &m->id, 4);
		memcpy(msg + 4, &m->event, 2);
		memcpy(msg + 6, &m->value, 2);
		if (m->name) {
			size_t nl = strlen(m->name);
			memcpy(msg + 8, m->name, nl);
			len += nl;
		}
		size_t w = vq_chain_write(&ch, 0, msg, len);
		vq_push(vq, ch.head, (uint32_t)w);
		pushed = true;
	}
	memmove(c->pending, c->pending + done, (c->npending - done) * sizeof(c->pending[0]));
	c->npending -= done;
	if (pushed)
		virtio_queue_notify_guest(v, Q_CTRL_RX);
}

static void send_ctrl(struct console *c, uint32_t id, uint16_t event, uint16_t value,
		      const char *name)
{
	if (c->npending == CON_CTRL_PENDING) {
		log_guest("virtio-console: the driver does not read its control queue");
		return;
	}
	c->pending[c->npending++] = (struct con_msg){ id, event, value, name };
	flush_ctrl(c);
}

static void announce_open(struct con_port *pt)
{
	struct console *c = pt->c;
	if (multiport(c) && (c->v->status & VIRTIO_STATUS_DRIVER_OK))
		send_ctrl(c, pt->id, CTRL_PORT_OPEN, pt->host_connected, NULL);
}

static void handle_ctrl_msg(struct console *c, uint32_t id, uint16_t event, uint16_t value)
{
	switch (event) {
	case CTRL_DEVICE_READY:
		if (value != 1)
			break;
		for (unsigned i = 0; i < c->nports; i++)
			send_ctrl(c, i, CTRL_DEVICE_ADD, 0, NULL);
		break;
	case CTRL_PORT_READY:
		if (id >= c->nports || value != 1)
			break;
		if (c->port[id].cfg->console)
			send_ctrl(c, id, CTRL_CONSOLE_PORT, 1, NULL);
		send_ctrl(c, id, CTRL_PORT_NAME, 0, c->port[id].cfg->name);
		send_ctrl(c, id, CTRL_PORT_OPEN, c->port[id].host_connected, NULL);
		break;
	case CTRL_PORT_OPEN:
		/* the guest opened or closed the port: nothing to do on our side */
		break;
	default:
		break;
	}
}

static uint32_t ctrl_tx_work(struct virtio_dev *v, unsigned q, struct vq_chain *ch, void *opaque)
{
	(void)q;
	struct console *c = opaque;
	uint8_t msg[8];
	if (vq_chain_read(ch, 0, msg, 8) == 8) {
		uint32_t id;
		uint16_t event, value;
		memcpy(&id, msg, 4);
		memcpy(&event, msg + 4, 2);
		memcpy(&value, msg + 6, 2);
		/* Answers go to the control receive queue, under the lock. */
		pthread_mutex_lock(&v->lock);
		handle_ctrl_msg(c, id, event, value);
		pthread_mutex_unlock(&v->lock);
	}
	return 0;
}

/* ---- data from the guest ---- */

/* Any thread; takes out_lock (after vdev->lock when a vCPU holds it). */
static void port_output(struct con_port *pt, const struct vq_chain *ch)
{
	struct console *c = pt->c;
	pthread_mutex_lock(&c->out_lock);
	for (unsigned i = 0; i < ch->nout; i++) {
		const struct iovec *io = &ch->iov[i];
		if (pt->chr) {
			chardev_write(pt->chr, io->iov_base, io->iov_len);
		} else if (pt->conn_fd >= 0) {
			size_t off = 0;
			while (off < io->iov_len) {
				ssize_t w = send(pt->conn_fd, (uint8_t *)io->iov_base + off,
						 io->iov_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
				if (w <= 0)
					break; /* a client that does not read loses bytes */
				off += (size_t)w;
			}
		}
	}
	pthread_mutex_unlock(&c->out_lock);
}

static uint32_t tx_work(struct virtio_dev *v, unsigned q, struct vq_chain *ch, void *opaque)
{
	(void)v;
	struct console *c = opaque;
	int port = port_of_queue(q);
	if (port >= 0 && (unsigned)port < c->nports)
		port_output(&c->port[port], ch);
	return 0;
}

/* ---- data to the guest ---- */

/* Take a receive buffer for the port if there is none held. vdev->lock held. */
static bool hold_buffer(struct con_port *pt)
{
	struct virtio_dev *v = pt->c->v;
	if (pt->held && pt->held_gen == v->reset_gen)
		return true;
	pt->held = false;
	if (pt->id > 0 && !multiport(pt->c))
		return false;
	unsigned q = rxq_of(pt->id);
	struct virtqueue *vq = virtio_queue(v, q);
	if (!vq)
		return false;
	pt->hc = (struct vq_chain){ .cap = CON_CHAIN_MAX, .iov = pt->hiov };
	int got = vq_pop(vq, &pt->hc);
	if (got < 0)
		virtio_queue_broken(v, q);
	if (got <= 0 || pt->hc.in_len == 0) {
		if (got > 0)
			vq_push(vq, pt->hc.head, 0);
		return false;
	}
	pt->held = true;
	pt->held_gen = v->reset_gen;
	return true;
}

static void give_buffer(struct con_port *pt, uint32_t len)
{
	struct virtio_dev *v = pt->c->v;
	unsigned q = rxq_of(pt->id);
	struct virtqueue *vq = virtio_queue(v, q);
	if (vq && pt->held_gen == v->reset_gen) {
		vq_push(vq, pt->hc.head, len);
		virtio_queue_notify_guest(v, q);
	}
	pt->held = false;
}

static size_t chr_can_receive(void *opaque)
{
	struct con_port *pt = opaque;
	struct virtio_dev *v = pt->c->v;
	pthread_mutex_lock(&v->lock);
	size_t room = hold_buffer(pt) ? pt->hc.in_len : 0;
	if (!room)
		pt->rx_paused = true;
	pthread_mutex_unlock(&v->lock);
	return room;
}

static void chr_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct con_port *pt = opaque;
	struct virtio_dev *v = pt->c->v;
	pthread_mutex_lock(&v->lock);
	if (hold_buffer(pt)) {
		size_t w = vq_chain_write(&pt->hc, 0, buf, len);
		give_buffer(pt, (uint32_t)w);
	}
	pthread_mutex_unlock(&v->lock);
}

static void conn_watch(struct con_port *pt, bool on)
{
	if (pt->conn_src)
		evloop_modify(pt->c->p->loop, pt->conn_src, on ? EPOLLIN : 0);
	pt->rx_paused = !on;
}

static void conn_close(struct con_port *pt)
{
	if (pt->conn_src)
		evloop_remove(pt->c->p->loop, pt->conn_src);
	pt->conn_src = NULL;
	/* Out of port_output's reach before the number can be reused. */
	pthread_mutex_lock(&pt->c->out_lock);
	int fd = pt->conn_fd;
	pt->conn_fd = -1;
	pthread_mutex_unlock(&pt->c->out_lock);
	if (fd >= 0)
		close(fd);
	pthread_mutex_lock(&pt->c->v->lock);
	pt->host_connected = false;
	announce_open(pt);
	pthread_mutex_unlock(&pt->c->v->lock);
}

static void on_conn(void *opaque, uint32_t events)
{
	struct con_port *pt = opaque;
	struct virtio_dev *v = pt->c->v;
	if (!(events & EPOLLIN) && (events & (EPOLLHUP | EPOLLERR))) {
		conn_close(pt);
		return;
	}
	pthread_mutex_lock(&v->lock);
	if (!hold_buffer(pt)) {
		pthread_mutex_unlock(&v->lock);
		conn_watch(pt, false); /* until the guest gives buffers */
		return;
	}
	/* Straight into the guest's buffer. */
	ssize_t r = readv(pt->conn_fd, pt->hc.iov + pt->hc.nout, (int)pt->hc.nin);
	if (r > 0)
		give_buffer(pt, (uint32_t)r);
	pthread_mutex_unlock(&v->lock);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		conn_close(pt);
}

static void on_listen(void *opaque, uint32_t events)
{
	(void)events;
	struct con_port *pt = opaque;
	int fd = accept4(pt->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (pt->conn_fd >= 0) { /* one client at a time, as bhyve */
		close(fd);
		return;
	}
	pt->conn_src = evloop_add(pt->c->p->loop, fd, EPOLLIN, on_conn, pt);
	if (!pt->conn_src) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&pt->c->out_lock);
	pt->conn_fd = fd;
	pthread_mutex_unlock(&pt->c->out_lock);
	pthread_mutex_lock(&pt->c->v->lock);
	pt->host_connected = true;
	announce_open(pt);
	pthread_mutex_unlock(&pt->c->v->lock);
}

/* ---- transport hooks ---- */

static void con_notify(struct virtio_dev *v, unsigned q)
{
	struct console *c = v->opaque;
	int port = port_of_queue(q);
	if (q == Q_CTRL_RX) {
		pthread_mutex_lock(&v->lock);
		flush_ctrl(c); /* at most CON_CTRL_PENDING messages */
		pthread_mutex_unlock(&v->lock);
	} else if (q == Q_CTRL_TX) {
		vdev_serve(v, q, c->tx_iov, CON_CHAIN_MAX, ctrl_tx_work, c);
	} else if (port >= 0 && (unsigned)port < c->nports) {
		struct con_port *pt = &c->port[port];
		if (q == txq_of((unsigned)port)) {
			vdev_serve(v, q, c->tx_iov, CON_CHAIN_MAX, tx_work, c);
			return;
		}
		pthread_mutex_lock(&v->lock);
		bool resume = pt->rx_paused;
		pt->rx_paused = false;
		pthread_mutex_unlock(&v->lock);
		if (resume) { /* buffers arrived: let input flow again */
			if (pt->chr)
				chardev_resume_input(pt->chr);
			else if (pt->conn_fd >= 0)
				conn_watch(pt, true);
		}
	}
}

static void con_cfg_read(struct virtio_dev *v, unsigned off, void *buf, unsigned len)
{
	struct console *c = v->opaque;
	memcpy(buf, c->cfg + off, len);
}

static void con_cfg_write(struct virtio_dev *v, unsigned off, const void *buf, unsigned len)
{
	struct console *c = v->opaque;
	/* emerg_wr: one character for port 0, even before the queues work */
	if (off == 8 && len >= 1 && virtio_has_feature(v, VIRTIO_CONSOLE_F_EMERG_WRITE) && c->nports) {
		struct con_port *pt = &c->port[0];
		struct iovec io = { (void *)buf, 1 };
		struct vq_chain ch = { .nout = 1, .iov = &io };
		port_output(pt, &ch);
	}
}

static void con_reset(struct virtio_dev *v)
{
	struct console *c = v->opaque;
	c->npending = 0;
	for (unsigned i = 0; i < c->nports; i++)
		c->port[i].held = false;
}

static void con_destroy(struct virtio_dev *v)
{
	struct console *c = v->opaque;
	for (unsigned i = 0; i < c->nports; i++) {
		struct con_port *pt = &c->port[i];
		if (pt->chr)
			chardev_close(pt->chr);
		if (pt->conn_src)
			evloop_remove(c->p->loop, pt->conn_src);
		if (pt->listen_src)
			evloop_remove(c->p->loop, pt->listen_src);
		if (pt->conn_fd >= 0)
			close(pt->conn_fd);
		if (pt->listen_fd >= 0)
			close(pt->listen_fd);
		if (pt->sock_path) {
			unlink(pt->sock_path);
			exitclean_forget(pt->sock_guard);
			free(pt->sock_path);
		}
	}
	pthread_mutex_destroy(&c->out_lock);
	free(c->s.buf);
	free(c);
}

static const struct virtio_dev_ops con_ops = {
	.cfg_read = con_cfg_read,
	.cfg_write = con_cfg_write,
	.queue_notify = con_notify,
	.reset = con_reset,
	.destroy = con_destroy,
};

/* ---- conf and creation ---- */

static void con_free_settings(void *p)
{
	struct con_settings *s = p;
	if (s)
		free(s->buf);
	free(s);
}

static bool is_chardev_spec(const char *b)
{
	return !strcmp(b, "stdio") || !strncmp(b, "tcp=", 4) || !strncmp(b, "pty=", 4) ||
	       !strncmp(b, "fd=", 3);
}

static int con_parse(const char *conf, void **settings, char *err, size_t errlen)
{
	struct con_settings *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* Split by hand: a value such as tcp=127.0.0.1:4444 has its own '='. */
	s->buf = conf ? strdup(conf) : NULL;
	if (conf && !s->buf)
		goto nomem;
	char *save = NULL;
	for (char *w = s->buf ? strtok_r(s->buf, ",", &save) : NULL; w;
	     w = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(w, '=');
		if (!eq || eq == w || !eq[1]) {
			snprintf(err, errlen, "virtio-console: '%s' is not NAME=BACKEND (stdio, pty=PATH, tcp=[ADDR:]PORT, fd=R:W or a socket path)",
				 w);
			goto fail;
		}
		*eq = '\0';
		if (s->n == CON_MAX_PORTS) {
			snprintf(err, errlen, "virtio-console: at most %d ports", CON_MAX_PORTS);
			goto fail;
		}
		struct con_port_cfg *pc = &s->port[s->n];
		pc->console = w[0] == '@';
		pc->name = pc->console ? w + 1 : w;
		pc->backend = eq + 1;
		if (!*pc->name || strlen(pc->name) > 60) {
			snprintf(err, errlen, "virtio-console: a port needs a name of 1-60 characters");
			goto fail;
		}
		if (!is_chardev_spec(pc->backend) && pc->backend[0] != '/' && pc->backend[0] != '.') {
			snprintf(err, errlen, "virtio-console: %s=%s: expected stdio, pty=PATH, tcp=[ADDR:]PORT, fd=R:W or a socket path",
				 pc->name, pc->backend);
			goto fail;
		}
		for (unsigned i = 0; i < s->n; i++) {
			if (!strcmp(s->port[i].name, pc->name)) {
				snprintf(err, errlen, "virtio-console: port '%s' is given twice", pc->name);
				goto fail;
			}
		}
		s->n++;
	}
	if (s->n == 0) {
		snprintf(err, errlen, "virtio-console needs a port: slot,virtio-console,NAME=BACKEND");
		goto fail;
	}
	*settings = s;
	return 0;
nomem:
	con_free_settings(s);
	return -ENOMEM;
fail:
	con_free_settings(s);
	return -EINVAL;
}

static int open_socket(struct con_port *pt, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket", path);
			return -EEXIST;
		}
		/* a socket left behind, or one in use? */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool used = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (used) {
			snprintf(err, errlen, "%s: another program listens on it", path);
			return -EADDRINUSE;
		}
		unlink(path);
	}
	pt->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (pt->listen_fd < 0 || bind(pt->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	/* Bound: the file is ours from here on, and con_destroy removes it
	 * (or exitclean, when khyve ends without destroying devices). */
	pt->sock_path = strdup(path);
	if (!pt->sock_path) {
		unlink(path);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	pt->sock_guard = exitclean_add(path, EXITCLEAN_UNLINK);
	if (listen(pt->listen_fd, 1) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	pt->listen_src = evloop_add(pt->c->p->loop, pt->listen_fd, EPOLLIN, on_listen, pt);
	if (!pt->listen_src) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -ENOMEM;
	}
	return 0;
}

static int open_port(struct console *c, unsigned i, char *err, size_t errlen)
{
	struct con_port *pt = &c->port[i];
	const struct con_port_cfg *pc = &c->s.port[i];
	if (!is_chardev_spec(pc->backend))
		return open_socket(pt, pc->backend, err, errlen);
	char why[300], fds[64];
	/* chardev's pty backend takes the symlink's path itself */
	const char *spec = !strncmp(pc->backend, "pty=", 4) ? pc->backend + 4 : pc->backend;
	if (!strncmp(spec, "fd=", 3)) { /* chardev spells fd=R:W as fd=R,W */
		if (strlen(spec) >= sizeof(fds)) {
			snprintf(err, errlen, "port %s: bad fd backend '%s' (expected fd=R:W)",
				 pc->name, spec);
			return -EINVAL;
		}
		snprintf(fds, sizeof(fds), "%s", spec);
		char *colon = strchr(fds, ':');
		if (colon)
			*colon = ',';
		spec = fds;
	}
	int r = chardev_open(spec, c->p->loop, &pt->chr, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "port %s: %s", pc->name, why);
		return r;
	}
	pt->host_connected = true;
	struct chardev_receiver rx = { chr_can_receive, chr_receive, pt };
	chardev_set_receiver(pt->chr, &rx);
	return 0;
}

static int con_create(struct pci_bus *bus, unsigned slot, unsigned func, void *settings,
		      struct platform *p, char *err, size_t errlen)
{
	struct con_settings *s = settings;
	struct console *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->p = p;
	pthread_mutex_init(&c->out_lock, NULL);
	c->s = *s;
	c->s.buf = NULL; /* names point into the settings, which live on */
	c->nports = s->n;
	for (unsigned i = 0; i < CON_MAX_PORTS; i++) {
		c->port[i] = (struct con_port){ .c = c, .id = i, .cfg = &c->s.port[i], .listen_fd = -1,
						.conn_fd = -1, .sock_guard = -1 };
	}
	/* cols, rows: 0 (unknown); max_nr_ports */
	c->cfg[4] = (uint8_t)c->nports;
	uint64_t features = 1ULL << VIRTIO_CONSOLE_F_MULTIPORT | 1ULL << VIRTIO_CONSOLE_F_EMERG_WRITE;
	int r = virtio_pci_create(bus, slot, func, p, "virtio-console", VIRTIO_ID_CONSOLE, 0x078000,
				  features, 2 * (c->nports + 1), CON_QUEUE_SIZE, CON_CFG_SIZE, &con_ops,
				  c, &c->v);
	if (r) {
		snprintf(err, errlen, "cannot create the device: %s", strerror(-r));
		pthread_mutex_destroy(&c->out_lock);
		free(c);
		return r;
	}
	/* The device owns c from here: a failure below is cleaned up with it. */
	for (unsigned i = 0; i < c->nports; i++)
		if ((r = open_port(c, i, err, errlen)))
			return r;
	if ((r = virtio_kicks_on_loop(c->v))) {
		snprintf(err, errlen, "watching its queues: %s", strerror(-r));
		return r;
	}
	return 0;
}

const struct pci_emul pci_emul_virtio_console = {
	.name = "virtio-console", .parse = con_parse, .free_settings = con_free_settings,
	.create = con_create,
};
