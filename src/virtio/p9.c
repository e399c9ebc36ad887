/* virtio-9p (the 9P transport over virtio, device id 9): a host directory
 * shared with the guest, served by the 9P2000.L server in backend/p9_fs.c.
 *
 * bhyve's conf: SHARENAME=PATH[,ro] (e.g. -s 5,virtio-9p,src=/usr/src,ro).
 * SHARENAME is the mount tag the guest names:
 *   mount -t 9p -o trans=virtio,version=9p2000.L SHARENAME /mnt
 *
 * One request queue. One device thread, "virtio-9p", started at the first
 * DRIVER_OK, waits on the queue's kick eventfd and serves the requests one
 * at a time in ring order, off the vCPU threads and off the event loop:
 * the number in flight is one, and the memory used is two msize buffers
 * made once (the request copied out of the guest, the reply built before
 * it is copied in), whatever the guest queues. Serving in order makes
 * Tflush trivial: the request it names has been answered before it.
 *
 * The runtime contract (vdev_work.h): vdev_serve takes a chain under
 * vdev->lock, works it unlocked and gives it back only if no reset came
 * meanwhile, at most VDEV_BUDGET chains per wake-up (then a re-kick, so
 * the thread looks at its stop eventfd between budgets). A reset waits
 * for the chain in flight, then forgets every fid (ops->reset runs with
 * nothing in flight, so the server is never touched by two threads).
 * start() makes the thread and buffers once and keeps them until destroy. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/p9_fs.h"
#include "backend/p9_proto.h"
#include "pci/slots.h"
#include "util/log.h"
#include "util/thread_role.h"
#include "virtio/emulations.h"
#include "virtio/vdev_work.h"
#include "virtio/virtio_pci.h"

#define VIRTIO_ID_9P 9
#define VIRTIO_9P_F_MOUNT_TAG 0
#define P9_QUEUE_SIZE 128
/* Segments of one chain: Linux's zero-copy reads and writes put a page
 * per segment, msize / 4096 of them, beside the header. */
#define P9_IOV_MAX (P9_MSIZE_MAX / 4096 + 8)
#define P9_TAG_MAX 255

struct p9_settings {
	char *tag;
	char *path;
	bool ro;
	char *buf;
};

struct p9dev {
	struct virtio_dev *v;
	struct p9_server *srv;
	char tag[P9_TAG_MAX + 1];
	uint8_t cfg[2 + P9_TAG_MAX];
	unsigned cfg_size;
	/* the device thread's, made by start() once */
	bool running;
	pthread_t thread;
	int stop_fd;
	uint8_t *req, *resp;
	size_t buflen;
	struct iovec iov[P9_IOV_MAX];
};

static uint32_t p9_work(struct virtio_dev *v, unsigned q, struct vq_chain *c, void *opaque)
{
	(void)v;
	(void)q;
	struct p9dev *d = opaque;
	size_t msize = p9_server_msize(d->srv);
	size_t cap = c->in_len < d->buflen ? (size_t)c->in_len : d->buflen;
	size_t n = c->out_len < d->buflen ? (size_t)c->out_len : d->buflen;
	n = vq_chain_read(c, 0, d->req, n);
	size_t r;
	if (c->out_len > msize) {
		/* Longer than agreed: answer with the tag, if there is one. */
		uint16_t tag = n >= P9_HDR_SIZE ? (uint16_t)(d->req[5] | d->req[6] << 8) : P9_NOTAG;
		log_guest("virtio-9p: a request of %llu bytes is over msize %zu",
			  (unsigned long long)c->out_len, msize);
		r = p9_enc_error(d->resp, cap, tag, EMSGSIZE);
	} else {
		r = p9_server_handle(d->srv, d->req, n, d->resp, cap);
	}
	return (uint32_t)vq_chain_write(c, 0, d->resp, r);
}

static void *p9_thread(void *opaque)
{
	struct p9dev *d = opaque;
	struct virtio_dev *v = d->v;
	pthread_setname_np(pthread_self(), "virtio-9p");
	thread_role_enter(THREAD_ROLE_P9_IO);
	struct pollfd pf[2] = { { .fd = v->q[0].kick_fd, .events = POLLIN },
				{ .fd = d->stop_fd, .events = POLLIN } };
	for (;;) {
		/* A look before the first wait: kicks may have come before the
		 * thread did. */
		vdev_serve(v, 0, d->iov, P9_IOV_MAX, p9_work, d);
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("virtio-9p: poll: %s", strerror(errno));
			return NULL;
		}
		if (pf[1].revents)
			return NULL;
		if (pf[0].revents)
			virtio_kick_drain(v, 0);
	}
}

static int p9_start(struct virtio_dev *v)
{
	struct p9dev *d = v->opaque;
	if (d->running)
		return 0;
	if (!d->req) {
		d->buflen = P9_MSIZE_MAX;
		d->req = malloc(d->buflen);
		d->resp = malloc(d->buflen);
		if (!d->req || !d->resp) {
			free(d->req);
			free(d->resp);
			d->req = d->resp = NULL;
			return -ENOMEM;
		}
	}
	if (d->stop_fd < 0) {
		d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->stop_fd < 0)
			return -errno;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int r = -pthread_create(&d->thread, &attr, p9_thread, d);
	pthread_attr_destroy(&attr);
	if (r)
		return r;
	d->running = true;
	return 0;
}

