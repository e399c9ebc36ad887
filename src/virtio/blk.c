/* virtio-blk (5.2) on a raw image or block device (backend/disk.c).
 *
 * bhyve's conf: path[,ro][,nocache][,direct][,nodelete]
 * [,sectorsize=logical[/physical]][,ser=ID] (also path=FILE).
 *
 * One thread per device, started when the driver sets DRIVER_OK, owns an
 * io_uring: it reads the queue's kick eventfd through the ring, turns each
 * chain into one read, write, fdatasync or fallocate, and completes it
 * when the ring says so. A request is reported done only when the host
 * kernel has its data (flush: fdatasync), so what the guest was told is on
 * disk survives khyve being killed.
 *
 * The runtime contract (vdev_work.h): chains are taken with vdev_take and
 * given back with vdev_give, so a device reset waits until every request
 * in flight has finished: no read started before the reset writes guest
 * RAM after it. Each kick or completion takes at most VDEV_BUDGET chains.
 * start() makes the thread, the ring and the requests once; a retry after
 * a failure goes on from what is there.
 *
 * Sizes: the device advertises seg_max (BLK_SEG_MAX data segments) and
 * size_max (BLK_SIZE_MAX per segment), and refuses a request longer than
 * their product. With nocache (O_DIRECT) a request whose buffers are not
 * aligned goes through a bounce buffer of BLK_BOUNCE_LEN bytes per request
 * slot, piece by piece: host memory stays bounded whatever the guest asks
 * (at most BLK_QUEUE_SIZE * BLK_BOUNCE_LEN, made on first use). */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend/disk.h"
#include "pci/slots.h"
#include "util/log.h"
#include "util/thread_role.h"
#include "virtio/vdev_work.h"
#include "virtio/virtio_pci.h"

#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX 126 /* data segments per request */
#define BLK_IOV_MAX (BLK_SEG_MAX + 2)
#define BLK_SIZE_MAX (256u << 10) /* bytes per segment (size_max) */
#define BLK_REQ_MAX ((uint64_t)BLK_SEG_MAX * BLK_SIZE_MAX)
#define BLK_BOUNCE_LEN (64u << 10) /* O_DIRECT bounce piece */
#define BLK_SERIAL_LEN 20

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define BLK_CFG_SIZE 60
#define MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per request */

/* user_data tags of the ring's own reads */
#define TAG_KICK 1
#define TAG_STOP 2

struct blk_settings {
	struct disk_options disk;
	char serial[BLK_SERIAL_LEN + 1];
	char *buf; /* holds the strings disk.path points into */
};

struct blk;

struct blk_req {
	struct blk *b;
	struct blk_req *next_free;
	uint32_t gen;
	uint16_t head;
	uint8_t type;
	bool slow; /* a flush or fallocate: may take long */
	uint8_t *status;
	uint32_t used_len; /* bytes written into the chain, status included */
	uint64_t offset;
	uint64_t remaining; /* bytes the current operation still has to move */
	int niov;
	struct iovec chain[BLK_IOV_MAX]; /* the chain as popped */
	struct iovec data[BLK_IOV_MAX];  /* its data part */
	/* O_DIRECT with unaligned buffers: data moves through bounce (made
	 * once, BLK_BOUNCE_LEN) one piece at a time. */
	void *bounce;
	bool bouncing;
	uint64_t done;  /* data bytes moved so far */
	uint32_t piece; /* bytes of the piece in flight */
};

struct blk {
	struct virtio_dev *v;
	struct platform *p;
	struct disk *disk;
	struct blk_settings s;
	bool discard;
	uint8_t cfg[BLK_CFG_SIZE];

	/* The I/O thread and its ring, made at the first DRIVER_OK (each
	 * once: start() may be called again after a failure or a reset). */
	bool ring_ok;
	bool running;
	pthread_t thread;
	struct io_uring ring;
	int stop_fd;
	uint64_t kick_buf, stop_buf;
	struct blk_req *reqs, *free_reqs;
	bool stalled; /* the queue has chains but no request was free */
	/* Requests taken and not finished, and the slow ones among them.
	 * While fast ones are in flight the driver's kicks are switched off:
	 * the thread looks at the ring at every completion anyway, and the
	 * guest saves an exit per request. */
	unsigned busy, slow;
};

/* ---- completing requests ---- */

