/* Fuzz target for khyveload's grub.cfg reader (src/loader/grubcfg.c): the
 * text comes from a guest's disk. Nothing may crash, hang, recurse
 * without bound or read out of bounds; any input gives an entry or an
 * error with a message.
 *
 * With clang: build/tests/fuzz/fuzz_loader_grub tests/fuzz/corpus/loader_grub
 * With any compiler, fuzz_loader_grub_replay runs the corpus (a unit test). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader/grubcfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct grub_boot g;
	char err[256];
	err[0] = 0;
	int r = grub_default_entry((const char *)data, size, &g, err, sizeof(err));
	if (r && !err[0])
		abort(); /* an error always says why */
	if (!r && (!g.kernel[0] || strlen(g.kernel) >= sizeof(g.kernel) ||
		   g.ninitrd > GRUB_INITRD_MAX))
		abort();
	return 0;
}
