/* The OK prompt: environment, command words, the commands, autoboot and
 * nextboot (see loader.h and khyveload(8)). */
#include "loader/loader.h"

/* Names, paths and messages are cut to their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "loader/grubcfg.h"
#include "loader/loaderconf.h"
#include "loader/target.h"
#include "util/parse.h"

#define MAX_WORDS 64
#define CONF_MAX (1u << 20) /* configuration files read whole */
#define NEXTBOOT_PATH "/boot/nextboot.conf"

/* ---- output and environment ---- */

void loader_printf(struct loader *l, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	le_write(&l->le, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* An error: a message, and in a script the end of the session. */
static int fail(struct loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct loader *l, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (l->script) {
		/* Scripts get one line on stderr, as every bad input does. */
		fprintf(stderr, "khyveload: %s\n", buf);
		l->quit = true;
	} else {
		loader_printf(l, "%s\n", buf);
	}
	return -1;
}

static int env_find(struct loader *l, const char *name)
{
	size_t n = strlen(name);
	for (unsigned i = 0; i < l->nenv; i++)
		if (!strncmp(l->env[i], name, n) && l->env[i][n] == '=')
			return (int)i;
	return -1;
}

const char *loader_getenv(struct loader *l, const char *name)
{
	int i = env_find(l, name);
	return i < 0 ? NULL : strchr(l->env[i], '=') + 1;
}

int loader_setenv(struct loader *l, const char *name, const char *value)
{
	if (!name[0] || strchr(name, '='))
		return -EINVAL;
	size_t len = strlen(name) + strlen(value) + 2;
	char *s = malloc(len);
	if (!s)
		return -ENOMEM;
	snprintf(s, len, "%s=%s", name, value);
	int i = env_find(l, name);
	if (i >= 0) {
		free(l->env[i]);
		l->env[i] = s;
		return 0;
	}
	if (l->nenv == LOADER_ENV_MAX) {
		free(s);
		return -ENOSPC;
	}
	l->env[l->nenv++] = s;
	return 0;
}

void loader_unsetenv(struct loader *l, const char *name)
{
	int i = env_find(l, name);
	if (i < 0)
		return;
	free(l->env[i]);
	memmove(&l->env[i], &l->env[i + 1], (l->nenv - (unsigned)i - 1) * sizeof(l->env[0]));
	l->nenv--;
}

void loader_reset_env(struct loader *l)
{
	for (unsigned i = 0; i < l->nenv; i++)
		free(l->env[i]);
	l->nenv = 0;
	l->cmdline_set = false;
	char names[1][LDEV_NAME_MAX];
	if (ldevs_fs_names(&l->devs, names, 1))
		loader_setenv(l, "currdev", names[0]);
	loader_setenv(l, "autoboot_delay", "10");
	for (unsigned i = 0; i < l->ninitial_env; i++) {
		const char *eq = strchr(l->initial_env[i], '=');
		char name[256];
		if (!eq || eq == l->initial_env[i] || (size_t)(eq - l->initial_env[i]) >= sizeof(name))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(eq - l->initial_env[i]), l->initial_env[i]);
		loader_setenv(l, name, eq + 1);
		if (!strcmp(name, "cmdline"))
			l->cmdline_set = true;
	}
}

void loader_init(struct loader *l)
{
	kload_init(&l->set);
	l->nenv = 0;
	l->booted = l->quit = false;
	l->depth = 0;
}

void loader_free(struct loader *l)
{
	kload_clear(&l->set);
	for (unsigned i = 0; i < l->nenv; i++)
		free(l->env[i]);
	l->nenv = 0;
	le_free(&l->le);
}

static const char *currdev(struct loader *l)
{
	return loader_getenv(l, "currdev");
}

/* ---- words ---- */

/* Splits line into words: blanks separate, '...' is literal, "..." and
 * bare text expand $name and ${name}, '\' quotes the next character, '#'
 * starts a comment. Returns the count, or -1 (message printed). */
static int split(struct loader *l, const char *line, char *buf, size_t buflen, char **w)
{
	size_t o = 0;
	int n = 0;
	const char *p = line;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (!*p || *p == '#')
			return n;
		if (n == MAX_WORDS)
			return fail(l, "too many words");
		w[n++] = buf + o;
		char q = 0;
		while (*p && (q || (*p != ' ' && *p != '\t' && *p != '\r'))) {
			if (!q && (*p == '\'' || *p == '"')) {
				q = *p++;
				continue;
			}
			if (q && *p == q) {
				q = 0;
				p++;
				continue;
			}
			if (q != '\'' && *p == '\\' && p[1]) {
				p++;
			} else if (q != '\'' && *p == '$' &&
				   (p[1] == '{' || isalpha((unsigned char)p[1]) || p[1] == '_')) {
				char name[128];
				size_t k = 0;
				if (p[1] == '{') {
					const char *e = strchr(p + 2, '}');
					if (!e)
						return fail(l, "unterminated ${");
					k = (size_t)(e - p - 2);
					snprintf(name, sizeof(name), "%.*s", (int)k, p + 2);
					p = e + 1;
				} else {
					const char *e = p + 1;
					while (isalnum((unsigned char)*e) || *e == '_' || *e == '.')
						e++;
					snprintf(name, sizeof(name), "%.*s", (int)(e - p - 1), p + 1);
					p = e;
				}
				const char *v = loader_getenv(l, name);
				for (; v && *v; v++) {
					if (o + 2 >= buflen)
						return fail(l, "line too long");
					buf[o++] = *v;
				}
				continue;
			}
			if (o + 2 >= buflen)
				return fail(l, "line too long");
			buf[o++] = *p++;
		}
		if (q)
			return fail(l, "unterminated quote");
		buf[o++] = 0;
	}
}

