#include "vmm/irq_routing.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/log.h"
#include "vmm/kvm.h"
#include "vmm/vm_internal.h"

/* GSIs 0-23 are the IOAPIC's pins (0-15 also the PICs'); MSI routes are
 * numbered from here. */
#define FIRST_MSI_GSI 24
#define IOAPIC_PINS 24
#define PIC_PINS 16

struct msi_route {
	bool used;
	uint64_t addr;
	uint32_t data;
};

struct irq_routing {
	pthread_mutex_t lock;
	unsigned max_gsi; /* KVM_CAP_IRQ_ROUTING: entries KVM accepts */
	bool ioeventfd_any_length_mmio;
	struct msi_route *msi; /* index gsi - FIRST_MSI_GSI */
	unsigned nmsi, msi_cap;
	struct kvm_irq_routing *table; /* scratch for KVM_SET_GSI_ROUTING */
	size_t table_cap;
};

static struct irq_routing *routing_of(struct platform *p)
{
	return ((struct vm *)p->vmm)->irq_routing;
}

static int vm_fd_of(struct platform *p)
{
	return ((struct vm *)p->vmm)->vm_fd;
}

/* The table KVM_CREATE_IRQCHIP installs, plus the MSI routes. Called with
 * the lock held. */
static int commit_locked(struct platform *p, struct irq_routing *ir)
{
	size_t n = PIC_PINS + IOAPIC_PINS;
	for (unsigned i = 0; i < ir->nmsi; i++)
		n += ir->msi[i].used;
	if (n > ir->table_cap) {
		size_t cap = n + 16;
		struct kvm_irq_routing *t =
			realloc(ir->table, sizeof(*t) + cap * sizeof(struct kvm_irq_routing_entry));
		if (!t)
			return -ENOMEM;
		ir->table = t;
		ir->table_cap = cap;
	}
	struct kvm_irq_routing *t = ir->table;
	memset(t, 0, sizeof(*t) + n * sizeof(struct kvm_irq_routing_entry));
	unsigned k = 0;
	for (unsigned gsi = 0; gsi < IOAPIC_PINS; gsi++) {
		struct kvm_irq_routing_entry *e = &t->entries[k++];
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e->u.irqchip.pin = gsi;
		if (gsi < PIC_PINS) {
			e = &t->entries[k++];
			e->gsi = gsi;
			e->type = KVM_IRQ_ROUTING_IRQCHIP;
			e->u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
			e->u.irqchip.pin = gsi % 8;
		}
	}
	for (unsigned i = 0; i < ir->nmsi; i++) {
		if (!ir->msi[i].used)
			continue;
		struct kvm_irq_routing_entry *e = &t->entries[k++];
		e->gsi = FIRST_MSI_GSI + i;
		e->type = KVM_IRQ_ROUTING_MSI;
		e->u.msi.address_lo = (uint32_t)ir->msi[i].addr;
		e->u.msi.address_hi = (uint32_t)(ir->msi[i].addr >> 32);
		e->u.msi.data = ir->msi[i].data;
	}
	t->nr = k;
	if (ioctl(vm_fd_of(p), KVM_SET_GSI_ROUTING, t) < 0) {
		int e = errno;
		log_warn("KVM_SET_GSI_ROUTING: %s", strerror(e));
		return -e;
	}
	return 0;
}

static int msi_route_add(struct platform *p, uint64_t addr, uint32_t data)
{
	struct irq_routing *ir = routing_of(p);
	pthread_mutex_lock(&ir->lock);
	unsigned i = 0;
	while (i < ir->nmsi && ir->msi[i].used)
		i++;
	if (i == ir->nmsi) {
		if (FIRST_MSI_GSI + i >= ir->max_gsi) {
			pthread_mutex_unlock(&ir->lock);
			return -ENOSPC;
		}
		if (ir->nmsi == ir->msi_cap) {
			unsigned cap = ir->msi_cap ? ir->msi_cap * 2 : 16;
			struct msi_route *m = realloc(ir->msi, cap * sizeof(*m));
			if (!m) {
				pthread_mutex_unlock(&ir->lock);
				return -ENOMEM;
			}
			ir->msi = m;
			ir->msi_cap = cap;
		}
		ir->nmsi++;
	}
	ir->msi[i] = (struct msi_route){ true, addr, data };
	int r = commit_locked(p, ir);
	if (r)
		ir->msi[i].used = false;
	pthread_mutex_unlock(&ir->lock);
	return r ? r : (int)(FIRST_MSI_GSI + i);
}

