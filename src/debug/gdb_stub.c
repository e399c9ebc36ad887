/* The GDB stub: socket, vCPU control and guest memory for gdb_server.c.
 *
 * When a debugger connects every vCPU is paused (vm_pause_vcpus); gdb's
 * register requests run on the parked vCPU threads (vm_vcpu_call), and
 * resuming sets each vCPU's KVM_SET_GUEST_DEBUG before letting it go. A
 * KVM_EXIT_DEBUG arrives on the vCPU's thread: gdb_server_classify says
 * whether it is ours; if so the vCPU thread records it, every vCPU parks,
 * and the event loop reports the stop; if not (the guest's own int3 or
 * #DB), it is injected back into the guest. */
#include "debug/gdb_stub.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/listen.h"
#include "debug/gdb_server.h"
#include "debug/kvm_probe.h"
#include "debug/rsp.h"
#include "mem/guest_mem.h"
#include "util/evloop.h"
#include "util/log.h"
#include "util/sockio.h"
#include "vmm/vm.h"

#define PAUSE_TIMEOUT_MS 5000
#define SEND_TIMEOUT_MS 5000

/* A second debugger: its first packet (qSupported) is answered with an
 * error that gdb shows ("Remote failure reply: E.khyve: ..."), then the
 * connection is closed. */
#define MAX_REFUSED 4

struct refused {
	struct gdb_stub *stub;
	int fd;
	struct evloop_source *src;
};

struct gdb_stub {
	struct vm *vm;
	struct evloop *loop;
	unsigned ncpus;
	int listen_fd;
	struct evloop_source *listen_src;
	char where[80];
	bool hold;      /* -G w: held before the first instruction */
	bool ever_ran;  /* the vCPUs have been let go at least once */
	enum gdb_sw_mode sw_mode;
	int caps;       /* -1 not yet probed, else GDB_CAP_* */

	int client_fd;
	struct evloop_source *client_src;
	struct gdb_server *server;

	/* The first debug stop since the last resume, from a vCPU thread. */
	int event_fd;
	struct evloop_source *event_src;
	pthread_mutex_t lock;
	bool have_event;
	unsigned event_cpu;
	struct gdb_debug_event event;
	bool attached; /* a server exists: vCPU threads may classify */

	struct refused refused[MAX_REFUSED];

	/* What each vCPU's KVM_SET_GUEST_DEBUG holds (for re-injecting). */
	struct kvm_guest_debug *dbg;
	bool blockirq_unsupported;
};

/* ---- vCPU-thread calls ---- */

struct state_call {
	struct x86_state *st;
	unsigned parts;
};

static int get_state_fn(void *arg, int fd)
{
	struct state_call *c = arg;
	if (ioctl(fd, KVM_GET_REGS, &c->st->regs) < 0 || ioctl(fd, KVM_GET_SREGS, &c->st->sregs) < 0 ||
	    ioctl(fd, KVM_GET_FPU, &c->st->fpu) < 0)
		return -errno;
	return 0;
}

static int set_state_fn(void *arg, int fd)
{
	struct state_call *c = arg;
	if ((c->parts & X86_PART_SREGS) && ioctl(fd, KVM_SET_SREGS, &c->st->sregs) < 0)
		return -errno;
	if ((c->parts & X86_PART_REGS) && ioctl(fd, KVM_SET_REGS, &c->st->regs) < 0)
		return -errno;
	if ((c->parts & X86_PART_FPU) && ioctl(fd, KVM_SET_FPU, &c->st->fpu) < 0)
		return -errno;
	return 0;
}

struct debug_call {
	struct gdb_stub *stub;
	unsigned cpu;
	struct kvm_guest_debug dbg;
};

static int set_debug_fn(void *arg, int fd)
{
	struct debug_call *c = arg;
	if (ioctl(fd, KVM_SET_GUEST_DEBUG, &c->dbg) == 0)
		return 0;
	if (errno == EINVAL && (c->dbg.control & KVM_GUESTDBG_BLOCKIRQ)) {
		/* An older KVM: single-step without holding interrupts off. */
		c->stub->blockirq_unsupported = true;
		c->dbg.control &= ~(uint32_t)KVM_GUESTDBG_BLOCKIRQ;
		if (ioctl(fd, KVM_SET_GUEST_DEBUG, &c->dbg) == 0)
			return 0;
	}
	return -errno;
}

struct msr_call {
	struct kvm_msrs msrs;
	struct kvm_msr_entry entry;
};

