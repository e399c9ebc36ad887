/* The guest-physical layout of one direct boot. The kernel image goes
 * where it asks to be (ELF physical addresses, Multiboot load_addr, 1 MiB
 * for a bzImage), so it is placed first: each of its ranges, and each
 * module or initrd, is claimed here and must lie in RAM of the e820 map,
 * clear of everything claimed before. khyve's own boot data (GDT, page
 * tables, boot info, command lines, stack) comes after and fits around
 * them: at its usual place below 1 MiB when that is free, else in the
 * lowest free RAM. The e820 map stays as it is: boot data is RAM the guest
 * may reuse once it has read it, as with QEMU, GRUB and firmware.
 *
 * The MP and ACPI tables are not placed here: they live in the BIOS area
 * (0xe0000-0xfffff, reserved in the e820 map, where guests scan for the
 * RSDP and the MP floating pointer), which no image range may claim. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/loaders.h"

void boot_layout_init(struct boot_ctx *c)
{
	c->nmap = guest_mem_e820(c->gm, c->map);
	c->claims = NULL;
	c->nclaims = c->claims_cap = 0;
}

void boot_layout_free(struct boot_ctx *c)
{
	free(c->claims);
	c->claims = NULL;
	c->nclaims = c->claims_cap = 0;
}

void boot_inform(struct boot_ctx *c, const char *fmt, ...)
{
	if (!c->req || !c->req->inform)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->req->inform(c->req->inform_opaque, line);
}

/* [gpa, end) wholly inside one RAM entry of the map, below 4 GiB. */
static bool in_ram(const struct boot_ctx *c, uint64_t gpa, uint64_t end)
{
	if (end > BOOT_4G || gpa >= end)
		return false;
	for (int i = 0; i < c->nmap; i++) {
		const struct e820_entry *e = &c->map[i];
		if (e->type == E820_RAM && gpa >= e->addr && end <= e->addr + e->size)
			return guest_mem_is_ram(c->gm, gpa, end - gpa);
	}
	return false;
}

const char *boot_not_ram(struct boot_ctx *c, uint64_t gpa, uint64_t size, char *buf, size_t len)
{
	uint64_t end;
	if (__builtin_add_overflow(gpa, size, &end) || end > BOOT_4G) {
		snprintf(buf, len, "above 4 GiB");
		return buf;
	}
	if (in_ram(c, gpa, end))
		return NULL;
	if (gpa < GUEST_BIOS_AREA_END && end > GUEST_EBDA_BASE)
		snprintf(buf, len, "in the EBDA/BIOS area 0x%llx-0x%llx, which is not RAM",
			 (unsigned long long)GUEST_EBDA_BASE,
			 (unsigned long long)GUEST_BIOS_AREA_END - 1);
	else
		snprintf(buf, len, "outside guest RAM (%llu MiB)",
			 (unsigned long long)(c->gm->size >> 20));
	return buf;
}

static const struct boot_claim *overlap(const struct boot_ctx *c, uint64_t gpa, uint64_t end)
{
	for (unsigned i = 0; i < c->nclaims; i++)
		if (gpa < c->claims[i].end && c->claims[i].start < end)
			return &c->claims[i];
	return NULL;
}

/* For boot data: like overlap(), but the image and the modules count as
 * whole pages, since kernels reserve and free their memory by the page. */
static const struct boot_claim *overlap_data(const struct boot_ctx *c, uint64_t gpa, uint64_t end)
{
	for (unsigned i = 0; i < c->nclaims; i++) {
		const struct boot_claim *k = &c->claims[i];
		uint64_t s = k->data ? k->start : align_down(k->start, BOOT_PAGE);
		uint64_t e = k->data ? k->end : align_up(k->end, BOOT_PAGE); /* end <= 4 GiB */
		if (gpa < e && s < end)
			return k;
	}
	return NULL;
}

