/* virtio-fs (virtio 1.2, 5.11) on a vhost-user back end: virtiofsd.
 *
 * conf: socket=PATH,tag=TAG[,queue-size=N]. The guest mounts it with
 * `mount -t virtiofs TAG DIR`. Queue 0 is the high-priority queue
 * (FORGET, INTERRUPT), queue 1 the one request queue (virtiofsd serves
 * exactly one). khyve connects and negotiates when the board is built, so
 * a socket that is not a vhost-user back end is an error at start; at
 * each DRIVER_OK it hands the back end the memory table (guest RAM is a
 * memfd: pci_emul.shared_ram) and both rings. Kicks go from the guest's
 * ioeventfd straight to the back end; its completions go straight into
 * the vector's KVM irqfd while MSI-X delivers it unmasked, else into an
 * eventfd the device's thread ("virtio-fs") turns into the interrupt, so
 * a masked vector stays pending (a mask change rebinds with
 * SET_VRING_CALL before the guest's write completes, as QEMU does). The
 * thread also watches the socket. A reset takes the rings back (GET_VRING_BASE)
 * before it returns.
 *
 * The back end's death (the socket hangs up, it signals a ring's error
 * eventfd, or it fails a request) does not end the VM: the device reports
 * DEVICE_NEEDS_RESET and from then on its thread answers every request
 * itself with a FUSE error (EIO), so the guest's file operations fail
 * instead of hanging. Requests the back end had taken and not finished
 * are answered too: the thread resumes each ring at its used index,
 * which assumes the back end finished in order (virtiofsd nearly does);
 * a chain it finished out of order would be answered twice, which a
 * Linux driver reports as a broken ring (its requests then fail as well).
 * The device stays that way until the VM ends: no reconnect.
 *
 * The runtime contract (vdev_work.h): while the back end owns the rings
 * khyve takes no chains; the error path pops, writes and pushes each
 * chain within one hold of the device lock, VDEV_BUDGET per round. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend/vhost_user.h"
#include "pci/pci.h"
#include "pci/slots.h"
#include "util/log.h"
#include "util/thread_role.h"
#include "virtio/emulations.h"
#include "virtio/vdev_work.h"
#include "virtio/virtio_pci.h"

#define VIRTIO_ID_FS 26
#define FS_NQ 2 /* hiprio + one request queue */
#define FS_TAG_MAX 36
#define FS_CFG_SIZE 40
#define FS_QUEUE_SIZE 128
#define FS_QUEUE_SIZE_MAX 1024 /* virtiofsd's (libvhost-user's) limit */
#define FS_CHAIN_MAX 256
#define FS_TIMEOUT_MS 5000

#define FUSE_IN_HDR 40
#define FUSE_OUT_HDR 16

struct fs_settings {
	char socket[108];
	char tag[FS_TAG_MAX + 1];
	unsigned queue_size;
};

struct fs {
	struct virtio_dev *v;
	struct fs_settings s;
	struct vhost_user *vu;
	uint64_t backend_features;
	uint8_t cfg[FS_CFG_SIZE];

	pthread_t thread;
	bool running;
	int epfd, stop_fd, mode_fd;
	int call_fd[FS_NQ], err_fd[FS_NQ];
	/* What the back end signals now (under v->lock): the vector's irqfd
	 * or call_fd; -1 when stopped. vec: the rings' vectors at start. */
	int call_bound[FS_NQ];
	uint16_t vec[FS_NQ];
	/* The back end is gone: set under v->lock, the thread then serves
	 * the queues itself. */
	atomic_bool dead;
	bool kicks_watched; /* thread-owned */
	struct iovec iov[FS_CHAIN_MAX];
};

static void wake_thread(int fd)
{
	uint64_t one = 1;
	ssize_t w = write(fd, &one, sizeof(one));
	(void)w;
}

/* ---- the back end is gone: answer every request with EIO ---- */

