#include "vmm/topology.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"

static unsigned bits_for(unsigned count)
{
	unsigned bits = 0;
	while ((1u << bits) < count)
		bits++;
	return bits;
}

unsigned topology_thread_bits(const struct cpu_topology *t) { return bits_for(t->threads); }
unsigned topology_core_bits(const struct cpu_topology *t) { return bits_for(t->cores); }

uint32_t topology_apic_id(const struct cpu_topology *t, unsigned index)
{
	unsigned tb = topology_thread_bits(t), cb = topology_core_bits(t);
	unsigned thread = index % t->threads;
	unsigned core = (index / t->threads) % t->cores;
	unsigned socket = index / (t->threads * t->cores);
	return socket << (cb + tb) | core << tb | thread;
}

int topology_parse(const char *spec, struct cpu_topology *out, char *err, size_t errlen)
{
	unsigned long long cpus = 0, sockets = 0, cores = 0, threads = 0;
	char *copy = strdup(spec ? spec : "");
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = 0;
	char *save = NULL;
	bool first = true;
	if (!*copy)
		goto bad;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), first = false) {
		char *eq = strchr(tok, '=');
		const char *key = eq ? tok : (first ? "cpus" : NULL);
		const char *val = eq ? eq + 1 : tok;
		if (eq)
			*eq = '\0';
		unsigned long long *slot = NULL;
		if (!key)
			goto bad;
		if (!strcmp(key, "cpus"))
			slot = &cpus;
		else if (!strcmp(key, "sockets"))
			slot = &sockets;
		else if (!strcmp(key, "cores"))
			slot = &cores;
		else if (!strcmp(key, "threads"))
			slot = &threads;
		else {
			snprintf(err, errlen, "unknown key '%s' (expected cpus, sockets, cores, threads)", key);
			rc = -EINVAL;
			goto out;
		}
		uint64_t v;
		/* Each count, like the vCPU count, stays within what xAPIC IDs,
		 * the MP table and the MADT's xAPIC entries can name. */
		if (parse_uint(val, TOPOLOGY_MAX_CPUS, &v) || v == 0) {
			snprintf(err, errlen, "%s must be a number from 1 to %d, not '%s'", key,
				 TOPOLOGY_MAX_CPUS, val);
			rc = -EINVAL;
			goto out;
		}
		*slot = v;
	}
	bool explicit_topology = sockets || cores || threads;
	if (!sockets)
		sockets = explicit_topology ? 1 : (cpus ? cpus : 1);
	if (!cores)
		cores = 1;
	if (!threads)
		threads = 1;
	unsigned long long capacity = sockets * cores * threads;
	if (!cpus)
		cpus = capacity;
	if (cpus > capacity) {
		snprintf(err, errlen, "%llu vCPUs do not fit in %llu socket(s) x %llu core(s) x %llu thread(s)",
			 cpus, sockets, cores, threads);
		rc = -EINVAL;
		goto out;
	}
	if (cpus > TOPOLOGY_MAX_CPUS) {
		snprintf(err, errlen, "%llu vCPUs is more than the %d supported", cpus,
			 TOPOLOGY_MAX_CPUS);
		rc = -EINVAL;
		goto out;
	}
	*out = (struct cpu_topology){ (unsigned)cpus, (unsigned)sockets, (unsigned)cores,
				      (unsigned)threads };
	/* The highest APIC ID must stay below the broadcast ID. */
	if (topology_apic_id(out, out->cpus - 1) >= 255) {
		snprintf(err, errlen, "this topology needs APIC IDs above 254");
		rc = -EINVAL;
	}
	goto out;
bad:
	snprintf(err, errlen, "expected [[cpus=]n][,sockets=n][,cores=n][,threads=n], not '%s'",
		 spec ? spec : "");
	rc = -EINVAL;
out:
	free(copy);
	return rc;
}
