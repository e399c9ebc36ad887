#include "pci/slots.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pci/pci.h"
#include "util/parse.h"

extern const struct pci_emul pci_emul_hostbridge, pci_emul_amd_hostbridge, pci_emul_lpc;
extern const struct pci_emul pci_emul_virtio_rnd, pci_emul_virtio_blk, pci_emul_virtio_net,
	pci_emul_virtio_console;

static const struct pci_emul *const emulations[] = {
	&pci_emul_hostbridge, &pci_emul_amd_hostbridge, &pci_emul_lpc,
	&pci_emul_virtio_blk, &pci_emul_virtio_net, &pci_emul_virtio_rnd,
	&pci_emul_virtio_console,
};
#define NEMUL (sizeof(emulations) / sizeof(emulations[0]))

struct pci_slot_cfg {
	unsigned slot, func;
	const struct pci_emul *emul;
	void *settings;
};

struct pci_config {
	unsigned n;
	struct pci_slot_cfg s[PCI_SLOTS * PCI_FUNCS];
};

struct pci_machine {
	struct pci_bus *bus;
	struct pci_intx_route routes[PCI_SLOTS * 4];
};

int pci_conf_split(const char *conf, char **buf, struct pci_conf_word *words, int max)
{
	*buf = NULL;
	if (!conf || !*conf)
		return 0;
	char *copy = strdup(conf);
	if (!copy)
		return -ENOMEM;
	*buf = copy;
	int n = 0;
	for (char *save = NULL, *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (n == max)
			return -E2BIG;
		char *eq = strchr(w, '=');
		if (eq)
			*eq++ = '\0';
		words[n++] = (struct pci_conf_word){ w, eq };
	}
	return n;
}

int pci_conf_bool(const char *value, bool *out)
{
	static const char *const yes[] = { "true", "on", "yes", "1" };
	static const char *const no[] = { "false", "off", "no", "0" };
	if (!value) {
		*out = true;
		return 0;
	}
	for (size_t i = 0; i < 4; i++) {
		if (!strcmp(value, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(value, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_number(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	char buf[16];
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return parse_uint(buf, max, out);
}

int pci_config_add(struct pci_config **cfgp, const char *arg, char *err, size_t errlen)
{
	const char *comma = strchr(arg, ',');
	if (!comma) {
		snprintf(err, errlen, "-s %s: expected slot[:function],emulation[,conf]", arg);
		return -EINVAL;
	}
	/* [bus:]slot[:function] */
	uint64_t nums[3];
	int nnum = 0;
	const char *p = arg;
	while (p < comma) {
		const char *colon = memchr(p, ':', (size_t)(comma - p));
		const char *end = colon ? colon : comma;
		if (nnum == 3 || parse_number(p, (size_t)(end - p), 255, &nums[nnum])) {
			snprintf(err, errlen, "-s %s: '%.*s' is not slot[:function] or bus:slot:function",
				 arg, (int)(comma - arg), arg);
			return -EINVAL;
		}
		nnum++;
		p = colon ? colon + 1 : comma;
		if (colon && p == comma)
			nnum = 4; /* trailing ':' */
	}
	if (nnum == 0 || nnum > 3) {
		snprintf(err, errlen, "-s %s: '%.*s' is not slot[:function] or bus:slot:function", arg,
			 (int)(comma - arg), arg);
		return -EINVAL;
	}
	uint64_t bus = nnum == 3 ? nums[0] : 0;
	uint64_t slot = nnum == 3 ? nums[1] : nums[0];
	uint64_t func = nnum == 3 ? nums[2] : nnum == 2 ? nums[1] : 0;
	if (bus != 0) {
		snprintf(err, errlen, "-s %s: only PCI bus 0 is emulated", arg);
		return -EINVAL;
	}
	if (slot >= PCI_SLOTS || func >= PCI_FUNCS) {
		snprintf(err, errlen, "-s %s: slot must be 0-31 and function 0-7", arg);
		return -EINVAL;
	}
	const char *emul = comma + 1;
	size_t elen = strcspn(emul, ",");
	const char *conf = emul[elen] == ',' ? emul + elen + 1 : NULL;
	const struct pci_emul *e = NULL;
	for (size_t i = 0; i < NEMUL; i++)
		if (strlen(emulations[i]->name) == elen && !strncmp(emulations[i]->name, emul, elen))
			e = emulations[i];
	if (!e) {
		char known[256] = "";
		for (size_t i = 0; i < NEMUL; i++) {
			strncat(known, i ? ", " : "", sizeof(known) - strlen(known) - 1);
			strncat(known, emulations[i]->name, sizeof(known) - strlen(known) - 1);
		}
		snprintf(err, errlen, "-s %s: unknown PCI emulation '%.*s' (known: %s)", arg, (int)elen,
			 emul, known);
		return -EINVAL;
	}
	struct pci_config *cfg = *cfgp;
	if (!cfg) {
		cfg = calloc(1, sizeof(*cfg));
		if (!cfg) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		*cfgp = cfg;
	}
	for (unsigned i = 0; i < cfg->n; i++) {
		if (cfg->s[i].slot == slot && cfg->s[i].func == func) {
			snprintf(err, errlen, "-s %s: slot %u:%u is already taken by %s", arg,
				 (unsigned)slot, (unsigned)func, cfg->s[i].emul->name);
			return -EEXIST;
		}
		if (cfg->s[i].emul == e && e == &pci_emul_lpc) {
			snprintf(err, errlen, "-s %s: only one lpc bridge is allowed", arg);
			return -EEXIST;
		}
	}
	void *settings = NULL;
	char why[256] = "";
	int r = e->parse(conf, &settings, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "-s %s: %s", arg, why[0] ? why : strerror(-r));
		return r;
	}
	cfg->s[cfg->n++] = (struct pci_slot_cfg){ (unsigned)slot, (unsigned)func, e, settings };
	return 0;
}

void pci_config_free(struct pci_config *cfg)
{
	if (!cfg)
		return;
	for (unsigned i = 0; i < cfg->n; i++)
		if (cfg->s[i].emul->free_settings)
			cfg->s[i].emul->free_settings(cfg->s[i].settings);
	free(cfg);
}

int pci_machine_create(struct platform *p, const struct pci_config *cfg, struct platform_desc *desc,
		       struct pci_machine **out, char *err, size_t errlen)
{
	struct pci_machine *pm = calloc(1, sizeof(*pm));
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
		const struct pci_slot_cfg *s = &cfg->s[i];
		char why[400] = "";
		r = s->emul->create(pm->bus, s->slot, s->func, s->settings, p, why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "-s %u:%u,%s: %s", s->slot, s->func, s->emul->name,
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
	pci_machine_destroy(pm);
	return r;
}

void pci_machine_destroy(struct pci_machine *pm)
{
	if (!pm)
		return;
	pci_bus_destroy(pm->bus);
	free(pm);
}

struct pci_bus *pci_machine_bus(struct pci_machine *pm) { return pm->bus; }