static int get_msr_fn(void *arg, int fd)
{
	struct msr_call *c = arg;
	return ioctl(fd, KVM_GET_MSRS, &c->msrs) == 1 ? 0 : -EIO;
}

/* ---- the target gdb_server drives ---- */

static void t_send(void *opaque, const void *buf, size_t len)
{
	struct gdb_stub *stub = opaque;
	int fd = stub->client_fd;
	/* The debugger stopped reading: let the loop notice the hangup. */
	if (fd >= 0 && !send_all_or_give_up(fd, buf, len, SEND_TIMEOUT_MS))
		shutdown(fd, SHUT_RDWR);
}

static int t_get_state(void *opaque, unsigned cpu, struct x86_state *st)
{
	struct gdb_stub *stub = opaque;
	struct state_call c = { .st = st };
	return vm_vcpu_call(stub->vm, cpu, get_state_fn, &c);
}

static int t_set_state(void *opaque, unsigned cpu, const struct x86_state *st, unsigned parts)
{
	struct gdb_stub *stub = opaque;
	struct state_call c = { .st = (struct x86_state *)st, .parts = parts };
	return vm_vcpu_call(stub->vm, cpu, set_state_fn, &c);
}

static int t_read_phys(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct gdb_stub *stub = opaque;
	return guest_mem_read(vm_mem(stub->vm), gpa, buf, len);
}

static int t_write_phys(void *opaque, uint64_t gpa, const void *buf, size_t len)
{
	struct gdb_stub *stub = opaque;
	return guest_mem_write(vm_mem(stub->vm), gpa, buf, len);
}

static int t_resume(void *opaque, const enum gdb_run *run, const struct gdb_guest_debug *d)
{
	struct gdb_stub *stub = opaque;
	bool go[stub->ncpus];
	pthread_mutex_lock(&stub->lock);
	stub->have_event = false;
	pthread_mutex_unlock(&stub->lock);
	int err = 0;
	for (unsigned i = 0; i < stub->ncpus; i++) {
		struct debug_call c = { .stub = stub, .cpu = i };
		if (d->enable) {
			c.dbg.control = KVM_GUESTDBG_ENABLE;
			if (d->sw_bp)
				c.dbg.control |= KVM_GUESTDBG_USE_SW_BP;
			if (d->hw_bp) {
				c.dbg.control |= KVM_GUESTDBG_USE_HW_BP;
				for (int n = 0; n < 4; n++)
					c.dbg.arch.debugreg[n] = d->dr[n];
				c.dbg.arch.debugreg[7] = d->dr7;
			}
			if (run[i] == GDB_RUN_STEP) {
				c.dbg.control |= KVM_GUESTDBG_SINGLESTEP;
				if (!stub->blockirq_unsupported)
					c.dbg.control |= KVM_GUESTDBG_BLOCKIRQ;
			} else if (run[i] == GDB_RUN_TRACE) {
				/* Interrupts go on: the guest must keep running. */
				c.dbg.control |= KVM_GUESTDBG_SINGLESTEP;
			}
		}
		int r = vm_vcpu_call(stub->vm, i, set_debug_fn, &c);
		if (r) {
			log_warn("gdb: setting the debug state of vCPU %u: %s", i, strerror(-r));
			err = r;
		}
		pthread_mutex_lock(&stub->lock);
		stub->dbg[i] = c.dbg;
		pthread_mutex_unlock(&stub->lock);
		go[i] = run[i] != GDB_RUN_STOP;
	}
	if (err && d->enable)
		return err;
	stub->ever_ran = true;
	vm_resume_vcpus(stub->vm, go);
	return 0;
}

/* Pause everything; returns 1 with the event if a vCPU stopped for us. */
static int pause_all(struct gdb_stub *stub, unsigned *cpu, struct gdb_debug_event *ev)
{
	if (vm_pause_vcpus(stub->vm, PAUSE_TIMEOUT_MS))
		log_warn("gdb: not every vCPU stopped within %d ms", PAUSE_TIMEOUT_MS);
	pthread_mutex_lock(&stub->lock);
	int r = stub->have_event;
	if (r) {
		*cpu = stub->event_cpu;
		*ev = stub->event;
		stub->have_event = false;
	}
	pthread_mutex_unlock(&stub->lock);
	return r;
}

static int t_pause(void *opaque, unsigned *cpu, struct gdb_debug_event *ev)
{
	return pause_all(opaque, cpu, ev);
}

