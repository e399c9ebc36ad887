/* The boot configuration of an install image (loader/iso.h): isolinux /
 * syslinux configuration files and GRUB's grub.cfg, as text. No
 * libarchive here, so that the fuzz target covers all of it. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loader/grubcfg.h"
#include "loader/iso.h"

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

int iso_path_join(const char *dir, const char *path, char *out, size_t outlen)
{
	/* Build "dir/path" (or "path" when absolute), then fold components
	 * into out: "." and empty ones vanish, ".." pops one, and popping
	 * the root is an error rather than staying at "/" (such a path is a
	 * broken or hostile configuration, not one to guess about). */
	if (outlen < 2)
		return -EINVAL;
	char tmp[2 * ISO_PATH_MAX + 2];
	int n = path[0] == '/' ? snprintf(tmp, sizeof(tmp), "%s", path)
			       : snprintf(tmp, sizeof(tmp), "%s/%s", dir ? dir : "/", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -EINVAL;
	size_t o = 0;
	out[o++] = '/';
	const char *p = tmp;
	while (*p) {
		while (*p == '/')
			p++;
		const char *s = p;
		while (*p && *p != '/') {
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return -EINVAL;
			p++;
		}
		size_t cl = (size_t)(p - s);
		if (cl == 0 || (cl == 1 && s[0] == '.'))
			continue;
		if (cl == 2 && s[0] == '.' && s[1] == '.') {
			if (o == 1)
				return -EINVAL;
			o--; /* the '/' after the last component */
			while (o > 1 && out[o - 1] != '/')
				o--;
			continue;
		}
		if (o + cl + 1 >= outlen)
			return -EINVAL;
		memcpy(out + o, s, cl);
		o += cl;
		out[o++] = '/';
	}
	if (o > 1)
		o--; /* no trailing '/' */
	out[o] = 0;
	return 0;
}

/* The directory part of an absolute path. */
static void dirname_of(const char *path, char *dir, size_t len)
{
	snprintf(dir, len, "%s", path);
	char *s = strrchr(dir, '/');
	if (!s || s == dir)
		snprintf(dir, len, "/");
	else
		*s = 0;
}

/* A syslinux module or boot sector rather than a Linux kernel. */
static bool is_module(const char *k)
{
	static const char *const ext[] = { ".c32", ".com", ".cbt", ".bin", ".bs", ".bss", ".0",
					   ".img" };
	size_t n = strlen(k);
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		size_t e = strlen(ext[i]);
		if (n >= e && !strcasecmp(k + n - e, ext[i]))
			return true;
	}
	return false;
}

#define SL_MAX_LABELS 256
#define SL_ARG_MAX ISO_CMDLINE_MAX

struct sl_label {
	char name[ISO_LABEL_MAX];
	char kernel[ISO_PATH_MAX];
	char initrd[SL_ARG_MAX];
	char append[SL_ARG_MAX];
	bool has_append, menu_default, not_linux;
};

struct sl {
	const char *topdir;
	iso_read_fn read;
	void *opaque;
	struct sl_label *labels;
	unsigned nlabels;
	char deflt[SL_ARG_MAX];
	char append[SL_ARG_MAX];   /* a global APPEND, for labels without one */
	char *err;
	size_t errlen;
};

/* Copies at most len-1 bytes of the trimmed s into d. */
static void copy_trim(char *d, size_t len, const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	snprintf(d, len, "%s", s);
	size_t n = strlen(d);
	while (n && (d[n - 1] == ' ' || d[n - 1] == '\t'))
		d[--n] = 0;
}

static int sl_parse(struct sl *s, const char *text, size_t len, int depth);

