#include <string.h>

#include "unit.h"
#include "vmm/topology.h"

int main(void)
{
	struct cpu_topology t;
	char err[256];
	CHECK_EQ(topology_parse("4", &t, err, sizeof(err)), 0);
	CHECK_EQ(t.cpus, 4);
	CHECK_EQ(t.sockets, 4); /* bhyve: each vCPU is a socket by default */
	CHECK_EQ(topology_apic_id(&t, 3), 3);

	CHECK_EQ(topology_parse("cpus=4,sockets=2,cores=2", &t, err, sizeof(err)), 0);
	CHECK_EQ(t.cpus, 4);
	CHECK_EQ(t.sockets, 2);
	CHECK_EQ(t.cores, 2);
	CHECK_EQ(t.threads, 1);
	CHECK_EQ(topology_apic_id(&t, 2), 2);

	CHECK_EQ(topology_parse("sockets=1,cores=3,threads=2", &t, err, sizeof(err)), 0);
	CHECK_EQ(t.cpus, 6);
	/* 3 cores need 2 bits, 2 threads 1 bit: core 2 thread 1 is 0b101. */
	CHECK_EQ(topology_apic_id(&t, 5), 5);
	CHECK_EQ(topology_parse("sockets=2,cores=3", &t, err, sizeof(err)), 0);
	CHECK_EQ(topology_apic_id(&t, 3), 4); /* socket 1 starts at ID 4 */

	CHECK(topology_parse("0", &t, err, sizeof(err)) < 0);
	CHECK(topology_parse("", &t, err, sizeof(err)) < 0);
	CHECK(topology_parse("abc", &t, err, sizeof(err)) < 0);
	CHECK(topology_parse("cpus=8,sockets=1,cores=2", &t, err, sizeof(err)) < 0);
	CHECK(strstr(err, "do not fit") != NULL);
	CHECK(topology_parse("4,bogus=1", &t, err, sizeof(err)) < 0);
	CHECK(strstr(err, "bogus") != NULL);
	CHECK(topology_parse("300", &t, err, sizeof(err)) < 0);
	CHECK(topology_parse("2,2", &t, err, sizeof(err)) < 0);

	/* Issue 9: every count is 1-254, as the message says (255-1024 were
	 * accepted for sockets, cores and threads). 254 is the most xAPIC
	 * IDs, the MP table and the MADT's xAPIC entries can name. */
	CHECK(topology_parse("cpus=2,sockets=1,cores=300", &t, err, sizeof(err)) < 0);
	CHECK(strstr(err, "cores must be a number from 1 to 254, not '300'") != NULL);
	CHECK(topology_parse("cpus=1,threads=255", &t, err, sizeof(err)) < 0);
	CHECK(strstr(err, "from 1 to 254") != NULL);
	CHECK(topology_parse("cpus=1,sockets=1024", &t, err, sizeof(err)) < 0);
	CHECK(topology_parse("1024", &t, err, sizeof(err)) < 0);
	CHECK(strstr(err, "from 1 to 254") != NULL);
	CHECK_EQ(topology_parse("cpus=2,sockets=1,cores=254", &t, err, sizeof(err)), 0);
	CHECK_EQ(topology_parse("254", &t, err, sizeof(err)), 0);
	CHECK_EQ(topology_apic_id(&t, 253), 253);
	/* Library messages do not speak of command-line flags. */
	CHECK(topology_parse("x=1", &t, err, sizeof(err)) < 0);
	CHECK(strncmp(err, "-c", 2) != 0);
	return UNIT_RESULT();
}