static unsigned t_capabilities(void *opaque)
{
	struct gdb_stub *stub = opaque;
	if (stub->caps < 0) {
		unsigned k = kvm_probe_debug();
		stub->caps = (int)((k & KVM_PROBE_INT3 ? GDB_CAP_INT3 : 0) |
				   (k & KVM_PROBE_HW_BREAK ? GDB_CAP_HW_BREAK : 0) |
				   (k & KVM_PROBE_HW_WATCH ? GDB_CAP_HW_WATCH : 0));
		log_debug("gdb: this host's KVM: int3 %s, instruction breakpoints %s, data "
			  "breakpoints %s", k & KVM_PROBE_INT3 ? "intercepted" : "not intercepted",
			  k & KVM_PROBE_HW_BREAK ? "fire" : "do not fire",
			  k & KVM_PROBE_HW_WATCH ? "fire" : "do not fire");
	}
	return (unsigned)stub->caps;
}

static void t_kill(void *opaque)
{
	struct gdb_stub *stub = opaque;
	vm_request_exit(stub->vm, VM_EXIT_POWEROFF, "killed by the debugger");
}

static void t_describe_cpu(void *opaque, unsigned cpu, char *buf, size_t len)
{
	struct gdb_stub *stub = opaque;
	snprintf(buf, len, "vCPU %u, APIC ID %u", cpu, vm_apic_id(stub->vm, cpu));
}

static int t_read_msr(void *opaque, unsigned cpu, uint32_t index, uint64_t *value)
{
	struct gdb_stub *stub = opaque;
	struct msr_call c = { .msrs = { .nmsrs = 1 }, .entry = { .index = index } };
	int r = vm_vcpu_call(stub->vm, cpu, get_msr_fn, &c);
	if (!r)
		*value = c.entry.data;
	return r;
}

static void t_memory_map(void *opaque, char *buf, size_t len)
{
	struct gdb_stub *stub = opaque;
	static const char *const types[] = { "?", "RAM", "reserved", "ACPI", "NVS" };
	struct e820_entry e[E820_MAX_ENTRIES];
	int n = guest_mem_e820(vm_mem(stub->vm), e);
	size_t o = 0;
	o += (size_t)snprintf(buf + o, len - o, "guest physical memory (e820):\n");
	for (int i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "  %016llx-%016llx %s\n",
				      (unsigned long long)e[i].addr,
				      (unsigned long long)(e[i].addr + e[i].size - 1),
				      e[i].type < 5 ? types[e[i].type] : "?");
	if (o < len)
		o += (size_t)snprintf(buf + o, len - o,
				      "MMIO hole %016llx-%016llx: IOAPIC fec00000, LAPIC fee00000\n",
				      GUEST_LOWMEM_LIMIT, GUEST_HIGHMEM_BASE - 1);
	if (o < len)
		snprintf(buf + o, len - o, "%u vCPUs\n", stub->ncpus);
}

/* ---- debug exits, on vCPU threads ---- */

static bool on_debug_exit(void *opaque, unsigned index, int vcpu_fd,
			  const struct kvm_debug_exit_arch *arch)
{
	struct gdb_stub *stub = opaque;
	struct gdb_debug_event ev = { .exception = arch->exception, .dr6 = arch->dr6, .pc = arch->pc };
	pthread_mutex_lock(&stub->lock);
	if (!stub->attached) {
		/* A late exit from before the debugger went away. */
		pthread_mutex_unlock(&stub->lock);
		return false;
	}
	enum gdb_verdict v = gdb_server_classify(stub->server, index, &ev);
	struct kvm_guest_debug dbg = stub->dbg[index];
	if (v == GDB_VERDICT_CONTINUE) {
		pthread_mutex_unlock(&stub->lock);
		/* Tracing goes on. Setting the debug state again re-arms the
		 * single-step at this RIP: KVM keeps the trap flag only for the
		 * RIP where single-stepping was set, and an instruction it
		 * emulates (a CR0 write on SVM, say) would otherwise drop it. */
		if (ioctl(vcpu_fd, KVM_SET_GUEST_DEBUG, &dbg) < 0)
			log_guest("gdb: re-arming single-step on vCPU %u: %s", index, strerror(errno));
		return false;
	}
	bool first = false;
	if (v == GDB_VERDICT_STOP && !stub->have_event) {
		stub->have_event = true;
		stub->event_cpu = index;
		stub->event = ev;
		first = true;
	}
	pthread_mutex_unlock(&stub->lock);
	if (v == GDB_VERDICT_STOP) {
		/* The first stop wakes the loop; the others only park. */
		if (first) {
			uint64_t one = 1;
			ssize_t w = write(stub->event_fd, &one, sizeof(one));
			(void)w;
		}
		return true;
	}
	/* The guest's own int3 or debug trap: give it back. */
	dbg.control |= arch->exception == 3 ? KVM_GUESTDBG_INJECT_BP : KVM_GUESTDBG_INJECT_DB;
	if (!(dbg.control & KVM_GUESTDBG_ENABLE))
		dbg.control |= KVM_GUESTDBG_ENABLE;
	if (ioctl(vcpu_fd, KVM_SET_GUEST_DEBUG, &dbg) < 0)
		log_guest("gdb: re-injecting exception %u on vCPU %u: %s", arch->exception, index,
			  strerror(errno));
	return false;
}

