/* The 16550A as Linux's 8250 driver sees it, and the character backends
 * behind it (an "fd=R,W" backend over pipes, the event loop in a thread). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../unit/unit.h"
#include "port_io.h"
#include "backend/chardev.h"
#include "dev/platform.h"
#include "dev/uart16550.h"
#include "util/evloop.h"

#define COM1 0x3F8
#define IRQ 4

/* Register offsets and bits, spelled as Linux's serial_reg.h does. */
#define UART_RX 0
#define UART_TX 0
#define UART_DLL 0
#define UART_IER 1
#define UART_DLM 1
#define UART_IIR 2
#define UART_FCR 2
#define UART_EFR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7
#define UART_IER_RDI 0x01
#define UART_IER_THRI 0x02
#define UART_IER_RLSI 0x04
#define UART_IER_MSI 0x08
#define UART_IIR_NO_INT 0x01
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_RLSI 0x06
#define UART_IIR_MSI 0x00
#define UART_IIR_TOUT 0x0C
#define UART_FCR_ENABLE_FIFO 0x01
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_FCR_CLEAR_XMIT 0x04
#define UART_FCR_R_TRIG_10 0x80
#define UART_FCR_R_TRIG_11 0xC0
#define UART_FCR7_64BYTE 0x20
#define UART_LCR_DLAB 0x80
#define UART_LCR_WLEN8 0x03
#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

/* ---- a hand-built platform that records what devices do ---- */

static atomic_int irq_level[24];
static atomic_int irq_raises[24];
static atomic_int exit_status = -1;

static void rec_set_irq(struct platform *p, unsigned gsi, bool level)
{
	(void)p;
	if (gsi < 24) {
		atomic_store(&irq_level[gsi], level);
		if (level)
			atomic_fetch_add(&irq_raises[gsi], 1);
	}
}

static void rec_request_exit(struct platform *p, int status, const char *reason)
{
	(void)p;
	(void)reason;
	atomic_store(&exit_status, status);
}


static void out(unsigned reg, uint8_t v) { outb(COM1 + reg, v); }
static uint8_t in(unsigned reg) { return inb(COM1 + reg); }

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* ---- Linux's 8250 probe (autoconfig) and startup checks ---- */

