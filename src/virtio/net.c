/* virtio-net (5.1) on a Linux tap interface (backend/tap.c).
 *
 * bhyve's conf: TAPNAME[,mac=xx:xx:xx:xx:xx:xx][,mtu=N] (also backend=TAPNAME).
 * Without mac= the address is bhyve's: 00:a0:98 and the first three bytes
 * of MD5("slot-function-vmname"), so a VM keeps its MAC across runs.
 *
 * One receive and one transmit queue, mergeable receive buffers, and the
 * tap's virtio-net header for checksum and TSO offload both ways (the
 * guest's headers go to the tap as they are; TUNSETOFFLOAD follows the
 * features the guest took). A thread per device, started at DRIVER_OK,
 * waits on the tap and the two kick eventfds: transmit writes each chain
 * to the tap straight from guest memory; receive reads a frame and copies
 * it into as many buffers as it needs. When the guest has no receive
 * buffers the tap is not read (the kernel queues, then drops).
 *
 * The runtime contract (vdev_work.h): transmit takes a batch with
 * vdev_take, writes it to the tap unlocked and gives it back with
 * vdev_give (a reset waits for it); receive copies a frame into buffers
 * under the device lock, so no reset falls between its pops and pushes.
 * Each round takes at most NET_BATCH chains per queue and re-kicks itself
 * for more. A receive buffer the device cannot use (device-readable, or
 * too short for the header) marks the queue broken (NEEDS_RESET): a chain
 * already returned is never rewound over. start() makes the thread and
 * its buffers once. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backend/tap.h"
#include "pci/slots.h"
#include "util/log.h"
#include "virtio/vdev_work.h"
#include "virtio/virtio_net.h"
#include "virtio/virtio_pci.h"

#define NET_QUEUE_SIZE 256
#define NET_RXQ 0
#define NET_TXQ 1
#define NET_CHAIN_MAX 64 /* segments per chain */
#define NET_BATCH 64     /* chains per round */
#define NET_RX_BUFS 64   /* buffers one frame may take (mergeable) */
#define NET_HDR_LEN 12
#define NET_PKT_MAX (NET_HDR_LEN + 65536 + 14 + 4) /* a GSO frame */

#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

#define NET_CFG_SIZE 12

struct net_settings {
	char tap[16];
	uint8_t mac[6];
	bool have_mac;
	unsigned mtu;
	char *buf;
};

struct net {
	struct virtio_dev *v;
	struct platform *p;
	struct tap *tap;
	struct net_settings s;
	uint8_t cfg[NET_CFG_SIZE];

	bool running;
	pthread_t thread;
	int epfd, stop_fd;
	bool rx_waiting; /* no receive buffers: the tap is not watched */

	/* Thread-owned buffers (allocated at start). */
	uint8_t *pkt;
	size_t pkt_len;
	bool pkt_pending;
	struct iovec (*iov)[NET_CHAIN_MAX]; /* NET_BATCH chains' segments */
	struct vq_chain *chains;             /* NET_BATCH */
};

/* ---- MD5 (RFC 1321), for bhyve's default MAC ---- */

struct md5 {
	uint32_t h[4];
	uint8_t buf[64];
	uint64_t len;
};

static uint32_t rol(uint32_t x, unsigned c) { return x << c | x >> (32 - c); }

static void md5_block(struct md5 *m, const uint8_t *p)
{
	static const uint32_t k[64] = {
		0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
		0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
		0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
		0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
		0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
		0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
		0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
		0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
		0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
		0xeb86d391,
	};
	static const uint8_t r[64] = { 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
				       5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
				       4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
				       6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21 };
	uint32_t w[16];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
		       (uint32_t)p[4 * i + 3] << 24;
	uint32_t a = m->h[0], b = m->h[1], c = m->h[2], d = m->h[3];
	for (int i = 0; i < 64; i++) {
		uint32_t f;
		int g;
		if (i < 16) {
			f = (b & c) | (~b & d);
			g = i;
		} else if (i < 32) {
			f = (d & b) | (~d & c);
			g = (5 * i + 1) % 16;
		} else if (i < 48) {
			f = b ^ c ^ d;
			g = (3 * i + 5) % 16;
		} else {
			f = c ^ (b | ~d);
			g = (7 * i) % 16;
		}
		uint32_t t = d;
		d = c;
		c = b;
		b = b + rol(a + f + k[i] + w[g], r[i]);
		a = t;
	}
	m->h[0] += a;
	m->h[1] += b;
	m->h[2] += c;
	m->h[3] += d;
}

