/* virtio-net (5.1) on a Linux tap interface (backend/tap.c), optionally
 * with the kernel's data path (vhost-net, backend/vhost_net.c), or on
 * libslirp's user-mode network (backend/slirp.c).
 *
 * bhyve's conf: TAPNAME[,mac=xx:xx:xx:xx:xx:xx][,mtu=N][,vhost=on|off]
 * [,queues=N] (also backend=TAPNAME), or slirp[,hostfwd=RULE[;RULE..]][,open|restrict]
 * [,mac=..]. Without mac= the address is bhyve's: 00:a0:98 and the first
 * three bytes of MD5("slot-function-vmname"), so a VM keeps its MAC across
 * runs.
 *
 * Multiqueue (queues=N, QEMU's meaning; bhyve has none): N receive/
 * transmit pairs rx0,tx0,rx1,tx1,.. then the control queue (at 2N with
 * MQ, else at 2, 5.1.2), on a multi_queue tap with a descriptor per pair.
 * Each pair has its own thread, epoll set, buffers and, with vhost=on,
 * its own vhost-net, so pairs never share a lock but the device's. The
 * guest enables pairs with VQ_PAIRS_SET (1 after a reset); the pairs'
 * threads attach or detach their tap queues to follow. queues=1 offers
 * no MQ and is the single-pair device it always was.
 *
 * Queues: receive, transmit and control (CTRL_VQ). On a tap: mergeable
 * receive buffers and the tap's virtio-net header for checksum and TSO
 * offload both ways (the guest's headers go to the tap as they are;
 * TUNSETOFFLOAD follows the features the guest took). A thread per pair,
 * started at DRIVER_OK, waits on its tap queue, its kick eventfds (edge-
 * triggered, never read) and, for pair 0, the tap's link state (netlink):
 * transmit writes each chain to the tap straight from guest memory (a
 * batch in one io_uring submission), with the guest's kicks off while it
 * works, as vhost-net does; receive reads a frame and copies it into as many
 * buffers as it needs. When the guest has no receive buffers the tap is
 * not read (the kernel queues, then drops).
 *
 * vhost=on: at DRIVER_OK the device thread hands both rings to vhost-net
 * (kick = the queue's ioeventfd; call = the vector's KVM irqfd while MSI-X
 * delivers it unmasked, so completions never pass through khyve, else an
 * eventfd the thread turns into the interrupt, which keeps a masked vector
 * pending; a mask change rebinds before the guest's write completes, as
 * QEMU does) and stops watching the tap and those kicks; a
 * reset stops vhost before it returns. Any failure says why once and the
 * thread's own path carries on. The control queue stays in khyve; the
 * receive filter cannot apply under vhost (the kernel delivers all).
 *
 * slirp: no thread and no offloads; everything runs on the event loop,
 * which is libslirp's thread: transmitted frames go to slirp_input, the
 * frames it sends wait in a small queue for receive buffers.
 *
 * Control queue (5.1.6.5): RX promisc/allmulti, the MAC filter table and
 * address, announce acks (net_ctrl.c). A malformed request fails with
 * VIRTIO_NET_ERR. Served in the vCPU's exit: Linux spins until the answer
 * is there, and must not wait for this thread to be scheduled (on a busy
 * host, or while it sets up vhost).
 * Link status (STATUS): down when the tap is administratively down or
 * loses carrier, with a config interrupt; coming back up also asks the
 * guest to announce itself when it took GUEST_ANNOUNCE. While the link is
 * down, transmitted frames are dropped and none are received.
 *
 * The runtime contract (vdev_work.h): transmit and control take a batch
 * with vdev_take (or vdev_serve), work unlocked and give it back with
 * vdev_give (a reset waits for it); receive copies a frame into buffers
 * under the device lock, so no reset falls between its pops and pushes.
 * Each round takes at most NET_BATCH chains per queue and re-kicks itself
 * for more. A receive buffer the device cannot use (device-readable, or
 * too short for the header) marks the queue broken (NEEDS_RESET): a chain
 * already returned is never rewound over. start() makes the thread and
 * its buffers once. */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backend/slirp.h"
#include "backend/tap.h"
#include "backend/vhost_net.h"
#include "pci/pci.h"
#include "pci/slots.h"
#include "util/log.h"
#include "util/thread_role.h"
#include "virtio/net_ctrl.h"
#include "virtio/vdev_work.h"
#include "virtio/virtio_net.h"
#include "virtio/virtio_pci.h"

#define NET_QUEUE_SIZE 256
#define NET_MAX_PAIRS 16   /* queues=; the control queue is then queue 32 */
#define NET_CHAIN_MAX 64 /* segments per chain */
#define NET_BATCH 64     /* chains per round */
#define NET_RX_BUFS 64   /* buffers one frame may take (mergeable) */
#define NET_HDR_LEN 12
#define NET_PKT_MAX (NET_HDR_LEN + 65536 + 14 + 4) /* a GSO frame */
#define NET_SLIRP_PENDING 128 /* frames from slirp waiting for buffers */
#define NET_SLIRP_SLOT (NET_HDR_LEN + SLIRP_BE_FRAME_MAX)

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
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_S_ANNOUNCE 2


#define NET_CFG_SIZE 12

enum net_backend { NET_BE_TAP, NET_BE_SLIRP };

struct net_settings {
	enum net_backend be;
	char tap[16];
	uint8_t mac[6];
	bool have_mac;
	unsigned mtu;
	bool vhost;
	unsigned queues; /* queue pairs; 0 when not given (1) */
	bool restricted;
	const char *hostfwd[SLIRP_BE_MAX_HOSTFWD]; /* into buf; only until create */
	unsigned nhostfwd;
	char *buf;
};

struct net;

/* One receive/transmit pair (queues 2k and 2k+1) with its own tap queue,
 * thread, epoll set and buffers; a vhost-net instance of its own with
 * vhost=on, as QEMU has. Only the first curr_pairs pairs are enabled
 * (VIRTIO_NET_CTRL_MQ); the others' tap queues are detached, so the
 * kernel steers no flow to them, and their threads serve nothing. */
struct net_pair {
	struct net *n;
	unsigned k;
	int fd; /* its tap queue */
	bool attached; /* its thread's: the tap queue is attached */

	bool running;
	pthread_t thread;
	int epfd, mode_fd;
	bool rx_waiting; /* no receive buffers: the tap is not watched */

	/* vhost-net: vhost_on changes under v->lock; the thread follows it
	 * when mode_fd is signalled. */
	struct vhost_net *vhost;
	uint64_t vhost_features;
	atomic_bool vhost_on;
	bool vhost_want, vhost_failed, vhost_said;
	int call_fd[2];
	/* Where vhost signals each ring: straight into the vector's irqfd
	 * while MSI-X delivers it unmasked, else call_fd, which the thread
	 * turns into the interrupt (so a masked vector stays pending).
	 * Under the device's call_lock. */
	int call_bound[2];     /* the fd vhost has now; -1 when stopped */
	uint16_t vhost_vec[2]; /* the rings' vectors when vhost started */