static void test_linux_probe(void)
{
	/* Scratch test of IER. */
	out(UART_IER, 0);
	uint8_t scratch2 = in(UART_IER) & 0x0f;
	out(UART_IER, 0x0f);
	uint8_t scratch3 = in(UART_IER) & 0x0f;
	out(UART_IER, 0);
	CHECK_EQ(scratch2, 0);
	CHECK_EQ(scratch3, 0x0f);
	out(UART_IER, 0xff);
	CHECK_EQ(in(UART_IER), 0x0f); /* no UUE or other high bits */
	out(UART_IER, 0);

	/* Scratch register. */
	out(UART_SCR, 0xa5);
	CHECK_EQ(in(UART_SCR), 0xa5);
	out(UART_SCR, 0x5a);
	CHECK_EQ(in(UART_SCR), 0x5a);

	/* Loopback MSR test: RTS->CTS, OUT2->DCD. */
	uint8_t save_mcr = in(UART_MCR);
	out(UART_MCR, UART_MCR_LOOP | 0x0A);
	CHECK_EQ(in(UART_MSR) & 0xF0, 0x90);
	out(UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_OUT1);
	CHECK_EQ(in(UART_MSR) & 0xF0, 0x60); /* DSR, RI */
	out(UART_MCR, UART_MCR_LOOP);
	uint8_t msr = in(UART_MSR);
	CHECK_EQ(msr & 0xF0, 0);
	CHECK(msr & 0x02); /* DDSR */
	CHECK(msr & 0x04); /* TERI: RI went 1 -> 0 */
	CHECK_EQ(in(UART_MSR) & 0x0F, 0); /* deltas clear on read */
	out(UART_MCR, save_mcr);
	CHECK_EQ(in(UART_MSR) & 0xF0, 0xB0); /* CTS|DSR|DCD outside loopback */
	in(UART_MSR);

	/* FIFO detection: IIR bits 7:6 == 3 means a 16550A. */
	out(UART_LCR, 0xBF);
	out(UART_EFR, 0);
	out(UART_LCR, 0);
	out(UART_FCR, UART_FCR_ENABLE_FIFO);
	CHECK_EQ(in(UART_IIR) >> 6, 3);
	/* Reads as EFR with LCR 0xBF must not be 0 (that would be EFRv2). */
	out(UART_LCR, 0xBF);
	CHECK(in(UART_EFR) != 0);
	out(UART_LCR, 0);
	/* Not a 16750: no 64-byte FIFO bit in IIR. */
	out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR7_64BYTE);
	CHECK_EQ(in(UART_IIR) >> 5, 6);
	out(UART_FCR, 0);
	CHECK_EQ(in(UART_IIR), UART_IIR_NO_INT); /* no FIFO bits when off */
	out(UART_FCR, UART_FCR_ENABLE_FIFO);
	CHECK_EQ(in(UART_IIR), 0xC0 | UART_IIR_NO_INT);

	/* THRE interrupt when ETBEI is enabled with THR empty (the
	 * UART_BUG_THRE check in serial8250_do_startup). */
	out(UART_IER, UART_IER_THRI);
	uint8_t iir1 = in(UART_IIR);
	out(UART_IER, 0);
	out(UART_IER, UART_IER_THRI);
	uint8_t iir = in(UART_IIR);
	out(UART_IER, 0);
	CHECK_EQ(iir1 & 0x0F, UART_IIR_THRI);
	CHECK_EQ(iir & 0x0F, UART_IIR_THRI);
	/* Reading IIR cleared the THRE indication. */
	out(UART_IER, UART_IER_THRI);
	CHECK_EQ(in(UART_IIR) & 0x0F, UART_IIR_THRI);
	CHECK_EQ(in(UART_IIR) & 0x0F, UART_IIR_NO_INT);
	/* The UART_BUG_TXEN check. */
	out(UART_IER, 0);
	out(UART_IER, UART_IER_THRI);
	uint8_t lsr = in(UART_LSR);
	iir = in(UART_IIR);
	out(UART_IER, 0);
	CHECK(lsr & UART_LSR_TEMT);
	CHECK(!(iir & UART_IIR_NO_INT));
	CHECK_EQ(lsr & (UART_LSR_THRE | UART_LSR_TEMT), UART_LSR_THRE | UART_LSR_TEMT);
	CHECK(in(UART_LSR) != 0xFF); /* "LSR safety check" */
}

/* ---- divisor latch ---- */

static void test_dlab(void)
{
	out(UART_IER, UART_IER_RDI);
	out(UART_LCR, UART_LCR_DLAB | UART_LCR_WLEN8);
	out(UART_DLL, 0x0C);
	out(UART_DLM, 0x01);
	CHECK_EQ(in(UART_DLL), 0x0C);
	CHECK_EQ(in(UART_DLM), 0x01);
	CHECK_EQ(in(UART_LCR), UART_LCR_DLAB | UART_LCR_WLEN8);
	out(UART_LCR, UART_LCR_WLEN8);
	CHECK_EQ(in(UART_IER), UART_IER_RDI); /* DLM did not touch IER */
	CHECK_EQ(in(UART_LCR), UART_LCR_WLEN8);
	out(UART_LCR, UART_LCR_DLAB);
	CHECK_EQ(in(UART_DLL), 0x0C);
	out(UART_DLL, 0x01);
	out(UART_DLM, 0x00);
	out(UART_LCR, UART_LCR_WLEN8);
	out(UART_IER, 0);
}

/* ---- interrupt line and OUT2 ---- */

