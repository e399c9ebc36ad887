#include "virtio/vdev_work.h"

#include <errno.h>
#include <unistd.h>

unsigned vdev_take_locked(struct virtio_dev *v, unsigned q, struct vq_chain *c, unsigned n,
			  uint32_t *gen)
{
	*gen = v->reset_gen;
	struct virtqueue *vq = virtio_queue(v, q);
	unsigned k = 0;
	while (vq && k < n) {
		int got = vq_pop(vq, &c[k]);
		if (got < 0)
			virtio_queue_broken(v, q);
		if (got <= 0)
			break;
		k++;
	}
	v->inflight += k;
	return k;
}

unsigned vdev_take(struct virtio_dev *v, unsigned q, struct vq_chain *c, unsigned n, uint32_t *gen)
{
	pthread_mutex_lock(&v->lock);
	unsigned k = vdev_take_locked(v, q, c, n, gen);
	pthread_mutex_unlock(&v->lock);
	return k;
}

bool vdev_give_locked(struct virtio_dev *v, unsigned q, uint32_t gen, const struct vdev_used *u,
		      unsigned n, bool notify)
{
	bool pushed = false;
	struct virtqueue *vq = gen == v->reset_gen ? virtio_queue(v, q) : NULL;
	if (vq) {
		for (unsigned i = 0; i < n; i++)
			vq_push(vq, u[i].head, u[i].len);
		if (n && notify)
			virtio_queue_notify_guest(v, q);
		pushed = n > 0;
	}
	/* A reset waits for this count to reach zero. */
	v->inflight = n <= v->inflight ? v->inflight - n : 0;
	if (v->inflight == 0)
		pthread_cond_broadcast(&v->idle);
	return pushed;
}

bool vdev_give(struct virtio_dev *v, unsigned q, uint32_t gen, const struct vdev_used *u,
	       unsigned n)
{
	pthread_mutex_lock(&v->lock);
	bool r = vdev_give_locked(v, q, gen, u, n, true);
	pthread_mutex_unlock(&v->lock);
	return r;
}

void vdev_rekick(struct virtio_dev *v, unsigned q)
{
	uint64_t one = 1;
	ssize_t r = write(v->q[q].kick_fd, &one, sizeof(one));
	(void)r; /* a full counter is a pending kick too */
}

unsigned vdev_serve(struct virtio_dev *v, unsigned q, struct iovec *iov, unsigned cap,
		    vdev_work_fn fn, void *opaque)
{
	unsigned served = 0;
	while (served < VDEV_BUDGET) {
		struct vq_chain c = { .cap = cap, .iov = iov };
		uint32_t gen;
		if (!vdev_take(v, q, &c, 1, &gen))
			return served;
		struct vdev_used u = { c.head, fn(v, q, &c, opaque) };
		vdev_give(v, q, gen, &u, 1);
		served++;
	}
	/* Budget spent: let the loop serve others, then come back. */
	pthread_mutex_lock(&v->lock);
	struct virtqueue *vq = virtio_queue(v, q);
	bool more = vq && vq_has_avail(vq);
	pthread_mutex_unlock(&v->lock);
	if (more)
		vdev_rekick(v, q);
	return served;
}
