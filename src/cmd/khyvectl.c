/* khyvectl(8): control named VMs, as bhyvectl(8) does: create and
 * destroy them, read and write a vCPU's registers, KVM's statistics,
 * reset, poweroff, suspend and resume, list them, attach to a console.
 * A running VM is reached through its khyve's control socket
 * (ctl/proto.h); a prepared one (a loader left it) through its entry
 * state (ctl/entry.h). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "ctl/entry.h"
#include "ctl/proto.h"
#include "ctl/vmdir.h"
#include "util/log.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 4
/* How long --destroy waits for a running khyve to let go of the VM. */
#define DESTROY_WAIT_MS 60000

/* Registers with --get-NAME/--set-NAME, in --get-all's order (bhyvectl's). */
static const char *const plain_regs[] = {
	"efer", "cr0", "cr2", "cr3", "cr4", "cr8", "dr0", "dr1", "dr2", "dr3", "dr6", "dr7",
	"rsp", "rip", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10",
	"r11", "r12", "r13", "r14", "r15", "rflags",
};
#define NPLAIN (sizeof(plain_regs) / sizeof(plain_regs[0]))
static const char *const segs[] = { "ds", "es", "fs", "gs", "ss", "cs", "tr", "ldtr" };
#define NSEGS 8
static const char *const sel_order[] = { "cs", "ds", "es", "fs", "gs", "ss", "tr", "ldtr" };

/* What was asked, per register: get, set (and the value). */
struct reg_req {
	bool get, set;
	uint64_t value;
};
static struct reg_req plain[NPLAIN], sel[NSEGS], desc_get[NSEGS + 2], desc_set[NSEGS + 2];
static uint64_t desc_base;
static uint64_t desc_limit, desc_access;
static bool have_desc_base, have_desc_limit, have_desc_access;

static const char *vmname;
static long cpu = -1;
static bool do_create, do_destroy, do_stats, do_all, do_reset, do_poweroff, do_suspend,
	do_resume, do_wakeup, do_list;
static const char *console_port; /* --console[=comN] */

__attribute__((format(printf, 2, 3))) static int fail(int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	return status;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: khyvectl --vm=NAME [--cpu=N] [--create] [--destroy] [--get-all] [--get-stats]\n"
		"                [--get-REG] [--set-REG=VALUE] [--get-desc-SEG] [--set-desc-SEG\n"
		"                 --desc-base=B --desc-limit=L --desc-access=A] [--suspend] [--resume]\n"
		"                [--wakeup]\n"
		"                [--force-reset] [--force-poweroff] [--console[=comN]]\n"
		"       khyvectl --list\n"
		"       khyvectl --help | --version\n"
		"REG: rax..r15, rip, rsp, rflags, cr0, cr2, cr3, cr4, cr8, efer, dr0-dr3, dr6, dr7,\n"
		"     cs, ds, es, fs, gs, ss, tr, ldtr; SEG: those segments, gdtr, idtr.\n"
		"See khyvectl(8).\n");
}

/* ---- options: built from the register names ---- */

enum {
	OPT_VM = 0x100, OPT_CPU, OPT_CREATE, OPT_DESTROY, OPT_STATS, OPT_ALL, OPT_RESET,
	OPT_POWEROFF, OPT_SUSPEND, OPT_RESUME, OPT_WAKEUP, OPT_LIST, OPT_CONSOLE, OPT_DESC_BASE,
	OPT_DESC_LIMIT, OPT_DESC_ACCESS, OPT_HELP, OPT_VERSION,
	OPT_GET_PLAIN = 0x200, OPT_SET_PLAIN = 0x300, OPT_GET_SEL = 0x400, OPT_SET_SEL = 0x500,
	OPT_GET_DESC = 0x600, OPT_SET_DESC = 0x700,
};

#define NFIXED 18
#define NGENERATED (2 * NPLAIN + 2 * NSEGS + 2 * (NSEGS + 2))
/* Static: getopt keeps pointers into them until exit. */
static struct option all_options[NFIXED + NGENERATED + 1];
static char option_names[NGENERATED][24];

