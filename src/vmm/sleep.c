/* Sleep (ACPI S3): stopping every vCPU with the guest's memory kept, and
 * waking as a PC's firmware resumes from S3.
 *
 * Suspending only sets vm->sleeping and kicks the vCPUs: each parks at the
 * top of its loop (vcpu.c), first finishing the exit it returned with (an
 * I/O access completes only when KVM_RUN is entered again, and must not be
 * completed on top of the reset state).
 *
 * Waking: once every vCPU is parked, one of them, holding pause_lock,
 * puts the machine back in the state firmware leaves it in when it jumps
 * to the OS's waking vector (QEMU resets the whole machine the same way in
 * qemu_system_wakeup; SeaBIOS and OVMF then jump to the vector):
 *  - the PICs, the IOAPIC and the PIT at their power-on state: every
 *    IOAPIC pin masked, no timer running. Only the input lines a device
 *    still drives (irr) are kept: devices are not reset here, and a level
 *    that stays asserted across the reset must not be lost. Linux's resume
 *    reprograms all of them (ioapic_resume, i8259A_resume, clockevents).
 *  - every vCPU at its power-on state (registers, segment registers, APIC
 *    base, LAPIC registers; no pending event), the boot vCPU then running
 *    at the waking vector, the others waiting for INIT/SIPI as after
 *    power-on, so the OS brings them up again as it did at boot.
 *  MSRs other than EFER and the APIC base are left alone: the OS turns
 *  off its paravirtual ones (kvmclock, steal time, PV EOI, async PF)
 *  before it sleeps and sets them again on resume. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vm_internal.h"

#define CR0_PE 0x00000001ULL
#define CR0_ET 0x00000010ULL

static int ioctl_err(const char *what, char *err, size_t errlen)
{
	int e = errno;
	snprintf(err, errlen, "%s: %s", what, strerror(e));
	return -e;
}

int vm_sleep_capture(struct vm *vm, char *err, size_t errlen)
{
	for (unsigned i = 0; i < 3; i++) {
		vm->reset_chip[i].chip_id = i; /* PIC master, PIC slave, IOAPIC */
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &vm->reset_chip[i]) < 0)
			return ioctl_err("KVM_GET_IRQCHIP", err, errlen);
	}
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &vm->reset_pit) < 0)
		return ioctl_err("KVM_GET_PIT2", err, errlen);
	return 0;
}

int vcpu_sleep_capture(struct vcpu *vcpu, char *err, size_t errlen)
{
	if (ioctl(vcpu->fd, KVM_GET_REGS, &vcpu->reset_regs) < 0)
		return ioctl_err("KVM_GET_REGS", err, errlen);
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &vcpu->reset_sregs) < 0)
		return ioctl_err("KVM_GET_SREGS", err, errlen);
	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &vcpu->reset_lapic) < 0)
		return ioctl_err("KVM_GET_LAPIC", err, errlen);
	return 0;
}

int vm_suspend(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	if (atomic_load(&vm->sleeping)) {
		pthread_mutex_unlock(&vm->pause_lock);
		return -EALREADY;
	}
	vm->wake_pending = false;
	atomic_store(&vm->sleeping, true);
	pthread_mutex_unlock(&vm->pause_lock);
	/* The calling vCPU (if it is one) parks when its device access
	 * returns; the others leave KVM_RUN. */
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (v->started && !pthread_equal(v->thread, pthread_self()))
			vcpu_kick(v);
	}
	return 0;
}

int vm_wake(struct vm *vm, const struct vm_wake_entry *entry)
{
	pthread_mutex_lock(&vm->pause_lock);
	if (!atomic_load(&vm->sleeping) || vm->wake_pending) {
		pthread_mutex_unlock(&vm->pause_lock);
		return -EALREADY;
	}
	vm->wake_entry = *entry;
	vm->wake_pending = true;
	/* A parked vCPU that sees every other one parked does the reset. */
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	return 0;
}

bool vm_suspended(struct vm *vm)
{
	return atomic_load(&vm->sleeping);
}

