/* Character backend specs: checking without opening (chardev_check_spec),
 * the fd=R,W backend over inherited descriptors, and the tcp listener's
 * description of where it is bound. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/chardev.h"
#include "backend/listen.h"
#include "unit.h"
#include "util/evloop.h"

static char got[64];
static size_t ngot;

static size_t can_receive(void *opaque)
{
	(void)opaque;
	return sizeof(got) - ngot;
}

static void receive(void *opaque, const uint8_t *buf, size_t len)
{
	(void)opaque;
	memcpy(got + ngot, buf, len);
	ngot += len;
}

/* Issue 9: "fd=R,W" set O_NONBLOCK on R, which belongs to the open file
 * description the process that passed R shares (its own reads then fail
 * with EAGAIN). The flags must stay as they were, and input must still
 * arrive without blocking the event loop. */
static void test_fd_backend_keeps_flags(struct evloop *loop, int rd, int wr)
{
	int before = fcntl(rd, F_GETFL);
	char spec[64], err[128];
	snprintf(spec, sizeof(spec), "fd=%d,-1", rd);
	struct chardev *c = NULL;
	CHECK_EQ(chardev_open(spec, loop, &c, err, sizeof(err)), 0);
	CHECK_EQ(fcntl(rd, F_GETFL), before);
	CHECK_EQ(fcntl(rd, F_GETFL) & O_NONBLOCK, 0);
	struct chardev_receiver rx = { can_receive, receive, NULL };
	ngot = 0;
	chardev_set_receiver(c, &rx);
	CHECK_EQ(write(wr, "hello", 5), 5);
	/* Wait for the bytes (not for a time): each round blocks in epoll
	 * until the descriptor is readable. */
	for (int i = 0; i < 100 && ngot < 5; i++)
		evloop_run_once(loop, 5000);
	CHECK_EQ(ngot, 5);
	CHECK(!memcmp(got, "hello", 5));
	/* Nothing more to read: the loop must not block in read(). */
	CHECK(evloop_run_once(loop, 0) >= 0);
	chardev_close(c);
	CHECK_EQ(fcntl(rd, F_GETFL), before); /* still open, and as it was */
}

static void test_check_spec(void)
{
	char err[256];
	CHECK_EQ(chardev_check_spec("stdio", err, sizeof(err)), 0);
	CHECK_EQ(chardev_check_spec("/tmp/vm0.com1", err, sizeof(err)), 0);
	CHECK_EQ(chardev_check_spec("pty=vm0.com1", err, sizeof(err)), 0);
	CHECK_EQ(chardev_check_spec("tcp=127.0.0.1:0", err, sizeof(err)), 0);
	CHECK_EQ(chardev_check_spec("tcp=4444,log=/tmp/x", err, sizeof(err)), 0);
	CHECK_EQ(chardev_check_spec("log=/tmp/x", err, sizeof(err)), 0);
	CHECK_EQ(chardev_check_spec("fd=3,4", err, sizeof(err)), 0);
	CHECK_EQ(chardev_check_spec("nosuch", err, sizeof(err)), -EINVAL);
	CHECK(!strncmp(err, "unknown serial backend 'nosuch'", 31));
	CHECK_EQ(chardev_check_spec("stdio=x", err, sizeof(err)), -EINVAL);
	CHECK_EQ(chardev_check_spec("tcp=x:y", err, sizeof(err)), -EINVAL);
	CHECK_EQ(chardev_check_spec("log=", err, sizeof(err)), -EINVAL);
	CHECK_EQ(chardev_check_spec("pty=", err, sizeof(err)), -EINVAL);
	CHECK_EQ(chardev_check_spec("fd=1", err, sizeof(err)), -EINVAL);
	CHECK_EQ(chardev_check_spec("", err, sizeof(err)), -EINVAL);
	/* What chardev_open refuses, the check refuses with the same words. */
	struct chardev *c;
	char err2[256];
	CHECK_EQ(chardev_open("nosuch", NULL, &c, err2, sizeof(err2)), -EINVAL);
	CHECK_EQ(chardev_check_spec("nosuch", err, sizeof(err)), -EINVAL);
	CHECK(!strcmp(err, err2));
}

/* Issue 9: when getsockname failed, the listener's description read
 * ss_family uninitialised; it now says what was asked for. */
static void test_describe_bound(void)
{
	char where[80];
	tcp_describe_bound(-1, "127.0.0.1", 4444, where, sizeof(where));
	CHECK(!strcmp(where, "127.0.0.1:4444"));
	tcp_describe_bound(-1, "::1", 4444, where, sizeof(where));
	CHECK(!strcmp(where, "[::1]:4444"));
	char err[128];
	int fd = tcp_listen_spec("127.0.0.1:0", where, sizeof(where), err, sizeof(err));
	CHECK(fd >= 0);
	CHECK(!strncmp(where, "127.0.0.1:", 10) && strcmp(where, "127.0.0.1:0"));
	close(fd);
}

int main(void)
{
	struct evloop *loop = evloop_create();
	CHECK(loop != NULL);
	int p[2];
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	test_fd_backend_keeps_flags(loop, p[0], p[1]);
	close(p[0]);
	close(p[1]);
	int sv[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	test_fd_backend_keeps_flags(loop, sv[0], sv[1]);
	close(sv[0]);
	close(sv[1]);
	test_check_spec();
	test_describe_bound();
	evloop_destroy(loop);
	return UNIT_RESULT();
}