static struct option *build_options(void)
{
	static const struct option fixed[NFIXED] = {
		{ "vm", required_argument, NULL, OPT_VM },
		{ "cpu", required_argument, NULL, OPT_CPU },
		{ "create", no_argument, NULL, OPT_CREATE },
		{ "destroy", no_argument, NULL, OPT_DESTROY },
		{ "get-stats", no_argument, NULL, OPT_STATS },
		{ "get-all", no_argument, NULL, OPT_ALL },
		{ "force-reset", no_argument, NULL, OPT_RESET },
		{ "force-poweroff", no_argument, NULL, OPT_POWEROFF },
		{ "suspend", no_argument, NULL, OPT_SUSPEND },
		{ "resume", no_argument, NULL, OPT_RESUME },
		{ "wakeup", no_argument, NULL, OPT_WAKEUP },
		{ "list", no_argument, NULL, OPT_LIST },
		{ "console", optional_argument, NULL, OPT_CONSOLE },
		{ "desc-base", required_argument, NULL, OPT_DESC_BASE },
		{ "desc-limit", required_argument, NULL, OPT_DESC_LIMIT },
		{ "desc-access", required_argument, NULL, OPT_DESC_ACCESS },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
	};
	struct option *o = all_options;
	memcpy(o, fixed, sizeof(fixed));
	size_t k = NFIXED, g = 0;
#define ADD(fmt, arg, has, val)                                                          \
	do {                                                                             \
		snprintf(option_names[g], sizeof(option_names[g]), fmt, arg);            \
		o[k++] = (struct option){ option_names[g++], has, NULL, val };           \
	} while (0)
	for (size_t i = 0; i < NPLAIN; i++) {
		ADD("get-%s", plain_regs[i], no_argument, OPT_GET_PLAIN + (int)i);
		ADD("set-%s", plain_regs[i], required_argument, OPT_SET_PLAIN + (int)i);
	}
	for (size_t i = 0; i < NSEGS; i++) {
		ADD("get-%s", segs[i], no_argument, OPT_GET_SEL + (int)i);
		ADD("set-%s", segs[i], required_argument, OPT_SET_SEL + (int)i);
	}
	for (size_t i = 0; i < NSEGS + 2; i++) {
		const char *sg = i < NSEGS ? segs[i] : i == NSEGS ? "gdtr" : "idtr";
		ADD("get-desc-%s", sg, no_argument, OPT_GET_DESC + (int)i);
		ADD("set-desc-%s", sg, no_argument, OPT_SET_DESC + (int)i);
	}
#undef ADD
	o[k] = (struct option){ NULL, 0, NULL, 0 };
	return o;
}

static int parse_value(const char *opt, const char *arg, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*arg || *arg == '-')
		return fail(EXIT_USAGE, "%s: '%s' is not a number (decimal, or 0x hex)", opt, arg);
	unsigned long long v = strtoull(arg, &end, 0);
	if (errno || *end)
		return fail(EXIT_USAGE, "%s: '%s' is not a number (decimal, or 0x hex)", opt, arg);
	*out = v;
	return 0;
}

/* ---- talking to a running khyve ---- */

static bool read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* One request; the reply's body (NUL-terminated) in *text. 0, or -errno
 * with the reason in err. */
static int request(int fd, uint16_t op, const void *body, size_t len, char **text, char *err,
		   size_t errlen)
{
	struct ctl_buf b = { 0 };
	ctl_frame(&b, op, body, len);
	bool ok = !b.failed && write_full(fd, b.data, b.len);
	ctl_buf_free(&b);
	uint8_t h[CTL_HEADER];
	if (!ok || !read_full(fd, h, sizeof(h))) {
		snprintf(err, errlen, "%s: its khyve went away", vmname);
		return -EPIPE;
	}
	uint32_t n = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
	unsigned version = h[4] | h[5] << 8, code = h[6] | h[7] << 8;
	if (n < 4 || n > CTL_FRAME_MAX || version != CTL_PROTO_VERSION) {
		snprintf(err, errlen, "%s: its khyve speaks another protocol (version %u)", vmname,
			 version);
		return -EPROTO;
	}
	char *t = malloc(n - 4 + 1);
	if (!t || !read_full(fd, t, n - 4)) {
		free(t);
		snprintf(err, errlen, "%s: its khyve went away", vmname);
		return -EPIPE;
	}
	t[n - 4] = '\0';
	if (code) {
		snprintf(err, errlen, "%s: %s", vmname, t[0] ? t : strerror((int)code));
		free(t);
		return -(int)code;
	}
	if (text)
		*text = t;
	else
		free(t);
	return 0;
}

