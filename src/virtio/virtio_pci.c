#include "virtio/virtio_pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"
#include "util/thread_role.h"

#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG 5

bool virtio_has_feature(const struct virtio_dev *v, unsigned bit)
{
	return v->guest_features & (1ULL << bit);
}

/* ---- interrupts ---- */

static void raise_irq(struct virtio_dev *v, uint16_t vector, unsigned isr_bit)
{
	struct pci_dev *d = v->pci;
	if (pci_msix_enabled(d)) {
		if (vector != VIRTIO_MSI_NO_VECTOR)
			pci_msix_notify(d, vector);
		return;
	}
	atomic_fetch_or(&v->isr, isr_bit);
	if (pci_msi_enabled(d))
		pci_msi_notify(d);
	else
		pci_intx_set(d, true);
}

void virtio_queue_notify_guest(struct virtio_dev *v, unsigned q)
{
	if (q >= v->nqueues || !vq_should_notify(&v->q[q].vq))
		return;
	raise_irq(v, v->q[q].msix_vector, 1);
}

void virtio_queue_interrupt(struct virtio_dev *v, unsigned q)
{
	if (q < v->nqueues)
		raise_irq(v, v->q[q].msix_vector, 1);
}

void virtio_config_changed(struct virtio_dev *v)
{
	v->config_generation++;
	if (v->status & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(v, v->msix_config, 2);
}

void virtio_queue_broken(struct virtio_dev *v, unsigned q)
{
	if (v->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	log_guest("%s: queue %u: %s", v->name, q, vq_error_name(v->q[q].vq.error));
	v->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (v->status & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(v, v->msix_config, 2);
}

struct virtqueue *virtio_queue(struct virtio_dev *v, unsigned q)
{
	if (q >= v->nqueues || !v->started || v->resetting ||
	    (v->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_DRIVER_OK)) !=
		    VIRTIO_STATUS_DRIVER_OK ||
	    !v->q[q].enabled || !v->q[q].vq.ready)
		return NULL;
	return &v->q[q].vq;
}

/* ---- kicks ---- */

bool virtio_kick_drain(struct virtio_dev *v, unsigned q)
{
	uint64_t n;
	return read(v->q[q].kick_fd, &n, sizeof(n)) == sizeof(n);
}

static void on_kick(void *opaque, uint32_t events)
{
	(void)events;
	struct virtio_kick_ctx *k = opaque;
	if (virtio_kick_drain(k->v, k->q))
		k->v->ops->queue_notify(k->v, k->q);
}

int virtio_kicks_on_loop(struct virtio_dev *v)
{
	for (unsigned q = 0; q < v->nqueues; q++) {
		v->kick_ctx[q] = (struct virtio_kick_ctx){ v, q };
		v->q[q].loop_src = evloop_add(v->p->loop, v->q[q].kick_fd, EPOLLIN, on_kick,
					      &v->kick_ctx[q]);
		if (!v->q[q].loop_src)
			return -errno;
	}
	return 0;
}

static void kick(struct virtio_dev *v, unsigned q)
{
	uint64_t one = 1;
	ssize_t r = write(v->q[q].kick_fd, &one, sizeof(one));
	(void)r;
}

/* ---- reset and status ---- */

static int start_device(void *opaque)
{
	struct virtio_dev *v = opaque;
	return v->ops->start(v);
}

static void reset_locked(struct virtio_dev *v)
{
	if (v->ops->reset)
		v->ops->reset(v);
	for (unsigned i = 0; i < v->nqueues; i++) {
		struct virtio_queue *q = &v->q[i];
		vq_reset(&q->vq);
		q->size = q->size_max;
		q->msix_vector = VIRTIO_MSI_NO_VECTOR;
		q->enabled = false;
		q->desc = q->driver = q->device = 0;
	}
	v->guest_features = 0;
	v->dfselect = v->gfselect = 0;
	v->queue_select = 0;
	v->msix_config = VIRTIO_MSI_NO_VECTOR;
	v->status = 0;
	v->started = false;
	v->reset_gen++;
	atomic_store(&v->isr, 0);
	pci_intx_set(v->pci, false);
}

/* The driver's reset (status 0), the contract's mandatory reset: stop
 * the device (no queue is live, the generation moves on), wait until every
 * chain taken has been given back, so that no I/O started before the reset
 * writes guest RAM after it, then clear everything. While it waits the lock
 * is free for the workers and the driver's other writes are ignored; the
 * status reads non-zero until the reset is done, as the spec lets it. */
static void reset_device(struct virtio_dev *v)
{
	v->resetting = true;
	v->started = false;
	v->reset_gen++;
	while (v->inflight)
		pthread_cond_wait(&v->idle, &v->lock);
	reset_locked(v);
	v->resetting = false;
}

static void set_status(struct virtio_dev *v, uint8_t s)
{
	if (s == 0) {
		reset_device(v);
		return;
	}
	if ((s & VIRTIO_STATUS_FEATURES_OK) && !(v->status & VIRTIO_STATUS_FEATURES_OK)) {
		if ((v->guest_features & ~v->host_features) ||
		    !(v->guest_features & (1ULL << VIRTIO_F_VERSION_1))) {
			log_guest("%s: driver asked for features 0x%llx (offered 0x%llx)", v->name,
				  (unsigned long long)v->guest_features,
				  (unsigned long long)v->host_features);
			s &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	/* DRIVER_OK without FEATURES_OK: features never validated (3.1.1).
	 * The device does not start; it needs a reset. */
	if ((s & VIRTIO_STATUS_DRIVER_OK) && !(s & VIRTIO_STATUS_FEATURES_OK) &&
	    !(v->status & VIRTIO_STATUS_DRIVER_OK)) {
		log_guest("%s: DRIVER_OK without FEATURES_OK", v->name);
		v->status = (uint8_t)(s | VIRTIO_STATUS_NEEDS_RESET);
		raise_irq(v, v->msix_config, 2);
		return;
	}
	/* NEEDS_RESET is the device's to set; the driver cannot clear it. */
	s = (uint8_t)((s & ~VIRTIO_STATUS_NEEDS_RESET) | (v->status & VIRTIO_STATUS_NEEDS_RESET));
	bool going = (s & VIRTIO_STATUS_DRIVER_OK) && !(v->status & VIRTIO_STATUS_DRIVER_OK);
	v->status = s;
	if (going && !v->started && !(s & VIRTIO_STATUS_NEEDS_RESET)) {
		/* On the thread allowed to make threads (util/thread_role.h):
		 * start() may make the device's. */
		int r = v->ops->start ? thread_role_setup_call(start_device, v) : 0;
		if (r) {
			log_warn("%s: cannot start: %s", v->name, strerror(-r));
			v->status |= VIRTIO_STATUS_NEEDS_RESET;
			raise_irq(v, v->msix_config, 2);
			return;
		}
		v->started = true;
		/* Kicks that came before DRIVER_OK are in the eventfds. */
		for (unsigned i = 0; i < v->nqueues; i++)
			if (v->q[i].enabled)
				kick(v, i);
	}
}

static void queue_enable(struct virtio_dev *v, struct virtio_queue *q, unsigned index)
{
	if (q->enabled)
		return;
	q->enabled = true;
	if (vq_init(&q->vq, v->p->mem, q->size, q->desc, q->driver, q->device, v->guest_features)) {
		log_guest("%s: queue %u: size %u desc 0x%llx driver 0x%llx device 0x%llx: %s", v->name,
			  index, q->size, (unsigned long long)q->desc, (unsigned long long)q->driver,
			  (unsigned long long)q->device, vq_error_name(q->vq.error));
		virtio_queue_broken(v, index);
	}
}

/* ---- the common configuration ---- */

static void put(uint8_t *img, unsigned off, uint64_t v, unsigned size)
{
	for (unsigned i = 0; i < size; i++)
		img[off + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t common_read(struct virtio_dev *v, unsigned off, unsigned size)
{
	uint8_t img[VIRTIO_PCI_COMMON_LEN + 8] = { 0 };
	struct virtio_queue *q = v->queue_select < v->nqueues ? &v->q[v->queue_select] : NULL;
	put(img, 0x00, v->dfselect, 4);
	put(img, 0x04, v->dfselect < 2 ? (uint32_t)(v->host_features >> (32 * v->dfselect)) : 0, 4);
	put(img, 0x08, v->gfselect, 4);
	put(img, 0x0c, v->gfselect < 2 ? (uint32_t)(v->guest_features >> (32 * v->gfselect)) : 0, 4);
	put(img, 0x10, v->msix_config, 2);
	put(img, 0x12, v->nqueues, 2);
	put(img, 0x14, v->status, 1);
	put(img, 0x15, v->config_generation, 1);
	put(img, 0x16, v->queue_select, 2);
	if (q) {
		put(img, 0x18, q->size, 2);
		put(img, 0x1a, q->msix_vector, 2);
		put(img, 0x1c, q->enabled, 2);
		put(img, 0x1e, v->queue_select, 2); /* queue_notify_off */
		put(img, 0x20, q->desc, 8);
		put(img, 0x28, q->driver, 8);
		put(img, 0x30, q->device, 8);
	}
	if (off >= VIRTIO_PCI_COMMON_LEN)
		return 0;
	uint64_t r = 0;
	for (unsigned i = 0; i < size; i++)
		r |= (uint64_t)img[off + i] << (8 * i);
	return r;
}

static uint16_t checked_vector(struct virtio_dev *v, uint64_t value)
{
	uint16_t vec = (uint16_t)value;
	return vec < v->pci->msix_nvec ? vec : VIRTIO_MSI_NO_VECTOR;
}

static void set64(uint64_t *field, unsigned half, unsigned size, uint64_t value)
{
	if (size == 8)
		*field = value;
	else if (half)
		*field = (*field & 0xFFFFFFFFULL) | (uint64_t)(uint32_t)value << 32;
	else
		*field = (*field & ~0xFFFFFFFFULL) | (uint32_t)value;
}

static void common_write(struct virtio_dev *v, unsigned off, unsigned size, uint64_t value)
{
	struct virtio_queue *q = v->queue_select < v->nqueues ? &v->q[v->queue_select] : NULL;
	bool live = q && !q->enabled; /* queue fields are fixed once enabled */
	if (v->resetting)
		return; /* another vCPU's write while a reset waits for in-flight work */
	switch (off) {
	case 0x00:
		v->dfselect = (uint32_t)value;
		break;
	case 0x08:
		v->gfselect = (uint32_t)value;
		break;
	case 0x0c:
		if (v->gfselect < 2 && !(v->status & VIRTIO_STATUS_FEATURES_OK)) {
			unsigned s = 32 * v->gfselect;
			v->guest_features = (v->guest_features & ~(0xFFFFFFFFULL << s)) |
					    (uint64_t)(uint32_t)value << s;
		}
		break;
	case 0x10:
		v->msix_config = checked_vector(v, value);
		break;
	case 0x14:
		set_status(v, (uint8_t)value);
		break;
	case 0x16:
		v->queue_select = (uint16_t)value;
		break;
	case 0x18:
		if (live)
			q->size = (uint16_t)value <= q->size_max ? (uint16_t)value : q->size_max;
		break;
	case 0x1a:
		if (q)
			q->msix_vector = checked_vector(v, value);
		break;
	case 0x1c:
		if (q && (value & 1))
			queue_enable(v, q, v->queue_select);
		break;
	case 0x20: case 0x24:
		if (live)
			set64(&q->desc, off & 4, size, value);
		break;
	case 0x28: case 0x2c:
		if (live)
			set64(&q->driver, off & 4, size, value);
		break;
	case 0x30: case 0x34:
		if (live)
			set64(&q->device, off & 4, size, value);
		break;
	default:
		break;
	}
}

/* ---- BAR 4 ---- */

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
	struct virtio_dev *v = opaque;
	uint64_t r = 0;
	if (off < VIRTIO_PCI_ISR_OFF) {
		pthread_mutex_lock(&v->lock);
		r = common_read(v, (unsigned)off, size);
		pthread_mutex_unlock(&v->lock);
	} else if (off < VIRTIO_PCI_DEVICE_OFF) {
		if (off == VIRTIO_PCI_ISR_OFF) {
			/* Under the lock raise_irq() is called with: a raise
			 * between the read and the lowering would be lost. */
			pthread_mutex_lock(&v->lock);
			r = atomic_exchange(&v->isr, 0);
			pci_intx_set(v->pci, false);
			pthread_mutex_unlock(&v->lock);
		}
	} else if (off < VIRTIO_PCI_NOTIFY_OFF) {
		unsigned o = (unsigned)(off - VIRTIO_PCI_DEVICE_OFF);
		if (o + size <= v->cfg_size && v->ops->cfg_read) {
			uint8_t buf[8] = { 0 };
			pthread_mutex_lock(&v->lock);
			v->ops->cfg_read(v, o, buf, size);
			pthread_mutex_unlock(&v->lock);
			for (unsigned i = 0; i < size; i++)
				r |= (uint64_t)buf[i] << (8 * i);
		}
	}
	return r;
}

static void bar_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct virtio_dev *v = opaque;
	if (off < VIRTIO_PCI_ISR_OFF) {
		pthread_mutex_lock(&v->lock);
		common_write(v, (unsigned)off, size, value);
		pthread_mutex_unlock(&v->lock);
	} else if (off >= VIRTIO_PCI_DEVICE_OFF && off < VIRTIO_PCI_NOTIFY_OFF) {
		unsigned o = (unsigned)(off - VIRTIO_PCI_DEVICE_OFF);
		if (o + size <= v->cfg_size && v->ops->cfg_write) {
			uint8_t buf[8];
			for (unsigned i = 0; i < size; i++)
				buf[i] = (uint8_t)(value >> (8 * i));
			pthread_mutex_lock(&v->lock);
			v->ops->cfg_write(v, o, buf, size);
			pthread_mutex_unlock(&v->lock);
		}
	} else if (off >= VIRTIO_PCI_NOTIFY_OFF) {
		/* Reaches here only without an ioeventfd for this queue. */
		unsigned q = (unsigned)(off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;
		if (q < v->nqueues && (v->exit_queues >> q & 1))
			v->ops->queue_notify(v, q);
		else if (q < v->nqueues)
			kick(v, q);
	}
}

void virtio_queue_serve_in_exit(struct virtio_dev *v, unsigned q)
{
	if (q < v->nqueues && q < 64)
		v->exit_queues |= 1ULL << q;
}

static const struct io_ops bar_ops = { bar_read, bar_write };

/* ---- PCI glue ---- */

static void on_bar_map(struct pci_dev *d, int bar, uint64_t addr, bool mapped)
{
	struct virtio_dev *v = d->opaque;
	struct platform *p = v->p;
	if (bar != VIRTIO_PCI_BAR || !p->ioeventfd)
		return;
	pthread_mutex_lock(&v->lock);
	for (unsigned i = 0; i < v->nqueues; i++) {
		struct virtio_queue *q = &v->q[i];
		if (q->ioeventfd_addr) {
			p->ioeventfd(p, q->kick_fd, q->ioeventfd_addr, q->ioeventfd_len, false, false);
			q->ioeventfd_addr = 0;
		}
		if (!mapped || (v->exit_queues >> i & 1))
			continue;
		uint64_t a = addr + VIRTIO_PCI_NOTIFY_OFF + (uint64_t)i * VIRTIO_PCI_NOTIFY_MULT;
		/* Any width (KVM's fast MMIO path) where KVM has it, else the
		 * 16-bit writes drivers make; other widths still reach bar_write. */
		for (unsigned len = 0; len <= 2 && !q->ioeventfd_addr; len += 2) {
			if (p->ioeventfd(p, q->kick_fd, a, len, false, true) == 0) {
				q->ioeventfd_addr = a;
				q->ioeventfd_len = len;
			}
		}
	}
	pthread_mutex_unlock(&v->lock);
}

/* Config space from 0x40: the vendor capabilities are read-only bytes,
 * except the PCI configuration access window. */
static uint32_t pcicfg_access(struct virtio_dev *v, bool write, uint32_t value)
{
	struct pci_dev *d = v->pci;
	unsigned c = v->pcicfg_cap;
	uint8_t bar = pci_get_u8(d, c + 4);
	uint32_t off = pci_get_u32(d, c + 8), len = pci_get_u32(d, c + 12);
	/* off + len could wrap in 32 bits: compare without adding. */
	if (bar != VIRTIO_PCI_BAR || (len != 1 && len != 2 && len != 4) ||
	    off >= VIRTIO_PCI_BAR_SIZE || len > VIRTIO_PCI_BAR_SIZE - off || (off & (len - 1)))
		return 0;
	if (write) {
		bar_write(v, off, len, value);
		return 0;
	}
	return (uint32_t)bar_read(v, off, len);
}

static uint32_t dev_cfg_read(struct pci_dev *d, unsigned reg, unsigned size)
{
	struct virtio_dev *v = d->opaque;
	unsigned data = v->pcicfg_cap + 16;
	if (v->pcicfg_cap && reg >= data && reg < data + 4) {
		uint32_t x = pcicfg_access(v, false, 0);
		return (uint32_t)((uint64_t)x >> (8 * (reg - data))) &
		       (size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1);
	}
	uint32_t r = 0;
	for (unsigned i = 0; i < size; i++)
		r |= (uint32_t)pci_get_u8(d, reg + i) << (8 * i);
	return r;
}

static void dev_cfg_write(struct pci_dev *d, unsigned reg, unsigned size, uint32_t value)
{
	struct virtio_dev *v = d->opaque;
	unsigned c = v->pcicfg_cap;
	if (!c)
		return;
	if (reg >= c + 16 && reg < c + 20) {
		pcicfg_access(v, true, value);
		return;
	}
	for (unsigned i = 0; i < size; i++) {
		unsigned r = reg + i;
		if (r == c + 4 || (r >= c + 8 && r < c + 16))
			pci_set_u8(d, r, (uint8_t)(value >> (8 * i)));
	}
}

static void dev_destroy(struct pci_dev *d)
{
	struct virtio_dev *v = d->opaque;
	if (v->ops->destroy)
		v->ops->destroy(v);
	for (unsigned i = 0; i < v->nqueues; i++) {
		struct virtio_queue *q = &v->q[i];
		if (q->loop_src)
			evloop_remove(v->p->loop, q->loop_src);
		if (q->kick_fd >= 0)
			close(q->kick_fd);
	}
	pthread_cond_destroy(&v->idle);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

static const struct pci_dev_ops virtio_pci_dev_ops = {
	.cfg_read = dev_cfg_read,
	.cfg_write = dev_cfg_write,
	.bar_map = on_bar_map,
	.destroy = dev_destroy,
};

static unsigned add_cap(struct pci_dev *d, uint8_t type, uint32_t off, uint32_t len,
			unsigned caplen)
{
	unsigned c = pci_cap_add(d, PCI_CAP_ID_VNDR, caplen);
	if (!c)
		return 0;
	pci_set_u8(d, c + 2, (uint8_t)caplen);
	pci_set_u8(d, c + 3, type);
	pci_set_u8(d, c + 4, type == VIRTIO_PCI_CAP_PCI_CFG ? 0 : VIRTIO_PCI_BAR);
	pci_set_u32(d, c + 8, off);
	pci_set_u32(d, c + 12, len);
	return c;
}

static const struct virtio_dev_ops failed_ops;
static int finish_create(struct virtio_dev *v, struct pci_dev *d, unsigned nqueues,
			 unsigned cfg_size);

int virtio_pci_create(struct pci_bus *bus, unsigned slot, unsigned func, struct platform *p,
		      const char *name, uint16_t device_id, uint32_t class_code, uint64_t features,
		      unsigned nqueues, uint16_t queue_size_max, unsigned cfg_size,
		      const struct virtio_dev_ops *ops, void *opaque, struct virtio_dev **out)
{
	if (nqueues == 0 || nqueues > VIRTIO_MAX_QUEUES || cfg_size > 0x1000)
		return -EINVAL;
	struct virtio_dev *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->idle, NULL);
	v->p = p;
	v->ops = ops;
	v->opaque = opaque;
	v->device_id = device_id;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->host_features = features | 1ULL << VIRTIO_F_VERSION_1 |
			   1ULL << VIRTIO_F_RING_EVENT_IDX | 1ULL << VIRTIO_F_RING_INDIRECT_DESC;
	v->nqueues = nqueues;
	v->cfg_size = cfg_size;
	v->msix_config = VIRTIO_MSI_NO_VECTOR;
	for (unsigned i = 0; i < nqueues; i++) {
		v->q[i] = (struct virtio_queue){ .size_max = queue_size_max, .size = queue_size_max,
						 .msix_vector = VIRTIO_MSI_NO_VECTOR };
		v->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->q[i].kick_fd < 0) {
			int e = -errno;
			for (unsigned k = 0; k < i; k++)
				close(v->q[k].kick_fd);
			free(v);
			return e;
		}
	}
	struct pci_dev *d;
	int r = pci_dev_create(bus, slot, func, name, 0x1af4, (uint16_t)(0x1040 + device_id),
			       class_code, 1, &virtio_pci_dev_ops, v, &d);
	if (r) {
		for (unsigned k = 0; k < nqueues; k++)
			close(v->q[k].kick_fd);
		pthread_cond_destroy(&v->idle);
		pthread_mutex_destroy(&v->lock);
		free(v);
		return r;
	}
	/* From here on the PCI function owns v (dev_destroy frees it); on
	 * failure the device's own state stays the caller's. */
	v->pci = d;
	r = finish_create(v, d, nqueues, cfg_size);
	if (r) {
		v->ops = &failed_ops;
		return r;
	}
	*out = v;
	return 0;
}

static int finish_create(struct virtio_dev *v, struct pci_dev *d, unsigned nqueues,
			 unsigned cfg_size)
{
	int r;
	pci_set_subsystem(d, 0x1af4, (uint16_t)(0x40 + v->device_id));
	if ((r = pci_bar_init(d, VIRTIO_PCI_MSIX_BAR, PCI_BAR_MEM32, 0x1000, false, NULL, NULL)) ||
	    (r = pci_bar_init(d, VIRTIO_PCI_BAR, PCI_BAR_MEM64, VIRTIO_PCI_BAR_SIZE, false, &bar_ops,
			      v)))
		return r;
	if (!add_cap(d, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_COMMON_LEN, 16) ||
	    !add_cap(d, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1, 16) ||
	    (cfg_size && !add_cap(d, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF, cfg_size, 16)))
		return -ENOSPC;
	unsigned n = add_cap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
			     nqueues * VIRTIO_PCI_NOTIFY_MULT, 20);
	if (!n)
		return -ENOSPC;
	pci_set_u32(d, n + 16, VIRTIO_PCI_NOTIFY_MULT);
	v->pcicfg_cap = add_cap(d, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 20);
	if (!v->pcicfg_cap)
		return -ENOSPC;
	if ((r = pci_msix_init(d, nqueues + 1, VIRTIO_PCI_MSIX_BAR, 0, 0x800)) ||
	    (r = pci_msi_init(d)))
		return r;
	pci_intx_init(d, 1);
	return 0;
}
