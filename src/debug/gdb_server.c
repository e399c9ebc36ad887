/* The GDB remote protocol engine (see gdb_server.h).
 *
 * Threads are vCPUs: thread id = vCPU index + 1. The protocol is all-stop:
 * when one vCPU stops, all are stopped; gdb's vCont says which vCPUs step,
 * continue or stay.
 *
 * Memory addresses in m/M/X/Z are guest-virtual, translated with the
 * selected thread's page tables (debug/paging.c); "monitor memory" says
 * what happens where nothing is mapped. Breakpoints gdb inserts with Z0
 * are int3 bytes in guest memory when the host's KVM intercepts int3
 * (reads show the original bytes, writes update them), otherwise they take
 * a debug register, as Z1 hardware breakpoints and Z2-Z4 watchpoints do.
 * Where the host's KVM does not fire debug-register breakpoints (a nested
 * KVM that never arms them) or data breakpoints, breakpoints and write
 * watchpoints are "traced": the running vCPUs go one instruction at a time
 * and, on their own threads, compare RIP with the breakpoints and the
 * watched bytes with their last values (gdb_server_classify). */
#include "debug/gdb_server.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug/paging.h"
#include "debug/rsp.h"
#include "util/log.h"

#define MAX_SW_BREAKPOINTS 256
#define MAX_TRACED 64
#define MAX_TRACED_WATCH 32 /* bytes one traced watchpoint may cover */
#define NR_DEBUGREGS 4
#define DR6_BS (1ull << 14)
#define REPLY_MAX RSP_MAX_PAYLOAD
#define SIGTRAP_NR 5
#define SIGINT_NR 2

enum dr_kind { DR_FREE, DR_EXEC_SW, DR_EXEC_HW, DR_WRITE, DR_READ, DR_ACCESS };

struct dr_slot {
	enum dr_kind kind;
	uint64_t addr;     /* what the register holds */
	unsigned len;      /* 1, 2, 4, 8 */
	uint64_t gdb_addr; /* the breakpoint or watchpoint gdb asked for */
	unsigned gdb_len;
};

struct sw_bp {
	uint64_t addr; /* guest-virtual, as gdb gave it */
	uint64_t gpa;
	uint8_t orig;
};

/* A breakpoint or write watchpoint served by tracing. */
struct traced {
	enum dr_kind kind; /* DR_EXEC_SW, DR_EXEC_HW or DR_WRITE */
	uint64_t addr;     /* as gdb gave it */
	unsigned len;
	uint64_t gpa;      /* watchpoints: where the bytes are */
	uint8_t last[MAX_TRACED_WATCH];
};

enum mem_mode { MEM_AUTO, MEM_VIRTUAL, MEM_PHYSICAL };

struct gdb_server {
	struct gdb_target t;
	struct rsp_parser parser;
	bool noack;
	bool running;
	bool finished;
	bool gdb_swbreak, gdb_hwbreak; /* gdb understands these stop reasons */
	unsigned cur_g;                /* Hg: registers and memory */
	int cur_c;                     /* Hc: -1 all */
	enum gdb_sw_mode sw_mode;
	enum mem_mode mem_mode;
	int caps; /* GDB_CAP_*, -1 until asked */

	/* Per vCPU: what it was told at the last resume; cached registers
	 * while stopped. */
	enum gdb_run *run;
	struct x86_state *cache;
	bool *cache_valid;

	/* Breakpoints: changed on the loop thread while stopped, read by
	 * gdb_server_classify on vCPU threads while running. */
	pthread_mutex_t bp_lock;
	struct sw_bp sw[MAX_SW_BREAKPOINTS];
	unsigned nsw;
	struct dr_slot dr[NR_DEBUGREGS];
	struct traced tr[MAX_TRACED];
	unsigned ntr;
	bool *tracing;  /* per vCPU: traced since the last resume */
	int *trace_hit; /* per vCPU: the traced entry it stopped on, or -1 */

	char last_stop[160];
	char reply[REPLY_MAX + 1];
	size_t reply_len;
	uint8_t frame[2 * REPLY_MAX + 8];
	size_t frame_len;
};

/* ---- replies ---- */

static void send_frame(struct gdb_server *s, const void *payload, size_t len, bool escape)
{
	s->frame_len = rsp_frame(payload, len, escape, s->frame, sizeof(s->frame));
	if (s->frame_len)
		s->t.send(s->t.opaque, s->frame, s->frame_len);
}

static void reply(struct gdb_server *s, const char *text)
{
	send_frame(s, text, strlen(text), false);
}

static void reply_fmt(struct gdb_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void reply_fmt(struct gdb_server *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->reply, sizeof(s->reply), fmt, ap);
	va_end(ap);
	reply(s, s->reply);
}

static void reply_error(struct gdb_server *s, int err)
{
	reply_fmt(s, "E%02x", (unsigned)(err < 0 ? -err : err) & 0xff);
}

/* ---- registers ---- */

static struct x86_state *state_of(struct gdb_server *s, unsigned cpu)
{
	if (cpu >= s->t.ncpus)
		return NULL;
	if (!s->cache_valid[cpu]) {
		if (s->t.get_state(s->t.opaque, cpu, &s->cache[cpu]))
			return NULL;
		s->cache_valid[cpu] = true;
	}
	return &s->cache[cpu];
}

static void invalidate_states(struct gdb_server *s)
{
	for (unsigned i = 0; i < s->t.ncpus; i++)
		s->cache_valid[i] = false;
}

static int write_state(struct gdb_server *s, unsigned cpu, unsigned parts)
{
	int r = s->t.set_state(s->t.opaque, cpu, &s->cache[cpu], parts);
	if (r)
		s->cache_valid[cpu] = false; /* read back what KVM has */
	return r;
}

/* ---- memory ---- */

static int phys_read_cb(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct gdb_server *s = opaque;
	return s->t.read_phys(s->t.opaque, gpa, buf, len);
}

static void paging_regs_of(const struct x86_state *st, struct paging_regs *pr)
{
	pr->cr0 = st->sregs.cr0;
	pr->cr3 = st->sregs.cr3;
	pr->cr4 = st->sregs.cr4;
	pr->efer = st->sregs.efer;
}

/* The guest-physical address of addr and how many bytes from there are
 * contiguous (to the end of its page). */
static int translate(struct gdb_server *s, uint64_t addr, uint64_t *gpa, uint64_t *avail)
{
	if (s->mem_mode == MEM_PHYSICAL) {
		*gpa = addr;
		*avail = 4096 - (addr & 4095);
		return 0;
	}
	struct x86_state *st = state_of(s, s->cur_g);
	if (!st)
		return -EIO;
	struct paging_regs pr;
	paging_regs_of(st, &pr);
	struct paging_result res;
	int r = paging_translate(&pr, addr, phys_read_cb, s, &res);
	if (r == 0) {
		*gpa = res.gpa;
		*avail = res.page_size - (res.gpa & (res.page_size - 1));
		return 0;
	}
	if (s->mem_mode == MEM_AUTO) {
		/* Unmapped: the address is taken as physical. */
		*gpa = addr;
		*avail = 4096 - (addr & 4095);
		return 0;
	}
	return r;
}

