/* virtio-fs on the fake platform against a real virtiofsd (Debian's
 * /usr/lib/qemu/virtiofsd; those parts are skipped without it or without
 * root): the vhost-user handshake, FUSE requests through rings the test
 * writes as a driver would (the daemon answers them straight into guest
 * RAM, a memfd), a reset that takes the rings back and a restart, then the
 * daemon killed: the device says NEEDS_RESET and answers with EIO.
 * Without a daemon: the conf parser, a socket that never answers and one
 * that answers garbage (a one-line error, in bounded time). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "virtio/emulations.h"
#include "virtio_drv.h"

#define VIRTIOFSD "/usr/lib/qemu/virtiofsd"
#define FUSE_LOOKUP 1
#define FUSE_MKDIR 9
#define FUSE_INIT 26

static char dir[64], src[96], sock[96];

static void parse_errors(void)
{
	const char *bad[] = { NULL, "tag=x", "socket=/s", "socket=/s,tag=", "socket=/s,tag=a b",
			      "socket=/s,tag=0123456789012345678901234567890123456",
			      "socket=/s,tag=x,queue-size=100", "socket=/s,tag=x,queue-size=2048",
			      "socket=/s,tag=x,bogus=1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		void *s = NULL;
		char err[300] = "";
		CHECK(pci_emul_virtio_fs.parse(bad[i], &s, err, sizeof(err)) == -EINVAL);
		CHECK(err[0] && !strchr(err, '\n'));
	}
	void *s = NULL;
	char err[300];
	CHECK(pci_emul_virtio_fs.parse("socket=/s,tag=host,queue-size=256", &s, err, sizeof(err)) == 0);
	pci_emul_virtio_fs.free_settings(s);
}

static int listen_on(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4))
		return -1;
	return fd;
}

static void *garbage_server(void *arg)
{
	int l = *(int *)arg;
	int c = accept(l, NULL, NULL);
	if (c >= 0) {
		char buf[64];
		ssize_t r = read(c, buf, sizeof(buf));
		(void)r;
		static const char junk[] = "SSH-2.0-OpenSSH_9.2 hello there\r\n";
		r = write(c, junk, sizeof(junk) - 1);
		sleep(1);
		close(c);
	}
	return NULL;
}

/* Creating the device on a socket that is not a vhost-user back end. */
static int create_on(struct fake_platform *f, const char *path, char *err, size_t errlen)
{
	char conf[200];
	snprintf(conf, sizeof(conf), "socket=%s,tag=host", path);
	void *s = NULL;
	struct pci_bus *bus;
	CHECK(pci_emul_virtio_fs.parse(conf, &s, err, errlen) == 0);
	CHECK(pci_bus_create(&f->p, &bus) == 0);
	int r = pci_emul_virtio_fs.create(bus, 3, 0, s, &f->p, err, errlen);
	pci_bus_destroy(bus);
	pci_emul_virtio_fs.free_settings(s);
	return r;
}

static void not_vhost_user(struct fake_platform *f)
{
	char path[128], err[400];
	snprintf(path, sizeof(path), "%s/silent.sock", dir);
	int l = listen_on(path);
	CHECK(l >= 0);
	setenv("KHYVE_VHOST_USER_TIMEOUT_MS", "300", 1);
	time_t t0 = time(NULL);
	CHECK(create_on(f, path, err, sizeof(err)) == -ETIMEDOUT);
	CHECK(time(NULL) - t0 < 5);
	CHECK(strstr(err, "no answer to GET_FEATURES") != NULL);
	fprintf(stderr, "silent socket: %s\n", err);
	close(l);

	l = listen_on(path);
	pthread_t t;
	pthread_create(&t, NULL, garbage_server, &l);
	CHECK(create_on(f, path, err, sizeof(err)) == -EPROTO);
	CHECK(strstr(err, "not a vhost-user back end") != NULL);
	fprintf(stderr, "garbage: %s\n", err);
	pthread_join(t, NULL);
	close(l);

	snprintf(path, sizeof(path), "%s/absent.sock", dir);
	CHECK(create_on(f, path, err, sizeof(err)) == -ENOENT);
	fprintf(stderr, "absent: %s\n", err);
	unsetenv("KHYVE_VHOST_USER_TIMEOUT_MS");
}

/* ---- FUSE requests as a driver puts them in the request queue ---- */

struct req {
	uint64_t in, out; /* gpa */
	uint32_t inlen, outlen;
};

static uint64_t unique = 100;

static void fuse_hdr(uint8_t *b, uint32_t len, uint32_t op, uint64_t nodeid)
{
	memset(b, 0, 40);
	memcpy(b, &len, 4);
	memcpy(b + 4, &op, 4);
	unique += 2;
	memcpy(b + 8, &unique, 8);
	memcpy(b + 16, &nodeid, 8);
}

/* Send one request (body after the header), wait, return the reply's
 * error (or 1 when none came); reply bytes copied to out. */