static int add_claim(struct boot_ctx *c, const char *what, uint64_t gpa, uint64_t end, bool data)
{
	if (c->nclaims == c->claims_cap) {
		unsigned cap = c->claims_cap ? 2 * c->claims_cap : 16;
		struct boot_claim *n = realloc(c->claims, cap * sizeof(*n));
		if (!n)
			return boot_fail(c, ENOMEM, "out of memory");
		c->claims = n;
		c->claims_cap = cap;
	}
	struct boot_claim *k = &c->claims[c->nclaims++];
	k->start = gpa;
	k->end = end;
	k->data = data;
	snprintf(k->what, sizeof(k->what), "%s", what);
	return 0;
}

int boot_claim_image(struct boot_ctx *c, const char *what, uint64_t gpa, uint64_t size)
{
	const char *path = c->kernel.path;
	uint64_t end;
	if (size == 0)
		return 0;
	if (__builtin_add_overflow(gpa, size, &end) || end > BOOT_4G)
		return boot_fail(c, EINVAL, "%s: %s at 0x%llx (%llu bytes) does not fit below 4 GiB",
				 path, what, (unsigned long long)gpa, (unsigned long long)size);
	if (!in_ram(c, gpa, end)) {
		if (gpa < GUEST_BIOS_AREA_END && end > GUEST_EBDA_BASE && end <= c->gm->low_size)
			return boot_fail(c, EINVAL,
					 "%s: %s at 0x%llx-0x%llx overlaps the EBDA/BIOS area "
					 "0x%llx-0x%llx, which is not RAM (the MP and ACPI tables "
					 "live there)",
					 path, what, (unsigned long long)gpa,
					 (unsigned long long)(end - 1),
					 (unsigned long long)GUEST_EBDA_BASE,
					 (unsigned long long)GUEST_BIOS_AREA_END - 1);
		return boot_fail(c, ENOMEM,
				 "%s: %s at 0x%llx-0x%llx does not fit in guest RAM (%llu MiB)", path,
				 what, (unsigned long long)gpa, (unsigned long long)(end - 1),
				 (unsigned long long)(c->gm->size >> 20));
	}
	const struct boot_claim *o = overlap(c, gpa, end);
	if (o)
		return boot_fail(c, EINVAL, "%s: %s at 0x%llx-0x%llx overlaps %s at 0x%llx-0x%llx",
				 path, what, (unsigned long long)gpa, (unsigned long long)(end - 1),
				 o->what, (unsigned long long)o->start,
				 (unsigned long long)(o->end - 1));
	return add_claim(c, what, gpa, end, false);
}

/* The lowest aligned start >= from in a RAM range where size bytes touch
 * no claim; 0 when there is none (0 is below BOOT_DATA_FLOOR, never an
 * answer). */
static uint64_t first_fit(const struct boot_ctx *c, uint64_t size, uint64_t align)
{
	for (int i = 0; i < c->nmap; i++) {
		const struct e820_entry *e = &c->map[i];
		if (e->type != E820_RAM || e->addr >= BOOT_4G)
			continue;
		uint64_t lim = min_u64(e->addr + e->size, BOOT_4G);
		uint64_t at = align_up(max_u64(e->addr, BOOT_DATA_FLOOR), align);
		while (at < lim && size <= lim - at) {
			const struct boot_claim *o = overlap_data(c, at, at + size);
			if (!o)
				return in_ram(c, at, at + size) ? at : 0;
			at = align_up(o->data ? o->end : align_up(o->end, BOOT_PAGE), align);
		}
	}
	return 0;
}

int boot_alloc(struct boot_ctx *c, const char *what, uint64_t size, uint64_t align,
	       uint64_t prefer, uint64_t *gpa)
{
	uint64_t got;
	return boot_alloc_sized(c, what, size, align, prefer, size, gpa, &got);
}