static void md5(const void *data, size_t len, uint8_t out[16])
{
	struct md5 m = { { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476 }, { 0 }, 0 };
	const uint8_t *p = data;
	size_t i = 0;
	for (; i + 64 <= len; i += 64)
		md5_block(&m, p + i);
	uint8_t tail[128] = { 0 };
	size_t rest = len - i;
	memcpy(tail, p + i, rest);
	tail[rest] = 0x80;
	size_t tl = rest + 1 + 8 <= 64 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;
	for (int k = 0; k < 8; k++)
		tail[tl - 8 + k] = (uint8_t)(bits >> (8 * k));
	md5_block(&m, tail);
	if (tl == 128)
		md5_block(&m, tail + 64);
	for (int k = 0; k < 4; k++)
		for (int b = 0; b < 4; b++)
			out[4 * k + b] = (uint8_t)(m.h[k] >> (8 * b));
}

/* ---- transmit ---- */

static void process_tx(struct net *n)
{
	struct virtio_dev *v = n->v;
	struct vdev_used used[NET_BATCH];
	for (unsigned i = 0; i < NET_BATCH; i++)
		n->chains[i] = (struct vq_chain){ .cap = NET_CHAIN_MAX, .iov = n->iov[i] };
	uint32_t gen;
	unsigned count = vdev_take(v, NET_TXQ, n->chains, NET_BATCH, &gen);
	if (!count)
		return;
	for (unsigned i = 0; i < count; i++) {
		struct vq_chain *c = &n->chains[i];
		/* The guest's header and frame go to the tap as they are. */
		used[i] = (struct vdev_used){ c->head, 0 };
		if (c->out_len <= NET_HDR_LEN || c->out_len > NET_PKT_MAX)
			continue;
		ssize_t w = writev(n->tap->fd, c->iov, (int)c->nout);
		if (w < 0 && errno != EAGAIN)
			log_guest("virtio-net %s: transmit: %s", n->tap->name, strerror(errno));
	}
	vdev_give(v, NET_TXQ, gen, used, count);
	if (count == NET_BATCH)
		vdev_rekick(v, NET_TXQ); /* more after the others had their turn */
}

/* ---- receive ---- */

static void watch_tap(struct net *n, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.fd = n->tap->fd };
	epoll_ctl(n->epfd, EPOLL_CTL_MOD, n->tap->fd, &ev);
	n->rx_waiting = !on;
}

/* Put the pending frame into receive buffers. vdev->lock held. Returns 1
 * when delivered (or dropped), 0 when the guest has too few buffers. */
static int deliver(struct net *n, struct virtqueue *vq)
{
	bool mrg = virtio_has_feature(n->v, VIRTIO_NET_F_MRG_RXBUF);
	unsigned nbufs = 0;
	uint64_t room = 0;
	while (room < n->pkt_len) {
		if (nbufs == NET_RX_BUFS || (!mrg && nbufs == 1)) {
			/* The frame does not fit what the guest gives: drop it.
			 * Nothing was pushed since these pops: rewinding is exact. */
			for (unsigned i = 0; i < nbufs; i++)
				vq_unpop(vq);
			return 1;
		}
		struct vq_chain *c = &n->chains[nbufs];
		*c = (struct vq_chain){ .cap = NET_CHAIN_MAX, .iov = n->iov[nbufs] };
		int got = vq_pop(vq, c);
		if (got < 0) {
			virtio_queue_broken(n->v, NET_RXQ);
			return 1;
		}
		if (got == 0) {
			for (unsigned i = 0; i < nbufs; i++)
				vq_unpop(vq);
			return 0;
		}
		if (c->nout || (nbufs == 0 && c->in_len < NET_HDR_LEN)) {
			/* A driver error (5.1.6.3.1). Pushing it back and going on
			 * would make the rewind above skip over it; the queue
			 * needs a reset instead. */
			vq_set_broken(vq, VQ_ERR_BUFFER);
			virtio_queue_broken(n->v, NET_RXQ);
			return 1;
		}
		room += c->in_len;
		nbufs++;
	}
	n->pkt[10] = (uint8_t)nbufs; /* num_buffers */
	n->pkt[11] = (uint8_t)(nbufs >> 8);
	size_t off = 0;
	for (unsigned i = 0; i < nbufs; i++) {
		struct vq_chain *c = &n->chains[i];
		size_t take = n->pkt_len - off < c->in_len ? n->pkt_len - off : c->in_len;
		vq_chain_write(c, 0, n->pkt + off, take);
		vq_push(vq, c->head, (uint32_t)take);
		off += take;
	}
	return 1;
}

