/* Fuzz target for the kernel loaders (src/boot): the input is a kernel
 * image from the user, loaded in each format into a small guest. Nothing
 * may crash, hang or write outside guest RAM (ASan and UBSan watch); a bad
 * image must only give an error with a message.
 *
 * The first byte picks the format (auto, linux, pvh, multiboot); the rest
 * is the image, handed over through a memfd as the loaders read files.
 *
 * With clang: fuzz_boot is a libFuzzer binary
 *   build/tests/fuzz/fuzz_boot tests/fuzz/corpus/boot -max_total_time=60
 * With any compiler, fuzz_boot_replay runs the corpus (a unit test). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot/boot.h"
#include "mem/guest_mem.h"

static struct guest_mem gm;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!gm.host && guest_mem_create(&gm, 96ULL << 20))
		abort();
	if (size < 1)
		return 0;
	int fd = memfd_create("kernel", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
		abort();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	static const enum boot_format formats[] = { BOOT_FORMAT_AUTO, BOOT_FORMAT_LINUX,
						    BOOT_FORMAT_PVH, BOOT_FORMAT_MULTIBOOT };
	struct boot_module module = { path, "arg" };
	struct boot_request req = {
		.format = formats[data[0] & 3],
		.kernel_path = path,
		.cmdline = "console=ttyS0",
		.modules = &module,
		.nr_modules = (data[0] >> 2) & 1,
		.rsdp_gpa = 0xF0000,
	};
	struct boot_entry entry;
	char err[512];
	int r = boot_load_kernel(&gm, &req, &entry, err, sizeof(err));
	if (r < 0 && err[0] == '\0')
		abort(); /* every refusal must say why */
	close(fd);
	return 0;
}
