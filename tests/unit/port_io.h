/* Port I/O on the test's bus, as a guest's in/out instructions reach it:
 * the unit tests of port devices set pio and call these. */
#pragma once
#include <stdint.h>
#include <string.h>

#include "bus/io_bus.h"

static struct io_bus *pio;

static inline void outn(uint16_t port, unsigned size, uint64_t v)
{
	uint8_t d[8];
	memcpy(d, &v, 8);
	io_bus_access(pio, port, size, true, d);
}

static inline uint64_t inn(uint16_t port, unsigned size)
{
	uint8_t d[8] = { 0 };
	io_bus_access(pio, port, size, false, d);
	uint64_t v = 0;
	memcpy(&v, d, size);
	return v;
}

static inline void outb(uint16_t port, uint8_t v) { outn(port, 1, v); }
static inline void outw(uint16_t port, uint16_t v) { outn(port, 2, v); }
static inline void outl(uint16_t port, uint32_t v) { outn(port, 4, v); }
static inline uint8_t inb(uint16_t port) { return (uint8_t)inn(port, 1); }
static inline uint16_t inw(uint16_t port) { return (uint16_t)inn(port, 2); }
static inline uint32_t inl(uint16_t port) { return (uint32_t)inn(port, 4); }
