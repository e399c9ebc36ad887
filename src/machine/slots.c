#include "machine/slots.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/registry.h"
#include "pci/pci.h"

struct slot_cfg {
	unsigned slot, func;
	const struct pci_emul *emul;
	void *settings;
};

struct machine_slots {
	unsigned n;
	struct slot_cfg s[PCI_SLOTS * PCI_FUNCS];
};

struct machine_pci {
	struct pci_bus *bus;
	struct pci_intx_route routes[PCI_SLOTS * 4];
};

/* Decimal digits only, as bhyve reads slot numbers (strtol base 10): a
 * leading 0 is not octal and 0x is not hex. */
static int parse_decimal(const char *s, size_t len, unsigned max, unsigned *out)
{
	if (len == 0 || len > 9)
		return -EINVAL;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int machine_slots_add(struct machine_slots **slotsp, const char *spec, char *err, size_t errlen)
{
	const char *comma = strchr(spec, ',');
	if (!comma) {
		snprintf(err, errlen, "expected slot[:function],emulation[,conf]");
		return -EINVAL;
	}
	/* [bus:]slot[:function] */
	unsigned nums[3];
	int nnum = 0;
	const char *p = spec;
	bool bad = false;
	while (p < comma && !bad) {
		const char *colon = memchr(p, ':', (size_t)(comma - p));
		const char *end = colon ? colon : comma;
		if (nnum == 3 || parse_decimal(p, (size_t)(end - p), 255, &nums[nnum]))
			bad = true;
		nnum++;
		p = colon ? colon + 1 : comma;
		if (colon && p == comma)
			bad = true; /* trailing ':' */
	}
	if (bad || nnum == 0) {
		snprintf(err, errlen, "'%.*s' is not slot[:function] or bus:slot:function",
			 (int)(comma - spec), spec);
		return -EINVAL;
	}
	unsigned bus = nnum == 3 ? nums[0] : 0;
	unsigned slot = nnum == 3 ? nums[1] : nums[0];
	unsigned func = nnum == 3 ? nums[2] : nnum == 2 ? nums[1] : 0;
	if (bus != 0) {
		snprintf(err, errlen, "only PCI bus 0 is emulated");
		return -EINVAL;
	}
	if (slot >= PCI_SLOTS || func >= PCI_FUNCS) {
		snprintf(err, errlen, "slot must be 0-31 and function 0-7");
		return -EINVAL;
	}
	const char *emul = comma + 1;
	size_t elen = strcspn(emul, ",");
	const char *conf = emul[elen] == ',' ? emul + elen + 1 : NULL;
	const struct pci_emul *e = machine_emul_find(emul, elen);
	if (!e) {
		char known[256];
		machine_emul_names(known, sizeof(known));
		snprintf(err, errlen, "unknown PCI emulation '%.*s' (known: %s)", (int)elen, emul,
			 known);
		return -EINVAL;
	}
	struct machine_slots *cfg = *slotsp;
	if (!cfg) {
		cfg = calloc(1, sizeof(*cfg));
		if (!cfg) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		*slotsp = cfg;
	}
	for (unsigned i = 0; i < cfg->n; i++) {
		if (cfg->s[i].slot == slot && cfg->s[i].func == func) {
			snprintf(err, errlen, "slot %u:%u is already taken by %s", slot, func,
				 cfg->s[i].emul->name);
			return -EEXIST;
		}
		if (cfg->s[i].emul == e && e == &pci_emul_lpc) {
			snprintf(err, errlen, "only one lpc bridge is allowed");
			return -EEXIST;
		}
	}
	void *settings = NULL;
	char why[256] = "";
	int r = e->parse(conf, &settings, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "%s", why[0] ? why : strerror(-r));
		return r;
	}
	cfg->s[cfg->n++] = (struct slot_cfg){ slot, func, e, settings };
	return 0;
}

void machine_slots_free(struct machine_slots *cfg)
{
	if (!cfg)
		return;
	for (unsigned i = 0; i < cfg->n; i++)
		if (cfg->s[i].emul->free_settings)
			cfg->s[i].emul->free_settings(cfg->s[i].settings);
	free(cfg);
}

bool machine_slots_need_shared_ram(const struct machine_slots *cfg)
{
	for (unsigned i = 0; cfg && i < cfg->n; i++)
		if (cfg->s[i].emul->shared_ram)
			return true;
	return false;
}

int machine_pci_create(struct platform *p, const struct machine_slots *cfg,
		       struct platform_desc *desc, struct machine_pci **out, char *err, size_t errlen)
{
	struct machine_pci *pm = calloc(1, sizeof(*pm));
	if (!pm) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int r = pci_bus_create(p, &pm->bus);
	if (r) {
		snprintf(err, errlen, "creating the PCI bus: %s", strerror(-r));
		free(pm);
		return r;
	}
	for (unsigned i = 0; cfg && i < cfg->n; i++) {
		const struct slot_cfg *s = &cfg->s[i];
		char why[400] = "";
		r = s->emul->create(pm->bus, s->slot, s->func, s->settings, p, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "%s at slot %u:%u: %s", s->emul->name, s->slot, s->func,
				 why[0] ? why : strerror(-r));
			goto fail;
		}
	}
	r = pci_bus_finish(pm->bus, pm->routes, sizeof(pm->routes) / sizeof(pm->routes[0]), err,
			   errlen);
	if (r < 0)
		goto fail;
	desc->pci_intx = pm->routes;
	desc->n_pci_intx = (unsigned)r;
	desc->pci_mmio32_base = PCI_MMIO32_BASE;
	desc->pci_mmio32_limit = PCI_MMIO32_LIMIT;
	pci_bus_mmio64_window(pm->bus, &desc->pci_mmio64_base, &desc->pci_mmio64_size);
	desc->pci_ecam_base = PCI_ECAM_BASE;
	desc->pci_ecam_bus_start = 0;
	desc->pci_ecam_bus_end = 0;
	*out = pm;
	return 0;
fail:
	machine_pci_destroy(pm);
	return r;
}

void machine_pci_destroy(struct machine_pci *pm)
{
	if (!pm)
		return;
	pci_bus_destroy(pm->bus);
	free(pm);
}

struct pci_bus *machine_pci_bus(struct machine_pci *pm) { return pm->bus; }