/* words[from..) joined with spaces into out. */
static void join(char **w, int from, int n, char *out, size_t len)
{
	size_t o = 0;
	out[0] = 0;
	for (int i = from; i < n && o + 1 < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i > from ? " " : "", w[i]);
}

/* ---- loading ---- */

static const char *const *env_list(struct loader *l, unsigned *n)
{
	*n = l->nenv;
	return (const char *const *)l->env;
}

/* spec with its device: "host0:/boot/kernel/kernel". */
static int canon(struct loader *l, const char *spec, char *out, size_t len)
{
	char dev[LDEV_NAME_MAX], path[1024], err[1200];
	if (ldev_split(spec, currdev(l), dev, sizeof(dev), path, sizeof(path), err, sizeof(err)))
		return fail(l, "%s", err);
	snprintf(out, len, "%s:%s", dev, path);
	return 0;
}

static int load_kernel(struct loader *l, const char *given, const char *args)
{
	char err[1024], spec[1100];
	int fd;
	if (canon(l, given, spec, sizeof(spec)))
		return -1;
	uint64_t size;
	if (ldev_open(&l->devs, spec, currdev(l), l->mem_size, &fd, &size, err, sizeof(err)))
		return fail(l, "%s", err);
	unsigned nenv;
	const char *const *env = env_list(l, &nenv);
	/* The trial load sees the kenv so FreeBSD kernels are found as such. */
	if (kload_kernel(&l->set, fd, size, spec, args, l->mem_size, env, nenv, err, sizeof(err)))
		return fail(l, "%s", err);
	if (!l->set.freebsd && args) {
		loader_setenv(l, "cmdline", args);
		l->cmdline_set = true;
	}
	loader_printf(l, "%s %s size 0x%llx\n", spec, l->set.format ? l->set.format : "kernel",
		      (unsigned long long)size);
	return 0;
}

static int load_file(struct loader *l, const char *given, const char *type, const char *args)
{
	char err[1024], spec[1100];
	int fd;
	if (canon(l, given, spec, sizeof(spec)))
		return -1;
	uint64_t size;
	if (ldev_open(&l->devs, spec, currdev(l), l->mem_size, &fd, &size, err, sizeof(err)))
		return fail(l, "%s", err);
	if (kload_file(&l->set, fd, size, spec, type, args, err, sizeof(err)))
		return fail(l, "%s", err);
	loader_printf(l, "%s %s size 0x%llx\n", spec, type, (unsigned long long)size);
	return 0;
}

/* A FreeBSD module named without a path: looked for in module_path
 * (default /boot/kernel;/boot/modules) on the current device. */
static void module_find(struct loader *l, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s", name);
	if (strchr(name, '/') || strchr(name, ':'))
		return;
	const char *mp = loader_getenv(l, "module_path");
	char path[1024];
	snprintf(path, sizeof(path), "%s", mp ? mp : "/boot/kernel;/boot/modules");
	for (char *save, *dir = strtok_r(path, ";", &save); dir; dir = strtok_r(NULL, ";", &save))
		for (int ko = 1; ko >= 0; ko--) {
			char cand[1200];
			snprintf(cand, sizeof(cand), "%s/%s%s", dir, name, ko ? ".ko" : "");
			if (ldev_exists(&l->devs, cand, currdev(l))) {
				snprintf(out, len, "%s", cand);
				return;
			}
		}
}

/* ---- autoboot: what the devices say to boot ---- */

struct plan_file {
	char spec[1100];
	char type[64];
	char args[512];
};

struct plan {
	char what[320];
	char kernel[1100];
	bool has_args;
	char args[GRUB_ARGS_MAX];
	unsigned nfiles;
	struct plan_file files[16];
	struct lconf conf; /* loader.conf: its settings go to the environment */
	bool have_conf;
	/* nextboot: the file to disable once its kernel is loaded. */
	char nb_spec[64];
	char *nb_text;
	size_t nb_len;
};

static void plan_free(struct plan *p)
{
	if (p->have_conf)
		lconf_free(&p->conf);
	free(p->nb_text);
	free(p);
}

/* "dev:/path" for a path on dev, or the path as it is when it names a
 * device already. */
