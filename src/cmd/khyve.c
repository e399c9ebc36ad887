/* khyve(8): run a virtual machine, as bhyve(8) does. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/chardev.h"
#include "backend/listen.h"
#include "ctl/entry.h"
#include "ctl/server.h"
#include "ctl/vmdir.h"
#include "debug/gdb_stub.h"
#include "util/exitclean.h"
#include "util/log.h"
#include "util/parse.h"
#include "machine/machine.h"
#include "machine/registry.h"
#include "sandbox/sandbox.h"

#define EXIT_USAGE VM_EXIT_ERROR
#define MAX_MODULES 16
#define MAX_KENV 128

/* Static: the strings they point to live until exit. */
static struct boot_module modules[MAX_MODULES];
static const char *kenv[MAX_KENV]; /* --kenv: a FreeBSD kernel's environment */
static unsigned nkenv;
static const char *gdb_spec; /* -g PORT or -G [w][address:]port */
static char gdb_flag;        /* 'g' or 'G', for messages */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: khyve [-ADHPSuw] [-c [[cpus=]n][,sockets=n][,cores=n][,threads=n]]\n"
		"             [-m memsize[K|M|G|T]] [-l comN,backend] [-s slot,emulation[,conf]]\n"
		"             [-g port | -G [w][address:]port]\n"
		"             [--kernel FILE [--initrd FILE]... [--append CMDLINE]\n"
		"              [--kenv NAME=VALUE]...\n"
		"              [--boot-format auto|linux|pvh|multiboot|freebsd]]\n"
		"             [--debug-exit[=PORT]] [--dump-acpi DIR] [--no-sandbox] [--verbose]\n"
		"             vmname\n"
		"       (without --kernel: boot what a loader prepared in the named VM)\n"
		"       khyve --help | --version\n"
		"See khyve(8).\n");
}

enum long_only {
	OPT_KERNEL = 0x100,
	OPT_INITRD,
	OPT_APPEND,
	OPT_BOOT_FORMAT,
	OPT_KENV,
	OPT_DEBUG_EXIT,
	OPT_DUMP_ACPI,
	OPT_VERBOSE,
	OPT_NO_SANDBOX,
	OPT_VERSION,
};

static const struct option long_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "module", required_argument, NULL, OPT_INITRD },
	{ "append", required_argument, NULL, OPT_APPEND },
	{ "boot-format", required_argument, NULL, OPT_BOOT_FORMAT },
	{ "kenv", required_argument, NULL, OPT_KENV },
	{ "debug-exit", optional_argument, NULL, OPT_DEBUG_EXIT },
	{ "dump-acpi", required_argument, NULL, OPT_DUMP_ACPI },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "no-sandbox", no_argument, NULL, OPT_NO_SANDBOX },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* Bad input: one line, exit status 4. The only place that words errors
 * in terms of flags: library code names what is wrong, and the callers
 * here say which flag gave it. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s (see khyve --help)", msg);
	return EXIT_USAGE;
}

/* "-l comN,backend" */
static int parse_lpc(struct machine_config *cfg, const char *arg)
{
	const char *comma = strchr(arg, ',');
	char name[16];
	size_t len = comma ? (size_t)(comma - arg) : strlen(arg);
	if (len >= sizeof(name))
		return usage_error("-l: unknown LPC device '%s' (expected com1..com4)", arg);
	memcpy(name, arg, len);
	name[len] = '\0';
	const struct machine_com_port *dev = machine_com_find(name);
	if (!dev)
		return usage_error("-l: unknown LPC device '%s' (expected com1..com4)", name);
	if (!comma || !comma[1])
		return usage_error("-l %s: missing backend (e.g. -l com1,stdio)", name);
	int index = (int)(dev - machine_com_ports);
	if (cfg->com_backend[index])
		return usage_error("-l: %s is given twice", name);
	cfg->com_backend[index] = comma + 1;
	return 0;
}

/* Static: lives until exit, as the machine it describes. */
static struct machine_slots *pci_slots;

