#include "virtio/virtqueue.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>


/* Ring layout (2.7): desc[size] of 16 bytes; avail: flags, idx,
 * ring[size], used_event; used: flags, idx, {id, len}[size], avail_event. */
#define DESC_SIZE 16

const char *vq_error_name(enum vq_error e)
{
	switch (e) {
	case VQ_OK: return "no error";
	case VQ_ERR_RING: return "ring areas outside guest RAM or misaligned";
	case VQ_ERR_AVAIL_IDX: return "avail index ran ahead of the queue size";
	case VQ_ERR_HEAD: return "descriptor head index out of range";
	case VQ_ERR_NEXT: return "descriptor next index out of range";
	case VQ_ERR_LOOP: return "descriptor chain longer than the queue (a loop?)";
	case VQ_ERR_ADDR: return "buffer outside guest RAM";
	case VQ_ERR_INDIRECT: return "bad indirect descriptor";
	case VQ_ERR_ORDER: return "device-readable buffer after a device-writable one";
	case VQ_ERR_TOO_LONG: return "descriptor chain has too many segments";
	case VQ_ERR_BUFFER: return "buffer of the wrong direction or size for the device";
	}
	return "?";
}

static inline uint16_t ld16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_RELAXED);
}

static inline void st16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, v, __ATOMIC_RELAXED);
}

static inline void st32(uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)(void *)p, v, __ATOMIC_RELAXED);
}

void vq_reset(struct virtqueue *vq)
{
	memset(vq, 0, sizeof(*vq));
}

int vq_init(struct virtqueue *vq, const struct guest_mem *mem, uint16_t size, uint64_t desc,
	    uint64_t avail, uint64_t used, uint64_t features)
{
	vq_reset(vq);
	vq->mem = mem;
	vq->size = size;
	vq->desc_gpa = desc;
	vq->avail_gpa = avail;
	vq->used_gpa = used;
	vq->event_idx = features & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	vq->indirect = features & (1ULL << VIRTIO_F_RING_INDIRECT_DESC);
	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)) || (desc & 15) ||
	    (avail & 1) || (used & 3))
		goto bad;
	vq->desc = guest_mem_ptr(mem, desc, (uint64_t)size * DESC_SIZE);
	vq->avail = guest_mem_ptr(mem, avail, 6 + 2ULL * size);
	vq->used = guest_mem_ptr(mem, used, 6 + 8ULL * size);
	if (!vq->desc || !vq->avail || !vq->used)
		goto bad;
	/* Start from where the rings are (zero after a driver's set-up). */
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->ready = true;
	return 0;
bad:
	vq->desc = vq->avail = vq->used = NULL;
	vq->error = VQ_ERR_RING;
	return -EINVAL;
}

static int fail(struct virtqueue *vq, enum vq_error e)
{
	if (vq->error == VQ_OK)
		vq->error = e; /* the transport reports it */
	vq->ready = false;
	return -EINVAL;
}

bool vq_has_avail(struct virtqueue *vq)
{
	if (!vq->ready)
		return false;
	return ld16(vq->avail + 2) != vq->last_avail;
}

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static void read_desc(const uint8_t *table, unsigned i, struct desc *d)
{
	memcpy(d, table + (size_t)i * DESC_SIZE, DESC_SIZE);
}

/* Append one buffer to the chain (zero-length ones are skipped). */
static int add_seg(struct virtqueue *vq, struct vq_chain *c, const struct desc *d)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;
	if (!write && c->nin)
		return fail(vq, VQ_ERR_ORDER);
	if (d->len == 0)
		return 0;
	void *host = guest_mem_ptr(vq->mem, d->addr, d->len);
	if (!host)
		return fail(vq, VQ_ERR_ADDR);
	if (c->nout + c->nin >= c->cap)
		return fail(vq, VQ_ERR_TOO_LONG);
	c->iov[c->nout + c->nin] = (struct iovec){ host, d->len };
	if (write) {
		c->nin++;
		c->in_len += d->len;
	} else {
		c->nout++;
		c->out_len += d->len;
	}
	return 0;
}