static void on_dev(const char *dev, const char *path, char *out, size_t len)
{
	const char *c = strchr(path, ':'), *sl = strchr(path, '/');
	if (c && (!sl || c < sl))
		snprintf(out, len, "%s", path);
	else
		snprintf(out, len, "%s:%s%s", dev, path[0] == '/' ? "" : "/", path);
}

static void plan_add(struct plan *p, const char *spec, const char *type, const char *args)
{
	if (p->nfiles == sizeof(p->files) / sizeof(p->files[0]))
		return;
	struct plan_file *f = &p->files[p->nfiles++];
	snprintf(f->spec, sizeof(f->spec), "%s", spec);
	snprintf(f->type, sizeof(f->type), "%s", type);
	snprintf(f->args, sizeof(f->args), "%s", args ? args : "");
}

/* nextboot.conf on a disk: 1 when it is enabled and planned. */
static int plan_nextboot(struct loader *l, const char *dev, struct plan *p)
{
	char spec[64], err[512];
	char *text;
	size_t len;
	snprintf(spec, sizeof(spec), "%s:%s", dev, NEXTBOOT_PATH);
	if (ldev_read(&l->devs, spec, NULL, 64 * 1024, &text, &len, err, sizeof(err)))
		return 0;
	struct lconf c;
	if (lconf_parse(text, len, &c, err, sizeof(err))) {
		loader_printf(l, "warning: %s: %s; ignored\n", spec, err);
		free(text);
		return 0;
	}
	if (!lconf_yes(lconf_get(&c, "nextboot_enable"))) {
		lconf_free(&c);
		free(text);
		return 0;
	}
	const char *k = lconf_get(&c, "bootfile");
	if (!k || !k[0])
		k = lconf_get(&c, "kernel");
	if (!k || !k[0]) {
		loader_printf(l, "warning: %s: enabled but names no kernel; ignored\n", spec);
		lconf_free(&c);
		free(text);
		return 0;
	}
	char path[1100];
	if (!strchr(k, '/') && !strchr(k, ':'))
		snprintf(path, sizeof(path), "/boot/%s/kernel", k); /* FreeBSD's kernel="DIR" */
	else
		snprintf(path, sizeof(path), "%s", k);
	on_dev(dev, path, p->kernel, sizeof(p->kernel));
	const char *args = lconf_get(&c, "cmdline");
	if (!args)
		args = lconf_get(&c, "kernel_options");
	if (args) {
		p->has_args = true;
		snprintf(p->args, sizeof(p->args), "%s", args);
	}
	const char *initrd = lconf_get(&c, "initrd");
	if (initrd && initrd[0]) {
		char ispec[1100];
		on_dev(dev, initrd, ispec, sizeof(ispec));
		plan_add(p, ispec, "initrd", NULL);
	}
	snprintf(p->what, sizeof(p->what), "the one-shot %s", spec);
	snprintf(p->nb_spec, sizeof(p->nb_spec), "%s", spec);
	p->nb_text = text;
	p->nb_len = len;
	lconf_free(&c);
	return 1;
}

/* host0:/boot/loader.conf, or host0:/boot/kernel/kernel. */
static int plan_loader_conf(struct loader *l, struct plan *p)
{
	char *text = NULL, err[512];
	size_t len;
	int r = ldev_read(&l->devs, "host0:/boot/loader.conf", NULL, CONF_MAX, &text, &len, err,
			  sizeof(err));
	if (r == 0) {
		if (lconf_parse(text, len, &p->conf, err, sizeof(err))) {
			loader_printf(l, "warning: host0:/boot/loader.conf: %s; ignored\n", err);
			memset(&p->conf, 0, sizeof(p->conf));
		} else {
			p->have_conf = true;
		}
		free(text);
	} else if (r != -ENOENT) {
		loader_printf(l, "warning: %s\n", err);
	}
	const char *kdir = p->have_conf ? lconf_get(&p->conf, "kernel") : NULL;
	const char *bootfile = p->have_conf ? lconf_get(&p->conf, "bootfile") : NULL;
	if (!kdir || !kdir[0])
		kdir = "kernel";
	if (!bootfile || !bootfile[0])
		bootfile = "kernel";
	char path[1100];
	if (strchr(kdir, '/') || strchr(kdir, ':'))
		snprintf(path, sizeof(path), "%s", kdir);
	else
		snprintf(path, sizeof(path), "/boot/%s/%s", kdir, bootfile);
	on_dev("host0", path, p->kernel, sizeof(p->kernel));
	if (!ldev_exists(&l->devs, p->kernel, NULL)) {
		if (p->have_conf)
			loader_printf(l, "warning: host0:/boot/loader.conf names %s, which is not there\n",
				      p->kernel);
		return 0;
	}
	if (p->have_conf) {
		static struct lconf_module mods[LCONF_MAX_MODULES];
		unsigned n = lconf_modules(&p->conf, mods, LCONF_MAX_MODULES);
		for (unsigned i = 0; i < n; i++) {
			char spec[1100];
			const char *file = mods[i].file;
			if (strchr(file, '/') || strchr(file, ':')) {
				on_dev("host0", file, spec, sizeof(spec));
			} else {
				/* The kernel's directory, then /boot/modules. */
				char dir[1100];
				snprintf(dir, sizeof(dir), "%s", p->kernel);
				char *slash = strrchr(dir, '/');
				if (slash)
					*slash = 0;
				const char *cands[4] = { "%s/%s.ko", "%s/%s", "host0:/boot/modules/%s.ko",
							 "host0:/boot/modules/%s" };
				spec[0] = 0;
				for (int c = 0; c < 4 && !spec[0]; c++) {
					char cand[1100];
					if (c < 2)
						snprintf(cand, sizeof(cand), cands[c], dir, file);
					else
						snprintf(cand, sizeof(cand), cands[c], file);
					if (ldev_exists(&l->devs, cand, NULL))
						snprintf(spec, sizeof(spec), "%s", cand);
				}
				if (!spec[0])
					snprintf(spec, sizeof(spec), "host0:/boot/modules/%s.ko", file);
			}
			plan_add(p, spec, mods[i].type ? mods[i].type : "module", mods[i].flags);
		}
	}
	snprintf(p->what, sizeof(p->what), "%s", p->have_conf ? "host0:/boot/loader.conf" : p->kernel);
	return 1;
}