/* Reads as much of [addr, addr+len) as is there; returns the count. */
static size_t read_memory(struct gdb_server *s, uint64_t addr, uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		uint64_t gpa, avail;
		if (translate(s, addr + done, &gpa, &avail))
			break;
		size_t n = len - done < avail ? len - done : (size_t)avail;
		if (s->t.read_phys(s->t.opaque, gpa, buf + done, n))
			break;
		/* Show the bytes our int3s replaced. */
		for (unsigned i = 0; i < s->nsw; i++)
			if (s->sw[i].gpa >= gpa && s->sw[i].gpa < gpa + n)
				buf[done + (s->sw[i].gpa - gpa)] = s->sw[i].orig;
		done += n;
	}
	return done;
}

static int write_memory(struct gdb_server *s, uint64_t addr, const uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		uint64_t gpa, avail;
		int r = translate(s, addr + done, &gpa, &avail);
		if (r)
			return r;
		uint8_t chunk[4096];
		size_t n = len - done < avail ? len - done : (size_t)avail;
		if (n > sizeof(chunk))
			n = sizeof(chunk);
		memcpy(chunk, buf + done, n);
		/* Where an int3 of ours sits, the write goes to the saved
		 * byte and the int3 stays. */
		for (unsigned i = 0; i < s->nsw; i++) {
			if (s->sw[i].gpa >= gpa && s->sw[i].gpa < gpa + n) {
				s->sw[i].orig = chunk[s->sw[i].gpa - gpa];
				chunk[s->sw[i].gpa - gpa] = 0xcc;
			}
		}
		if ((r = s->t.write_phys(s->t.opaque, gpa, chunk, n)))
			return r;
		done += n;
	}
	return 0;
}

/* ---- breakpoints ---- */

static unsigned caps_of(struct gdb_server *s)
{
	if (s->caps < 0)
		s->caps = (int)s->t.capabilities(s->t.opaque);
	return (unsigned)s->caps;
}

static bool use_int3(struct gdb_server *s)
{
	switch (s->sw_mode) {
	case GDB_SW_INT3: return true;
	case GDB_SW_DEBUGREG: case GDB_SW_TRACE: return false;
	default: return caps_of(s) & GDB_CAP_INT3;
	}
}

static bool use_trace_for_break(struct gdb_server *s)
{
	switch (s->sw_mode) {
	case GDB_SW_TRACE: return true;
	case GDB_SW_INT3: case GDB_SW_DEBUGREG: return false;
	default: return !(caps_of(s) & GDB_CAP_HW_BREAK);
	}
}

/* Z1 asks for a debug register; where they do not fire it is traced, whatever
 * `monitor swbreak` chose for Z0. */
static bool use_trace_for_hw_break(struct gdb_server *s)
{
	return s->sw_mode == GDB_SW_TRACE || !(caps_of(s) & GDB_CAP_HW_BREAK);
}

static int insert_traced(struct gdb_server *s, enum dr_kind kind, uint64_t addr, uint64_t len)
{
	for (unsigned i = 0; i < s->ntr; i++)
		if (s->tr[i].kind == kind && s->tr[i].addr == addr && s->tr[i].len == len)
			return 0;
	if (s->ntr == MAX_TRACED)
		return -ENOSPC;
	struct traced t = { .kind = kind, .addr = addr, .len = (unsigned)len };
	if (kind == DR_WRITE) {
		uint64_t avail;
		if (len == 0 || len > MAX_TRACED_WATCH)
			return -EINVAL;
		int r = translate(s, addr, &t.gpa, &avail);
		if (r || avail < len || s->t.read_phys(s->t.opaque, t.gpa, t.last, (size_t)len))
			return -EFAULT;
	}
	pthread_mutex_lock(&s->bp_lock);
	s->tr[s->ntr++] = t;
	pthread_mutex_unlock(&s->bp_lock);
	return 0;
}

static void remove_traced(struct gdb_server *s, enum dr_kind kind, uint64_t addr, uint64_t len)
{
	pthread_mutex_lock(&s->bp_lock);
	for (unsigned i = 0; i < s->ntr;) {
		if (s->tr[i].kind == kind && s->tr[i].addr == addr &&
		    (kind != DR_WRITE || s->tr[i].len == len))
			s->tr[i] = s->tr[--s->ntr];
		else
			i++;
	}
	pthread_mutex_unlock(&s->bp_lock);
}

static int find_sw(struct gdb_server *s, uint64_t addr)
{
	for (unsigned i = 0; i < s->nsw; i++)
		if (s->sw[i].addr == addr)
			return (int)i;
	return -1;
}

static int insert_int3(struct gdb_server *s, uint64_t addr)
{
	if (find_sw(s, addr) >= 0)
		return 0;
	if (s->nsw == MAX_SW_BREAKPOINTS)
		return -ENOSPC;
	uint64_t gpa, avail;
	uint8_t orig, cc = 0xcc;
	int r = translate(s, addr, &gpa, &avail);
	if (r || (r = s->t.read_phys(s->t.opaque, gpa, &orig, 1)) ||
	    (r = s->t.write_phys(s->t.opaque, gpa, &cc, 1)))
		return r ? r : -EFAULT;
	pthread_mutex_lock(&s->bp_lock);
	s->sw[s->nsw++] = (struct sw_bp){ .addr = addr, .gpa = gpa, .orig = orig };
	pthread_mutex_unlock(&s->bp_lock);
	return 0;
}

static void remove_int3_at(struct gdb_server *s, unsigned i)
{
	uint8_t cur;
	/* Put the byte back unless the guest has written over the int3. */
	if (s->t.read_phys(s->t.opaque, s->sw[i].gpa, &cur, 1) == 0 && cur == 0xcc)
		s->t.write_phys(s->t.opaque, s->sw[i].gpa, &s->sw[i].orig, 1);
	pthread_mutex_lock(&s->bp_lock);
	s->sw[i] = s->sw[--s->nsw];
	pthread_mutex_unlock(&s->bp_lock);
}

/* Split [addr, addr+len) into aligned 1/2/4/8-byte pieces. */
static unsigned split_watch(uint64_t addr, uint64_t len, uint64_t *a, unsigned *l, unsigned max)
{
	unsigned n = 0;
	while (len) {
		unsigned size = 8;
		while (size > 1 && ((addr & (size - 1)) || size > len))
			size >>= 1;
		if (n == max)
			return max + 1;
		a[n] = addr;
		l[n++] = size;
		addr += size;
		len -= size;
	}
	return n;
}

