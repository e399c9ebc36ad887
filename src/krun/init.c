/* khyve-run-init: /init of the guest that khyve-run(1) boots.
 *
 * Loads the modules listed in /krun/modules (finit_module, in order),
 * finds the virtio-console port "krun.ctl", mounts the host's root share
 * read-only with fresh proc, sys, dev, tmpfs /tmp and /run, overlays with a
 * tmpfs upper layer on /var and the home directory, and the read-write
 * shares, all as /krun/config (krun_config.h) says; then it moves that tree
 * to / and runs the command as the user, in the working directory.
 *
 * Everything the host gets back goes through "krun.ctl", one port, so that
 * its order is kept: frames of an 8-byte header (channel, length; both
 * 32-bit little-endian) and the bytes. Channel 1 is the command's stdout, 2
 * its stderr (both pipes that this program relays), 3 the exit status (4
 * bytes, last), 4 a setup error (text; the host exits 125). With a
 * terminal the command has hvc0 (port "krun.tty") for all three instead;
 * writes to a console port are done when they return, so they are out
 * before the status. Then it powers off. A panic never reports a status:
 * the host sees the VM end without one.
 *
 * Messages before the port exists go to the kernel console (ttyS0), which
 * khyve-run shows when no status came. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "krun/krun_config.h"

#define CTL_PORT "krun.ctl"
#define TTY_PORT "krun.tty"
#define PORT_WAIT_MS 30000

enum { FR_STDOUT = 1, FR_STDERR = 2, FR_STATUS = 3, FR_ERROR = 4 };

extern char **environ;
static int ctl_fd = -1;

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void frame(uint32_t chan, const void *buf, size_t len)
{
	if (ctl_fd < 0)
		return;
	uint8_t hdr[8];
	uint32_t l = (uint32_t)len;
	for (int i = 0; i < 4; i++) {
		hdr[i] = (uint8_t)(chan >> (8 * i));
		hdr[4 + i] = (uint8_t)(l >> (8 * i));
	}
	write_all(ctl_fd, hdr, sizeof(hdr));
	write_all(ctl_fd, buf, len);
}

static _Noreturn void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

/* Setup failed: tell the host (or the console) and stop. */
static _Noreturn void fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctl_fd >= 0) {
		frame(FR_ERROR, msg, strlen(msg));
	} else {
		dprintf(2, "khyve-run-init: %s\n", msg);
	}
	power_off();
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (!buf)
			break;
		if (n == cap) {
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (buf) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

static void load_modules(void)
{
	size_t len;
	char *list = read_file("/krun/modules", &len);
	if (!list)
		return; /* everything built in */
	char *save = NULL;
	for (char *path = strtok_r(list, "\n", &save); path; path = strtok_r(NULL, "\n", &save)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fail("cannot open %s: %s", path, strerror(errno));
		if (syscall(SYS_finit_module, fd, "", 0) && errno != EEXIST)
			fail("cannot load %s: %s", path, strerror(errno));
		close(fd);
	}
	free(list);
}

/* /dev/vportNpM of the port named name, waiting for it to appear. */
static int open_port(const char *name)
{
	for (long waited = 0; waited < PORT_WAIT_MS; waited++) {
		DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char p[300], got[80] = "";
			snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/name", e->d_name);
			int fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			ssize_t n = read(fd, got, sizeof(got) - 1);
			close(fd);
			if (n <= 0)
				continue;
			got[n] = '\0';
			got[strcspn(got, "\n")] = '\0';
			if (strcmp(got, name))
				continue;
			snprintf(p, sizeof(p), "/dev/%s", e->d_name);
			int pfd = open(p, O_RDWR | O_CLOEXEC | O_NOCTTY);
			if (pfd >= 0) {
				closedir(d);
				return pfd;
			}
		}
		if (d)
			closedir(d);
		sleep_ms(1);
	}
	return -1;
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
		     const char *data)
{
	if (mount(src, dst, type, flags, data))
		fail("cannot mount %s (%s) on %s: %s", src, type ? type : "bind", dst,
		     strerror(errno));
}

static void mount_share(const struct krun_share *s, const char *dst, bool ro)
{
	if (!strcmp(s->fs, "virtiofs")) {
		do_mount(s->tag, dst, "virtiofs", ro ? MS_RDONLY : 0, NULL);
	} else {
		/* The root share is not changed behind the guest's back for
		 * the run's length: cache it all; a read-write one is the
		 * user's to look at from the host meanwhile. */
		do_mount(s->tag, dst, "9p", ro ? MS_RDONLY : 0,
			 ro ? "trans=virtio,version=9p2000.L,msize=512000,cache=loose"
			    : "trans=virtio,version=9p2000.L,msize=512000,cache=mmap");
	}
}

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void mkdir_p(const char *path)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	}
	mkdir(p, 0755);
}