	/* Thread-owned (or, for slirp, loop-owned) buffers, made at start. */
	uint8_t *pkt;
	size_t pkt_len;
	bool pkt_pending;
	uint64_t own_tx, own_rx; /* frames khyve's own path moved (--verbose at exit) */
	/* A batch of frames goes to the tap in one io_uring submission
	 * instead of a writev each (made at start; without it, writev). */
	struct io_uring ring;
	bool have_ring;
	struct iovec (*iov)[NET_CHAIN_MAX]; /* NET_BATCH chains' segments (tx) */
	struct vq_chain *chains;             /* NET_BATCH (tx) */
	struct iovec (*rxiov)[NET_CHAIN_MAX]; /* NET_RX_BUFS (rx) */
	struct vq_chain *rxchains;             /* NET_RX_BUFS (rx) */
};

struct net {
	struct virtio_dev *v;
	struct platform *p;
	enum net_backend be;
	struct tap *tap;
	struct slirp_be *slirp;
	const char *name; /* for messages */
	struct net_settings s;
	uint8_t cfg[NET_CFG_SIZE]; /* under v->lock */
	atomic_bool link_up;

	/* The receive filter (CTRL_RX, CTRL_MAC), under v->lock; its mac
	 * is kept equal to cfg[0-5]. */
	struct net_filter filter;

	unsigned npairs;              /* max_virtqueue_pairs */
	unsigned curr_pairs;          /* enabled; under v->lock */
	struct net_pair *pair;        /* npairs */
	int stop_fd, link_fd;         /* stop_fd: never read, so every thread sees it */
	/* call_lock orders vhost's call rebinding; it nests inside v->lock. */
	pthread_mutex_t call_lock;
	struct iovec ctrliov[NET_CHAIN_MAX];
	/* The control queue is served in a vCPU's exit and by a pair's
	 * thread (its re-kick): one at a time, as they share ctrliov. */
	pthread_mutex_t ctrl_lock;

	/* slirp's frames waiting for the guest's buffers (loop thread). */
	uint8_t *slirp_q; /* NET_SLIRP_PENDING slots of NET_SLIRP_SLOT */
	uint16_t slirp_len[NET_SLIRP_PENDING];
	unsigned slirp_head, slirp_count;
	uint8_t *slirp_tx; /* one transmitted frame, linearised */
};

/* The control queue's index: after the last pair with MQ, else 2
 * (5.1.2). Features are fixed from FEATURES_OK on. */
static unsigned ctrlq(const struct net *n)
{
	return virtio_has_feature(n->v, VIRTIO_NET_F_MQ) ? 2 * n->npairs : 2;
}

/* Pairs the guest can use with what it negotiated. */
static unsigned usable_pairs(const struct net *n)
{
	return virtio_has_feature(n->v, VIRTIO_NET_F_MQ) ? n->npairs : 1;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;
	ssize_t w = write(fd, &one, sizeof(one));
	(void)w;
}

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

/* The batch's frames to the tap, a writev each in one io_uring
 * submission (tun takes them inline: the tap is O_NONBLOCK). Returns
 * false when the ring could not be used; the caller writes them itself. */
static bool tx_ring(struct net_pair *pp, unsigned count)
{
	struct net *n = pp->n;
	unsigned queued = 0;
	for (unsigned i = 0; i < count; i++) {
		struct vq_chain *c = &pp->chains[i];
		if (c->out_len <= NET_HDR_LEN || c->out_len > NET_PKT_MAX)
			continue;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&pp->ring);
		if (!sqe)
			break;
		io_uring_prep_writev(sqe, pp->fd, c->iov, c->nout, 0);
		sqe->user_data = i;
		queued++;
	}
	if (!queued)
		return true;
	int r;
	do
		r = io_uring_submit_and_wait(&pp->ring, queued);
	while (r == -EINTR);
	if (r < 0)
		return false; /* nothing was submitted */
	unsigned seen = 0;
	while (seen < queued) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&pp->ring, &cqe))
			break;
		pp->own_tx += cqe->res > 0;
		if (cqe->res < 0 && cqe->res != -EAGAIN)
			log_guest("virtio-net %s: transmit: %s", n->name, strerror(-cqe->res));
		io_uring_cqe_seen(&pp->ring, cqe);
		seen++;
	}
	return true;
}

/* Send one batch taken from the transmit queue; returns how many. */
static unsigned tx_batch(struct net_pair *pp, unsigned count, struct vdev_used *used)
{
	struct net *n = pp->n;
	bool up = atomic_load(&n->link_up);
	if (up && count > 1 && pp->have_ring && n->be == NET_BE_TAP) {
		for (unsigned i = 0; i < count; i++)
			used[i] = (struct vdev_used){ pp->chains[i].head, 0 };
		if (tx_ring(pp, count))
			return count;
	}
	for (unsigned i = 0; i < count; i++) {
		struct vq_chain *c = &pp->chains[i];
		used[i] = (struct vdev_used){ c->head, 0 };
		if (!up || c->out_len <= NET_HDR_LEN || c->out_len > NET_PKT_MAX)
			continue;
		if (n->be == NET_BE_SLIRP) {
			/* No offloads were offered: the header carries nothing
			 * and the frame is whole. libslirp parses it; khyve
			 * only bounds its size. */
			if (c->out_len > NET_SLIRP_SLOT)
				continue;
			size_t len = vq_chain_read(c, 0, n->slirp_tx, (size_t)c->out_len);
			slirp_be_input(n->slirp, n->slirp_tx + NET_HDR_LEN, len - NET_HDR_LEN);
			continue;
		}
		/* The guest's header and frame go to the tap as they are. */
		ssize_t w = writev(pp->fd, c->iov, (int)c->nout);
		pp->own_tx += w > 0;
		if (w < 0 && errno != EAGAIN)
			log_guest("virtio-net %s: transmit: %s", n->name, strerror(errno));
	}
	if (n->be == NET_BE_SLIRP)
		slirp_be_flush(n->slirp);
	return count;
}

/* Rounds of NET_BATCH before the queue waits for its re-kick. */
#define NET_TX_ROUNDS 4

/* Transmit as vhost-net does: the guest's kicks stay off while a batch
 * is sent (a ring found empty while taking does not move avail_event,
 * vhost_disable_notify), and are asked for again only after the batch
 * went back, with one more look (vhost_enable_notify): frames the guest
 * adds meanwhile are taken in the next round without a kick, each of
 * which is a VM exit. */
