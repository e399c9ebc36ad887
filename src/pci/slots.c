/* Helpers for the emulations' conf parsers (pci/slots.h). */
#include "pci/slots.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
