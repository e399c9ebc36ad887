/* SPDX-License-Identifier: BSD-2-Clause */
/* A small virtio 1.x PCI driver for test guests: the modern capabilities,
 * feature negotiation, split queues (direct, chained and indirect
 * descriptors, event-idx), polling or interrupts (MSI-X, MSI, INTx). The
 * queue memory is the caller's, so tests can also write bad rings. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdint.h>
#include <stdbool.h>

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4

#define VIRTIO_NO_VECTOR 0xffff

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
} __attribute__((packed));

enum virtio_irq_mode { VIRTIO_IRQ_POLL, VIRTIO_IRQ_MSIX, VIRTIO_IRQ_MSI, VIRTIO_IRQ_INTX };

struct virtio_dev {
    uint16_t bdf;
    uintptr_t common, isr, device, notify;
    uint32_t notify_mult;
    unsigned device_len;
    unsigned msix_cap, msi_cap;
    uintptr_t msix_table;
    unsigned msix_count;
    uint64_t features;          /* negotiated */
    enum virtio_irq_mode irq;
    unsigned vector_base;       /* CPU vectors: base + MSI-X vector number */
    volatile unsigned irq_count;
    unsigned intx_gsi;
};

struct virtq {
    struct virtio_dev *dev;
    unsigned index;
    uint16_t size;
    struct vring_desc *desc;
    volatile uint16_t *avail;   /* flags, idx, ring[size], used_event */
    volatile uint32_t *used;    /* (flags | idx << 16), {id, len}[size], avail_event */
    uintptr_t notify;
    uint16_t avail_idx, last_used, free_head, num_free;
    volatile unsigned irq_count;
    unsigned kicks;             /* notify writes made */
    bool event_idx;
};

/* Bytes of queue memory for size entries (desc, avail, pad, used). */
unsigned long virtq_mem_size(unsigned size);

/* Map the capabilities of the function at bdf. false if it is not a
 * modern virtio device. */
bool virtio_open(struct virtio_dev *d, uint16_t bdf);
uint8_t virtio_status(struct virtio_dev *d);
void virtio_set_status(struct virtio_dev *d, uint8_t s);
void virtio_reset(struct virtio_dev *d);
/* Reset, ACKNOWLEDGE, DRIVER, offer wanted & device features (VERSION_1
 * always), FEATURES_OK; false if the device refuses. */
bool virtio_negotiate(struct virtio_dev *d, uint64_t wanted);
uint64_t virtio_device_features(struct virtio_dev *d);
/* Interrupt set-up (before queues): MSI-X vectors 0..n map to CPU vectors
 * vector_base + i; config vector 0 when MSI-X. */
void virtio_setup_irq(struct virtio_dev *d, enum virtio_irq_mode mode, unsigned vector_base);
/* Set up and enable queue index with size entries in mem (4 KiB aligned,
 * virtq_mem_size bytes, zeroed here). msix_vector for MSI-X mode. */
bool virtq_setup(struct virtio_dev *d, struct virtq *q, unsigned index, unsigned size, void *mem,
                 uint16_t msix_vector);
void virtio_driver_ok(struct virtio_dev *d);
uint8_t virtio_cfg_read8(struct virtio_dev *d, unsigned off);
uint16_t virtio_cfg_read16(struct virtio_dev *d, unsigned off);
uint32_t virtio_cfg_read32(struct virtio_dev *d, unsigned off);
uint64_t virtio_cfg_read64(struct virtio_dev *d, unsigned off);
void virtio_cfg_write8(struct virtio_dev *d, unsigned off, uint8_t v);
/* Read the ISR byte (clears it; de-asserts INTx). */
uint8_t virtio_isr(struct virtio_dev *d);

struct vbuf {
    void *addr;
    uint32_t len;
    bool write;                 /* device-writable */
};
/* Add a chain of n buffers (readable ones first); indirect puts them in
 * the table itab (n entries) behind one descriptor. Returns the head, or
 * -1 when the queue is full. Does not kick. */
int virtq_add(struct virtq *q, const struct vbuf *bufs, unsigned n, struct vring_desc *itab);
/* Publish the added chains (avail idx) and kick the device when it asks. */
void virtq_kick(struct virtq *q);
/* Next used entry: its head (and len), or -1 when none. Frees the chain. */
int virtq_get_used(struct virtq *q, uint32_t *len);
/* Wait for a used entry (polling, or halting for the interrupt);
 * -1 on timeout. */
int virtq_wait_used(struct virtq *q, uint32_t *len, unsigned timeout_ms);
/* The same, but halting between looks (interrupt modes only): the
 * device's interrupt wakes the CPU; a 10 ms LAPIC timer tick bounds the
 * wait should one be lost. Interrupts stay off outside the halt. */
int virtq_sleep_used(struct virtq *q, uint32_t *len, unsigned timeout_ms);
/* Raw access for bad-ring tests: put head in the avail ring and publish. */
void virtq_publish_raw(struct virtq *q, uint16_t head);
void virtq_set_avail_idx(struct virtq *q, uint16_t idx);
/* Wait until status has bit set; false on timeout. */
bool virtio_wait_status(struct virtio_dev *d, uint8_t bit, unsigned timeout_ms);

#endif