/* Give the chain back (vdev_give: dropped after a reset) and free the
 * request slot. */
static void finish(struct blk_req *r, uint8_t status, bool *pushed)
{
	struct blk *b = r->b;
	struct virtio_dev *v = b->v;
	r->bouncing = false;
	pthread_mutex_lock(&v->lock);
	/* The status byte is guest RAM: written only while the chain is still
	 * the driver's request, i.e. before any reset. */
	if (r->gen == v->reset_gen)
		*r->status = status;
	struct vdev_used u = { r->head, status == VIRTIO_BLK_S_OK ? r->used_len : 1 };
	if (vdev_give_locked(v, 0, r->gen, &u, 1, false))
		*pushed = true;
	pthread_mutex_unlock(&v->lock);
	r->next_free = b->free_reqs;
	b->free_reqs = r;
	b->busy--;
	if (r->slow)
		b->slow--;
	r->slow = false;
}

/* Whether the driver reset the device since r was taken: then it is
 * finished at once instead of going on. */
static bool stale(const struct blk_req *r)
{
	return r->gen != __atomic_load_n(&r->b->v->reset_gen, __ATOMIC_ACQUIRE);
}

/* Copy between the request's data segments (from byte pos) and buf. */
static void data_copy(struct blk_req *r, uint64_t pos, void *buf, size_t n, bool to_guest)
{
	uint8_t *p = buf;
	for (int i = 0; i < r->niov && n; i++) {
		size_t l = r->data[i].iov_len;
		if (pos >= l) {
			pos -= l;
			continue;
		}
		size_t m = l - pos < n ? l - pos : n;
		uint8_t *g = (uint8_t *)r->data[i].iov_base + pos;
		if (to_guest)
			memcpy(g, p, m);
		else
			memcpy(p, g, m);
		p += m;
		n -= m;
		pos = 0;
	}
}

static struct io_uring_sqe *get_sqe(struct blk *b)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	if (!sqe) {
		io_uring_submit(&b->ring);
		sqe = io_uring_get_sqe(&b->ring);
	}
	return sqe;
}

/* Skip n bytes of an iovec array (after a short transfer). */
static void iov_advance(struct iovec **iov, int *n, size_t bytes)
{
	while (*n && bytes >= (*iov)->iov_len) {
		bytes -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n && bytes) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + bytes;
		(*iov)->iov_len -= bytes;
	}
}

static bool submit_rw(struct blk *b, struct blk_req *r, struct iovec *iov, int n)
{
	struct io_uring_sqe *sqe = get_sqe(b);
	if (!sqe)
		return false;
	if (r->type == VIRTIO_BLK_T_IN)
		io_uring_prep_readv(sqe, b->disk->fd, iov, (unsigned)n, r->offset);
	else
		io_uring_prep_writev(sqe, b->disk->fd, iov, (unsigned)n, r->offset);
	io_uring_sqe_set_data(sqe, r);
	return true;
}

/* The next piece through the bounce buffer. */
static bool submit_bounce(struct blk *b, struct blk_req *r)
{
	struct io_uring_sqe *sqe = get_sqe(b);
	if (!sqe)
		return false;
	r->piece = r->remaining < BLK_BOUNCE_LEN ? (uint32_t)r->remaining : BLK_BOUNCE_LEN;
	if (r->type == VIRTIO_BLK_T_IN) {
		io_uring_prep_read(sqe, b->disk->fd, r->bounce, r->piece, r->offset);
	} else {
		data_copy(r, r->done, r->bounce, r->piece, false);
		io_uring_prep_write(sqe, b->disk->fd, r->bounce, r->piece, r->offset);
	}
	io_uring_sqe_set_data(sqe, r);
	return true;
}

