/* libFuzzer target for the control socket's server side (src/ctl): the
 * bytes a client writes to $KHYVE_RUNDIR/NAME/ctl go through the framing
 * (ctl_frame_size) and the request handler (ctl_handle) against a fake
 * two-vCPU VM, as the server's connection loop feeds them; and, when the
 * first byte is even, the rest is parsed as an entry-state file
 * (ctl_entry_parse), which a loader writes and khyve reads. Replies are
 * checked to be well-formed frames.
 *
 * Build and run (clang):
 *   CC=clang meson setup build-fuzz -Dsanitize=true
 *   ninja -C build-fuzz tests/fuzz/fuzz_ctl
 *   mkdir -p /tmp/ctl-corpus
 *   build-fuzz/tests/fuzz/fuzz_ctl -max_total_time=300 /tmp/ctl-corpus tests/fuzz/corpus/ctl
 * With gcc, fuzz_ctl_replay runs the corpus once (a unit test). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/entry.h"
#include "ctl/proto.h"

static struct vcpu_state cpus[2];
static bool suspended;

static void f_info(void *o, struct ctl_buf *out)
{
	(void)o;
	ctl_buf_printf(out, "proto=1\nstate=%s\ncpus=2\n", suspended ? "suspended" : "running");
}

static int f_get(void *o, unsigned c, struct vcpu_state *st, char *e, size_t l)
{
	(void)o;
	if (c >= 2)
		abort(); /* the handler checks the vCPU number */
	if (c == 1 && !suspended) {
		snprintf(e, l, "vCPU 1 would not stop");
		return -16;
	}
	*st = cpus[c];
	return 0;
}

static int f_set(void *o, unsigned c, const struct vcpu_state *st, char *e, size_t l)
{
	(void)o, (void)e, (void)l;
	if (c >= 2)
		abort();
	cpus[c] = *st;
	return 0;
}

static int f_stats(void *o, unsigned c, struct ctl_buf *out, char *e, size_t l)
{
	(void)o, (void)e, (void)l;
	if (c >= 2)
		abort();
	ctl_buf_printf(out, "exits=%u\nhalt_wait_hist=1,2,3\n", c);
	return 0;
}

static int f_suspend(void *o, bool s, char *e, size_t l)
{
	(void)o, (void)e, (void)l;
	suspended = s;
	return 0;
}

/* A guest that goes to sleep on every other wake request's refusal. */
static bool sleeping;
static int f_wakeup(void *o, char *e, size_t l)
{
	(void)o;
	bool was = sleeping;
	sleeping = !sleeping;
	if (!was) {
		snprintf(e, l, "the guest is not suspended to RAM");
		return -EALREADY;
	}
	return 0;
}

static const struct ctl_target target = {
	.ncpus = 2, .info = f_info, .get_state = f_get, .set_state = f_set, .stats = f_stats,
	.suspend = f_suspend, .wakeup = f_wakeup,
};

static void check_reply(const struct ctl_buf *r)
{
	if (r->failed)
		return;
	if (r->len < CTL_HEADER || ctl_frame_size(r->data, r->len) != (long)r->len)
		abort();
	uint8_t sum = 0; /* every byte, for ASan */
	for (size_t i = 0; i < r->len; i++)
		sum += r->data[i];
	volatile uint8_t sink = sum;
	(void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		struct ctl_entry e;
		char err[256];
		if (ctl_entry_parse((const char *)data + 1, size - 1, &e, err, sizeof(err)) == 0) {
			/* What parses formats and parses again to the same. */
			size_t n = ctl_entry_format(&e, NULL, 0);
			char *text = malloc(n + 1);
			if (!text)
				return 0;
			ctl_entry_format(&e, text, n + 1);
			struct ctl_entry again;
			if (ctl_entry_parse(text, n, &again, err, sizeof(err)) ||
			    again.entry.rip != e.entry.rip || again.mem_size != e.mem_size ||
			    again.nloads != e.nloads)
				abort();
			struct vcpu_state st;
			ctl_entry_to_state(&e, &st);
			const char *what;
			if (ctl_entry_from_state(&again, &st, &what))
				abort(); /* an entry's own state always goes back */
			free(text);
		}
		return 0;
	}
	memset(cpus, 0, sizeof(cpus));
	suspended = false;
	/* The connection loop: whole frames as they complete. */
	struct ctl_buf in = { 0 };
	ctl_buf_put(&in, data + 1, size - 1);
	size_t off = 0;
	while (!in.failed && off < in.len) {
		long n = ctl_frame_size(in.data + off, in.len - off);
		if (n <= 0)
			break;
		struct ctl_buf reply = { 0 };
		int end_op;
		bool keep = ctl_handle(&target, in.data + off, (size_t)n, &reply, &end_op);
		check_reply(&reply);
		if (end_op && end_op != CTL_OP_RESET && end_op != CTL_OP_POWEROFF &&
		    end_op != CTL_OP_DESTROY)
			abort();
		ctl_buf_free(&reply);
		off += (size_t)n;
		if (!keep)
			break;
	}
	ctl_buf_free(&in);
	return 0;
}
