#include "pci/pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

#define PCI_MMIO64_WINDOW (16ULL << 30)
#define PCI_MMIO64_ALIGN (1ULL << 30)
#define PCI_MMIO64_LIMIT (1ULL << 36) /* stay inside every x86-64 CPU's reach */

struct pci_bus {
	struct platform *p;
	pthread_mutex_t lock; /* config space of every function */
	struct pci_dev *dev[PCI_SLOTS][PCI_FUNCS];
	_Atomic uint32_t config_address; /* 0xCF8 */
	bool finished;
	pthread_mutex_t intx_lock;
	unsigned intx_count[PCI_INTX_GSI_COUNT];
	uint64_t mmio64_base, mmio64_size;
	bool cfg_ports, ecam;
};

/* ---- little helpers ---- */

void pci_set_u8(struct pci_dev *d, unsigned reg, uint8_t v) { d->cfg[reg] = v; }

void pci_set_u16(struct pci_dev *d, unsigned reg, uint16_t v)
{
	d->cfg[reg] = (uint8_t)v;
	d->cfg[reg + 1] = (uint8_t)(v >> 8);
}

void pci_set_u32(struct pci_dev *d, unsigned reg, uint32_t v)
{
	pci_set_u16(d, reg, (uint16_t)v);
	pci_set_u16(d, reg + 2, (uint16_t)(v >> 16));
}

uint8_t pci_get_u8(const struct pci_dev *d, unsigned reg) { return d->cfg[reg]; }

uint16_t pci_get_u16(const struct pci_dev *d, unsigned reg)
{
	return (uint16_t)(d->cfg[reg] | d->cfg[reg + 1] << 8);
}

uint32_t pci_get_u32(const struct pci_dev *d, unsigned reg)
{
	return pci_get_u16(d, reg) | (uint32_t)pci_get_u16(d, reg + 2) << 16;
}

static void set_wmask16(struct pci_dev *d, unsigned reg, uint16_t m)
{
	d->wmask[reg] = (uint8_t)m;
	d->wmask[reg + 1] = (uint8_t)(m >> 8);
}

static void set_wmask32(struct pci_dev *d, unsigned reg, uint32_t m)
{
	set_wmask16(d, reg, (uint16_t)m);
	set_wmask16(d, reg + 2, (uint16_t)(m >> 16));
}

void pci_set_subsystem(struct pci_dev *d, uint16_t vendor, uint16_t id)
{
	pci_set_u16(d, PCI_SUBSYSTEM_VENDOR_ID, vendor);
	pci_set_u16(d, PCI_SUBSYSTEM_ID, id);
}

/* ---- devices ---- */

struct pci_dev *pci_bus_get(struct pci_bus *bus, unsigned slot, unsigned func)
{
	if (slot >= PCI_SLOTS || func >= PCI_FUNCS)
		return NULL;
	return bus->dev[slot][func];
}

int pci_dev_create(struct pci_bus *bus, unsigned slot, unsigned func, const char *name,
		   uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
		   const struct pci_dev_ops *ops, void *opaque, struct pci_dev **out)
{
	if (slot >= PCI_SLOTS || func >= PCI_FUNCS || bus->finished)
		return -EINVAL;
	if (bus->dev[slot][func])
		return -EEXIST;
	struct pci_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->bus = bus;
	d->p = bus->p;
	d->slot = (uint8_t)slot;
	d->func = (uint8_t)func;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->ops = ops;
	d->opaque = opaque;
	d->cap_end = 0x40;
	d->msix_bar = -1;
	d->msi_gsi = d->msi_efd = -1;
	pthread_mutex_init(&d->irq_lock, NULL);
	pci_set_u16(d, PCI_VENDOR_ID, vendor);
	pci_set_u16(d, PCI_DEVICE_ID, device);
	pci_set_u8(d, PCI_REVISION_ID, revision);
	pci_set_u8(d, PCI_CLASS_PROG, (uint8_t)class_code);
	pci_set_u8(d, PCI_CLASS_DEVICE, (uint8_t)(class_code >> 8));
	pci_set_u8(d, PCI_CLASS_DEVICE + 1, (uint8_t)(class_code >> 16));
	set_wmask16(d, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
					    0x0040 /* parity */ | 0x0100 /* SERR */ |
					    PCI_COMMAND_INTX_DISABLE);
	d->w1cmask[PCI_STATUS + 1] = 0xF9; /* error bits */
	d->wmask[0x0c] = 0xFF;             /* cache line size */
	d->wmask[0x0d] = 0xFF;             /* latency timer */
	d->wmask[PCI_INTERRUPT_LINE] = 0xFF;
	pci_set_u8(d, PCI_INTERRUPT_LINE, 0xFF);
	bus->dev[slot][func] = d;
	*out = d;
	return 0;
}

