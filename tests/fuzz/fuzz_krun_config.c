/* Fuzz target for khyve-run's run description (src/krun/krun_config.c):
 * the records khyve-run writes to /krun/config for its guest init, which
 * the init trusts no further than this parser checks. Whatever the bytes,
 * a parsed config holds pointers into its own copy, NUL-terminated lists,
 * counts within their limits and the fields the init needs.
 *
 * With clang: build/tests/fuzz/fuzz_krun_config tests/fuzz/corpus/krun_config
 * With any compiler, fuzz_krun_config_replay runs the corpus (a unit test). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "krun/krun_config.h"

static int inside(const struct krun_config *c, size_t len, const char *p)
{
	return p >= c->buf && p <= c->buf + len && strlen(p) <= len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct krun_config c;
	char err[200];
	if (krun_config_parse(&c, data, size, err, sizeof(err))) {
		if (!memchr(err, '\0', sizeof(err)) || c.buf)
			abort();
		return 0;
	}
	if (!c.argc || c.argc > KRUN_MAX_ARGS || c.argv[c.argc] || c.envc > KRUN_MAX_ENV ||
	    c.envp[c.envc] || c.ngroups > KRUN_MAX_GROUPS || c.nrw > KRUN_MAX_SHARES)
		abort();
	if (!c.cwd || c.cwd[0] != '/' || !inside(&c, size, c.cwd) || !c.root.tag)
		abort();
	for (unsigned i = 0; i < c.argc; i++)
		if (!inside(&c, size, c.argv[i]))
			abort();
	for (unsigned i = 0; i < c.envc; i++)
		if (!inside(&c, size, c.envp[i]) || !strchr(c.envp[i], '=') || c.envp[i][0] == '=')
			abort();
	for (unsigned i = 0; i < c.nrw; i++)
		if (!c.rw[i].path || c.rw[i].path[0] != '/' || !c.rw[i].tag || !c.rw[i].fs)
			abort();
	krun_config_free(&c);
	return 0;
}
