/* virtio-console's request paths through the fake platform, with port 0
 * on a UNIX socket: output to the client, input into the guest's buffers,
 * the work budget, and emerg_wr from a vCPU while the event loop closes
 * the client (defect 10). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "unit.h"
#include "virtio/emulations.h"
#include "virtio/vdev_work.h"
#include "virtio_drv.h"


#define SLOT 6
#define F_EMERG_WRITE (1u << 2)

static char sock_path[108];

static void setup(struct fake_platform *f, struct vdrv *d)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/khyve-test-con-%d.sock", (int)getpid());
	char conf[160];
	snprintf(conf, sizeof(conf), "p0=%s", sock_path);
	CHECK_EQ(fake_platform_init(f, 16 << 20), 0);
	CHECK_EQ(vdrv_create(d, f, &pci_emul_virtio_console, conf, SLOT), 0);
	CHECK_EQ(vdrv_finish(d), 0);
}

static void teardown(struct fake_platform *f, struct vdrv *d)
{
	vdrv_destroy(d);
	fake_platform_fini(f);
	unlink(sock_path);
}

static int client(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void drain_loop(struct fake_platform *f)
{
	for (int i = 0; i < 64 && fake_loop_poll(f) > 0; i++)
		;
}

static void test_paths(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK_EQ(vdrv_init(&d, 0, 2, 64), 0x0f);
	drain_loop(&f);
	int cl = client();
	drain_loop(&f); /* accept */

	/* Guest to host. */
	uint64_t out = vdrv_alloc(&d, 16, 16);
	guest_mem_write(&f.mem, out, "hello", 5);
	uint16_t h = vdrv_add(&d, 1, &(struct vdrv_seg){ out, 5, false }, 1);
	vdrv_kick(&d, 1);
	drain_loop(&f);
	uint16_t head = 0xffff;
	uint32_t len = 99;
	CHECK(vdrv_used(&d, 1, &head, &len));
	CHECK_EQ(head, h);
	CHECK_EQ(len, 0);
	char buf[64] = { 0 };
	CHECK_EQ(recv(cl, buf, sizeof(buf), MSG_DONTWAIT), 5);
	CHECK(!memcmp(buf, "hello", 5));

	/* Host to guest. */
	uint64_t in = vdrv_alloc(&d, 64, 16);
	h = vdrv_add(&d, 0, &(struct vdrv_seg){ in, 64, true }, 1);
	vdrv_kick(&d, 0);
	drain_loop(&f);
	CHECK_EQ(send(cl, "world", 5, 0), 5);
	drain_loop(&f);
	CHECK(vdrv_used(&d, 0, &head, &len));
	CHECK_EQ(head, h);
	CHECK_EQ(len, 5);
	memset(buf, 0, sizeof(buf));
	guest_mem_read(&f.mem, in, buf, 5);
	CHECK(!memcmp(buf, "world", 5));

	/* A reset drops the held receive buffer; nothing more is written. */
	h = vdrv_add(&d, 0, &(struct vdrv_seg){ in, 64, true }, 1);
	vdrv_kick(&d, 0);
	drain_loop(&f);
	CHECK_EQ(vdrv_init(&d, 0, 2, 64), 0x0f);
	drain_loop(&f);
	close(cl);
	drain_loop(&f);
	teardown(&f, &d);
}

/* Defect 2 for the console: one kick serves one budget, then the device
 * comes back by itself. */
static void test_budget(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK_EQ(vdrv_init(&d, 0, 2, 64), 0x0f);
	drain_loop(&f);
	int cl = client();
	drain_loop(&f);
	uint64_t out = vdrv_alloc(&d, 64, 16);
	for (unsigned i = 0; i < 64; i++) {
		guest_mem_write(&f.mem, out + i, "x", 1);
		vdrv_add(&d, 1, &(struct vdrv_seg){ out + i, 1, false }, 1);
	}
	vdrv_kick(&d, 1);
	CHECK_EQ(fake_loop_poll(&f), 1);
	CHECK_EQ(vdrv_used_idx(&d, 1), VDEV_BUDGET);
	drain_loop(&f);
	CHECK_EQ(vdrv_used_idx(&d, 1), 64);
	char buf[128];
	CHECK_EQ(recv(cl, buf, sizeof(buf), MSG_DONTWAIT), 64);
	close(cl);
	drain_loop(&f);
	teardown(&f, &d);
}

