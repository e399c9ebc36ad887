/* Fuzz target for the vhost-user front end's side of the conversation
 * (src/backend/vhost_user.c): the bytes a back end sends. The input is
 * what "the back end" answers, fed through a real socket; the front end
 * negotiates, starts two rings on a small shared guest RAM and stops them,
 * checking every reply (sizes, request codes, flags, ring indexes). Any
 * input must end in success or a clean error, never a hang, a read past a
 * buffer or a leak. The first input byte also goes through the pure reply
 * parser with each request code.
 *
 * With clang: build/tests/fuzz/fuzz_vhost_user tests/fuzz/corpus/vhost_user
 * With any compiler, fuzz_vhost_user_replay runs the corpus (a unit test). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/vhost_user.h"
#include "mem/guest_mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	static bool init;
	static int efd;
	if (!init) {
		signal(SIGPIPE, SIG_IGN);
		if (guest_mem_create_shared(&mem, GUEST_MEM_MIN, -1))
			abort();
		efd = eventfd(0, EFD_CLOEXEC);
		init = true;
	}
	if (size > 65536)
		return 0;
	static const uint32_t reqs[] = { VHOST_USER_GET_FEATURES, VHOST_USER_GET_VRING_BASE,
					 VHOST_USER_SET_MEM_TABLE, VHOST_USER_GET_QUEUE_NUM };
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		struct vhost_user_reply rep;
		char why[200];
		int r = vhost_user_parse_reply(data, size, reqs[i], &rep, why, sizeof(why));
		if (r == 0 && (rep.request != reqs[i] || size != VHOST_USER_HDR_SIZE + 8))
			abort();
		if (r && (!why[0] || strchr(why, '\n')))
			abort();
	}

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	/* The whole answer up front; then end of stream: every read the front
	 * end makes past it is an error, never a wait beyond the timeout. */
	size_t off = 0;
	while (off < size) {
		ssize_t w = write(sv[1], data + off, size - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(sv[1], SHUT_WR);
	struct vhost_user *vu = NULL;
	uint64_t features = 0;
	char why[300] = "";
	int r = vhost_user_attach(&vu, sv[0], "fuzz", 2, 50, &features, why, sizeof(why));
	if (r) {
		if (!why[0] || strchr(why, '\n'))
			abort();
	} else {
		struct vhost_user_ring ring[2];
		for (unsigned i = 0; i < 2; i++)
			ring[i] = (struct vhost_user_ring){ .num = 16, .desc = 0x1000 + 0x1000 * i,
							    .avail = 0x1100 + 0x1000 * i,
							    .used = 0x1200 + 0x1000 * i,
							    .kick_fd = efd, .call_fd = efd, .err_fd = -1 };
		if (!vhost_user_start(vu, features, &mem, ring, 2, why, sizeof(why))) {
			uint16_t base[2];
			vhost_user_stop(vu, base, why, sizeof(why));
		} else {
			vhost_user_stop(vu, NULL, why, sizeof(why));
		}
		vhost_user_close(vu);
	}
	close(sv[1]);
	return 0;
}
