/* The LPC (PCI-to-ISA) bridge, as bhyve's "lpc" (Intel's 8086:7000): the
 * COM ports, the RTC and the other legacy devices sit behind it. Those are
 * always present in khyve (the board chooses the COM ports), so this
 * function only gives the guest the bridge a bhyve configuration names. */
#include <errno.h>
#include <stdio.h>

#include "pci/pci.h"
#include "pci/slots.h"

static int lpc_parse(const char *conf, void **settings, char *err, size_t errlen)
{
	*settings = NULL;
	if (conf && *conf) {
		snprintf(err, errlen, "lpc takes no options ('%s'): its COM ports are configured on their own",
			 conf);
		return -EINVAL;
	}
	return 0;
}

static int lpc_create(struct pci_bus *bus, unsigned slot, unsigned func, void *settings,
		      struct platform *p, char *err, size_t errlen)
{
	(void)settings;
	(void)p;
	struct pci_dev *d;
	int r = pci_dev_create(bus, slot, func, "lpc", 0x8086, 0x7000, 0x060100, 0, NULL, NULL, &d);
	if (r) {
		snprintf(err, errlen, "lpc: cannot create it at %u:%u", slot, func);
		return r;
	}
	pci_set_subsystem(d, 0x8086, 0x7000);
	return 0;
}

const struct pci_emul pci_emul_lpc = {
	.name = "lpc", .parse = lpc_parse, .create = lpc_create,
};
