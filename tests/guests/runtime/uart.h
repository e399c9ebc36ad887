/* SPDX-License-Identifier: BSD-2-Clause */
/* Polled 16550 UART driver. */
#ifndef GUEST_UART_H
#define GUEST_UART_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#define COM1 0x3f8
#define COM2 0x2f8
#define COM3 0x3e8
#define COM4 0x2e8

/* 115200 8N1, FIFOs on, interrupts off.  Output/input functions init lazily. */
void uart_init(uint16_t base);
void uart_putc(uint16_t base, char c);            /* raw byte, no \n translation */
void uart_write(uint16_t base, const char *s, size_t n);
bool uart_rx_ready(uint16_t base);                /* LSR.DR */
int uart_getc(uint16_t base);                     /* blocks */
int uart_getc_timeout(uint16_t base, uint32_t timeout_ms);   /* -1 on timeout */
/* Something that behaves like a 16550 answers here (scratch register test). */
bool uart_probe(uint16_t base);

#endif
