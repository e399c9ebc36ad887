/* Fuzz target for loader.conf-style files (src/loader/loaderconf.c):
 * host0:/boot/loader.conf and a guest's /boot/nextboot.conf. Parsing, the
 * module list and the directive test must hold for any bytes.
 *
 * With clang: build/tests/fuzz/fuzz_loader_conf tests/fuzz/corpus/loader_conf
 * With any compiler, fuzz_loader_conf_replay runs the corpus (a unit test). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader/loaderconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lconf c;
	static struct lconf_module m[LCONF_MAX_MODULES];
	char err[128];
	if (lconf_parse((const char *)data, size, &c, err, sizeof(err)))
		return 0;
	unsigned n = lconf_modules(&c, m, LCONF_MAX_MODULES);
	if (n > LCONF_MAX_MODULES)
		abort();
	for (unsigned i = 0; i < n; i++)
		if (!m[i].file || strlen(m[i].base) >= sizeof(m[i].base))
			abort();
	for (unsigned i = 0; i < c.nvars; i++) {
		lconf_is_directive(&c, c.vars[i].name);
		if (!lconf_get(&c, c.vars[i].name))
			abort();
	}
	lconf_free(&c);
	return 0;
}
