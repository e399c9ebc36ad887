/* The keyboard controller with empty ports: what Linux's i8042 and atkbd
 * drivers ask at boot must be answered at once (a byte for an absent
 * keyboard or mouse: 0xFE with the timeout bit and the port's interrupt;
 * the AUX loopback echoes), never left to time out. */
#include <stdatomic.h>
#include <string.h>

#include "../unit/unit.h"
#include "port_io.h"
#include "dev/i8042.h"
#include "dev/platform.h"

#define DATA 0x60
#define CMD 0x64
#define OBF 0x01
#define AUXDATA 0x20
#define TIMEOUT 0x40

static atomic_int irq_level[24];
static atomic_int irq_raises[24];
static atomic_int exits;

static void rec_set_irq(struct platform *p, unsigned gsi, bool level)
{
	(void)p;
	if (gsi < 24) {
		if (level && !atomic_load(&irq_level[gsi]))
			atomic_fetch_add(&irq_raises[gsi], 1);
		atomic_store(&irq_level[gsi], level);
	}
}

static void rec_request_exit(struct platform *p, int status, const char *reason)
{
	(void)p;
	(void)status;
	(void)reason;
	atomic_fetch_add(&exits, 1);
}


static void test_controller_commands(void)
{
	outb(CMD, 0xAA); /* self test */
	CHECK_EQ(inb(CMD) & (OBF | TIMEOUT), OBF);
	CHECK_EQ(inb(DATA), 0x55);
	CHECK_EQ(inb(CMD) & OBF, 0);
	outb(CMD, 0x20); /* the command byte: an answer, no interrupt */
	CHECK_EQ(inb(DATA), 0x45);
	CHECK_EQ(atomic_load(&irq_raises[1]), 0);
	outb(CMD, 0xA9); /* mouse interface test: lines fine */
	CHECK_EQ(inb(DATA), 0x00);
}

static void test_absent_keyboard(void)
{
	outb(DATA, 0xF2); /* atkbd's GET ID */
	CHECK_EQ(inb(CMD) & (OBF | AUXDATA | TIMEOUT), OBF | TIMEOUT);
	CHECK_EQ(atomic_load(&irq_level[1]), 1);
	CHECK_EQ(inb(DATA), 0xFE);
	CHECK_EQ(atomic_load(&irq_level[1]), 0);
	CHECK_EQ(inb(CMD) & (OBF | TIMEOUT), 0);
	/* A disabled keyboard interface passes nothing on. */
	outb(CMD, 0xAD);
	outb(DATA, 0xED);
	CHECK_EQ(inb(CMD) & OBF, 0);
	outb(CMD, 0xAE);
	/* Without the keyboard interrupt enabled, the answer waits to be polled. */
	int before = atomic_load(&irq_raises[1]);
	outb(CMD, 0x60);
	outb(DATA, 0x44); /* SYS | XLATE, no KBD_INT */
	outb(DATA, 0xFF);
	CHECK_EQ(inb(CMD) & (OBF | TIMEOUT), OBF | TIMEOUT);
	CHECK_EQ(atomic_load(&irq_raises[1]), before);
	CHECK_EQ(inb(DATA), 0xFE);
}

static void test_absent_mouse(void)
{
	outb(CMD, 0x60);
	outb(DATA, 0x47); /* KBD_INT | AUX_INT | SYS | XLATE */
	outb(CMD, 0xD3); /* loopback: the byte comes back as the mouse's */
	outb(DATA, 0x5A);
	CHECK_EQ(inb(CMD) & (OBF | AUXDATA | TIMEOUT), OBF | AUXDATA);
	CHECK_EQ(atomic_load(&irq_level[12]), 1);
	CHECK_EQ(inb(DATA), 0x5A);
	CHECK_EQ(atomic_load(&irq_level[12]), 0);
	outb(CMD, 0xD4); /* a byte for the mouse */
	outb(DATA, 0xF2);
	CHECK_EQ(inb(CMD) & (OBF | AUXDATA | TIMEOUT), OBF | AUXDATA | TIMEOUT);
	CHECK_EQ(inb(DATA), 0xFE);
	outb(CMD, 0xD2); /* the keyboard's buffer, written by the host side */
	outb(DATA, 0x1C);
	CHECK_EQ(inb(CMD) & (OBF | AUXDATA), OBF);
	CHECK_EQ(atomic_load(&irq_level[1]), 1);
	CHECK_EQ(inb(DATA), 0x1C);
	CHECK_EQ(atomic_load(&irq_level[1]), 0);
	CHECK_EQ(atomic_load(&exits), 0);
}

static void test_reset_line(void)
{
	outb(CMD, 0xFE);
	CHECK_EQ(atomic_load(&exits), 1);
}

int main(void)
{
	pio = io_bus_create("pio");
	struct platform p = {
		.pio = pio,
		.ncpus = 1,
		.max_cpus = 1,
		.set_irq = rec_set_irq,
		.request_exit = rec_request_exit,
	};
	struct i8042 *k = NULL;
	CHECK_EQ(i8042_create(&p, &k), 0);
	test_controller_commands();
	test_absent_keyboard();
	test_absent_mouse();
	test_reset_line();
	i8042_destroy(k);
	io_bus_destroy(pio);
	return UNIT_RESULT();
}
