/* SPDX-License-Identifier: BSD-2-Clause */
#include "virtio.h"
#include "delay.h"
#include "io.h"
#include "lib.h"
#include "pci.h"
#include "smp.h"

#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4

/* common configuration offsets */
#define C_DFSELECT 0x00
#define C_DF 0x04
#define C_GFSELECT 0x08
#define C_GF 0x0c
#define C_MSIX_CONFIG 0x10
#define C_NUM_QUEUES 0x12
#define C_STATUS 0x14
#define C_QSELECT 0x16
#define C_QSIZE 0x18
#define C_QMSIX 0x1a
#define C_QENABLE 0x1c
#define C_QNOTIFY_OFF 0x1e
#define C_QDESC 0x20
#define C_QDRIVER 0x28
#define C_QDEVICE 0x30

static void mb(void) { __asm__ volatile("mfence" ::: "memory"); }

static uint64_t bar_addr(uint16_t bdf, unsigned bar)
{
    uint32_t lo = pci_read(bdf, 0x10 + 4 * bar, 4);
    if (lo & 1)
        return lo & ~3u;
    uint64_t a = lo & ~0xfu;
    if (((lo >> 1) & 3) == 2)
        a |= (uint64_t)pci_read(bdf, 0x14 + 4 * bar, 4) << 32;
    return a;
}

unsigned long virtq_mem_size(unsigned size)
{
    unsigned long used_off = (16ul * size + 6 + 2ul * size + 4095) & ~4095ul;
    return used_off + ((6 + 8ul * size + 4095) & ~4095ul);
}

bool virtio_open(struct virtio_dev *d, uint16_t bdf)
{
    memset(d, 0, sizeof(*d));
    d->bdf = bdf;
    if ((pci_read(bdf, 0, 2) & 0xffff) != 0x1af4)
        return false;
    for (unsigned c = pci_find_cap(bdf, 0x09, 0); c; c = pci_find_cap(bdf, 0x09, c)) {
        unsigned type = pci_read(bdf, c + 3, 1), bar = pci_read(bdf, c + 4, 1);
        uint32_t off = pci_read(bdf, c + 8, 4), len = pci_read(bdf, c + 12, 4);
        if (bar > 5)
            continue;
        uintptr_t a = (uintptr_t)(bar_addr(bdf, bar) + off);
        switch (type) {
        case CAP_COMMON: d->common = a; break;
        case CAP_ISR: d->isr = a; break;
        case CAP_DEVICE: d->device = a; d->device_len = len; break;
        case CAP_NOTIFY:
            d->notify = a;
            d->notify_mult = pci_read(bdf, c + 16, 4);
            break;
        }
    }
    d->msix_cap = pci_find_cap(bdf, 0x11, 0);
    if (d->msix_cap) {
        uint32_t t = pci_read(bdf, d->msix_cap + 4, 4);
        d->msix_table = (uintptr_t)(bar_addr(bdf, t & 7) + (t & ~7u));
        d->msix_count = (pci_read(bdf, d->msix_cap + 2, 2) & 0x7ff) + 1;
    }
    d->msi_cap = pci_find_cap(bdf, 0x05, 0);
    /* memory decoding and bus mastering on */
    pci_write(bdf, 4, 2, pci_read(bdf, 4, 2) | 0x6);
    return d->common && d->notify && d->isr;
}

uint8_t virtio_status(struct virtio_dev *d) { return readb(d->common + C_STATUS); }
void virtio_set_status(struct virtio_dev *d, uint8_t s) { writeb(d->common + C_STATUS, s); }

void virtio_reset(struct virtio_dev *d)
{
    virtio_set_status(d, 0);
    while (virtio_status(d) != 0)
        cpu_relax();
}

uint64_t virtio_device_features(struct virtio_dev *d)
{
    writel(d->common + C_DFSELECT, 0);
    uint64_t f = readl(d->common + C_DF);
    writel(d->common + C_DFSELECT, 1);
    return f | (uint64_t)readl(d->common + C_DF) << 32;
}

