#include "fake_platform.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bus/io_bus.h"
#include "util/evloop.h"

static struct fake_platform *fake_of(struct platform *p)
{
	return (struct fake_platform *)p; /* p is the first member */
}

static void fake_set_irq(struct platform *p, unsigned gsi, bool level)
{
	struct fake_platform *f = fake_of(p);
	if (gsi >= FAKE_MAX_GSI) {
		f->irq_bad_gsi++;
		return;
	}
	f->irq_sets[gsi]++;
	if (level && !f->irq_level[gsi])
		f->irq_raises[gsi]++;
	f->irq_level[gsi] = level;
}

static void fake_request_exit(struct platform *p, int status, const char *reason)
{
	struct fake_platform *f = fake_of(p);
	if (f->exit_status >= 0)
		return; /* the first request wins */
	f->exit_status = status;
	snprintf(f->exit_reason, sizeof(f->exit_reason), "%s", reason ? reason : "");
}

static void fake_signal_msi(struct platform *p, uint64_t addr, uint32_t data)
{
	struct fake_platform *f = fake_of(p);
	f->msi_count++;
	f->last_msi_addr = addr;
	f->last_msi_data = data;
}

int fake_platform_init(struct fake_platform *f, uint64_t ram_bytes)
{
	memset(f, 0, sizeof(*f));
	f->exit_status = -1;
	if (ram_bytes < GUEST_MEM_MIN)
		ram_bytes = GUEST_MEM_MIN;
	int r = guest_mem_create(&f->mem, ram_bytes);
	if (r < 0)
		return r;
	f->p.mem = &f->mem;
	f->p.pio = io_bus_create("pio");
	f->p.mmio = io_bus_create("mmio");
	f->p.loop = evloop_create();
	if (!f->p.pio || !f->p.mmio || !f->p.loop) {
		fake_platform_fini(f);
		return -ENOMEM;
	}
	f->p.vm_name = "fake";
	f->p.ncpus = f->p.max_cpus = 1;
	f->p.set_irq = fake_set_irq;
	f->p.request_exit = fake_request_exit;
	f->p.signal_msi = fake_signal_msi;
	return 0;
}

void fake_platform_fini(struct fake_platform *f)
{
	if (f->p.loop)
		evloop_destroy(f->p.loop);
	if (f->p.pio)
		io_bus_destroy(f->p.pio);
	if (f->p.mmio)
		io_bus_destroy(f->p.mmio);
	if (f->mem.host)
		guest_mem_destroy(&f->mem);
	memset(&f->p, 0, sizeof(f->p));
}

void fake_platform_clear_records(struct fake_platform *f)
{
	memset(f->irq_level, 0, sizeof(f->irq_level));
	memset(f->irq_raises, 0, sizeof(f->irq_raises));
	memset(f->irq_sets, 0, sizeof(f->irq_sets));
	f->irq_bad_gsi = 0;
	f->msi_count = 0;
	f->last_msi_addr = 0;
	f->last_msi_data = 0;
	f->exit_status = -1;
	f->exit_reason[0] = 0;
}

int fake_platform_renew_buses(struct fake_platform *f)
{
	io_bus_destroy(f->p.pio);
	io_bus_destroy(f->p.mmio);
	f->p.pio = io_bus_create("pio");
	f->p.mmio = io_bus_create("mmio");
	return f->p.pio && f->p.mmio ? 0 : -ENOMEM;
}

static uint64_t ones(unsigned size)
{
	return size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

static uint64_t bus_read(struct io_bus *bus, uint64_t addr, unsigned size)
{
	uint8_t data[8] = { 0 };
	if (!io_bus_access(bus, addr, size, false, data))
		return ones(size);
	uint64_t v;
	memcpy(&v, data, sizeof(v));
	return v & ones(size);
}

static void bus_write(struct io_bus *bus, uint64_t addr, unsigned size, uint64_t value)
{
	uint8_t data[8];
	memcpy(data, &value, sizeof(data));
	io_bus_access(bus, addr, size, true, data);
}

uint64_t fake_pio_read(struct fake_platform *f, uint64_t port, unsigned size)
{
	return bus_read(f->p.pio, port, size);
}

void fake_pio_write(struct fake_platform *f, uint64_t port, unsigned size, uint64_t value)
{
	bus_write(f->p.pio, port, size, value);
}

uint64_t fake_mmio_read(struct fake_platform *f, uint64_t addr, unsigned size)
{
	return bus_read(f->p.mmio, addr, size);
}

void fake_mmio_write(struct fake_platform *f, uint64_t addr, unsigned size, uint64_t value)
{
	bus_write(f->p.mmio, addr, size, value);
}

int fake_loop_poll(struct fake_platform *f)
{
	return evloop_run_once(f->p.loop, 0);
}