/* grub.cfg on a disk's file system, or /vmlinuz and /initrd.img. */
static int plan_grub(struct loader *l, const char *dev, struct plan *p)
{
	static const char *const cfgs[] = { "/boot/grub/grub.cfg", "/grub/grub.cfg" };
	char spec[1100], err[512];
	for (unsigned i = 0; i < 2; i++) {
		char *text;
		size_t len;
		snprintf(spec, sizeof(spec), "%s:%s", dev, cfgs[i]);
		int r = ldev_read(&l->devs, spec, NULL, CONF_MAX, &text, &len, err, sizeof(err));
		if (r == -ENOENT)
			continue;
		if (r) {
			loader_printf(l, "warning: %s; trying /vmlinuz\n", err);
			break;
		}
		struct grub_boot *g = malloc(sizeof(*g));
		r = g ? grub_default_entry(text, len, g, err, sizeof(err)) : -ENOMEM;
		free(text);
		if (r) {
			loader_printf(l, "warning: %s: %s; trying /vmlinuz\n", spec, g ? err : "out of memory");
			free(g);
			break;
		}
		on_dev(dev, g->kernel, p->kernel, sizeof(p->kernel));
		if (!ldev_exists(&l->devs, p->kernel, NULL)) {
			loader_printf(l, "warning: %s: entry '%s' names %s, which is not there; trying "
					 "/vmlinuz\n", spec, g->title, p->kernel);
			free(g);
			break;
		}
		p->has_args = true;
		snprintf(p->args, sizeof(p->args), "%s", g->args);
		for (unsigned k = 0; k < g->ninitrd; k++) {
			char ispec[1100];
			on_dev(dev, g->initrd[k], ispec, sizeof(ispec));
			plan_add(p, ispec, "initrd", NULL);
		}
		snprintf(p->what, sizeof(p->what), "%s entry '%.200s'", spec, g->title);
		free(g);
		return 1;
	}
	static const char *const kernels[] = { "/vmlinuz", "/boot/vmlinuz" };
	static const char *const initrds[] = { "/initrd.img", "/boot/initrd.img" };
	for (unsigned i = 0; i < 2; i++) {
		snprintf(p->kernel, sizeof(p->kernel), "%s:%s", dev, kernels[i]);
		if (!ldev_exists(&l->devs, p->kernel, NULL))
			continue;
		snprintf(spec, sizeof(spec), "%s:%s", dev, initrds[i]);
		if (ldev_exists(&l->devs, spec, NULL))
			plan_add(p, spec, "initrd", NULL);
		snprintf(p->what, sizeof(p->what), "%s", p->kernel);
		return 1;
	}
	p->nfiles = 0;
	return 0;
}

/* What to boot, in this order: a disk's enabled nextboot.conf (when
 * nextboot), host0:'s loader.conf (or kernel), each disk's grub.cfg or
 * /vmlinuz. */
static struct plan *plan_find(struct loader *l, bool nextboot)
{
	struct plan *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	char names[1 + LDEV_MAX_DISKS * (PART_MAX + 1)][LDEV_NAME_MAX];
	unsigned n = ldevs_fs_names(&l->devs, names, sizeof(names) / sizeof(names[0]));
	for (unsigned i = 0; nextboot && i < n; i++)
		if (strcmp(names[i], "host0") && plan_nextboot(l, names[i], p))
			return p;
	if (l->devs.host_fd >= 0 && plan_loader_conf(l, p))
		return p;
	if (p->have_conf) {
		lconf_free(&p->conf);
		p->have_conf = false;
	}
	for (unsigned i = 0; i < n; i++)
		if (strcmp(names[i], "host0") && plan_grub(l, names[i], p))
			return p;
	free(p);
	return NULL;
}