static int insert_dr(struct gdb_server *s, enum dr_kind kind, uint64_t addr, uint64_t len)
{
	uint64_t a[NR_DEBUGREGS];
	unsigned l[NR_DEBUGREGS];
	unsigned n;
	for (unsigned i = 0; i < NR_DEBUGREGS; i++)
		if (s->dr[i].kind == kind && s->dr[i].gdb_addr == addr && s->dr[i].gdb_len == len)
			return 0; /* already there */
	if (kind == DR_EXEC_SW || kind == DR_EXEC_HW) {
		a[0] = addr;
		l[0] = 1;
		n = 1;
	} else {
		if (len == 0 || len > 32)
			return -EINVAL;
		n = split_watch(addr, len, a, l, NR_DEBUGREGS);
	}
	unsigned free_slots = 0;
	for (unsigned i = 0; i < NR_DEBUGREGS; i++)
		free_slots += s->dr[i].kind == DR_FREE;
	if (n > free_slots)
		return -ENOSPC;
	pthread_mutex_lock(&s->bp_lock);
	for (unsigned i = 0, j = 0; i < NR_DEBUGREGS && j < n; i++) {
		if (s->dr[i].kind != DR_FREE)
			continue;
		s->dr[i] = (struct dr_slot){ .kind = kind, .addr = a[j], .len = l[j],
					     .gdb_addr = addr, .gdb_len = (unsigned)len };
		j++;
	}
	pthread_mutex_unlock(&s->bp_lock);
	return 0;
}

static void remove_dr(struct gdb_server *s, enum dr_kind kind, uint64_t addr, uint64_t len)
{
	pthread_mutex_lock(&s->bp_lock);
	for (unsigned i = 0; i < NR_DEBUGREGS; i++)
		if (s->dr[i].kind == kind && s->dr[i].gdb_addr == addr &&
		    (kind == DR_EXEC_SW || kind == DR_EXEC_HW || s->dr[i].gdb_len == len))
			s->dr[i].kind = DR_FREE;
	pthread_mutex_unlock(&s->bp_lock);
}

static void remove_all_breakpoints(struct gdb_server *s)
{
	while (s->nsw)
		remove_int3_at(s, s->nsw - 1);
	pthread_mutex_lock(&s->bp_lock);
	for (unsigned i = 0; i < NR_DEBUGREGS; i++)
		s->dr[i].kind = DR_FREE;
	s->ntr = 0;
	pthread_mutex_unlock(&s->bp_lock);
}

static void guest_debug_config(struct gdb_server *s, struct gdb_guest_debug *d)
{
	static const unsigned rw[] = {
		[DR_EXEC_SW] = 0, [DR_EXEC_HW] = 0, [DR_WRITE] = 1, [DR_READ] = 3, [DR_ACCESS] = 3,
	};
	memset(d, 0, sizeof(*d));
	d->enable = true;
	d->sw_bp = s->nsw > 0;
	for (unsigned i = 0; i < NR_DEBUGREGS; i++) {
		const struct dr_slot *slot = &s->dr[i];
		if (slot->kind == DR_FREE)
			continue;
		unsigned lencode = slot->len == 8 ? 2 : slot->len == 4 ? 3 : slot->len == 2 ? 1 : 0;
		if (slot->kind == DR_EXEC_SW || slot->kind == DR_EXEC_HW)
			lencode = 0;
		d->dr[i] = slot->addr;
		d->dr7 |= (2ull << (i * 2)) | ((uint64_t)rw[slot->kind] << (16 + i * 4)) |
			  ((uint64_t)lencode << (18 + i * 4));
		d->hw_bp = true;
	}
}

static const char *dr_kind_name(enum dr_kind k)
{
	switch (k) {
	case DR_EXEC_SW: return "breakpoint (Z0)";
	case DR_EXEC_HW: return "hardware breakpoint";
	case DR_WRITE: return "write watchpoint";
	case DR_READ: return "read watchpoint";
	case DR_ACCESS: return "access watchpoint";
	default: return "free";
	}
}

/* ---- stop replies ---- */

static void set_stop(struct gdb_server *s, int signo, unsigned cpu, const char *reason)
{
	snprintf(s->last_stop, sizeof(s->last_stop), "T%02xthread:%x;%s", (unsigned)signo,
		 cpu + 1, reason ? reason : "");
	s->cur_g = cpu;
	s->cur_c = (int)cpu;
}

static void describe_event(struct gdb_server *s, unsigned cpu, const struct gdb_debug_event *ev)
{
	char reason[80] = "";
	if (ev->exception == 3) {
		if (s->gdb_swbreak)
			snprintf(reason, sizeof(reason), "swbreak:;");
	} else if (ev->exception == 1 && (ev->dr6 & DR6_BS) && s->tracing[cpu] &&
		   s->trace_hit[cpu] >= 0 && s->trace_hit[cpu] < (int)s->ntr) {
		const struct traced *t = &s->tr[s->trace_hit[cpu]];
		if (t->kind == DR_EXEC_SW && s->gdb_swbreak)
			snprintf(reason, sizeof(reason), "swbreak:;");
		else if (t->kind == DR_EXEC_HW && s->gdb_hwbreak)
			snprintf(reason, sizeof(reason), "hwbreak:;");
		else if (t->kind == DR_WRITE)
			snprintf(reason, sizeof(reason), "watch:%" PRIx64 ";", t->addr);
	} else if (ev->exception == 1 && !(ev->dr6 & DR6_BS && s->run[cpu] == GDB_RUN_STEP)) {
		for (unsigned i = 0; i < NR_DEBUGREGS; i++) {
			const struct dr_slot *d = &s->dr[i];
			if (!(ev->dr6 & (1u << i)) || d->kind == DR_FREE)
				continue;
			if (d->kind == DR_EXEC_SW && s->gdb_swbreak)
				snprintf(reason, sizeof(reason), "swbreak:;");
			else if (d->kind == DR_EXEC_HW && s->gdb_hwbreak)
				snprintf(reason, sizeof(reason), "hwbreak:;");
			else if (d->kind == DR_WRITE)
				snprintf(reason, sizeof(reason), "watch:%" PRIx64 ";", d->gdb_addr);
			else if (d->kind == DR_READ)
				snprintf(reason, sizeof(reason), "rwatch:%" PRIx64 ";", d->gdb_addr);
			else if (d->kind == DR_ACCESS)
				snprintf(reason, sizeof(reason), "awatch:%" PRIx64 ";", d->gdb_addr);
			break;
		}
	}
	set_stop(s, SIGTRAP_NR, cpu, reason);
}

void gdb_server_stopped(struct gdb_server *s, unsigned cpu, const struct gdb_debug_event *ev)
{
	if (!s->running || cpu >= s->t.ncpus)
		return;
	s->running = false;
	invalidate_states(s);
	describe_event(s, cpu, ev);
	reply(s, s->last_stop);
}

