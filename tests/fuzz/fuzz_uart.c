/* Fuzz target for the 16550A UART (src/dev/uart16550.c): its register file
 * as a guest drives it (every offset, sizes 1/2/4/8, DLAB, FCR/FIFO, MCR
 * loopback, LSR/MSR/IIR reads), interleaved with input arriving from the
 * character backend (tests/fake/fake_chardev.h, which pauses input as the
 * real backend does). The UART is compiled into this file so that the
 * harness can check its internal state after every access:
 *   - the receive FIFO never holds more than its capacity (16, or 1);
 *   - the IRQ line the platform sees is exactly "IIR has an enabled cause
 *     and MCR.OUT2 is set", on IRQ 4 only, and nothing asks the VM to exit;
 *   - register reads give defined values (IER/MCR reserved bits clear, LSR
 *     THRE|TEMT always set, IIR a valid cause with the FIFO bits right);
 *   - a THR write outside loopback sends exactly that byte to the backend;
 *   - the backend never overruns the FIFO, and input never stalls: whenever
 *     the backend is paused the FIFO is full, and at the end a guest that
 *     drains the FIFO receives every byte queued.
 *
 * Run (clang build with -Dsanitize=true, e.g. build-fuzz):
 *   build-fuzz/tests/fuzz/fuzz_uart -jobs=1 -workers=1 -max_len=512 \
 *       -runs=10000000 tests/fuzz/corpus/uart
 * fuzz_uart_replay replays the corpus with any compiler (meson test
 * fuzz_uart_corpus). */
#include "../../src/dev/uart16550.c"

#include "fake_chardev.h"
#include "fake_platform.h"
#include "fuzz_input.h"

#define BASE UART_COM1_PORT
#define IRQ UART_COM1_IRQ

static struct fake_platform fake;

FUZZ_NOCOV static void check_state(struct uart16550 *u, struct chardev *chr)
{
	FUZZ_CHECK(u->count <= rx_capacity(u));
	FUZZ_CHECK(u->head < FIFO_SIZE);
	FUZZ_CHECK(!(u->ier & 0xF0));
	FUZZ_CHECK(!(u->mcr & ~MCR_MASK));
	FUZZ_CHECK(!(u->fcr & ~(FCR_ENABLE | FCR_DMA | FCR_TRIGGER)));
	bool want = intr_id(u) != IIR_NOPEND && (u->mcr & MCR_OUT2);
	FUZZ_CHECK(u->irq_level == want);
	FUZZ_CHECK(fake.irq_level[IRQ] == (int)want);
	for (unsigned g = 0; g < FAKE_MAX_GSI; g++)
		FUZZ_CHECK(g == IRQ || fake.irq_sets[g] == 0);
	FUZZ_CHECK(fake.irq_bad_gsi == 0);
	FUZZ_CHECK(fake.exit_status == -1);
	struct fake_chardev_stats st;
	fake_chardev_stats(chr, &st);
	/* Paused input must be resumed as soon as there is room. */
	FUZZ_CHECK(!st.paused || rx_room(u) == 0);
}

static uint64_t uart_in(unsigned reg, unsigned size)
{
	return fake_pio_read(&fake, BASE + reg, size);
}

static void uart_out(unsigned reg, unsigned size, uint64_t v)
{
	fake_pio_write(&fake, BASE + reg, size, v);
}

/* A read of reg with the checks that hold for its value. */
static void checked_read(struct uart16550 *u, unsigned reg, unsigned size)
{
	bool dlab = u->lcr & LCR_DLAB;
	unsigned count = u->count;
	uint8_t head = u->fifo[u->head];
	bool fifo = fifo_enabled(u);
	uint64_t v = uart_in(reg, size);
	FUZZ_CHECK(v <= 0xFF); /* one byte register, zero-extended */
	switch (reg) {
	case REG_DATA:
		if (!dlab) {
			FUZZ_CHECK(v == (count ? head : 0));
			FUZZ_CHECK(u->count == (count ? count - 1 : 0));
		}
		break;
	case REG_IER:
		if (!dlab)
			FUZZ_CHECK(!(v & 0xF0));
		break;
	case REG_IIR: {
		unsigned id = v & 0x0F;
		FUZZ_CHECK(id == IIR_NOPEND || id == IIR_MSR || id == IIR_THRE || id == IIR_RXDATA ||
			   id == IIR_RLS || id == IIR_RXTOUT);
		FUZZ_CHECK(!(v & 0x30));
		FUZZ_CHECK((v & IIR_FIFO_BITS) == (fifo ? IIR_FIFO_BITS : 0));
		break;
	}
	case REG_MCR:
		FUZZ_CHECK(!(v & ~MCR_MASK));
		break;
	case REG_LSR:
		FUZZ_CHECK((v & (LSR_THRE | LSR_TEMT)) == (LSR_THRE | LSR_TEMT));
		FUZZ_CHECK(!!(v & LSR_DR) == (count > 0));
		FUZZ_CHECK(!(v & 0x80));
		FUZZ_CHECK(!(u->lsr_errors)); /* reading LSR clears them */
		break;
	case REG_MSR:
		FUZZ_CHECK(!(u->msr & MSR_DELTAS));
		break;
	}
}