/* The value of key in "key=value" lines, or NULL. */
static const char *lookup(const char *text, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		if (!strncmp(p, key, klen) && p[klen] == '=') {
			size_t n = (nl ? (size_t)(nl - p) : strlen(p)) - klen - 1;
			snprintf(buf, len, "%.*s", (int)n, p + klen + 1);
			return buf;
		}
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- the VM being worked on: running (socket) or prepared (entry) ---- */

struct target {
	bool running;
	int fd;          /* the control socket */
	unsigned ncpus;
	struct ctl_entry entry; /* prepared */
	bool entry_changed;
};

static int get_state(struct target *t, unsigned c, struct vcpu_state *st, char *err, size_t errlen)
{
	if (!t->running) {
		ctl_entry_to_state(&t->entry, st);
		return 0;
	}
	uint8_t body[4];
	put_u32(body, c);
	char *text;
	int r = request(t->fd, CTL_OP_GET_REGS, body, 4, &text, err, errlen);
	if (r)
		return r;
	memset(st, 0, sizeof(*st));
	char v[40];
	for (unsigned i = 0; i < CTL_REG_COUNT; i++)
		if (lookup(text, ctl_reg_names[i], v, sizeof(v)))
			ctl_reg_set(st, i, strtoull(v, NULL, 0));
	free(text);
	return 0;
}

/* Set registers (numbers and values) of vCPU c. */
static int set_regs(struct target *t, unsigned c, const unsigned *regs, const uint64_t *vals,
		    unsigned n, char *err, size_t errlen)
{
	if (!n)
		return 0;
	if (!t->running) {
		struct vcpu_state st;
		ctl_entry_to_state(&t->entry, &st);
		for (unsigned i = 0; i < n; i++)
			if (ctl_reg_set(&st, regs[i], vals[i])) {
				snprintf(err, errlen, "0x%llx does not fit in %s", (unsigned long long)vals[i],
					 ctl_reg_names[regs[i]]);
				return -EINVAL;
			}
		const char *what = NULL;
		struct ctl_entry e = t->entry;
		if (ctl_entry_from_state(&e, &st, &what)) {
			snprintf(err, errlen, "%s: %s is not part of a prepared VM's entry state", vmname, what);
			return -EINVAL;
		}
		e.entry.format_name = e.format;
		t->entry = e;
		t->entry.entry.format_name = t->entry.format;
		t->entry_changed = true;
		return 0;
	}
	uint8_t body[8 + CTL_SET_MAX * 12];
	put_u32(body, c);
	put_u32(body + 4, n);
	for (unsigned i = 0; i < n; i++) {
		put_u32(body + 8 + i * 12, regs[i]);
		put_u64(body + 8 + i * 12 + 4, vals[i]);
	}
	return request(t->fd, CTL_OP_SET_REGS, body, 8 + n * 12, NULL, err, errlen);
}

static void print_plain(unsigned c, const char *name, uint64_t v)
{
	if (!strcmp(name, "rflags"))
		printf("%s[%u]\t0x%016llx\n", name, c, (unsigned long long)v);
	else
		printf("%s[%u]\t\t0x%016llx\n", name, c, (unsigned long long)v);
}

/* One vCPU's gets (all of them with --get-all), in bhyvectl's words. */
static void print_regs(const struct vcpu_state *st, unsigned c)
{
	for (size_t i = 0; i < NPLAIN; i++)
		if (do_all || plain[i].get)
			print_plain(c, plain_regs[i],
				    ctl_reg_get(st, (unsigned)ctl_reg_by_name(plain_regs[i])));
	char name[32];
	for (size_t i = 0; i < NSEGS + 2; i++) {
		if (!do_all && !desc_get[i].get)
			continue;
		if (i < NSEGS) {
			snprintf(name, sizeof(name), "%s.base", segs[i]);
			uint64_t base = ctl_reg_get(st, (unsigned)ctl_reg_by_name(name));
			snprintf(name, sizeof(name), "%s.limit", segs[i]);
			uint64_t limit = ctl_reg_get(st, (unsigned)ctl_reg_by_name(name));
			snprintf(name, sizeof(name), "%s.access", segs[i]);
			uint64_t access = ctl_reg_get(st, (unsigned)ctl_reg_by_name(name));
			printf("%s desc[%u]\t0x%016llx/0x%08llx/0x%08llx\n", segs[i], c,
			       (unsigned long long)base, (unsigned long long)limit,
			       (unsigned long long)access);
		} else {
			const char *dt = i == NSEGS ? "gdtr" : "idtr";
			snprintf(name, sizeof(name), "%s.base", dt);
			uint64_t base = ctl_reg_get(st, (unsigned)ctl_reg_by_name(name));
			snprintf(name, sizeof(name), "%s.limit", dt);
			uint64_t limit = ctl_reg_get(st, (unsigned)ctl_reg_by_name(name));
			printf("%s[%u]\t\t0x%016llx/0x%08llx\n", dt, c, (unsigned long long)base,
			       (unsigned long long)limit);
		}
	}
	for (size_t k = 0; k < NSEGS; k++) {
		size_t i;
		for (i = 0; strcmp(segs[i], sel_order[k]); i++)
			;
		if (do_all || sel[i].get)
			printf("%s[%u]\t\t0x%04llx\n", segs[i], c,
			       (unsigned long long)ctl_reg_get(st, (unsigned)ctl_reg_by_name(segs[i])));
	}
}

static bool any_get(void)
{
	for (size_t i = 0; i < NPLAIN; i++)
		if (plain[i].get)
			return true;
	for (size_t i = 0; i < NSEGS; i++)
		if (sel[i].get)
			return true;
	for (size_t i = 0; i < NSEGS + 2; i++)
		if (desc_get[i].get)
			return true;
	return false;
}

/* The sets asked for, as register numbers and values. */
static unsigned collect_sets(unsigned *regs, uint64_t *vals)
{
	unsigned n = 0;
	char name[32];
	for (size_t i = 0; i < NPLAIN; i++)
		if (plain[i].set) {
			regs[n] = (unsigned)ctl_reg_by_name(plain_regs[i]);
			vals[n++] = plain[i].value;
		}
	for (size_t i = 0; i < NSEGS; i++)
		if (sel[i].set) {
			regs[n] = (unsigned)ctl_reg_by_name(segs[i]);
			vals[n++] = sel[i].value;
		}
	for (size_t i = 0; i < NSEGS + 2; i++) {
		if (!desc_set[i].set)
			continue;
		const char *s = i < NSEGS ? segs[i] : i == NSEGS ? "gdtr" : "idtr";
		snprintf(name, sizeof(name), "%s.base", s);
		regs[n] = (unsigned)ctl_reg_by_name(name);
		vals[n++] = desc_base;
		snprintf(name, sizeof(name), "%s.limit", s);
		regs[n] = (unsigned)ctl_reg_by_name(name);
		vals[n++] = desc_limit;
		if (i < NSEGS) {
			snprintf(name, sizeof(name), "%s.access", s);
			regs[n] = (unsigned)ctl_reg_by_name(name);
			vals[n++] = desc_access;
		}
	}
	return n;
}

static int print_stats(struct target *t, unsigned c)
{
	uint8_t body[4];
	put_u32(body, c);
	char *text, err[512];
	if (request(t->fd, CTL_OP_GET_STATS, body, 4, &text, err, sizeof(err)))
		return fail(EXIT_FAILED, "%s", err);
	printf("vcpu%u stats:\n", c);
	for (char *p = text; *p;) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		char *eq = strchr(p, '=');
		if (eq) {
			*eq = '\0';
			printf("%-40s\t%s\n", p, eq + 1);
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	free(text);
	return 0;
}

/* ---- --list ---- */

static void list_one(void *opaque, const char *name, const struct ctl_vm_status *st)
{
	(void)opaque;
	char pid[16] = "-", mem[32] = "-", cpus[16] = "-";
	if (st->pid)
		snprintf(pid, sizeof(pid), "%d", st->pid);
	if (st->mem)
		snprintf(mem, sizeof(mem), "%lluM", (unsigned long long)(st->mem >> 20));
	if (st->cpus)
		snprintf(cpus, sizeof(cpus), "%u", st->cpus);
	printf("%-31s %-9s %-8s %-8s %s\n", name, ctl_vm_state_name(st->state), pid, mem, cpus);
}

static int do_list_vms(void)
{
	printf("%-31s %-9s %-8s %-8s %s\n", "NAME", "STATE", "PID", "MEMORY", "CPUS");
	char why[512];
	int r = ctl_vm_list(list_one, NULL, why, sizeof(why));
	if (r)
		return fail(EXIT_FAILED, "%s", why);
	return 0;
}

/* ---- --destroy ---- */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int destroy(struct target *t)
{
	char err[512];
	if (t->running && t->fd >= 0) {
		/* khyve ends the VM and removes the directory as it exits. */
		if (request(t->fd, CTL_OP_DESTROY, NULL, 0, NULL, err, sizeof(err)))
			return fail(EXIT_FAILED, "%s", err);
		close(t->fd);
		t->fd = -1;
	}
	/* Wait for whoever holds it to let go, then remove what is left. */
	for (long waited = 0;; waited += 10) {
		struct ctl_vm vm;
		int r = ctl_vm_open(vmname, 0, CTL_ROLE_CTL, &vm, err, sizeof(err));
		if (r == -ENOENT)
			return 0;
		if (r == 0) {
			if (ctl_vm_remove(&vm, err, sizeof(err)))
				return fail(EXIT_FAILED, "%s", err);
			return 0;
		}
		if (r != -EBUSY || !t->running)
			return fail(r == -EBUSY ? EXIT_USAGE : EXIT_FAILED, "%s", err);
		if (waited >= DESTROY_WAIT_MS)
			return fail(EXIT_FAILED, "%s (it did not stop)", err);
		sleep_ms(10);
	}
}

/* ---- --console ---- */

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

static int connect_tcp(const char *where, char *err, size_t errlen)
{
	char host[80];
	snprintf(host, sizeof(host), "%s", where);
	char *colon = strrchr(host, ':');
	if (!colon) {
		snprintf(err, errlen, "cannot read '%s'", where);
		return -EINVAL;
	}
	*colon = '\0';
	char *h = host;
	if (h[0] == '[') {
		h++;
		h[strlen(h) - 1] = '\0';
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	if (getaddrinfo(h, colon + 1, &hints, &ai)) {
		snprintf(err, errlen, "cannot resolve '%s'", where);
		return -EINVAL;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		snprintf(err, errlen, "%s: %s", where, strerror(e));
		return -e;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Relay the terminal and the port until "~." at the start of a line, or
 * the port closes. */
static int console(struct target *t)
{
	char err[512], where[160];
	char *text;
	const char *port = console_port ? console_port : "com1";
	if (request(t->fd, CTL_OP_INFO, NULL, 0, &text, err, sizeof(err)))
		return fail(EXIT_FAILED, "%s", err);
	const char *w = lookup(text, port, where, sizeof(where));
	free(text);
	if (!w)
		return fail(EXIT_USAGE, "%s: it has no %s", vmname, port);
	int fd;
	if (!strncmp(w, "pty:", 4)) {
		fd = open(w + 4, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			return fail(EXIT_FAILED, "%s: %s: %s", vmname, w + 4, strerror(errno));
		struct termios tio;
		if (tcgetattr(fd, &tio) == 0) {
			cfmakeraw(&tio);
			tcsetattr(fd, TCSANOW, &tio);
		}
	} else if (!strncmp(w, "tcp:", 4)) {
		fd = connect_tcp(w + 4, err, sizeof(err));
		if (fd < 0)
			return fail(EXIT_FAILED, "%s: %s: %s", vmname, port, err);
	} else {
		return fail(EXIT_USAGE, "%s: %s is on %s, not a pty or a socket: nothing to attach to",
			    vmname, port, w[0] ? w : "no backend");
	}
	bool tty = isatty(STDIN_FILENO);
	if (tty && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		tio_saved = true;
		atexit(restore_tty);
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		fprintf(stderr, "[attached to %s %s (%s); ~. detaches]\r\n", vmname, port, w);
	}
	/* ~. after a newline (or at the start) detaches, as in cu(1). */
	int state = 1; /* 1: at line start, 2: saw '~' there */
	struct pollfd p[2] = { { .fd = STDIN_FILENO, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
	bool in_open = true;
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		uint8_t buf[4096];
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				break;
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(STDOUT_FILENO, buf + off, (size_t)(n - off));
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					break;
				off += w;
			}
		}
		if (in_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0) {
				in_open = false;
				p[0].fd = -1;
				continue;
			}
			uint8_t outb[4097];
			size_t o = 0;
			bool detach = false;
			for (ssize_t i = 0; i < n && !detach; i++) {
				uint8_t c = buf[i];
				if (state == 2) {
					if (c == '.') {
						detach = true;
						break;
					}
					outb[o++] = '~';
					state = 0;
				}
				if (state == 1 && c == '~') {
					state = 2;
					continue;
				}
				outb[o++] = c;
				state = (c == '\r' || c == '\n') ? 1 : 0;
			}
			if (o) {
				ssize_t wr = write(fd, outb, o);
				(void)wr;
			}
			if (detach)
				break;
		}
	}
	close(fd);
	restore_tty();
	if (tty)
		fprintf(stderr, "\r\n[detached]\r\n");
	return 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	log_set_program("khyvectl");
	signal(SIGPIPE, SIG_IGN);
	struct option *opts = build_options();
	if (!opts)
		return fail(EXIT_FAILED, "out of memory");
	int opt;
	uint64_t v;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (opt >= OPT_GET_PLAIN && opt < OPT_GET_PLAIN + (int)NPLAIN) {
			plain[opt - OPT_GET_PLAIN].get = true;
			continue;
		}
		if (opt >= OPT_SET_PLAIN && opt < OPT_SET_PLAIN + (int)NPLAIN) {
			if (parse_value(argv[optind - 1], optarg, &v))
				return EXIT_USAGE;
			plain[opt - OPT_SET_PLAIN] = (struct reg_req){ .set = true, .value = v };
			continue;
		}
		if (opt >= OPT_GET_SEL && opt < OPT_GET_SEL + NSEGS) {
			sel[opt - OPT_GET_SEL].get = true;
			continue;
		}
		if (opt >= OPT_SET_SEL && opt < OPT_SET_SEL + NSEGS) {
			if (parse_value(argv[optind - 1], optarg, &v))
				return EXIT_USAGE;
			if (v > 0xffff)
				return fail(EXIT_USAGE, "%s: 0x%llx is not a selector (16 bits)", argv[optind - 1],
					    (unsigned long long)v);
			sel[opt - OPT_SET_SEL] = (struct reg_req){ .set = true, .value = v };
			continue;
		}
		if (opt >= OPT_GET_DESC && opt < OPT_GET_DESC + NSEGS + 2) {
			desc_get[opt - OPT_GET_DESC].get = true;
			continue;
		}
		if (opt >= OPT_SET_DESC && opt < OPT_SET_DESC + NSEGS + 2) {
			desc_set[opt - OPT_SET_DESC].set = true;
			continue;
		}
		switch (opt) {
		case OPT_VM:
			vmname = optarg;
			break;
		case OPT_CPU:
			if (parse_value("--cpu", optarg, &v))
				return EXIT_USAGE;
			if (v > 4096)
				return fail(EXIT_USAGE, "--cpu: %s is not a vCPU number", optarg);
			cpu = (long)v;
			break;
		case OPT_CREATE: do_create = true; break;
		case OPT_DESTROY: do_destroy = true; break;
		case OPT_STATS: do_stats = true; break;
		case OPT_ALL: do_all = true; break;
		case OPT_RESET: do_reset = true; break;
		case OPT_POWEROFF: do_poweroff = true; break;
		case OPT_SUSPEND: do_suspend = true; break;
		case OPT_RESUME: do_resume = true; break;
		case OPT_WAKEUP: do_wakeup = true; break;
		case OPT_LIST: do_list = true; break;
		case OPT_CONSOLE:
			console_port = optarg ? optarg : "com1";
			break;
		case OPT_DESC_BASE:
			if (parse_value("--desc-base", optarg, &desc_base))
				return EXIT_USAGE;
			have_desc_base = true;
			break;
		case OPT_DESC_LIMIT:
			if (parse_value("--desc-limit", optarg, &desc_limit))
				return EXIT_USAGE;
			have_desc_limit = true;
			break;
		case OPT_DESC_ACCESS:
			if (parse_value("--desc-access", optarg, &desc_access))
				return EXIT_USAGE;
			have_desc_access = true;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("khyvectl %s\n", KHYVE_VERSION);
			return 0;
		case ':':
			return fail(EXIT_USAGE, "option '%s' needs a value (see khyvectl --help)",
				    argv[optind - 1]);
		default:
			if (optopt && optopt < 0x100)
				return fail(EXIT_USAGE, "unknown option '-%c' (see khyvectl --help)", optopt);
			return fail(EXIT_USAGE, "unknown option '%s' (see khyvectl --help)",
				    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return fail(EXIT_USAGE, "unexpected argument '%s' (see khyvectl --help)", argv[optind]);
	char err[512];
	if (do_list && !vmname)
		return do_list_vms();
	if (!vmname)
		return fail(EXIT_USAGE, "missing --vm=NAME (see khyvectl --help)");
	if (ctl_check_name(vmname, err, sizeof(err)))
		return fail(EXIT_USAGE, "%s", err);
	bool any_desc_set = false, seg_desc_set = false;
	for (size_t i = 0; i < NSEGS + 2; i++) {
		any_desc_set |= desc_set[i].set;
		seg_desc_set |= i < NSEGS && desc_set[i].set;
	}
	if (any_desc_set && (!have_desc_base || !have_desc_limit))
		return fail(EXIT_USAGE, "--set-desc-*: give --desc-base and --desc-limit");
	if (seg_desc_set && !have_desc_access)
		return fail(EXIT_USAGE, "--set-desc-SEG: give --desc-access too");
	if (desc_limit > 0xffffffffULL || desc_access > 0x1ffff)
		return fail(EXIT_USAGE, "--desc-limit or --desc-access out of range");
	unsigned set_regs_n[CTL_REG_COUNT * 2];
	uint64_t set_vals[CTL_REG_COUNT * 2];
	unsigned nsets = collect_sets(set_regs_n, set_vals);
	bool gets = do_all || any_get();
	bool needs_vm = gets || nsets || do_stats || do_reset || do_poweroff || do_suspend ||
			do_resume || do_wakeup || console_port || do_destroy;
	if (!do_create && !needs_vm && !do_list)
		return fail(EXIT_USAGE, "%s: nothing to do (see khyvectl --help)", vmname);

	int status = 0;
	if (do_create) {
		struct ctl_vm vm;
		if (ctl_vm_open(vmname, CTL_OPEN_CREATE | CTL_OPEN_EXCL, CTL_ROLE_CTL, &vm, err,
				sizeof(err)))
			return fail(EXIT_USAGE, "%s", err);
		ctl_vm_close(&vm);
	}
	if (do_list && (status = do_list_vms()))
		return status;
	if (!needs_vm)
		return 0;

	struct ctl_vm_status st;
	if (ctl_vm_status(vmname, &st, err, sizeof(err)))
		return fail(EXIT_USAGE, "%s", err);
	static struct target t = { .fd = -1 };
	t.running = st.state == CTL_VM_RUNNING;
	bool only_destroy = do_destroy && !gets && !nsets && !do_stats && !do_reset &&
			    !do_poweroff && !do_suspend && !do_resume && !do_wakeup && !console_port;
	if (t.running) {
		t.fd = ctl_socket_connect(vmname, err, sizeof(err));
		if (t.fd < 0)
			return fail(EXIT_FAILED, "%s", err);
		char *text;
		if (request(t.fd, CTL_OP_INFO, NULL, 0, &text, err, sizeof(err)))
			return fail(EXIT_FAILED, "%s", err);
		char val[32];
		t.ncpus = lookup(text, "cpus", val, sizeof(val)) ? (unsigned)atoi(val) : 1;
		free(text);
	} else if (st.state == CTL_VM_BUSY && !only_destroy) {
		return fail(EXIT_USAGE, "%s: busy: in use by %s (pid %d)", vmname,
			    st.role[0] ? st.role : "another process", st.pid);
	} else if (!only_destroy) {
		if (do_stats || do_reset || do_poweroff || do_suspend || do_resume || do_wakeup ||
		    console_port)
			return fail(EXIT_USAGE, "%s: not running (%s)", vmname, ctl_vm_state_name(st.state));
		/* Registers of a prepared VM: its entry state (vCPU 0). */
		struct ctl_vm vm;
		if (ctl_vm_open(vmname, 0, CTL_ROLE_CTL, &vm, err, sizeof(err)))
			return fail(EXIT_USAGE, "%s", err);
		int r = ctl_vm_read_entry(&vm, &t.entry, err, sizeof(err));
		if (r == -ENOENT) {
			ctl_vm_close(&vm);
			return fail(EXIT_USAGE, "%s: not running, and no loader prepared it (no entry state)",
				    vmname);
		}
		if (r) {
			ctl_vm_close(&vm);
			return fail(EXIT_FAILED, "%s", err);
		}
		t.ncpus = 1;
		if (cpu > 0) {
			ctl_vm_close(&vm);
			return fail(EXIT_USAGE, "%s: not running: a prepared VM has the entry state of vCPU 0 only",
				    vmname);
		}
		if (nsets && set_regs(&t, 0, set_regs_n, set_vals, nsets, err, sizeof(err))) {
			ctl_vm_close(&vm);
			return fail(EXIT_USAGE, "%s", err);
		}
		if (t.entry_changed && ctl_vm_write_entry(&vm, &t.entry, err, sizeof(err))) {
			ctl_vm_close(&vm);
			return fail(EXIT_FAILED, "%s", err);
		}
		ctl_vm_close(&vm);
		nsets = 0;
	}
	if (cpu >= 0 && (unsigned)cpu >= t.ncpus && t.running)
		return fail(EXIT_USAGE, "--cpu: %s has %u vCPUs (0-%u)", vmname, t.ncpus, t.ncpus - 1);

	if (do_suspend && request(t.fd, CTL_OP_SUSPEND, NULL, 0, NULL, err, sizeof(err)))
		return fail(EXIT_FAILED, "%s", err);
	unsigned first = cpu >= 0 ? (unsigned)cpu : 0;
	if (nsets && set_regs(&t, first, set_regs_n, set_vals, nsets, err, sizeof(err)))
		return fail(EXIT_FAILED, "%s", err);
	if (gets) {
		/* --get-all covers every vCPU unless --cpu names one; single
		 * registers are vCPU 0's (bhyvectl's default). */
		unsigned last = cpu >= 0 ? (unsigned)cpu : do_all ? t.ncpus - 1 : 0;
		for (unsigned c = first; c <= last; c++) {
			struct vcpu_state vs;
			if (get_state(&t, c, &vs, err, sizeof(err)))
				return fail(EXIT_FAILED, "%s", err);
			print_regs(&vs, c);
		}
	}
	if (do_stats) {
		unsigned last = cpu >= 0 ? (unsigned)cpu : t.ncpus - 1;
		for (unsigned c = first; c <= last; c++)
			if ((status = print_stats(&t, c)))
				return status;
	}
	fflush(stdout);
	if (do_resume && request(t.fd, CTL_OP_RESUME, NULL, 0, NULL, err, sizeof(err)))
		return fail(EXIT_FAILED, "%s", err);
	if (do_wakeup && request(t.fd, CTL_OP_WAKEUP, NULL, 0, NULL, err, sizeof(err)))
		return fail(EXIT_FAILED, "%s", err);
	if (console_port && (status = console(&t)))
		return status;
	if (do_reset && request(t.fd, CTL_OP_RESET, NULL, 0, NULL, err, sizeof(err)))
		return fail(EXIT_FAILED, "%s", err);
	if (do_poweroff && !do_reset && request(t.fd, CTL_OP_POWEROFF, NULL, 0, NULL, err, sizeof(err)))
		return fail(EXIT_FAILED, "%s", err);
	if (do_destroy) {
		if (do_reset || do_poweroff) {
			/* The VM is ending: wait for its khyve to let go. */
			close(t.fd);
			t.fd = -1;
		}
		if ((status = destroy(&t)))
			return status;
	}
	return 0;
}