/* dir (under /newroot) made writable: an overlay with an upper layer in
 * tmpfs, or a bare tmpfs where the kernel has no overlayfs. */
static void overlay(const char *dir, unsigned n)
{
	if (!is_dir(dir))
		return;
	char up[64], wk[64], opts[4400];
	snprintf(up, sizeof(up), "/ovl/%u/u", n);
	snprintf(wk, sizeof(wk), "/ovl/%u/w", n);
	mkdir_p(up);
	mkdir_p(wk);
	struct stat st = { .st_mode = 0755 };
	if (stat(dir, &st) == 0) { /* the upper root takes the lower's owner and mode */
		/* best effort: a failure only shows in the upper root's owner */
		(void)!chown(up, st.st_uid, st.st_gid);
		(void)!chmod(up, st.st_mode & 07777);
	}
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", dir, up, wk);
	if (mount("overlay", dir, "overlay", 0, opts) == 0)
		return;
	char mode[32];
	snprintf(mode, sizeof(mode), "mode=%o,uid=%u,gid=%u", st.st_mode & 07777, st.st_uid,
		 st.st_gid);
	do_mount("tmpfs", dir, "tmpfs", 0, mode);
}

static void net_up(const char *ifname, const char *addr, const char *mask)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (addr) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &sin->sin_addr);
		ioctl(s, SIOCSIFADDR, &ifr);
		inet_pton(AF_INET, mask, &sin->sin_addr);
		ioctl(s, SIOCSIFNETMASK, &ifr);
	}
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