static void process_rx(struct net *n)
{
	struct virtio_dev *v = n->v;
	bool pushed = false;
	for (unsigned k = 0; k < NET_BATCH; k++) {
		if (!n->pkt_pending) {
			ssize_t r = read(n->tap->fd, n->pkt, NET_PKT_MAX);
			if (r < 0)
				break; /* EAGAIN: epoll says when there is more */
			if (r <= NET_HDR_LEN)
				continue;
			n->pkt_len = (size_t)r;
			n->pkt_pending = true;
		}
		pthread_mutex_lock(&v->lock);
		struct virtqueue *vq = virtio_queue(v, NET_RXQ);
		int done = vq ? deliver(n, vq) : 1; /* no driver: drop */
		if (done == 1 && vq)
			pushed = true;
		if (!done && vq_enable_kicks(vq, true)) {
			/* buffers came meanwhile */
			done = deliver(n, vq);
			pushed |= done == 1;
		}
		pthread_mutex_unlock(&v->lock);
		if (!done) {
			watch_tap(n, false);
			break;
		}
		n->pkt_pending = false;
	}
	if (pushed) {
		pthread_mutex_lock(&v->lock);
		virtio_queue_notify_guest(v, NET_RXQ);
		pthread_mutex_unlock(&v->lock);
	}
}

static void *net_thread(void *opaque)
{
	struct net *n = opaque;
	pthread_setname_np(pthread_self(), "virtio-net");
	int rxkick = n->v->q[NET_RXQ].kick_fd, txkick = n->v->q[NET_TXQ].kick_fd;
	process_tx(n);
	process_rx(n);
	for (;;) {
		struct epoll_event ev[8];
		int k = epoll_wait(n->epfd, ev, 8, -1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			log_error("virtio-net: epoll: %s", strerror(errno));
			return NULL;
		}
		bool rx = false;
		for (int i = 0; i < k; i++) {
			int fd = ev[i].data.fd;
			if (fd == n->stop_fd)
				return NULL;
			if (fd == txkick) {
				virtio_kick_drain(n->v, NET_TXQ);
				process_tx(n);
			} else if (fd == rxkick) {
				virtio_kick_drain(n->v, NET_RXQ);
				if (n->rx_waiting)
					watch_tap(n, true);
				rx = true;
			} else if (fd == n->tap->fd) {
				rx = true;
			}
		}
		if (rx && !n->rx_waiting)
			process_rx(n);
	}
}

/* ---- transport hooks ---- */