int pci_bar_init(struct pci_dev *d, int n, enum pci_bar_type type, uint64_t size, bool prefetch,
		 const struct io_ops *ops, void *opaque)
{
	if (n < 0 || n > 5 || (type == PCI_BAR_MEM64 && n == 5) || !size || (size & (size - 1)) ||
	    (type == PCI_BAR_IO && (size < 4 || size > 256)) ||
	    (type != PCI_BAR_IO && size < 16) || (type == PCI_BAR_MEM32 && size > (1ULL << 30)) ||
	    d->bar[n].type != PCI_BAR_NONE || (n > 0 && d->bar[n - 1].type == PCI_BAR_MEM64))
		return -EINVAL;
	struct pci_bar *b = &d->bar[n];
	*b = (struct pci_bar){ .type = type, .prefetch = prefetch, .size = size, .ops = ops,
			       .opaque = opaque };
	unsigned reg = PCI_BAR0 + 4 * (unsigned)n;
	uint32_t low;
	if (type == PCI_BAR_IO) {
		low = 0x1;
		set_wmask32(d, reg, (uint32_t)~(size - 1) & ~0x3u);
	} else {
		low = (type == PCI_BAR_MEM64 ? 0x4 : 0x0) | (prefetch ? 0x8 : 0x0);
		set_wmask32(d, reg, (uint32_t)~(size - 1) & ~0xFu);
		if (type == PCI_BAR_MEM64) {
			set_wmask32(d, reg + 4, (uint32_t)(~(size - 1) >> 32));
			d->bar[n + 1].type = PCI_BAR_NONE;
		}
	}
	pci_set_u32(d, reg, low);
	return 0;
}

unsigned pci_cap_add(struct pci_dev *d, uint8_t id, unsigned len)
{
	unsigned off = (d->cap_end + 3u) & ~3u;
	if (len < 2 || off + len > PCI_CFG_SIZE)
		return 0;
	d->cfg[off] = id;
	d->cfg[off + 1] = 0;
	if (d->last_cap)
		d->cfg[d->last_cap + 1] = (uint8_t)off;
	else
		d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->last_cap = (uint8_t)off;
	d->cap_end = (uint8_t)(off + len > 0xFF ? 0xFF : off + len);
	return off;
}

int pci_msi_init(struct pci_dev *d)
{
	unsigned off = pci_cap_add(d, PCI_CAP_ID_MSI, 24);
	if (!off)
		return -ENOSPC;
	d->msi_cap = (uint8_t)off;
	pci_set_u16(d, off + 2, PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT);
	set_wmask16(d, off + 2, PCI_MSI_FLAGS_ENABLE | 0x0070 /* multiple message enable */);
	set_wmask32(d, off + 4, 0xFFFFFFFC);
	set_wmask32(d, off + 8, 0xFFFFFFFF);
	set_wmask16(d, off + 12, 0xFFFF);
	set_wmask32(d, off + 16, 0x1); /* mask bit of the one vector */
	return 0;
}

static const struct io_ops msix_bar_ops;