bool virtio_negotiate(struct virtio_dev *d, uint64_t wanted)
{
    virtio_reset(d);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t f = virtio_device_features(d) & (wanted | 1ull << VIRTIO_F_VERSION_1);
    writel(d->common + C_GFSELECT, 0);
    writel(d->common + C_GF, (uint32_t)f);
    writel(d->common + C_GFSELECT, 1);
    writel(d->common + C_GF, (uint32_t)(f >> 32));
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    d->features = f;
    return virtio_status(d) & VIRTIO_STATUS_FEATURES_OK;
}

static struct virtq *vector_queue[256];
static struct virtio_dev *vector_dev[256];

static void on_irq(unsigned vector, void *arg)
{
    (void)arg;
    struct virtio_dev *d = vector_dev[vector];
    if (d && (d->irq == VIRTIO_IRQ_INTX || d->irq == VIRTIO_IRQ_MSI)) {
        uint8_t isr = virtio_isr(d);
        if (!isr && d->irq == VIRTIO_IRQ_INTX)
            return; /* shared line, not ours */
        /* one vector for everything: count it on every queue */
        for (unsigned v = 0; v < 256; v++)
            if (vector_queue[v] && vector_queue[v]->dev == d)
                vector_queue[v]->irq_count++;
    } else if (vector_queue[vector]) {
        vector_queue[vector]->irq_count++;
    }
    if (d)
        d->irq_count++;
}

void virtio_setup_irq(struct virtio_dev *d, enum virtio_irq_mode mode, unsigned vector_base)
{
    d->irq = mode;
    d->vector_base = vector_base;
    if (mode == VIRTIO_IRQ_POLL)
        return;
    irq_init();
    uint16_t cmd = (uint16_t)pci_read(d->bdf, 4, 2);
    if (mode == VIRTIO_IRQ_MSIX) {
        for (unsigned i = 0; i < d->msix_count && vector_base + i < 255; i++) {
            uintptr_t e = d->msix_table + 16 * i;
            writel(e, (uint32_t)msi_address());
            writel(e + 4, (uint32_t)(msi_address() >> 32));
            writel(e + 8, msi_data(vector_base + i));
            writel(e + 12, 0); /* unmasked */
            vector_dev[vector_base + i] = d;
            irq_set_handler(vector_base + i, on_irq, d);
        }
        pci_write(d->bdf, d->msix_cap + 2, 2, 0x8000);
        writew(d->common + C_MSIX_CONFIG, 0);
        pci_write(d->bdf, 4, 2, cmd | 0x400); /* INTx off */
    } else if (mode == VIRTIO_IRQ_MSI) {
        unsigned c = d->msi_cap;
        pci_write(d->bdf, c + 4, 4, (uint32_t)msi_address());
        pci_write(d->bdf, c + 8, 4, (uint32_t)(msi_address() >> 32));
        pci_write(d->bdf, c + 12, 2, msi_data(vector_base));
        pci_write(d->bdf, c + 16, 4, 0);
        pci_write(d->bdf, c + 2, 2, 1);
        vector_dev[vector_base] = d;
        irq_set_handler(vector_base, on_irq, d);
        pci_write(d->bdf, 4, 2, cmd | 0x400);
    } else {
        d->intx_gsi = pci_read(d->bdf, 0x3c, 1);
        vector_dev[vector_base] = d;
        irq_set_handler(vector_base, on_irq, d);
        ioapic_route(d->intx_gsi, vector_base, true, true);
        pci_write(d->bdf, 4, 2, cmd & ~0x400);
    }
}