static int sl_include(struct sl *s, const char *arg, int depth)
{
	char name[ISO_PATH_MAX], path[ISO_PATH_MAX];
	/* MENU INCLUDE takes "file [tagname]". */
	copy_trim(name, sizeof(name), arg);
	char *sp = strpbrk(name, " \t");
	if (sp)
		*sp = 0;
	if (depth >= ISO_INCLUDE_DEPTH)
		return fail(s->err, s->errlen, -ELOOP, "INCLUDE %s: nested more than %d deep", name,
			    ISO_INCLUDE_DEPTH);
	if (iso_path_join(s->topdir, name, path, sizeof(path)))
		return fail(s->err, s->errlen, -EINVAL, "INCLUDE %.200s: not a usable path", name);
	if (!s->read)
		return 0;
	char *buf = NULL;
	size_t n = 0;
	int r = s->read(s->opaque, path, &buf, &n);
	if (r == -ENOENT)
		return 0; /* syslinux goes on without a missing include */
	if (r)
		return fail(s->err, s->errlen, r, "INCLUDE %.200s: %s", path,
			    r == -EFBIG ? "too much configuration text" : strerror(-r));
	r = sl_parse(s, buf, n, depth + 1);
	free(buf);
	return r;
}

static int sl_parse(struct sl *s, const char *text, size_t len, int depth)
{
	struct sl_label *cur = NULL;
	bool in_text = false;
	size_t i = 0;
	while (i < len) {
		/* One line, at most SL_ARG_MAX bytes of it (the rest dropped). */
		char line[SL_ARG_MAX + 64];
		size_t o = 0;
		while (i < len && text[i] != '\n') {
			char c = text[i++];
			if (c == '\r' || c == 0)
				continue;
			if (c == '\t')
				c = ' ';
			if (o + 1 < sizeof(line))
				line[o++] = c;
		}
		i++;
		line[o] = 0;
		char *p = line;
		while (*p == ' ')
			p++;
		if (in_text) {
			if (!strncasecmp(p, "endtext", 7))
				in_text = false;
			continue;
		}
		if (!*p || *p == '#')
			continue;
		char kw[32];
		size_t k = 0;
		while (p[k] && p[k] != ' ' && k + 1 < sizeof(kw)) {
			kw[k] = p[k];
			k++;
		}
		kw[k] = 0;
		char *arg = p + k;
		while (*arg && *arg != ' ')
			arg++; /* a keyword longer than kw is skipped whole */
		while (*arg == ' ')
			arg++;

		if (!strcasecmp(kw, "menu")) {
			char sub[16];
			size_t m = 0;
			while (arg[m] && arg[m] != ' ' && m + 1 < sizeof(sub)) {
				sub[m] = arg[m];
				m++;
			}
			sub[m] = 0;
			const char *rest = arg + m;
			if (!strcasecmp(sub, "default")) {
				if (cur)
					cur->menu_default = true;
			} else if (!strcasecmp(sub, "include")) {
				int r = sl_include(s, rest, depth);
				if (r)
					return r;
			}
			continue; /* MENU LABEL, TITLE, colours ...: nothing to boot */
		}
		if (!strcasecmp(kw, "text")) {
			in_text = true; /* TEXT HELP ... ENDTEXT */
			continue;
		}
		if (!strcasecmp(kw, "include")) {
			int r = sl_include(s, arg, depth);
			if (r)
				return r;
			continue;
		}
		if (!strcasecmp(kw, "label")) {
			if (s->nlabels == SL_MAX_LABELS)
				return fail(s->err, s->errlen, -E2BIG, "more than %d LABELs",
					    SL_MAX_LABELS);
			cur = &s->labels[s->nlabels++];
			memset(cur, 0, sizeof(*cur));
			copy_trim(cur->name, sizeof(cur->name), arg);
			continue;
		}
		if (!strcasecmp(kw, "default")) {
			copy_trim(s->deflt, sizeof(s->deflt), arg);
			continue;
		}
		if (!strcasecmp(kw, "kernel") || !strcasecmp(kw, "linux")) {
			if (cur)
				copy_trim(cur->kernel, sizeof(cur->kernel), arg);
			continue;
		}
		if (!strcasecmp(kw, "com32") || !strcasecmp(kw, "localboot") ||
		    !strcasecmp(kw, "config") || !strcasecmp(kw, "boot") ||
		    !strcasecmp(kw, "bss") || !strcasecmp(kw, "pxe") || !strcasecmp(kw, "fdimage") ||
		    !strcasecmp(kw, "comboot")) {
			if (cur)
				cur->not_linux = true;
			continue;
		}
		if (!strcasecmp(kw, "initrd")) {
			if (cur)
				copy_trim(cur->initrd, sizeof(cur->initrd), arg);
			continue;
		}
		if (!strcasecmp(kw, "append")) {
			if (cur) {
				copy_trim(cur->append, sizeof(cur->append), arg);
				cur->has_append = true;
			} else {
				copy_trim(s->append, sizeof(s->append), arg);
			}
			continue;
		}
		/* TIMEOUT, PROMPT, UI, SAY, SERIAL, IPAPPEND ...: not about
		 * what boots. */
	}
	return 0;
}

