/* The host bridge at 0:0.0, as bhyve's "hostbridge" (NetApp's IDs) and
 * "amd_hostbridge" (AMD's, for guests that look for one). No BARs, no
 * interrupts: it is there so that guests find a bridge where PCs have
 * one. */
#include <errno.h>
#include <stdio.h>

#include "pci/pci.h"
#include "pci/slots.h"

static int hostbridge_parse(const char *conf, void **settings, char *err, size_t errlen)
{
	*settings = NULL;
	if (conf && *conf) {
		snprintf(err, errlen, "hostbridge takes no options ('%s')", conf);
		return -EINVAL;
	}
	return 0;
}

static int create(struct pci_bus *bus, unsigned slot, unsigned func, const char *name,
		  uint16_t vendor, uint16_t device, char *err, size_t errlen)
{
	struct pci_dev *d;
	int r = pci_dev_create(bus, slot, func, name, vendor, device, 0x060000, 0, NULL, NULL, &d);
	if (r) {
		snprintf(err, errlen, "%s: cannot create it at %u:%u", name, slot, func);
		return r;
	}
	pci_set_subsystem(d, vendor, device);
	return 0;
}

static int hostbridge_create(struct pci_bus *bus, unsigned slot, unsigned func, void *settings,
			     struct platform *p, char *err, size_t errlen)
{
	(void)settings;
	(void)p;
	return create(bus, slot, func, "hostbridge", 0x1275, 0x1275, err, errlen);
}

static int amd_hostbridge_create(struct pci_bus *bus, unsigned slot, unsigned func,
				 void *settings, struct platform *p, char *err, size_t errlen)
{
	(void)settings;
	(void)p;
	return create(bus, slot, func, "amd_hostbridge", 0x1022, 0x7432, err, errlen);
}

const struct pci_emul pci_emul_hostbridge = {
	.name = "hostbridge", .parse = hostbridge_parse, .create = hostbridge_create,
};

const struct pci_emul pci_emul_amd_hostbridge = {
	.name = "amd_hostbridge", .parse = hostbridge_parse, .create = amd_hostbridge_create,
};