bool virtq_setup(struct virtio_dev *d, struct virtq *q, unsigned index, unsigned size, void *mem,
                 uint16_t msix_vector)
{
    memset(q, 0, sizeof(*q));
    memset(mem, 0, virtq_mem_size(size));
    writew(d->common + C_QSELECT, (uint16_t)index);
    unsigned max = readw(d->common + C_QSIZE);
    if (max == 0)
        return false;
    if (size > max)
        size = max;
    writew(d->common + C_QSIZE, (uint16_t)size);
    q->dev = d;
    q->index = index;
    q->size = (uint16_t)size;
    q->desc = mem;
    q->avail = (volatile uint16_t *)((uint8_t *)mem + 16 * size);
    unsigned long used_off = (16ul * size + 6 + 2ul * size + 4095) & ~4095ul;
    q->used = (volatile uint32_t *)((uint8_t *)mem + used_off);
    q->event_idx = d->features & (1ull << VIRTIO_F_EVENT_IDX);
    for (unsigned i = 0; i < size; i++)
        q->desc[i].next = (uint16_t)(i + 1);
    q->num_free = (uint16_t)size;
    writeq(d->common + C_QDESC, (uint64_t)(uintptr_t)q->desc);
    writeq(d->common + C_QDRIVER, (uint64_t)(uintptr_t)q->avail);
    writeq(d->common + C_QDEVICE, (uint64_t)(uintptr_t)q->used);
    if (d->irq == VIRTIO_IRQ_MSIX) {
        writew(d->common + C_QMSIX, msix_vector);
        if (msix_vector != VIRTIO_NO_VECTOR)
            vector_queue[d->vector_base + msix_vector] = q;
    } else if (d->irq != VIRTIO_IRQ_POLL) {
        vector_queue[d->vector_base + 1 + index] = q; /* for on_irq's walk */
    }
    if (d->irq == VIRTIO_IRQ_POLL)
        q->avail[0] = 1; /* VRING_AVAIL_F_NO_INTERRUPT */
    q->notify = d->notify + readw(d->common + C_QNOTIFY_OFF) * d->notify_mult;
    writew(d->common + C_QENABLE, 1);
    return true;
}

void virtio_driver_ok(struct virtio_dev *d)
{
    virtio_set_status(d, virtio_status(d) | VIRTIO_STATUS_DRIVER_OK);
}

uint8_t virtio_cfg_read8(struct virtio_dev *d, unsigned off) { return readb(d->device + off); }
uint16_t virtio_cfg_read16(struct virtio_dev *d, unsigned off) { return readw(d->device + off); }
uint32_t virtio_cfg_read32(struct virtio_dev *d, unsigned off) { return readl(d->device + off); }
uint64_t virtio_cfg_read64(struct virtio_dev *d, unsigned off)
{
    return readl(d->device + off) | (uint64_t)readl(d->device + off + 4) << 32;
}
void virtio_cfg_write8(struct virtio_dev *d, unsigned off, uint8_t v) { writeb(d->device + off, v); }

uint8_t virtio_isr(struct virtio_dev *d) { return readb(d->isr); }

int virtq_add(struct virtq *q, const struct vbuf *bufs, unsigned n, struct vring_desc *itab)
{
    unsigned need = itab ? 1 : n;
    if (n == 0 || q->num_free < need)
        return -1;
    uint16_t head = q->free_head;
    if (itab) {
        for (unsigned i = 0; i < n; i++) {
            itab[i].addr = (uint64_t)(uintptr_t)bufs[i].addr;
            itab[i].len = bufs[i].len;
            itab[i].flags = (uint16_t)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
                                       (i + 1 < n ? VRING_DESC_F_NEXT : 0));
            itab[i].next = (uint16_t)(i + 1);
        }
        struct vring_desc *dsc = &q->desc[head];
        q->free_head = dsc->next;
        dsc->addr = (uint64_t)(uintptr_t)itab;
        dsc->len = 16 * n;
        dsc->flags = VRING_DESC_F_INDIRECT;
    } else {
        uint16_t i = head, last = head;
        for (unsigned k = 0; k < n; k++) {
            struct vring_desc *dsc = &q->desc[i];
            dsc->addr = (uint64_t)(uintptr_t)bufs[k].addr;
            dsc->len = bufs[k].len;
            dsc->flags = (uint16_t)((bufs[k].write ? VRING_DESC_F_WRITE : 0) |
                                    (k + 1 < n ? VRING_DESC_F_NEXT : 0));
            last = i;
            i = dsc->next;
        }
        q->free_head = q->desc[last].next;
    }
    q->num_free = (uint16_t)(q->num_free - need);
    q->avail[2 + q->avail_idx % q->size] = head;
    q->avail_idx++;
    return head;
}

