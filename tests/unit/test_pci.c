/* The PCI core: config mechanism #1 and ECAM, BAR sizing and mapping,
 * capability lists, MSI-X table/PBA with masking, MSI, INTx sharing, and
 * the slot parser's errors (machine/slots.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus/io_bus.h"
#include "dev/platform.h"
#include "pci/pci.h"
#include "pci/slots.h"
#include "machine/slots.h"
#include "unit.h"

static int irq_level[64];
static int irq_changes;
static void rec_set_irq(struct platform *p, unsigned gsi, bool level)
{
	(void)p;
	irq_level[gsi] = level;
	irq_changes++;
}

static uint64_t msi_addr;
static uint32_t msi_data;
static int msi_count;
static void rec_signal_msi(struct platform *p, uint64_t addr, uint32_t data)
{
	(void)p;
	msi_addr = addr;
	msi_data = data;
	msi_count++;
}

static void rec_request_exit(struct platform *p, int status, const char *reason)
{
	(void)p;
	(void)status;
	(void)reason;
}

static uint64_t bar_reads;
static uint64_t bar_rd(void *opaque, uint64_t off, unsigned size)
{
	(void)size;
	bar_reads++;
	return (uintptr_t)opaque + off;
}
static const struct io_ops bar_ops = { bar_rd, NULL };

static int map_calls;
static void on_bar_map(struct pci_dev *d, int bar, uint64_t addr, bool mapped)
{
	(void)d;
	(void)bar;
	(void)addr;
	(void)mapped;
	map_calls++;
}
static const struct pci_dev_ops dev_ops = { .bar_map = on_bar_map };

static uint32_t cf8(struct platform *p, unsigned slot, unsigned func, unsigned reg, unsigned size)
{
	uint8_t b[4];
	uint32_t a = 0x80000000u | slot << 11 | func << 8 | (reg & 0xFC);
	memcpy(b, &a, 4);
	io_bus_access(p->pio, 0xCF8, 4, true, b);
	memset(b, 0, 4);
	io_bus_access(p->pio, 0xCFC + (reg & 3), size, false, b);
	uint32_t v = 0;
	memcpy(&v, b, size);
	return v;
}

static void cf8_w(struct platform *p, unsigned slot, unsigned func, unsigned reg, unsigned size,
		  uint32_t v)
{
	uint8_t b[4];
	uint32_t a = 0x80000000u | slot << 11 | func << 8 | (reg & 0xFC);
	memcpy(b, &a, 4);
	io_bus_access(p->pio, 0xCF8, 4, true, b);
	memcpy(b, &v, 4);
	io_bus_access(p->pio, 0xCFC + (reg & 3), size, true, b);
}

static uint32_t ecam(struct platform *p, unsigned slot, unsigned func, unsigned reg, unsigned size)
{
	uint8_t b[8] = { 0 };
	io_bus_access(p->mmio, PCI_ECAM_BASE + (slot << 15 | func << 12 | reg), size, false, b);
	uint32_t v = 0;
	memcpy(&v, b, size > 4 ? 4 : size);
	return v;
}

static void ecam_w(struct platform *p, unsigned slot, unsigned func, unsigned reg, unsigned size,
		   uint32_t v)
{
	uint8_t b[8] = { 0 };
	memcpy(b, &v, 4);
	io_bus_access(p->mmio, PCI_ECAM_BASE + (slot << 15 | func << 12 | reg), size, true, b);
}

static uint64_t mmio_read(struct platform *p, uint64_t addr, unsigned size)
{
	uint8_t b[8] = { 0 };
	io_bus_access(p->mmio, addr, size, false, b);
	uint64_t v = 0;
	memcpy(&v, b, size);
	return v;
}

static void mmio_write(struct platform *p, uint64_t addr, unsigned size, uint64_t v)
{
	uint8_t b[8];
	memcpy(b, &v, 8);
	io_bus_access(p->mmio, addr, size, true, b);
}

static void test_parser(void)
{
	struct machine_slots *cfg = NULL;
	char err[512];
	CHECK_EQ(machine_slots_add(&cfg, "0,hostbridge", err, sizeof(err)), 0);
	CHECK_EQ(machine_slots_add(&cfg, "31,lpc", err, sizeof(err)), 0);
	CHECK_EQ(machine_slots_add(&cfg, "0:0:3,amd_hostbridge", err, sizeof(err)), 0);
	CHECK(machine_slots_add(&cfg, "0:0,lpc", err, sizeof(err)) == -EEXIST);
	CHECK(strstr(err, "already taken by hostbridge") != NULL);
	CHECK(machine_slots_add(&cfg, "30,lpc", err, sizeof(err)) == -EEXIST);
	CHECK(machine_slots_add(&cfg, "3,nosuch", err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "unknown PCI emulation 'nosuch'") != NULL);
	CHECK(machine_slots_add(&cfg, "32,hostbridge", err, sizeof(err)) == -EINVAL);
	CHECK(machine_slots_add(&cfg, "1:8,hostbridge", err, sizeof(err)) == -EINVAL);
	CHECK(machine_slots_add(&cfg, "1:0:0,hostbridge", err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "bus 0") != NULL);
	CHECK(machine_slots_add(&cfg, "x,hostbridge", err, sizeof(err)) == -EINVAL);
	CHECK(machine_slots_add(&cfg, "4:,hostbridge", err, sizeof(err)) == -EINVAL);
	CHECK(machine_slots_add(&cfg, "hostbridge", err, sizeof(err)) == -EINVAL);
	CHECK(machine_slots_add(&cfg, "4,hostbridge,bogus=1", err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "bogus") != NULL);
	/* Slot numbers are decimal, as bhyve reads them (issue 9): "010" is
	 * slot 10, not 8; "08" is slot 8; hex is not a slot. */
	CHECK_EQ(machine_slots_add(&cfg, "010,hostbridge", err, sizeof(err)), 0);
	CHECK(machine_slots_add(&cfg, "10,hostbridge", err, sizeof(err)) == -EEXIST);
	CHECK(strstr(err, "slot 10:0 is already taken") != NULL);
	CHECK_EQ(machine_slots_add(&cfg, "08,hostbridge", err, sizeof(err)), 0);
	CHECK(machine_slots_add(&cfg, "0x9,hostbridge", err, sizeof(err)) == -EINVAL);
	CHECK(machine_slots_add(&cfg, "0:012:01,hostbridge", err, sizeof(err)) == 0);
	CHECK(machine_slots_add(&cfg, "12:1,hostbridge", err, sizeof(err)) == -EEXIST);
	/* Library messages do not speak of command-line flags. */
	CHECK(strncmp(err, "-s", 2) != 0);
	machine_slots_free(cfg);

	struct pci_conf_word w[PCI_CONF_MAX_WORDS];
	char *buf;
	int n = pci_conf_split("disk.img,ro,sectorsize=512/4096", &buf, w, PCI_CONF_MAX_WORDS);
	CHECK_EQ(n, 3);
	CHECK(!strcmp(w[0].key, "disk.img") && !w[0].value);
	CHECK(!strcmp(w[1].key, "ro") && !w[1].value);
	CHECK(!strcmp(w[2].key, "sectorsize") && !strcmp(w[2].value, "512/4096"));
	free(buf);
	bool b = false;
	CHECK(pci_conf_bool(NULL, &b) == 0 && b);
	CHECK(pci_conf_bool("off", &b) == 0 && !b);
	CHECK(pci_conf_bool("maybe", &b) == -EINVAL);
}

