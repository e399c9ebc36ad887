/* virtio-rnd (entropy device, 5.4): one queue; every buffer the driver
 * offers is filled from getrandom(2), outside the device lock, at most
 * VDEV_BUDGET buffers per kick (vdev_work.h). Kicks are read on the event
 * loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "pci/slots.h"
#include "virtio/vdev_work.h"
#include "virtio/virtio_pci.h"

#define RND_QUEUE_SIZE 64
#define RND_MAX_SEGS 64
#define RND_MAX_PER_CHAIN (64 * 1024) /* bytes filled per buffer, at most */

struct rnd {
	struct virtio_dev *v;
	struct iovec iov[RND_MAX_SEGS];
};

static void fill(struct vq_chain *c, uint32_t *written)
{
	*written = 0;
	for (unsigned k = c->nout; k < c->nout + c->nin && *written < RND_MAX_PER_CHAIN; k++) {
		uint8_t *p = c->iov[k].iov_base;
		size_t left = c->iov[k].iov_len;
		if (left > RND_MAX_PER_CHAIN - *written)
			left = RND_MAX_PER_CHAIN - *written;
		while (left) {
			ssize_t n = getrandom(p, left, 0);
			if (n <= 0) {
				if (n < 0 && errno == EINTR)
					continue;
				return;
			}
			p += n;
			left -= (size_t)n;
			*written += (uint32_t)n;
		}
	}
}

static uint32_t rnd_work(struct virtio_dev *v, unsigned q, struct vq_chain *c, void *opaque)
{
	(void)v;
	(void)q;
	(void)opaque;
	uint32_t written;
	fill(c, &written);
	return written;
}

/* One budget of chains per kick (vdev_work.h): a driver that keeps
 * refilling cannot hold the event loop. */
static void rnd_notify(struct virtio_dev *v, unsigned q)
{
	struct rnd *r = v->opaque;
	vdev_serve(v, q, r->iov, RND_MAX_SEGS, rnd_work, NULL);
}

static void rnd_destroy(struct virtio_dev *v)
{
	free(v->opaque);
}

static const struct virtio_dev_ops rnd_ops = {
	.queue_notify = rnd_notify,
	.destroy = rnd_destroy,
};

static int rnd_parse(const char *conf, void **settings, char *err, size_t errlen)
{
	*settings = NULL;
	if (conf && *conf) {
		snprintf(err, errlen, "virtio-rnd takes no options ('%s')", conf);
		return -EINVAL;
	}
	return 0;
}

static int rnd_create(struct pci_bus *bus, unsigned slot, unsigned func, void *settings,
		      struct platform *p, char *err, size_t errlen)
{
	(void)settings;
	struct rnd *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int e = virtio_pci_create(bus, slot, func, p, "virtio-rnd", VIRTIO_ID_RNG, 0xff0000, 0, 1,
				  RND_QUEUE_SIZE, 0, &rnd_ops, r, &r->v);
	if (e) {
		free(r);
		snprintf(err, errlen, "cannot create the device: %s", strerror(-e));
		return e;
	}
	/* From here on the device owns r. */
	if ((e = virtio_kicks_on_loop(r->v))) {
		snprintf(err, errlen, "watching its queue: %s", strerror(-e));
		return e;
	}
	return 0;
}

const struct pci_emul pci_emul_virtio_rnd = {
	.name = "virtio-rnd", .parse = rnd_parse, .create = rnd_create,
};