static void p9_reset(struct virtio_dev *v)
{
	struct p9dev *d = v->opaque;
	p9_server_reset(d->srv);
}

static void p9_cfg_read(struct virtio_dev *v, unsigned off, void *buf, unsigned len)
{
	struct p9dev *d = v->opaque;
	memcpy(buf, d->cfg + off, len);
}

static void p9_notify(struct virtio_dev *v, unsigned q)
{
	(void)v;
	(void)q; /* the device thread reads the kicks */
}

static void p9_destroy(struct virtio_dev *v)
{
	struct p9dev *d = v->opaque;
	if (d->running) {
		uint64_t one = 1;
		ssize_t w = write(d->stop_fd, &one, sizeof(one));
		(void)w;
		pthread_join(d->thread, NULL);
	}
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	p9_server_free(d->srv);
	free(d->req);
	free(d->resp);
	free(d);
}

static const struct virtio_dev_ops p9_ops = {
	.cfg_read = p9_cfg_read,
	.queue_notify = p9_notify,
	.start = p9_start,
	.reset = p9_reset,
	.destroy = p9_destroy,
};

/* ---- conf ---- */

static void p9_free_settings(void *p)
{
	struct p9_settings *s = p;
	if (s)
		free(s->buf);
	free(s);
}

/* bhyve's grammar: one SHARENAME=PATH word, and flags (ro). */
static int p9_parse(const char *conf, void **settings, char *err, size_t errlen)
{
	struct p9_settings *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	struct pci_conf_word w[PCI_CONF_MAX_WORDS];
	int n = conf ? pci_conf_split(conf, &s->buf, w, PCI_CONF_MAX_WORDS) : 0;
	if (n < 0) {
		snprintf(err, errlen, "virtio-9p: too many options");
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		const char *k = w[i].key, *val = w[i].value;
		if (!strcmp(k, "ro")) {
			if (pci_conf_bool(val, &s->ro)) {
				snprintf(err, errlen, "virtio-9p: ro=%s: expected true or false", val);
				goto fail;
			}
		} else if (val) {
			if (s->tag) {
				snprintf(err, errlen, "virtio-9p: more than one share name given ('%s' and '%s')",
					 s->tag, k);
				goto fail;
			}
			if (!*k || strlen(k) > P9_TAG_MAX) {
				snprintf(err, errlen, "virtio-9p: share name '%s': 1 to %d characters",
					 k, P9_TAG_MAX);
				goto fail;
			}
			if (!*val) {
				snprintf(err, errlen, "virtio-9p: share '%s' has no path", k);
				goto fail;
			}
			s->tag = w[i].key;
			s->path = w[i].value;
		} else {
			snprintf(err, errlen, "virtio-9p: unknown option '%s' (expected SHARENAME=PATH and ro)",
				 k);
			goto fail;
		}
	}
	if (!s->tag) {
		snprintf(err, errlen, "virtio-9p needs a share: slot,virtio-9p,SHARENAME=PATH[,ro]");
		goto fail;
	}
	*settings = s;
	return 0;
fail:
	p9_free_settings(s);
	return -EINVAL;
}

/* Each fid may hold two descriptors: let khyve have as many as it may. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int p9_create(struct pci_bus *bus, unsigned slot, unsigned func, void *settings,
		     struct platform *p, char *err, size_t errlen)
{
	struct p9_settings *s = settings;
	struct stat st;
	if (stat(s->path, &st)) {
		int e = errno;
		snprintf(err, errlen, "virtio-9p: %s: %s", s->path, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "virtio-9p: %s: not a directory", s->path);
		return -ENOTDIR;
	}
	struct p9dev *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->stop_fd = -1;
	raise_nofile();
	int r = p9_server_new(s->path, s->ro, P9_MSIZE_MAX, 0, &d->srv);
	if (r) {
		snprintf(err, errlen, "virtio-9p: %s: %s%s", s->path, strerror(-r),
			 r == -ENOSYS ? " (openat2 needs Linux 5.6)" : "");
		free(d);
		return r;
	}
	size_t tl = strlen(s->tag);
	memcpy(d->tag, s->tag, tl + 1);
	d->cfg[0] = (uint8_t)tl;
	d->cfg[1] = (uint8_t)(tl >> 8);
	memcpy(d->cfg + 2, s->tag, tl);
	d->cfg_size = (unsigned)(2 + tl);
	r = virtio_pci_create(bus, slot, func, p, "virtio-9p", VIRTIO_ID_9P, 0x018000,
			      1ULL << VIRTIO_9P_F_MOUNT_TAG, 1, P9_QUEUE_SIZE, d->cfg_size, &p9_ops,
			      d, &d->v);
	if (r) {
		snprintf(err, errlen, "virtio-9p: cannot create the device: %s", strerror(-r));
		p9_server_free(d->srv);
		free(d);
		return r;
	}
	return 0;
}

const struct pci_emul pci_emul_virtio_9p = {
	.name = "virtio-9p", .parse = p9_parse, .free_settings = p9_free_settings,
	.create = p9_create,
};
