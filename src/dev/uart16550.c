/* A 16550A UART.
 *
 * Transmission is instantaneous: THR and the transmitter are always empty
 * (LSR.THRE|TEMT), and each THR write re-arms the THRE interrupt, as does
 * setting IER.ETBEI (the edge Linux's 8250 driver probes for). Reading IIR
 * while it reports THRE clears that indication.
 *
 * The receive FIFO holds 16 bytes (1 with the FIFO disabled). In FIFO mode
 * data at or above the trigger level reports "received data available"
 * and data below it reports "character timeout" at once (no 4-character
 * delay), which drivers treat alike.
 *
 * The interrupt output follows IIR: asserted while an enabled condition is
 * pending and MCR.OUT2 is set, as the PC's gate on OUT2 does. */
#include "dev/uart16550.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "backend/chardev.h"

/* Register offsets. */
#define REG_DATA 0 /* RBR (read), THR (write); DLL with DLAB */
#define REG_IER 1  /* DLM with DLAB */
#define REG_IIR 2  /* IIR (read), FCR (write) */
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCR 7

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI 0x04  /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */

#define IIR_NOPEND 0x01
#define IIR_MSR 0x00
#define IIR_THRE 0x02
#define IIR_RXDATA 0x04
#define IIR_RLS 0x06
#define IIR_RXTOUT 0x0C
#define IIR_FIFO_BITS 0xC0

#define FCR_ENABLE 0x01
#define FCR_RX_CLEAR 0x02
#define FCR_TX_CLEAR 0x04
#define FCR_DMA 0x08
#define FCR_TRIGGER 0xC0

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1F

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_PE 0x04
#define LSR_FE 0x08
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
#define MSR_DELTAS 0x0F

#define FIFO_SIZE 16

struct uart16550 {
	struct platform *p;
	struct chardev *chr;
	uint16_t base;
	unsigned irq;

	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	uint8_t fcr;        /* FCR_ENABLE, FCR_DMA, FCR_TRIGGER as last written */
	uint8_t lsr_errors; /* OE/PE/FE/BI, cleared by reading LSR */
	uint8_t msr;
	bool thre_pending;  /* THRE interrupt indication */
	uint8_t fifo[FIFO_SIZE];
	unsigned head, count;
	bool irq_level;     /* what we last told the platform */
	bool input_blocked; /* told the backend we had no room */
};

static bool fifo_enabled(const struct uart16550 *u)
{
	return u->fcr & FCR_ENABLE;
}

static unsigned rx_capacity(const struct uart16550 *u)
{
	return fifo_enabled(u) ? FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct uart16550 *u)
{
	static const unsigned levels[4] = { 1, 4, 8, 14 };
	return levels[u->fcr >> 6];
}

static void rx_clear(struct uart16550 *u)
{
	u->head = 0;
	u->count = 0;
}

/* Returns false (and flags an overrun) when the FIFO is full. */
static bool rx_push(struct uart16550 *u, uint8_t b)
{
	if (u->count >= rx_capacity(u)) {
		u->lsr_errors |= LSR_OE;
		return false;
	}
	u->fifo[(u->head + u->count) % FIFO_SIZE] = b;
	u->count++;
	return true;
}

static uint8_t rx_pop(struct uart16550 *u)
{
	if (!u->count)
		return 0;
	uint8_t b = u->fifo[u->head];
	u->head = (u->head + 1) % FIFO_SIZE;
	u->count--;
	return b;
}

static size_t rx_room(const struct uart16550 *u)
{
	if (u->mcr & MCR_LOOP)
		return 0; /* the receiver hears only the transmitter */
	unsigned cap = rx_capacity(u);
	return u->count < cap ? cap - u->count : 0;
}

static uint8_t intr_id(const struct uart16550 *u)
{
	if ((u->ier & IER_ELSI) && (u->lsr_errors & LSR_ERRORS))
		return IIR_RLS;
	if ((u->ier & IER_ERBFI) && u->count) {
		if (fifo_enabled(u) && u->count < rx_trigger(u))
			return IIR_RXTOUT;
		return IIR_RXDATA;
	}
	if ((u->ier & IER_ETBEI) && u->thre_pending)
		return IIR_THRE;
	if ((u->ier & IER_EDSSI) && (u->msr & MSR_DELTAS))
		return IIR_MSR;
	return IIR_NOPEND;
}

static void update_irq(struct uart16550 *u)
{
	bool level = intr_id(u) != IIR_NOPEND && (u->mcr & MCR_OUT2);
	if (level != u->irq_level) {
		u->irq_level = level;
		platform_set_irq(u->p, u->irq, level);
	}
}

/* After anything that may free receive space: true when the backend must
 * be told (do it after unlocking). */
static bool need_resume(struct uart16550 *u)
{
	if (u->input_blocked && rx_room(u) > 0) {
		u->input_blocked = false;
		return true;
	}
	return false;
}

/* The modem status inputs: in loopback the modem control outputs, else a
 * connected, ready line. Changes latch the delta bits. */