static void on_rw_done(struct blk *b, struct blk_req *r, int res, bool *pushed)
{
	if (res < 0) {
		log_warn("virtio-blk %s: %s at %llu: %s", b->disk->path,
			 r->type == VIRTIO_BLK_T_IN ? "read" : "write", (unsigned long long)r->offset,
			 strerror(-res));
		finish(r, VIRTIO_BLK_S_IOERR, pushed);
		return;
	}
	if (r->bouncing) {
		uint64_t n = (uint64_t)res < r->piece ? (uint64_t)res : r->piece;
		if (n == 0 || stale(r)) {
			finish(r, VIRTIO_BLK_S_IOERR, pushed);
			return;
		}
		if (r->type == VIRTIO_BLK_T_IN)
			data_copy(r, r->done, r->bounce, (size_t)n, true);
		r->done += n;
		r->offset += n;
		r->remaining -= n;
		if (!r->remaining)
			finish(r, VIRTIO_BLK_S_OK, pushed);
		else if (!submit_bounce(b, r))
			finish(r, VIRTIO_BLK_S_IOERR, pushed);
		return;
	}
	if ((uint64_t)res >= r->remaining) {
		finish(r, VIRTIO_BLK_S_OK, pushed);
		return;
	}
	if (res == 0 || stale(r)) { /* end of a file that shrank under us, or a reset */
		finish(r, VIRTIO_BLK_S_IOERR, pushed);
		return;
	}
	/* Short transfer: go on with the rest. */
	r->remaining -= (uint64_t)res;
	r->offset += (uint64_t)res;
	/* The rest of data[], from a copy (finish() never needs data[] again
	 * without a bounce buffer). */
	struct iovec *iov = r->data;
	int n = r->niov;
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += r->data[i].iov_len;
	iov_advance(&iov, &n, total - r->remaining);
	memmove(r->data, iov, (size_t)n * sizeof(*iov));
	r->niov = n;
	if (!submit_rw(b, r, r->data, n))
		finish(r, VIRTIO_BLK_S_IOERR, pushed);
}

/* ---- starting requests ---- */

struct blk_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

struct blk_dwz {
	uint64_t sector;
	uint32_t num_sectors, flags;
};

/* Builds r->data from the chain: the out part after the header (writes,
 * discard) or the in part without the status byte (reads, get-id). */
static bool data_iov(struct blk_req *r, const struct vq_chain *c, bool in, size_t skip, size_t *len)
{
	unsigned first = in ? c->nout : 0, n = in ? c->nin : c->nout;
	uint64_t total = in ? c->in_len - 1 : c->out_len - skip;
	int k = 0;
	*len = 0;
	for (unsigned i = first; i < first + n && *len < total; i++) {
		size_t l = c->iov[i].iov_len;
		uint8_t *base = c->iov[i].iov_base;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		base += skip;
		l -= skip;
		skip = 0;
		if (l > total - *len)
			l = total - *len;
		r->data[k++] = (struct iovec){ base, l };
		*len += l;
	}
	r->niov = k;
	return true;
}

static bool aligned(const struct blk_req *r, uint32_t align)
{
	for (int i = 0; i < r->niov; i++)
		if (((uintptr_t)r->data[i].iov_base | r->data[i].iov_len) & (align - 1))
			return false;
	return true;
}