static void test_irq_out2(void)
{
	out(UART_IER, 0);
	out(UART_MCR, 0);
	in(UART_IIR);
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 0);

	/* Without OUT2 a pending THRE does not reach the line. */
	int raises = atomic_load(&irq_raises[IRQ]);
	out(UART_IER, UART_IER_THRI);
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 0);
	CHECK_EQ(atomic_load(&irq_raises[IRQ]), raises);
	/* Setting OUT2 lets it through. */
	out(UART_MCR, UART_MCR_OUT2 | UART_MCR_DTR | UART_MCR_RTS);
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 1);
	/* Reading IIR (THRE) acknowledges it. */
	CHECK_EQ(in(UART_IIR) & 0x0F, UART_IIR_THRI);
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 0);
	/* Each byte written raises THRE again. */
	out(UART_TX, '!');
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 1);
	out(UART_IER, 0);
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 0);
	out(UART_IER, UART_IER_THRI);
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 1);
	out(UART_MCR, UART_MCR_DTR | UART_MCR_RTS); /* OUT2 off */
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 0);
	out(UART_IER, 0);
	in(UART_IIR);

	/* Modem status interrupt (lowest priority). */
	out(UART_MCR, UART_MCR_OUT2);
	in(UART_MSR);
	out(UART_IER, UART_IER_MSI);
	CHECK_EQ(in(UART_IIR) & 0x0F, UART_IIR_NO_INT);
	out(UART_MCR, UART_MCR_OUT2 | UART_MCR_LOOP); /* DCD stays (OUT2), CTS/DSR drop */
	CHECK_EQ(in(UART_IIR) & 0x0F, UART_IIR_MSI);
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 1);
	in(UART_MSR);
	CHECK_EQ(in(UART_IIR) & 0x0F, UART_IIR_NO_INT);
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 0);
	out(UART_IER, 0);
	out(UART_MCR, 0);
	in(UART_MSR);
}

/* ---- receive FIFO in loopback: fill, trigger levels, overrun ---- */

static void test_fifo_loopback(void)
{
	out(UART_IER, 0);
	out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT |
			      UART_FCR_R_TRIG_11); /* trigger at 14 */
	out(UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2);
	in(UART_LSR);
	in(UART_MSR);
	CHECK_EQ(in(UART_LSR) & UART_LSR_DR, 0);
	out(UART_IER, UART_IER_RDI);

	for (int i = 0; i < 3; i++)
		out(UART_TX, (uint8_t)('a' + i));
	CHECK(in(UART_LSR) & UART_LSR_DR);
	CHECK_EQ(in(UART_IIR), 0xC0 | UART_IIR_TOUT); /* below the trigger */
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 1);
	for (int i = 3; i < 16; i++)
		out(UART_TX, (uint8_t)('a' + i));
	CHECK_EQ(in(UART_IIR), 0xC0 | UART_IIR_RDI);
	CHECK_EQ(in(UART_LSR) & UART_LSR_OE, 0); /* exactly full */
	out(UART_TX, 'X'); /* the 17th byte overruns */
	out(UART_IER, UART_IER_RDI | UART_IER_RLSI);
	CHECK_EQ(in(UART_IIR), 0xC0 | UART_IIR_RLSI); /* line status first */
	uint8_t lsr = in(UART_LSR);
	CHECK(lsr & UART_LSR_OE);
	CHECK(lsr & UART_LSR_DR);
	CHECK_EQ(in(UART_LSR) & UART_LSR_OE, 0); /* cleared by reading LSR */
	CHECK_EQ(in(UART_IIR), 0xC0 | UART_IIR_RDI);
	for (int i = 0; i < 16; i++)
		CHECK_EQ(in(UART_RX), 'a' + i); /* the overrunning byte was lost */
	CHECK_EQ(in(UART_LSR) & UART_LSR_DR, 0);
	CHECK_EQ(in(UART_IIR), 0xC0 | UART_IIR_NO_INT);
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 0);

	/* FCR clears the receive FIFO. */
	out(UART_TX, 'q');
	CHECK(in(UART_LSR) & UART_LSR_DR);
	out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
	CHECK_EQ(in(UART_LSR) & UART_LSR_DR, 0);

	/* 16450 mode: a one-byte holding register. */
	out(UART_FCR, 0);
	out(UART_TX, '1');
	CHECK_EQ(in(UART_IIR), UART_IIR_RDI);
	out(UART_TX, '2');
	lsr = in(UART_LSR);
	CHECK(lsr & UART_LSR_OE);
	CHECK_EQ(in(UART_RX), '1');
	CHECK_EQ(in(UART_LSR) & UART_LSR_DR, 0);

	out(UART_IER, 0);
	out(UART_MCR, 0);
	in(UART_MSR);
	out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_R_TRIG_10);
}

/* ---- the backend: TX reaches it, RX comes from it with flow control ---- */

