/* bhyve's -s slot[:function],emulation[,conf] (or bus:slot:function):
 * parsing, the table of emulations, and building the PCI bus a command
 * line asks for. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "boot/tables.h"
#include "dev/platform.h"

struct pci_bus;
struct pci_dev;

/* One emulation (a "-s" device type). parse checks conf (the text after
 * "emulation,", NULL when absent) and returns the device's own settings;
 * create builds the function on the bus. Errors: a one-line reason. */
struct pci_emul {
	const char *name;
	int (*parse)(const char *conf, void **settings, char *err, size_t errlen);
	void (*free_settings)(void *settings);
	int (*create)(struct pci_bus *bus, unsigned slot, unsigned func, void *settings,
		      struct platform *p, char *err, size_t errlen);
};

/* All -s options of a command line, parsed. */
struct pci_config;

/* Parse one -s argument into *cfg (allocated on first use). A slot given
 * twice, an unknown emulation or a bad conf is an error with a reason. */
int pci_config_add(struct pci_config **cfg, const char *arg, char *err, size_t errlen);
void pci_config_free(struct pci_config *cfg);

/* The PCI side of a machine. */
struct pci_machine;

/* Build the bus and the devices of cfg. Fills desc's PCI fields (the
 * INTx route array belongs to the returned pci_machine). */
int pci_machine_create(struct platform *p, const struct pci_config *cfg, struct platform_desc *desc,
		       struct pci_machine **out, char *err, size_t errlen);
void pci_machine_destroy(struct pci_machine *pm);
struct pci_bus *pci_machine_bus(struct pci_machine *pm);

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
