/* The CPUID a vCPU sees: what KVM supports, with the chosen topology
 * (APIC IDs, leaf 1, 4, 0xB/0x1F, AMD's 0x80000008/0x8000001E) and the
 * hypervisor bit; KVM's paravirtual leaves (0x40000000...) pass through,
 * plus the timing leaf 0x40000010 (TSC and APIC bus kHz) and the
 * invariant-TSC bit (0x80000007 EDX[8]). */
#pragma once
#include <stdint.h>

#include "vmm/topology.h"

struct kvm_cpuid2;

/* A new table for vCPU index; free() it. NULL on allocation failure.
 * tsc_khz: the vCPU's TSC rate (KVM_GET_TSC_KHZ); 0 when unknown, and then
 * leaf 0x40000010 is left out. */
struct kvm_cpuid2 *cpuid_for_vcpu(const struct kvm_cpuid2 *supported,
				  const struct cpu_topology *topo, unsigned index, uint32_t tsc_khz);
