/* grub.cfg: the default entry's linux and initrd lines (see grubcfg.h).
 * The text comes from a guest's disk: every size is bounded, nesting is
 * limited, and nothing here recurses more than GRUB_DEPTH deep. */
#include "loader/grubcfg.h"

/* Names, paths and messages are cut to their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRUB_DEPTH 32
#define GRUB_MAX_ENTRIES 128
#define GRUB_MAX_VARS 256
#define GRUB_WORD_MAX 8192
/* A '$' that must not expand (it was single-quoted or escaped). */
#define LIT_DOLLAR '\x01'

struct cmd {
	unsigned nw;
	char **w;
};

struct entry {
	char path[64];   /* "0", "2>1" */
	char title[GRUB_TITLE_MAX];
	char id[GRUB_TITLE_MAX];
	bool submenu;
	char kernel[GRUB_PATH_MAX], args[GRUB_ARGS_MAX];
	unsigned ninitrd;
	char initrd[GRUB_INITRD_MAX][GRUB_PATH_MAX];
	/* The first lines seen in branches not taken. */
	char fb_kernel[GRUB_PATH_MAX], fb_args[GRUB_ARGS_MAX];
	unsigned fb_ninitrd;
	char fb_initrd[GRUB_INITRD_MAX][GRUB_PATH_MAX];
};

struct ctx {
	struct cmd *cmds;
	size_t ncmds, cap;
	char *names[GRUB_MAX_VARS], *values[GRUB_MAX_VARS];
	unsigned nvars;
	struct entry *entries;
	unsigned nentries;
	char *err;
	size_t errlen;
	int fail;
};

/* ---- lexing ---- */

struct word {
	char *s;
	size_t len, cap;
};

static int word_put(struct word *w, char ch)
{
	if (w->len + 2 > w->cap) {
		if (w->cap >= GRUB_WORD_MAX)
			return -E2BIG;
		size_t cap = w->cap ? w->cap * 2 : 32;
		char *s = realloc(w->s, cap);
		if (!s)
			return -ENOMEM;
		w->s = s;
		w->cap = cap;
	}
	w->s[w->len++] = ch;
	w->s[w->len] = 0;
	return 0;
}

static int cmd_push_word(struct cmd *c, char *s)
{
	char **w = realloc(c->w, (c->nw + 1) * sizeof(*w));
	if (!w)
		return -ENOMEM;
	c->w = w;
	c->w[c->nw++] = s;
	return 0;
}

