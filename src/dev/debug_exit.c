#include "dev/debug_exit.h"

#include <errno.h>
#include <stdlib.h>

struct debug_exit {
	struct platform *p;
	uint16_t port;
};

static void debug_exit_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct debug_exit *d = opaque;
	(void)offset;
	if (size < 8)
		value &= (1ULL << (8 * size)) - 1;
	/* The process keeps only the low 8 bits, as with QEMU's exit(). */
	int status = (int)(unsigned)((value << 1) | 1);
	platform_request_exit(d->p, status, "debug-exit");
}

/* No state: nothing to lock. */
static const struct io_ops debug_exit_ops = { .read = NULL, .write = debug_exit_write };

int debug_exit_create(struct platform *p, uint16_t port, struct debug_exit **out)
{
	struct debug_exit *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->p = p;
	d->port = port;
	int r = io_bus_register(p->pio, port, 4, &debug_exit_ops, d, "debug-exit");
	if (r < 0) {
		free(d);
		return r;
	}
	*out = d;
	return 0;
}

void debug_exit_destroy(struct debug_exit *d)
{
	if (!d)
		return;
	io_bus_unregister(d->p->pio, d->port);
	free(d);
}