int pci_msix_init(struct pci_dev *d, unsigned nvec, int bar, uint32_t table_off,
		  uint32_t pba_off)
{
	if (nvec == 0 || nvec > 2048 || bar < 0 || bar > 5 || d->bar[bar].type == PCI_BAR_NONE ||
	    d->bar[bar].type == PCI_BAR_IO || (table_off & 7) || (pba_off & 7) ||
	    table_off + nvec * PCI_MSIX_ENTRY_SIZE > d->bar[bar].size ||
	    pba_off + ((nvec + 63) / 64) * 8 > d->bar[bar].size)
		return -EINVAL;
	unsigned off = pci_cap_add(d, PCI_CAP_ID_MSIX, 12);
	if (!off)
		return -ENOSPC;
	d->msix = calloc(nvec, sizeof(*d->msix));
	if (!d->msix)
		return -ENOMEM;
	for (unsigned i = 0; i < nvec; i++)
		d->msix[i] = (struct pci_msix_vector){ .ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT,
						       .gsi = -1, .efd = -1 };
	d->msix_cap = (uint8_t)off;
	d->msix_nvec = nvec;
	d->msix_bar = bar;
	d->msix_table_off = table_off;
	d->msix_pba_off = pba_off;
	pci_set_u16(d, off + 2, (uint16_t)(nvec - 1));
	set_wmask16(d, off + 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	pci_set_u32(d, off + 4, table_off | (uint32_t)bar);
	pci_set_u32(d, off + 8, pba_off | (uint32_t)bar);
	d->bar[bar].ops = &msix_bar_ops;
	d->bar[bar].opaque = d;
	return 0;
}

void pci_intx_init(struct pci_dev *d, uint8_t pin)
{
	d->intx_pin = pin;
	pci_set_u8(d, PCI_INTERRUPT_PIN, pin);
}

/* ---- BAR mapping ---- */

static uint64_t bar_programmed(const struct pci_dev *d, int n)
{
	unsigned reg = PCI_BAR0 + 4 * (unsigned)n;
	const struct pci_bar *b = &d->bar[n];
	uint64_t v = pci_get_u32(d, reg);
	if (b->type == PCI_BAR_IO)
		return v & ~0x3ULL;
	v &= ~0xFULL;
	if (b->type == PCI_BAR_MEM64)
		v |= (uint64_t)pci_get_u32(d, reg + 4) << 32;
	return v;
}

static bool bar_address_usable(const struct pci_bar *b, uint64_t addr)
{
	if (addr == 0 || addr + b->size < addr)
		return false;
	if (b->type == PCI_BAR_IO)
		return addr + b->size <= 0x10000;
	/* Sizing leaves all-ones in the address bits: never map that. */
	uint64_t top = b->type == PCI_BAR_MEM32 ? 1ULL << 32 : 1ULL << 52;
	return addr + b->size <= top && addr != (~(b->size - 1) & (top - 1));
}

static void bar_update(struct pci_dev *d, int n)
{
	struct pci_bar *b = &d->bar[n];
	if (b->type == PCI_BAR_NONE || !b->size)
		return;
	uint16_t cmd = pci_get_u16(d, PCI_COMMAND);
	bool io = b->type == PCI_BAR_IO;
	bool decode = cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY);
	uint64_t addr = bar_programmed(d, n);
	b->addr = addr;
	bool want = decode && bar_address_usable(b, addr);
	struct io_bus *iob = io ? d->p->pio : d->p->mmio;
	if (b->mapped && (!want || b->mapped_addr != addr)) {
		io_bus_unregister(iob, b->mapped_addr);
		b->mapped = false;
		if (d->ops && d->ops->bar_map)
			d->ops->bar_map(d, n, b->mapped_addr, false);
	}
	if (want && !b->mapped) {
		int r = io_bus_register(iob, addr, b->size, b->ops, b->opaque, d->name);
		if (r) {
			log_guest("pci %02x.%x %s: BAR%d at 0x%llx (%llu bytes) not mapped: %s",
				  d->slot, d->func, d->name, n, (unsigned long long)addr,
				  (unsigned long long)b->size,
				  r == -EEXIST ? "overlaps another device" : strerror(-r));
			return;
		}
		b->mapped = true;
		b->mapped_addr = addr;
		if (d->ops && d->ops->bar_map)
			d->ops->bar_map(d, n, addr, true);
	}
}

static void bars_update(struct pci_dev *d)
{
	for (int n = 0; n < 6; n++)
		bar_update(d, n);
}

static void bars_unmap(struct pci_dev *d)
{
	for (int n = 0; n < 6; n++) {
		struct pci_bar *b = &d->bar[n];
		if (!b->mapped)
			continue;
		io_bus_unregister(b->type == PCI_BAR_IO ? d->p->pio : d->p->mmio, b->mapped_addr);
		b->mapped = false;
		if (d->ops && d->ops->bar_map)
			d->ops->bar_map(d, n, b->mapped_addr, false);
	}
}

/* ---- interrupts ---- */

static void intx_apply_locked(struct pci_dev *d)
{
	struct pci_bus *bus = d->bus;
	bool on = d->intx_level && d->intx_pin && !d->intx_disabled;
	if (on == d->intx_on || d->intx_gsi < PCI_INTX_GSI_BASE)
		return;
	d->intx_on = on;
	unsigned i = d->intx_gsi - PCI_INTX_GSI_BASE;
	pthread_mutex_lock(&bus->intx_lock);
	unsigned before = bus->intx_count[i];
	bus->intx_count[i] += on ? 1 : -1u;
	unsigned after = bus->intx_count[i];
	if ((before == 0) != (after == 0))
		platform_set_irq(d->p, d->intx_gsi, after != 0);
	pthread_mutex_unlock(&bus->intx_lock);
}

void pci_intx_set(struct pci_dev *d, bool level)
{
	pthread_mutex_lock(&d->irq_lock);
	d->intx_level = level;
	intx_apply_locked(d);
	pthread_mutex_unlock(&d->irq_lock);
}

bool pci_msix_enabled(struct pci_dev *d) { return atomic_load(&d->msix_enabled); }
bool pci_msi_enabled(struct pci_dev *d) { return atomic_load(&d->msi_enabled); }

/* The irqfd on a KVM route for addr/data: made on first use, the route
 * rewritten when the message changed. false when the VMM has no routes. */
static bool msi_route_ready(struct pci_dev *d, int *gsi, int *efd, bool *stale, uint64_t addr,
			    uint32_t data)
{
	struct platform *p = d->p;
	if (*gsi < 0 && p->msi_route_add && p->irqfd) {
		int g = p->msi_route_add(p, addr, data);
		if (g >= 0) {
			int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			if (fd >= 0 && p->irqfd(p, fd, (unsigned)g, true) == 0) {
				*gsi = g;
				*efd = fd;
				*stale = false;
			} else {
				if (fd >= 0)
					close(fd);
				p->msi_route_remove(p, (unsigned)g);
			}
		}
	}
	if (*gsi < 0)
		return false;
	if (*stale) {
		p->msi_route_update(p, (unsigned)*gsi, addr, data);
		*stale = false;
	}
	return true;
}