static void process_tx(struct net_pair *pp)
{
	struct virtio_dev *v = pp->n->v;
	unsigned txq = 2 * pp->k + 1;
	struct vdev_used used[NET_BATCH];
	for (unsigned round = 0; round < NET_TX_ROUNDS; round++) {
		for (unsigned i = 0; i < NET_BATCH; i++)
			pp->chains[i] = (struct vq_chain){ .cap = NET_CHAIN_MAX, .iov = pp->iov[i] };
		uint32_t gen;
		pthread_mutex_lock(&v->lock);
		struct virtqueue *vq = virtio_queue(v, txq);
		if (vq)
			vq_enable_kicks(vq, false);
		unsigned count = vdev_take_locked(v, txq, pp->chains, NET_BATCH, &gen);
		pthread_mutex_unlock(&v->lock);
		if (count)
			tx_batch(pp, count, used);
		pthread_mutex_lock(&v->lock);
		if (count)
			vdev_give_locked(v, txq, gen, used, count, true);
		/* The interrupt went before the kicks are asked for again: a
		 * guest that refills meanwhile needs no kick (no VM exit), the
		 * look below finds its frames. */
		vq = virtio_queue(v, txq);
		bool more = vq && vq_enable_kicks(vq, true);
		pthread_mutex_unlock(&v->lock);
		if (!more)
			return;
	}
	vdev_rekick(v, txq); /* more after the others had their turn */
}

/* ---- receive ---- */

static void watch_tap(struct net_pair *pp, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.fd = pp->fd };
	epoll_ctl(pp->epfd, EPOLL_CTL_MOD, pp->fd, &ev);
	pp->rx_waiting = !on;
}

/* Put the frame pkt (header included) into receive buffers of pair pp.
 * vdev->lock held. Returns 1 when delivered (or dropped), 0 when the
 * guest has too few buffers. */
static int deliver(struct net_pair *pp, struct virtqueue *vq, uint8_t *pkt, size_t len)
{
	struct net *n = pp->n;
	if (len < NET_HDR_LEN + 6 || !atomic_load(&n->link_up) || !net_filter_wants(&n->filter, pkt + NET_HDR_LEN))
		return 1;
	bool mrg = virtio_has_feature(n->v, VIRTIO_NET_F_MRG_RXBUF);
	unsigned nbufs = 0;
	uint64_t room = 0;
	while (room < len) {
		if (nbufs == NET_RX_BUFS || (!mrg && nbufs == 1)) {
			/* The frame does not fit what the guest gives: drop it.
			 * Nothing was pushed since these pops: rewinding is exact. */
			for (unsigned i = 0; i < nbufs; i++)
				vq_unpop(vq);
			return 1;
		}
		struct vq_chain *c = &pp->rxchains[nbufs];
		*c = (struct vq_chain){ .cap = NET_CHAIN_MAX, .iov = pp->rxiov[nbufs] };
		int got = vq_pop(vq, c);
		if (got < 0) {
			virtio_queue_broken(n->v, 2 * pp->k);
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
			virtio_queue_broken(n->v, 2 * pp->k);
			return 1;
		}
		room += c->in_len;
		nbufs++;
	}
	pkt[10] = (uint8_t)nbufs; /* num_buffers */
	pkt[11] = (uint8_t)(nbufs >> 8);
	size_t off = 0;
	for (unsigned i = 0; i < nbufs; i++) {
		struct vq_chain *c = &pp->rxchains[i];
		size_t take = len - off < c->in_len ? len - off : c->in_len;
		vq_chain_write(c, 0, pkt + off, take);
		vq_push(vq, c->head, (uint32_t)take);
		off += take;
	}
	return 1;
}

/* deliver(), and when the ring is empty, ask for a kick and look again.
 * vdev->lock held; *pushed set when something went to the guest. A pair
 * the guest has not enabled gets nothing (5.1.6.5.5: not once the
 * VQ_PAIRS_SET that disabled it was acked). */
static int deliver_or_wait(struct net_pair *pp, uint8_t *pkt, size_t len, bool *pushed)
{
	struct virtqueue *vq = virtio_queue(pp->n->v, 2 * pp->k);
	if (!vq || pp->k >= pp->n->curr_pairs)
		return 1; /* no driver: drop */
	int done = deliver(pp, vq, pkt, len);
	if (done)
		*pushed = true;
	else if (vq_enable_kicks(vq, true) && (done = deliver(pp, vq, pkt, len)))
		*pushed = true; /* buffers came meanwhile */
	return done;
}

static void process_rx(struct net_pair *pp)
{
	struct virtio_dev *v = pp->n->v;
	bool pushed = false;
	for (unsigned k = 0; k < NET_BATCH; k++) {
		if (!pp->pkt_pending) {
			ssize_t r = read(pp->fd, pp->pkt, NET_PKT_MAX);
			if (r < 0)
				break; /* EAGAIN: epoll says when there is more */
			if (r <= NET_HDR_LEN)
				continue;
			pp->pkt_len = (size_t)r;
			pp->pkt_pending = true;
		}
		pthread_mutex_lock(&v->lock);
		int done = deliver_or_wait(pp, pp->pkt, pp->pkt_len, &pushed);
		pthread_mutex_unlock(&v->lock);
		if (!done) {
			watch_tap(pp, false);
			break;
		}
		pp->own_rx++;
		pp->pkt_pending = false;
	}
	if (pushed) {
		pthread_mutex_lock(&v->lock);
		virtio_queue_notify_guest(v, 2 * pp->k);
		pthread_mutex_unlock(&v->lock);
	}
}

/* ---- slirp: frames to the guest (event loop thread) ---- */

static void slirp_flush(struct net *n)
{
	struct virtio_dev *v = n->v;
	bool pushed = false;
	pthread_mutex_lock(&v->lock);
	/* At most NET_SLIRP_PENDING frames: the queue's own bound. */
	while (n->slirp_count) {
		uint8_t *slot = n->slirp_q + (size_t)n->slirp_head * NET_SLIRP_SLOT;
		if (!deliver_or_wait(&n->pair[0], slot, n->slirp_len[n->slirp_head], &pushed))
			break;
		n->slirp_head = (n->slirp_head + 1) % NET_SLIRP_PENDING;
		n->slirp_count--;
	}
	if (pushed)
		virtio_queue_notify_guest(v, 0);
	pthread_mutex_unlock(&v->lock);
}