static void on_event(void *opaque, uint32_t events)
{
	struct gdb_stub *stub = opaque;
	(void)events;
	uint64_t v;
	ssize_t r = read(stub->event_fd, &v, sizeof(v));
	(void)r;
	if (!stub->server || !gdb_server_running(stub->server))
		return;
	/* A wakeup whose event a ^C already reported (and the guest has been
	 * resumed since) finds no event: nothing to do. */
	pthread_mutex_lock(&stub->lock);
	bool pending = stub->have_event;
	pthread_mutex_unlock(&stub->lock);
	if (!pending)
		return;
	unsigned cpu;
	struct gdb_debug_event ev;
	if (pause_all(stub, &cpu, &ev))
		gdb_server_stopped(stub->server, cpu, &ev);
}

/* ---- the connection ---- */

static void drop_client(struct gdb_stub *stub)
{
	if (stub->server) {
		if (!gdb_server_finished(stub->server))
			gdb_server_detach(stub->server, true);
		pthread_mutex_lock(&stub->lock);
		stub->attached = false;
		pthread_mutex_unlock(&stub->lock);
		gdb_server_free(stub->server);
		stub->server = NULL;
	}
	if (stub->client_src)
		evloop_remove(stub->loop, stub->client_src);
	stub->client_src = NULL;
	if (stub->client_fd >= 0)
		close(stub->client_fd);
	stub->client_fd = -1;
	log_info("gdb: debugger detached");
}

static void on_client(void *opaque, uint32_t events)
{
	struct gdb_stub *stub = opaque;
	uint8_t buf[4096];
	ssize_t n = recv(stub->client_fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		(void)events;
		drop_client(stub);
		return;
	}
	gdb_server_input(stub->server, buf, (size_t)n);
	if (gdb_server_finished(stub->server))
		drop_client(stub);
}

static void refused_close(struct refused *r)
{
	evloop_remove(r->stub->loop, r->src);
	close(r->fd);
	r->fd = -1;
	r->src = NULL;
}

static void on_refused(void *opaque, uint32_t events)
{
	struct refused *r = opaque;
	(void)events;
	char buf[512];
	ssize_t n = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0 && !memchr(buf, '#', (size_t)n))
		return; /* not a whole packet yet */
	if (n > 0) {
		static const char msg[] = "E.khyve: a debugger is already attached to this VM";
		uint8_t frame[128] = "+";
		size_t len = 1 + rsp_frame(msg, sizeof(msg) - 1, false, frame + 1, sizeof(frame) - 1);
		ssize_t w = send(r->fd, frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w;
	}
	refused_close(r);
}

static void refuse(struct gdb_stub *stub, int fd)
{
	log_info("gdb: refused a second debugger connection");
	for (int i = 0; i < MAX_REFUSED; i++) {
		struct refused *r = &stub->refused[i];
		if (r->fd >= 0)
			continue;
		r->stub = stub;
		r->fd = fd;
		r->src = evloop_add(stub->loop, fd, EPOLLIN, on_refused, r);
		if (r->src)
			return;
		r->fd = -1;
		break;
	}
	close(fd);
}