/* Deliver addr/data through its irqfd, or through signal_msi when the VMM
 * has no routes. */
static void msi_fire(struct pci_dev *d, int *gsi, int *efd, bool *stale, uint64_t addr,
		     uint32_t data)
{
	if (msi_route_ready(d, gsi, efd, stale, addr, data)) {
		uint64_t one = 1;
		if (write(*efd, &one, sizeof(one)) == sizeof(one))
			return;
	}
	if (d->p->signal_msi)
		d->p->signal_msi(d->p, addr, data);
}

static bool msix_masked(const struct pci_dev *d, const struct pci_msix_vector *v)
{
	return d->msix_maskall || (v->ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

void pci_msix_notify(struct pci_dev *d, unsigned vector)
{
	if (vector >= d->msix_nvec || !atomic_load(&d->msix_enabled))
		return;
	pthread_mutex_lock(&d->irq_lock);
	struct pci_msix_vector *v = &d->msix[vector];
	if (!atomic_load(&d->msix_enabled)) {
		/* disabled meanwhile */
	} else if (msix_masked(d, v)) {
		v->pending = true;
	} else {
		msi_fire(d, &v->gsi, &v->efd, &v->stale, v->addr, v->data);
	}
	pthread_mutex_unlock(&d->irq_lock);
}

int pci_msix_irqfd(struct pci_dev *d, unsigned vector)
{
	if (vector >= d->msix_nvec)
		return -1;
	int fd = -1;
	pthread_mutex_lock(&d->irq_lock);
	struct pci_msix_vector *v = &d->msix[vector];
	if (atomic_load(&d->msix_enabled) && !msix_masked(d, v) &&
	    msi_route_ready(d, &v->gsi, &v->efd, &v->stale, v->addr, v->data))
		fd = v->efd;
	pthread_mutex_unlock(&d->irq_lock);
	return fd;
}

void pci_msix_set_watch(struct pci_dev *d, void (*changed)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&d->irq_lock);
	d->msix_watch = changed;
	d->msix_watch_opaque = opaque;
	pthread_mutex_unlock(&d->irq_lock);
}

/* Tell the watcher; irq_lock not held (it asks pci_msix_irqfd). */
static void msix_changed(struct pci_dev *d)
{
	pthread_mutex_lock(&d->irq_lock);
	void (*fn)(void *) = d->msix_watch;
	void *opaque = d->msix_watch_opaque;
	pthread_mutex_unlock(&d->irq_lock);
	if (fn)
		fn(opaque);
}

/* The vectors unmasked by a change get their pending message. */
static void msix_unmasked_locked(struct pci_dev *d)
{
	if (!atomic_load(&d->msix_enabled))
		return;
	for (unsigned i = 0; i < d->msix_nvec; i++) {
		struct pci_msix_vector *v = &d->msix[i];
		if (v->pending && !msix_masked(d, v)) {
			v->pending = false;
			msi_fire(d, &v->gsi, &v->efd, &v->stale, v->addr, v->data);
		}
	}
}

void pci_msi_notify(struct pci_dev *d)
{
	if (!d->msi_cap || !atomic_load(&d->msi_enabled))
		return;
	pthread_mutex_lock(&d->irq_lock);
	if (atomic_load(&d->msi_enabled)) {
		if (d->msi_masked)
			d->msi_pending = true;
		else
			msi_fire(d, &d->msi_gsi, &d->msi_efd, &d->msi_stale, d->msi_addr, d->msi_data);
	}
	pthread_mutex_unlock(&d->irq_lock);
}

/* ---- the MSI-X BAR ---- */

static uint64_t msix_bar_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_dev *d = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&d->irq_lock);
	for (unsigned i = 0; i < size; i++) {
		uint64_t o = off + i;
		uint8_t byte = 0;
		if (o >= d->msix_table_off && o < d->msix_table_off + d->msix_nvec * 16ULL) {
			const struct pci_msix_vector *e = &d->msix[(o - d->msix_table_off) / 16];
			unsigned f = (unsigned)((o - d->msix_table_off) % 16);
			uint32_t word = f < 4 ? (uint32_t)e->addr
				      : f < 8 ? (uint32_t)(e->addr >> 32)
				      : f < 12 ? e->data : e->ctrl;
			byte = (uint8_t)(word >> (8 * (f % 4)));
		} else if (o >= d->msix_pba_off && o < d->msix_pba_off + ((d->msix_nvec + 63) / 64) * 8ULL) {
			unsigned bit0 = (unsigned)(o - d->msix_pba_off) * 8;
			for (unsigned b = 0; b < 8 && bit0 + b < d->msix_nvec; b++)
				if (d->msix[bit0 + b].pending)
					byte |= (uint8_t)(1u << b);
		}
		v |= (uint64_t)byte << (8 * i);
	}
	pthread_mutex_unlock(&d->irq_lock);
	return v;
}