static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void virtq_kick(struct virtq *q)
{
    uint16_t old = q->avail[1];
    mb();
    q->avail[1] = q->avail_idx;
    mb();
    bool kick;
    if (q->event_idx) {
        volatile uint16_t *u16 = (volatile uint16_t *)q->used;
        uint16_t avail_event = u16[2 + 4 * q->size];
        kick = need_event(avail_event, q->avail_idx, old);
    } else {
        kick = !(q->used[0] & 1);
    }
    if (kick) {
        writew(q->notify, (uint16_t)q->index);
        q->kicks++;
    }
}

void virtq_publish_raw(struct virtq *q, uint16_t head)
{
    q->avail[2 + q->avail_idx % q->size] = head;
    q->avail_idx++;
    mb();
    q->avail[1] = q->avail_idx;
    mb();
    writew(q->notify, (uint16_t)q->index);
}

void virtq_set_avail_idx(struct virtq *q, uint16_t idx)
{
    q->avail_idx = idx;
    mb();
    q->avail[1] = idx;
    mb();
    writew(q->notify, (uint16_t)q->index);
}

int virtq_get_used(struct virtq *q, uint32_t *len)
{
    uint16_t used_idx = (uint16_t)(q->used[0] >> 16);
    if (used_idx == q->last_used)
        return -1;
    mb();
    unsigned slot = q->last_used % q->size;
    uint32_t id = q->used[1 + 2 * slot];
    if (len)
        *len = q->used[2 + 2 * slot];
    q->last_used++;
    if (q->event_idx)
        q->avail[2 + q->size] = q->last_used; /* used_event */
    if (id >= q->size)
        return -1;
    /* free the chain */
    uint16_t i = (uint16_t)id;
    unsigned n = 1;
    while ((q->desc[i].flags & VRING_DESC_F_NEXT) && n < q->size) {
        i = q->desc[i].next;
        n++;
    }
    q->desc[i].next = q->free_head;
    q->free_head = (uint16_t)id;
    q->num_free = (uint16_t)(q->num_free + n);
    return (int)id;
}

int virtq_wait_used(struct virtq *q, uint32_t *len, unsigned timeout_ms)
{
    uint64_t deadline = timeout_start(timeout_ms);
    for (;;) {
        if (q->dev->irq != VIRTIO_IRQ_POLL)
            sti();
        int h = virtq_get_used(q, len);
        if (h >= 0 || timeout_expired(deadline)) {
            cli();
            return h;
        }
        cpu_relax();
    }
}

static void on_tick(unsigned vector, void *arg)
{
    (void)vector;
    (void)arg;
}

int virtq_sleep_used(struct virtq *q, uint32_t *len, unsigned timeout_ms)
{
    static bool ticking;
    if (q->dev->irq == VIRTIO_IRQ_POLL)
        return virtq_wait_used(q, len, timeout_ms);
    if (!ticking) {
        /* LAPIC timer: periodic, vector 0xef, divide by 16 */
        irq_set_handler(0xef, on_tick, NULL);
        lapic_write(0x3e0, 0x3);
        lapic_write(0x320, 0xef | (1u << 17));
        lapic_write(0x380, (uint32_t)(tsc_khz() * 10 / 16)); /* ~10 ms at bus ~ TSC */
        ticking = true;
    }
    uint64_t deadline = timeout_start(timeout_ms);
    for (;;) {
        cli();
        int h = virtq_get_used(q, len);
        if (h >= 0 || timeout_expired(deadline))
            return h;
        __asm__ volatile("sti; hlt" ::: "memory");
    }
}

bool virtio_wait_status(struct virtio_dev *d, uint8_t bit, unsigned timeout_ms)
{
    uint64_t deadline = timeout_start(timeout_ms);
    while (!(virtio_status(d) & bit))
        if (timeout_expired(deadline))
            return false;
    return true;
}
