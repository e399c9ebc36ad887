/* The pty backend: "/tmp/vm0.com2" (or "pty=PATH") makes a new pseudo-terminal
 * and a symlink to its slave (/dev/pts/N) at the given path, which a
 * terminal program or gdb (kgdb) opens, as nmdm(4) serves bhyve.
 *
 * khyve keeps a slave fd open itself, so the master never sees a hangup
 * when the other side closes and reopens the port, and holds an flock on
 * it: a symlink whose pty is not locked (or gone) was left by a khyve that
 * did not exit cleanly and is replaced; anything else at the path is
 * refused. The slave starts in raw mode (no echo, no line editing, no
 * newline translation). The symlink is removed when the port is closed
 * and at exit; output not yet read by then gets a moment to be read. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "backend/chardev_internal.h"
#include "util/exitclean.h"
#include "util/log.h"

struct pty_port {
	char *link;         /* the symlink we made */
	char pts[64];       /* what it points to */
	int slave_fd;
	int guard; /* util/exitclean.h: the link goes on a crash too */
	struct pty_port *next;
};

/* Every open port, for the exit handler. */
static pthread_mutex_t ports_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pty_port *ports;
static bool atexit_registered;

/* Remove the symlink if it is still ours. */
static void remove_link(const struct pty_port *p)
{
	char target[PATH_MAX];
	ssize_t n = readlink(p->link, target, sizeof(target) - 1);
	if (n < 0)
		return;
	target[n] = '\0';
	if (!strcmp(target, p->pts))
		unlink(p->link);
}

/* Closing the master hangs the slave up, which throws away what the other
 * side has not read yet (the guest's last words before it powered off):
 * give a reader up to DRAIN_MS to take it. */
#define DRAIN_MS 200

static void drain(const struct pty_port *p)
{
	for (int waited = 0; waited < DRAIN_MS; waited += 5) {
		int pending = 0;
		if (ioctl(p->slave_fd, FIONREAD, &pending) < 0 || pending <= 0)
			return;
		usleep(5000);
	}
}

static void remove_all_links(void)
{
	pthread_mutex_lock(&ports_lock);
	for (struct pty_port *p = ports; p; p = p->next) {
		remove_link(p);
		drain(p);
	}
	pthread_mutex_unlock(&ports_lock);
}

static void pty_closed(void *opaque)
{
	struct pty_port *p = opaque;
	pthread_mutex_lock(&ports_lock);
	for (struct pty_port **pp = &ports; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&ports_lock);
	remove_link(p);
	exitclean_forget(p->guard);
	if (p->slave_fd >= 0)
		close(p->slave_fd);
	free(p->link);
	free(p);
}

static void pty_closing(void *opaque)
{
	drain(opaque);
}

/* 0 when path is free (or held a stale link of ours, now removed). */
static int clear_path(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	char target[PATH_MAX];
	ssize_t n = S_ISLNK(st.st_mode) ? readlink(path, target, sizeof(target) - 1) : -1;
	if (n < 0 || (target[n] = '\0', strncmp(target, "/dev/pts/", 9))) {
		snprintf(err, errlen,
			 "%s already exists and is not a pty symlink left by khyve; remove it or "
			 "choose another path", path);
		return -EEXIST;
	}
	int fd = open(target, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		int locked = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
		close(fd);
		if (locked) {
			snprintf(err, errlen, "%s is in use as the serial port of a running khyve (%s)",
				 path, target);
			return -EBUSY;
		}
	}
	/* Stale: its pty is gone or nobody holds it. */
	if (unlink(path) < 0 && errno != ENOENT) {
		int e = errno;
		snprintf(err, errlen, "removing the stale symlink %s: %s", path, strerror(e));
		return -e;
	}
	log_debug("removed a stale pty symlink %s -> %s", path, target);
	return 0;
}

int chardev_pty_open(const char *args, struct evloop *loop, struct chardev **out, char *err,
		     size_t errlen)
{
	const char *path = args;
	int master = -1;
	struct pty_port *p = calloc(1, sizeof(*p));
	if (!p || !(p->link = strdup(path))) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	p->slave_fd = -1;
	p->guard = -1;
	int r = clear_path(path, err, errlen);
	if (r)
		goto fail;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
	    ptsname_r(master, p->pts, sizeof(p->pts)) != 0) {
		r = -errno;
		snprintf(err, errlen, "creating a pty: %s", strerror(errno));
		goto fail;
	}
	p->slave_fd = open(p->pts, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (p->slave_fd < 0 || flock(p->slave_fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", p->pts, strerror(errno));
		goto fail;
	}
	struct termios t;
	if (tcgetattr(p->slave_fd, &t) == 0) {
		cfmakeraw(&t);
		cfsetispeed(&t, B115200);
		cfsetospeed(&t, B115200);
		tcsetattr(p->slave_fd, TCSANOW, &t);
	}
	int fl = fcntl(master, F_GETFL);
	if (fl < 0 || fcntl(master, F_SETFL, fl | O_NONBLOCK) < 0) {
		r = -errno;
		snprintf(err, errlen, "pty: %s", strerror(errno));
		goto fail;
	}
	if (symlink(p->pts, path) < 0) {
		r = -errno;
		snprintf(err, errlen, "creating the symlink %s: %s", path, strerror(errno));
		goto fail;
	}
	p->guard = exitclean_add(path, EXITCLEAN_UNLINK);

	pthread_mutex_lock(&ports_lock);
	if (!atexit_registered) {
		atexit(remove_all_links);
		atexit_registered = true;
	}
	p->next = ports;
	ports = p;
	pthread_mutex_unlock(&ports_lock);

	struct chardev_fd_config cfg = {
		.in_fd = master, .out_fd = master, .own_in_fd = true, .own_out_fd = true,
		.before_close = pty_closing, .on_close = pty_closed, .close_opaque = p,
	};
	r = chardev_fd_new(loop, &cfg, out);
	if (r) {
		close(master);
		pty_closed(p);
		snprintf(err, errlen, "%s", strerror(-r));
		return r;
	}
	char where[80];
	snprintf(where, sizeof(where), "pty:%s", p->pts);
	chardev_set_where(*out, where);
	log_info("serial port on %s (%s)", p->pts, path);
	return 0;
fail:
	if (master >= 0)
		close(master);
	if (p->slave_fd >= 0)
		close(p->slave_fd);
	free(p->link);
	free(p);
	return r ? r : -EIO;
}
