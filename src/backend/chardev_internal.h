/* Private to the character backends: the fd-backed core every backend
 * (stdio, pty, tcp) builds on. Devices use chardev.h only. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "backend/chardev.h"

struct chardev_fd_config {
	int in_fd;      /* read on the event loop; -1: no input */
	int out_fd;     /* chardev_write goes here; -1: output dropped */
	bool own_in_fd;  /* close in_fd in chardev_close */
	bool own_out_fd; /* close out_fd in chardev_close */
	/* Called once from chardev_close, before and after the fds are
	 * released (either may be NULL). */
	void (*before_close)(void *opaque);
	void (*on_close)(void *opaque);
	void *close_opaque;
	/* Called on the loop thread, without chardev locks, when input ends
	 * (EOF or a read error), after the input fd stopped being watched.
	 * NULL: input simply ends. */
	void (*on_input_end)(void *opaque);
};

/* A chardev over a pair of fds. in_fd should be non-blocking. Input is
 * watched only once a receiver is set (and only with a loop). */
int chardev_fd_new(struct evloop *loop, const struct chardev_fd_config *cfg,
		   struct chardev **out);

/* Replace both fds (a socket client that comes and goes); the old ones
 * are closed if owned, the new ones are owned when own is set. -1, -1
 * leaves the chardev without input and dropping output. Call from the
 * loop thread (or with the loop stopped). */
void chardev_fd_replace(struct chardev *chr, int in_fd, int out_fd, bool own);

/* Set what chardev_where says. */
void chardev_set_where(struct chardev *chr, const char *where);

/* Also write everything the device sends to log_fd (owned from now on). */
void chardev_set_log(struct chardev *chr, int log_fd);

/* Backends, by name; args is what follows "name=" (or "" when none). */
int chardev_stdio_open(const char *args, struct evloop *loop, struct chardev **out,
		       char *err, size_t errlen);
/* args: the path of the symlink to create. */
int chardev_pty_open(const char *args, struct evloop *loop, struct chardev **out,
		     char *err, size_t errlen);
/* args: "[address:]port". */
int chardev_tcp_open(const char *args, struct evloop *loop, struct chardev **out,
		     char *err, size_t errlen);