static int tx_rd, rx_wr; /* test ends of the pipes */

static size_t read_tx(char *buf, size_t len)
{
	size_t got = 0;
	for (int tries = 0; tries < 200 && got < len; tries++) {
		ssize_t n = read(tx_rd, buf + got, len - got);
		if (n > 0)
			got += (size_t)n;
		else
			sleep_ms(5);
	}
	return got;
}

static void test_tx(void)
{
	const char *msg = "Hello, khyve\r\n";
	char buf[64] = { 0 };
	/* Earlier tests wrote a '!' to the backend. */
	CHECK_EQ(read(tx_rd, buf, sizeof(buf)), 1);
	CHECK_EQ(buf[0], '!');
	memset(buf, 0, sizeof(buf));
	out(UART_LCR, UART_LCR_WLEN8);
	for (const char *c = msg; *c; c++) {
		while (!(in(UART_LSR) & UART_LSR_THRE))
			;
		out(UART_TX, (uint8_t)*c);
	}
	CHECK_EQ(read_tx(buf, strlen(msg)), strlen(msg));
	CHECK(!strcmp(buf, msg));

	/* In loopback nothing reaches the backend. */
	out(UART_MCR, UART_MCR_LOOP);
	out(UART_TX, 'L');
	out(UART_MCR, 0);
	in(UART_MSR);
	CHECK_EQ(in(UART_RX), 'L');
	sleep_ms(20);
	CHECK(read(tx_rd, buf, 1) < 0 && errno == EAGAIN);
}

static bool wait_dr(int ms)
{
	for (int i = 0; i < ms; i++) {
		if (in(UART_LSR) & UART_LSR_DR)
			return true;
		sleep_ms(1);
	}
	return false;
}

static void test_rx(void)
{
	out(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_R_TRIG_10);
	out(UART_MCR, UART_MCR_OUT2 | UART_MCR_DTR | UART_MCR_RTS);
	out(UART_IER, UART_IER_RDI);
	in(UART_LSR);

	/* One byte: received, interrupt raised. */
	CHECK_EQ(write(rx_wr, "k", 1), 1);
	CHECK(wait_dr(2000));
	for (int i = 0; i < 500 && !atomic_load(&irq_level[IRQ]); i++)
		sleep_ms(1);
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 1);
	CHECK_EQ(in(UART_IIR) & 0x0F, UART_IIR_TOUT);
	CHECK_EQ(in(UART_RX), 'k');
	CHECK_EQ(atomic_load(&irq_level[IRQ]), 0);

	/* More than the FIFO holds: the backend pauses, nothing overruns,
	 * and draining the FIFO brings the rest. */
	char sent[40];
	for (int i = 0; i < 40; i++)
		sent[i] = (char)('A' + i);
	CHECK_EQ(write(rx_wr, sent, sizeof(sent)), (ssize_t)sizeof(sent));
	CHECK(wait_dr(2000));
	/* Let the loop fill the FIFO past the trigger (8) and pause. */
	uint8_t iir = 0;
	for (int i = 0; i < 2000 && (iir & 0x0F) != UART_IIR_RDI; i++) {
		iir = in(UART_IIR);
		if ((iir & 0x0F) != UART_IIR_RDI)
			sleep_ms(1);
	}
	CHECK_EQ(iir & 0x0F, UART_IIR_RDI);
	sleep_ms(20);
	char got[40];
	size_t n = 0;
	bool overrun = false;
	for (int idle = 0; n < sizeof(got) && idle < 2000;) {
		uint8_t lsr = in(UART_LSR);
		if (lsr & UART_LSR_OE)
			overrun = true;
		if (lsr & UART_LSR_DR) {
			got[n++] = (char)in(UART_RX);
			idle = 0;
		} else {
			sleep_ms(1);
			idle++;
		}
	}
	CHECK_EQ(n, sizeof(sent));
	CHECK(!memcmp(got, sent, sizeof(sent)));
	CHECK(!overrun);

	/* Loopback disconnects the receiver from the backend. */
	out(UART_MCR, UART_MCR_LOOP);
	CHECK_EQ(write(rx_wr, "z", 1), 1);
	sleep_ms(50);
	CHECK_EQ(in(UART_LSR) & UART_LSR_DR, 0);
	out(UART_MCR, 0);
	in(UART_MSR);
	CHECK(wait_dr(2000));
	CHECK_EQ(in(UART_RX), 'z');

	/* EOF on the input only stops input. */
	close(rx_wr);
	rx_wr = -1;
	sleep_ms(50);
	CHECK_EQ(in(UART_LSR) & UART_LSR_DR, 0);
	out(UART_IER, 0);
}