/* "-s [bus:]slot[:function],emulation[,conf]" (machine/slots.c). */
static int parse_slot(const char *arg)
{
	char err[512];
	if (machine_slots_add(&pci_slots, arg, err, sizeof(err)))
		return usage_error("-s %s: %s", arg, err);
	return 0;
}

/* A file the loader will read: there, readable, not a directory. */
static int check_input_file(const char *flag, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return usage_error("%s %s: %s", flag, path, strerror(errno));
	struct stat st;
	bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
	close(fd);
	if (dir)
		return usage_error("%s %s: %s", flag, path, strerror(EISDIR));
	return 0;
}

static int check_args(const struct machine_config *cfg, unsigned nmodules)
{
	char err[512];
	if (vm_check_mem_size(cfg->vm.mem_size, err, sizeof(err)))
		return usage_error("-m: %s", err);
	for (int i = 0; i < MACHINE_COM_PORTS; i++)
		if (cfg->com_backend[i] && chardev_check_spec(cfg->com_backend[i], err, sizeof(err)))
			return usage_error("-l %s: %s", machine_com_ports[i].name, err);
	if (gdb_spec) {
		const char *addr = gdb_flag == 'G' && gdb_spec[0] == 'w' ? gdb_spec + 1 : gdb_spec;
		if (tcp_check_spec(addr, err, sizeof(err)))
			return usage_error("-%c %s: %s", gdb_flag, gdb_spec, err);
	}
	if (cfg->boot.kernel_path && check_input_file("--kernel", cfg->boot.kernel_path))
		return EXIT_USAGE;
	for (unsigned i = 0; i < nmodules; i++)
		if (check_input_file("--initrd", modules[i].path))
			return EXIT_USAGE;
	if (cfg->dump_acpi_dir) {
		struct stat st;
		if (stat(cfg->dump_acpi_dir, &st) < 0)
			return usage_error("--dump-acpi %s: %s", cfg->dump_acpi_dir, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return usage_error("--dump-acpi %s: %s", cfg->dump_acpi_dir, strerror(ENOTDIR));
	}
	return 0;
}

/* --verbose: what the kernel loader decided, one line each. */
static void inform(void *opaque, const char *line)
{
	(void)opaque;
	log_info("%s", line);
}

/* For benchmarks: what the guest touched versus what khyve itself uses.
 * /proc/self/status is opened before the sandbox is on (which allows no
 * opening of files) and read at the end. */
static int status_fd = -1;

static void print_exit_stats(struct machine *m)
{
	uint64_t guest = guest_mem_resident_bytes(vm_mem(machine_vm(m)));
	char buf[4096];
	long hwm = -1;
	ssize_t n = status_fd >= 0 ? pread(status_fd, buf, sizeof(buf) - 1, 0) : -1;
	buf[n > 0 ? n : 0] = '\0';
	const char *line = strstr(buf, "VmHWM:");
	if (line)
		hwm = strtol(line + 6, NULL, 10);
	log_info("guest pages resident: %llu (%llu KiB); peak RSS %ld KiB",
		 (unsigned long long)(guest / 4096), (unsigned long long)(guest / 1024), hwm);
}

/* The named VM this khyve holds (ctl/vmdir.h). */
static bool started; /* the vCPUs ran */
static struct ctl_vm vmdir = { .dir_fd = -1, .lock_fd = -1 };
static bool destroy_on_poweroff; /* -D */
static bool destroy_requested;   /* khyvectl --destroy */

static void on_destroy(void *opaque)
{
	(void)opaque;
	destroy_requested = true;
}

static int on_wakeup(void *opaque)
{
	return machine_wakeup(opaque);
}

/* Let the VM go: removed when asked, or when this khyve made it and
 * failed to start (a failed start leaves nothing behind). */
static void release_vm(bool remove)
{
	char err[512];
	if (vmdir.lock_fd < 0)
		return;
	if (remove && ctl_vm_remove(&vmdir, err, sizeof(err)))
		log_error("%s", err);
	else if (!remove && !started)
		ctl_vm_abandon(&vmdir);
	else
		ctl_vm_close(&vmdir);
}

int main(int argc, char **argv)
{
	log_set_program("khyve");
	/* From the first instruction on, SIGTERM and friends wait for the event
	 * loop: one that arrives during start-up still ends in a clean
	 * poweroff (status 1), never in death by signal. */
	vm_block_signals();
	/* Sockets and lock notes go however khyve ends, a crash included
	 * (kill -9 aside: those are found stale and replaced next time). */
	exitclean_catch_crashes();
	struct machine_config cfg = {
		.vm = { .mem_size = 256ULL << 20, .topo = { 1, 1, 1, 1 } },
		.debug_exit_port = 0xf4,
		.rtc_localtime = true,
	};
	unsigned nmodules = 0;
	char err[512];
	int opt;

	bool mem_given = false;
	bool sandbox = true;
	while ((opt = getopt_long(argc, argv, ":ADHPSuwhc:m:l:s:g:G:", long_options, NULL)) != -1) {
		switch (opt) {
		case 'A': /* ACPI tables are always generated */
		case 'H': /* HLT is handled by KVM in the kernel */
		case 'P': /* PAUSE likewise */
		case 'w': /* unknown MSRs are KVM's business */
		case 'S':
			break;
		case 'D':
			destroy_on_poweroff = true;
			break;
		case 'u':
			cfg.rtc_localtime = false;
			break;
		case 'c':
			if (topology_parse(optarg, &cfg.vm.topo, err, sizeof(err)))
				return usage_error("-c: %s", err);
			break;
		case 'm': {
			int r = parse_mem_size(optarg, &cfg.vm.mem_size);
			if (r)
				return usage_error(r == -ERANGE ? "-m: '%s' is too large"
								: "-m: '%s' is not a size (e.g. 512M, 2G)",
						   optarg);
			mem_given = true;
			break;
		}
		case 'l':
			if (parse_lpc(&cfg, optarg))
				return EXIT_USAGE;
			break;
		case 's':
			if (parse_slot(optarg))
				return EXIT_USAGE;
			break;
		case 'g':
			if (strspn(optarg, "0123456789") != strlen(optarg) || !optarg[0])
				return usage_error("-g: '%s' is not a port (or use -G [w][address:]port)", optarg);
			gdb_spec = optarg;
			gdb_flag = 'g';
			break;
		case 'G':
			gdb_spec = optarg;
			gdb_flag = 'G';
			break;
		case OPT_KERNEL:
			cfg.boot.kernel_path = optarg;
			break;
		case OPT_INITRD: {
			if (nmodules == MAX_MODULES)
				return usage_error("--initrd: at most 16 modules, not more ('%s')", optarg);
			/* "path args": the module's own command line (Multiboot). */
			char *copy = strdup(optarg);
			if (!copy) {
				log_error("out of memory");
				return VM_EXIT_ERROR;
			}
			char *space = strchr(copy, ' ');
			if (space)
				*space++ = '\0';
			modules[nmodules++] = (struct boot_module){ copy, space };
			break;
		}
		case OPT_APPEND:
			cfg.boot.cmdline = optarg;
			break;
		case OPT_BOOT_FORMAT:
			if (!strcmp(optarg, "auto"))
				cfg.boot.format = BOOT_FORMAT_AUTO;
			else if (!strcmp(optarg, "linux") || !strcmp(optarg, "bzimage"))
				cfg.boot.format = BOOT_FORMAT_LINUX;
			else if (!strcmp(optarg, "pvh"))
				cfg.boot.format = BOOT_FORMAT_PVH;
			else if (!strcmp(optarg, "multiboot"))
				cfg.boot.format = BOOT_FORMAT_MULTIBOOT;
			else if (!strcmp(optarg, "freebsd"))
				cfg.boot.format = BOOT_FORMAT_FREEBSD;
			else
				return usage_error("--boot-format: '%s' is not one of auto, linux, pvh, multiboot, freebsd", optarg);
			break;
		case OPT_KENV: {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				return usage_error("--kenv: '%s' is not NAME=VALUE", optarg);
			if (nkenv == MAX_KENV)
				return usage_error("--kenv: at most %d, not more ('%s')", MAX_KENV, optarg);
			kenv[nkenv++] = optarg;
			break;
		}
		case OPT_DEBUG_EXIT: {
			cfg.debug_exit = true;
			if (optarg) {
				uint64_t port;
				if (parse_uint(optarg, 0xfffc, &port))
					return usage_error("--debug-exit: '%s' is not an I/O port (0-0xfffc)", optarg);
				cfg.debug_exit_port = (uint16_t)port;
			}
			break;
		}
		case OPT_DUMP_ACPI:
			cfg.dump_acpi_dir = optarg;
			break;
		case OPT_NO_SANDBOX:
			sandbox = false;
			break;
		case OPT_VERBOSE:
			cfg.boot.inform = inform;
			log_set_level(LOG_DEBUG); /* devices' choices too (vhost-net, link) */
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("khyve %s\n", KHYVE_VERSION);
			return 0;
		case ':':
			if (optopt >= 0x100 || optopt == 0) {
				return usage_error("option '%s' needs a value", argv[optind - 1]);
			} else {
				char o[3] = { '-', (char)optopt, 0 };
				return usage_error("option '%s' needs a value", o);
			}
		default:
			if (optopt && optopt < 0x100) {
				char o[3] = { '-', (char)optopt, 0 };
				return usage_error("unknown option '%s'", o);
			}
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("%s", "missing the VM name");
	if (optind + 1 < argc)
		return usage_error("unexpected argument '%s' after the VM name", argv[optind + 1]);
	cfg.vm.name = argv[optind];
	if (ctl_check_name(cfg.vm.name, err, sizeof(err)))
		return usage_error("%s", err);
	if (!cfg.boot.kernel_path && (nmodules || cfg.boot.cmdline))
		return usage_error("%s: --initrd and --append need --kernel", cfg.vm.name);
	cfg.boot.modules = modules;
	cfg.boot.nr_modules = nmodules;
	cfg.boot.env = kenv;
	cfg.boot.nr_env = nkenv;
	cfg.pci = pci_slots;
	/* Everything the user gave is checked before /dev/kvm is opened: bad
	 * input gets its own error, on a host without KVM too. */
	if (check_args(&cfg, nmodules))
		return EXIT_USAGE;

	/* The named VM (ctl/vmdir.h): held for as long as this khyve runs.
	 * With --kernel it is created when missing (and removed again if the
	 * start fails); without, it must be one a loader prepared. */
	struct ctl_entry *entry = NULL;
	int mem_fd = -1;
	int r = ctl_vm_open(cfg.vm.name, cfg.boot.kernel_path ? CTL_OPEN_CREATE : 0, CTL_ROLE_KHYVE,
			    &vmdir, err, sizeof(err));
	if (r) {
		/* The VM's own trouble (unknown, busy): no flag to point at. */
		if (r == -ENOENT)
			log_error("%s (nothing to boot: give --kernel FILE, or prepare it with a loader)", err);
		else
			log_error("%s", err);
		return EXIT_USAGE;
	}
	if (!cfg.boot.kernel_path) {
		uint64_t file_size = 0;
		/* Static: cfg.entry points into it until exit. */
		static struct ctl_entry entry_buf;
		entry = &entry_buf;
		r = ctl_vm_read_entry(&vmdir, entry, err, sizeof(err));
		if (r == -ENOENT) {
			release_vm(false);
			return usage_error("%s: nothing to boot: the VM holds no entry state (give --kernel FILE, "
					   "or prepare it with a loader)", cfg.vm.name);
		}
		if (!r)
			r = ctl_vm_mem_open(&vmdir, &mem_fd, &file_size, err, sizeof(err));
		if (!r && file_size != entry->mem_size) {
			snprintf(err, sizeof(err), "%s: the memory file holds %llu bytes, the entry state says %llu",
				 cfg.vm.name, (unsigned long long)file_size,
				 (unsigned long long)entry->mem_size);
			r = -EINVAL;
		}
		if (!r && mem_given && cfg.vm.mem_size != entry->mem_size) {
			snprintf(err, sizeof(err), "-m: %s was prepared with %llu MiB of memory, not %llu MiB",
				 cfg.vm.name, (unsigned long long)(entry->mem_size >> 20),
				 (unsigned long long)(cfg.vm.mem_size >> 20));
			r = -EINVAL;
		}
		if (r) {
			release_vm(false);
			return usage_error("%s", err);
		}
		cfg.vm.mem_size = entry->mem_size;
		cfg.vm.mem_from_fd = true;
		cfg.vm.mem_fd = mem_fd;
		cfg.entry = &entry->entry;
		if (cfg.boot.inform)
			log_info("%s: booting the prepared %s at rip 0x%llx (%s)", cfg.vm.name,
				 entry->format[0] ? entry->format : "kernel",
				 (unsigned long long)entry->entry.rip,
				 entry->entry.mode == BOOT_CPU_LONG64 ? "long mode" : "32-bit protected mode");
	}

	struct machine *m;
	if (machine_build(&cfg, &m, err, sizeof(err))) {
		log_error("%s", err);
		release_vm(false);
		return VM_EXIT_ERROR;
	}
	if (mem_fd >= 0)
		close(mem_fd); /* mapped */
	struct gdb_stub *gdb = NULL;
	if (gdb_spec && gdb_stub_create(machine_vm(m), gdb_spec, &gdb, err, sizeof(err))) {
		log_error("-%c %s: %s", gdb_flag, gdb_spec, err);
		machine_destroy(m);
		release_vm(false);
		return VM_EXIT_ERROR;
	}
	struct ctl_server_config scfg = {
		.vm = machine_vm(m), .dir = &vmdir, .on_destroy = on_destroy,
		.wakeup = on_wakeup, .opaque = m,
	};
	for (int i = 0; i < MACHINE_COM_PORTS && i < 4; i++) {
		scfg.com_name[i] = machine_com_ports[i].name;
		scfg.com_where[i] = machine_com_where(m, i);
	}
	struct ctl_server *ctl = NULL;
	if (ctl_server_start(&scfg, &ctl, err, sizeof(err))) {
		log_error("%s", err);
		gdb_stub_destroy(gdb);
		machine_destroy(m);
		release_vm(false);
		return VM_EXIT_ERROR;
	}
	{
		char lines[128];
		snprintf(lines, sizeof(lines), "cpus=%u\nmem=%llu\n", vm_vcpu_count(machine_vm(m)),
			 (unsigned long long)cfg.vm.mem_size);
		ctl_vm_describe(&vmdir, lines);
	}
	if (getenv("KHYVE_EXIT_STATS"))
		status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	/* Set-up is done: each thread from here on makes only the calls its
	 * role needs (src/sandbox/, khyve(8) SANDBOX). */
	if (sandbox && sandbox_start(machine_vm(m), err, sizeof(err))) {
		log_error("%s (--no-sandbox runs without it)", err);
		ctl_server_stop(ctl);
		gdb_stub_destroy(gdb);
		machine_destroy(m);
		release_vm(false);
		return VM_EXIT_ERROR;
	}
	started = true;
	int status = machine_run(m);
	gdb_stub_vm_exited(gdb, status);
	const char *why = machine_exit_reason(m);
	/* Errors were reported where they happened, with the vCPU's state. */
	if (status == VM_EXIT_HALT || status == VM_EXIT_TRIPLE_FAULT)
		log_error("%s: %s", cfg.vm.name, why);
	else
		log_debug("%s: %s", cfg.vm.name, why);
	if (getenv("KHYVE_EXIT_STATS"))
		print_exit_stats(m);
	ctl_server_stop(ctl);
	/* The VM stays created (as bhyve's does) unless it was destroyed
	 * through the control socket, or powered off with -D. */
	release_vm(destroy_requested || (destroy_on_poweroff && status == VM_EXIT_POWEROFF));
	/* Exit at once; the VM's teardown goes on in a helper process. */
	machine_detach(m);
	exit(status);
}
