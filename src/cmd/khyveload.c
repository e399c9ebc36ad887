/* khyveload: bhyveload(8) for khyve. Creates the named VM, offers the OK
 * prompt (loader/loader.h) on the terminal or the -c device, and leaves
 * the VM's memory and entry state for `khyve NAME` once boot succeeds. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader/loader.h"
#include "loader/target.h"
#include "util/parse.h"
#include "util/terminal.h"

#define EXIT_USAGE 4

static volatile int signalled;

static void on_signal(int sig)
{
	signalled = sig;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: khyveload [-S] [-c cons-dev] [-d disk-path]... [-e name=value]...\n"
		   "                 [-h host-path] [-l loader] [-m mem-size] vmname\n");
}

static struct loader l;
static const char **env;

/* Bad input: one line, exit 4, whatever was opened closed again. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	ldevs_free(&l.devs);
	free(env);
	env = NULL;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "khyveload: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	const char *cons = NULL, *host = NULL, *disks[LDEV_MAX_DISKS];
	ldevs_init(&l.devs);
	env = calloc((size_t)argc, sizeof(*env));
	unsigned ndisks = 0, nenv = 0;
	uint64_t mem = 256ULL << 20; /* bhyveload's default */
	int opt;
	if (!env)
		return usage_error("out of memory");
	while ((opt = getopt(argc, argv, ":Sc:d:e:h:l:m:")) != -1) {
		switch (opt) {
		case 'S':
			/* Wiring is khyve's business when it runs the VM (its
			 * -S); loading touches each page once anyway. */
			break;
		case 'c':
			cons = optarg;
			break;
		case 'd':
			if (ndisks == LDEV_MAX_DISKS)
				return usage_error("-d: at most %d disks", LDEV_MAX_DISKS);
			disks[ndisks++] = optarg;
			break;
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=')
				return usage_error("-e %s: not name=value", optarg);
			env[nenv++] = optarg;
			break;
		case 'h':
			host = optarg;
			break;
		case 'l':
			return usage_error("-l %s: khyveload has its loader built in; no other loader "
					   "can be used", optarg);
		case 'm': {
			int r = parse_mem_size(optarg, &mem);
			if (r || mem < (16ULL << 20) || mem % 4096)
				return usage_error("-m %s: not a memory size of 16M or more in whole pages "
						   "(e.g. 512M, 2G)", optarg);
			break;
		}
		case ':':
			usage(stderr);
			return usage_error("-%c needs an argument", optopt);
		default:
			usage(stderr);
			return usage_error("unknown option -%c", optopt);
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return usage_error(optind == argc ? "no VM name given" : "one VM name only");
	}
	const char *name = argv[optind];
	char err[1024];

	/* Everything that can be checked before the VM exists is. */
	if (host && ldevs_set_host(&l.devs, host, err, sizeof(err)))
		return usage_error("-h %s", err);
	for (unsigned i = 0; i < ndisks; i++)
		if (ldevs_add_disk(&l.devs, disks[i], err, sizeof(err)))
			return usage_error("-d %s", err);

	int in = STDIN_FILENO, out = STDOUT_FILENO;
	if (cons) {
		in = out = open(cons, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (in < 0)
			return usage_error("-c %s: %s", cons, strerror(errno));
	}
	bool tty = isatty(in);

	struct target *t;
	if (target_open(name, &t, err, sizeof(err))) {
		if (cons)
			close(in);
		return usage_error("%s", err);
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	loader_init(&l);
	l.target = t;
	l.vmname = name;
	l.mem_size = mem;
	l.initial_env = env;
	l.ninitial_env = nenv;
	l.script = !tty;
	l.signalled = &signalled;
	le_init(&l.le, in, out, tty);
	loader_reset_env(&l);
	if (tty)
		terminal_enter_raw(in);

	int status = loader_run(&l);
	if (tty)
		terminal_restore();
	if (l.target) {
		target_abort(l.target);
		l.target = NULL;
		if (signalled)
			fprintf(stderr, "khyveload: %s: stopped by signal %d; nothing left behind\n", name,
				signalled);
	}
	loader_free(&l);
	ldevs_free(&l.devs);
	free(env);
	if (cons)
		close(in);
	return status;
}