/* Defect 10: a vCPU writes emerg_wr while the loop closes the client and
 * other threads open descriptors that may reuse its number. No byte may
 * reach a descriptor that is not the port's client. */
static atomic_bool stop;
static atomic_uint misdelivered;

static void *emerg_writer(void *opaque)
{
	struct vdrv *d = opaque;
	while (!atomic_load(&stop))
		vdrv_wr(d, 0x2000 + 8, 4, 'Z');
	return NULL;
}

static void *fd_churner(void *opaque)
{
	(void)opaque;
	while (!atomic_load(&stop)) {
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
			continue;
		char b[16];
		for (int k = 0; k < 2; k++)
			if (recv(sp[k], b, sizeof(b), MSG_DONTWAIT) > 0)
				misdelivered++;
		close(sp[0]);
		close(sp[1]);
	}
	return NULL;
}

static void test_conn_close_race(void)
{
	struct fake_platform f;
	struct vdrv d;
	setup(&f, &d);
	CHECK_EQ(vdrv_init(&d, F_EMERG_WRITE, 2, 64), 0x0f);
	drain_loop(&f);
	atomic_store(&stop, false);
	pthread_t w, ch;
	pthread_create(&w, NULL, emerg_writer, &d);
	pthread_create(&ch, NULL, fd_churner, NULL);
	for (int i = 0; i < 300; i++) {
		int cl = client();
		drain_loop(&f); /* accept */
		close(cl);
		drain_loop(&f); /* hang-up: conn_close */
	}
	atomic_store(&stop, true);
	pthread_join(w, NULL);
	pthread_join(ch, NULL);
	CHECK_EQ(misdelivered, 0);
	teardown(&f, &d);
}

/* fd=R:W (khyve-run's channel): output reaches W in order, a chain at a
 * time; bad specs are refused at parse time. */
static void test_fd_backend(void)
{
	struct fake_platform f;
	struct vdrv d;
	int p[2];
	CHECK_EQ(pipe(p), 0);
	char conf[64];
	snprintf(conf, sizeof(conf), "krun.ctl=fd=-1:%d", p[1]);
	CHECK_EQ(fake_platform_init(&f, 16 << 20), 0);
	CHECK_EQ(vdrv_create(&d, &f, &pci_emul_virtio_console, conf, SLOT), 0);
	CHECK_EQ(vdrv_finish(&d), 0);
	CHECK_EQ(vdrv_init(&d, 0, 2, 64), 0x0f);
	drain_loop(&f);
	uint64_t out = vdrv_alloc(&d, 32, 16);
	guest_mem_write(&f.mem, out, "first second", 12);
	vdrv_add(&d, 1, &(struct vdrv_seg){ out, 6, false }, 1);
	vdrv_add(&d, 1, &(struct vdrv_seg){ out + 6, 6, false }, 1);
	vdrv_kick(&d, 1);
	drain_loop(&f);
	char buf[32] = { 0 };
	CHECK_EQ(read(p[0], buf, sizeof(buf)), 12);
	CHECK(!memcmp(buf, "first second", 12));
	vdrv_destroy(&d);
	fake_platform_fini(&f);
	close(p[0]);
	close(p[1]);

	static const char *bad[] = { "c=fd=", "c=fd=x:1", "c=fd=-1:1:2", "c=fd=1" };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(fake_platform_init(&f, 16 << 20), 0);
		struct pci_bus *bus;
		void *settings = NULL;
		char err[300] = "";
		CHECK_EQ(pci_bus_create(&f.p, &bus), 0);
		CHECK_EQ(pci_emul_virtio_console.parse(bad[i], &settings, err, sizeof(err)), 0);
		CHECK(pci_emul_virtio_console.create(bus, SLOT, 0, settings, &f.p, err,
						     sizeof(err)) != 0);
		CHECK(strstr(err, "fd") != NULL);
		pci_bus_destroy(bus);
		pci_emul_virtio_console.free_settings(settings);
		fake_platform_fini(&f);
	}
}

int main(void)
{
	test_paths();
	test_fd_backend();
	test_budget();
	test_conn_close_race();
	return UNIT_RESULT();
}
