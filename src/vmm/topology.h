/* The vCPU count and topology from bhyve's topology spec, and the APIC IDs
 * that follow from it. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define TOPOLOGY_MAX_CPUS 254 /* xAPIC IDs; 255 is the broadcast ID */

struct cpu_topology {
	unsigned cpus;
	unsigned sockets, cores, threads; /* cores per socket, threads per core */
};

/* "[[cpus=]n][,sockets=n][,cores=n][,threads=n]". Returns 0, or -EINVAL
 * with a reason in err. */
int topology_parse(const char *spec, struct cpu_topology *out, char *err, size_t errlen);

unsigned topology_thread_bits(const struct cpu_topology *t);
unsigned topology_core_bits(const struct cpu_topology *t);
/* The APIC ID of vCPU index (0 is the boot CPU). */
uint32_t topology_apic_id(const struct cpu_topology *t, unsigned index);
