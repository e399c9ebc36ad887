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
	uint64_t retired_epoch;        /* the epoch at which it was replaced */
	struct io_table *retired_next; /* replaced, not yet freed */
	struct io_range ranges[];      /* sorted by base, disjoint */
};

struct io_bus {
	_Atomic(struct io_table *) table;
	pthread_mutex_t update_lock; /* serializes writers only */
	struct io_table *retired;    /* under update_lock */
	const char *name;
};

/* ---- Freeing replaced tables (epoch-based reclamation) ----
 * A reader (a vCPU thread in a dispatch) loads the table pointer and uses
 * the table without a lock, so a replaced table may be freed only once no
 * reader can still hold it. Each thread that reads a bus has a slot: 0
 * while it is outside every dispatch, else the global epoch it saw on
 * entering. A writer that replaces a table tags the old one with the
 * epoch and advances it; the table can go once every slot is 0 or newer
 * than its tag (a reader that entered after the advance loaded the new
 * table). Writers never wait for readers (the writer is often a reader
 * itself: a BAR moves from inside a config-space write), they free what
 * is free at their next change: so the replaced tables kept at any time
 * are those of the dispatches in flight, however often the guest remaps.
 * Readers pay two stores to their own cache line per dispatch. */
struct io_reader {
	_Alignas(64) _Atomic uint64_t epoch; /* 0: quiescent; own cache line */
	unsigned depth;         /* nested dispatches (a handler dispatching) */
	atomic_bool in_use;     /* owned by a live thread */
	struct io_reader *next; /* the registry only grows */
};

static _Atomic uint64_t global_epoch = 1;
static _Atomic(struct io_reader *) readers;
/* Readers without a slot (none could be allocated): while any is in a
 * dispatch, nothing is freed. */
static atomic_uint slotless_readers;
static pthread_key_t reader_key;
static pthread_once_t reader_key_once = PTHREAD_ONCE_INIT;
static _Thread_local struct io_reader *my_reader;

/* A thread that ends gives its slot to the next thread that reads. */
static void reader_release(void *opaque)
{
	struct io_reader *r = opaque;
	atomic_store(&r->epoch, 0);
	r->depth = 0;
	atomic_store(&r->in_use, false);
}

static void reader_key_init(void)
{
	pthread_key_create(&reader_key, reader_release);
}

static struct io_reader *reader_get(void)
{
	struct io_reader *r = my_reader;
	if (r)
		return r;
	pthread_once(&reader_key_once, reader_key_init);
	for (r = atomic_load(&readers); r; r = r->next) {
		bool expected = false;
		if (atomic_compare_exchange_strong(&r->in_use, &expected, true))
			break;
	}
	if (!r) {
		/* Slots are never freed: at most one per thread alive at once. */
		r = aligned_alloc(_Alignof(struct io_reader), sizeof(*r));
		if (!r)
			return NULL;
		memset(r, 0, sizeof(*r));
		atomic_init(&r->in_use, true);
		struct io_reader *head = atomic_load(&readers);
		do
			r->next = head;
		while (!atomic_compare_exchange_weak(&readers, &head, r));
	}
	pthread_setspecific(reader_key, r);
	my_reader = r;
	return r;
}

static struct io_reader *read_enter(void)
{
	struct io_reader *r = reader_get();
	if (!r) {
		atomic_fetch_add(&slotless_readers, 1);
		return NULL;
	}
	if (r->depth++ == 0) {
		/* seq_cst: the slot is visible before the table is loaded. */
		atomic_store(&r->epoch, atomic_load(&global_epoch));
	}
	return r;
}

static void read_exit(struct io_reader *r)
{
	if (!r)
		atomic_fetch_sub_explicit(&slotless_readers, 1, memory_order_release);
	else if (--r->depth == 0)
		atomic_store_explicit(&r->epoch, 0, memory_order_release);
}

/* The oldest epoch a reader in a dispatch entered with; UINT64_MAX when
 * none is in one. */
static uint64_t oldest_reader(void)
{
	if (atomic_load(&slotless_readers))
		return 0;
	uint64_t oldest = UINT64_MAX;
	for (struct io_reader *r = atomic_load(&readers); r; r = r->next) {
		uint64_t e = atomic_load(&r->epoch);
		if (e && e < oldest)
			oldest = e;
	}
	return oldest;
}

/* Under update_lock: free the replaced tables no reader can hold. */
static void reclaim(struct io_bus *bus)
{
	uint64_t oldest = oldest_reader();
	struct io_table **link = &bus->retired;
	while (*link) {
		struct io_table *t = *link;
		if (t->retired_epoch < oldest) {
			*link = t->retired_next;
			free(t);
		} else {
			link = &t->retired_next;
		}
	}
}

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

/* No reader may use the bus any more (the vCPUs are gone). */
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

/* Under update_lock. A reader whose slot holds an epoch <= the tag may
 * have loaded old; one that reads the epoch after the increment, which
 * comes after the exchange, loads next. */
static void publish(struct io_bus *bus, struct io_table *next)
{
	struct io_table *old = atomic_exchange(&bus->table, next);
	old->retired_epoch = atomic_fetch_add(&global_epoch, 1);
	old->retired_next = bus->retired;
	bus->retired = old;
	reclaim(bus);
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

/* Between read_enter and read_exit only. */
static const struct io_range *lookup(struct io_bus *bus, uint64_t addr)
{
	const struct io_table *t = atomic_load(&bus->table);
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
	struct io_reader *rd = read_enter();
	const struct io_range *r = lookup(bus, addr);
	if (!r) {
		read_exit(rd);
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
	read_exit(rd);
	return true;
}

const char *io_bus_owner(struct io_bus *bus, uint64_t addr)
{
	struct io_reader *rd = read_enter();
	const struct io_range *r = lookup(bus, addr);
	const char *owner = r ? r->owner : NULL;
	read_exit(rd);
	return owner; /* owners are static strings */
}

size_t io_bus_retained_tables(struct io_bus *bus)
{
	pthread_mutex_lock(&bus->update_lock);
	size_t n = 0;
	for (struct io_table *t = bus->retired; t; t = t->retired_next)
		n++;
	pthread_mutex_unlock(&bus->update_lock);
	return n;
}
