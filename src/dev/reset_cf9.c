#include "dev/reset_cf9.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define CF9_SYS_RST 0x02
#define CF9_RST_CPU 0x04
#define CF9_FULL_RST 0x08

struct reset_cf9 {
	struct platform *p;
	pthread_mutex_t lock;
	uint8_t value;
};

/* Wider accesses at 0xCF9 would straddle the PCI data port; only their
 * low byte (0xCF9 itself) is ours. */
static uint64_t cf9_read(void *opaque, uint64_t offset, unsigned size)
{
	struct reset_cf9 *r = opaque;
	(void)offset;
	pthread_mutex_lock(&r->lock);
	uint64_t v = r->value;
	pthread_mutex_unlock(&r->lock);
	return size > 1 ? v | (~0ULL << 8) : v;
}

static void cf9_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct reset_cf9 *r = opaque;
	(void)offset;
	(void)size;
	pthread_mutex_lock(&r->lock);
	r->value = (uint8_t)value & (CF9_SYS_RST | CF9_FULL_RST); /* RST_CPU reads 0 */
	pthread_mutex_unlock(&r->lock);
	if (value & CF9_RST_CPU)
		platform_request_exit(r->p, VM_EXIT_REBOOT, "reset through port 0xcf9");
}

static const struct io_ops cf9_ops = { .read = cf9_read, .write = cf9_write };

int reset_cf9_create(struct platform *p, struct reset_cf9 **out)
{
	struct reset_cf9 *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->p = p;
	pthread_mutex_init(&r->lock, NULL);
	int err = io_bus_register(p->pio, RESET_CF9_PORT, 1, &cf9_ops, r, "reset-cf9");
	if (err < 0) {
		pthread_mutex_destroy(&r->lock);
		free(r);
		return err;
	}
	*out = r;
	return 0;
}

void reset_cf9_destroy(struct reset_cf9 *r)
{
	if (!r)
		return;
	io_bus_unregister(r->p->pio, RESET_CF9_PORT);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