/* Adds a comma-separated list of initrds, relative to dir. */
static int add_initrds(struct iso_boot *b, const char *list, const char *dir, char *err,
		       size_t errlen)
{
	char one[ISO_PATH_MAX];
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n) {
			if (n >= sizeof(one))
				return fail(err, errlen, -EINVAL, "an initrd path is too long");
			memcpy(one, p, n);
			one[n] = 0;
			if (b->ninitrd == ISO_INITRD_MAX)
				return fail(err, errlen, -E2BIG, "more than %d initrds", ISO_INITRD_MAX);
			if (iso_path_join(dir, one, b->initrd[b->ninitrd], ISO_PATH_MAX))
				return fail(err, errlen, -EINVAL, "initrd %.200s: not a usable path",
					    one);
			b->ninitrd++;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* kernel, initrd list and APPEND text into b: initrd= words are taken out
 * of the command line (syslinux consumes them; the kernel gets the files). */
static int sl_fill(struct iso_boot *b, const char *label, const char *kernel, const char *initrd,
		   const char *append, const char *dir, char *err, size_t errlen)
{
	snprintf(b->label, sizeof(b->label), "%s", label);
	if (iso_path_join(dir, kernel, b->kernel, sizeof(b->kernel)))
		return fail(err, errlen, -EINVAL, "kernel %.200s: not a usable path", kernel);
	int r = add_initrds(b, initrd, dir, err, errlen);
	if (r)
		return r;
	if (!strcmp(append, "-"))
		append = "";
	size_t o = 0;
	const char *p = append;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *w = p;
		while (*p && *p != ' ')
			p++;
		size_t n = (size_t)(p - w);
		if (!n)
			break;
		if (n > 7 && !strncmp(w, "initrd=", 7)) {
			char list[SL_ARG_MAX];
			snprintf(list, sizeof(list), "%.*s", (int)(n - 7), w + 7);
			r = add_initrds(b, list, dir, err, errlen);
			if (r)
				return r;
			continue;
		}
		if (o + (o ? 1 : 0) + n + 1 > sizeof(b->cmdline))
			return fail(err, errlen, -E2BIG, "the command line is longer than %d bytes",
				    ISO_CMDLINE_MAX - 1);
		if (o)
			b->cmdline[o++] = ' ';
		memcpy(b->cmdline + o, w, n);
		o += n;
	}
	b->cmdline[o] = 0;
	return 0;
}

static bool sl_bootable(const struct sl_label *l)
{
	return !l->not_linux && l->kernel[0] && !is_module(l->kernel);
}

