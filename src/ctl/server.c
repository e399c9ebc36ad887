/* The control socket: connections on the event loop, requests handled by
 * ctl_handle (proto.c) against the running VM.
 *
 * Register access needs the vCPU stopped (KVM wants vCPU ioctls from the
 * vCPU's thread, or while it is idle): the VM's vCPUs are frozen for the
 * moment it takes (vm_freeze, the park-and-call machinery the debugger
 * uses) unless the operator suspended them already. The loop thread waits
 * for that, as it does for the GDB stub: vCPUs park as soon as they are
 * kicked out of KVM_RUN. */
#include "ctl/server.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl/proto.h"
#include "util/evloop.h"
#include "util/exitclean.h"
#include "util/log.h"
#include "util/sockio.h"
#include "vmm/vm.h"

#define MAX_CLIENTS 8
#define FREEZE_TIMEOUT_MS 5000
#define SEND_TIMEOUT_MS 5000

struct client {
	struct ctl_server *s;
	int fd;
	struct evloop_source *src;
	struct ctl_buf in;
};

struct ctl_server {
	struct ctl_server_config cfg;
	struct evloop *loop;
	int listen_fd;
	int sock_guard; /* util/exitclean.h: the socket goes however khyve ends */
	struct evloop_source *listen_src;
	struct client clients[MAX_CLIENTS];
	struct ctl_target target;
};

/* ---- the target: the running VM ---- */

static void t_info(void *opaque, struct ctl_buf *out)
{
	struct ctl_server *s = opaque;
	struct vm *vm = s->cfg.vm;
	const char *state = vm_frozen(vm) ? "suspended" : vm_suspended(vm) ? "sleeping" : "running";
	ctl_buf_printf(out, "proto=%d\nname=%s\npid=%d\nstate=%s\nmem=%llu\ncpus=%u\n",
		       CTL_PROTO_VERSION, s->cfg.dir->name, (int)getpid(), state,
		       (unsigned long long)vm_mem(vm)->size, vm_vcpu_count(vm));
	for (int i = 0; i < 4; i++)
		if (s->cfg.com_name[i] && s->cfg.com_where[i])
			ctl_buf_printf(out, "%s=%s\n", s->cfg.com_name[i], s->cfg.com_where[i]);
}

/* Run fn with the vCPUs stopped: frozen for the call unless they are. */
static int with_frozen(struct ctl_server *s, int (*fn)(struct vm *, unsigned, void *), unsigned cpu,
		       void *arg, char *err, size_t errlen)
{
	struct vm *vm = s->cfg.vm;
	bool froze = false;
	if (!vm_frozen(vm)) {
		int r = vm_freeze(vm, FREEZE_TIMEOUT_MS);
		if (r && r != -EALREADY) {
			snprintf(err, errlen, "the vCPUs did not stop: %s", strerror(-r));
			return r;
		}
		froze = r == 0;
	}
	int r = fn(vm, cpu, arg);
	if (froze)
		vm_thaw(vm);
	if (r)
		snprintf(err, errlen, "vCPU %u: %s", cpu, strerror(-r));
	return r;
}

static int get_fn(struct vm *vm, unsigned cpu, void *arg)
{
	return vm_vcpu_get_state(vm, cpu, arg);
}

static int set_fn(struct vm *vm, unsigned cpu, void *arg)
{
	return vm_vcpu_set_state(vm, cpu, arg);
}

static int t_get_state(void *opaque, unsigned cpu, struct vcpu_state *st, char *err, size_t errlen)
{
	return with_frozen(opaque, get_fn, cpu, st, err, errlen);
}

static int t_set_state(void *opaque, unsigned cpu, const struct vcpu_state *st, char *err,
		       size_t errlen)
{
	return with_frozen(opaque, set_fn, cpu, (void *)st, err, errlen);
}

