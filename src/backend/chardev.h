/* Character backends for serial ports and consoles: where a UART's bytes
 * go and come from. A spec names one: "stdio" now; ptys, sockets and files
 * later. Input arrives on the event-loop thread. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct evloop;
struct chardev;

struct chardev_receiver {
	/* How many bytes the device can take now; 0 pauses input until
	 * chardev_resume_input(). */
	size_t (*can_receive)(void *opaque);
	void (*receive)(void *opaque, const uint8_t *buf, size_t len);
	void *opaque;
};

/* Open the backend named by spec. On failure returns a negative errno and
 * writes a one-line reason (without the program name) to err. */
int chardev_open(const char *spec, struct evloop *loop, struct chardev **out, char *err,
		 size_t errlen);
void chardev_close(struct chardev *chr);
/* Check spec as chardev_open would parse it, opening nothing (no pty,
 * socket or log file is created). 0, or -errno with the same reason
 * chardev_open would give. */
int chardev_check_spec(const char *spec, char *err, size_t errlen);

void chardev_set_receiver(struct chardev *chr, const struct chardev_receiver *rx);
/* The device has room again. Callable from any thread. */
void chardev_resume_input(struct chardev *chr);
/* Hand bytes to the device as if they had been typed (dropped when it has
 * no room). Call on the event-loop thread. */
void chardev_inject_input(struct chardev *chr, const uint8_t *buf, size_t len);
/* Where the other end can be reached, for khyvectl --console: "pty:/dev/pts/N",
 * "tcp:ADDRESS:PORT", "stdio", or "" when nowhere (a log file only). */
const char *chardev_where(const struct chardev *chr);
/* Output never blocks the caller for long; bytes may be dropped if the
 * other side does not read (a detached pty). */
ssize_t chardev_write(struct chardev *chr, const void *buf, size_t len);