static void msix_bar_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_dev *d = opaque;
	pthread_mutex_lock(&d->irq_lock);
	bool unmasked = false, changed = false;
	for (unsigned i = 0; i < size; i++) {
		uint64_t o = off + i;
		if (o < d->msix_table_off || o >= d->msix_table_off + d->msix_nvec * 16ULL)
			continue; /* the PBA and the rest are read-only */
		struct pci_msix_vector *e = &d->msix[(o - d->msix_table_off) / 16];
		unsigned f = (unsigned)((o - d->msix_table_off) % 16);
		uint64_t byte = (value >> (8 * i)) & 0xFF;
		unsigned shift = 8 * (f % 4);
		if (f < 8) {
			unsigned s = 8 * f;
			uint64_t na = (e->addr & ~(0xFFULL << s)) | byte << s;
			if (na != e->addr) {
				e->addr = na;
				e->stale = changed = true;
			}
		} else if (f < 12) {
			uint32_t nd = (e->data & ~(0xFFu << shift)) | (uint32_t)byte << shift;
			if (nd != e->data) {
				e->data = nd;
				e->stale = changed = true;
			}
		} else if (f == 12) {
			bool was = e->ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT;
			e->ctrl = (uint32_t)(byte & PCI_MSIX_ENTRY_CTRL_MASKBIT);
			if (was != (bool)(e->ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT))
				changed = true;
			if (was && !(e->ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT))
				unmasked = true;
		}
	}
	if (unmasked)
		msix_unmasked_locked(d);
	pthread_mutex_unlock(&d->irq_lock);
	if (changed)
		msix_changed(d);
}

static const struct io_ops msix_bar_ops = { msix_bar_read, msix_bar_write };

/* ---- config space ---- */

static bool core_owns(const struct pci_dev *d, unsigned reg)
{
	if (reg < 0x40)
		return true;
	if (d->msi_cap && reg >= d->msi_cap && reg < d->msi_cap + 24u)
		return true;
	if (d->msix_cap && reg >= d->msix_cap && reg < d->msix_cap + 12u)
		return true;
	return false;
}

static uint32_t dev_cfg_read(struct pci_dev *d, unsigned reg, unsigned size)
{
	if (reg + size > PCI_CFG_SIZE)
		return 0; /* extended space: conventional PCI has none */
	if (!core_owns(d, reg) && d->ops && d->ops->cfg_read)
		return d->ops->cfg_read(d, reg, size);
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++) {
		uint8_t b = d->cfg[reg + i];
		if (reg + i == PCI_STATUS) {
			b &= (uint8_t)~PCI_STATUS_INTERRUPT;
			if (d->intx_level)
				b |= PCI_STATUS_INTERRUPT;
		}
		v |= (uint32_t)b << (8 * i);
	}
	return v;
}

static void msi_cap_written(struct pci_dev *d)
{
	unsigned c = d->msi_cap;
	uint16_t ctl = pci_get_u16(d, c + 2);
	uint64_t addr = pci_get_u32(d, c + 4) | (uint64_t)pci_get_u32(d, c + 8) << 32;
	uint32_t data = pci_get_u16(d, c + 12);
	pthread_mutex_lock(&d->irq_lock);
	if (addr != d->msi_addr || data != d->msi_data)
		d->msi_stale = true;
	d->msi_addr = addr;
	d->msi_data = data;
	d->msi_masked = pci_get_u32(d, c + 16) & 1;
	atomic_store(&d->msi_enabled, (ctl & PCI_MSI_FLAGS_ENABLE) != 0);
	if (atomic_load(&d->msi_enabled) && d->msi_pending && !d->msi_masked) {
		d->msi_pending = false;
		msi_fire(d, &d->msi_gsi, &d->msi_efd, &d->msi_stale, d->msi_addr, d->msi_data);
	}
	/* Message pending bit (read-only to the guest). */
	pci_set_u32(d, d->msi_cap + 20, d->msi_pending ? 1 : 0);
	pthread_mutex_unlock(&d->irq_lock);
}

static void msix_cap_written(struct pci_dev *d)
{
	uint16_t ctl = pci_get_u16(d, d->msix_cap + 2);
	pthread_mutex_lock(&d->irq_lock);
	bool was_masked = d->msix_maskall, was_enabled = atomic_load(&d->msix_enabled);
	d->msix_maskall = ctl & PCI_MSIX_FLAGS_MASKALL;
	atomic_store(&d->msix_enabled, (ctl & PCI_MSIX_FLAGS_ENABLE) != 0);
	msix_unmasked_locked(d);
	bool changed = was_masked != d->msix_maskall || was_enabled != atomic_load(&d->msix_enabled);
	pthread_mutex_unlock(&d->irq_lock);
	if (changed)
		msix_changed(d);
}