/* nextboot_enable="YES" becomes "NO" in place, the file's size kept (as
 * FreeBSD's loader rewrites it). */
static int nextboot_disable(struct loader *l, struct plan *p)
{
	char *t = p->nb_text;
	for (char *k = strstr(t, "nextboot_enable"); k; k = strstr(k + 1, "nextboot_enable")) {
		if (k != t && k[-1] != '\n' && k[-1] != ' ' && k[-1] != '\t')
			continue;
		char *v = k + strlen("nextboot_enable");
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v != '=')
			continue;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		bool q = *v == '"';
		char *y = v + q;
		size_t ylen = strcspn(y, "\" \t\n#");
		/* "YES" (or yes/1/true/on) -> "NO" and spaces to the same size. */
		char old = y[ylen];
		y[ylen] = 0;
		bool yes = lconf_yes(y);
		y[ylen] = old;
		if (!yes)
			continue;
		if (ylen < 2) { /* "1": no room for NO; 0 says the same */
			y[0] = '0';
		} else {
			y[0] = 'N';
			y[1] = 'O';
			if (q) {
				y[2] = '"';
				memset(y + 3, ' ', ylen - 2);
			} else {
				memset(y + 2, ' ', ylen - 2);
			}
		}
	}
	char err[512];
	if (ldev_rewrite(&l->devs, p->nb_spec, p->nb_text, p->nb_len, err, sizeof(err))) {
		loader_printf(l, "warning: %s; the one-shot boot is not taken\n", err);
		return -1;
	}
	loader_printf(l, "%s: taken once, now disabled\n", p->nb_spec);
	return 0;
}

static int plan_load(struct loader *l, struct plan *p)
{
	if (p->have_conf)
		for (unsigned i = 0; i < p->conf.nvars; i++) {
			const struct lconf_var *v = &p->conf.vars[i];
			if (lconf_is_directive(&p->conf, v->name))
				continue;
			loader_setenv(l, v->name, v->value);
			if (!strcmp(v->name, "cmdline"))
				l->cmdline_set = true;
		}
	loader_printf(l, "Loading %s\n", p->what);
	/* An explicit cmdline (set, -e) wins over the configuration's, but
	 * not over the one-shot request's own. */
	const char *args = p->has_args ? p->args : NULL;
	if (args && l->cmdline_set && !p->nb_text)
		args = NULL;
	kload_clear(&l->set);
	if (load_kernel(l, p->kernel, args))
		goto fail;
	for (unsigned i = 0; i < p->nfiles; i++) {
		const struct plan_file *f = &p->files[i];
		if (load_file(l, f->spec, f->type, f->args[0] ? f->args : NULL))
			goto fail;
	}
	if (p->nb_text && nextboot_disable(l, p))
		goto fail;
	return 0;
fail:
	kload_clear(&l->set);
	return -1;
}

/* Loads what the devices name, the one-shot override first (when it
 * cannot be used or disabled, the regular configuration instead). */
static int autoload(struct loader *l)
{
	struct plan *p = plan_find(l, true);
	if (p && p->nb_text) {
		/* A one-shot that cannot be used is reported, not fatal: the
		 * regular configuration is next. */
		bool script = l->script;
		l->script = false;
		int r = plan_load(l, p);
		l->script = script;
		plan_free(p);
		if (!r)
			return 0;
		p = plan_find(l, false);
	}
	if (!p)
		return fail(l, "nothing to boot: no grub.cfg, /vmlinuz, host0:/boot/loader.conf "
			       "or host0:/boot/kernel/kernel found (load a kernel, then boot)");
	int r = plan_load(l, p);
	plan_free(p);
	return r;
}

/* ---- booting ---- */

static int do_boot(struct loader *l, bool single)
{
	if (!l->set.have_kernel && autoload(l))
		return -1;
	char err[1024], final[4096];
	struct guest_mem *gm;
	if (target_mem(l->target, l->mem_size, &gm, err, sizeof(err)))
		return fail(l, "%s", err);
	struct boot_entry entry;
	unsigned nenv;
	const char *const *env = env_list(l, &nenv);
	const char *cmdline = l->set.freebsd ? NULL : loader_getenv(l, "cmdline");
	if (kload_boot(&l->set, gm, cmdline, single, env, nenv, &entry, final, sizeof(final), err,
		       sizeof(err)))
		return fail(l, "%s", err);
	struct target_load loads[KLOAD_MAX_FILES + 1];
	unsigned n = 0;
	loads[n++] = (struct target_load){ "kernel", l->set.kernel.spec, l->set.kernel.size };
	for (unsigned i = 0; i < l->set.nfiles; i++)
		loads[n++] = (struct target_load){ l->set.files[i].type, l->set.files[i].spec,
						  l->set.files[i].size };
	struct target *t = l->target;
	l->target = NULL; /* commit frees it, also when it fails */
	if (target_commit(t, &entry, final, loads, n, err, sizeof(err))) {
		l->quit = true;
		l->script = true; /* nothing to go back to: this ends the session */
		return fail(l, "%s", err);
	}
	l->booted = true;
	loader_printf(l, "%s: %s ready at rip 0x%llx; run it with: khyve [options] %s\n", l->vmname,
		      entry.format_name ? entry.format_name : "kernel",
		      (unsigned long long)entry.rip, l->vmname);
	return 0;
}