enum gdb_verdict gdb_server_classify(struct gdb_server *s, unsigned cpu,
				     const struct gdb_debug_event *ev)
{
	enum gdb_verdict v = GDB_VERDICT_REINJECT;
	if (cpu >= s->t.ncpus)
		return v;
	pthread_mutex_lock(&s->bp_lock);
	if (ev->exception == 1) {
		if ((ev->dr6 & DR6_BS) && s->run[cpu] == GDB_RUN_STEP) {
			v = GDB_VERDICT_STOP;
		} else if ((ev->dr6 & DR6_BS) && s->tracing[cpu]) {
			/* One traced instruction done: did it reach a
			 * breakpoint or change a watched byte? */
			v = GDB_VERDICT_CONTINUE;
			for (unsigned i = 0; i < s->ntr && v == GDB_VERDICT_CONTINUE; i++) {
				struct traced *t = &s->tr[i];
				uint8_t now[MAX_TRACED_WATCH];
				if (t->kind != DR_WRITE) {
					if (t->addr == ev->pc)
						v = GDB_VERDICT_STOP;
				} else if (s->t.read_phys(s->t.opaque, t->gpa, now, t->len) == 0 &&
					   memcmp(now, t->last, t->len)) {
					memcpy(t->last, now, t->len);
					v = GDB_VERDICT_STOP;
				}
				if (v == GDB_VERDICT_STOP)
					s->trace_hit[cpu] = (int)i;
			}
		}
		for (unsigned i = 0; i < NR_DEBUGREGS; i++)
			if ((ev->dr6 & (1u << i)) && s->dr[i].kind != DR_FREE)
				v = GDB_VERDICT_STOP;
	} else if (ev->exception == 3) {
		for (unsigned i = 0; i < s->nsw; i++)
			if (s->sw[i].addr == ev->pc)
				v = GDB_VERDICT_STOP;
	} else {
		v = GDB_VERDICT_STOP;
	}
	pthread_mutex_unlock(&s->bp_lock);
	return v;
}

/* ---- resuming ---- */

static void resume(struct gdb_server *s, const enum gdb_run *run)
{
	struct gdb_guest_debug dbg;
	guest_debug_config(s, &dbg);
	enum gdb_run eff[s->t.ncpus];
	pthread_mutex_lock(&s->bp_lock);
	memcpy(s->run, run, sizeof(*run) * s->t.ncpus);
	for (unsigned i = 0; i < s->t.ncpus; i++) {
		eff[i] = s->ntr && run[i] == GDB_RUN_CONTINUE ? GDB_RUN_TRACE : run[i];
		s->tracing[i] = eff[i] == GDB_RUN_TRACE;
		s->trace_hit[i] = -1;
	}
	/* gdb may have written watched memory while stopped. */
	for (unsigned i = 0; i < s->ntr; i++)
		if (s->tr[i].kind == DR_WRITE)
			s->t.read_phys(s->t.opaque, s->tr[i].gpa, s->tr[i].last, s->tr[i].len);
	pthread_mutex_unlock(&s->bp_lock);
	invalidate_states(s);
	s->running = true;
	if (s->t.resume(s->t.opaque, eff, &dbg)) {
		/* Nothing runs: say so as a stop, or gdb waits forever. */
		s->running = false;
		set_stop(s, SIGTRAP_NR, s->cur_g, NULL);
		reply(s, s->last_stop);
	}
}

/* "c [addr]" / "s [addr]": addr is the new RIP of the thread Hc chose. */
static bool set_resume_pc(struct gdb_server *s, unsigned who, const char *arg)
{
	uint64_t pc;
	if (!*arg)
		return true;
	if (!rsp_parse_hex(&arg, &pc) || *arg)
		return false;
	struct x86_state *st = state_of(s, who);
	if (!st)
		return false;
	st->regs.rip = pc;
	return write_state(s, who, X86_PART_REGS) == 0;
}

static void handle_legacy_resume(struct gdb_server *s, char cmd, const char *arg)
{
	if (cmd == 'C' || cmd == 'S') {
		/* "C sig[;addr]": the signal means nothing to a VM. */
		uint64_t sig;
		if (!rsp_parse_hex(&arg, &sig) || (*arg && *arg != ';')) {
			reply(s, "E01");
			return;
		}
		if (*arg)
			arg++;
	}
	unsigned who = s->cur_c >= 0 ? (unsigned)s->cur_c : s->cur_g;
	if (!set_resume_pc(s, who, arg)) {
		reply(s, "E01");
		return;
	}
	enum gdb_run run[s->t.ncpus];
	bool step = cmd == 's' || cmd == 'S';
	for (unsigned i = 0; i < s->t.ncpus; i++)
		run[i] = step ? (i == who ? GDB_RUN_STEP : GDB_RUN_STOP) : GDB_RUN_CONTINUE;
	resume(s, run);
}

/* A thread id: -1 all, 0 any, else vCPU + 1. Returns false when bad. */
static bool parse_thread(const char **p, long *tid)
{
	if ((*p)[0] == '-' && (*p)[1] == '1') {
		*p += 2;
		*tid = -1;
		return true;
	}
	uint64_t v;
	if (!rsp_parse_hex(p, &v) || v > 0x7fffffff)
		return false;
	*tid = (long)v;
	return true;
}

static void handle_vcont(struct gdb_server *s, const char *p)
{
	unsigned n = s->t.ncpus;
	enum gdb_run run[n];
	bool decided[n];
	for (unsigned i = 0; i < n; i++) {
		run[i] = GDB_RUN_STOP;
		decided[i] = false;
	}
	bool any = false;
	while (*p == ';') {
		p++;
		char action = *p++;
		enum gdb_run what;
		switch (action) {
		case 'c': case 'C': what = GDB_RUN_CONTINUE; break;
		case 's': case 'S': what = GDB_RUN_STEP; break;
		case 't': what = GDB_RUN_STOP; break;
		default: reply(s, "E01"); return;
		}
		if (action == 'C' || action == 'S') {
			uint64_t sig;
			if (!rsp_parse_hex(&p, &sig)) {
				reply(s, "E01");
				return;
			}
		}
		long tid = -1;
		if (*p == ':') {
			p++;
			if (!parse_thread(&p, &tid)) {
				reply(s, "E01");
				return;
			}
		}
		if (*p && *p != ';') {
			reply(s, "E01");
			return;
		}
		for (unsigned i = 0; i < n; i++) {
			if (decided[i] || (tid > 0 && (unsigned long)tid != i + 1))
				continue;
			run[i] = what;
			decided[i] = true;
		}
		any = true;
	}
	if (*p || !any) {
		reply(s, "E01");
		return;
	}
	bool runs = false;
	for (unsigned i = 0; i < n; i++)
		runs |= run[i] != GDB_RUN_STOP;
	if (!runs) {
		reply(s, "OK");
		return;
	}
	resume(s, run);
}

/* ---- packets ---- */

static bool parse_addr_len(const char **p, uint64_t *addr, uint64_t *len)
{
	return rsp_parse_hex(p, addr) && *(*p)++ == ',' && rsp_parse_hex(p, len);
}