int boot_alloc_sized(struct boot_ctx *c, const char *what, uint64_t size, uint64_t align,
		     uint64_t prefer, uint64_t prefer_size, uint64_t *gpa, uint64_t *got)
{
	uint64_t at = prefer;
	const struct boot_claim *o = NULL;
	char why[160] = "";
	if (!in_ram(c, prefer, prefer + prefer_size))
		snprintf(why, sizeof(why), "is not RAM");
	else if ((o = overlap_data(c, prefer, prefer + prefer_size)) != NULL)
		snprintf(why, sizeof(why), "overlaps %s at 0x%llx-0x%llx", o->what,
			 (unsigned long long)o->start, (unsigned long long)(o->end - 1));
	if (!why[0])
		size = prefer_size;
	if (why[0]) {
		at = first_fit(c, size, align);
		if (!at)
			return boot_fail(c, ENOMEM,
					 "%s: no room for %s (%llu bytes) in guest RAM (%llu MiB) "
					 "below 4 GiB beside the kernel image and its modules",
					 c->kernel.path, what, (unsigned long long)size,
					 (unsigned long long)(c->gm->size >> 20));
		boot_inform(c, "%s moved to 0x%llx-0x%llx: its usual place 0x%llx-0x%llx %s", what,
			    (unsigned long long)at, (unsigned long long)(at + size - 1),
			    (unsigned long long)prefer, (unsigned long long)(prefer + prefer_size - 1),
			    why);
	}
	int r = add_claim(c, what, at, at + size, true);
	if (r)
		return r;
	*gpa = at;
	*got = size;
	return 0;
}

void boot_inform_data(struct boot_ctx *c)
{
	if (!c->req || !c->req->inform)
		return;
	char line[512];
	size_t n = (size_t)snprintf(line, sizeof(line), "boot data:");
	bool first = true;
	for (unsigned i = 0; i < c->nclaims && n < sizeof(line); i++) {
		const struct boot_claim *k = &c->claims[i];
		if (!k->data)
			continue;
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s %s at 0x%llx-0x%llx",
				      first ? "" : ",", k->what, (unsigned long long)k->start,
				      (unsigned long long)(k->end - 1));
		first = false;
	}
	c->req->inform(c->req->inform_opaque, line);
}

uint64_t strarea_need(const char *a, const char *b)
{
	size_t la = strlen(a), lb = (b && *b) ? strlen(b) : 0;
	return (uint64_t)la + (lb ? 1 + (uint64_t)lb : 0) + 1;
}

int strarea_init(struct boot_ctx *c, struct strarea *s, uint64_t need, const char *what)
{
	s->next = s->end = 0;
	if (need == 0)
		return 0;
	if (need > BOOT_CMDLINE_MAX)
		return boot_fail(c, E2BIG,
				 "%s: the command line and module strings are longer than the "
				 "%llu KiB the loader has room for",
				 c->kernel.path, (unsigned long long)(BOOT_CMDLINE_MAX >> 10));
	uint64_t at;
	int r = boot_alloc(c, what, need, 16, BOOT_CMDLINE_GPA, &at);
	if (r)
		return r;
	s->next = at;
	s->end = at + need;
	return 0;
}

int strarea_put(struct boot_ctx *c, struct strarea *s, const char *a, const char *b,
		uint64_t *gpa)
{
	size_t la = strlen(a), lb = (b && *b) ? strlen(b) : 0;
	uint64_t need = strarea_need(a, b);
	if (need > s->end - s->next)
		return boot_fail(c, EFAULT, "%s: internal error: the strings outgrew their area",
				 c->kernel.path);
	uint64_t at = s->next;
	int r = guest_mem_write(c->gm, at, a, la);
	if (!r && lb) {
		r = guest_mem_fill(c->gm, at + la, ' ', 1);
		if (!r)
			r = guest_mem_write(c->gm, at + la + 1, b, lb);
	}
	if (!r)
		r = guest_mem_fill(c->gm, at + need - 1, 0, 1);
	if (r)
		return boot_fail(c, EFAULT, "%s: cannot write the command line at 0x%llx",
				 c->kernel.path, (unsigned long long)at);
	s->next += need;
	*gpa = at;
	return 0;
}