/* The countdown: 1 to boot, 0 when a key stopped it, -1 at end of input. */
static int countdown(struct loader *l, long secs, const char *what)
{
	if (secs <= 0)
		return 1;
	loader_printf(l, "\nHit [Enter] to boot immediately, or any other key for command prompt.\n");
	for (long s = secs; s > 0; s--) {
		loader_printf(l, "\rBooting [%s] in %ld second%s... ", what, s, s == 1 ? "" : "s");
		char c;
		int r = le_getc(&l->le, 1000, &c);
		if (r == 1) {
			loader_printf(l, "\n");
			return c == '\r' || c == '\n' ? 1 : 0;
		}
		if (r == -1 || (r == -2 && *l->signalled)) {
			loader_printf(l, "\n");
			return r == -1 ? 1 : 0;
		}
	}
	loader_printf(l, "\n");
	return 1;
}

static long autoboot_delay(struct loader *l, bool *disabled)
{
	const char *d = loader_getenv(l, "autoboot_delay");
	*disabled = d && !strcasecmp(d, "NO");
	uint64_t v;
	if (!d || parse_uint(d, 3600, &v))
		return 10;
	return (long)v;
}

static int do_autoboot(struct loader *l, long secs)
{
	char what[1100];
	if (l->set.have_kernel) {
		snprintf(what, sizeof(what), "%s", l->set.kernel.spec);
	} else {
		struct plan *p = plan_find(l, true);
		if (!p)
			return fail(l, "nothing to boot: no grub.cfg, /vmlinuz, host0:/boot/loader.conf "
				       "or host0:/boot/kernel/kernel found (load a kernel, then boot)");
		snprintf(what, sizeof(what), "%s", p->kernel);
		plan_free(p);
	}
	int r = l->script ? 1 : countdown(l, secs, what);
	if (r == 0)
		return 0; /* to the prompt */
	return do_boot(l, false);
}

/* ---- commands ---- */

struct command {
	const char *name, *usage, *help;
	int (*fn)(struct loader *l, int argc, char **argv);
};

static const struct command commands[];

static int cmd_help(struct loader *l, int argc, char **argv)
{
	for (const struct command *c = commands; c->name; c++)
		if (argc < 2 || !strcmp(argv[1], c->name))
			loader_printf(l, "  %-40s %s\n", c->usage, c->help);
	return 0;
}

static void ls_one(void *opaque, const char *name, bool dir, uint64_t size)
{
	struct loader *l = opaque;
	if (dir)
		loader_printf(l, " d  %s\n", name);
	else
		loader_printf(l, "    %s  %llu\n", name, (unsigned long long)size);
}

static int cmd_ls(struct loader *l, int argc, char **argv)
{
	int i = 1;
	if (i < argc && !strcmp(argv[i], "-l"))
		i++;
	const char *spec = i < argc ? argv[i] : "/";
	char err[1024];
	char dev[LDEV_NAME_MAX], path[1024];
	if (ldev_split(spec, currdev(l), dev, sizeof(dev), path, sizeof(path), err, sizeof(err)))
		return fail(l, "%s", err);
	loader_printf(l, "%s:%s\n", dev, path);
	if (ldev_ls(&l->devs, spec, currdev(l), ls_one, l, err, sizeof(err)))
		return fail(l, "%s", err);
	return 0;
}

static void lsdev_line(void *opaque, const char *line)
{
	loader_printf(opaque, "%s\n", line);
}

static int cmd_lsdev(struct loader *l, int argc, char **argv)
{
	bool verbose = argc > 1 && !strcmp(argv[1], "-v");
	if (argc > 1 + verbose)
		return fail(l, "usage: lsdev [-v]");
	ldevs_list(&l->devs, verbose, lsdev_line, l);
	return 0;
}

