/* A keyboard controller with nothing behind it. Commands that answer put
 * their byte in the output buffer (status bit 0) for the next read of port
 * 0x60. A byte for the keyboard or the mouse gets what a real controller
 * with an empty port gives: 0xFE with the timeout bit, at once, with the
 * port's interrupt. Dropping it instead leaves Linux's atkbd waiting out its
 * ACK timeouts (~0.9 s, which a poweroff then waits for), and the AUX
 * loopback and interface tests each spinning 0.5 s in i8042_init. */
#include "dev/i8042.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define STS_OBF 0x01      /* output buffer full */
#define STS_SYS 0x04      /* system flag: self test passed */
#define STS_CMD 0x08      /* last write was to the command port */
#define STS_UNLOCKED 0x10 /* keyboard not inhibited */
#define STS_AUXDATA 0x20  /* the output buffer's byte is the mouse's */
#define STS_TIMEOUT 0x40  /* the device did not answer */

#define CB_KBD_INT 0x01
#define CB_AUX_INT 0x02
#define CB_SYS 0x04
#define CB_KBD_DISABLE 0x10
#define CB_AUX_DISABLE 0x20
#define CB_XLATE 0x40

#define OUTPORT_RESET 0x01 /* active low: clear pulls reset */
#define OUTPORT_A20 0x02

#define PS2_NO_DEVICE 0xFE

#define KBD_IRQ 1
#define AUX_IRQ 12

struct i8042 {
	struct platform *p;
	pthread_mutex_t lock;
	uint8_t cmd_byte;
	uint8_t outport;
	uint8_t pending; /* command waiting for its data byte, or 0 */
	uint8_t obuf;
	uint8_t obuf_status; /* STS_AUXDATA, STS_TIMEOUT with the byte */
	bool obf;
	bool last_was_cmd;
	int irq_raised; /* the line up for the byte waiting, or -1 */
};

static void lower_irq(struct i8042 *k)
{
	if (k->irq_raised >= 0)
		platform_set_irq(k->p, (unsigned)k->irq_raised, false);
	k->irq_raised = -1;
}

/* A byte in the output buffer; from a port (not a controller command's
 * answer) it raises that port's interrupt if the command byte enables it. */
static void put_byte(struct i8042 *k, uint8_t v, uint8_t status, bool from_port)
{
	lower_irq(k);
	k->obuf = v;
	k->obuf_status = status;
	k->obf = true;
	if (!from_port)
		return;
	bool aux = status & STS_AUXDATA;
	if (k->cmd_byte & (aux ? CB_AUX_INT : CB_KBD_INT)) {
		k->irq_raised = aux ? AUX_IRQ : KBD_IRQ;
		platform_set_irq(k->p, (unsigned)k->irq_raised, true);
	}
}

static void reply(struct i8042 *k, uint8_t v) { put_byte(k, v, 0, false); }

static void reset_vm(struct i8042 *k)
{
	platform_request_exit(k->p, VM_EXIT_REBOOT, "reset through the keyboard controller");
}

static void command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case 0x20: /* read command byte */
		reply(k, k->cmd_byte);
		break;
	case 0x60: /* write command byte */
	case 0xD1: /* write output port */
	case 0xD2: /* write keyboard output buffer */
	case 0xD3: /* write mouse output buffer (the loopback test) */
	case 0xD4: /* write to the mouse */
		k->pending = cmd;
		break;
	case 0xA9: /* mouse interface test: the lines are fine, nothing is on them */
		reply(k, 0x00);
		break;
	case 0xA7:
		k->cmd_byte |= CB_AUX_DISABLE;
		break;
	case 0xA8:
		k->cmd_byte &= ~CB_AUX_DISABLE;
		break;
	case 0xAA: /* self test */
		k->cmd_byte |= CB_SYS;
		reply(k, 0x55);
		break;
	case 0xAB: /* keyboard interface test */
		reply(k, 0x00);
		break;
	case 0xAD:
		k->cmd_byte |= CB_KBD_DISABLE;
		break;
	case 0xAE:
		k->cmd_byte &= ~CB_KBD_DISABLE;
		break;
	case 0xD0: /* read output port */
		reply(k, k->outport);
		break;
	default:
		/* 0xF0-0xFF pulse output port lines low for a moment; bit 0
		 * of the command selects the reset line (active low). */
		if ((cmd & 0xF0) == 0xF0 && !(cmd & 0x01))
			reset_vm(k);
		break;
	}
}