static int fuse_call(struct vdrv *d, uint32_t op, uint64_t nodeid, const void *body, uint32_t blen,
		     void *out, uint32_t outlen)
{
	uint8_t in[512];
	fuse_hdr(in, 40 + blen, op, nodeid);
	memcpy(in + 40, body, blen);
	uint64_t gin = vdrv_alloc(d, 512, 8), gout = vdrv_alloc(d, 16 + outlen, 8);
	guest_mem_write(&d->f->mem, gin, in, 40 + blen);
	struct vdrv_seg seg[2] = { { gin, 40 + blen, false }, { gout, 16 + outlen, true } };
	vdrv_add(d, 1, seg, 2);
	vdrv_kick(d, 1);
	if (!vdrv_wait_used(d, 1, 1))
		return 1;
	uint16_t head = 0;
	uint32_t len = 0;
	vdrv_used(d, 1, &head, &len);
	uint8_t hdr[16];
	guest_mem_read(&d->f->mem, gout, hdr, 16);
	int32_t err;
	uint64_t u;
	memcpy(&err, hdr + 4, 4);
	memcpy(&u, hdr + 8, 8);
	CHECK_EQ(u, unique);
	CHECK(len >= 16);
	if (out)
		guest_mem_read(&d->f->mem, gout + 16, out, outlen);
	return err;
}

static pid_t start_virtiofsd(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		char sp[128], so[128];
		snprintf(sp, sizeof(sp), "--socket-path=%s", sock);
		snprintf(so, sizeof(so), "source=%s", src);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execl(VIRTIOFSD, VIRTIOFSD, sp, "-o", so, "-o", "cache=auto", "-o", "sandbox=chroot",
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct stat st;
		if (stat(sock, &st) == 0)
			return pid;
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void with_virtiofsd(struct fake_platform *f)
{
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(sock, sizeof(sock), "%s/vfsd.sock", dir);
	mkdir(src, 0755);
	char hello[160];
	snprintf(hello, sizeof(hello), "%s/hello", src);
	FILE *h = fopen(hello, "w");
	fputs("hi\n", h);
	fclose(h);
	pid_t pid = start_virtiofsd();
	CHECK(pid > 0);
	if (pid <= 0)
		return;
	struct vdrv d;
	char conf[200];
	snprintf(conf, sizeof(conf), "socket=%s,tag=myfs,queue-size=64", sock);
	CHECK(vdrv_create(&d, f, &pci_emul_virtio_fs, conf, 3) == 0);
	CHECK(vdrv_finish(&d) == 0);
	/* config: the tag, then num_request_queues */
	char tag[8] = { 0 };
	for (int i = 0; i < 7; i++)
		tag[i] = (char)vdrv_rd(&d, 0x2000 + (unsigned)i, 1);
	CHECK(!strcmp(tag, "myfs"));
	CHECK_EQ(vdrv_rd(&d, 0x2000 + 36, 4), 1);
	uint8_t st = vdrv_init(&d, 0, 2, 64);
	CHECK_EQ(st, 0xf);

	uint32_t init_in[4] = { 7, 31, 0, 0 };
	uint8_t out[128];
	CHECK_EQ(fuse_call(&d, FUSE_INIT, 0, init_in, sizeof(init_in), out, 80), 0);
	uint32_t major;
	memcpy(&major, out, 4);
	CHECK_EQ(major, 7);
	CHECK_EQ(fuse_call(&d, FUSE_LOOKUP, 1, "hello", 6, out, 128), 0);
	uint64_t nodeid;
	memcpy(&nodeid, out, 8);
	CHECK(nodeid > 1);
	CHECK_EQ(fuse_call(&d, FUSE_LOOKUP, 1, "absent", 7, out, 128), -ENOENT);
	uint8_t mk[16] = { 0xed, 0x01, 0, 0, 0, 0, 0, 0 }; /* mode 0755, umask 0 */
	memcpy(mk + 8, "newdir", 7);
	CHECK_EQ(fuse_call(&d, FUSE_MKDIR, 1, mk, 15, out, 128), 0);
	char nd[160];
	snprintf(nd, sizeof(nd), "%s/newdir", src);
	struct stat sb;
	CHECK(stat(nd, &sb) == 0 && S_ISDIR(sb.st_mode));

	/* A reset takes the rings back; a new driver starts them again. */
	st = vdrv_init(&d, 0, 2, 64);
	CHECK_EQ(st, 0xf);
	int e = fuse_call(&d, FUSE_LOOKUP, 1, "hello", 6, out, 128);
	CHECK(e != 1); /* answered (the session's INIT is the daemon's business) */

	/* The daemon dies: NEEDS_RESET, and requests fail with EIO. */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	bool broken = false;
	for (int i = 0; i < 2000 && !broken; i++) {
		broken = vdrv_status(&d) & VIRTIO_STATUS_NEEDS_RESET;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	CHECK(broken);
	CHECK_EQ(fuse_call(&d, FUSE_LOOKUP, 1, "hello", 6, out, 128), -EIO);
	CHECK_EQ(fuse_call(&d, FUSE_LOOKUP, 1, "hello", 6, out, 128), -EIO);
	/* and after a reset too: the device starts and answers EIO */
	st = vdrv_init(&d, 0, 2, 64);
	CHECK(st & VIRTIO_STATUS_DRIVER_OK);
	CHECK_EQ(fuse_call(&d, FUSE_INIT, 0, init_in, sizeof(init_in), out, 80), -EIO);
	vdrv_destroy(&d);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/khyve-vfs-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	struct fake_platform f;
	CHECK(fake_platform_init(&f, 64 << 20) == 0);
	/* The board makes RAM shareable for a vhost-user device: do the same. */
	guest_mem_destroy(&f.mem);
	CHECK(guest_mem_create_shared(&f.mem, 64 << 20, -1) == 0);
	parse_errors();
	not_vhost_user(&f);
	if (access(VIRTIOFSD, X_OK) == 0 && geteuid() == 0)
		with_virtiofsd(&f);
	else
		fprintf(stderr, "SKIP: %s needs root and %s\n", __FILE__, VIRTIOFSD);
	fake_platform_fini(&f);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	return UNIT_RESULT();
}