static int cmd_load(struct loader *l, int argc, char **argv)
{
	const char *type = NULL;
	int i = 1;
	if (i + 1 < argc && !strcmp(argv[i], "-t")) {
		type = argv[i + 1];
		i += 2;
	}
	if (i >= argc)
		return fail(l, "usage: load [-t type] file [args...]");
	for (const char *t = type; t && *t; t++)
		if (!isalnum((unsigned char)*t) && !strchr("_.-", *t))
			return fail(l, "load -t %s: a type is a word (initrd, module, md_image, ...)", type);
	char args[4096];
	join(argv, i + 1, argc, args, sizeof(args));
	const char *a = i + 1 < argc ? args : NULL;
	if (!type || !strcmp(type, "kernel")) {
		if (!type && l->set.have_kernel) {
			if (!l->set.freebsd && strcmp(l->set.format ? l->set.format : "", "Multiboot"))
				return fail(l, "%s: a kernel is loaded already (unload first, or load "
					       "-t initrd)", argv[i]);
			char spec[1100];
			module_find(l, argv[i], spec, sizeof(spec));
			return load_file(l, spec, "module", a);
		}
		if (type && l->set.have_kernel)
			kload_clear(&l->set);
		return load_kernel(l, argv[i], a);
	}
	if (!l->set.have_kernel)
		return fail(l, "%s: load a kernel first", argv[i]);
	char spec[1100];
	if (!strcmp(type, "module"))
		module_find(l, argv[i], spec, sizeof(spec));
	else
		snprintf(spec, sizeof(spec), "%s", argv[i]);
	return load_file(l, spec, type, a);
}

static int cmd_unload(struct loader *l, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	kload_clear(&l->set);
	return 0;
}

static int cmd_set(struct loader *l, int argc, char **argv)
{
	if (argc < 2)
		return fail(l, "usage: set name=value");
	char line[4096];
	join(argv, 1, argc, line, sizeof(line));
	char *eq = strchr(line, '=');
	const char *value = "";
	if (eq) {
		*eq = 0;
		value = eq + 1;
	}
	if (!line[0] || strchr(line, ' '))
		return fail(l, "set: '%s' is no variable name", line);
	int r = loader_setenv(l, line, value);
	if (r)
		return fail(l, "set: %s", r == -ENOSPC ? "environment full" : strerror(-r));
	if (!strcmp(line, "cmdline"))
		l->cmdline_set = true;
	return 0;
}

static int cmd_unset(struct loader *l, int argc, char **argv)
{
	if (argc != 2)
		return fail(l, "usage: unset name");
	loader_unsetenv(l, argv[1]);
	if (!strcmp(argv[1], "cmdline"))
		l->cmdline_set = false;
	return 0;
}

static int cmd_show(struct loader *l, int argc, char **argv)
{
	if (argc > 1) {
		const char *v = loader_getenv(l, argv[1]);
		if (!v)
			return fail(l, "%s: not set", argv[1]);
		loader_printf(l, "%s\n", v);
		return 0;
	}
	for (unsigned i = 0; i < l->nenv; i++)
		loader_printf(l, "%s\n", l->env[i]);
	return 0;
}

static int cmd_boot(struct loader *l, int argc, char **argv)
{
	bool single = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-s"))
			single = true;
		else
			return fail(l, "usage: boot [-s] [kernel]");
	}
	if (i < argc) {
		char args[4096];
		join(argv, i + 1, argc, args, sizeof(args));
		kload_clear(&l->set);
		if (load_kernel(l, argv[i], i + 1 < argc ? args : NULL))
			return -1;
	}
	return do_boot(l, single);
}

static int cmd_autoboot(struct loader *l, int argc, char **argv)
{
	bool disabled;
	long secs = autoboot_delay(l, &disabled);
	if (argc > 1) {
		uint64_t v;
		if (parse_uint(argv[1], 3600, &v))
			return fail(l, "usage: autoboot [seconds]");
		secs = (long)v;
	}
	return do_autoboot(l, secs);
}

static int cmd_reboot(struct loader *l, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	loader_printf(l, "Rebooting the loader: everything unloaded, environment reset\n");
	kload_clear(&l->set);
	loader_reset_env(l);
	if (!l->script) {
		bool disabled;
		long secs = autoboot_delay(l, &disabled);
		if (!disabled) {
			struct plan *p = plan_find(l, true);
			if (p) {
				plan_free(p);
				int r = do_autoboot(l, secs);
				if (r || l->booted)
					return r;
			}
		}
	}
	return 0;
}

static int cmd_include(struct loader *l, int argc, char **argv)
{
	if (argc < 2)
		return fail(l, "usage: include file...");
	if (l->depth >= 8)
		return fail(l, "include: nested too deep");
	for (int i = 1; i < argc; i++) {
		char *text, err[1024];
		size_t len;
		if (ldev_read(&l->devs, argv[i], currdev(l), CONF_MAX, &text, &len, err, sizeof(err)))
			return fail(l, "%s", err);
		l->depth++;
		int r = 0;
		for (char *save, *line = strtok_r(text, "\n", &save); line && !l->quit && !l->booted;
		     line = strtok_r(NULL, "\n", &save))
			if ((r = loader_exec(l, line)))
				break;
		l->depth--;
		free(text);
		if (r)
			return fail(l, "include: %s stopped at an error", argv[i]);
	}
	return 0;
}