static void test_specs(struct evloop *loop)
{
	struct chardev *c;
	char err[128];
	CHECK_EQ(chardev_open("xyz", loop, &c, err, sizeof(err)), -EINVAL);
	CHECK(!strncmp(err, "unknown serial backend 'xyz' (expected stdio", 44));
	CHECK_EQ(chardev_open("fd=1", loop, &c, err, sizeof(err)), -EINVAL);
	CHECK_EQ(chardev_open("fd=a,b", loop, &c, err, sizeof(err)), -EINVAL);
	CHECK_EQ(chardev_open("stdio=x", loop, &c, err, sizeof(err)), -EINVAL);
	/* Not on a terminal: stdio would make it raw. */
	if (!isatty(STDIN_FILENO) && !isatty(STDOUT_FILENO)) {
		struct chardev *a, *b;
		CHECK_EQ(chardev_open("stdio", loop, &a, err, sizeof(err)), 0);
		CHECK_EQ(chardev_open("stdio", loop, &b, err, sizeof(err)), -EBUSY);
		CHECK(!strcmp(err, "stdio is already used by another port"));
		chardev_close(a);
		CHECK_EQ(chardev_open("stdio", loop, &a, err, sizeof(err)), 0);
		chardev_close(a);
	}
	/* A UART without a backend drops output and works otherwise. */
	struct platform p = { .pio = pio, .set_irq = rec_set_irq,
			      .request_exit = rec_request_exit };
	struct uart16550 *u;
	CHECK_EQ(uart16550_create(&p, 0x2F8, 3, NULL, &u), 0);
	outb(0x2F8 + UART_TX, 'x');
	outb(0x2F8 + UART_SCR, 0x42);
	CHECK_EQ(inb(0x2F8 + UART_SCR), 0x42);
	struct uart16550 *u2;
	CHECK_EQ(uart16550_create(&p, 0x2F8, 3, NULL, &u2), -EEXIST);
	uart16550_destroy(u);
	CHECK(io_bus_owner(pio, 0x2F8) == NULL);
}

static void *loop_thread(void *arg)
{
	evloop_run(arg);
	return NULL;
}

int main(void)
{
	pio = io_bus_create("pio");
	struct evloop *loop = evloop_create();
	CHECK(pio && loop);

	int txp[2], rxp[2];
	CHECK_EQ(pipe2(txp, O_CLOEXEC), 0);
	CHECK_EQ(pipe2(rxp, O_CLOEXEC), 0);
	tx_rd = txp[0];
	rx_wr = rxp[1];
	fcntl(tx_rd, F_SETFL, O_NONBLOCK);

	char spec[64], err[128];
	snprintf(spec, sizeof(spec), "fd=%d,%d", rxp[0], txp[1]);
	struct chardev *chr = NULL;
	CHECK_EQ(chardev_open(spec, loop, &chr, err, sizeof(err)), 0);

	struct platform p = {
		.pio = pio,
		.loop = loop,
		.ncpus = 1,
		.max_cpus = 1,
		.set_irq = rec_set_irq,
		.request_exit = rec_request_exit,
	};
	struct uart16550 *u = NULL;
	CHECK_EQ(uart16550_create(&p, COM1, IRQ, chr, &u), 0);

	pthread_t th;
	pthread_create(&th, NULL, loop_thread, loop);

	test_linux_probe();
	test_dlab();
	test_irq_out2();
	test_fifo_loopback();
	test_tx();
	test_rx();
	test_specs(loop);

	evloop_stop(loop);
	pthread_join(th, NULL);
	uart16550_destroy(u);
	chardev_close(chr);
	evloop_destroy(loop);
	close(rxp[0]);
	close(txp[0]);
	close(txp[1]);
	CHECK_EQ(atomic_load(&exit_status), -1);
	return UNIT_RESULT();
}