static int ctx_new_cmd(struct ctx *x)
{
	if (x->ncmds && !x->cmds[x->ncmds - 1].nw)
		return 0; /* reuse the empty one */
	if (x->ncmds == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		struct cmd *c = realloc(x->cmds, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		x->cmds = c;
		x->cap = cap;
	}
	x->cmds[x->ncmds++] = (struct cmd){ 0 };
	return 0;
}

static bool is_split_keyword(const char *w)
{
	static const char *const kw[] = { "then", "else", "fi", "do", "done", "{", "}" };
	for (unsigned i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
		if (!strcmp(w, kw[i]))
			return true;
	return false;
}

/* Ends a word: keywords at a command's start and braces become commands
 * of their own. */
static int finish_word(struct ctx *x, struct word *w, bool quoted)
{
	if (!w->s)
		return 0;
	char *s = w->s;
	*w = (struct word){ 0 };
	struct cmd *c = &x->cmds[x->ncmds - 1];
	bool alone = !quoted && (!strcmp(s, "{") || !strcmp(s, "}") ||
				 (c->nw == 0 && is_split_keyword(s)));
	int r;
	if (alone && c->nw && (r = ctx_new_cmd(x))) {
		free(s);
		return r;
	}
	c = &x->cmds[x->ncmds - 1];
	if ((r = cmd_push_word(c, s))) {
		free(s);
		return r;
	}
	if (alone)
		return ctx_new_cmd(x);
	return 0;
}

static int lex(struct ctx *x, const char *t, size_t len)
{
	struct word w = { 0 };
	bool quoted = false; /* the current word had quotes: never a keyword */
	int r = ctx_new_cmd(x);
	for (size_t i = 0; !r && i < len; i++) {
		char ch = t[i];
		if (ch == '\\' && i + 1 < len) {
			char n = t[++i];
			if (n == '\n')
				continue;
			r = word_put(&w, n == '$' ? LIT_DOLLAR : n);
		} else if (ch == '\'') {
			quoted = true;
			if ((r = word_put(&w, 0)))
				break;
			w.len--; /* an empty '' is still a word */
			for (i++; i < len && t[i] != '\''; i++)
				if ((r = word_put(&w, t[i] == '$' ? LIT_DOLLAR : t[i])))
					break;
		} else if (ch == '"') {
			quoted = true;
			if ((r = word_put(&w, 0)))
				break;
			w.len--;
			for (i++; !r && i < len && t[i] != '"'; i++) {
				if (t[i] == '\\' && i + 1 < len &&
				    strchr("$\"\\\n", t[i + 1])) {
					i++;
					if (t[i] != '\n')
						r = word_put(&w, t[i] == '$' ? LIT_DOLLAR : t[i]);
				} else {
					r = word_put(&w, t[i]);
				}
			}
		} else if (ch == '#' && !w.s) {
			while (i + 1 < len && t[i + 1] != '\n')
				i++;
		} else if (ch == '\n' || ch == ';') {
			if (!(r = finish_word(x, &w, quoted)))
				r = ctx_new_cmd(x);
			quoted = false;
		} else if (ch == ' ' || ch == '\t' || ch == '\r') {
			r = finish_word(x, &w, quoted);
			quoted = false;
		} else {
			r = word_put(&w, ch);
		}
	}
	if (!r)
		r = finish_word(x, &w, quoted);
	free(w.s);
	return r;
}

/* ---- variables and expansion ---- */

static const char *var_get(struct ctx *x, const char *name, size_t n)
{
	for (unsigned i = 0; i < x->nvars; i++)
		if (strlen(x->names[i]) == n && !memcmp(x->names[i], name, n))
			return x->values[i];
	return "";
}

static void var_set(struct ctx *x, const char *name, const char *value)
{
	for (unsigned i = 0; i < x->nvars; i++)
		if (!strcmp(x->names[i], name)) {
			char *v = strdup(value);
			if (v) {
				free(x->values[i]);
				x->values[i] = v;
			}
			return;
		}
	if (x->nvars == GRUB_MAX_VARS)
		return;
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return;
	}
	x->names[x->nvars] = n;
	x->values[x->nvars++] = v;
}

/* Expands $name and ${name} into out (size len, truncating). */
static void expand(struct ctx *x, const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (const char *p = in; *p && o + 1 < len; p++) {
		if (*p == '$' && (p[1] == '{' || isalnum((unsigned char)p[1]) || p[1] == '_')) {
			const char *n0, *n1;
			if (p[1] == '{') {
				n0 = p + 2;
				n1 = strchr(n0, '}');
				if (!n1) {
					out[o++] = *p;
					continue;
				}
				p = n1;
			} else {
				n0 = n1 = p + 1;
				while (isalnum((unsigned char)*n1) || *n1 == '_')
					n1++;
				p = n1 - 1;
			}
			const char *v = var_get(x, n0, (size_t)(n1 - n0));
			while (*v && o + 1 < len)
				out[o++] = *v++;
			continue;
		}
		out[o++] = *p == LIT_DOLLAR ? '$' : *p;
	}
	out[o] = 0;
}

/* A path without its "(device)" prefix. */
static void expand_path(struct ctx *x, const char *in, char *out, size_t len)
{
	char tmp[GRUB_PATH_MAX];
	expand(x, in, tmp, sizeof(tmp));
	const char *p = tmp;
	if (*p == '(') {
		int depth = 0;
		const char *q = p;
		for (; *q; q++) {
			depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
			if (!depth)
				break;
		}
		if (*q)
			p = q + 1;
	}
	snprintf(out, len, "%s", p);
}

/* ---- running the script ---- */

enum stop { STOP_EOF, STOP_BRACE, STOP_FI, STOP_ELSE, STOP_ELIF, STOP_DONE };

static enum stop run(struct ctx *x, size_t *i, bool active, struct entry *e, const char *prefix,
		     const char *tprefix, const char *iprefix, unsigned *counter, int depth);

static bool cmd_is(const struct cmd *c, const char *w)
{
	return c->nw && !strcmp(c->w[0], w);
}

/* Skips commands up to and including one starting with word (or to EOF). */
static void skip_to(struct ctx *x, size_t *i, const char *word)
{
	while (*i < x->ncmds && !cmd_is(&x->cmds[*i], word))
		(*i)++;
	if (*i < x->ncmds)
		(*i)++;
}

static void set_kernel(struct ctx *x, struct entry *e, bool active, const struct cmd *c)
{
	char *kernel = active ? e->kernel : e->fb_kernel, *args = active ? e->args : e->fb_args;
	if (!active && e->fb_kernel[0])
		return;
	if (c->nw < 2)
		return;
	expand_path(x, c->w[1], kernel, GRUB_PATH_MAX);
	size_t o = 0;
	args[0] = 0;
	for (unsigned k = 2; k < c->nw && o + 1 < GRUB_ARGS_MAX; k++) {
		char tmp[GRUB_ARGS_MAX];
		expand(x, c->w[k], tmp, sizeof(tmp));
		o += (size_t)snprintf(args + o, GRUB_ARGS_MAX - o, "%s%s", o ? " " : "", tmp);
	}
}

static void set_initrd(struct ctx *x, struct entry *e, bool active, const struct cmd *c)
{
	unsigned *n = active ? &e->ninitrd : &e->fb_ninitrd;
	char (*list)[GRUB_PATH_MAX] = active ? e->initrd : e->fb_initrd;
	if (!active && *n)
		return;
	*n = 0;
	for (unsigned k = 1; k < c->nw && *n < GRUB_INITRD_MAX; k++)
		expand_path(x, c->w[k], list[(*n)++], GRUB_PATH_MAX);
}

static void menu(struct ctx *x, size_t *i, bool active, const struct cmd *c, bool submenu,
		 const char *prefix, const char *tprefix, const char *iprefix, unsigned *counter,
		 int depth)
{
	char title[GRUB_TITLE_MAX] = "", id[GRUB_TITLE_MAX] = "";
	for (unsigned k = 1; k < c->nw; k++) {
		char w[GRUB_TITLE_MAX];
		expand(x, c->w[k], w, sizeof(w));
		if (!w[0])
			continue; /* an unquoted expansion to nothing is no word */
		if (!strcmp(w, "--id") && k + 1 < c->nw) {
			expand(x, c->w[++k], id, sizeof(id));
		} else if (!strncmp(w, "--", 2)) {
			/* Options that take a value. */
			if ((!strcmp(w, "--class") || !strcmp(w, "--users") ||
			     !strcmp(w, "--hotkey")) && k + 1 < c->nw)
				k++;
		} else if (!title[0]) {
			snprintf(title, sizeof(title), "%s", w);
		}
	}
	/* The block follows: "{" (the lexer made it a command of its own). */
	if (*i >= x->ncmds || !cmd_is(&x->cmds[*i], "{"))
		return;
	(*i)++;
	unsigned index = (*counter)++;
	struct entry *e = NULL;
	if (x->nentries < GRUB_MAX_ENTRIES) {
		e = &x->entries[x->nentries++];
		memset(e, 0, sizeof(*e));
		e->submenu = submenu;
		snprintf(e->path, sizeof(e->path), "%s%u", prefix, index);
		snprintf(e->title, sizeof(e->title), "%s%s", tprefix, title);
		snprintf(e->id, sizeof(e->id), "%s%s", iprefix, id[0] ? id : title);
	}
	if (!submenu || !e) {
		run(x, i, active, e, prefix, tprefix, iprefix, counter, depth + 1);
		return;
	}
	char p2[64], t2[GRUB_TITLE_MAX], i2[GRUB_TITLE_MAX];
	snprintf(p2, sizeof(p2), "%s>", e->path);
	snprintf(t2, sizeof(t2), "%s>", e->title);
	snprintf(i2, sizeof(i2), "%s>", e->id);
	unsigned inner = 0;
	run(x, i, active, NULL, p2, t2, i2, &inner, depth + 1);
}

static enum stop run(struct ctx *x, size_t *i, bool active, struct entry *e, const char *prefix,
		     const char *tprefix, const char *iprefix, unsigned *counter, int depth)
{
	if (depth > GRUB_DEPTH) {
		/* Too deep to be a real configuration: the rest is ignored. */
		*i = x->ncmds;
		return STOP_EOF;
	}
	while (*i < x->ncmds) {
		const struct cmd *c = &x->cmds[(*i)++];
		if (!c->nw)
			continue;
		const char *w = c->w[0];
		if (!strcmp(w, "}"))
			return STOP_BRACE;
		if (!strcmp(w, "fi"))
			return STOP_FI;
		if (!strcmp(w, "else"))
			return STOP_ELSE;
		if (!strcmp(w, "elif"))
			return STOP_ELIF;
		if (!strcmp(w, "done"))
			return STOP_DONE;
		if (!strcmp(w, "if")) {
			/* Conditions are false: then and elif bodies run
			 * inactive, the else body as the block around it. */
			skip_to(x, i, "then");
			enum stop s;
			while ((s = run(x, i, false, e, prefix, tprefix, iprefix, counter, depth + 1)) ==
			       STOP_ELIF)
				skip_to(x, i, "then");
			if (s == STOP_ELSE)
				s = run(x, i, active, e, prefix, tprefix, iprefix, counter, depth + 1);
			if (s == STOP_EOF)
				return s;
		} else if (!strcmp(w, "for") || !strcmp(w, "while") || !strcmp(w, "until")) {
			skip_to(x, i, "do");
			if (run(x, i, false, e, prefix, tprefix, iprefix, counter, depth + 1) == STOP_EOF)
				return STOP_EOF;
		} else if (!strcmp(w, "function")) {
			skip_to(x, i, "{");
			if (run(x, i, false, NULL, prefix, tprefix, iprefix, counter, depth + 1) ==
			    STOP_EOF)
				return STOP_EOF;
		} else if (!strcmp(w, "{")) {
			if (run(x, i, active, e, prefix, tprefix, iprefix, counter, depth + 1) == STOP_EOF)
				return STOP_EOF;
		} else if (!strcmp(w, "menuentry") || !strcmp(w, "submenu")) {
			menu(x, i, active, c, w[0] == 's', prefix, tprefix, iprefix, counter, depth);
		} else if (active && c->nw == 1 && strchr(w, '=') && w[0] != '=') {
			/* "name=value" alone is an assignment too. */
			char name[128], value[GRUB_ARGS_MAX];
			const char *eq = strchr(w, '=');
			snprintf(name, sizeof(name), "%.*s", (int)(eq - w), w);
			expand(x, eq + 1, value, sizeof(value));
			if (strcmp(name, "menuentry_id_option"))
				var_set(x, name, value);
		} else if (!strcmp(w, "set") && active) {
			for (unsigned k = 1; k < c->nw; k++) {
				char *eq = strchr(c->w[k], '=');
				if (!eq || eq == c->w[k])
					continue;
				char name[128], value[GRUB_ARGS_MAX];
				snprintf(name, sizeof(name), "%.*s", (int)(eq - c->w[k]), c->w[k]);
				expand(x, eq + 1, value, sizeof(value));
				if (strcmp(name, "menuentry_id_option"))
					var_set(x, name, value);
			}
		} else if (e && (!strcmp(w, "linux") || !strcmp(w, "linux16") ||
				 !strcmp(w, "linuxefi"))) {
			set_kernel(x, e, active, c);
		} else if (e && (!strcmp(w, "initrd") || !strcmp(w, "initrd16") ||
				 !strcmp(w, "initrdefi"))) {
			set_initrd(x, e, active, c);
		}
	}
	return STOP_EOF;
}

static void ctx_free(struct ctx *x)
{
	for (size_t i = 0; i < x->ncmds; i++) {
		for (unsigned k = 0; k < x->cmds[i].nw; k++)
			free(x->cmds[i].w[k]);
		free(x->cmds[i].w);
	}
	free(x->cmds);
	for (unsigned i = 0; i < x->nvars; i++) {
		free(x->names[i]);
		free(x->values[i]);
	}
	free(x->entries);
}

/* The entry default names: an index path, a title path or an id path
 * (passes: 3 for all three, 1 for index paths only). */
static const struct entry *find_default(struct ctx *x, const char *def, int passes)
{
	for (int pass = 0; pass < passes; pass++)
		for (unsigned k = 0; k < x->nentries; k++) {
			const struct entry *e = &x->entries[k];
			const char *key = pass == 0 ? e->path : pass == 1 ? e->title : e->id;
			if (!strcmp(key, def))
				return e;
		}
	return NULL;
}

int grub_default_entry(const char *text, size_t len, struct grub_boot *out, char *err,
		       size_t errlen)
{
	struct ctx x = { .err = err, .errlen = errlen };
	memset(out, 0, sizeof(*out));
	x.entries = calloc(GRUB_MAX_ENTRIES, sizeof(*x.entries));
	int r = x.entries ? lex(&x, text, len) : -ENOMEM;
	if (r) {
		snprintf(err, errlen, r == -E2BIG ? "a word longer than %d bytes" : "out of memory",
			 GRUB_WORD_MAX);
		ctx_free(&x);
		return r == -E2BIG ? -EINVAL : r;
	}
	/* Debian's grub.cfg picks "--id" or "" by a feature test; every
	 * GRUB that writes such a file has the option. */
	var_set(&x, "menuentry_id_option", "--id");
	size_t i = 0;
	unsigned counter = 0;
	run(&x, &i, true, NULL, "", "", "", &counter, 0);
	out->nentries = x.nentries;

	char def[GRUB_TITLE_MAX];
	snprintf(def, sizeof(def), "%s", var_get(&x, "default", 7));
	if (!def[0] || !strcmp(def, "saved"))
		snprintf(def, sizeof(def), "0");
	const struct entry *e = find_default(&x, def, 3);
	if (!e)
		e = find_default(&x, "0", 1); /* GRUB falls back to the first */
	/* A submenu as the default: its first entry, by index path only (a
	 * title may read like any path, and a loop must not come of it). */
	while (e && e->submenu) {
		char first[80];
		snprintf(first, sizeof(first), "%s>0", e->path);
		e = find_default(&x, first, 1);
	}
	if (!e) {
		snprintf(err, errlen, "no menu entry");
		ctx_free(&x);
		return -ENOENT;
	}
	snprintf(out->title, sizeof(out->title), "%s", e->title);
	bool fb = !e->kernel[0];
	const char *kernel = fb ? e->fb_kernel : e->kernel;
	if (!kernel[0]) {
		snprintf(err, errlen, "entry '%s' has no linux line", e->title);
		ctx_free(&x);
		return -ENOENT;
	}
	snprintf(out->kernel, sizeof(out->kernel), "%s", kernel);
	snprintf(out->args, sizeof(out->args), "%s", fb ? e->fb_args : e->args);
	unsigned n = e->ninitrd ? e->ninitrd : e->fb_ninitrd;
	const char (*list)[GRUB_PATH_MAX] = e->ninitrd ? e->initrd : e->fb_initrd;
	for (unsigned k = 0; k < n; k++)
		snprintf(out->initrd[k], GRUB_PATH_MAX, "%s", list[k]);
	out->ninitrd = n;
	ctx_free(&x);
	return 0;
}