static void dev_cfg_write(struct pci_dev *d, unsigned reg, unsigned size, uint32_t value)
{
	if (reg + size > PCI_CFG_SIZE)
		return;
	if (!core_owns(d, reg) && d->ops && d->ops->cfg_write) {
		d->ops->cfg_write(d, reg, size, value);
		return;
	}
	uint16_t old_cmd = pci_get_u16(d, PCI_COMMAND);
	bool bars = false, msi = false, msix = false;
	for (unsigned i = 0; i < size; i++) {
		unsigned r = reg + i;
		uint8_t v = (uint8_t)(value >> (8 * i));
		uint8_t nb = (uint8_t)((d->cfg[r] & ~d->wmask[r]) | (v & d->wmask[r]));
		nb &= (uint8_t)~(v & d->w1cmask[r]);
		d->cfg[r] = nb;
		if (r >= PCI_BAR0 && r < PCI_BAR0 + 24)
			bars = true;
		if (d->msi_cap && r >= d->msi_cap && r < d->msi_cap + 24u)
			msi = true;
		if (d->msix_cap && r >= d->msix_cap + 2u && r < d->msix_cap + 4u)
			msix = true;
	}
	uint16_t cmd = pci_get_u16(d, PCI_COMMAND);
	if (bars || ((cmd ^ old_cmd) & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY)))
		bars_update(d);
	if ((cmd ^ old_cmd) & PCI_COMMAND_INTX_DISABLE) {
		pthread_mutex_lock(&d->irq_lock);
		d->intx_disabled = cmd & PCI_COMMAND_INTX_DISABLE;
		intx_apply_locked(d);
		pthread_mutex_unlock(&d->irq_lock);
	}
	if (msi)
		msi_cap_written(d);
	if (msix)
		msix_cap_written(d);
}

uint32_t pci_cfg_read(struct pci_bus *bus, unsigned slot, unsigned func, unsigned reg,
		      unsigned size)
{
	uint32_t ones = size >= 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
	if (size != 1 && size != 2 && size != 4)
		return ones;
	pthread_mutex_lock(&bus->lock);
	struct pci_dev *d = pci_bus_get(bus, slot, func);
	uint32_t v = d ? dev_cfg_read(d, reg, size) : ones;
	pthread_mutex_unlock(&bus->lock);
	return v;
}

void pci_cfg_write(struct pci_bus *bus, unsigned slot, unsigned func, unsigned reg,
		   unsigned size, uint32_t value)
{
	if (size != 1 && size != 2 && size != 4)
		return;
	pthread_mutex_lock(&bus->lock);
	struct pci_dev *d = pci_bus_get(bus, slot, func);
	if (d)
		dev_cfg_write(d, reg, size, value);
	pthread_mutex_unlock(&bus->lock);
}

/* Mechanism #1: 0xCF8 latches bus/device/function/register, 0xCFC-0xCFF
 * move the data. Only whole-dword accesses reach the address latch. */
static uint64_t cf8_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_bus *bus = opaque;
	if (off != 0 || size != 4)
		return ~0ULL;
	return atomic_load(&bus->config_address);
}

static void cf8_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_bus *bus = opaque;
	if (off == 0 && size == 4)
		atomic_store(&bus->config_address, (uint32_t)value & 0x80FFFFFCu);
}

static bool cfc_target(struct pci_bus *bus, uint64_t off, unsigned size, unsigned *slot,
		       unsigned *func, unsigned *reg)
{
	uint32_t a = atomic_load(&bus->config_address);
	if (!(a & 0x80000000u) || ((a >> 16) & 0xFF) != 0 || off + size > 4)
		return false;
	*slot = (a >> 11) & 31;
	*func = (a >> 8) & 7;
	*reg = (a & 0xFC) + (unsigned)off;
	return true;
}

static uint64_t cfc_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_bus *bus = opaque;
	unsigned slot, func, reg;
	if (!cfc_target(bus, off, size, &slot, &func, &reg))
		return ~0ULL;
	return pci_cfg_read(bus, slot, func, reg, size);
}

static void cfc_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_bus *bus = opaque;
	unsigned slot, func, reg;
	if (cfc_target(bus, off, size, &slot, &func, &reg))
		pci_cfg_write(bus, slot, func, reg, size, (uint32_t)value);
}

static const struct io_ops cf8_ops = { cf8_read, cf8_write };
static const struct io_ops cfc_ops = { cfc_read, cfc_write };

/* ECAM: bus 0 only; offset = device << 15 | function << 12 | register. */
static uint64_t ecam_read(void *opaque, uint64_t off, unsigned size)
{
	struct pci_bus *bus = opaque;
	if (size == 8)
		return ecam_read(opaque, off, 4) | ecam_read(opaque, off + 4, 4) << 32;
	unsigned reg = (unsigned)(off & 0xFFF);
	if (reg & (size - 1))
		return ~0ULL;
	return pci_cfg_read(bus, (unsigned)(off >> 15) & 31, (unsigned)(off >> 12) & 7, reg, size);
}

