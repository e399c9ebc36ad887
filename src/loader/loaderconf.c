/* loader.conf-style parsing (see loaderconf.h). */
#include "loader/loaderconf.h"

/* Names, paths and messages are cut to their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void lconf_free(struct lconf *c)
{
	for (unsigned i = 0; i < c->nvars; i++) {
		free(c->vars[i].name);
		free(c->vars[i].value);
	}
	c->nvars = 0;
}

static bool name_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '.' || ch == '-';
}

int lconf_parse(const char *text, size_t len, struct lconf *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	size_t pos = 0;
	for (unsigned line = 1; pos < len; line++) {
		size_t end = pos;
		while (end < len && text[end] != '\n')
			end++;
		const char *p = text + pos, *e = text + end;
		pos = end + 1;
		while (p < e && isspace((unsigned char)*p))
			p++;
		if (p == e || *p == '#')
			continue;
		const char *n0 = p;
		while (p < e && name_char(*p))
			p++;
		const char *n1 = p;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		if (n1 == n0 || p == e || *p != '=') {
			snprintf(err, errlen, "line %u: not a name=value assignment", line);
			lconf_free(c);
			return -EINVAL;
		}
		p++;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		const char *v0 = p, *v1;
		if (p < e && *p == '"') {
			v0 = ++p;
			while (p < e && *p != '"')
				p++;
			if (p == e) {
				snprintf(err, errlen, "line %u: unterminated quote", line);
				lconf_free(c);
				return -EINVAL;
			}
			v1 = p++;
		} else {
			while (p < e && !isspace((unsigned char)*p) && *p != '#')
				p++;
			v1 = p;
		}
		while (p < e && isspace((unsigned char)*p))
			p++;
		if (p < e && *p != '#') {
			snprintf(err, errlen, "line %u: text after the value", line);
			lconf_free(c);
			return -EINVAL;
		}
		if (c->nvars == LCONF_MAX_VARS) {
			snprintf(err, errlen, "line %u: more than %u settings", line, LCONF_MAX_VARS);
			lconf_free(c);
			return -E2BIG;
		}
		struct lconf_var *v = &c->vars[c->nvars];
		v->name = strndup(n0, (size_t)(n1 - n0));
		v->value = strndup(v0, (size_t)(v1 - v0));
		if (!v->name || !v->value) {
			free(v->name);
			free(v->value);
			lconf_free(c);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		c->nvars++;
	}
	return 0;
}

const char *lconf_get(const struct lconf *c, const char *name)
{
	for (unsigned i = c->nvars; i-- > 0;)
		if (!strcmp(c->vars[i].name, name))
			return c->vars[i].value;
	return NULL;
}

bool lconf_yes(const char *v)
{
	return v && (!strcasecmp(v, "yes") || !strcmp(v, "1") || !strcasecmp(v, "true") ||
		     !strcasecmp(v, "on"));
}

static const char *suffix_of(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	return n > s && !strcmp(name + n - s, suffix) ? name + n - s : NULL;
}

/* NAME's value for NAME_what, or NULL. */
static const char *module_attr(const struct lconf *c, const char *name, size_t nlen,
			       const char *what)
{
	char key[300];
	if (nlen + strlen(what) + 2 > sizeof(key))
		return NULL;
	snprintf(key, sizeof(key), "%.*s_%s", (int)nlen, name, what);
	return lconf_get(c, key);
}

unsigned lconf_modules(const struct lconf *c, struct lconf_module *out, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < c->nvars && n < max; i++) {
		const char *s = suffix_of(c->vars[i].name, "_load");
		if (!s)
			continue;
		const char *name = c->vars[i].name;
		size_t nlen = (size_t)(s - name);
		/* The last _load line of a name decides, counted once. */
		if (lconf_get(c, name) != c->vars[i].value || !lconf_yes(c->vars[i].value))
			continue;
		struct lconf_module *m = &out[n++];
		m->file = module_attr(c, name, nlen, "name");
		m->type = module_attr(c, name, nlen, "type");
		m->flags = module_attr(c, name, nlen, "flags");
		snprintf(m->base, sizeof(m->base), "%.*s", (int)nlen, name);
		if (!m->file)
			m->file = m->base;
	}
	return n;
}

bool lconf_is_directive(const struct lconf *c, const char *name)
{
	if (!strcmp(name, "kernel") || !strcmp(name, "bootfile") || suffix_of(name, "_load"))
		return true;
	static const char *const attrs[] = { "_name", "_type", "_flags" };
	for (unsigned a = 0; a < 3; a++) {
		const char *s = suffix_of(name, attrs[a]);
		if (!s)
			continue;
		char key[300];
		size_t nlen = (size_t)(s - name);
		if (nlen + 6 > sizeof(key))
			return false;
		snprintf(key, sizeof(key), "%.*s_load", (int)nlen, name);
		if (lconf_get(c, key))
			return true;
	}
	return false;
}
