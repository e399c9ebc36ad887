/* The fake platform itself: what unit tests and fuzz harnesses rely on. */
#include "fake_platform.h"
#include "unit.h"

static uint64_t echo_rd(void *opaque, uint64_t off, unsigned size)
{
	(void)opaque;
	(void)size;
	return 0x40 + off;
}
static const struct io_ops echo_ops = { echo_rd, NULL };

int main(void)
{
	struct fake_platform f;
	CHECK_EQ(fake_platform_init(&f, 0), 0);
	CHECK_EQ(fake_pio_read(&f, 0x3f8, 1), 0xff);
	CHECK_EQ(fake_mmio_read(&f, 0xfe000000, 4), 0xffffffff);
	CHECK_EQ(io_bus_register(f.p.pio, 0x510, 4, &echo_ops, NULL, "echo"), 0);
	CHECK_EQ(fake_pio_read(&f, 0x512, 1), 0x42);
	platform_set_irq(&f.p, 4, true);
	platform_set_irq(&f.p, 4, true);
	platform_set_irq(&f.p, 4, false);
	CHECK_EQ(f.irq_raises[4], 1);
	CHECK_EQ(f.irq_level[4], 0);
	f.p.request_exit(&f.p, 1, "poweroff");
	f.p.request_exit(&f.p, 0, "reboot");
	CHECK_EQ(f.exit_status, 1);
	CHECK_EQ(fake_loop_poll(&f), 0);
	CHECK(guest_mem_write_u32(&f.mem, 0x1000, 7) == 0);
	fake_platform_fini(&f);
	return UNIT_RESULT();
}
