/* Split virtqueues (virtio 1.x, 2.7): the device's side, with event-idx
 * and indirect descriptors.
 *
 * Everything the guest wrote is copied before it is checked: ring
 * indexes, descriptors (addresses, lengths, flags, next) and indirect
 * tables. A chain that is malformed in any way (an index past the queue
 * size, a loop or a chain longer than the queue, an address or length
 * outside guest RAM, INDIRECT without the feature or together with NEXT,
 * an indirect table inside an indirect table or of a bad size, a
 * device-readable buffer after a device-writable one) or an avail index
 * that runs more than the queue size ahead marks the queue broken: the
 * transport then sets DEVICE_NEEDS_RESET. Nothing outside guest RAM is
 * ever read or written, and every walk is bounded.
 *
 * Not thread-safe: one thread works a queue at a time (the device's lock
 * serializes them). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mem/guest_mem.h"

#define VIRTQ_MAX_SIZE 32768

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

enum vq_error {
	VQ_OK = 0,
	VQ_ERR_RING,       /* ring areas not in RAM or misaligned, bad size */
	VQ_ERR_AVAIL_IDX,  /* avail idx ran ahead by more than the queue size */
	VQ_ERR_HEAD,       /* a head index past the queue size */
	VQ_ERR_NEXT,       /* a next index past the queue (or table) size */
	VQ_ERR_LOOP,       /* more descriptors than the queue size: a loop */
	VQ_ERR_ADDR,       /* a buffer not wholly in guest RAM */
	VQ_ERR_INDIRECT,   /* INDIRECT not negotiated, with NEXT, nested, or bad size */
	VQ_ERR_ORDER,      /* a device-readable buffer after a device-writable one */
	VQ_ERR_TOO_LONG,   /* more segments than the caller can take */
	VQ_ERR_BUFFER,     /* a buffer of the wrong direction or size for the device */
};
const char *vq_error_name(enum vq_error e);

struct virtqueue {
	const struct guest_mem *mem;
	uint16_t size;
	bool ready;
	bool event_idx, indirect;
	enum vq_error error; /* first error; the queue is dead until reset */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Host views of the ring areas, validated by vq_init. */
	uint8_t *desc, *avail, *used;
	uint16_t last_avail; /* next avail entry to take */
	uint16_t used_idx;   /* next used entry to write */
	uint16_t signalled;  /* used_idx at the last interrupt */
	bool signalled_valid;
	bool kicks_off; /* vq_enable_kicks(false) */
};

/* One chain: segments in order, readable ones first. */
struct vq_chain {
	uint16_t head;
	unsigned nout, nin; /* readable, writable segments */
	uint64_t out_len, in_len;
	unsigned cap;       /* room in iov */
	struct iovec *iov;  /* nout readable, then nin writable */
};

/* Set up a queue of size entries (a power of two, 1-32768) with its three
 * areas. features: the negotiated ones (event-idx, indirect). Returns 0
 * or -EINVAL (vq->error = VQ_ERR_RING); vq is then not ready. */
int vq_init(struct virtqueue *vq, const struct guest_mem *mem, uint16_t size, uint64_t desc,
	    uint64_t avail, uint64_t used, uint64_t features);
void vq_reset(struct virtqueue *vq);

/* Take the next chain: 1 and *c filled, 0 when there is none (or the
 * queue is not ready), -EINVAL when the queue is (now) broken. With
 * event-idx (and kicks enabled), finding the ring empty asks the driver
 * for a kick at its next buffer. */
int vq_pop(struct virtqueue *vq, struct vq_chain *c);
/* Hand the last chain popped back unused (the next pop returns it
 * again). Only for chains taken since the last push: a pushed chain
 * cannot be taken back. */
void vq_unpop(struct virtqueue *vq);
/* The device found a chain it cannot use (vq_error e): the queue is dead
 * until reset, like after a malformed chain (the transport reports it). */
void vq_set_broken(struct virtqueue *vq, enum vq_error e);
/* Return a chain to the driver: len bytes were written into it. */
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);
/* Whether the driver wants an interrupt for what was pushed since the
 * last call that returned true (event-idx or NO_INTERRUPT). */
bool vq_should_notify(struct virtqueue *vq);
/* Ask for (or not) kicks when the driver adds buffers. With event-idx,
 * enabling also asks for a kick at the next one. Returns true when
 * buffers arrived meanwhile (so the caller looks again). */
bool vq_enable_kicks(struct virtqueue *vq, bool enable);
/* Whether the avail ring has chains not yet taken. */
bool vq_has_avail(struct virtqueue *vq);

/* Copy from / to a chain's segments, starting at byte offset off of the
 * readable (out) or writable (in) part. Return bytes copied. */
size_t vq_chain_read(const struct vq_chain *c, size_t off, void *dst, size_t len);
size_t vq_chain_write(const struct vq_chain *c, size_t off, const void *src, size_t len);