static void checked_write(struct uart16550 *u, struct chardev *chr, unsigned reg, unsigned size,
			  uint64_t v)
{
	struct fake_chardev_stats before, after;
	fake_chardev_stats(chr, &before);
	bool thr = reg == REG_DATA && !(u->lcr & LCR_DLAB);
	bool loop = u->mcr & MCR_LOOP;
	unsigned count = u->count, cap = rx_capacity(u);
	uart_out(reg, size, v);
	fake_chardev_stats(chr, &after);
	if (thr && !loop) {
		FUZZ_CHECK(after.out_bytes == before.out_bytes + 1);
		FUZZ_CHECK(fake_chardev_out_byte(chr, 0) == (int)(v & 0xFF));
	} else {
		FUZZ_CHECK(after.out_bytes == before.out_bytes);
	}
	if (thr && loop) /* loopback: into the FIFO, or an overrun */
		FUZZ_CHECK(count < cap ? u->count == count + 1 : (u->lsr_errors & LSR_OE));
	if (reg == REG_SCR)
		FUZZ_CHECK(uart_in(REG_SCR, 1) == (v & 0xFF));
}

/* The guest turns loopback off and reads until the FIFO is empty, the
 * backend delivering meanwhile: every queued byte must arrive. */
static void drain(struct uart16550 *u, struct chardev *chr)
{
	uart_out(REG_LCR, 1, 0x03);
	uart_out(REG_MCR, 1, MCR_DTR | MCR_RTS | MCR_OUT2);
	struct fake_chardev_stats st;
	fake_chardev_stats(chr, &st);
	size_t rounds = st.in_queued + 2;
	for (size_t i = 0; i < rounds; i++) {
		fake_chardev_pump(chr);
		check_state(u, chr);
		while (uart_in(REG_LSR, 1) & LSR_DR)
			checked_read(u, REG_DATA, 1);
		check_state(u, chr);
	}
	fake_chardev_stats(chr, &st);
	FUZZ_CHECK(st.in_queued == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fake.p.pio && fake_platform_init(&fake, GUEST_MEM_MIN))
		abort();
	if (fake_platform_renew_buses(&fake))
		abort();
	fake_platform_clear_records(&fake);
	struct chardev *chr = fake_chardev_new();
	struct uart16550 *u;
	if (!chr || uart16550_create(&fake.p, BASE, IRQ, chr, &u))
		abort();
	check_state(u, chr);

	struct fuzz_in in = { data, size };
	while (fin_more(&in)) {
		uint8_t op = fin_u8(&in);
		unsigned reg = (op >> 4) & 7;
		switch (op & 7) {
		case 0: /* byte write */
			checked_write(u, chr, reg, 1, fin_u8(&in));
			break;
		case 1: /* byte read */
			checked_read(u, reg, 1);
			break;
		case 2: { /* any size, either direction */
			unsigned sz = fin_size(&in);
			if (op & 0x80)
				checked_write(u, chr, reg, sz, fin_value(&in, sz));
			else
				checked_read(u, reg, sz);
			break;
		}
		case 3: { /* the user types */
			uint8_t buf[64];
			unsigned n = fin_u8(&in) % sizeof(buf);
			for (unsigned i = 0; i < n; i++)
				buf[i] = fin_u8(&in);
			fake_chardev_queue(chr, buf, n);
			break;
		}
		case 4: { /* event-loop wakeups */
			unsigned oe = u->lsr_errors & LSR_OE;
			for (unsigned i = 0; i <= reg; i++)
				fake_chardev_pump(chr);
			/* The backend only gives what there is room for. */
			FUZZ_CHECK((u->lsr_errors & LSR_OE) == oe);
			break;
		}
		case 5: /* a divisor, as a driver sets the speed */
			uart_out(REG_LCR, 1, LCR_DLAB | 0x03);
			uart_out(REG_DATA, 1, fin_u8(&in));
			uart_out(REG_IER, 1, fin_u8(&in));
			FUZZ_CHECK(uart_in(REG_DATA, 1) == u->dll && uart_in(REG_IER, 1) == u->dlm);
			uart_out(REG_LCR, 1, fin_u8(&in) & 0x7F);
			break;
		case 6: { /* injected input (gdb, the console) bypasses the queue */
			uint8_t buf[32];
			unsigned n = fin_u8(&in) % sizeof(buf);
			for (unsigned i = 0; i < n; i++)
				buf[i] = fin_u8(&in);
			unsigned oe = u->lsr_errors & LSR_OE;
			chardev_inject_input(chr, buf, n);
			FUZZ_CHECK((u->lsr_errors & LSR_OE) == oe);
			break;
		}
		case 7: /* an access just outside the UART's 8 ports */
			FUZZ_CHECK(fake_pio_read(&fake, (op & 8) ? BASE + 8 : BASE - 1, 1) == 0xFF);
			break;
		}
		check_state(u, chr);
	}
	drain(u, chr);

	uart16550_destroy(u);
	chardev_close(chr);
	return 0;
}