static void handle_read_memory(struct gdb_server *s, const char *p)
{
	uint64_t addr, len;
	if (!parse_addr_len(&p, &addr, &len) || *p) {
		reply(s, "E01");
		return;
	}
	if (len > REPLY_MAX / 2)
		len = REPLY_MAX / 2;
	uint8_t buf[REPLY_MAX / 2];
	size_t got = read_memory(s, addr, buf, (size_t)len);
	if (!got && len) {
		reply(s, "E14"); /* EFAULT */
		return;
	}
	rsp_hex_encode(buf, got, s->reply);
	reply(s, s->reply);
}

static void handle_write_memory(struct gdb_server *s, uint8_t *pkt, size_t pktlen, bool binary)
{
	const char *p = (const char *)pkt + 1;
	uint64_t addr, len;
	if (!parse_addr_len(&p, &addr, &len) || *p != ':') {
		reply(s, "E01");
		return;
	}
	p++;
	size_t off = (size_t)(p - (const char *)pkt);
	size_t avail = pktlen - off;
	uint8_t *data = pkt + off;
	if (binary) {
		long n = rsp_unescape(data, avail);
		if (n < 0 || (uint64_t)n != len) {
			reply(s, "E01");
			return;
		}
	} else {
		if (len > avail / 2 || avail != 2 * len || !rsp_hex_decode((const char *)data, len, data)) {
			reply(s, "E01");
			return;
		}
	}
	int r = write_memory(s, addr, data, (size_t)len);
	if (r)
		reply(s, "E14");
	else
		reply(s, "OK");
}

static void handle_read_regs(struct gdb_server *s)
{
	struct x86_state *st = state_of(s, s->cur_g);
	if (!st) {
		reply(s, "E05");
		return;
	}
	char *o = s->reply;
	for (unsigned n = 0; n < X86_NREGS; n++) {
		uint8_t b[16];
		size_t size = x86_reg_size(n);
		x86_reg_get(st, n, b);
		rsp_hex_encode(b, size, o);
		o += 2 * size;
	}
	reply(s, s->reply);
}

static void handle_write_regs(struct gdb_server *s, const char *p, size_t len)
{
	struct x86_state *st = state_of(s, s->cur_g);
	if (!st || len % 2) {
		reply(s, "E01");
		return;
	}
	unsigned parts = 0;
	size_t off = 0;
	for (unsigned n = 0; n < X86_NREGS; n++) {
		size_t size = x86_reg_size(n);
		if (off + 2 * size > len)
			break; /* a shorter 'G' sets the first registers only */
		uint8_t b[16];
		if (!rsp_hex_decode(p + off, size, b)) {
			reply(s, "E01");
			return;
		}
		parts |= x86_reg_set(st, n, b);
		off += 2 * size;
	}
	reply(s, write_state(s, s->cur_g, parts) ? "E05" : "OK");
}

static void handle_read_reg(struct gdb_server *s, const char *p)
{
	uint64_t n;
	if (!rsp_parse_hex(&p, &n) || *p) {
		reply(s, "E01");
		return;
	}
	struct x86_state *st = state_of(s, s->cur_g);
	if (n >= X86_NREGS || !st) {
		reply(s, st ? "E00" : "E05");
		return;
	}
	uint8_t b[16];
	x86_reg_get(st, (unsigned)n, b);
	rsp_hex_encode(b, x86_reg_size((unsigned)n), s->reply);
	reply(s, s->reply);
}

static void handle_write_reg(struct gdb_server *s, const char *p)
{
	uint64_t n;
	if (!rsp_parse_hex(&p, &n) || *p++ != '=' || n >= X86_NREGS) {
		reply(s, "E01");
		return;
	}
	size_t size = x86_reg_size((unsigned)n);
	uint8_t b[16];
	struct x86_state *st = state_of(s, s->cur_g);
	if (strlen(p) != 2 * size || !rsp_hex_decode(p, size, b) || !st) {
		reply(s, "E01");
		return;
	}
	unsigned parts = x86_reg_set(st, (unsigned)n, b);
	reply(s, write_state(s, s->cur_g, parts) ? "E05" : "OK");
}

static int insert_sw_break(struct gdb_server *s, uint64_t addr)
{
	if (use_int3(s))
		return insert_int3(s, addr);
	if (use_trace_for_break(s))
		return insert_traced(s, DR_EXEC_SW, addr, 1);
	int r = insert_dr(s, DR_EXEC_SW, addr, 1);
	if (r == -ENOSPC)
		log_warn("gdb: cannot insert a breakpoint at %#llx: all 4 debug registers are in use "
			 "(this host's KVM does not intercept int3, so software breakpoints take debug "
			 "registers too)", (unsigned long long)addr);
	return r;
}

static void handle_breakpoint(struct gdb_server *s, const char *p, bool insert)
{
	char type = *p++;
	uint64_t addr, kind;
	if (type < '0' || type > '4' || *p++ != ',' || !parse_addr_len(&p, &addr, &kind) ||
	    (*p && *p != ';')) {
		reply(s, "E01");
		return;
	}
	int r = 0;
	bool hw_watch = caps_of(s) & GDB_CAP_HW_WATCH;
	switch (type) {
	case '0':
		if (insert) {
			r = insert_sw_break(s, addr);
			if (r == -ENOSPC && !use_int3(s)) {
				reply(s, "E.khyve: all 4 debug registers are in use; this host's KVM does "
					 "not intercept int3, so software breakpoints take debug registers too");
				return;
			}
		} else {
			int i = find_sw(s, addr);
			if (i >= 0)
				remove_int3_at(s, (unsigned)i);
			remove_dr(s, DR_EXEC_SW, addr, 1);
			remove_traced(s, DR_EXEC_SW, addr, 1);
		}
		break;
	case '1':
		if (!insert) {
			remove_dr(s, DR_EXEC_HW, addr, 1);
			remove_traced(s, DR_EXEC_HW, addr, 1);
		} else if (use_trace_for_hw_break(s)) {
			r = insert_traced(s, DR_EXEC_HW, addr, 1);
		} else {
			r = insert_dr(s, DR_EXEC_HW, addr, 1);
		}
		break;
	case '2':
		if (!insert) {
			remove_dr(s, DR_WRITE, addr, kind);
			remove_traced(s, DR_WRITE, addr, kind);
		} else if (hw_watch) {
			r = insert_dr(s, DR_WRITE, addr, kind);
		} else {
			r = insert_traced(s, DR_WRITE, addr, kind);
		}
		break;
	default: {
		enum dr_kind k = type == '3' ? DR_READ : DR_ACCESS;
		if (!insert) {
			remove_dr(s, k, addr, kind);
		} else if (!hw_watch) {
			reply(s, "E.khyve: read and access watchpoints need data breakpoints, which this "
				 "host's KVM does not fire");
			log_warn("gdb: read and access watchpoints need data breakpoints, which this "
				 "host's KVM does not fire; write watchpoints work (by tracing)");
			return;
		} else {
			r = insert_dr(s, k, addr, kind);
		}
		break;
	}
	}
	if (r == -ENOSPC) {
		if (type != '0')
			log_warn("gdb: cannot insert a %s at %#llx: all 4 debug registers are in use",
				 type == '1' ? "hardware breakpoint" : "watchpoint",
				 (unsigned long long)addr);
		reply(s, "E.khyve: all 4 debug registers are in use");
	} else if (r) {
		reply_error(s, r);
	} else {
		reply(s, "OK");
	}
}

