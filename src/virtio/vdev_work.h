/* The runtime contract of devices that queue work (virtio blk, net,
 * console, rnd, and the next ones: 9p, fs, slirp). Written once here so
 * that no device can get it subtly wrong on its own:
 *
 * 1. Take, work, give. vdev_take() pops chains under vdev->lock and notes
 *    the reset generation; the device then works on them WITHOUT the lock
 *    (I/O, copies, getrandom); vdev_give() pushes them back under the lock
 *    only if no reset happened meanwhile (otherwise the chain is dropped:
 *    its buffers belong to the driver again). Every chain taken is given
 *    back exactly once, pushed or dropped.
 * 2. A budget. One callback takes at most VDEV_BUDGET chains from a
 *    queue (or one batch of the device's own size, as virtio-net's
 *    NET_BATCH); with more waiting it calls vdev_rekick(), which signals
 *    the queue's own kick eventfd, so the thread reading it (the event
 *    loop, or the device's thread) serves its other sources before coming
 *    back. Work done under vdev->lock (a short copy into a held buffer) is
 *    bounded by its own fixed limit.
 * 3. A mandatory reset. A driver's reset marks the device stopped (no
 *    queue is live, the generation moves on), then waits until every chain
 *    taken has been given back, then calls ops->reset and clears the
 *    transport. So after the guest's status write of 0 returns, no I/O
 *    started before it writes guest RAM (virtio-blk reads included).
 * 4. start() can be retried: it is called at each DRIVER_OK after a
 *    reset or a failure, so it makes its threads and buffers once, keeps
 *    them until destroy, and leaves nothing half made it would make again.
 *
 * Chains popped, written and pushed within one hold of vdev->lock (a
 * receive buffer filled by a short copy, virtio-console's held buffer
 * checked against reset_gen) need no vdev_take: no reset can fall between.
 *
 * The guest-RAM pointers in a chain's iovecs stay valid from vdev_take()
 * to vdev_give() (guest_mem.h says why and for how long). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtio_pci.h"

/* Chains one callback takes from one queue before it yields. */
#define VDEV_BUDGET 32

/* A chain to give back: its head and the bytes written into it. */
struct vdev_used {
	uint16_t head;
	uint32_t len;
};

/* Take up to n chains from queue q (each c[i] with .cap and .iov set by
 * the caller). Returns how many were taken, 0 when the queue is empty or
 * not live; a malformed chain marks the device NEEDS_RESET and ends the
 * take. *gen receives the generation to give them back with. Takes
 * vdev->lock itself. */
unsigned vdev_take(struct virtio_dev *v, unsigned q, struct vq_chain *c, unsigned n, uint32_t *gen);
/* Give back n chains taken with generation gen: pushed (and the driver
 * interrupted if it wants) when no reset happened since, else dropped.
 * Returns true when they were pushed. Takes vdev->lock itself. */
bool vdev_give(struct virtio_dev *v, unsigned q, uint32_t gen, const struct vdev_used *u,
	       unsigned n);
/* The same with vdev->lock already held; notify false leaves the
 * interrupt to the caller (one virtio_queue_notify_guest per batch). */
bool vdev_give_locked(struct virtio_dev *v, unsigned q, uint32_t gen, const struct vdev_used *u,
		      unsigned n, bool notify);
unsigned vdev_take_locked(struct virtio_dev *v, unsigned q, struct vq_chain *c, unsigned n,
			  uint32_t *gen);

/* Come back to queue q later: signal its kick eventfd. */
void vdev_rekick(struct virtio_dev *v, unsigned q);

/* Work one chain (unlocked); return the bytes written into it. */
typedef uint32_t (*vdev_work_fn)(struct virtio_dev *v, unsigned q, struct vq_chain *c,
				 void *opaque);
/* The whole contract for devices that finish a chain within the call:
 * take one chain at a time, work it unlocked with fn, give it back; at
 * most VDEV_BUDGET chains, then vdev_rekick() if the queue has more.
 * iov/cap: room for one chain's segments. Returns the chains served. */
unsigned vdev_serve(struct virtio_dev *v, unsigned q, struct iovec *iov, unsigned cap,
		    vdev_work_fn fn, void *opaque);