/* v->lock held. Idempotent. */
static void go_dead_locked(struct fs *f, const char *why)
{
	struct virtio_dev *v = f->v;
	if (atomic_load(&f->dead))
		return;
	log_warn("virtio-fs %s: %s; the guest's requests now fail with EIO", f->s.tag, why);
	atomic_store(&f->dead, true);
	/* The rings as the back end left them: resume at the used index. */
	for (unsigned i = 0; i < FS_NQ; i++) {
		struct virtqueue *vq = &v->q[i].vq;
		if (!vq->ready)
			continue;
		uint16_t used = (uint16_t)(vq->used[2] | vq->used[3] << 8);
		vq->used_idx = used;
		vq->last_avail = used;
		vq->signalled_valid = false;
	}
	if (v->status & VIRTIO_STATUS_DRIVER_OK) {
		v->status |= VIRTIO_STATUS_NEEDS_RESET;
		virtio_config_changed(v);
	}
	wake_thread(f->mode_fd);
}

static void serve_errors(struct fs *f, unsigned q)
{
	struct virtio_dev *v = f->v;
	pthread_mutex_lock(&v->lock);
	struct virtqueue *vq = &v->q[q].vq;
	if (!v->started || v->resetting || !v->q[q].enabled || !vq->ready || vq->error) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	unsigned n = 0;
	while (n < VDEV_BUDGET) {
		struct vq_chain c = { .cap = FS_CHAIN_MAX, .iov = f->iov };
		int got = vq_pop(vq, &c);
		if (got <= 0)
			break;
		uint32_t len = 0;
		uint8_t in[FUSE_IN_HDR];
		if (vq_chain_read(&c, 0, in, sizeof(in)) == sizeof(in) && c.in_len >= FUSE_OUT_HDR) {
			uint8_t out[FUSE_OUT_HDR];
			int32_t err = -EIO;
			uint32_t olen = FUSE_OUT_HDR;
			memcpy(out, &olen, 4);
			memcpy(out + 4, &err, 4);
			memcpy(out + 8, in + 8, 8); /* unique */
			len = (uint32_t)vq_chain_write(&c, 0, out, sizeof(out));
		}
		vq_push(vq, c.head, len);
		n++;
	}
	if (n)
		virtio_queue_notify_guest(v, q);
	bool more = n == VDEV_BUDGET && vq_has_avail(vq);
	pthread_mutex_unlock(&v->lock);
	if (more)
		vdev_rekick(v, q);
}

/* ---- the device thread ---- */

static void watch(struct fs *f, int fd, uint32_t events, bool on)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	epoll_ctl(f->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, on ? &ev : NULL);
}

