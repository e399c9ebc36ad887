/* vmm/cpuid.c: the CPUID table a vCPU gets, from a made-up KVM_GET_SUPPORTED_CPUID. */
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "vmm/cpuid.h"

static struct kvm_cpuid2 *table(unsigned n)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
	return c;
}

static void put(struct kvm_cpuid2 *c, uint32_t fn, uint32_t eax, uint32_t ebx, uint32_t ecx,
		uint32_t edx)
{
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){ .function = fn, .eax = eax, .ebx = ebx,
							    .ecx = ecx, .edx = edx };
}

static const struct kvm_cpuid_entry2 *get(const struct kvm_cpuid2 *c, uint32_t fn)
{
	const struct kvm_cpuid_entry2 *found = NULL;
	int n = 0;
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn) {
			found = &c->entries[i];
			n++;
		}
	CHECK(n <= 1); /* each leaf once */
	return found;
}

int main(void)
{
	struct cpu_topology t = { 1, 1, 1, 1 };
	struct kvm_cpuid2 *s = table(16);
	put(s, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65); /* AuthenticAMD */
	put(s, 1, 0x00a00f11, 0, 0, 0);
	put(s, 0x40000000, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d); /* KVMKVMKVM */
	put(s, 0x40000001, 0, 0, 0, 0);
	put(s, 0x80000000, 0x80000008, 0, 0, 0);
	put(s, 0x80000007, 0, 0, 0, 0); /* KVM hid the invariant TSC */
	put(s, 0x80000008, 0x3030, 0, 0, 0);

	struct kvm_cpuid2 *c = cpuid_for_vcpu(s, &t, 0, 2495123);
	CHECK(c != NULL);
	const struct kvm_cpuid_entry2 *e = get(c, 0x40000000);
	CHECK(e && e->eax == 0x40000010);
	CHECK(e && e->ebx == 0x4b4d564b); /* the signature stays */
	e = get(c, 0x40000010);
	CHECK(e != NULL);
	if (e) {
		CHECK_EQ(e->eax, 2495123);   /* TSC kHz */
		CHECK_EQ(e->ebx, 1000000);   /* APIC bus: KVM's LAPIC timer, 1 GHz */
		CHECK_EQ(e->ecx, 0);
		CHECK_EQ(e->edx, 0);
	}
	e = get(c, 0x80000007);
	CHECK(e && (e->edx & (1u << 8)));
	free(c);

	/* Without a TSC rate the timing leaf is left out, and 0x40000000
	 * keeps KVM's value; the invariant TSC bit is still set. */
	c = cpuid_for_vcpu(s, &t, 0, 0);
	CHECK(get(c, 0x40000010) == NULL);
	CHECK_EQ(get(c, 0x40000000)->eax, 0x40000001);
	CHECK(get(c, 0x80000007)->edx & (1u << 8));
	free(c);

	/* A CPU whose extended leaves stop below 0x80000007 gets the leaf,
	 * and 0x80000000 covers it. A hypervisor range already above
	 * 0x40000010 is not lowered. */
	struct kvm_cpuid2 *s2 = table(8);
	put(s2, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69); /* GenuineIntel */
	put(s2, 0x40000000, 0x40000100, 0, 0, 0);
	put(s2, 0x80000000, 0x80000001, 0, 0, 0);
	c = cpuid_for_vcpu(s2, &t, 0, 1000000);
	CHECK_EQ(get(c, 0x80000000)->eax, 0x80000007);
	CHECK(get(c, 0x80000007) && (get(c, 0x80000007)->edx & (1u << 8)));
	CHECK_EQ(get(c, 0x40000000)->eax, 0x40000100);
	CHECK_EQ(get(c, 0x40000010)->eax, 1000000);
	free(c);
	free(s2);
	free(s);
	return UNIT_RESULT();
}