static void default_route(const char *gw)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct rtentry rt;
	memset(&rt, 0, sizeof(rt));
	struct sockaddr_in *g = (struct sockaddr_in *)&rt.rt_gateway;
	g->sin_family = AF_INET;
	inet_pton(AF_INET, gw, &g->sin_addr);
	((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	ioctl(s, SIOCADDRT, &rt);
	close(s);
}

/* slirp's resolver, where /etc/resolv.conf (maybe a link into /run) is read. */
static void resolver(void)
{
	const char *text = "nameserver 10.0.2.3\n";
	char target[4096];
	ssize_t n = readlink("/etc/resolv.conf", target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = '\0';
		if (!strncmp(target, "/run/", 5) || !strncmp(target, "../run/", 7)) {
			const char *t = target[0] == '.' ? target + 2 : target;
			char dir[4096];
			snprintf(dir, sizeof(dir), "%s", t);
			*strrchr(dir, '/') = '\0';
			mkdir_p(dir);
			int fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd >= 0) {
				write_all(fd, text, strlen(text));
				close(fd);
			}
			return;
		}
	}
	mkdir("/run/khyve-run", 0755);
	int fd = open("/run/khyve-run/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	write_all(fd, text, strlen(text));
	close(fd);
	mount("/run/khyve-run/resolv.conf", "/etc/resolv.conf", NULL, MS_BIND, NULL);
}

static void setup_tree(const struct krun_config *c)
{
	mkdir("/newroot", 0755);
	mount_share(&c->root, "/newroot", true);
	do_mount("proc", "/newroot/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	do_mount("sysfs", "/newroot/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	do_mount("devtmpfs", "/newroot/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mkdir("/newroot/dev/pts", 0755);
	mkdir("/newroot/dev/shm", 01777);
	mount("devpts", "/newroot/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
	      "ptmxmode=0666,mode=0620,gid=5");
	mount("tmpfs", "/newroot/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	symlink("/proc/self/fd", "/newroot/dev/fd");
	symlink("/proc/self/fd/0", "/newroot/dev/stdin");
	symlink("/proc/self/fd/1", "/newroot/dev/stdout");
	symlink("/proc/self/fd/2", "/newroot/dev/stderr");
	if (is_dir("/newroot/tmp"))
		do_mount("tmpfs", "/newroot/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	if (is_dir("/newroot/run"))
		do_mount("tmpfs", "/newroot/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	do_mount("tmpfs", "/ovl", "tmpfs", 0, "mode=0700");
	overlay("/newroot/var", 0);
	if (c->home && strcmp(c->home, "/")) {
		char h[4200];
		snprintf(h, sizeof(h), "/newroot%s", c->home);
		overlay(h, 1);
	}
	/* Parents before children (khyve-run sorts them). */
	for (unsigned i = 0; i < c->nrw; i++) {
		char p[4200];
		snprintf(p, sizeof(p), "/newroot%s", c->rw[i].path);
		mkdir_p(p); /* under /tmp, /run or an overlay: the guest's own */
		if (!is_dir(p))
			fail("--rw %s: not a directory in the guest", c->rw[i].path);
		mount_share(&c->rw[i], p, false);
	}
	if (chdir("/newroot") || mount(".", "/", NULL, MS_MOVE, NULL) || chroot(".") || chdir("/"))
		fail("cannot switch to the host's root: %s", strerror(errno));
	sethostname("khyve-run", 9);
	net_up("lo", NULL, NULL);
	if (c->net) {
		net_up("eth0", "10.0.2.15", "255.255.255.0");
		default_route("10.0.2.2");
		resolver();
	}
}

/* hvc0 once its console port is there. */
static int open_tty(void)
{
	for (long waited = 0; waited < PORT_WAIT_MS; waited++) {
		int fd = open("/dev/hvc0", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		sleep_ms(1);
	}
	return -1;
}

static _Noreturn void child(const struct krun_config *c, int tty_fd, int out_w, int err_w)
{
	setsid();
	if (tty_fd >= 0) {
		ioctl(tty_fd, TIOCSCTTY, 0);
		if (c->rows && c->cols) {
			struct winsize ws = { .ws_row = (unsigned short)c->rows,
					      .ws_col = (unsigned short)c->cols };
			ioctl(tty_fd, TIOCSWINSZ, &ws);
		}
		dup2(tty_fd, 0);
		dup2(tty_fd, 1);
		dup2(tty_fd, 2);
	} else {
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(out_w, 1);
		dup2(err_w, 2);
	}
	signal(SIGPIPE, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setgroups(c->ngroups, (const gid_t *)c->groups) || setgid(c->gid) || setuid(c->uid)) {
		dprintf(2, "khyve-run: cannot become uid %u gid %u: %s\n", c->uid, c->gid,
			strerror(errno));
		_exit(125);
	}
	if (chdir(c->cwd)) {
		dprintf(2, "khyve-run: cannot enter %s in the guest: %s\n", c->cwd, strerror(errno));
		_exit(125);
	}
	environ = (char **)c->envp;
	execvp(c->argv[0], c->argv);
	int e = errno;
	dprintf(2, "khyve-run: %s: %s\n", c->argv[0], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

/* Relay the command's pipes as frames until it exits and they are empty. */
static int run(const struct krun_config *c)
{
	int tty_fd = -1, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	if (c->tty) {
		tty_fd = open_tty();
		if (tty_fd < 0)
			fail("no /dev/hvc0 (port %s)", TTY_PORT);
		struct termios t;
		if (tcgetattr(tty_fd, &t) == 0) {
			t.c_iflag |= ICRNL | IXON;
			t.c_oflag |= OPOST | ONLCR;
			t.c_lflag |= ISIG | ICANON | ECHO | ECHOE | ECHOK | IEXTEN | ECHOCTL | ECHOKE;
			tcsetattr(tty_fd, TCSANOW, &t);
		}
	} else if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
		fail("pipe: %s", strerror(errno));
	}
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	pid_t pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0)
		child(c, tty_fd, out[1], err[1]);
	if (tty_fd >= 0)
		close(tty_fd);
	if (out[1] >= 0) {
		close(out[1]);
		close(err[1]);
	}
	int status = -1;
	bool open_out = out[0] >= 0, open_err = err[0] >= 0;
	static char buf[32768];
	while (status < 0 || open_out || open_err) {
		struct pollfd p[3] = { { sfd, POLLIN, 0 }, { out[0], POLLIN, 0 }, { err[0], POLLIN, 0 } };
		if (!open_out)
			p[1].fd = -1;
		if (!open_err)
			p[2].fd = -1;
		/* Once the command is gone, what is left in the pipes now is
		 * all: a daemon it left behind does not hold the run open. */
		int r = poll(p, 3, status < 0 ? -1 : 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (int i = 1; i < 3; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n > 0) {
				frame(i == 1 ? FR_STDOUT : FR_STDERR, buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				if (i == 1)
					open_out = false;
				else
					open_err = false;
			}
		}
		if (p[0].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) > 0)
				;
			int ws;
			pid_t w;
			while ((w = waitpid(-1, &ws, WNOHANG)) > 0) {
				if (w == pid)
					status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
			}
		}
	}
	return status < 0 ? 255 : status;
}

int main(void)
{
	mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	signal(SIGPIPE, SIG_IGN);
	load_modules();
	ctl_fd = open_port(CTL_PORT);
	if (ctl_fd < 0)
		fail("the virtio-console port %s did not appear", CTL_PORT);

	size_t len;
	char *raw = read_file("/krun/config", &len);
	if (!raw)
		fail("no /krun/config: %s", strerror(errno));
	static struct krun_config c;
	char why[200];
	if (krun_config_parse(&c, raw, len, why, sizeof(why)))
		fail("/krun/config: %s", why);
	free(raw);
	setup_tree(&c);
	int status = run(&c);
	uint8_t st[4] = { (uint8_t)status, (uint8_t)(status >> 8), 0, 0 };
	frame(FR_STATUS, st, sizeof(st));
	power_off();
}
