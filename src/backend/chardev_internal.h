/* Private to the character backends: the fd-backed core every backend
 * (stdio now; pty and tcp later) builds on. Devices use chardev.h only. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "backend/chardev.h"

struct chardev_fd_config {
	int in_fd;      /* read on the event loop; -1: no input */
	int out_fd;     /* chardev_write goes here; -1: output dropped */
	bool own_in_fd;  /* close in_fd in chardev_close */
	bool own_out_fd; /* close out_fd in chardev_close */
	/* Called once from chardev_close, after the fds are released. */
	void (*on_close)(void *opaque);
	void *close_opaque;
};

/* A chardev over a pair of fds. in_fd should be non-blocking. Input is
 * watched only once a receiver is set (and only with a loop). */
int chardev_fd_new(struct evloop *loop, const struct chardev_fd_config *cfg,
		   struct chardev **out);

/* Backends, by name; args is what follows "name=" (or "" when none). */
int chardev_stdio_open(const char *args, struct evloop *loop, struct chardev **out,
		       char *err, size_t errlen);
