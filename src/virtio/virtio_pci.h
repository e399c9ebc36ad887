/* virtio 1.x over PCI (the modern transport only, 4.1): a PCI function
 * 1af4:(1040 + device id) with the common, notify, ISR, device and PCI
 * configuration capabilities in BAR 4 (16 KiB, 64-bit), MSI-X (table and
 * PBA) in BAR 1, an MSI capability and INTA#.
 *
 * Kicks: each queue has an eventfd that KVM signals (ioeventfd) when the
 * guest writes the queue's notify address, so a kick never stops a vCPU;
 * without ioeventfd the MMIO write signals it. The device reads the
 * eventfds on its own thread or, with virtio_kicks_on_loop, the event
 * loop. Interrupts: MSI-X through irqfd (pci.c), else MSI, else INTx
 * with the ISR byte.
 *
 * Locking: vdev->lock guards the transport state and the queues. Devices
 * follow the runtime contract in virtio/vdev_work.h: they take chains
 * under the lock, work on them unlocked and give them back under it; a
 * reset waits for every chain taken and not yet given back. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dev/platform.h"
#include "pci/pci.h"
#include "virtio/virtqueue.h"

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VIRTIO_MSI_NO_VECTOR 0xFFFF

/* BAR 4 layout. */
#define VIRTIO_PCI_BAR 4
#define VIRTIO_PCI_BAR_SIZE 0x4000
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_COMMON_LEN 0x38
#define VIRTIO_PCI_ISR_OFF 0x1000
#define VIRTIO_PCI_DEVICE_OFF 0x2000
#define VIRTIO_PCI_NOTIFY_OFF 0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MSIX_BAR 1

#define VIRTIO_MAX_QUEUES 64

struct virtio_dev;

struct virtio_dev_ops {
	/* Device configuration space (device-specific). off + len <= cfg_size. */
	void (*cfg_read)(struct virtio_dev *v, unsigned off, void *buf, unsigned len);
	void (*cfg_write)(struct virtio_dev *v, unsigned off, const void *buf, unsigned len);
	/* Queue q was kicked (or must be looked at). Called on the thread that
	 * reads the kick (without vdev->lock). Serves at most one budget
	 * (vdev_work.h) and re-kicks itself for the rest. */
	void (*queue_notify)(struct virtio_dev *v, unsigned q);
	/* The driver set DRIVER_OK (with FEATURES_OK): start working (thread,
	 * backend). Return 0 or -errno (the device then reports NEEDS_RESET).
	 * vdev->lock held. May be called again after a failure or a reset:
	 * what it makes it keeps (until destroy) and does not make twice. */
	int (*start)(struct virtio_dev *v);
	/* The driver reset the device; vdev->lock held. Called after every
	 * chain taken with vdev_take() has been given back (in-flight I/O has
	 * finished), so nothing of the old generation still touches guest
	 * RAM: forget held buffers and device state. */
	void (*reset)(struct virtio_dev *v);
	/* Free the device's own state; stop its threads first. */
	void (*destroy)(struct virtio_dev *v);
};

struct virtio_queue {
	struct virtqueue vq;
	uint16_t size_max, size;
	uint16_t msix_vector;
	bool enabled;
	uint64_t desc, driver, device;
	int kick_fd;
	uint64_t ioeventfd_addr; /* 0: not assigned */
	unsigned ioeventfd_len;
	struct evloop_source *loop_src;
};

struct virtio_dev {
	struct pci_dev *pci;
	struct platform *p;
	pthread_mutex_t lock;
	const struct virtio_dev_ops *ops;
	void *opaque;
	uint16_t device_id;
	char name[24];

	uint64_t host_features, guest_features;
	uint32_t dfselect, gfselect;
	uint16_t queue_select;
	uint16_t msix_config;
	uint8_t status;
	uint8_t config_generation;
	atomic_uint isr;
	unsigned cfg_size;
	bool started;      /* start() succeeded since the last reset */
	uint32_t reset_gen; /* bumped by every reset; completions compare it */
	/* The runtime contract (vdev_work.h): chains taken and not yet given
	 * back, and the reset that waits for them to reach zero. */
	unsigned inflight;
	bool resetting;
	pthread_cond_t idle;

	unsigned nqueues;
	uint64_t exit_queues; /* bit q: served in the exit (virtio_queue_serve_in_exit) */
	struct virtio_queue q[VIRTIO_MAX_QUEUES];

	/* The VIRTIO_PCI_CAP_PCI_CFG window. */
	unsigned pcicfg_cap;
	struct virtio_kick_ctx {
		struct virtio_dev *v;
		unsigned q;
	} kick_ctx[VIRTIO_MAX_QUEUES];
};

/* Create the PCI function and transport. features: the device's own
 * (VERSION_1, event-idx and indirect are added). */
int virtio_pci_create(struct pci_bus *bus, unsigned slot, unsigned func, struct platform *p,
		      const char *name, uint16_t device_id, uint32_t class_code, uint64_t features,
		      unsigned nqueues, uint16_t queue_size_max, unsigned cfg_size,
		      const struct virtio_dev_ops *ops, void *opaque, struct virtio_dev **out);

/* Serve queue q's kicks in the vCPU's exit (ops->queue_notify on the vCPU
 * thread, no ioeventfd) instead of through its kick eventfd: for small,
 * rare requests that drivers busy-wait on (virtio-net's control queue:
 * Linux spins until the answer is in the used ring, "the kick traps into
 * the hypervisor, so the request should be handled immediately"). The kick
 * eventfd stays for the device's own re-kicks. Call after create. */
void virtio_queue_serve_in_exit(struct virtio_dev *v, unsigned q);
/* Read kicks on the event loop (for devices without a thread of their own).
 * Call once after create. */
int virtio_kicks_on_loop(struct virtio_dev *v);
/* Drain a queue's kick eventfd; true when it had been signalled. */
bool virtio_kick_drain(struct virtio_dev *v, unsigned q);

/* The driver's view of queue q, when it is live (DRIVER_OK and enabled,
 * not broken); NULL otherwise. vdev->lock held. */
struct virtqueue *virtio_queue(struct virtio_dev *v, unsigned q);
/* After vq_pop returned an error: report DEVICE_NEEDS_RESET (config
 * interrupt). vdev->lock held. */
void virtio_queue_broken(struct virtio_dev *v, unsigned q);
/* After pushing used entries: interrupt the driver if it wants one.
 * vdev->lock held. */
void virtio_queue_notify_guest(struct virtio_dev *v, unsigned q);
/* Interrupt the driver for queue q whatever the ring's suppression says:
 * for a back end that decided it already (vhost's call eventfd). */
void virtio_queue_interrupt(struct virtio_dev *v, unsigned q);
/* Device configuration changed (config_generation bumped, config
 * interrupt). vdev->lock held. */
void virtio_config_changed(struct virtio_dev *v);
bool virtio_has_feature(const struct virtio_dev *v, unsigned bit);