static int cmd_read(struct loader *l, int argc, char **argv)
{
	long timeout = -1;
	const char *prompt = "", *var = NULL;
	for (int i = 1; i < argc; i++) {
		uint64_t v;
		if (!strcmp(argv[i], "-t") && i + 1 < argc && !parse_uint(argv[i + 1], 3600, &v)) {
			timeout = (long)v;
			i++;
		} else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
			prompt = argv[++i];
		} else if (argv[i][0] != '-' && !var) {
			var = argv[i];
		} else {
			return fail(l, "usage: read [-t seconds] [-p prompt] [variable]");
		}
	}
	loader_printf(l, "%s", prompt);
	char line[LE_LINE_MAX];
	size_t n = 0;
	for (;;) {
		char c;
		int r = le_getc(&l->le, timeout < 0 ? -1 : (int)timeout * 1000, &c);
		if (r == 0 || r == -1)
			break; /* timeout or end of input: what was typed */
		if (r == -2)
			continue;
		if (c == '\r' || c == '\n')
			break;
		if ((c == 0x7f || c == 0x08) && n) {
			n--;
			if (l->le.tty)
				loader_printf(l, "\b \b");
			continue;
		}
		if ((unsigned char)c >= 0x20 && n + 1 < sizeof(line)) {
			line[n++] = c;
			if (l->le.tty)
				le_write(&l->le, &c, 1);
		}
	}
	line[n] = 0;
	if (l->le.tty)
		loader_printf(l, "\n");
	if (var)
		loader_setenv(l, var, line);
	return 0;
}

static int cmd_echo(struct loader *l, int argc, char **argv)
{
	int i = 1;
	bool nl = true;
	if (i < argc && !strcmp(argv[i], "-n")) {
		nl = false;
		i++;
	}
	char line[4096];
	join(argv, i, argc, line, sizeof(line));
	loader_printf(l, "%s%s", line, nl ? "\n" : "");
	return 0;
}

static int cmd_quit(struct loader *l, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	l->quit = true;
	return 0;
}

static const struct command commands[] = {
	{ "help", "help [command]", "this list", cmd_help },
	{ "ls", "ls [path]", "list a directory (dev:/path, or on currdev)", cmd_ls },
	{ "lsdev", "lsdev [-v]", "list the devices: host0:, disk0:, disk0p1:, ...", cmd_lsdev },
	{ "load", "load [-t type] file [args...]",
	  "load a kernel (args: Linux's command line), or -t initrd|module|TYPE a file", cmd_load },
	{ "unload", "unload", "drop everything loaded", cmd_unload },
	{ "set", "set name=value", "set a variable (cmdline: Linux's; the rest: FreeBSD's kenv)",
	  cmd_set },
	{ "unset", "unset name", "remove a variable", cmd_unset },
	{ "show", "show [name]", "show the environment, or one variable", cmd_show },
	{ "boot", "boot [-s] [kernel [args...]]", "boot (-s: single user); leaves the VM ready",
	  cmd_boot },
	{ "autoboot", "autoboot [seconds]", "count down, then boot what the devices name",
	  cmd_autoboot },
	{ "reboot", "reboot", "start the loader over", cmd_reboot },
	{ "include", "include file...", "run the commands in a file", cmd_include },
	{ "read", "read [-t secs] [-p prompt] [var]", "read a line into a variable", cmd_read },
	{ "echo", "echo [-n] [text...]", "print text", cmd_echo },
	{ "quit", "quit", "leave without booting (exit status 4)", cmd_quit },
	{ NULL, NULL, NULL, NULL },
};

int loader_exec(struct loader *l, const char *line)
{
	char buf[8192];
	char *w[MAX_WORDS];
	int n = split(l, line, buf, sizeof(buf), w);
	if (n <= 0)
		return n;
	/* FreeBSD's loader takes "name=value" alone as set. */
	if (n == 1 && strchr(w[0], '=') && w[0][0] != '=') {
		char *argv[2] = { "set", w[0] };
		return cmd_set(l, 2, argv);
	}
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, w[0]))
			return c->fn(l, n, w);
	return fail(l, "%s: unknown command (try help)", w[0]);
}

int loader_run(struct loader *l)
{
	if (!l->script) {
		loader_printf(l, "khyveload: VM %s, %llu MiB; type help for the commands\n", l->vmname,
			      (unsigned long long)(l->mem_size >> 20));
		bool disabled;
		long secs = autoboot_delay(l, &disabled);
		if (!disabled) {
			struct plan *p = plan_find(l, true);
			if (p) {
				plan_free(p);
				do_autoboot(l, secs);
			}
		}
	}
	char line[LE_LINE_MAX];
	while (!l->booted && !l->quit && !*l->signalled) {
		int r = le_readline(&l->le, "OK ", line, sizeof(line));
		if (r == -EINTR) {
			if (*l->signalled)
				break;
			continue;
		}
		if (r == 0)
			break;
		loader_exec(l, line);
	}
	if (l->booted)
		return 0;
	if (!l->quit && l->script)
		fprintf(stderr, "khyveload: %s: input ended without boot; nothing left behind\n",
			l->vmname);
	return 4;
}