int iso_syslinux_entry(const char *text, size_t len, const char *cfgpath,
		       iso_read_fn read_include, void *opaque, struct iso_boot *b, char *err,
		       size_t errlen)
{
	memset(b, 0, sizeof(*b));
	char dir[ISO_PATH_MAX];
	dirname_of(cfgpath, dir, sizeof(dir));
	snprintf(b->config, sizeof(b->config), "%s", cfgpath);
	struct sl s = { .topdir = dir, .read = read_include, .opaque = opaque, .err = err,
			.errlen = errlen };
	s.labels = calloc(SL_MAX_LABELS, sizeof(*s.labels));
	if (!s.labels)
		return fail(err, errlen, -ENOMEM, "out of memory");
	int r = sl_parse(&s, text, len, 0);
	if (r)
		goto out;

	/* MENU DEFAULT, then the LABEL DEFAULT names, then DEFAULT as
	 * "kernel args", then the first bootable LABEL. */
	const struct sl_label *pick = NULL;
	for (unsigned i = 0; i < s.nlabels && !pick; i++)
		if (s.labels[i].menu_default && sl_bootable(&s.labels[i]))
			pick = &s.labels[i];
	char dword[ISO_PATH_MAX] = "";
	const char *dargs = "";
	if (s.deflt[0]) {
		const char *e = strchr(s.deflt, ' ');
		size_t n = e ? (size_t)(e - s.deflt) : strlen(s.deflt);
		snprintf(dword, sizeof(dword), "%.*s", (int)n, s.deflt);
		dargs = e ? e + 1 : "";
	}
	for (unsigned i = 0; i < s.nlabels && !pick && dword[0]; i++)
		if (!strcmp(s.labels[i].name, dword) && sl_bootable(&s.labels[i]))
			pick = &s.labels[i];
	if (!pick && dword[0] && !is_module(dword)) {
		bool named = false;
		for (unsigned i = 0; i < s.nlabels; i++)
			named |= !strcmp(s.labels[i].name, dword);
		if (!named) {
			r = sl_fill(b, dword, dword, "", dargs[0] ? dargs : s.append, dir, err,
				    errlen);
			goto out;
		}
	}
	for (unsigned i = 0; i < s.nlabels && !pick; i++)
		if (sl_bootable(&s.labels[i]))
			pick = &s.labels[i];
	if (!pick) {
		r = fail(err, errlen, -ENOENT, "%.200s names no Linux kernel to boot", cfgpath);
		goto out;
	}
	r = sl_fill(b, pick->name, pick->kernel, pick->initrd,
		    pick->has_append ? pick->append : s.append, dir, err, errlen);
out:
	free(s.labels);
	return r;
}

int iso_grub_entry(const char *text, size_t len, const char *cfgpath, struct iso_boot *b,
		   char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->config, sizeof(b->config), "%s", cfgpath);
	struct grub_boot *g = calloc(1, sizeof(*g));
	if (!g)
		return fail(err, errlen, -ENOMEM, "out of memory");
	char gerr[256] = "";
	int r = grub_default_entry(text, len, g, gerr, sizeof(gerr));
	if (r) {
		r = fail(err, errlen, r, "%.200s: %s", cfgpath, gerr);
		goto out;
	}
	snprintf(b->label, sizeof(b->label), "%.*s", (int)sizeof(b->label) - 1, g->title);
	/* GRUB's paths are absolute on the image (the device prefix is gone). */
	if (iso_path_join("/", g->kernel, b->kernel, sizeof(b->kernel))) {
		r = fail(err, errlen, -EINVAL, "kernel %.200s: not a usable path", g->kernel);
		goto out;
	}
	for (unsigned i = 0; i < g->ninitrd && i < ISO_INITRD_MAX; i++) {
		if (iso_path_join("/", g->initrd[i], b->initrd[b->ninitrd], ISO_PATH_MAX)) {
			r = fail(err, errlen, -EINVAL, "initrd %.200s: not a usable path",
				 g->initrd[i]);
			goto out;
		}
		b->ninitrd++;
	}
	if (strlen(g->args) >= sizeof(b->cmdline)) {
		r = fail(err, errlen, -E2BIG, "the command line is too long");
		goto out;
	}
	snprintf(b->cmdline, sizeof(b->cmdline), "%s", g->args);
out:
	free(g);
	return r;
}
