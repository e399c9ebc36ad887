/* SPDX-License-Identifier: BSD-2-Clause */
#include "uart.h"
#include "io.h"
#include "delay.h"

#define THR 0
#define RBR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define SCR 7

#define LSR_DR   0x01
#define LSR_THRE 0x20

struct uart_state {
    uint16_t base;
    uint8_t fifo;       /* transmit FIFO depth: 16 for a 16550A, 1 otherwise */
    uint8_t room;       /* bytes we may still write before polling LSR */
    bool stuck;         /* THRE never came: stop waiting for it */
};

static struct uart_state ports[4];

static struct uart_state *state(uint16_t base)
{
    for (unsigned i = 0; i < 4; i++)
        if (ports[i].base == base)
            return &ports[i];
    return NULL;
}

static struct uart_state *get(uint16_t base)
{
    struct uart_state *s = state(base);

    if (!s) {
        uart_init(base);
        s = state(base);
    }
    return s;
}

void uart_init(uint16_t base)
{
    struct uart_state *s = state(base);

    if (!s) {
        for (unsigned i = 0; i < 4; i++)
            if (!ports[i].base) {
                s = &ports[i];
                break;
            }
        if (!s)
            s = &ports[3];
    }
    outb(base + IER, 0x00);
    outb(base + LCR, 0x80);         /* DLAB */
    outb(base + DLL, 0x01);         /* 115200 */
    outb(base + DLM, 0x00);
    outb(base + LCR, 0x03);         /* 8N1 */
    outb(base + FCR, 0xc7);         /* enable + clear FIFOs, 14-byte rx trigger */
    outb(base + MCR, 0x03);         /* DTR | RTS */
    s->base = base;
    s->fifo = (inb(base + IIR) & 0xc0) == 0xc0 ? 16 : 1;
    s->room = 0;
    s->stuck = false;
}

void uart_putc(uint16_t base, char c)
{
    struct uart_state *s = get(base);

    if (!s->room) {
        /* THRE: the holding register (or the whole FIFO) is empty.  A real
         * 16550 at 115200 baud drains 16 bytes in 1.4 ms; a port nobody
         * emulates must not stall every write (each poll is an exit). */
        for (uint32_t i = 0; !s->stuck && !(inb(base + LSR) & LSR_THRE); i++)
            if (i > 20000)
                s->stuck = true;
        s->room = s->fifo;
    }
    outb(base + THR, (uint8_t)c);
    s->room--;
}

void uart_write(uint16_t base, const char *str, size_t n)
{
    for (size_t i = 0; i < n; i++)
        uart_putc(base, str[i]);
}

bool uart_rx_ready(uint16_t base)
{
    get(base);
    return inb(base + LSR) & LSR_DR;
}

int uart_getc(uint16_t base)
{
    while (!uart_rx_ready(base))
        cpu_relax();
    return inb(base + RBR);
}

int uart_getc_timeout(uint16_t base, uint32_t timeout_ms)
{
    uint64_t deadline = timeout_start(timeout_ms);

    do {
        if (uart_rx_ready(base))
            return inb(base + RBR);
        cpu_relax();
    } while (!timeout_expired(deadline));
    return -1;
}

bool uart_probe(uint16_t base)
{
    uint8_t old = inb(base + SCR);
    bool ok;

    outb(base + SCR, 0x5a);
    ok = inb(base + SCR) == 0x5a;
    outb(base + SCR, 0xa5);
    ok = ok && inb(base + SCR) == 0xa5;
    outb(base + SCR, old);
    return ok;
}
