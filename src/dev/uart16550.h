/* A 16550A UART (COM port) on the port-I/O bus: 8 registers at port_base,
 * interrupt on an ISA IRQ (gated by MCR.OUT2 as on a PC). Output goes to
 * a character backend at once; input comes from it with flow control (the
 * 16-byte receive FIFO is never overrun by the backend). */
#pragma once
#include <stdint.h>

#include "dev/platform.h"

struct chardev;
struct uart16550;

#define UART_COM1_PORT 0x3F8
#define UART_COM2_PORT 0x2F8
#define UART_COM3_PORT 0x3E8
#define UART_COM4_PORT 0x2E8
#define UART_COM1_IRQ 4
#define UART_COM2_IRQ 3

/* backend may be NULL: output is dropped and there is no input. The UART
 * becomes the backend's receiver. Returns 0 or -errno (-EEXIST when the
 * ports are taken). */
int uart16550_create(struct platform *p, uint16_t port_base, unsigned irq,
		     struct chardev *backend, struct uart16550 **out);
/* Releases the ports and detaches from the backend (which stays open). */
void uart16550_destroy(struct uart16550 *u);
