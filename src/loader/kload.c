/* The boot set (see kload.h). Files reach src/boot as /proc/self/fd/N:
 * host0: files are the confined descriptors themselves, disk files
 * memfds, so the loaders never see a host path to resolve again. */
#include "loader/kload.h"

/* Names, paths and messages are cut to their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/memmap.h"

void kload_init(struct kload_set *s)
{
	memset(s, 0, sizeof(*s));
	s->kernel.fd = -1;
}

static void file_free(struct kload_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->spec);
	free(f->type);
	free(f->args);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

void kload_clear(struct kload_set *s)
{
	file_free(&s->kernel);
	for (unsigned i = 0; i < s->nfiles; i++)
		file_free(&s->files[i]);
	kload_init(s);
}

static void fd_path(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* The path inside the device: what a FreeBSD kernel knows a file by. */
static const char *dev_path(const char *spec)
{
	const char *c = strchr(spec, ':');
	const char *sl = strchr(spec, '/');
	return c && (!sl || c < sl) ? c + 1 : spec;
}

/* Error text from src/boot names /proc/self/fd/N; say the spec instead. */
static void reword(char *err, size_t errlen, const char *fdp, const char *spec)
{
	char tmp[1024];
	const char *p = strstr(err, fdp);
	if (!p)
		return;
	snprintf(tmp, sizeof(tmp), "%.*s%s%s", (int)(p - err), err, spec, p + strlen(fdp));
	snprintf(err, errlen, "%s", tmp);
}

static int run_boot(const struct kload_set *s, const struct kload_file *kernel,
		    const struct guest_mem *gm, const char *cmdline, const char *const *env,
		    unsigned nenv, bool with_files, struct boot_entry *entry, char *err,
		    size_t errlen)
{
	char kpath[64];
	fd_path(kernel->fd, kpath, sizeof(kpath));
	static char paths[KLOAD_MAX_FILES][64];
	static char margs[KLOAD_MAX_FILES][1200];
	struct boot_module mods[KLOAD_MAX_FILES];
	const char *names[KLOAD_MAX_FILES];
	unsigned n = 0;
	for (unsigned i = 0; with_files && i < s->nfiles; i++) {
		const struct kload_file *f = &s->files[i];
		fd_path(f->fd, paths[n], sizeof(paths[n]));
		mods[n].path = paths[n];
		mods[n].args = f->args;
		names[n] = dev_path(f->spec);
		/* FreeBSD: a file that is no kernel module says its type
		 * as load -t does. */
		if (s->freebsd && strcmp(f->type, "module") && strcmp(f->type, "initrd")) {
			snprintf(margs[n], sizeof(margs[n]), "-t %s%s%s", f->type,
				 f->args ? " " : "", f->args ? f->args : "");
			mods[n].args = margs[n];
		}
		n++;
	}
	struct boot_request req = {
		.kernel_path = kpath,
		.cmdline = cmdline,
		.modules = mods,
		.nr_modules = n,
		/* khyve writes the ACPI tables there when it runs the VM. */
		.rsdp_gpa = ACPI_RSDP_GPA,
	};
	/* FreeBSD kernels (boot/freebsd.h): the kenv and the names the
	 * kernel knows its files by. */
	req.env = nenv ? env : NULL;
	req.nr_env = nenv;
	req.kernel_name = dev_path(kernel->spec);
	req.module_names = names;
	int r = boot_load_kernel(gm, &req, entry, err, errlen);
	if (r) {
		reword(err, errlen, kpath, kernel->spec);
		for (unsigned i = 0; i < n; i++)
			reword(err, errlen, paths[i], s->files[i].spec);
	}
	return r;
}

int kload_kernel(struct kload_set *s, int fd, uint64_t size, const char *spec, const char *args,
		 uint64_t mem_size, const char *const *env, unsigned nenv, char *err,
		 size_t errlen)
{
	struct kload_file k = { .fd = fd, .size = size, .spec = strdup(spec),
				.type = strdup("kernel"), .args = args ? strdup(args) : NULL };
	if (!k.spec || !k.type || (args && !k.args)) {
		file_free(&k);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* A trial load into scratch memory: the same checks boot will make,
	 * so that a file that is no kernel is refused now. */
	struct guest_mem gm;
	int r = guest_mem_create(&gm, mem_size);
	if (r) {
		file_free(&k);
		snprintf(err, errlen, "scratch memory of %llu MiB: %s",
			 (unsigned long long)(mem_size >> 20), strerror(-r));
		return r;
	}
	struct boot_entry entry;
	struct kload_set empty;
	kload_init(&empty);
	/* With the environment first: a FreeBSD kernel then takes the
	 * bhyveload way (its kenv), also one with a PVH note. Any other
	 * kernel refuses a kenv, so it is tried again without. */
	r = run_boot(&empty, &k, &gm, args, env, nenv, false, &entry, err, errlen);
	bool freebsd = !r && entry.format_name && strstr(entry.format_name, "FreeBSD");
	if (r || !freebsd) {
		guest_mem_destroy(&gm);
		if (!(r = guest_mem_create(&gm, mem_size)))
			r = run_boot(&empty, &k, &gm, args, NULL, 0, false, &entry, err, errlen);
		else
			snprintf(err, errlen, "scratch memory: %s", strerror(-r));
	}
	guest_mem_destroy(&gm);
	if (r) {
		file_free(&k);
		return r;
	}
	file_free(&s->kernel);
	s->kernel = k;
	s->have_kernel = true;
	s->format = entry.format_name;
	s->freebsd = freebsd;
	return 0;
}

int kload_file(struct kload_set *s, int fd, uint64_t size, const char *spec, const char *type,
	       const char *args, char *err, size_t errlen)
{
	if (s->nfiles == KLOAD_MAX_FILES) {
		close(fd);
		snprintf(err, errlen, "%s: at most %d files can be loaded", spec, KLOAD_MAX_FILES);
		return -E2BIG;
	}
	struct kload_file *f = &s->files[s->nfiles];
	*f = (struct kload_file){ .fd = fd, .size = size, .spec = strdup(spec), .type = strdup(type),
				  .args = args ? strdup(args) : NULL };
	if (!f->spec || !f->type || (args && !f->args)) {
		file_free(f);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->nfiles++;
	return 0;
}

int kload_boot(const struct kload_set *s, const struct guest_mem *gm, const char *cmdline,
	       bool single, const char *const *env, unsigned nenv, struct boot_entry *entry,
	       char *final, size_t finallen, char *err, size_t errlen)
{
	if (!s->have_kernel) {
		snprintf(err, errlen, "no kernel loaded");
		return -ENOENT;
	}
	char line[4096];
	const char *base = s->freebsd ? s->kernel.args : cmdline;
	const char *extra = single ? (s->freebsd ? "-s" : "single") : NULL;
	snprintf(line, sizeof(line), "%s%s%s", base ? base : "", base && base[0] && extra ? " " : "",
		 extra ? extra : "");
	if (final)
		snprintf(final, finallen, "%s", line);
	/* The environment is a FreeBSD kernel's kenv; other kernels have none. */
	return run_boot(s, &s->kernel, gm, line[0] ? line : NULL, s->freebsd ? env : NULL,
			s->freebsd ? nenv : 0, true, entry, err, errlen);
}