static void slirp_rx(void *opaque, const uint8_t *frame, size_t len)
{
	struct net *n = opaque;
	/* libslirp's frames are bounded by its MTU; check anyway. A full
	 * queue drops, as libslirp expects (TCP retransmits). */
	if (len < 14 || len > SLIRP_BE_FRAME_MAX)
		return;
	if (n->slirp_count == NET_SLIRP_PENDING)
		slirp_flush(n); /* room for it, if the guest has buffers */
	if (n->slirp_count == NET_SLIRP_PENDING)
		return;
	unsigned tail = (n->slirp_head + n->slirp_count) % NET_SLIRP_PENDING;
	uint8_t *slot = n->slirp_q + (size_t)tail * NET_SLIRP_SLOT;
	memset(slot, 0, NET_HDR_LEN);
	memcpy(slot + NET_HDR_LEN, frame, len);
	n->slirp_len[tail] = (uint16_t)(NET_HDR_LEN + len);
	n->slirp_count++;
	if (n->slirp_count == NET_SLIRP_PENDING)
		slirp_flush(n); /* else at the end of libslirp's round (slirp_rx_done) */
}

static void slirp_rx_done(void *opaque) { slirp_flush(opaque); }

/* ---- control queue ---- */

static uint32_t ctrl_one(struct virtio_dev *v, unsigned q, struct vq_chain *c, void *opaque)
{
	(void)q;
	struct net *n = opaque;
	if (c->in_len < 1)
		return 0; /* nowhere to put the ack: the request is ignored */
	struct net_ctrl_done done;
	pthread_mutex_lock(&v->lock);
	uint8_t ack = net_ctrl_apply(&n->filter, v->guest_features, (uint16_t)n->npairs, c, &done);
	memcpy(n->cfg, n->filter.mac, 6);
	if (done.announce_acked)
		n->cfg[6] &= (uint8_t)~VIRTIO_NET_S_ANNOUNCE;
	if (done.pairs && done.pairs != n->curr_pairs) {
		/* Each pair's thread attaches or detaches its own tap queue. A
		 * pair disabled here receives nothing from now on: deliver()
		 * looks at curr_pairs under this lock. */
		n->curr_pairs = done.pairs;
		for (unsigned k = 1; k < n->npairs; k++)
			signal_fd(n->pair[k].mode_fd);
		log_debug("virtio-net %s: %u queue pairs", n->name, done.pairs);
	}
	pthread_mutex_unlock(&v->lock);
	/* The ack is the last device-writable byte (5.1.6.5). */
	vq_chain_write(c, (size_t)c->in_len - 1, &ack, 1);
	return (uint32_t)c->in_len;
}

static void process_ctrl(struct net *n)
{
	pthread_mutex_lock(&n->ctrl_lock);
	vdev_serve(n->v, ctrlq(n), n->ctrliov, NET_CHAIN_MAX, ctrl_one, n);
	pthread_mutex_unlock(&n->ctrl_lock);
}

/* ---- link state ---- */

void virtio_net_set_link(struct virtio_dev *v, bool up)
{
	struct net *n = v->opaque;
	pthread_mutex_lock(&v->lock);
	bool was = n->cfg[6] & VIRTIO_NET_S_LINK_UP;
	if (was != up) {
		atomic_store(&n->link_up, up);
		n->cfg[6] = (uint8_t)((n->cfg[6] & ~VIRTIO_NET_S_LINK_UP) | (up ? VIRTIO_NET_S_LINK_UP : 0));
		/* Back up: the switch may have forgotten us; ask the guest to
		 * announce itself (gratuitous ARP) when it can. */
		if (up && virtio_has_feature(v, VIRTIO_NET_F_GUEST_ANNOUNCE))
			n->cfg[6] |= VIRTIO_NET_S_ANNOUNCE;
		if (virtio_has_feature(v, VIRTIO_NET_F_STATUS))
			virtio_config_changed(v);
		log_debug("virtio-net %s: link %s", n->name, up ? "up" : "down");
	}
	pthread_mutex_unlock(&v->lock);
}

static void link_event(struct net *n)
{
	bool up;
	int r = tap_link_read(n->link_fd, n->tap, &up);
	if (r > 0)
		virtio_net_set_link(n->v, up);
	else if (r < 0 && r != -ENOBUFS) {
		/* Lost track: stop listening rather than spin. */
		epoll_ctl(n->pair[0].epfd, EPOLL_CTL_DEL, n->link_fd, NULL); /* pair 0 watches it */
	} else if (r == -ENOBUFS && tap_link_now(n->tap, &up) == 0) {
		virtio_net_set_link(n->v, up); /* messages were lost: ask */
	}
}

/* ---- vhost-net ---- */

#define VHOST_RING_FEATURES                                                            \
	(1ULL << VIRTIO_NET_F_MRG_RXBUF | 1ULL << VIRTIO_F_INDIRECT_DESC |               \
	 1ULL << VIRTIO_F_EVENT_IDX | 1ULL << VIRTIO_F_VERSION_1)

/* Hand pair pp's rings to its vhost-net. vdev->lock held; called on the
 * pair's thread, so no chain of its own path is in flight. */
static bool vhost_try_start(struct net_pair *pp)
{
	struct net *n = pp->n;
	struct virtio_dev *v = n->v;
	char why[160];
	uint64_t f = v->guest_features & VHOST_RING_FEATURES;
	if (f & ~pp->vhost_features) {
		snprintf(why, sizeof(why), "the kernel's vhost-net lacks features %#llx",
			 (unsigned long long)(f & ~pp->vhost_features));
		goto fail;
	}
	struct vhost_net_ring ring[2];
	for (unsigned i = 0; i < 2; i++) {
		unsigned qi = 2 * pp->k + i;
		struct virtio_queue *q = &v->q[qi];
		if (!virtio_queue(v, qi)) {
			if (pp->k) {
				/* A driver may leave pairs it will not use unset:
				 * this one keeps khyve's path, which idles. */
				log_debug("virtio-net %s: pair %u is not set up: no vhost for it",
					  n->name, pp->k);
				return false;
			}
			snprintf(why, sizeof(why), "queue %u is not live", qi);
			goto fail;
		}
		ring[i] = (struct vhost_net_ring){
			.num = q->size, .desc = q->desc, .avail = q->driver, .used = q->device,
			.base = q->vq.last_avail, .kick_fd = q->kick_fd, .call_fd = pp->call_fd[i],
		};
	}
	if (vhost_net_start(pp->vhost, f, v->p->mem, ring, pp->fd, why, sizeof(why)))
		goto fail;
	pthread_mutex_lock(&n->call_lock);
	for (unsigned i = 0; i < 2; i++) {
		pp->call_bound[i] = pp->call_fd[i];
		pp->vhost_vec[i] = v->q[2 * pp->k + i].msix_vector;
	}
	pthread_mutex_unlock(&n->call_lock);
	if (!pp->vhost_said && n->npairs == 1)
		log_debug("virtio-net %s: vhost-net carries the data path", n->name);
	else if (!pp->vhost_said)
		log_debug("virtio-net %s: vhost-net carries pair %u's data path", n->name, pp->k);
	pp->vhost_said = true;
	return true;
fail:
	/* Said once; the pair's own path carries on, now and after resets. */
	log_warn("virtio-net %s: vhost=on: %s; using khyve's own data path", n->name, why);
	pp->vhost_failed = true;
	vhost_net_close(pp->vhost); /* drops whatever half of the setup was made */
	pp->vhost = NULL;
	return false;
}