static void handle_xfer_features(struct gdb_server *s, const char *p)
{
	/* "target.xml:offset,length" */
	static const char annex[] = "target.xml:";
	if (strncmp(p, annex, sizeof(annex) - 1)) {
		reply(s, "E00");
		return;
	}
	p += sizeof(annex) - 1;
	uint64_t off, len;
	if (!parse_addr_len(&p, &off, &len) || *p) {
		reply(s, "E01");
		return;
	}
	const char *xml = x86_target_xml();
	size_t total = strlen(xml);
	if (off >= total) {
		reply(s, "l");
		return;
	}
	if (len > REPLY_MAX - 1)
		len = REPLY_MAX - 1;
	size_t n = total - off < len ? total - (size_t)off : (size_t)len;
	s->reply[0] = off + n < total ? 'm' : 'l';
	memcpy(s->reply + 1, xml + off, n);
	send_frame(s, s->reply, n + 1, true);
}

static void handle_supported(struct gdb_server *s, const char *p)
{
	s->gdb_swbreak = strstr(p, "swbreak+") != NULL;
	s->gdb_hwbreak = strstr(p, "hwbreak+") != NULL;
	reply_fmt(s, "PacketSize=%x;qXfer:features:read+;swbreak+;hwbreak+;vContSupported+;"
		     "QStartNoAckMode+", REPLY_MAX);
}

/* ---- monitor commands ---- */