int vq_pop(struct virtqueue *vq, struct vq_chain *c)
{
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	if (!vq->ready)
		return vq->error ? -EINVAL : 0;
	uint16_t avail_idx = ld16(vq->avail + 2);
	if (avail_idx == vq->last_avail) {
		if (!vq->event_idx || vq->kicks_off)
			return 0;
		/* Empty: ask for a kick at the next buffer, then look again
		 * for one added before the driver could see that. */
		st16(vq->used + 4 + 8 * (size_t)vq->size, vq->last_avail);
		atomic_thread_fence(memory_order_seq_cst);
		avail_idx = ld16(vq->avail + 2);
		if (avail_idx == vq->last_avail)
			return 0;
	}
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size)
		return fail(vq, VQ_ERR_AVAIL_IDX);
	/* The ring entry and the descriptors were written before idx. */
	atomic_thread_fence(memory_order_acquire);
	uint16_t head = ld16(vq->avail + 4 + 2 * (vq->last_avail % vq->size));
	if (head >= vq->size)
		return fail(vq, VQ_ERR_HEAD);
	c->head = head;

	const uint8_t *table = vq->desc;
	unsigned table_size = vq->size;
	unsigned i = head;
	unsigned budget = vq->size; /* descriptors in all, indirect ones included */
	bool in_indirect = false;
	for (;;) {
		if (budget-- == 0)
			return fail(vq, VQ_ERR_LOOP);
		struct desc d;
		read_desc(table, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->indirect || in_indirect || (d.flags & VIRTQ_DESC_F_NEXT) ||
			    d.len == 0 || (d.len % DESC_SIZE) || d.len / DESC_SIZE > VIRTQ_MAX_SIZE)
				return fail(vq, VQ_ERR_INDIRECT);
			const uint8_t *t = guest_mem_ptr(vq->mem, d.addr, d.len);
			if (!t)
				return fail(vq, VQ_ERR_ADDR);
			table = t;
			table_size = d.len / DESC_SIZE;
			in_indirect = true;
			i = 0;
			continue;
		}
		if (add_seg(vq, c, &d))
			return -EINVAL;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= table_size)
			return fail(vq, VQ_ERR_NEXT);
		i = d.next;
	}
	vq->last_avail++;
	return 1;
}

void vq_set_broken(struct virtqueue *vq, enum vq_error e)
{
	fail(vq, e);
}

void vq_unpop(struct virtqueue *vq)
{
	vq->last_avail--;
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	if (!vq->used)
		return;
	uint8_t *elem = vq->used + 4 + 8 * (size_t)(vq->used_idx % vq->size);
	st32(elem, head);
	st32(elem + 4, len);
	vq->used_idx++;
	/* The element before the index that publishes it. */
	atomic_thread_fence(memory_order_release);
	st16(vq->used + 2, vq->used_idx);
}

bool vq_should_notify(struct virtqueue *vq)
{
	if (!vq->avail)
		return false;
	/* The used index is visible before the driver's flags are read. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!vq->event_idx) {
		vq->signalled = vq->used_idx;
		return !(ld16(vq->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	uint16_t old = vq->signalled, new = vq->used_idx;
	bool valid = vq->signalled_valid;
	vq->signalled = new;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	uint16_t event = ld16(vq->avail + 4 + 2 * (size_t)vq->size); /* used_event */
	/* vring_need_event() */
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

bool vq_enable_kicks(struct virtqueue *vq, bool enable)
{
	if (!vq->ready)
		return false;
	vq->kicks_off = !enable;
	if (vq->event_idx) {
		if (enable)
			st16(vq->used + 4 + 8 * (size_t)vq->size, vq->last_avail); /* avail_event */
	} else {
		st16(vq->used, enable ? 0 : VIRTQ_USED_F_NO_NOTIFY);
	}
	if (!enable)
		return false;
	atomic_thread_fence(memory_order_seq_cst);
	return vq_has_avail(vq);
}

static size_t chain_copy(const struct vq_chain *c, bool in, size_t off, void *buf, size_t len,
			 bool to_chain)
{
	unsigned first = in ? c->nout : 0, n = in ? c->nin : c->nout;
	size_t done = 0;
	for (unsigned k = first; k < first + n && done < len; k++) {
		size_t l = c->iov[k].iov_len;
		if (off >= l) {
			off -= l;
			continue;
		}
		size_t m = l - off < len - done ? l - off : len - done;
		uint8_t *seg = (uint8_t *)c->iov[k].iov_base + off;
		if (to_chain)
			memcpy(seg, (const uint8_t *)buf + done, m);
		else
			memcpy((uint8_t *)buf + done, seg, m);
		done += m;
		off = 0;
	}
	return done;
}

size_t vq_chain_read(const struct vq_chain *c, size_t off, void *dst, size_t len)
{
	return chain_copy(c, false, off, dst, len, false);
}

size_t vq_chain_write(const struct vq_chain *c, size_t off, const void *src, size_t len)
{
	return chain_copy(c, true, off, (void *)src, len, true);
}