static void follow_mode(struct fs *f)
{
	uint64_t cnt;
	if (read(f->mode_fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		return;
	if (!atomic_load(&f->dead) || f->kicks_watched)
		return;
	f->kicks_watched = true;
	watch(f, vhost_user_fd(f->vu), 0, false);
	for (unsigned i = 0; i < FS_NQ; i++) {
		watch(f, f->v->q[i].kick_fd, EPOLLIN, true);
		watch(f, f->err_fd[i], 0, false);
		serve_errors(f, i);
	}
}

static void *fs_thread(void *opaque)
{
	struct fs *f = opaque;
	struct virtio_dev *v = f->v;
	pthread_setname_np(pthread_self(), "virtio-fs");
	thread_role_enter(THREAD_ROLE_FS_IO);
	for (;;) {
		struct epoll_event ev[8];
		int k = epoll_wait(f->epfd, ev, 8, -1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			log_error("virtio-fs: epoll: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < k; i++) {
			int fd = ev[i].data.fd;
			uint64_t cnt;
			if (fd == f->stop_fd)
				return NULL;
			if (fd == f->mode_fd) {
				follow_mode(f);
				continue;
			}
			if (!atomic_load(&f->dead) && fd == vhost_user_fd(f->vu)) {
				pthread_mutex_lock(&v->lock);
				go_dead_locked(f, "the vhost-user back end hung up");
				pthread_mutex_unlock(&v->lock);
				continue;
			}
			for (unsigned q = 0; q < FS_NQ; q++) {
				if (fd == f->call_fd[q]) {
					if (read(fd, &cnt, sizeof(cnt)) == sizeof(cnt))
						virtio_queue_interrupt(v, q); /* the back end chose to */
				} else if (fd == f->err_fd[q]) {
					if (read(fd, &cnt, sizeof(cnt)) == sizeof(cnt)) {
						pthread_mutex_lock(&v->lock);
						go_dead_locked(f, "the vhost-user back end reported a ring error");
						pthread_mutex_unlock(&v->lock);
					}
				} else if (fd == v->q[q].kick_fd && atomic_load(&f->dead)) {
					virtio_kick_drain(v, q);
					serve_errors(f, q);
				}
			}
		}
	}
}

/* ---- completions straight into KVM ---- */

/* v->lock held. */
static void bind_calls_locked(struct fs *f)
{
	if (atomic_load(&f->dead) || !vhost_user_started(f->vu))
		return;
	for (unsigned i = 0; i < FS_NQ; i++) {
		if (f->call_bound[i] < 0)
			continue;
		int fd = pci_msix_irqfd(f->v->pci, f->vec[i]);
		if (fd < 0)
			fd = f->call_fd[i];
		if (fd == f->call_bound[i])
			continue;
		char why[256];
		if (vhost_user_set_call(f->vu, i, fd, why, sizeof(why))) {
			go_dead_locked(f, why);
			return;
		}
		f->call_bound[i] = fd;
		log_debug("virtio-fs %s: the back end signals queue %u %s", f->s.tag, i,
			  fd == f->call_fd[i] ? "through khyve (vector masked)"
					      : "straight into its vector's irqfd");
	}
}

/* The guest masked, unmasked, enabled or moved a vector (no PCI lock
 * held; never called under v->lock). */
static void fs_msix_changed(void *opaque)
{
	struct fs *f = opaque;
	pthread_mutex_lock(&f->v->lock);
	bind_calls_locked(f);
	pthread_mutex_unlock(&f->v->lock);
}

/* ---- transport hooks ---- */

static int fs_start(struct virtio_dev *v)
{
	struct fs *f = v->opaque;
	if (atomic_load(&f->dead))
		return 0; /* the thread answers with errors */
	struct vhost_user_ring ring[FS_NQ];
	for (unsigned i = 0; i < FS_NQ; i++) {
		struct virtio_queue *q = &v->q[i];
		if (!q->enabled || !q->vq.ready || q->vq.error) {
			log_guest("virtio-fs %s: queue %u is not set up at DRIVER_OK", f->s.tag, i);
			return -EINVAL;
		}
		/* Drop any stale count: the back end reads these from now on. */
		uint64_t cnt;
		ssize_t r = read(f->call_fd[i], &cnt, sizeof(cnt));
		(void)r;
		ring[i] = (struct vhost_user_ring){
			.num = q->size, .desc = q->desc, .avail = q->driver, .used = q->device,
			.base = q->vq.last_avail, .kick_fd = q->kick_fd, .call_fd = f->call_fd[i],
			.err_fd = f->err_fd[i],
		};
	}
	char why[256];
	uint64_t feat = v->guest_features & f->backend_features;
	if (vhost_user_start(f->vu, feat, v->p->mem, ring, FS_NQ, why, sizeof(why))) {
		/* Half set up: not to be trusted any more. The device still
		 * starts, answering with errors. */
		char ignored[8];
		vhost_user_stop(f->vu, NULL, ignored, sizeof(ignored));
		/* DRIVER_OK is already set: NEEDS_RESET is reported, and the
		 * device starts all the same so that the thread can answer. */
		go_dead_locked(f, why);
		return 0;
	}
	for (unsigned i = 0; i < FS_NQ; i++) {
		f->call_bound[i] = f->call_fd[i];
		f->vec[i] = v->q[i].msix_vector;
	}
	bind_calls_locked(f);
	return 0;
}

static void fs_reset(struct virtio_dev *v)
{
	struct fs *f = v->opaque;
	if (atomic_load(&f->dead) || !vhost_user_started(f->vu))
		return;
	char why[256];
	for (unsigned i = 0; i < FS_NQ; i++)
		f->call_bound[i] = -1;
	if (vhost_user_stop(f->vu, NULL, why, sizeof(why)))
		go_dead_locked(f, why);
}

static void fs_cfg_read(struct virtio_dev *v, unsigned off, void *buf, unsigned len)
{
	struct fs *f = v->opaque;
	memcpy(buf, f->cfg + off, len);
}

static void fs_destroy(struct virtio_dev *v)
{
	struct fs *f = v->opaque;
	pci_msix_set_watch(v->pci, NULL, NULL);
	if (f->running) {
		wake_thread(f->stop_fd);
		pthread_join(f->thread, NULL);
	}
	vhost_user_close(f->vu); /* virtiofsd exits when its front end goes */
	int fds[] = { f->epfd, f->stop_fd, f->mode_fd, f->call_fd[0], f->call_fd[1], f->err_fd[0],
		      f->err_fd[1] };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(f);
}

static const struct virtio_dev_ops fs_ops = {
	.cfg_read = fs_cfg_read,
	.start = fs_start,
	.reset = fs_reset,
	.destroy = fs_destroy,
};

/* ---- conf and creation ---- */

static void fs_free_settings(void *p) { free(p); }

static int fs_parse(const char *conf, void **settings, char *err, size_t errlen)
{
	struct fs_settings *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->queue_size = FS_QUEUE_SIZE;
	char *buf = NULL;
	struct pci_conf_word w[PCI_CONF_MAX_WORDS];
	int nw = conf ? pci_conf_split(conf, &buf, w, PCI_CONF_MAX_WORDS) : 0;
	if (nw < 0) {
		snprintf(err, errlen, "too many options");
		goto fail;
	}
	for (int i = 0; i < nw; i++) {
		const char *k = w[i].key, *val = w[i].value;
		if (!strcmp(k, "socket") && val) {
			if (!*val || strlen(val) >= sizeof(s->socket)) {
				snprintf(err, errlen, "socket=%s: expected a UNIX socket path of 1-%zu bytes",
					 val, sizeof(s->socket) - 1);
				goto fail;
			}
			snprintf(s->socket, sizeof(s->socket), "%s", val);
		} else if (!strcmp(k, "tag") && val) {
			size_t n = strlen(val);
			bool ok = n >= 1 && n <= FS_TAG_MAX;
			for (size_t j = 0; ok && j < n; j++)
				ok = val[j] > ' ' && val[j] < 0x7f;
			if (!ok) {
				snprintf(err, errlen, "tag=%s: expected 1-%d printable characters, no spaces",
					 val, FS_TAG_MAX);
				goto fail;
			}
			memcpy(s->tag, val, n + 1);
		} else if (!strcmp(k, "queue-size") && val) {
			char *end;
			unsigned long n = strtoul(val, &end, 10);
			if (*end || !*val || n < 16 || n > FS_QUEUE_SIZE_MAX || (n & (n - 1))) {
				snprintf(err, errlen, "queue-size=%s: expected a power of two, 16-%d", val,
					 FS_QUEUE_SIZE_MAX);
				goto fail;
			}
			s->queue_size = (unsigned)n;
		} else {
			snprintf(err, errlen,
				 "virtio-fs: unknown option '%s%s%s' (expected socket=, tag=, queue-size=)",
				 k, val ? "=" : "", val ? val : "");
			goto fail;
		}
	}
	if (!s->socket[0] || !s->tag[0]) {
		snprintf(err, errlen, "virtio-fs needs socket=PATH and tag=TAG: slot,virtio-fs,socket=/path/to/virtiofsd.sock,tag=TAG");
		goto fail;
	}
	free(buf);
	*settings = s;
	return 0;
fail:
	free(buf);
	free(s);
	return -EINVAL;
}

static int timeout_ms(void)
{
	const char *e = getenv("KHYVE_VHOST_USER_TIMEOUT_MS");
	long t = e && *e ? strtol(e, NULL, 10) : 0;
	return t > 0 && t < 600000 ? (int)t : FS_TIMEOUT_MS;
}

static int fs_create(struct pci_bus *bus, unsigned slot, unsigned func, void *settings,
		     struct platform *p, char *err, size_t errlen)
{
	const struct fs_settings *s = settings;
	if (!p->mem->shared) {
		snprintf(err, errlen, "guest RAM is not shareable");
		return -EINVAL;
	}
	struct fs *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->s = *s;
	f->epfd = f->stop_fd = f->mode_fd = -1;
	for (unsigned i = 0; i < FS_NQ; i++)
		f->call_fd[i] = f->err_fd[i] = f->call_bound[i] = -1;
	atomic_init(&f->dead, false);
	memcpy(f->cfg, s->tag, strlen(s->tag)); /* NUL-padded, not terminated at 36 */
	f->cfg[36] = 1;                         /* num_request_queues, le32 */
	int r = vhost_user_connect(&f->vu, s->socket, FS_NQ, timeout_ms(), &f->backend_features,
				   err, errlen);
	if (r)
		goto fail;
	if (!(f->backend_features & (1ULL << VIRTIO_F_VERSION_1))) {
		snprintf(err, errlen, "%s: the back end does not offer VIRTIO_F_VERSION_1", s->socket);
		r = -EINVAL;
		goto fail;
	}
	if ((f->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    (f->mode_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	for (unsigned i = 0; i < FS_NQ; i++) {
		if ((f->call_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
		    (f->err_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
			r = -errno;
			snprintf(err, errlen, "eventfd: %s", strerror(errno));
			goto fail;
		}
	}
	r = virtio_pci_create(bus, slot, func, p, "virtio-fs", VIRTIO_ID_FS, 0x018000, 0, FS_NQ,
			      (uint16_t)s->queue_size, FS_CFG_SIZE, &fs_ops, f, &f->v);
	if (r) {
		snprintf(err, errlen, "cannot create the device: %s", strerror(-r));
		goto fail;
	}
	/* From here the device owns f (fs_destroy). Offer only what the back
	 * end can do with the rings. */
	f->v->host_features &= f->backend_features;
	pci_msix_set_watch(f->v->pci, fs_msix_changed, f);
	int fds[] = { f->stop_fd, f->mode_fd, f->call_fd[0], f->call_fd[1], f->err_fd[0],
		      f->err_fd[1] };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		watch(f, fds[i], EPOLLIN, true);
	/* Only the hang-up: replies are read where they are asked for. */
	watch(f, vhost_user_fd(f->vu), EPOLLRDHUP, true);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	r = -pthread_create(&f->thread, &attr, fs_thread, f);
	pthread_attr_destroy(&attr);
	if (r) {
		snprintf(err, errlen, "cannot start its thread: %s", strerror(-r));
		return r;
	}
	f->running = true;
	return 0;
fail:
	vhost_user_close(f->vu);
	int fds2[] = { f->epfd, f->stop_fd, f->mode_fd, f->call_fd[0], f->call_fd[1], f->err_fd[0],
		       f->err_fd[1] };
	for (size_t i = 0; i < sizeof(fds2) / sizeof(fds2[0]); i++)
		if (fds2[i] >= 0)
			close(fds2[i]);
	free(f);
	return r;
}

const struct pci_emul pci_emul_virtio_fs = {
	.name = "virtio-fs", .parse = fs_parse, .free_settings = fs_free_settings,
	.create = fs_create, .shared_ram = true,
};