struct out {
	char buf[REPLY_MAX / 2];
	size_t len;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
	if (o->len >= sizeof(o->buf) - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, sizeof(o->buf) - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n < sizeof(o->buf) - o->len ? (size_t)n : sizeof(o->buf) - o->len - 1;
}

static void show_segment(struct out *o, const char *name, const struct kvm_segment *sg)
{
	outf(o, "%-4s %04x base %016llx limit %08x type %x s%u dpl%u p%u db%u l%u g%u%s\n", name,
	     sg->selector, (unsigned long long)sg->base, sg->limit, sg->type, sg->s, sg->dpl,
	     sg->present, sg->db, sg->l, sg->g, sg->unusable ? " unusable" : "");
}

static void monitor_regs(struct gdb_server *s, struct out *o)
{
	struct x86_state *st = state_of(s, s->cur_g);
	if (!st) {
		outf(o, "cannot read the registers of vCPU %u\n", s->cur_g);
		return;
	}
	const struct kvm_sregs *sr = &st->sregs;
	struct paging_regs pr;
	paging_regs_of(st, &pr);
	outf(o, "vCPU %u: rip %016llx rflags %08llx, %s\n", s->cur_g, (unsigned long long)st->regs.rip,
	     (unsigned long long)st->regs.rflags, paging_mode_name(paging_mode_of(&pr)));
	outf(o, "cr0 %016llx cr2 %016llx cr3 %016llx\ncr4 %016llx cr8 %016llx efer %016llx\n",
	     (unsigned long long)sr->cr0, (unsigned long long)sr->cr2, (unsigned long long)sr->cr3,
	     (unsigned long long)sr->cr4, (unsigned long long)sr->cr8, (unsigned long long)sr->efer);
	outf(o, "apic_base %016llx\n", (unsigned long long)sr->apic_base);
	show_segment(o, "cs", &sr->cs);
	show_segment(o, "ss", &sr->ss);
	show_segment(o, "ds", &sr->ds);
	show_segment(o, "es", &sr->es);
	show_segment(o, "fs", &sr->fs);
	show_segment(o, "gs", &sr->gs);
	show_segment(o, "tr", &sr->tr);
	show_segment(o, "ldt", &sr->ldt);
	outf(o, "gdt  base %016llx limit %04x\nidt  base %016llx limit %04x\n",
	     (unsigned long long)sr->gdt.base, sr->gdt.limit, (unsigned long long)sr->idt.base,
	     sr->idt.limit);
}

static void monitor_translate(struct gdb_server *s, struct out *o, const char *arg)
{
	uint64_t addr;
	const char *p = arg;
	if (!strncmp(p, "0x", 2))
		p += 2;
	if (!rsp_parse_hex(&p, &addr) || *p) {
		outf(o, "usage: monitor translate ADDRESS (hex)\n");
		return;
	}
	struct x86_state *st = state_of(s, s->cur_g);
	if (!st) {
		outf(o, "cannot read the registers of vCPU %u\n", s->cur_g);
		return;
	}
	struct paging_regs pr;
	paging_regs_of(st, &pr);
	struct paging_result res;
	int r = paging_translate(&pr, addr, phys_read_cb, s, &res);
	outf(o, "%s, cr3 %016llx\n", paging_mode_name(paging_mode_of(&pr)), (unsigned long long)pr.cr3);
	static const char *const names[] = { "PML5E", "PML4E", "PDPTE", "PDE", "PTE" };
	static const char *const names32[] = { "PDE", "PTE" };
	enum paging_mode mode = paging_mode_of(&pr);
	const char *const *n = mode == PAGING_32 ? names32 : mode == PAGING_PAE ? names + 2 :
			       mode == PAGING_LONG4 ? names + 1 : names;
	for (unsigned i = 0; i < res.levels; i++)
		outf(o, "  %-5s %016llx\n", n[i], (unsigned long long)res.entries[i]);
	if (r == 0)
		outf(o, "%016llx -> physical %016llx (page of %llu KiB)\n", (unsigned long long)addr,
		     (unsigned long long)res.gpa, (unsigned long long)(res.page_size >> 10));
	else
		outf(o, "%016llx is %s\n", (unsigned long long)addr,
		     r == -EFAULT ? "not mapped" : "not readable (page tables outside RAM)");
}

static void monitor_breakpoints(struct gdb_server *s, struct out *o)
{
	unsigned caps = caps_of(s);
	outf(o, "software breakpoints (Z0): %s%s\n",
	     use_int3(s) ? "int3" : use_trace_for_break(s) ? "traced" : "debug registers",
	     s->sw_mode == GDB_SW_AUTO ? "" : " (forced)");
	outf(o, "this host's KVM: int3 %s, debug-register breakpoints %s, data breakpoints %s\n",
	     caps & GDB_CAP_INT3 ? "intercepted" : "not intercepted",
	     caps & GDB_CAP_HW_BREAK ? "fire" : "do not fire",
	     caps & GDB_CAP_HW_WATCH ? "fire" : "do not fire (write watchpoints are traced)");
	for (unsigned i = 0; i < s->nsw; i++)
		outf(o, "int3 at %016llx (physical %016llx, saved byte %02x)\n",
		     (unsigned long long)s->sw[i].addr, (unsigned long long)s->sw[i].gpa, s->sw[i].orig);
	for (unsigned i = 0; i < s->ntr; i++)
		outf(o, "traced %s at %016llx%s\n", dr_kind_name(s->tr[i].kind),
		     (unsigned long long)s->tr[i].addr, s->tr[i].kind == DR_WRITE ? ", watched" : "");
	for (unsigned i = 0; i < NR_DEBUGREGS; i++) {
		if (s->dr[i].kind == DR_FREE)
			outf(o, "dr%u: free\n", i);
		else
			outf(o, "dr%u: %s at %016llx, %u bytes\n", i, dr_kind_name(s->dr[i].kind),
			     (unsigned long long)s->dr[i].addr, s->dr[i].len);
	}
}

static const char monitor_help[] =
	"khyve monitor commands:\n"
	"  regs                  control, segment and descriptor-table registers of\n"
	"                        the current thread (vCPU)\n"
	"  msr INDEX             read a model-specific register (e.g. msr 0xc0000080)\n"
	"  memmap                the guest's physical memory map\n"
	"  translate ADDRESS     walk the page tables for a virtual address\n"
	"  breakpoints           the breakpoints and watchpoints in place\n"
	"  swbreak [auto|int3|debugreg|trace]\n"
	"                        how software breakpoints are made (auto: int3 where\n"
	"                        KVM intercepts it, else debug registers where they\n"
	"                        fire, else by tracing the vCPUs)\n"
	"  memory [auto|virtual|physical]\n"
	"                        what addresses mean: virtual (translated by the page\n"
	"                        tables; auto falls back to physical where nothing is\n"
	"                        mapped) or physical\n";

static void handle_monitor(struct gdb_server *s, const char *hex)
{
	size_t hl = strlen(hex);
	char cmd[512];
	if (hl % 2 || hl / 2 >= sizeof(cmd) || !rsp_hex_decode(hex, hl / 2, (uint8_t *)cmd)) {
		reply(s, "E01");
		return;
	}
	cmd[hl / 2] = 0;
	for (size_t i = 0; i < hl / 2; i++)
		if (!cmd[i])
			cmd[i] = ' ';
	struct out *o = calloc(1, sizeof(*o));
	if (!o) {
		reply(s, "E0c");
		return;
	}
	char word[32] = "", arg[128] = "";
	sscanf(cmd, "%31s %127s", word, arg);
	if (!strcmp(word, "help") || !word[0]) {
		outf(o, "%s", monitor_help);
	} else if (!strcmp(word, "regs") || !strcmp(word, "sregs") || !strcmp(word, "cr")) {
		monitor_regs(s, o);
	} else if (!strcmp(word, "msr")) {
		char *end;
		unsigned long long idx = strtoull(arg, &end, 0);
		uint64_t v;
		if (!arg[0] || *end || idx > 0xffffffffull)
			outf(o, "usage: monitor msr INDEX\n");
		else if (!s->t.read_msr || s->t.read_msr(s->t.opaque, s->cur_g, (uint32_t)idx, &v))
			outf(o, "MSR %#llx cannot be read\n", idx);
		else
			outf(o, "MSR %#llx = %#018llx\n", idx, (unsigned long long)v);
	} else if (!strcmp(word, "memmap") || !strcmp(word, "e820")) {
		if (s->t.memory_map)
			s->t.memory_map(s->t.opaque, o->buf, sizeof(o->buf));
		o->len = strlen(o->buf);
	} else if (!strcmp(word, "translate") || !strcmp(word, "xlate")) {
		monitor_translate(s, o, arg);
	} else if (!strcmp(word, "breakpoints")) {
		monitor_breakpoints(s, o);
	} else if (!strcmp(word, "swbreak")) {
		if (!strcmp(arg, "auto"))
			s->sw_mode = GDB_SW_AUTO;
		else if (!strcmp(arg, "int3"))
			s->sw_mode = GDB_SW_INT3;
		else if (!strcmp(arg, "debugreg"))
			s->sw_mode = GDB_SW_DEBUGREG;
		else if (!strcmp(arg, "trace"))
			s->sw_mode = GDB_SW_TRACE;
		else if (arg[0])
			outf(o, "usage: monitor swbreak [auto|int3|debugreg|trace]\n");
		if (!o->len)
			monitor_breakpoints(s, o);
	} else if (!strcmp(word, "memory")) {
		if (!strcmp(arg, "auto"))
			s->mem_mode = MEM_AUTO;
		else if (!strcmp(arg, "virtual"))
			s->mem_mode = MEM_VIRTUAL;
		else if (!strcmp(arg, "physical"))
			s->mem_mode = MEM_PHYSICAL;
		else if (arg[0])
			outf(o, "usage: monitor memory [auto|virtual|physical]\n");
		if (!o->len)
			outf(o, "addresses are %s\n",
			     s->mem_mode == MEM_PHYSICAL ? "physical" :
			     s->mem_mode == MEM_VIRTUAL ? "virtual" :
			     "virtual, or physical where nothing is mapped");
	} else {
		outf(o, "unknown monitor command '%s' (try: monitor help)\n", word);
	}
	if (!o->len) {
		reply(s, "OK");
	} else {
		rsp_hex_encode(o->buf, o->len, s->reply);
		reply(s, s->reply);
	}
	free(o);
}

/* ---- dispatch ---- */

static void handle_query(struct gdb_server *s, const char *p)
{
	if (!strncmp(p, "qSupported", 10)) {
		handle_supported(s, p + 10);
	} else if (!strcmp(p, "qC")) {
		reply_fmt(s, "QC%x", s->cur_g + 1);
	} else if (!strcmp(p, "qfThreadInfo")) {
		char *o = s->reply;
		*o++ = 'm';
		for (unsigned i = 0; i < s->t.ncpus && o < s->reply + REPLY_MAX - 12; i++)
			o += sprintf(o, "%s%x", i ? "," : "", i + 1);
		*o = 0;
		reply(s, s->reply);
	} else if (!strcmp(p, "qsThreadInfo")) {
		reply(s, "l");
	} else if (!strncmp(p, "qThreadExtraInfo,", 17)) {
		const char *q = p + 17;
		long tid;
		if (!parse_thread(&q, &tid) || *q || tid < 1 || (unsigned long)tid > s->t.ncpus) {
			reply(s, "E01");
			return;
		}
		char text[128];
		snprintf(text, sizeof(text), "vCPU %ld", tid - 1);
		if (s->t.describe_cpu)
			s->t.describe_cpu(s->t.opaque, (unsigned)tid - 1, text, sizeof(text));
		rsp_hex_encode(text, strlen(text), s->reply);
		reply(s, s->reply);
	} else if (!strncmp(p, "qAttached", 9)) {
		reply(s, "1");
	} else if (!strncmp(p, "qXfer:features:read:", 20)) {
		handle_xfer_features(s, p + 20);
	} else if (!strncmp(p, "qRcmd,", 6)) {
		handle_monitor(s, p + 6);
	} else if (!strncmp(p, "qSymbol", 7)) {
		reply(s, "OK");
	} else {
		reply(s, ""); /* qOffsets, qTStatus, ...: not supported */
	}
}

static void handle_packet(struct gdb_server *s, uint8_t *pkt, size_t len)
{
	const char *p = (const char *)pkt;
	switch (p[0]) {
	case '?':
		reply(s, s->last_stop);
		break;
	case 'g':
		handle_read_regs(s);
		break;
	case 'G':
		handle_write_regs(s, p + 1, len - 1);
		break;
	case 'p':
		handle_read_reg(s, p + 1);
		break;
	case 'P':
		handle_write_reg(s, p + 1);
		break;
	case 'm':
		handle_read_memory(s, p + 1);
		break;
	case 'M':
		handle_write_memory(s, pkt, len, false);
		break;
	case 'X':
		handle_write_memory(s, pkt, len, true);
		break;
	case 'c': case 's': case 'C': case 'S':
		handle_legacy_resume(s, p[0], p + 1);
		break;
	case 'H': {
		const char *q = p + 2;
		long tid;
		if ((p[1] != 'g' && p[1] != 'c') || !parse_thread(&q, &tid) || *q ||
		    (tid > 0 && (unsigned long)tid > s->t.ncpus)) {
			reply(s, "E01");
			break;
		}
		if (p[1] == 'g')
			s->cur_g = tid > 0 ? (unsigned)tid - 1 : s->cur_g;
		else
			s->cur_c = tid > 0 ? (int)tid - 1 : -1;
		reply(s, "OK");
		break;
	}
	case 'T': {
		const char *q = p + 1;
		long tid;
		bool ok = parse_thread(&q, &tid) && !*q && tid >= 1 && (unsigned long)tid <= s->t.ncpus;
		reply(s, ok ? "OK" : "E01");
		break;
	}
	case 'Z':
	case 'z':
		handle_breakpoint(s, p + 1, p[0] == 'Z');
		break;
	case 'D':
		gdb_server_detach(s, true);
		reply(s, "OK");
		s->finished = true;
		break;
	case 'k':
		remove_all_breakpoints(s);
		s->t.kill(s->t.opaque);
		s->finished = true;
		break;
	case 'q':
		handle_query(s, p);
		break;
	case 'Q':
		if (!strcmp(p, "QStartNoAckMode")) {
			reply(s, "OK");
			s->noack = true;
		} else {
			reply(s, "");
		}
		break;
	case 'v':
		if (!strcmp(p, "vCont?"))
			reply(s, "vCont;c;C;s;S;t");
		else if (!strncmp(p, "vCont;", 6))
			handle_vcont(s, p + 5);
		else if (!strncmp(p, "vKill", 5)) {
			reply(s, "OK");
			remove_all_breakpoints(s);
			s->t.kill(s->t.opaque);
			s->finished = true;
		} else
			reply(s, "");
		break;
	default:
		reply(s, "");
		break;
	}
}

void gdb_server_input(struct gdb_server *s, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len && !s->finished; i++) {
		switch (rsp_feed(&s->parser, buf[i])) {
		case RSP_PACKET:
			if (!s->noack)
				s->t.send(s->t.opaque, "+", 1);
			if (s->running) {
				/* All-stop: nothing but ^C while the guest runs. */
				continue;
			}
			if (s->parser.len == 0)
				reply(s, "");
			else
				handle_packet(s, s->parser.buf, s->parser.len);
			break;
		case RSP_BAD_CHECKSUM:
			if (!s->noack)
				s->t.send(s->t.opaque, "-", 1);
			break;
		case RSP_TOO_LONG:
			if (!s->noack)
				s->t.send(s->t.opaque, "+", 1);
			if (!s->running)
				reply(s, "E.packet too long");
			break;
		case RSP_INTERRUPT:
			if (s->running) {
				unsigned cpu = 0;
				struct gdb_debug_event ev;
				int r = s->t.pause(s->t.opaque, &cpu, &ev);
				s->running = false;
				invalidate_states(s);
				if (r == 1 && cpu < s->t.ncpus)
					describe_event(s, cpu, &ev);
				else
					set_stop(s, SIGINT_NR, 0, NULL);
				reply(s, s->last_stop);
			}
			break;
		case RSP_NAK:
			if (!s->noack && s->frame_len)
				s->t.send(s->t.opaque, s->frame, s->frame_len);
			break;
		case RSP_ACK:
		case RSP_NONE:
			break;
		}
	}
}