/* Returns false when the request could not be queued (no SQE). */
static bool start_request(struct blk *b, struct blk_req *r, const struct vq_chain *c, bool *pushed)
{
	struct blk_hdr h;
	r->used_len = 1;
	if (c->in_len < 1) {
		/* No status byte: nothing can tell the driver; return the chain. */
		log_guest("virtio-blk: request without a status byte");
		r->status = (uint8_t *)&r->type; /* a harmless place */
		finish(r, VIRTIO_BLK_S_IOERR, pushed);
		return true;
	}
	struct iovec *last = &c->iov[c->nout + c->nin - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	if (vq_chain_read(c, 0, &h, sizeof(h)) != sizeof(h)) {
		finish(r, VIRTIO_BLK_S_IOERR, pushed);
		return true;
	}
	r->type = (uint8_t)h.type;
	size_t len;
	uint64_t size = b->disk->size;
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool in = h.type == VIRTIO_BLK_T_IN;
		data_iov(r, c, in, in ? 0 : sizeof(h), &len);
		if (!in && b->disk->ro) {
			finish(r, VIRTIO_BLK_S_IOERR, pushed);
			return true;
		}
		if (len > BLK_REQ_MAX) {
			log_guest("virtio-blk: %s of %zu bytes is over seg_max * size_max",
				  in ? "read" : "write", len);
			finish(r, VIRTIO_BLK_S_IOERR, pushed);
			return true;
		}
		if (len % 512 || h.sector > (size >> 9) || len > size - (h.sector << 9)) {
			log_guest("virtio-blk: %s of %zu bytes at sector %llu is outside the disk",
				  in ? "read" : "write", len, (unsigned long long)h.sector);
			finish(r, VIRTIO_BLK_S_IOERR, pushed);
			return true;
		}
		if (len == 0) {
			finish(r, VIRTIO_BLK_S_OK, pushed);
			return true;
		}
		r->offset = h.sector << 9;
		r->remaining = len;
		r->used_len = in ? (uint32_t)len + 1 : 1;
		if (b->disk->nocache && !aligned(r, 512)) {
			if (!r->bounce && posix_memalign(&r->bounce, 4096, BLK_BOUNCE_LEN)) {
				r->bounce = NULL;
				finish(r, VIRTIO_BLK_S_IOERR, pushed);
				return true;
			}
			/* data[] keeps the guest's buffers; the ring gets the bounce */
			r->bouncing = true;
			r->done = 0;
			return submit_bounce(b, r);
		}
		return submit_rw(b, r, r->data, r->niov);
	}
	case VIRTIO_BLK_T_FLUSH: {
		struct io_uring_sqe *sqe = get_sqe(b);
		if (!sqe)
			return false;
		io_uring_prep_fsync(sqe, b->disk->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data(sqe, r);
		r->slow = true;
		b->slow++;
		r->remaining = 0;
		return true;
	}
	case VIRTIO_BLK_T_GET_ID: {
		data_iov(r, c, true, 0, &len);
		size_t n = len < BLK_SERIAL_LEN ? len : BLK_SERIAL_LEN;
		char id[BLK_SERIAL_LEN] = { 0 };
		memcpy(id, b->s.serial, strnlen(b->s.serial, BLK_SERIAL_LEN));
		size_t off = 0;
		for (int i = 0; i < r->niov && off < n; i++) {
			size_t m = r->data[i].iov_len < n - off ? r->data[i].iov_len : n - off;
			memcpy(r->data[i].iov_base, id + off, m);
			off += m;
		}
		r->used_len = (uint32_t)n + 1;
		finish(r, VIRTIO_BLK_S_OK, pushed);
		return true;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		bool wz = h.type == VIRTIO_BLK_T_WRITE_ZEROES;
		struct blk_dwz seg;
		if ((!wz && !b->discard) || b->disk->ro) {
			finish(r, b->disk->ro ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_UNSUPP, pushed);
			return true;
		}
		/* max_discard_seg = max_write_zeroes_seg = 1 */
		if (c->out_len - sizeof(h) != sizeof(seg) ||
		    vq_chain_read(c, sizeof(h), &seg, sizeof(seg)) != sizeof(seg) ||
		    (seg.flags & ~1u) || (!wz && seg.flags) || seg.num_sectors > MAX_DISCARD_SECTORS ||
		    seg.sector > (size >> 9) || ((uint64_t)seg.num_sectors << 9) > size - (seg.sector << 9)) {
			finish(r, VIRTIO_BLK_S_IOERR, pushed);
			return true;
		}
		if (seg.num_sectors == 0) {
			finish(r, VIRTIO_BLK_S_OK, pushed);
			return true;
		}
		int mode = FALLOC_FL_KEEP_SIZE;
		if (!wz || ((seg.flags & 1) && b->discard))
			mode |= FALLOC_FL_PUNCH_HOLE; /* reads give zeroes afterwards */
		else
			mode |= FALLOC_FL_ZERO_RANGE;
		struct io_uring_sqe *sqe = get_sqe(b);
		if (!sqe)
			return false;
		r->offset = seg.sector << 9;
		r->remaining = (uint64_t)seg.num_sectors << 9;
		io_uring_prep_fallocate(sqe, b->disk->fd, mode, r->offset, r->remaining);
		io_uring_sqe_set_data(sqe, r);
		r->slow = true;
		b->slow++;
		return true;
	}
	default:
		finish(r, VIRTIO_BLK_S_UNSUPP, pushed);
		return true;
	}
}

