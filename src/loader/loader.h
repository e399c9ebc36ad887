/* khyveload's OK prompt: the loader environment, the commands, autoboot
 * and nextboot. cmd/khyveload.c sets one up and runs it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader/dev.h"
#include "loader/kload.h"
#include "loader/lineedit.h"

struct target;

#define LOADER_ENV_MAX 512

struct loader {
	struct ldevs devs;
	struct kload_set set;
	struct lineedit le;
	struct target *target; /* the VM; NULL once committed */
	const char *vmname;
	uint64_t mem_size;
	/* The environment, "name=value" each, in order of first setting. */
	char *env[LOADER_ENV_MAX];
	unsigned nenv;
	/* -e settings, restored by reboot. */
	const char *const *initial_env;
	unsigned ninitial_env;
	bool script;    /* input is no terminal: an error ends the session */
	bool booted;    /* boot succeeded: the VM is ready for khyve */
	bool quit;      /* quit, or end of input */
	bool cmdline_set; /* cmdline came from set, load args or -e */
	int depth;      /* include nesting */
	volatile int *signalled; /* set by the program's signal handlers */
};

/* Initialises everything but devs, target and the console (the caller's). */
void loader_init(struct loader *l);
void loader_free(struct loader *l);
/* Resets the environment to its first state (-e settings, currdev). */
void loader_reset_env(struct loader *l);

const char *loader_getenv(struct loader *l, const char *name);
int loader_setenv(struct loader *l, const char *name, const char *value);
void loader_unsetenv(struct loader *l, const char *name);

void loader_printf(struct loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs one command line. 0, or -1 after an error message (printed). */
int loader_exec(struct loader *l, const char *line);

/* The session: on a terminal the autoboot countdown (when the devices
 * name something to boot and autoboot_delay is not "NO"), then the
 * prompt until boot succeeds or input ends; otherwise the commands on
 * the input, one per line. Returns 0 once booted, else 4. */
int loader_run(struct loader *l);