/* ---- lifetime ---- */

struct gdb_server *gdb_server_new(const struct gdb_target *t, int signo)
{
	if (!t->ncpus)
		return NULL;
	struct gdb_server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->t = *t;
	s->run = calloc(t->ncpus, sizeof(*s->run));
	s->cache = calloc(t->ncpus, sizeof(*s->cache));
	s->cache_valid = calloc(t->ncpus, sizeof(*s->cache_valid));
	s->tracing = calloc(t->ncpus, sizeof(*s->tracing));
	s->trace_hit = calloc(t->ncpus, sizeof(*s->trace_hit));
	if (!s->run || !s->cache || !s->cache_valid || !s->tracing || !s->trace_hit) {
		gdb_server_free(s);
		return NULL;
	}
	pthread_mutex_init(&s->bp_lock, NULL);
	rsp_init(&s->parser);
	s->cur_c = -1;
	s->caps = -1;
	set_stop(s, signo, 0, NULL);
	return s;
}

void gdb_server_free(struct gdb_server *s)
{
	if (!s)
		return;
	if (s->run)
		pthread_mutex_destroy(&s->bp_lock);
	free(s->run);
	free(s->cache);
	free(s->cache_valid);
	free(s->tracing);
	free(s->trace_hit);
	free(s);
}

void gdb_server_detach(struct gdb_server *s, bool resume_guest)
{
	if (s->running) {
		unsigned cpu;
		struct gdb_debug_event ev;
		s->t.pause(s->t.opaque, &cpu, &ev);
		s->running = false;
	}
	remove_all_breakpoints(s);
	invalidate_states(s);
	enum gdb_run run[s->t.ncpus];
	for (unsigned i = 0; i < s->t.ncpus; i++)
		run[i] = resume_guest ? GDB_RUN_CONTINUE : GDB_RUN_STOP;
	struct gdb_guest_debug off = { .enable = false };
	pthread_mutex_lock(&s->bp_lock);
	memcpy(s->run, run, sizeof(run));
	for (unsigned i = 0; i < s->t.ncpus; i++)
		s->tracing[i] = false;
	pthread_mutex_unlock(&s->bp_lock);
	s->t.resume(s->t.opaque, run, &off);
}

void gdb_server_exited(struct gdb_server *s, int status)
{
	reply_fmt(s, "W%02x", (unsigned)status & 0xff);
	s->running = false;
	s->finished = true;
}

bool gdb_server_running(const struct gdb_server *s)
{
	return s->running;
}

bool gdb_server_finished(const struct gdb_server *s)
{
	return s->finished;
}

void gdb_server_set_sw_mode(struct gdb_server *s, enum gdb_sw_mode mode)
{
	s->sw_mode = mode;
}