/* KVM routes and irqfds as a platform with them records them. */
static int routes_made, route_updates, irqfds_assigned;
static int rt_add(struct platform *p, uint64_t addr, uint32_t data)
{
	(void)p;
	(void)addr;
	(void)data;
	return 100 + routes_made++;
}
static int rt_update(struct platform *p, unsigned gsi, uint64_t addr, uint32_t data)
{
	(void)p;
	(void)gsi;
	(void)addr;
	(void)data;
	route_updates++;
	return 0;
}
static void rt_remove(struct platform *p, unsigned gsi)
{
	(void)p;
	(void)gsi;
}
static int rt_irqfd(struct platform *p, int fd, unsigned gsi, bool assign)
{
	(void)p;
	(void)fd;
	(void)gsi;
	irqfds_assigned += assign ? 1 : -1;
	return 0;
}
static int watch_calls;
static void on_watch(void *opaque)
{
	(void)opaque;
	watch_calls++;
}

/* pci_msix_irqfd hands out a vector's irqfd only while MSI-X is on and
 * the vector unmasked, with its route brought up to date; the watcher
 * hears of every change that can alter that answer (vhost-net rebinds). */
static void test_msix_irqfd(void)
{
	struct guest_mem gm;
	CHECK_EQ(guest_mem_create(&gm, 16 << 20), 0);
	struct platform p = {
		.pio = io_bus_create("pio"), .mmio = io_bus_create("mmio"), .mem = &gm,
		.set_irq = rec_set_irq, .request_exit = rec_request_exit,
		.signal_msi = rec_signal_msi, .msi_route_add = rt_add,
		.msi_route_update = rt_update, .msi_route_remove = rt_remove, .irqfd = rt_irqfd,
	};
	struct pci_bus *bus;
	CHECK_EQ(pci_bus_create(&p, &bus), 0);
	struct pci_dev *d;
	CHECK_EQ(pci_dev_create(bus, 3, 0, "dev", 0x1af4, 0x1041, 0x020000, 1, &dev_ops, NULL, &d), 0);
	CHECK_EQ(pci_bar_init(d, 1, PCI_BAR_MEM32, 4096, false, &bar_ops, NULL), 0);
	CHECK_EQ(pci_msix_init(d, 2, 1, 0, 0x800), 0);
	struct pci_intx_route routes[8];
	char err[256];
	CHECK(pci_bus_finish(bus, routes, 8, err, sizeof(err)) >= 0);
	uint64_t t = cf8(&p, 3, 0, 0x14, 4) & ~0xFULL;
	cf8_w(&p, 3, 0, 4, 2, 2); /* memory decoding */
	pci_msix_set_watch(d, on_watch, NULL);
	unsigned xcap = cf8(&p, 3, 0, 0x34, 1);
	CHECK_EQ(cf8(&p, 3, 0, xcap, 1), PCI_CAP_ID_MSIX);

	CHECK_EQ(pci_msix_irqfd(d, 1), -1); /* MSI-X off */
	cf8_w(&p, 3, 0, xcap + 2, 2, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(watch_calls, 1);
	CHECK_EQ(pci_msix_irqfd(d, 1), -1); /* masked at reset */
	mmio_write(&p, t + 16, 4, 0xFEE01000);
	mmio_write(&p, t + 24, 4, 0x4041);
	int before = watch_calls;
	mmio_write(&p, t + 28, 4, 0); /* unmask */
	CHECK(watch_calls > before);
	int fd = pci_msix_irqfd(d, 1);
	CHECK(fd >= 0);
	CHECK_EQ(routes_made, 1);
	CHECK_EQ(irqfds_assigned, 1);
	CHECK_EQ(pci_msix_irqfd(d, 1), fd); /* the same irqfd, no second route */
	CHECK_EQ(routes_made, 1);
	/* A new message: the watcher hears, the route is rewritten when asked. */
	before = watch_calls;
	int updates = route_updates;
	mmio_write(&p, t + 24, 4, 0x4042);
	CHECK(watch_calls > before);
	CHECK_EQ(pci_msix_irqfd(d, 1), fd);
	CHECK_EQ(route_updates, updates + 1);
	/* Masked (per vector or the function): no irqfd, and the watcher hears. */
	before = watch_calls;
	mmio_write(&p, t + 28, 4, 1);
	CHECK(watch_calls > before);
	CHECK_EQ(pci_msix_irqfd(d, 1), -1);
	mmio_write(&p, t + 28, 4, 0);
	before = watch_calls;
	cf8_w(&p, 3, 0, xcap + 2, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	CHECK(watch_calls > before);
	CHECK_EQ(pci_msix_irqfd(d, 1), -1);
	cf8_w(&p, 3, 0, xcap + 2, 2, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(pci_msix_irqfd(d, 1), fd);
	/* Writing the same mask again changes nothing: no call. */
	before = watch_calls;
	mmio_write(&p, t + 28, 4, 0);
	CHECK_EQ(watch_calls, before);
	CHECK_EQ(pci_msix_irqfd(d, 5), -1);           /* out of range */
	CHECK_EQ(pci_msix_irqfd(d, PCI_NO_VECTOR), -1);
	pci_msix_set_watch(d, NULL, NULL);
	before = watch_calls;
	cf8_w(&p, 3, 0, xcap + 2, 2, 0);
	CHECK_EQ(watch_calls, before);
	CHECK_EQ(pci_msix_irqfd(d, 1), -1); /* off */
	pci_bus_destroy(bus);
	CHECK_EQ(irqfds_assigned, 0);
	io_bus_destroy(p.pio);
	io_bus_destroy(p.mmio);
	guest_mem_destroy(&gm);
}

int main(void)
{
	test_parser();
	test_msix_irqfd();

	struct guest_mem gm;
	CHECK_EQ(guest_mem_create(&gm, 16 << 20), 0);
	struct platform p = {
		.pio = io_bus_create("pio"), .mmio = io_bus_create("mmio"), .mem = &gm,
		.set_irq = rec_set_irq, .request_exit = rec_request_exit,
		.signal_msi = rec_signal_msi,
	};
	struct pci_bus *bus;
	CHECK_EQ(pci_bus_create(&p, &bus), 0);

	struct pci_dev *d, *d2, *d3;
	CHECK_EQ(pci_dev_create(bus, 3, 0, "dev", 0x1af4, 0x1041, 0x020000, 1, &dev_ops, NULL, &d), 0);
	CHECK_EQ(pci_dev_create(bus, 3, 0, "dup", 1, 1, 0, 0, NULL, NULL, &d2), -EEXIST);
	CHECK_EQ(pci_bar_init(d, 0, PCI_BAR_IO, 32, false, &bar_ops, (void *)0x1000), 0);
	CHECK_EQ(pci_bar_init(d, 1, PCI_BAR_MEM32, 4096, false, &bar_ops, (void *)0x2000), 0);
	CHECK_EQ(pci_bar_init(d, 2, PCI_BAR_MEM64, 16384, true, &bar_ops, (void *)0x3000), 0);
	CHECK_EQ(pci_bar_init(d, 3, PCI_BAR_MEM32, 4096, false, &bar_ops, NULL), -EINVAL); /* upper half */
	CHECK_EQ(pci_bar_init(d, 4, PCI_BAR_MEM32, 100, false, &bar_ops, NULL), -EINVAL);
	CHECK_EQ(pci_msi_init(d), 0);
	CHECK_EQ(pci_msix_init(d, 3, 1, 0, 0x800), 0);
	pci_intx_init(d, 1);
	/* A second device on the same INTx line (slot 11: (11 + 0) % 8 == 3 % 8). */
	CHECK_EQ(pci_dev_create(bus, 11, 0, "dev2", 0x1af4, 0x1042, 0x010000, 1, NULL, NULL, &d2), 0);
	pci_intx_init(d2, 1);
	CHECK_EQ(pci_dev_create(bus, 11, 2, "fn2", 0x1af4, 0x1043, 0x078000, 1, NULL, NULL, &d3), 0);

	struct pci_intx_route routes[8];
	char err[256];
	int nr = pci_bus_finish(bus, routes, 8, err, sizeof(err));
	CHECK_EQ(nr, 2);
	CHECK_EQ(routes[0].dev, 3);
	CHECK_EQ(routes[0].pin, 0);
	CHECK_EQ(routes[0].gsi, 19);
	CHECK_EQ(routes[1].dev, 11);
	CHECK_EQ(routes[1].gsi, 19);

	/* Mechanism #1 and ECAM agree; absent functions read all-ones. */
	CHECK_EQ(cf8(&p, 3, 0, 0, 4), 0x10411af4);
	CHECK_EQ(ecam(&p, 3, 0, 0, 4), 0x10411af4);
	CHECK_EQ(cf8(&p, 3, 0, 2, 2), 0x1041);
	CHECK_EQ(cf8(&p, 3, 0, 0x0b, 1), 0x02);
	CHECK_EQ(cf8(&p, 4, 0, 0, 4), 0xFFFFFFFF);
	CHECK_EQ(ecam(&p, 4, 0, 0, 2), 0xFFFF);
	CHECK_EQ(ecam(&p, 3, 0, 0x100, 4), 0); /* no extended space */
	CHECK_EQ(cf8(&p, 3, 0, 0x3c, 1), 19);
	CHECK_EQ(cf8(&p, 3, 0, 0x3d, 1), 1);
	/* Multi-function bit on slot 11 function 0 only. */
	CHECK_EQ(cf8(&p, 11, 0, 0x0e, 1), 0x80);
	CHECK_EQ(cf8(&p, 3, 0, 0x0e, 1), 0x00);
	/* Byte writes to 0xCFB do not touch the address latch. */
	uint8_t one = 1;
	io_bus_access(p.pio, 0xCFB, 1, true, &one);
	CHECK_EQ(cf8(&p, 3, 0, 0, 2), 0x1af4);

	/* BARs were placed (largest first) and decoding switched on. */
	CHECK_EQ(cf8(&p, 3, 0, 4, 2) & 3, 3);
	uint32_t bar0 = cf8(&p, 3, 0, 0x10, 4), bar1 = cf8(&p, 3, 0, 0x14, 4);
	uint32_t bar2 = cf8(&p, 3, 0, 0x18, 4), bar3 = cf8(&p, 3, 0, 0x1c, 4);
	CHECK_EQ(bar0, 0x2001);
	CHECK_EQ(bar2, 0xC000000C); /* 64-bit, prefetchable, the biggest */
	CHECK_EQ(bar3, 0);
	CHECK_EQ(bar1, 0xC0004000);
	uint8_t b[8];
	CHECK(io_bus_access(p.pio, 0x2004, 1, false, b));
	CHECK_EQ(b[0], 0x04);
	CHECK_EQ(mmio_read(&p, 0xC0000010, 4), 0x3010);

	/* Sizing: all-ones gives the mask. */
	cf8_w(&p, 3, 0, 4, 2, 0); /* decoding off */
	CHECK(!io_bus_access(p.pio, 0x2004, 1, false, b));
	cf8_w(&p, 3, 0, 0x10, 4, 0xFFFFFFFF);
	CHECK_EQ(cf8(&p, 3, 0, 0x10, 4), 0xFFFFFFE1);
	cf8_w(&p, 3, 0, 0x18, 4, 0xFFFFFFFF);
	cf8_w(&p, 3, 0, 0x1c, 4, 0xFFFFFFFF);
	CHECK_EQ(cf8(&p, 3, 0, 0x18, 4), 0xFFFFC00C);
	CHECK_EQ(cf8(&p, 3, 0, 0x1c, 4), 0xFFFFFFFF);
	/* Move BAR2 and BAR0, decoding back on. */
	map_calls = 0;
	cf8_w(&p, 3, 0, 0x18, 4, 0xD0000000);
	cf8_w(&p, 3, 0, 0x1c, 4, 0);
	cf8_w(&p, 3, 0, 0x10, 4, 0x3000);
	ecam_w(&p, 3, 0, 4, 2, 3);
	CHECK_EQ(map_calls, 3);
	CHECK_EQ(mmio_read(&p, 0xD0000020, 4), 0x3020);
	CHECK(!io_bus_access(p.mmio, 0xC0000010, 4, false, b));
	CHECK(io_bus_access(p.pio, 0x3000, 1, false, b));
	CHECK_EQ(b[0], 0x00);
	/* Read-only bits stay. */
	cf8_w(&p, 3, 0, 0, 4, 0);
	CHECK_EQ(cf8(&p, 3, 0, 0, 4), 0x10411af4);

	/* Capabilities: MSI at 0x40, then MSI-X. */
	CHECK_EQ(cf8(&p, 3, 0, 6, 2) & 0x10, 0x10);
	unsigned cap = cf8(&p, 3, 0, 0x34, 1);
	CHECK_EQ(cap, 0x40);
	CHECK_EQ(cf8(&p, 3, 0, cap, 1), PCI_CAP_ID_MSI);
	unsigned xcap = cf8(&p, 3, 0, cap + 1, 1);
	CHECK_EQ(cf8(&p, 3, 0, xcap, 1), PCI_CAP_ID_MSIX);
	CHECK_EQ(cf8(&p, 3, 0, xcap + 1, 1), 0);
	CHECK_EQ(cf8(&p, 3, 0, xcap + 2, 2), 2); /* 3 vectors */
	CHECK_EQ(cf8(&p, 3, 0, xcap + 4, 4), 1); /* table in BAR1 at 0 */
	CHECK_EQ(cf8(&p, 3, 0, xcap + 8, 4), 0x801);

	/* MSI-X: masked vectors are held pending (PBA), fired on unmask. */
	uint64_t t = 0xC0004000;
	mmio_write(&p, t + 16, 4, 0xFEE01000);
	mmio_write(&p, t + 20, 4, 0);
	mmio_write(&p, t + 24, 4, 0x4041);
	CHECK_EQ(mmio_read(&p, t + 28, 4), 1); /* masked at reset */
	pci_msix_notify(d, 1);
	CHECK_EQ(msi_count, 0); /* MSI-X not enabled: dropped */
	cf8_w(&p, 3, 0, xcap + 2, 2, PCI_MSIX_FLAGS_ENABLE);
	CHECK(pci_msix_enabled(d));
	pci_msix_notify(d, 1);
	CHECK_EQ(msi_count, 0);
	CHECK_EQ(mmio_read(&p, t + 0x800, 8), 2); /* pending bit 1 */
	mmio_write(&p, t + 28, 4, 0);
	CHECK_EQ(msi_count, 1);
	CHECK_EQ(msi_addr, 0xFEE01000);
	CHECK_EQ(msi_data, 0x4041);
	CHECK_EQ(mmio_read(&p, t + 0x800, 8), 0);
	pci_msix_notify(d, 1);
	CHECK_EQ(msi_count, 2);
	pci_msix_notify(d, 7); /* out of range: ignored */
	pci_msix_notify(d, PCI_NO_VECTOR);
	CHECK_EQ(msi_count, 2);
	/* Function mask. */
	cf8_w(&p, 3, 0, xcap + 2, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	pci_msix_notify(d, 1);
	CHECK_EQ(msi_count, 2);
	cf8_w(&p, 3, 0, xcap + 2, 2, PCI_MSIX_FLAGS_ENABLE);
	CHECK_EQ(msi_count, 3);
	/* Only the mask bit of the control word is writable. */
	mmio_write(&p, t + 28, 4, 0xFFFFFFFF);
	CHECK_EQ(mmio_read(&p, t + 28, 4), 1);
	/* The PBA is read-only. */
	mmio_write(&p, t + 0x800, 8, ~0ULL);
	CHECK_EQ(mmio_read(&p, t + 0x800, 8), 0);

	/* MSI. */
	cf8_w(&p, 3, 0, xcap + 2, 2, 0);
	cf8_w(&p, 3, 0, cap + 4, 4, 0xFEE00000);
	cf8_w(&p, 3, 0, cap + 8, 4, 0);
	cf8_w(&p, 3, 0, cap + 12, 2, 0x0031);
	cf8_w(&p, 3, 0, cap + 16, 4, 1); /* masked */
	cf8_w(&p, 3, 0, cap + 2, 2, PCI_MSI_FLAGS_ENABLE);
	CHECK(pci_msi_enabled(d));
	pci_msi_notify(d);
	CHECK_EQ(msi_count, 3);
	CHECK_EQ(cf8(&p, 3, 0, cap + 20, 4), 0); /* refreshed on config writes only */
	cf8_w(&p, 3, 0, cap + 16, 4, 0);
	CHECK_EQ(msi_count, 4);
	CHECK_EQ(msi_data, 0x31);
	CHECK_EQ(cf8(&p, 3, 0, cap + 2, 2) & 0x181, 0x181);

	/* INTx: two functions on one line; INTx disable; status bit. */
	pci_intx_set(d, true);
	CHECK_EQ(irq_level[19], 1);
	CHECK_EQ(cf8(&p, 3, 0, 6, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
	pci_intx_set(d2, true);
	pci_intx_set(d, false);
	CHECK_EQ(irq_level[19], 1);
	pci_intx_set(d2, false);
	CHECK_EQ(irq_level[19], 0);
	pci_intx_set(d, true);
	CHECK_EQ(irq_level[19], 1);
	cf8_w(&p, 3, 0, 4, 2, 3 | PCI_COMMAND_INTX_DISABLE);
	CHECK_EQ(irq_level[19], 0);
	CHECK_EQ(cf8(&p, 3, 0, 6, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
	cf8_w(&p, 3, 0, 4, 2, 3);
	CHECK_EQ(irq_level[19], 1);
	pci_intx_set(d, false);
	CHECK_EQ(irq_level[19], 0);

	/* Issue 9, defect 1: a guest flipping COMMAND.MEM/IO in a loop maps
	 * and unmaps the BARs each time; host memory must stay flat (before:
	 * 200k toggles added 406 MB in khyve). */
	size_t before = unit_heap_bytes();
	for (int i = 0; i < 200000; i++)
		cf8_w(&p, 3, 0, 4, 2, i & 1 ? 3 : 0);
	size_t after = unit_heap_bytes();
	CHECK(after < before + (1u << 20));
	/* Kept: only the tables replaced during the last config write (its
	 * own dispatch may still hold them): one per BAR at most. */
	CHECK(io_bus_retained_tables(p.mmio) <= 3);
	CHECK(io_bus_retained_tables(p.pio) <= 3);
	CHECK_EQ(mmio_read(&p, 0xD0000020, 4), 0x3020); /* decoding on again */

	/* A function without function 0 is refused. */
	struct pci_bus *bus2;
	pci_bus_destroy(bus);
	CHECK_EQ(pci_bus_create(&p, &bus2), 0);
	CHECK_EQ(pci_dev_create(bus2, 5, 1, "orphan", 1, 1, 0, 0, NULL, NULL, &d), 0);
	CHECK(pci_bus_finish(bus2, routes, 8, err, sizeof(err)) < 0);
	CHECK(strstr(err, "no function 0") != NULL);
	pci_bus_destroy(bus2);
	/* Everything was released from the buses. */
	CHECK(!io_bus_access(p.pio, 0xCF8, 4, false, b));
	CHECK(!io_bus_access(p.mmio, PCI_ECAM_BASE, 4, false, b));

	io_bus_destroy(p.pio);
	io_bus_destroy(p.mmio);
	guest_mem_destroy(&gm);
	return UNIT_RESULT();
}