static int msi_route_update(struct platform *p, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct irq_routing *ir = routing_of(p);
	pthread_mutex_lock(&ir->lock);
	unsigned i = gsi - FIRST_MSI_GSI;
	int r = -ENOENT;
	if (gsi >= FIRST_MSI_GSI && i < ir->nmsi && ir->msi[i].used) {
		r = 0;
		if (ir->msi[i].addr != addr || ir->msi[i].data != data) {
			ir->msi[i].addr = addr;
			ir->msi[i].data = data;
			r = commit_locked(p, ir);
		}
	}
	pthread_mutex_unlock(&ir->lock);
	return r;
}

static void msi_route_remove(struct platform *p, unsigned gsi)
{
	struct irq_routing *ir = routing_of(p);
	pthread_mutex_lock(&ir->lock);
	unsigned i = gsi - FIRST_MSI_GSI;
	if (gsi >= FIRST_MSI_GSI && i < ir->nmsi && ir->msi[i].used) {
		ir->msi[i].used = false;
		commit_locked(p, ir);
	}
	pthread_mutex_unlock(&ir->lock);
}

static int irqfd(struct platform *p, int fd, unsigned gsi, bool assign)
{
	struct kvm_irqfd req = { .fd = (uint32_t)fd, .gsi = gsi,
				 .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };
	return ioctl(vm_fd_of(p), KVM_IRQFD, &req) < 0 ? -errno : 0;
}

static int ioeventfd(struct platform *p, int fd, uint64_t addr, unsigned len, bool pio,
		     bool assign)
{
	struct irq_routing *ir = routing_of(p);
	if (len == 0 && (pio || !ir->ioeventfd_any_length_mmio))
		return -EOPNOTSUPP;
	struct kvm_ioeventfd req = {
		.addr = addr, .len = len, .fd = fd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	return ioctl(vm_fd_of(p), KVM_IOEVENTFD, &req) < 0 ? -errno : 0;
}

static void signal_msi(struct platform *p, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
			       .data = data };
	if (ioctl(vm_fd_of(p), KVM_SIGNAL_MSI, &msi) < 0)
		log_guest("KVM_SIGNAL_MSI: %s", strerror(errno));
}

int irq_routing_attach(struct vm *vm)
{
	struct irq_routing *ir = calloc(1, sizeof(*ir));
	if (!ir)
		return -ENOMEM;
	pthread_mutex_init(&ir->lock, NULL);
	int max = kvm_capability(vm->kvm_fd, KVM_CAP_IRQ_ROUTING);
	ir->max_gsi = max > 0 ? (unsigned)max : 0;
	ir->ioeventfd_any_length_mmio = kvm_capability(vm->kvm_fd, KVM_CAP_IOEVENTFD_NO_LENGTH) > 0;
	vm->irq_routing = ir;
	struct platform *p = &vm->platform;
	if (ir->max_gsi > FIRST_MSI_GSI) {
		p->msi_route_add = msi_route_add;
		p->msi_route_update = msi_route_update;
		p->msi_route_remove = msi_route_remove;
	}
	if (kvm_capability(vm->kvm_fd, KVM_CAP_IRQFD) > 0)
		p->irqfd = irqfd;
	if (kvm_capability(vm->kvm_fd, KVM_CAP_IOEVENTFD) > 0)
		p->ioeventfd = ioeventfd;
	if (kvm_capability(vm->kvm_fd, KVM_CAP_SIGNAL_MSI) > 0)
		p->signal_msi = signal_msi;
	return 0;
}

void irq_routing_detach(struct vm *vm)
{
	struct irq_routing *ir = vm->irq_routing;
	if (!ir)
		return;
	pthread_mutex_destroy(&ir->lock);
	free(ir->msi);
	free(ir->table);
	free(ir);
	vm->irq_routing = NULL;
}