static void data_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending;
	k->pending = 0;
	switch (cmd) {
	case 0x60:
		k->cmd_byte = v;
		break;
	case 0xD1:
		k->outport = v;
		if (!(v & OUTPORT_RESET))
			reset_vm(k);
		break;
	case 0xD2:
		put_byte(k, v, 0, true);
		break;
	case 0xD3:
		put_byte(k, v, STS_AUXDATA, true);
		break;
	case 0xD4:
		put_byte(k, PS2_NO_DEVICE, STS_AUXDATA | STS_TIMEOUT, true);
		break;
	default: /* for the keyboard, which is not there */
		if (!(k->cmd_byte & CB_KBD_DISABLE))
			put_byte(k, PS2_NO_DEVICE, STS_TIMEOUT, true);
		break;
	}
}

static uint64_t i8042_read(void *opaque, uint64_t offset, unsigned size)
{
	struct i8042 *k = opaque;
	(void)offset;
	(void)size;
	pthread_mutex_lock(&k->lock);
	uint8_t v = k->obuf; /* stale when empty, as on hardware */
	k->obf = false;
	k->obuf_status = 0;
	lower_irq(k);
	pthread_mutex_unlock(&k->lock);
	return v;
}

static uint64_t i8042_status(void *opaque, uint64_t offset, unsigned size)
{
	struct i8042 *k = opaque;
	(void)offset;
	(void)size;
	pthread_mutex_lock(&k->lock);
	uint8_t v = STS_UNLOCKED | ((k->cmd_byte & CB_SYS) ? STS_SYS : 0) |
		    (k->obf ? STS_OBF | k->obuf_status : 0) | (k->last_was_cmd ? STS_CMD : 0);
	pthread_mutex_unlock(&k->lock);
	return v;
}

static void i8042_data_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct i8042 *k = opaque;
	(void)offset;
	(void)size;
	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = false;
	data_write(k, (uint8_t)value);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_cmd_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct i8042 *k = opaque;
	(void)offset;
	(void)size;
	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = true;
	k->pending = 0;
	command(k, (uint8_t)value);
	pthread_mutex_unlock(&k->lock);
}

static const struct io_ops data_ops = { .read = i8042_read, .write = i8042_data_write };
static const struct io_ops cmd_ops = { .read = i8042_status, .write = i8042_cmd_write };

int i8042_create(struct platform *p, struct i8042 **out)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->p = p;
	k->irq_raised = -1;
	pthread_mutex_init(&k->lock, NULL);
	/* As firmware leaves it: system flag set, translation on, keyboard
	 * interrupt enabled (raised only for the answers of absent devices). */
	k->cmd_byte = CB_KBD_INT | CB_SYS | CB_XLATE;
	k->outport = OUTPORT_RESET | OUTPORT_A20;
	int r = io_bus_register(p->pio, I8042_DATA_PORT, 1, &data_ops, k, "i8042");
	if (r == 0) {
		r = io_bus_register(p->pio, I8042_CMD_PORT, 1, &cmd_ops, k, "i8042");
		if (r < 0)
			io_bus_unregister(p->pio, I8042_DATA_PORT);
	}
	if (r < 0) {
		pthread_mutex_destroy(&k->lock);
		free(k);
		return r;
	}
	*out = k;
	return 0;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	io_bus_unregister(k->p->pio, I8042_DATA_PORT);
	io_bus_unregister(k->p->pio, I8042_CMD_PORT);
	pthread_mutex_destroy(&k->lock);
	free(k);
}