/* Point vhost's completions at the vectors' irqfds where MSI-X allows,
 * else at call_fd. call_lock held. */
static void vhost_bind_calls_locked(struct net_pair *pp)
{
	if (!atomic_load(&pp->vhost_on))
		return;
	for (unsigned i = 0; i < 2; i++) {
		if (pp->call_bound[i] < 0)
			continue; /* stopped */
		int fd = pci_msix_irqfd(pp->n->v->pci, pp->vhost_vec[i]);
		if (fd < 0)
			fd = pp->call_fd[i];
		if (fd != pp->call_bound[i] && vhost_net_set_call(pp->vhost, i, fd) == 0) {
			bool direct = fd != pp->call_fd[i];
			pp->call_bound[i] = fd;
			log_debug("virtio-net %s: vhost signals queue %u %s", pp->n->name,
				  2 * pp->k + i,
				  direct ? "straight into its vector's irqfd" : "through khyve (vector masked)");
		}
	}
}

/* The guest masked, unmasked, enabled or moved a vector: before its write
 * completes, vhost signals where it now must. */
static void net_msix_changed(void *opaque)
{
	struct net *n = opaque;
	pthread_mutex_lock(&n->call_lock);
	for (unsigned k = 0; k < n->npairs; k++)
		vhost_bind_calls_locked(&n->pair[k]);
	pthread_mutex_unlock(&n->call_lock);
}

/* Follow the pair's mode (its thread): vhost_on, and whether the guest
 * enabled the pair. The tap and the data kicks are watched only on the
 * own path; the tap queue is attached only while the pair is enabled. */
static void pair_follow(struct net_pair *pp)
{
	struct net *n = pp->n;
	struct virtio_dev *v = n->v;
	uint64_t cnt;
	if (read(pp->mode_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&v->lock);
	if (pp->vhost_want && pp->vhost && !pp->vhost_failed && !atomic_load(&pp->vhost_on) &&
	    v->started)
		atomic_store(&pp->vhost_on, vhost_try_start(pp));
	pp->vhost_want = false;
	bool on = atomic_load(&pp->vhost_on);
	bool enabled = pp->k < n->curr_pairs;
	pthread_mutex_unlock(&v->lock);
	if (pp->vhost)
		net_msix_changed(n);
	if (pp->k && enabled != pp->attached) {
		int r = tap_queue_attach(n->tap, pp->k, enabled);
		if (r)
			log_warn("virtio-net %s: %s tap queue %u: %s", n->name,
				 enabled ? "attaching" : "detaching", pp->k, strerror(-r));
		else
			pp->attached = enabled;
	}
	for (unsigned i = 0; i < 2; i++) {
		unsigned qi = 2 * pp->k + i;
		if (qi == ctrlq(n))
			continue; /* without MQ, pair 1's receive queue is the control queue */
		int fd = v->q[qi].kick_fd;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = fd };
		if (on)
			epoll_ctl(pp->epfd, EPOLL_CTL_DEL, fd, NULL);
		else
			epoll_ctl(pp->epfd, EPOLL_CTL_ADD, fd, &ev); /* EEXIST when there */
	}
	watch_tap(pp, !on);
	pp->pkt_pending = false;
}

static void vhost_call(struct net_pair *pp, unsigned ring)
{
	uint64_t cnt;
	if (read(pp->call_fd[ring], &cnt, sizeof(cnt)) != sizeof(cnt))
		return;
	/* vhost already applied the ring's interrupt suppression. */
	virtio_queue_interrupt(pp->n->v, 2 * pp->k + ring);
}

/* ---- the pairs' threads (tap) ---- */

/* Whether pair pp's thread reads the control queue's re-kicks (the
 * guest's own kicks are served in its exit): pair 0's with MQ, where the
 * control queue is the last; without MQ it is queue 2, pair 1's receive
 * queue, whose thread reads it then. */
static bool reads_ctrl_kicks(const struct net_pair *pp)
{
	unsigned cq = ctrlq(pp->n);
	return cq == 2 * pp->n->npairs ? pp->k == 0 : cq == 2 * pp->k;
}

static void *net_thread(void *opaque)
{
	struct net_pair *pp = opaque;
	struct net *n = pp->n;
	struct virtio_dev *v = n->v;
	char tname[16];
	snprintf(tname, sizeof(tname), pp->k ? "virtio-net-%u" : "virtio-net", pp->k);
	pthread_setname_np(pthread_self(), tname);
	thread_role_enter(THREAD_ROLE_NET_IO);
	unsigned rxq = 2 * pp->k, txq = rxq + 1;
	int rxkick = v->q[rxq].kick_fd, txkick = v->q[txq].kick_fd;
	pair_follow(pp);
	if (!atomic_load(&pp->vhost_on) && pp->k < n->curr_pairs) {
		process_tx(pp);
		process_rx(pp);
	}
	if (reads_ctrl_kicks(pp))
		process_ctrl(n);
	for (;;) {
		struct epoll_event ev[8];
		int k = epoll_wait(pp->epfd, ev, 8, -1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			log_error("virtio-net: epoll: %s", strerror(errno));
			return NULL;
		}
		bool rx = false;
		/* Features, hence the control queue's index, change only
		 * across a reset, which this thread outlives: looked at each
		 * round. */
		bool ctrl_mine = reads_ctrl_kicks(pp);
		int ctrlkick = v->q[ctrlq(n)].kick_fd;
		for (int i = 0; i < k; i++) {
			int fd = ev[i].data.fd;
			bool own = !atomic_load(&pp->vhost_on);
			/* Read without the lock: a stale answer costs one round
			 * (a detached pair's kick served, or left for the next). */
			bool enabled = pp->k < n->curr_pairs;
			if (fd == n->stop_fd)
				return NULL;
			if (fd == pp->mode_fd) {
				pair_follow(pp);
			} else if (fd == pp->call_fd[0] || fd == pp->call_fd[1]) {
				vhost_call(pp, fd == pp->call_fd[1]);
			} else if (fd == n->link_fd) {
				link_event(n);
			} else if (fd == ctrlkick && ctrl_mine) {
				process_ctrl(n);
			} else if (fd == txkick && own) {
				if (enabled)
					process_tx(pp);
			} else if (fd == rxkick && own) {
				if (pp->rx_waiting)
					watch_tap(pp, true);
				rx = true;
			} else if (fd == pp->fd && own) {
				rx = true;
			}
		}
		if (rx && !pp->rx_waiting && !atomic_load(&pp->vhost_on))
			process_rx(pp);
	}
}