static void put_stat(void *opaque, const char *name, const uint64_t *v, unsigned n)
{
	struct ctl_buf *out = opaque;
	ctl_buf_printf(out, "%s=", name);
	for (unsigned i = 0; i < n; i++)
		ctl_buf_printf(out, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
	ctl_buf_put(out, "\n", 1);
}

static int t_stats(void *opaque, unsigned cpu, struct ctl_buf *out, char *err, size_t errlen)
{
	struct ctl_server *s = opaque;
	int r = vm_vcpu_stats(s->cfg.vm, cpu, put_stat, out);
	if (r == -ENOTSUP)
		snprintf(err, errlen, "this host's KVM has no binary statistics (KVM_GET_STATS_FD)");
	else if (r)
		snprintf(err, errlen, "vCPU %u: reading KVM's statistics: %s", cpu, strerror(-r));
	return r;
}

static int t_suspend(void *opaque, bool suspend, char *err, size_t errlen)
{
	struct ctl_server *s = opaque;
	if (!suspend) {
		vm_thaw(s->cfg.vm); /* not suspended: nothing to do */
		return 0;
	}
	int r = vm_freeze(s->cfg.vm, FREEZE_TIMEOUT_MS);
	if (r == -EALREADY)
		return 0;
	if (r)
		snprintf(err, errlen, "the vCPUs did not stop: %s", strerror(-r));
	return r;
}

static int t_wakeup(void *opaque, char *err, size_t errlen)
{
	struct ctl_server *s = opaque;
	int r = s->cfg.wakeup(s->cfg.opaque);
	if (r == -EALREADY)
		snprintf(err, errlen, "the guest is not suspended to RAM");
	else if (r)
		snprintf(err, errlen, "waking the guest: %s", strerror(-r));
	return r;
}

static void t_end(void *opaque, int op)
{
	struct ctl_server *s = opaque;
	struct vm *vm = s->cfg.vm;
	if (op == CTL_OP_RESET) {
		vm_request_exit(vm, VM_EXIT_REBOOT, "reset through the control socket");
	} else if (op == CTL_OP_POWEROFF) {
		vm_request_exit(vm, VM_EXIT_POWEROFF, "powered off through the control socket");
	} else if (op == CTL_OP_DESTROY) {
		if (s->cfg.on_destroy)
			s->cfg.on_destroy(s->cfg.opaque);
		vm_request_exit(vm, VM_EXIT_POWEROFF, "destroyed through the control socket");
	}
}

/* ---- connections ---- */

static void drop(struct client *c)
{
	if (c->src)
		evloop_remove(c->s->loop, c->src);
	if (c->fd >= 0)
		close(c->fd);
	ctl_buf_free(&c->in);
	c->src = NULL;
	c->fd = -1;
}

static void on_client(void *opaque, uint32_t events)
{
	struct client *c = opaque;
	uint8_t buf[4096];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(c);
		return;
	}
	(void)events;
	ctl_buf_put(&c->in, buf, (size_t)n);
	if (c->in.failed) {
		drop(c);
		return;
	}
	for (;;) {
		long size = ctl_frame_size(c->in.data, c->in.len);
		if (size == 0)
			return;
		struct ctl_buf reply = { 0 };
		int end_op = 0;
		bool keep;
		if (size < 0) {
			const char *why = size == -EMSGSIZE ? "frame too long" : "not a frame";
			ctl_frame(&reply, (uint16_t)-size, why, strlen(why));
			keep = false;
		} else {
			keep = ctl_handle(&c->s->target, c->in.data, (size_t)size, &reply, &end_op);
			memmove(c->in.data, c->in.data + size, c->in.len - (size_t)size);
			c->in.len -= (size_t)size;
		}
		bool sent = !reply.failed && send_all_or_give_up(c->fd, reply.data, reply.len, SEND_TIMEOUT_MS);
		ctl_buf_free(&reply);
		if (end_op)
			t_end(c->s, end_op);
		if (!keep || !sent) {
			drop(c);
			return;
		}
	}
}

static void on_accept(void *opaque, uint32_t events)
{
	struct ctl_server *s = opaque;
	(void)events;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &s->clients[i];
		if (c->fd >= 0)
			continue;
		c->fd = fd;
		c->src = evloop_add(s->loop, fd, EPOLLIN, on_client, c);
		if (!c->src) {
			close(fd);
			c->fd = -1;
		}
		return;
	}
	/* Too many at once: say so and close. */
	struct ctl_buf reply = { 0 };
	const char *why = "too many control connections";
	ctl_frame(&reply, EBUSY, why, strlen(why));
	send_all_or_give_up(fd, reply.data, reply.len, SEND_TIMEOUT_MS);
	ctl_buf_free(&reply);
	close(fd);
}

int ctl_server_start(const struct ctl_server_config *cfg, struct ctl_server **out, char *err,
		     size_t errlen)
{
	struct ctl_server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->cfg = *cfg;
	s->loop = vm_loop(cfg->vm);
	for (int i = 0; i < MAX_CLIENTS; i++) {
		s->clients[i].s = s;
		s->clients[i].fd = -1;
	}
	s->target = (struct ctl_target){
		.opaque = s,
		.ncpus = vm_vcpu_count(cfg->vm),
		.info = t_info,
		.get_state = t_get_state,
		.set_state = t_set_state,
		.stats = t_stats,
		.suspend = t_suspend,
		.wakeup = cfg->wakeup ? t_wakeup : NULL,
		.end = NULL, /* called by on_client after the reply */
	};
	s->listen_fd = ctl_socket_listen(cfg->dir, err, errlen);
	if (s->listen_fd < 0) {
		int r = s->listen_fd;
		free(s);
		return r;
	}
	{
		char path[sizeof(cfg->dir->dir) + 8];
		ctl_vm_path(cfg->dir, "ctl", path, sizeof(path));
		s->sock_guard = exitclean_add(path, EXITCLEAN_UNLINK);
	}
	s->listen_src = evloop_add(s->loop, s->listen_fd, EPOLLIN, on_accept, s);
	if (!s->listen_src) {
		int r = -errno;
		snprintf(err, errlen, "%s: watching the control socket: %s", cfg->dir->name,
			 strerror(errno));
		close(s->listen_fd);
		unlinkat(cfg->dir->dir_fd, "ctl", 0);
		exitclean_forget(s->sock_guard);
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

void ctl_server_stop(struct ctl_server *s)
{
	if (!s)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		drop(&s->clients[i]);
	if (s->listen_src)
		evloop_remove(s->loop, s->listen_src);
	close(s->listen_fd);
	if (s->cfg.dir->dir_fd >= 0)
		unlinkat(s->cfg.dir->dir_fd, "ctl", 0);
	exitclean_forget(s->sock_guard);
	free(s);
}