/* Write zeroes by hand where the file system cannot (rare). */
static int write_zeroes(struct blk *b, uint64_t off, uint64_t len)
{
	static const uint8_t zero[65536] __attribute__((aligned(4096)));
	while (len) {
		size_t n = len < sizeof(zero) ? len : sizeof(zero);
		ssize_t w = pwrite(b->disk->fd, zero, n, (off_t)off);
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

static void on_other_done(struct blk *b, struct blk_req *r, int res, bool *pushed)
{
	if (res == -EOPNOTSUPP || res == -EINVAL) {
		if (r->type == VIRTIO_BLK_T_DISCARD)
			res = 0; /* discard is advice */
		else if (r->type == VIRTIO_BLK_T_WRITE_ZEROES)
			res = write_zeroes(b, r->offset, r->remaining);
	}
	if (res < 0)
		log_warn("virtio-blk %s: %s: %s", b->disk->path,
			 r->type == VIRTIO_BLK_T_FLUSH ? "flush" : "discard/write-zeroes", strerror(-res));
	finish(r, res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, pushed);
}

static void arm_read(struct blk *b, int fd, uint64_t *buf, uint64_t tag)
{
	struct io_uring_sqe *sqe = get_sqe(b);
	if (!sqe)
		return;
	io_uring_prep_read(sqe, fd, buf, sizeof(*buf), 0);
	io_uring_sqe_set_data64(sqe, tag);
}

/* Take and start requests: at most one budget, then a kick to itself
 * (the ring reads the kick eventfd) so completions are served between. */
static void process_queue(struct blk *b, bool *pushed)
{
	struct virtio_dev *v = b->v;
	b->stalled = false;
	for (unsigned n = 0;; n++) {
		struct blk_req *r = b->free_reqs;
		if (!r) {
			b->stalled = true;
			return;
		}
		if (n == VDEV_BUDGET) {
			vdev_rekick(v, 0);
			return;
		}
		struct vq_chain c = { .cap = BLK_IOV_MAX, .iov = r->chain };
		uint32_t gen;
		pthread_mutex_lock(&v->lock);
		unsigned got = vdev_take_locked(v, 0, &c, 1, &gen);
		struct virtqueue *vq = virtio_queue(v, 0);
		if (!got && vq) {
			/* Empty. Kicks off while fast requests are in flight; on
			 * when idle, then a last look for what came meanwhile. */
			bool want = b->busy == 0 || b->slow > 0;
			if (!want && !vq->kicks_off)
				vq_enable_kicks(vq, false);
			else if (want && vq->kicks_off && vq_enable_kicks(vq, true))
				got = vdev_take_locked(v, 0, &c, 1, &gen);
		}
		pthread_mutex_unlock(&v->lock);
		if (!got)
			return;
		b->busy++;
		b->free_reqs = r->next_free;
		r->gen = gen;
		r->head = c.head;
		r->bouncing = false;
		if (!start_request(b, r, &c, pushed)) {
			/* no room in the ring: cannot happen with one SQE per chain */
			finish(r, VIRTIO_BLK_S_IOERR, pushed);
		}
	}
}

static void *blk_thread(void *opaque)
{
	struct blk *b = opaque;
	pthread_setname_np(pthread_self(), "virtio-blk");
	thread_role_enter(THREAD_ROLE_BLK_IO);
	arm_read(b, b->v->q[0].kick_fd, &b->kick_buf, TAG_KICK);
	arm_read(b, b->stop_fd, &b->stop_buf, TAG_STOP);
	bool pushed = false;
	process_queue(b, &pushed);
	for (;;) {
		if (pushed) {
			pthread_mutex_lock(&b->v->lock);
			virtio_queue_notify_guest(b->v, 0);
			pthread_mutex_unlock(&b->v->lock);
			pushed = false;
		}
		int r = io_uring_submit_and_wait(&b->ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			log_error("virtio-blk: io_uring: %s", strerror(-r));
			return NULL;
		}
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		bool kicked = false;
		io_uring_for_each_cqe(&b->ring, head, cqe) {
			seen++;
			uint64_t tag = cqe->user_data;
			if (tag == TAG_STOP)
				return NULL;
			if (tag == TAG_KICK) {
				kicked = true;
				continue;
			}
			struct blk_req *req = (struct blk_req *)(uintptr_t)tag;
			if (req->type <= VIRTIO_BLK_T_OUT)
				on_rw_done(b, req, cqe->res, &pushed);
			else
				on_other_done(b, req, cqe->res, &pushed);
		}
		io_uring_cq_advance(&b->ring, seen);
		if (kicked)
			arm_read(b, b->v->q[0].kick_fd, &b->kick_buf, TAG_KICK);
		/* Completions too: kicks may be off while requests are in flight. */
		if (seen)
			process_queue(b, &pushed);
	}
}

/* ---- transport hooks ---- */

/* Safe to call again: each piece is made once and kept until destroy. */
static int blk_start(struct virtio_dev *v)
{
	struct blk *b = v->opaque;
	if (b->running)
		return 0;
	if (!b->reqs) {
		b->reqs = calloc(BLK_QUEUE_SIZE, sizeof(*b->reqs));
		if (!b->reqs)
			return -ENOMEM;
		for (int i = BLK_QUEUE_SIZE - 1; i >= 0; i--) {
			b->reqs[i].b = b;
			b->reqs[i].next_free = b->free_reqs;
			b->free_reqs = &b->reqs[i];
		}
	}
	if (b->stop_fd < 0) {
		b->stop_fd = eventfd(0, EFD_CLOEXEC);
		if (b->stop_fd < 0)
			return -errno;
	}
	if (!b->ring_ok) {
		/* Room for every request plus the two eventfd reads. */
		int r = io_uring_queue_init(BLK_QUEUE_SIZE * 2, &b->ring, 0);
		if (r < 0)
			return r;
		b->ring_ok = true;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int r = -pthread_create(&b->thread, &attr, blk_thread, b);
	pthread_attr_destroy(&attr);
	if (r)
		return r;
	b->running = true;
	return 0;
}

static void blk_cfg_read(struct virtio_dev *v, unsigned off, void *buf, unsigned len)
{
	struct blk *b = v->opaque;
	memcpy(buf, b->cfg + off, len);
}

static void blk_notify(struct virtio_dev *v, unsigned q)
{
	(void)v;
	(void)q; /* kicks are read by the I/O thread's ring */
}

static void blk_destroy(struct virtio_dev *v)
{
	struct blk *b = v->opaque;
	if (b->running) {
		uint64_t one = 1;
		ssize_t w = write(b->stop_fd, &one, sizeof(one));
		(void)w;
		pthread_join(b->thread, NULL);
	}
	if (b->ring_ok)
		io_uring_queue_exit(&b->ring);
	if (b->stop_fd >= 0)
		close(b->stop_fd);
	if (b->reqs)
		for (int i = 0; i < BLK_QUEUE_SIZE; i++)
			free(b->reqs[i].bounce);
	free(b->reqs);
	disk_close(b->disk);
	free(b->s.buf);
	free(b);
}

static const struct virtio_dev_ops blk_ops = {
	.cfg_read = blk_cfg_read,
	.queue_notify = blk_notify,
	.start = blk_start,
	.destroy = blk_destroy,
};

/* ---- conf and creation ---- */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* bhyve's default serial: derived from the path, stable across runs. */
static void default_serial(const char *path, char *out)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	for (const char *p = path; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	snprintf(out, BLK_SERIAL_LEN + 1, "KHYVE-%04X-%04X-%04X", (unsigned)(h >> 48) & 0xFFFF,
		 (unsigned)(h >> 32) & 0xFFFF, (unsigned)(h >> 16) & 0xFFFF);
}

static void blk_free_settings(void *p)
{
	struct blk_settings *s = p;
	if (s)
		free(s->buf);
	free(s);
}

static int blk_parse(const char *conf, void **settings, char *err, size_t errlen)
{
	struct blk_settings *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	struct pci_conf_word w[PCI_CONF_MAX_WORDS];
	int n = pci_conf_split(conf, &s->buf, w, PCI_CONF_MAX_WORDS);
	if (n < 0) {
		snprintf(err, errlen, "too many options");
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		const char *k = w[i].key, *val = w[i].value;
		bool flag;
		if (i == 0 && !val) {
			s->disk.path = k;
		} else if (!strcmp(k, "path") && val && *val) {
			s->disk.path = val;
		} else if (!strcmp(k, "ro") || !strcmp(k, "nocache") || !strcmp(k, "direct") ||
			   !strcmp(k, "nodelete")) {
			if (pci_conf_bool(val, &flag)) {
				snprintf(err, errlen, "%s=%s: expected true or false", k, val);
				goto fail;
			}
			if (!strcmp(k, "ro"))
				s->disk.ro = flag;
			else if (!strcmp(k, "nocache"))
				s->disk.nocache = flag;
			else if (!strcmp(k, "direct"))
				s->disk.sync = flag;
			else
				s->disk.nodelete = flag;
		} else if (!strcmp(k, "sectorsize") && val) {
			char *end;
			unsigned long l = strtoul(val, &end, 10), p = l;
			if (*end == '/')
				p = strtoul(end + 1, &end, 10);
			if (*end || !l || l & (l - 1) || l < 512 || l > 65536 || !p || p & (p - 1) ||
			    p < l || p > 65536) {
				snprintf(err, errlen, "sectorsize=%s: expected logical[/physical], powers of two from 512 to 65536, physical >= logical",
					 val);
				goto fail;
			}
			s->disk.logical_sector = (uint32_t)l;
			s->disk.physical_sector = (uint32_t)p;
		} else if (!strcmp(k, "ser") && val) {
			if (strlen(val) > BLK_SERIAL_LEN) {
				snprintf(err, errlen, "ser=%s: at most %d characters", val, BLK_SERIAL_LEN);
				goto fail;
			}
			snprintf(s->serial, sizeof(s->serial), "%s", val);
		} else {
			snprintf(err, errlen, "virtio-blk: unknown option '%s%s%s' (expected path, ro, nocache, direct, nodelete, sectorsize=, ser=)",
				 k, val ? "=" : "", val ? val : "");
			goto fail;
		}
	}
	if (!s->disk.path) {
		snprintf(err, errlen, "virtio-blk needs an image: slot,virtio-blk,PATH[,options]");
		goto fail;
	}
	if (!s->serial[0])
		default_serial(s->disk.path, s->serial);
	*settings = s;
	return 0;
fail:
	blk_free_settings(s);
	return -EINVAL;
}

static int blk_create(struct pci_bus *bus, unsigned slot, unsigned func, void *settings,
		      struct platform *p, char *err, size_t errlen)
{
	struct blk_settings *s = settings;
	struct blk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->p = p;
	b->stop_fd = -1;
	b->s = *s;
	b->s.buf = NULL; /* the strings stay the settings' own */
	int r = disk_open(&s->disk, p->vm_name, &b->disk, err, errlen);
	if (r) {
		free(b);
		return r;
	}
	b->discard = !s->disk.nodelete && !b->disk->ro;
	uint64_t features = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_SIZE_MAX |
			    1ULL << VIRTIO_BLK_F_BLK_SIZE |
			    1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_TOPOLOGY;
	if (b->disk->ro)
		features |= 1ULL << VIRTIO_BLK_F_RO;
	else
		features |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	if (b->discard)
		features |= 1ULL << VIRTIO_BLK_F_DISCARD;

	uint32_t ls = b->disk->logical_sector, ps = b->disk->physical_sector;
	put_le(b->cfg + 0, b->disk->size >> 9, 8);          /* capacity */
	put_le(b->cfg + 8, BLK_SIZE_MAX, 4);                /* size_max */
	put_le(b->cfg + 12, BLK_SEG_MAX, 4);                /* seg_max */
	put_le(b->cfg + 20, ls, 4);                         /* blk_size */
	b->cfg[24] = (uint8_t)__builtin_ctz(ps / ls);       /* physical_block_exp */
	put_le(b->cfg + 26, 1, 2);                          /* min_io_size (blocks) */
	put_le(b->cfg + 28, ps / ls, 4);                    /* opt_io_size */
	put_le(b->cfg + 34, 1, 2);                          /* num_queues */
	put_le(b->cfg + 36, MAX_DISCARD_SECTORS, 4);        /* max_discard_sectors */
	put_le(b->cfg + 40, 1, 4);                          /* max_discard_seg */
	put_le(b->cfg + 44, ls / 512, 4);                   /* discard_sector_alignment */
	put_le(b->cfg + 48, MAX_DISCARD_SECTORS, 4);        /* max_write_zeroes_sectors */
	put_le(b->cfg + 52, 1, 4);                          /* max_write_zeroes_seg */
	b->cfg[56] = b->discard;                            /* write_zeroes_may_unmap */

	r = virtio_pci_create(bus, slot, func, p, "virtio-blk", VIRTIO_ID_BLOCK, 0x018000, features,
			      1, BLK_QUEUE_SIZE, BLK_CFG_SIZE, &blk_ops, b, &b->v);
	if (r) {
		snprintf(err, errlen, "cannot create the device: %s", strerror(-r));
		disk_close(b->disk);
		free(b);
		return r;
	}
	return 0;
}

const struct pci_emul pci_emul_virtio_blk = {
	.name = "virtio-blk", .parse = blk_parse, .free_settings = blk_free_settings,
	.create = blk_create,
};