static void on_accept(void *opaque, uint32_t events)
{
	struct gdb_stub *stub = opaque;
	(void)events;
	int fd = accept4(stub->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (stub->client_fd >= 0) {
		refuse(stub, fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	unsigned cpu;
	struct gdb_debug_event ev;
	pause_all(stub, &cpu, &ev);
	struct gdb_target t = {
		.opaque = stub,
		.ncpus = stub->ncpus,
		.send = t_send,
		.get_state = t_get_state,
		.set_state = t_set_state,
		.read_phys = t_read_phys,
		.write_phys = t_write_phys,
		.resume = t_resume,
		.pause = t_pause,
		.capabilities = t_capabilities,
		.kill = t_kill,
		.describe_cpu = t_describe_cpu,
		.read_msr = t_read_msr,
		.memory_map = t_memory_map,
	};
	stub->client_fd = fd;
	stub->server = gdb_server_new(&t, stub->hold && !stub->ever_ran ? 5 : 2);
	stub->client_src = stub->server ? evloop_add(stub->loop, fd, EPOLLIN, on_client, stub) : NULL;
	if (!stub->client_src) {
		log_warn("gdb: cannot serve the debugger: %s", strerror(errno ? errno : ENOMEM));
		drop_client(stub);
		return;
	}
	gdb_server_set_sw_mode(stub->server, stub->sw_mode);
	pthread_mutex_lock(&stub->lock);
	stub->attached = true;
	pthread_mutex_unlock(&stub->lock);
	log_info("gdb: debugger attached; the guest is stopped");
}

/* ---- lifetime ---- */

int gdb_stub_create(struct vm *vm, const char *spec, struct gdb_stub **out, char *err,
		    size_t errlen)
{
	struct gdb_stub *stub = calloc(1, sizeof(*stub));
	if (!stub) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	stub->vm = vm;
	stub->loop = vm_loop(vm);
	stub->ncpus = vm_vcpu_count(vm);
	stub->client_fd = -1;
	stub->caps = -1;
	stub->event_fd = -1;
	for (int i = 0; i < MAX_REFUSED; i++)
		stub->refused[i].fd = -1;
	pthread_mutex_init(&stub->lock, NULL);
	if (spec[0] == 'w') {
		stub->hold = true;
		spec++;
	}
	const char *mode = getenv("KHYVE_GDB_SWBREAK");
	if (mode && !strcmp(mode, "int3"))
		stub->sw_mode = GDB_SW_INT3;
	else if (mode && !strcmp(mode, "debugreg"))
		stub->sw_mode = GDB_SW_DEBUGREG;
	else if (mode && !strcmp(mode, "trace"))
		stub->sw_mode = GDB_SW_TRACE;
	int r;
	char why[200];
	stub->dbg = calloc(stub->ncpus, sizeof(*stub->dbg));
	if (!stub->dbg) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	stub->listen_fd = tcp_listen_spec(spec, stub->where, sizeof(stub->where), why, sizeof(why));
	if (stub->listen_fd < 0) {
		r = stub->listen_fd;
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	stub->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (stub->event_fd < 0 ||
	    !(stub->listen_src = evloop_add(stub->loop, stub->listen_fd, EPOLLIN, on_accept, stub)) ||
	    !(stub->event_src = evloop_add(stub->loop, stub->event_fd, EPOLLIN, on_event, stub))) {
		r = -errno;
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	/* What this host's KVM does for a debugger is found now, during
	 * set-up: the probe makes a throw-away VM, which the sandbox does not
	 * allow once the guest runs. */
	t_capabilities(stub);
	vm_set_debug_handler(vm, on_debug_exit, stub);
	if (stub->hold) {
		vm_hold_vcpus(vm);
		log_info("gdb: waiting for a debugger on %s (target remote %s)", stub->where,
			 stub->where);
	} else {
		log_info("gdb: listening on %s", stub->where);
	}
	*out = stub;
	return 0;
fail:
	gdb_stub_destroy(stub);
	return r ? r : -EIO;
}

void gdb_stub_vm_exited(struct gdb_stub *stub, int status)
{
	if (!stub || !stub->server)
		return;
	gdb_server_exited(stub->server, status);
}

void gdb_stub_destroy(struct gdb_stub *stub)
{
	if (!stub)
		return;
	if (stub->server) {
		pthread_mutex_lock(&stub->lock);
		stub->attached = false;
		pthread_mutex_unlock(&stub->lock);
		gdb_server_free(stub->server);
	}
	if (stub->vm)
		vm_set_debug_handler(stub->vm, NULL, NULL);
	if (stub->client_src)
		evloop_remove(stub->loop, stub->client_src);
	if (stub->client_fd >= 0)
		close(stub->client_fd);
	if (stub->listen_src)
		evloop_remove(stub->loop, stub->listen_src);
	if (stub->listen_fd > 0)
		close(stub->listen_fd);
	if (stub->event_src)
		evloop_remove(stub->loop, stub->event_src);
	if (stub->event_fd >= 0)
		close(stub->event_fd);
	for (int i = 0; i < MAX_REFUSED; i++)
		if (stub->refused[i].fd >= 0)
			refused_close(&stub->refused[i]);
	free(stub->dbg);
	pthread_mutex_destroy(&stub->lock);
	free(stub);
}