/* Safe to call again: each piece is made once and kept until destroy. */
static int net_start(struct virtio_dev *v)
{
	struct net *n = v->opaque;
	int r = tap_set_offload(n->tap, virtio_has_feature(v, VIRTIO_NET_F_GUEST_CSUM),
				virtio_has_feature(v, VIRTIO_NET_F_GUEST_TSO4),
				virtio_has_feature(v, VIRTIO_NET_F_GUEST_TSO6),
				virtio_has_feature(v, VIRTIO_NET_F_GUEST_ECN));
	if (r)
		log_warn("virtio-net %s: setting offloads: %s", n->tap->name, strerror(-r));
	if (n->running)
		return 0;
	if (!n->pkt && !(n->pkt = malloc(NET_PKT_MAX)))
		return -ENOMEM;
	if (!n->iov && !(n->iov = calloc(NET_BATCH, sizeof(*n->iov))))
		return -ENOMEM;
	if (!n->chains && !(n->chains = calloc(NET_BATCH, sizeof(*n->chains))))
		return -ENOMEM;
	if (n->epfd < 0 && (n->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	if (n->stop_fd < 0 && (n->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return -errno;
	int fds[] = { n->stop_fd, v->q[NET_RXQ].kick_fd, v->q[NET_TXQ].kick_fd, n->tap->fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
		if (epoll_ctl(n->epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0 && errno != EEXIST)
			return -errno;
	}
	n->rx_waiting = false;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	r = -pthread_create(&n->thread, &attr, net_thread, n);
	pthread_attr_destroy(&attr);
	if (r)
		return r;
	n->running = true;
	return 0;
}

static void net_cfg_read(struct virtio_dev *v, unsigned off, void *buf, unsigned len)
{
	struct net *n = v->opaque;
	memcpy(buf, n->cfg + off, len);
}

static void net_notify(struct virtio_dev *v, unsigned q)
{
	(void)v;
	(void)q; /* the device thread reads the kicks */
}

static void net_destroy(struct virtio_dev *v)
{
	struct net *n = v->opaque;
	if (n->running) {
		uint64_t one = 1;
		ssize_t w = write(n->stop_fd, &one, sizeof(one));
		(void)w;
		pthread_join(n->thread, NULL);
	}
	if (n->epfd >= 0)
		close(n->epfd);
	if (n->stop_fd >= 0)
		close(n->stop_fd);
	free(n->pkt);
	free(n->iov);
	free(n->chains);
	tap_close(n->tap);
	free(n);
}

static const struct virtio_dev_ops net_ops = {
	.cfg_read = net_cfg_read,
	.queue_notify = net_notify,
	.start = net_start,
	.destroy = net_destroy,
};

/* ---- conf and creation ---- */

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char end;
	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			return -EINVAL;
		mac[i] = (uint8_t)b[i];
	}
	if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return -EINVAL; /* multicast or zero */
	return 0;
}

static void net_free_settings(void *p)
{
	struct net_settings *s = p;
	if (s)
		free(s->buf);
	free(s);
}

static int net_parse(const char *conf, void **settings, char *err, size_t errlen)
{
	struct net_settings *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	struct pci_conf_word w[PCI_CONF_MAX_WORDS];
	int nw = pci_conf_split(conf, &s->buf, w, PCI_CONF_MAX_WORDS);
	if (nw < 0) {
		snprintf(err, errlen, "too many options");
		goto fail;
	}
	for (int i = 0; i < nw; i++) {
		const char *k = w[i].key, *val = w[i].value;
		const char *tap = NULL;
		if (i == 0 && !val)
			tap = k;
		else if (!strcmp(k, "backend") && val)
			tap = val;
		if (tap) {
			if (!*tap || strlen(tap) >= sizeof(s->tap)) {
				snprintf(err, errlen, "'%s' is not a tap interface name", tap);
				goto fail;
			}
			snprintf(s->tap, sizeof(s->tap), "%s", tap);
		} else if (!strcmp(k, "mac") && val) {
			if (parse_mac(val, s->mac)) {
				snprintf(err, errlen, "mac=%s: expected xx:xx:xx:xx:xx:xx, unicast and not zero",
					 val);
				goto fail;
			}
			s->have_mac = true;
		} else if (!strcmp(k, "mtu") && val) {
			char *end;
			unsigned long m = strtoul(val, &end, 10);
			if (*end || m < 68 || m > 65535) {
				snprintf(err, errlen, "mtu=%s: expected 68-65535", val);
				goto fail;
			}
			s->mtu = (unsigned)m;
		} else {
			snprintf(err, errlen, "virtio-net: unknown option '%s%s%s' (expected TAPNAME, mac=, mtu=)",
				 k, val ? "=" : "", val ? val : "");
			goto fail;
		}
	}
	if (!s->tap[0]) {
		snprintf(err, errlen, "virtio-net needs a tap interface: slot,virtio-net,TAPNAME[,mac=..]");
		goto fail;
	}
	*settings = s;
	return 0;
fail:
	net_free_settings(s);
	return -EINVAL;
}

void virtio_net_default_mac(unsigned slot, unsigned func, const char *vm, uint8_t mac[6])
{
	char nstr[128];
	uint8_t digest[16];
	snprintf(nstr, sizeof(nstr), "%u-%u-%s", slot, func, vm ? vm : "");
	md5(nstr, strlen(nstr), digest);
	mac[0] = 0x00;
	mac[1] = 0xa0;
	mac[2] = 0x98;
	mac[3] = digest[0];
	mac[4] = digest[1];
	mac[5] = digest[2];
}

static int net_create_with(struct pci_bus *bus, unsigned slot, unsigned func,
			   const struct net_settings *s, struct platform *p, struct tap *tap,
			   struct virtio_dev **out, char *err, size_t errlen)
{
	struct net *n = calloc(1, sizeof(*n));
	if (!n) {
		tap_close(tap);
		return -ENOMEM;
	}
	n->p = p;
	n->s = *s;
	n->s.buf = NULL;
	n->epfd = n->stop_fd = -1;
	n->tap = tap;
	int r;
	if (!n->tap->vnet_hdr) {
		snprintf(err, errlen, "%s: the tap driver has no virtio-net header support", s->tap);
		tap_close(n->tap);
		free(n);
		return -EOPNOTSUPP;
	}
	if (!s->have_mac)
		virtio_net_default_mac(slot, func, p->vm_name, n->s.mac);
	memcpy(n->cfg, n->s.mac, 6);
	n->cfg[6] = 1; /* status: VIRTIO_NET_S_LINK_UP */
	n->cfg[8] = 1; /* max_virtqueue_pairs */
	n->cfg[10] = (uint8_t)s->mtu;
	n->cfg[11] = (uint8_t)(s->mtu >> 8);
	uint64_t features = 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS |
			    1ULL << VIRTIO_NET_F_MRG_RXBUF | 1ULL << VIRTIO_NET_F_CSUM |
			    1ULL << VIRTIO_NET_F_GUEST_CSUM | 1ULL << VIRTIO_NET_F_HOST_TSO4 |
			    1ULL << VIRTIO_NET_F_HOST_TSO6 | 1ULL << VIRTIO_NET_F_HOST_ECN |
			    1ULL << VIRTIO_NET_F_GUEST_TSO4 | 1ULL << VIRTIO_NET_F_GUEST_TSO6 |
			    1ULL << VIRTIO_NET_F_GUEST_ECN;
	if (s->mtu)
		features |= 1ULL << VIRTIO_NET_F_MTU;
	r = virtio_pci_create(bus, slot, func, p, "virtio-net", VIRTIO_ID_NET, 0x020000, features, 2,
			      NET_QUEUE_SIZE, NET_CFG_SIZE, &net_ops, n, &n->v);
	if (r) {
		snprintf(err, errlen, "cannot create the device: %s", strerror(-r));
		tap_close(n->tap);
		free(n);
		return r;
	}
	if (out)
		*out = n->v;
	return 0;
}

static int net_create(struct pci_bus *bus, unsigned slot, unsigned func, void *settings,
		      struct platform *p, char *err, size_t errlen)
{
	struct net_settings *s = settings;
	struct tap *tap;
	int r = tap_open(s->tap, &tap, err, errlen);
	if (r)
		return r;
	return net_create_with(bus, slot, func, s, p, tap, NULL, err, errlen);
}

int virtio_net_create_on_tap(struct pci_bus *bus, unsigned slot, unsigned func, struct platform *p,
			     struct tap *tap, struct virtio_dev **out, char *err, size_t errlen)
{
	struct net_settings s = { .mac = { 0x02, 0, 0, 0, 0, 1 }, .have_mac = true };
	snprintf(s.tap, sizeof(s.tap), "%s", tap->name);
	return net_create_with(bus, slot, func, &s, p, tap, out, err, errlen);
}

const struct pci_emul pci_emul_virtio_net = {
	.name = "virtio-net", .parse = net_parse, .free_settings = net_free_settings,
	.create = net_create,
};
