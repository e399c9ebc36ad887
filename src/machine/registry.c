#include "machine/registry.h"

#include <string.h>

#include "virtio/emulations.h"

static const struct pci_emul *const emulations[] = {
	&pci_emul_hostbridge, &pci_emul_amd_hostbridge, &pci_emul_lpc,
	&pci_emul_virtio_blk, &pci_emul_virtio_net, &pci_emul_virtio_rnd,
	&pci_emul_virtio_console, &pci_emul_virtio_fs, &pci_emul_virtio_9p,
};
#define NEMUL (sizeof(emulations) / sizeof(emulations[0]))

const struct pci_emul *machine_emul_find(const char *name, size_t len)
{
	for (size_t i = 0; i < NEMUL; i++)
		if (strlen(emulations[i]->name) == len && !strncmp(emulations[i]->name, name, len))
			return emulations[i];
	return NULL;
}

void machine_emul_names(char *buf, size_t len)
{
	if (!len)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < NEMUL; i++) {
		strncat(buf, i ? ", " : "", len - strlen(buf) - 1);
		strncat(buf, emulations[i]->name, len - strlen(buf) - 1);
	}
}

const struct machine_com_port *machine_com_find(const char *name)
{
	for (size_t i = 0; i < MACHINE_COM_PORTS; i++)
		if (!strcmp(machine_com_ports[i].name, name))
			return &machine_com_ports[i];
	return NULL;
}