/* ---- transport hooks ---- */

static int pair_buffers(struct net_pair *pp)
{
	if (!pp->iov && !(pp->iov = calloc(NET_BATCH, sizeof(*pp->iov))))
		return -ENOMEM;
	if (!pp->chains && !(pp->chains = calloc(NET_BATCH, sizeof(*pp->chains))))
		return -ENOMEM;
	if (!pp->rxiov && !(pp->rxiov = calloc(NET_RX_BUFS, sizeof(*pp->rxiov))))
		return -ENOMEM;
	if (!pp->rxchains && !(pp->rxchains = calloc(NET_RX_BUFS, sizeof(*pp->rxchains))))
		return -ENOMEM;
	return 0;
}

static int start_thread(struct net_pair *pp)
{
	struct net *n = pp->n;
	struct virtio_dev *v = n->v;
	if (!pp->pkt && !(pp->pkt = malloc(NET_PKT_MAX)))
		return -ENOMEM;
	if (!pp->have_ring) /* without it (io_uring disabled), a writev each */
		pp->have_ring = io_uring_queue_init(NET_BATCH, &pp->ring, 0) == 0;
	if (pp->epfd < 0 && (pp->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	if (pp->mode_fd < 0 && (pp->mode_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return -errno;
	for (int i = 0; i < 2 && pp->vhost; i++)
		if (pp->call_fd[i] < 0 && (pp->call_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			return -errno;
	/* Every pair's thread watches both control-queue candidates' kicks
	 * only where it may be the one to read them (net_thread). */
	unsigned rxq = 2 * pp->k;
	int ctrl_fd = pp->k == 0 ? v->q[2 * n->npairs].kick_fd : -1;
	if (n->npairs > 1 && pp->k == 1)
		ctrl_fd = v->q[2].kick_fd; /* the control queue without MQ */
	int fds[] = { n->stop_fd, pp->mode_fd, v->q[rxq].kick_fd, v->q[rxq + 1].kick_fd, ctrl_fd,
		      pp->fd, pp->call_fd[0], pp->call_fd[1], pp->k == 0 ? n->link_fd : -1 };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (fds[i] < 0)
			continue;
		/* Kicks edge-triggered: each write of a kick eventfd is an
		 * event of its own, so the thread need not read it (one
		 * system call less per wakeup). */
		bool kick = i >= 2 && i <= 4;
		struct epoll_event ev = { .events = EPOLLIN | (kick ? EPOLLET : 0), .data.fd = fds[i] };
		if (epoll_ctl(pp->epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0 && errno != EEXIST)
			return -errno;
	}
	pp->rx_waiting = false;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int r = -pthread_create(&pp->thread, &attr, net_thread, pp);
	pthread_attr_destroy(&attr);
	if (r)
		return r;
	pp->running = true;
	return 0;
}

/* Safe to call again: each piece is made once and kept until destroy. */
static int net_start(struct virtio_dev *v)
{
	struct net *n = v->opaque;
	if (n->be == NET_BE_TAP) {
		/* The offloads are the tap's, whichever queue sets them. */
		int r = tap_set_offload(n->tap, virtio_has_feature(v, VIRTIO_NET_F_GUEST_CSUM),
					virtio_has_feature(v, VIRTIO_NET_F_GUEST_TSO4),
					virtio_has_feature(v, VIRTIO_NET_F_GUEST_TSO6),
					virtio_has_feature(v, VIRTIO_NET_F_GUEST_ECN));
		if (r)
			log_warn("virtio-net %s: setting offloads: %s", n->name, strerror(-r));
	}
	for (unsigned k = 0; k < n->npairs; k++) {
		int r = pair_buffers(&n->pair[k]);
		if (r)
			return r;
	}
	if (n->be == NET_BE_SLIRP) {
		if (!n->slirp_tx && !(n->slirp_tx = malloc(NET_SLIRP_SLOT)))
			return -ENOMEM;
		return 0; /* the event loop serves the queues */
	}
	for (unsigned k = 0; k < n->npairs; k++) {
		struct net_pair *pp = &n->pair[k];
		if (pp->vhost && !pp->vhost_failed && k < usable_pairs(n)) {
			/* The pair's thread switches over when nothing of its
			 * own path is in flight. */
			pp->vhost_want = true;
			if (pp->mode_fd >= 0)
				signal_fd(pp->mode_fd);
		}
		if (!pp->running) {
			int r = start_thread(pp);
			if (r)
				return r;
		}
	}
	return 0;
}

static void net_reset(struct virtio_dev *v)
{
	struct net *n = v->opaque;
	for (unsigned k = 0; k < n->npairs; k++) {
		struct net_pair *pp = &n->pair[k];
		bool follow = k >= n->curr_pairs ? false : k > 0; /* an enabled pair detaches */
		if (atomic_load(&pp->vhost_on)) {
			follow = true;
			/* Before the driver's reset returns: the kernel stops
			 * touching the rings (SET_BACKEND -1 waits for its worker). */
			vhost_net_stop(pp->vhost);
			atomic_store(&pp->vhost_on, false);
			pthread_mutex_lock(&n->call_lock);
			pp->call_bound[0] = pp->call_bound[1] = -1;
			pthread_mutex_unlock(&n->call_lock);
		}
		pp->vhost_want = false;
		if (follow && pp->mode_fd >= 0)
			signal_fd(pp->mode_fd); /* back to its own path; detached if k > 0 */
	}
	n->curr_pairs = 1; /* 5.1.6.5.5: only the first pair after a reset */
	net_filter_reset(&n->filter, n->s.mac);
	memcpy(n->cfg, n->s.mac, 6);
	n->cfg[6] &= (uint8_t)~VIRTIO_NET_S_ANNOUNCE;
}

static void net_cfg_read(struct virtio_dev *v, unsigned off, void *buf, unsigned len)
{
	struct net *n = v->opaque;
	memcpy(buf, n->cfg + off, len);
}

static void net_notify(struct virtio_dev *v, unsigned q)
{
	struct net *n = v->opaque;
	if (q == ctrlq(n)) {
		/* The guest's kick, in its vCPU's exit (it spins on the
		 * answer), or the device's own re-kick. */
		process_ctrl(n);
		return;
	}
	if (n->be != NET_BE_SLIRP)
		return; /* the pairs' threads read the kicks; a kick of queue
			   2N in the exit without MQ names no queue */
	/* slirp (one pair): kicks are read on the event loop, libslirp's thread. */
	if (q == 1)
		process_tx(&n->pair[0]);
	else if (q == 0)
		slirp_flush(n);
}

static void pair_free(struct net_pair *pp)
{
	if (pp->have_ring)
		io_uring_queue_exit(&pp->ring);
	vhost_net_close(pp->vhost);
	int fds[] = { pp->epfd, pp->mode_fd, pp->call_fd[0], pp->call_fd[1] };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(pp->pkt);
	free(pp->iov);
	free(pp->chains);
	free(pp->rxiov);
	free(pp->rxchains);
}

static void net_destroy(struct virtio_dev *v)
{
	struct net *n = v->opaque;
	signal_fd(n->stop_fd);
	for (unsigned k = 0; k < n->npairs; k++) {
		struct net_pair *pp = &n->pair[k];
		if (!pp->running)
			continue;
		pthread_join(pp->thread, NULL);
		log_debug("virtio-net %s: pair %u: khyve's own path moved %llu frames out, %llu in",
			  n->name, k, (unsigned long long)pp->own_tx, (unsigned long long)pp->own_rx);
	}
	pci_msix_set_watch(v->pci, NULL, NULL);
	pthread_mutex_destroy(&n->call_lock);
	pthread_mutex_destroy(&n->ctrl_lock);
	for (unsigned k = 0; k < n->npairs; k++)
		pair_free(&n->pair[k]);
	free(n->pair);
	slirp_be_close(n->slirp);
	int fds[] = { n->stop_fd, n->link_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(n->slirp_q);
	free(n->slirp_tx);
	tap_close(n->tap);
	free(n);
}

static const struct virtio_dev_ops net_ops = {
	.cfg_read = net_cfg_read,
	.queue_notify = net_notify,
	.start = net_start,
	.reset = net_reset,
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
	s->restricted = false;
	for (int i = 0; i < nw; i++) {
		const char *k = w[i].key, *val = w[i].value;
		const char *tap = NULL;
		if (i == 0 && !val && !strcmp(k, "slirp")) {
			s->be = NET_BE_SLIRP;
			continue;
		}
		if (i == 0 && !val)
			tap = k;
		else if (!strcmp(k, "backend") && val)
			tap = val;
		if (tap && !strcmp(tap, "slirp")) {
			s->be = NET_BE_SLIRP;
		} else if (tap) {
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
		} else if (!strcmp(k, "vhost") && val) {
			if (strcmp(val, "on") && strcmp(val, "off")) {
				snprintf(err, errlen, "vhost=%s: expected on or off", val);
				goto fail;
			}
			s->vhost = !strcmp(val, "on");
		} else if (!strcmp(k, "queues") && val) {
			/* QEMU's meaning: queue pairs, each on a tap queue. */
			char *end;
			unsigned long q = strtoul(val, &end, 10);
			if (!*val || *end || q < 1 || q > NET_MAX_PAIRS) {
				snprintf(err, errlen, "queues=%s: expected 1-%d (queue pairs)", val,
					 NET_MAX_PAIRS);
				goto fail;
			}
			s->queues = (unsigned)q;
		} else if (!strcmp(k, "hostfwd") && val) {
			/* bhyve separates several rules with ';'; a repeated
			 * hostfwd= adds more. The value lives in s->buf. */
			for (char *rule = (char *)val, *next; rule; rule = next) {
				next = strchr(rule, ';');
				if (next)
					*next++ = 0;
				if (!*rule)
					continue;
				if (s->nhostfwd == SLIRP_BE_MAX_HOSTFWD) {
					snprintf(err, errlen, "hostfwd: at most %d rules",
						 SLIRP_BE_MAX_HOSTFWD);
					goto fail;
				}
				if (slirp_be_check_hostfwd(rule, err, errlen))
					goto fail;
				s->hostfwd[s->nhostfwd++] = rule;
			}
		} else if (!strcmp(k, "open") && !val) {
			s->restricted = false; /* bhyve's word; the default here too */
		} else if (!strcmp(k, "restrict") && !val) {
			s->restricted = true;
		} else {
			snprintf(err, errlen,
				 "virtio-net: unknown option '%s%s%s' (expected TAPNAME or slirp, mac=, mtu=, vhost=, queues=, hostfwd=)",
				 k, val ? "=" : "", val ? val : "");
			goto fail;
		}
	}
	if (s->be == NET_BE_TAP && (s->nhostfwd || s->restricted)) {
		snprintf(err, errlen, "hostfwd= and restrict are slirp options: slot,virtio-net,slirp,hostfwd=..");
		goto fail;
	}
	if (s->be == NET_BE_SLIRP && s->queues > 1) {
		snprintf(err, errlen, "queues=%u needs a tap interface, not slirp", s->queues);
		goto fail;
	}
	if (s->be == NET_BE_SLIRP && s->vhost) {
		snprintf(err, errlen, "vhost=on needs a tap interface, not slirp");
		goto fail;
	}
	if (s->be == NET_BE_SLIRP && s->mtu > 1500) {
		snprintf(err, errlen, "mtu=%u: slirp's MTU is at most 1500", s->mtu);
		goto fail;
	}
	if (s->be == NET_BE_TAP && !s->tap[0]) {
		snprintf(err, errlen, "virtio-net needs a tap interface or slirp: slot,virtio-net,TAPNAME[,mac=..] or slot,virtio-net,slirp[,hostfwd=..]");
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

/* The device on an opened backend (tap, or NULL for slirp). */
static int net_create_with(struct pci_bus *bus, unsigned slot, unsigned func,
			   const struct net_settings *s, struct platform *p, struct tap *tap,
			   bool watch_link, struct virtio_dev **out, char *err, size_t errlen)
{
	struct net *n = calloc(1, sizeof(*n));
	unsigned npairs = tap && tap->nqueues > 1 ? tap->nqueues : 1;
	struct net_pair *pair = n ? calloc(npairs, sizeof(*pair)) : NULL;
	if (!pair) {
		free(n);
		tap_close(tap);
		return -ENOMEM;
	}
	n->p = p;
	n->s = *s;
	n->s.buf = NULL;
	n->s.nhostfwd = 0; /* the rules point into the caller's buffer */
	n->be = s->be;
	n->npairs = npairs;
	n->curr_pairs = 1;
	n->pair = pair;
	n->stop_fd = n->link_fd = -1;
	for (unsigned k = 0; k < npairs; k++) {
		struct net_pair *pp = &pair[k];
		pp->n = n;
		pp->k = k;
		pp->fd = tap ? tap_queue_fd(tap, k) : -1;
		pp->attached = true;
		pp->epfd = pp->mode_fd = -1;
		pp->call_fd[0] = pp->call_fd[1] = -1;
		pp->call_bound[0] = pp->call_bound[1] = -1;
		atomic_init(&pp->vhost_on, false);
	}
	pthread_mutex_init(&n->call_lock, NULL);
	pthread_mutex_init(&n->ctrl_lock, NULL);
	n->tap = tap;
	n->name = tap ? tap->name : "slirp";
	atomic_init(&n->link_up, true);
	int r;
	if (tap && !n->tap->vnet_hdr) {
		snprintf(err, errlen, "%s: the tap driver has no virtio-net header support", s->tap);
		r = -EOPNOTSUPP;
		goto fail;
	}
	if (tap && (n->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		r = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	/* Until the guest enables them, the other pairs' tap queues take no
	 * flows (the kernel steers only to attached queues). */
	for (unsigned k = 1; k < npairs; k++) {
		if ((r = tap_queue_attach(tap, k, false))) {
			snprintf(err, errlen, "%s: detaching tap queue %u: %s", s->tap, k, strerror(-r));
			goto fail;
		}
		pair[k].attached = false;
	}
	if (!s->have_mac)
		virtio_net_default_mac(slot, func, p->vm_name, n->s.mac);
	memcpy(n->cfg, n->s.mac, 6);
	net_filter_reset(&n->filter, n->s.mac);
	n->cfg[6] = VIRTIO_NET_S_LINK_UP; /* status */
	n->cfg[8] = (uint8_t)npairs;      /* max_virtqueue_pairs */
	n->cfg[9] = (uint8_t)(npairs >> 8);
	n->cfg[10] = (uint8_t)s->mtu;
	n->cfg[11] = (uint8_t)(s->mtu >> 8);
	uint64_t features = 1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS |
			    1ULL << VIRTIO_NET_F_MRG_RXBUF | 1ULL << VIRTIO_NET_F_CTRL_VQ |
			    1ULL << VIRTIO_NET_F_CTRL_RX | 1ULL << VIRTIO_NET_F_GUEST_ANNOUNCE |
			    1ULL << VIRTIO_NET_F_CTRL_MAC_ADDR;
	if (npairs > 1)
		features |= 1ULL << VIRTIO_NET_F_MQ; /* queues=1 offers what it always did */
	if (tap)
		/* libslirp wants whole frames with their checksums: offloads
		 * only on a tap, whose kernel side does them. */
		features |= 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM |
			    1ULL << VIRTIO_NET_F_HOST_TSO4 | 1ULL << VIRTIO_NET_F_HOST_TSO6 |
			    1ULL << VIRTIO_NET_F_HOST_ECN | 1ULL << VIRTIO_NET_F_GUEST_TSO4 |
			    1ULL << VIRTIO_NET_F_GUEST_TSO6 | 1ULL << VIRTIO_NET_F_GUEST_ECN;
	if (s->mtu)
		features |= 1ULL << VIRTIO_NET_F_MTU;
	if (tap && watch_link) {
		bool up;
		if (tap_link_now(tap, &up) == 0 && !up) {
			atomic_store(&n->link_up, false);
			n->cfg[6] = 0;
		}
		n->link_fd = tap_link_watch(); /* without it the link stays as it is */
		if (n->link_fd < 0)
			log_warn("virtio-net %s: cannot watch the link state: %s", n->name,
				 strerror(-n->link_fd));
	}
	if (tap && s->vhost) {
		/* One /dev/vhost-net per pair, as QEMU opens them. */
		for (unsigned k = 0; k < npairs; k++) {
			char why[160];
			if (vhost_net_open(&pair[k].vhost, &pair[k].vhost_features, why, sizeof(why))) {
				log_warn("virtio-net %s: vhost=on: %s; using khyve's own data path",
					 n->name, why);
				for (unsigned j = 0; j < k; j++) {
					vhost_net_close(pair[j].vhost);
					pair[j].vhost = NULL;
				}
				break;
			}
		}
	}
	if (!tap) {
		if (!(n->slirp_q = malloc((size_t)NET_SLIRP_PENDING * NET_SLIRP_SLOT))) {
			r = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		r = slirp_be_open(p->loop, s->hostfwd, s->nhostfwd, s->restricted, slirp_rx,
				  slirp_rx_done, n, &n->slirp, err, errlen);
		if (r)
			goto fail;
	}
	/* rx0, tx0, rx1, tx1, .., then the control queue (2N with MQ). */
	r = virtio_pci_create(bus, slot, func, p, "virtio-net", VIRTIO_ID_NET, 0x020000, features,
			      2 * npairs + 1, NET_QUEUE_SIZE, NET_CFG_SIZE, &net_ops, n, &n->v);
	if (r) {
		snprintf(err, errlen, "cannot create the device: %s", strerror(-r));
		goto fail;
	}
	virtio_queue_serve_in_exit(n->v, 2 * npairs);
	if (!tap && (r = virtio_kicks_on_loop(n->v))) {
		/* the device is the bus's now; it frees n at destroy */
		snprintf(err, errlen, "slirp: cannot watch the queues: %s", strerror(-r));
		return r;
	}
	if (pair[0].vhost)
		pci_msix_set_watch(n->v->pci, net_msix_changed, n);
	if (out)
		*out = n->v;
	return 0;
fail:
	if (n->link_fd >= 0)
		close(n->link_fd);
	if (n->stop_fd >= 0)
		close(n->stop_fd);
	for (unsigned k = 0; k < npairs; k++)
		vhost_net_close(pair[k].vhost);
	slirp_be_close(n->slirp);
	free(n->slirp_q);
	tap_close(n->tap);
	free(pair);
	free(n);
	return r;
}

static int net_create(struct pci_bus *bus, unsigned slot, unsigned func, void *settings,
		      struct platform *p, char *err, size_t errlen)
{
	struct net_settings *s = settings;
	struct tap *tap = NULL;
	if (s->be == NET_BE_TAP) {
		int r = tap_open_queues(s->tap, s->queues ? s->queues : 1, &tap, err, errlen);
		if (r)
			return r;
	}
	return net_create_with(bus, slot, func, s, p, tap, true, NULL, err, errlen);
}
int virtio_net_create_on_tap(struct pci_bus *bus, unsigned slot, unsigned func, struct platform *p,
			     struct tap *tap, struct virtio_dev **out, char *err, size_t errlen)
{
	struct net_settings s = { .mac = { 0x02, 0, 0, 0, 0, 1 }, .have_mac = true };
	snprintf(s.tap, sizeof(s.tap), "%s", tap->name);
	return net_create_with(bus, slot, func, &s, p, tap, false, out, err, errlen);
}

const struct pci_emul pci_emul_virtio_net = {
	.name = "virtio-net", .parse = net_parse, .free_settings = net_free_settings,
	.create = net_create,
};
