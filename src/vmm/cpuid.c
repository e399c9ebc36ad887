#include "vmm/cpuid.h"

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define EXTRA_ENTRIES 8

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

struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *supported,
				  const struct cpu_topology *t, unsigned index)
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
	return c;
}
