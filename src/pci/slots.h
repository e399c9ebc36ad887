/* What a PCI emulation is (a device type that can be put in a slot, as
 * bhyve's "slot,emulation[,conf]" names one), helpers for the emulations'
 * conf parsers, and the emulations of pci/ itself. The table of all
 * emulations by name is the board's: machine/registry.c. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "dev/platform.h"

struct pci_bus;
struct pci_dev;

/* One emulation. parse checks conf (the text after "emulation,", NULL
 * when absent) and returns the device's own settings; create builds the
 * function on the bus. Errors: a one-line reason. */
struct pci_emul {
	const char *name;
	int (*parse)(const char *conf, void **settings, char *err, size_t errlen);
	void (*free_settings)(void *settings);
	int (*create)(struct pci_bus *bus, unsigned slot, unsigned func, void *settings,
		      struct platform *p, char *err, size_t errlen);
	/* Guest RAM must be shareable with another process (a vhost-user
	 * back end maps it): the board backs it with a memfd. */
	bool shared_ram;
};

/* pci/hostbridge.c, pci/lpc.c */
extern const struct pci_emul pci_emul_hostbridge, pci_emul_amd_hostbridge, pci_emul_lpc;

/* Helpers for emulations' conf parsers: split "a,b=c,d" into words.
 * Returns the count; words point into buf (a copy of conf). */
#define PCI_CONF_MAX_WORDS 32
struct pci_conf_word {
	char *key;   /* the word, or what precedes '=' */
	char *value; /* after '=', or NULL */
};
int pci_conf_split(const char *conf, char **buf, struct pci_conf_word *words, int max);
/* Parse "true"/"false"/"on"/"off"/"yes"/"no"/"1"/"0" (NULL = true). */
int pci_conf_bool(const char *value, bool *out);