static void ecam_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct pci_bus *bus = opaque;
	if (size == 8) {
		ecam_write(opaque, off, 4, value & 0xFFFFFFFF);
		ecam_write(opaque, off + 4, 4, value >> 32);
		return;
	}
	unsigned reg = (unsigned)(off & 0xFFF);
	if (reg & (size - 1))
		return;
	pci_cfg_write(bus, (unsigned)(off >> 15) & 31, (unsigned)(off >> 12) & 7, reg, size,
		      (uint32_t)value);
}

static const struct io_ops ecam_ops = { ecam_read, ecam_write };

/* ---- the bus ---- */

int pci_bus_create(struct platform *p, struct pci_bus **out)
{
	struct pci_bus *bus = calloc(1, sizeof(*bus));
	if (!bus)
		return -ENOMEM;
	bus->p = p;
	pthread_mutex_init(&bus->lock, NULL);
	pthread_mutex_init(&bus->intx_lock, NULL);
	uint64_t top = GUEST_HIGHMEM_BASE + p->mem->high_size;
	bus->mmio64_base = (top + PCI_MMIO64_ALIGN - 1) & ~(PCI_MMIO64_ALIGN - 1);
	bus->mmio64_size = bus->mmio64_base + PCI_MMIO64_WINDOW <= PCI_MMIO64_LIMIT
				   ? PCI_MMIO64_WINDOW : 0;
	/* 0xCF9 (the reset port) is another device's, so only 0xCF8 itself is
	 * claimed: dword accesses at 0xCF8 still reach cf8_ops, since the bus
	 * dispatches by start address. */
	int r = io_bus_register(p->pio, PCI_CONFIG_ADDRESS_PORT, 1, &cf8_ops, bus, "pci-config");
	if (r)
		goto fail;
	bus->cfg_ports = true;
	r = io_bus_register(p->pio, PCI_CONFIG_DATA_PORT, 4, &cfc_ops, bus, "pci-config");
	if (r) {
		io_bus_unregister(p->pio, PCI_CONFIG_ADDRESS_PORT);
		bus->cfg_ports = false;
		goto fail;
	}
	r = io_bus_register(p->mmio, PCI_ECAM_BASE, PCI_ECAM_SIZE, &ecam_ops, bus, "pci-ecam");
	if (r)
		goto fail;
	bus->ecam = true;
	*out = bus;
	return 0;
fail:
	pci_bus_destroy(bus);
	return r;
}

static void dev_free(struct pci_dev *d)
{
	bars_unmap(d);
	if (d->ops && d->ops->destroy)
		d->ops->destroy(d);
	struct platform *p = d->p;
	for (unsigned i = 0; i < d->msix_nvec; i++) {
		struct pci_msix_vector *v = &d->msix[i];
		if (v->gsi >= 0) {
			p->irqfd(p, v->efd, (unsigned)v->gsi, false);
			p->msi_route_remove(p, (unsigned)v->gsi);
		}
		if (v->efd >= 0)
			close(v->efd);
	}
	if (d->msi_gsi >= 0) {
		p->irqfd(p, d->msi_efd, (unsigned)d->msi_gsi, false);
		p->msi_route_remove(p, (unsigned)d->msi_gsi);
	}
	if (d->msi_efd >= 0)
		close(d->msi_efd);
	if (d->intx_on)
		pci_intx_set(d, false);
	free(d->msix);
	pthread_mutex_destroy(&d->irq_lock);
	free(d);
}

void pci_bus_destroy(struct pci_bus *bus)
{
	if (!bus)
		return;
	if (bus->cfg_ports) {
		io_bus_unregister(bus->p->pio, PCI_CONFIG_ADDRESS_PORT);
		io_bus_unregister(bus->p->pio, PCI_CONFIG_DATA_PORT);
	}
	if (bus->ecam)
		io_bus_unregister(bus->p->mmio, PCI_ECAM_BASE);
	for (unsigned s = 0; s < PCI_SLOTS; s++)
		for (unsigned f = 0; f < PCI_FUNCS; f++)
			if (bus->dev[s][f])
				dev_free(bus->dev[s][f]);
	pthread_mutex_destroy(&bus->lock);
	pthread_mutex_destroy(&bus->intx_lock);
	free(bus);
}

void pci_bus_mmio64_window(const struct pci_bus *bus, uint64_t *base, uint64_t *size)
{
	*base = bus->mmio64_base;
	*size = bus->mmio64_size;
}

struct bar_ref {
	struct pci_dev *d;
	int n;
};

static int bar_ref_cmp(const void *a, const void *b)
{
	const struct bar_ref *x = a, *y = b;
	uint64_t sx = x->d->bar[x->n].size, sy = y->d->bar[y->n].size;
	if (sx != sy)
		return sx > sy ? -1 : 1;
	/* stable: slot, function, BAR */
	int kx = x->d->slot * 64 + x->d->func * 8 + x->n, ky = y->d->slot * 64 + y->d->func * 8 + y->n;
	return kx - ky;
}

