#include "vmm/cpuid.h"

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXTRA_ENTRIES 12 /* topology leaves 0xB/0x1F, 0x40000010, 0x80000007 */

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn &&
		    (!(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || c->entries[i].index == idx))
			return &c->entries[i];
	return NULL;
}

static void remove_leaf(struct kvm_cpuid2 *c, uint32_t fn)
{
	uint32_t out = 0;
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function != fn)
			c->entries[out++] = c->entries[i];
	c->nent = out;
}

static void add_entry(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx, uint32_t eax, uint32_t ebx,
		      uint32_t ecx, uint32_t edx)
{
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = fn, .index = idx, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx,
	};
}

static unsigned pow2_ceil(unsigned v)
{
	unsigned p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

static bool is_amd(const struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0)
			return c->entries[i].ebx == 0x68747541; /* "Auth" */
	return false;
}

/* Leaf 0xB and 0x1F describe the SMT and core levels of the x2APIC ID. */
static void set_extended_topology(struct kvm_cpuid2 *c, uint32_t leaf, const struct cpu_topology *t,
				  uint32_t apic_id)
{
	remove_leaf(c, leaf);
	unsigned tb = topology_thread_bits(t), cb = topology_core_bits(t);
	add_entry(c, leaf, 0, tb, t->threads, (1u << 8) | 0, apic_id);
	add_entry(c, leaf, 1, tb + cb, t->threads * t->cores, (2u << 8) | 1, apic_id);
	add_entry(c, leaf, 2, 0, 0, 2, apic_id);
}

/* KVM's in-kernel LAPIC timer counts at 1 GHz (APIC_BUS_CYCLE_NS 1), so
 * the "APIC bus" a guest divides down from is 1,000,000 kHz. */
#define KVM_APIC_BUS_KHZ 1000000u
#define LEAF_HV_BASE 0x40000000u
#define LEAF_HV_TIMING 0x40000010u
#define LEAF_EXT_BASE 0x80000000u
#define LEAF_EXT_POWER 0x80000007u
#define EXT_POWER_EDX_INVARIANT_TSC (1u << 8)

/* The hypervisor timing leaf 0x40000010 (the VMware-defined leaf that
 * Linux, FreeBSD and Firecracker/QEMU's tsc-frequency= share): EAX the
 * TSC frequency, EBX the APIC bus frequency, both in kHz. FreeBSD's early
 * DELAY() under PVH (xen_delay() <- start_TSC()) has no other way to learn
 * the TSC rate before its timers are up. Leaf 0x40000000's EAX (the
 * highest hypervisor leaf) is raised to cover it. Without a TSC rate
 * (tsc_khz 0) or without KVM's signature leaf nothing is added. */
static void set_timing_leaf(struct kvm_cpuid2 *c, uint32_t tsc_khz)
{
	struct kvm_cpuid_entry2 *base = find(c, LEAF_HV_BASE, 0);
	if (!tsc_khz || !base)
		return;
	if (base->eax < LEAF_HV_TIMING)
		base->eax = LEAF_HV_TIMING;
	remove_leaf(c, LEAF_HV_TIMING);
	add_entry(c, LEAF_HV_TIMING, 0, tsc_khz, KVM_APIC_BUS_KHZ, 0, 0);
}

/* Invariant TSC (CPUID 0x80000007 EDX bit 8): KVM's supported CPUID hides
 * it unless the host TSC is invariant *and* KVM can promise it across
 * migration; khyve never migrates a guest, and KVM keeps the guest TSC
 * running at a constant rate (KVM_GET_TSC_KHZ, scaled when the host
 * supports it) through host frequency changes and C-states. Guests that
 * see it (Linux, FreeBSD) trust the TSC as a clock instead of falling
 * back to the PM timer or HPET. */
static void set_invariant_tsc(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *ext = find(c, LEAF_EXT_BASE, 0);
	if (!ext)
		return; /* no extended leaves at all: not an x86-64 CPU KVM offers */
	struct kvm_cpuid_entry2 *e = find(c, LEAF_EXT_POWER, 0);
	if (!e) {
		if (ext->eax < LEAF_EXT_POWER)
			ext->eax = LEAF_EXT_POWER;
		add_entry(c, LEAF_EXT_POWER, 0, 0, 0, 0, 0);
		e = find(c, LEAF_EXT_POWER, 0);
	}
	e->edx |= EXT_POWER_EDX_INVARIANT_TSC;
}

struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *supported,
				  const struct cpu_topology *t, unsigned index, uint32_t tsc_khz)
{
	size_t n = supported->nent + EXTRA_ENTRIES;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return NULL;
	c->nent = supported->nent;
	memcpy(c->entries, supported->entries, supported->nent * sizeof(struct kvm_cpuid_entry2));

	uint32_t apic_id = topology_apic_id(t, index);
	unsigned per_package = t->cores * t->threads;
	unsigned tb = topology_thread_bits(t), cb = topology_core_bits(t);
	struct kvm_cpuid_entry2 *e;

	uint32_t max_basic = (e = find(c, 0, 0)) ? e->eax : 0;

	if ((e = find(c, 1, 0))) {
		e->ebx = (e->ebx & 0x0000ffff) | (apic_id << 24) |
			 ((pow2_ceil(per_package) & 0xff) << 16);
		if (per_package > 1)
			e->edx |= 1u << 28; /* HTT: the package has several logical CPUs */
		else
			e->edx &= ~(1u << 28);
		e->ecx |= 1u << 31; /* running under a hypervisor */
	}

	/* Deterministic cache parameters: who shares each cache. */
	for (uint32_t i = 0; i < c->nent; i++) {
		e = &c->entries[i];
		if (e->function != 4 || (e->eax & 0x1f) == 0)
			continue;
		unsigned level = (e->eax >> 5) & 7;
		unsigned sharing = level >= 3 ? pow2_ceil(per_package) : pow2_ceil(t->threads);
		e->eax &= 0x3fff;
		e->eax |= ((pow2_ceil(t->cores) - 1) & 0x3f) << 26 | ((sharing - 1) & 0xfff) << 14;
	}

	if (max_basic >= 0xb)
		set_extended_topology(c, 0xb, t, apic_id);
	if (max_basic >= 0x1f)
		set_extended_topology(c, 0x1f, t, apic_id);

	if (is_amd(c)) {
		if ((e = find(c, 0x80000001, 0))) {
			if (per_package > 1)
				e->ecx |= 1u << 1; /* CmpLegacy */
			else
				e->ecx &= ~(1u << 1);
		}
		if ((e = find(c, 0x80000008, 0)))
			e->ecx = (e->ecx & ~0xf0ffu) | ((tb + cb) << 12) | ((per_package - 1) & 0xff);
		if ((e = find(c, 0x8000001e, 0))) {
			e->eax = apic_id;
			e->ebx = ((t->threads - 1) << 8) | ((apic_id >> tb) & 0xff);
			e->ecx = (apic_id >> (tb + cb)) & 0xff;
		}
	}
	set_timing_leaf(c, tsc_khz);
	set_invariant_tsc(c);
	return c;
}