static void update_msr(struct uart16550 *u)
{
	uint8_t in;
	if (u->mcr & MCR_LOOP) {
		in = 0;
		if (u->mcr & MCR_DTR)
			in |= MSR_DSR;
		if (u->mcr & MCR_RTS)
			in |= MSR_CTS;
		if (u->mcr & MCR_OUT1)
			in |= MSR_RI;
		if (u->mcr & MCR_OUT2)
			in |= MSR_DCD;
	} else {
		in = MSR_CTS | MSR_DSR | MSR_DCD;
	}
	uint8_t old = u->msr & 0xF0, changed = old ^ in;
	uint8_t delta = u->msr & MSR_DELTAS;
	if (changed & MSR_CTS)
		delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(in & MSR_RI))
		delta |= MSR_TERI; /* trailing edge only */
	if (changed & MSR_DCD)
		delta |= MSR_DDCD;
	u->msr = in | delta;
}

static uint64_t uart_read(void *opaque, uint64_t offset, unsigned size)
{
	struct uart16550 *u = opaque;
	uint8_t v = 0xFF;
	bool resume = false;
	(void)size;

	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case REG_DATA:
		if (u->lcr & LCR_DLAB) {
			v = u->dll;
		} else {
			v = rx_pop(u);
			resume = need_resume(u);
		}
		break;
	case REG_IER:
		v = (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
		break;
	case REG_IIR:
		v = intr_id(u);
		if (v == IIR_THRE)
			u->thre_pending = false;
		if (fifo_enabled(u))
			v |= IIR_FIFO_BITS;
		break;
	case REG_LCR:
		v = u->lcr;
		break;
	case REG_MCR:
		v = u->mcr;
		break;
	case REG_LSR:
		v = u->lsr_errors | LSR_THRE | LSR_TEMT | (u->count ? LSR_DR : 0);
		u->lsr_errors = 0;
		break;
	case REG_MSR:
		v = u->msr;
		u->msr &= ~MSR_DELTAS;
		break;
	case REG_SCR:
		v = u->scr;
		break;
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	if (resume)
		chardev_resume_input(u->chr);
	return v;
}

static void uart_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct uart16550 *u = opaque;
	uint8_t v = (uint8_t)value;
	bool resume = false, transmit = false;
	(void)size;

	pthread_mutex_lock(&u->lock);
	switch (offset) {
	case REG_DATA:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
			break;
		}
		if (u->mcr & MCR_LOOP)
			rx_push(u, v);
		else
			transmit = true;
		u->thre_pending = true; /* sent at once: THR is empty again */
		break;
	case REG_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		if (!(u->ier & IER_ETBEI) && (v & IER_ETBEI))
			u->thre_pending = true; /* THR is always empty */
		u->ier = v & 0x0F;
		break;
	case REG_IIR: { /* FCR */
		bool was = fifo_enabled(u);
		if (!(v & FCR_ENABLE)) {
			u->fcr = 0;
			if (was)
				rx_clear(u);
			break;
		}
		if (!was || (v & FCR_RX_CLEAR))
			rx_clear(u);
		/* FCR_TX_CLEAR: the transmitter is always empty. */
		u->fcr = v & (FCR_ENABLE | FCR_DMA | FCR_TRIGGER);
		break;
	}
	case REG_LCR:
		u->lcr = v;
		break;
	case REG_MCR:
		u->mcr = v & MCR_MASK;
		update_msr(u);
		break;
	case REG_LSR:
	case REG_MSR:
		break; /* factory test registers: ignored */
	case REG_SCR:
		u->scr = v;
		break;
	}
	resume = need_resume(u);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	/* Outside the lock: a slow console must not stall the event loop's
	 * delivery of input to this UART. */
	if (transmit && u->chr)
		chardev_write(u->chr, &v, 1);
	if (resume)
		chardev_resume_input(u->chr);
}

static size_t uart_can_receive(void *opaque)
{
	struct uart16550 *u = opaque;
	pthread_mutex_lock(&u->lock);
	size_t room = rx_room(u);
	if (!room)
		u->input_blocked = true;
	pthread_mutex_unlock(&u->lock);
	return room;
}

static void uart_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct uart16550 *u = opaque;
	pthread_mutex_lock(&u->lock);
	if (!(u->mcr & MCR_LOOP)) {
		for (size_t i = 0; i < len; i++)
			if (!rx_push(u, buf[i]))
				break;
	}
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static const struct io_ops uart_ops = {
	.read = uart_read,
	.write = uart_write,
};

int uart16550_create(struct platform *p, uint16_t port_base, unsigned irq,
		     struct chardev *backend, struct uart16550 **out)
{
	struct uart16550 *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->p = p;
	u->chr = backend;
	u->base = port_base;
	u->irq = irq;
	pthread_mutex_init(&u->lock, NULL);
	u->dll = 1; /* 115200 baud */
	u->lcr = 0x03; /* 8N1 */
	update_msr(u);
	u->msr &= ~MSR_DELTAS;
	int r = io_bus_register(p->pio, port_base, 8, &uart_ops, u, "uart16550");
	if (r < 0) {
		pthread_mutex_destroy(&u->lock);
		free(u);
		return r;
	}
	if (backend) {
		struct chardev_receiver rx = {
			.can_receive = uart_can_receive,
			.receive = uart_receive,
			.opaque = u,
		};
		chardev_set_receiver(backend, &rx);
	}
	*out = u;
	return 0;
}

void uart16550_destroy(struct uart16550 *u)
{
	if (!u)
		return;
	if (u->chr)
		chardev_set_receiver(u->chr, NULL);
	io_bus_unregister(u->p->pio, u->base);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