static void bar_set(struct pci_dev *d, int n, uint64_t addr)
{
	unsigned reg = PCI_BAR0 + 4 * (unsigned)n;
	uint32_t low = pci_get_u32(d, reg) & (d->bar[n].type == PCI_BAR_IO ? 0x3u : 0xFu);
	pci_set_u32(d, reg, (uint32_t)addr | low);
	if (d->bar[n].type == PCI_BAR_MEM64)
		pci_set_u32(d, reg + 4, (uint32_t)(addr >> 32));
}

int pci_bus_finish(struct pci_bus *bus, struct pci_intx_route *routes, unsigned max, char *err,
		   size_t errlen)
{
	struct bar_ref refs[PCI_SLOTS * PCI_FUNCS * 6];
	unsigned nrefs = 0;
	for (unsigned s = 0; s < PCI_SLOTS; s++) {
		bool others = false;
		for (unsigned f = 1; f < PCI_FUNCS; f++)
			others |= bus->dev[s][f] != NULL;
		if (others && !bus->dev[s][0]) {
			snprintf(err, errlen, "slot %u has functions but no function 0", s);
			return -EINVAL;
		}
		if (others)
			bus->dev[s][0]->cfg[PCI_HEADER_TYPE] |= PCI_HEADER_TYPE_MULTI;
		for (unsigned f = 0; f < PCI_FUNCS; f++) {
			struct pci_dev *d = bus->dev[s][f];
			for (int n = 0; d && n < 6; n++)
				if (d->bar[n].type != PCI_BAR_NONE && d->bar[n].size)
					refs[nrefs++] = (struct bar_ref){ d, n };
		}
	}
	qsort(refs, nrefs, sizeof(refs[0]), bar_ref_cmp);
	uint64_t io = PCI_IO_BASE, m32 = PCI_MMIO32_BASE, m64 = bus->mmio64_base;
	for (unsigned i = 0; i < nrefs; i++) {
		struct pci_dev *d = refs[i].d;
		struct pci_bar *b = &d->bar[refs[i].n];
		uint64_t *next, limit;
		if (b->type == PCI_BAR_IO) {
			next = &io;
			limit = PCI_IO_LIMIT + 1ULL;
		} else if (b->type == PCI_BAR_MEM32 || b->size <= PCI_MMIO64_SMALL) {
			next = &m32;
			limit = PCI_MMIO32_LIMIT + 1ULL;
		} else {
			next = &m64;
			limit = bus->mmio64_base + bus->mmio64_size;
		}
		uint64_t addr = (*next + b->size - 1) & ~(b->size - 1);
		if (addr + b->size > limit) {
			snprintf(err, errlen, "%s at slot %u:%u: no room for BAR%d (%llu bytes) in the PCI %s window",
				 d->name, d->slot, d->func, refs[i].n, (unsigned long long)b->size,
				 b->type == PCI_BAR_IO ? "I/O" : "memory");
			return -ENOSPC;
		}
		*next = addr + b->size;
		bar_set(d, refs[i].n, addr);
	}
	unsigned nroutes = 0;
	pthread_mutex_lock(&bus->lock);
	for (unsigned s = 0; s < PCI_SLOTS; s++) {
		for (unsigned f = 0; f < PCI_FUNCS; f++) {
			struct pci_dev *d = bus->dev[s][f];
			if (!d)
				continue;
			uint16_t cmd = pci_get_u16(d, PCI_COMMAND);
			for (int n = 0; n < 6; n++) {
				if (d->bar[n].type == PCI_BAR_IO)
					cmd |= PCI_COMMAND_IO;
				else if (d->bar[n].type != PCI_BAR_NONE)
					cmd |= PCI_COMMAND_MEMORY;
			}
			pci_set_u16(d, PCI_COMMAND, cmd);
			bars_update(d);
			if (!d->intx_pin)
				continue;
			/* The swizzle bridges use: spreads slots over the 8 pins. */
			d->intx_gsi = PCI_INTX_GSI_BASE + (s + d->intx_pin - 1u) % PCI_INTX_GSI_COUNT;
			pci_set_u8(d, PCI_INTERRUPT_LINE, (uint8_t)d->intx_gsi);
			bool dup = false;
			for (unsigned k = 0; k < nroutes; k++)
				dup |= routes[k].dev == s && routes[k].pin == d->intx_pin - 1u;
			if (!dup && nroutes < max)
				routes[nroutes++] = (struct pci_intx_route){
					.bus = 0, .dev = (uint8_t)s, .pin = (uint8_t)(d->intx_pin - 1),
					.gsi = d->intx_gsi };
		}
	}
	bus->finished = true;
	pthread_mutex_unlock(&bus->lock);
	return (int)nroutes;
}