static int reset_irqchips(struct vm *vm, char *err, size_t errlen)
{
	for (unsigned i = 0; i < 3; i++) {
		struct kvm_irqchip now = { .chip_id = i };
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &now) < 0)
			return ioctl_err("KVM_GET_IRQCHIP", err, errlen);
		struct kvm_irqchip chip = vm->reset_chip[i];
		if (i == KVM_IRQCHIP_IOAPIC) {
			/* KVM_SET_IRQCHIP re-injects irr into the (masked) pins. */
			chip.chip.ioapic.irr = now.chip.ioapic.irr;
		} else {
			/* ELCR is the chipset's, not the 8259's: it is kept,
			 * with the levels of the level-triggered lines and the
			 * line states that edge detection compares against. */
			struct kvm_pic_state *p = &chip.chip.pic, *n = &now.chip.pic;
			p->elcr = n->elcr;
			p->irr = n->irr & n->elcr;
			p->last_irr = n->last_irr;
		}
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
			return ioctl_err("KVM_SET_IRQCHIP", err, errlen);
	}
	struct kvm_pit_state2 pit = vm->reset_pit;
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return ioctl_err("KVM_SET_PIT2", err, errlen);
	return 0;
}

static struct kvm_segment flat(uint16_t sel, uint8_t type)
{
	return (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = sel,
				     .type = type, .present = 1, .s = 1, .db = 1, .g = 1 };
}

/* entry: the boot vCPU's; NULL for the others. Called from another thread
 * while this vCPU is parked: KVM allows vCPU ioctls on an idle vCPU. */
static int reset_vcpu(struct vcpu *v, const struct vm_wake_entry *entry, char *err,
		      size_t errlen)
{
	struct kvm_sregs s = v->reset_sregs;
	struct kvm_regs r = v->reset_regs;
	struct kvm_mp_state mp = { KVM_MP_STATE_UNINITIALIZED };
	if (entry) {
		mp.mp_state = KVM_MP_STATE_RUNNABLE;
		if (entry->protected32) {
			s.cs = flat(0x10, 0xb);
			s.ds = s.es = s.fs = s.gs = s.ss = flat(0x18, 0x3);
			s.cr0 = CR0_PE | CR0_ET;
			r.rip = entry->vector;
		} else {
			s.cs.selector = (uint16_t)(entry->vector >> 4);
			s.cs.base = (uint64_t)s.cs.selector << 4;
			s.cs.limit = 0xffff;
			/* Firmware has run: caches are on (CD and NW clear). */
			s.cr0 = CR0_ET;
			r.rip = entry->vector & 0xF;
		}
	}
	/* The APIC base (in sregs) before the LAPIC registers, which KVM
	 * reads in the mode the base selects. */
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
		return ioctl_err("KVM_SET_SREGS", err, errlen);
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return ioctl_err("KVM_SET_REGS", err, errlen);
	struct kvm_lapic_state lapic = v->reset_lapic;
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		return ioctl_err("KVM_SET_LAPIC", err, errlen);
	struct kvm_vcpu_events ev;
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return ioctl_err("KVM_GET_VCPU_EVENTS", err, errlen);
	memset(&ev.exception, 0, sizeof(ev.exception));
	memset(&ev.interrupt, 0, sizeof(ev.interrupt));
	memset(&ev.nmi, 0, sizeof(ev.nmi));
	ev.exception_has_payload = 0;
	ev.exception_payload = 0;
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return ioctl_err("KVM_SET_VCPU_EVENTS", err, errlen);
	if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
		return ioctl_err("KVM_SET_MP_STATE", err, errlen);
	return 0;
}

int vm_sleep_wake_locked(struct vm *vm, char *err, size_t errlen)
{
	/* The interrupt controllers first: nothing stale reaches a LAPIC
	 * once it is reset. */
	int r = reset_irqchips(vm, err, errlen);
	for (unsigned i = 0; r == 0 && i < vm->nvcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (v->done)
			continue;
		/* vCPU 0 is KVM's boot vCPU (vCPU id 0, APIC ID 0). */
		r = reset_vcpu(v, i == 0 ? &vm->wake_entry : NULL, err, errlen);
		if (r) {
			size_t n = strlen(err);
			snprintf(err + n, errlen - n, " (waking vCPU %u)", i);
		}
	}
	if (r)
		return r;
	vm->wake_pending = false;
	atomic_store(&vm->sleeping, false);
	pthread_cond_broadcast(&vm->pause_cond);
	return 0;
}
