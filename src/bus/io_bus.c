#include "bus/io_bus.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct io_range {
	uint64_t base, len;
	const struct io_ops *ops;
	void *opaque;
	const char *owner;
};

struct io_table {
	int count;
	struct io_table *retired_next; /* old tables, freed with the bus */
	struct io_range ranges[];      /* sorted by base, disjoint */
};

struct io_bus {
	_Atomic(struct io_table *) table;
	pthread_mutex_t update_lock; /* serializes writers only */
	struct io_table *retired;
	const char *name;
};

static struct io_table *table_alloc(int count)
{
	struct io_table *t = calloc(1, sizeof(*t) + (size_t)count * sizeof(struct io_range));
	if (t)
		t->count = count;
	return t;
}

struct io_bus *io_bus_create(const char *name)
{
	struct io_bus *bus = calloc(1, sizeof(*bus));
	if (!bus)
		return NULL;
	struct io_table *t = table_alloc(0);
	if (!t) {
		free(bus);
		return NULL;
	}
	atomic_init(&bus->table, t);
	pthread_mutex_init(&bus->update_lock, NULL);
	bus->name = name;
	return bus;
}

void io_bus_destroy(struct io_bus *bus)
{
	if (!bus)
		return;
	free(atomic_load(&bus->table));
	for (struct io_table *t = bus->retired, *next; t; t = next) {
		next = t->retired_next;
		free(t);
	}
	pthread_mutex_destroy(&bus->update_lock);
	free(bus);
}

/* Old tables may still be read by a vCPU thread in the middle of a
 * dispatch; they are kept until the bus is destroyed (changes are rare). */
static void publish(struct io_bus *bus, struct io_table *next)
{
	struct io_table *old = atomic_exchange(&bus->table, next);
	old->retired_next = bus->retired;
	bus->retired = old;
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len,
		    const struct io_ops *ops, void *opaque, const char *owner)
{
	if (len == 0 || base + len - 1 < base)
		return -EINVAL;
	pthread_mutex_lock(&bus->update_lock);
	struct io_table *cur = atomic_load(&bus->table);
	int pos = 0;
	for (int i = 0; i < cur->count; i++) {
		const struct io_range *r = &cur->ranges[i];
		if (base <= r->base + r->len - 1 && r->base <= base + len - 1) {
			pthread_mutex_unlock(&bus->update_lock);
			return -EEXIST;
		}
		if (r->base < base)
			pos = i + 1;
	}
	struct io_table *next = table_alloc(cur->count + 1);
	if (!next) {
		pthread_mutex_unlock(&bus->update_lock);
		return -ENOMEM;
	}
	memcpy(next->ranges, cur->ranges, (size_t)pos * sizeof(struct io_range));
	next->ranges[pos] = (struct io_range){ base, len, ops, opaque, owner };
	memcpy(next->ranges + pos + 1, cur->ranges + pos,
	       (size_t)(cur->count - pos) * sizeof(struct io_range));
	publish(bus, next);
	pthread_mutex_unlock(&bus->update_lock);
	return 0;
}

int io_bus_unregister(struct io_bus *bus, uint64_t base)
{
	pthread_mutex_lock(&bus->update_lock);
	struct io_table *cur = atomic_load(&bus->table);
	int found = -1;
	for (int i = 0; i < cur->count; i++)
		if (cur->ranges[i].base == base)
			found = i;
	if (found < 0) {
		pthread_mutex_unlock(&bus->update_lock);
		return -ENOENT;
	}
	struct io_table *next = table_alloc(cur->count - 1);
	if (!next) {
		pthread_mutex_unlock(&bus->update_lock);
		return -ENOMEM;
	}
	memcpy(next->ranges, cur->ranges, (size_t)found * sizeof(struct io_range));
	memcpy(next->ranges + found, cur->ranges + found + 1,
	       (size_t)(cur->count - found - 1) * sizeof(struct io_range));
	publish(bus, next);
	pthread_mutex_unlock(&bus->update_lock);
	return 0;
}

static const struct io_range *lookup(struct io_bus *bus, uint64_t addr)
{
	const struct io_table *t = atomic_load_explicit(&bus->table, memory_order_acquire);
	int lo = 0, hi = t->count - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		const struct io_range *r = &t->ranges[mid];
		if (addr < r->base)
			hi = mid - 1;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool io_bus_access(struct io_bus *bus, uint64_t addr, unsigned size, bool is_write,
		   uint8_t *data)
{
	const struct io_range *r = lookup(bus, addr);
	if (!r) {
		if (!is_write)
			memset(data, 0xff, size);
		return false;
	}
	uint64_t offset = addr - r->base;
	if (is_write) {
		if (r->ops->write) {
			uint64_t v = 0;
			memcpy(&v, data, size);
			r->ops->write(r->opaque, offset, size, v);
		}
	} else {
		uint64_t v = r->ops->read ? r->ops->read(r->opaque, offset, size) : ~0ULL;
		memcpy(data, &v, size);
	}
	return true;
}

const char *io_bus_owner(struct io_bus *bus, uint64_t addr)
{
	const struct io_range *r = lookup(bus, addr);
	return r ? r->owner : NULL;
}
