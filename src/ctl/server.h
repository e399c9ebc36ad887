/* The control socket of a running khyve (protocol: ctl/proto.h), served
 * on the VM's event loop. */
#pragma once
#include <stddef.h>

#include "ctl/vmdir.h"

struct vm;
struct ctl_server;

struct ctl_server_config {
	struct vm *vm;
	struct ctl_vm *dir;     /* open, lock held; the socket goes in it */
	const char *com_name[4]; /* "com1".. and where each port is, for INFO */
	const char *com_where[4];
	/* Called on the loop thread once DESTROY was asked (before the VM
	 * ends as a poweroff): the caller removes the directory as it exits. */
	void (*on_destroy)(void *opaque);
	/* Wake the guest from ACPI S3: 0, or -EALREADY when it is not
	 * suspended. NULL: WAKEUP is refused. Called on the loop thread. */
	int (*wakeup)(void *opaque);
	void *opaque;
};

/* Listen on the VM's ctl socket. 0, or -errno with a reason. */
int ctl_server_start(const struct ctl_server_config *cfg, struct ctl_server **out, char *err,
		     size_t errlen);
/* Stop serving and remove the socket file. */
void ctl_server_stop(struct ctl_server *s);
