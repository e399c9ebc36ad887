/* A virtio-fs device's thread (virtio/fs.c): epoll over the back end's
 * call and error eventfds and the vhost-user socket (for its hang-up), and
 * reading those eventfds; once the back end is gone, the queues' kicks
 * too, answering each request itself (guest memory only). The vhost-user
 * messages themselves are sent by the starter and vCPU threads. */
#include "sandbox/rules.h"

static const struct sandbox_rule rules[] = {
	SB_ALLOW(epoll_wait),
	SB_ALLOW(epoll_pwait),
	SB_ALLOW(epoll_ctl),
	SB_ALLOW(read),
};

const struct sandbox_rules sandbox_fs_io_rules = SB_RULES("fs_io", rules);
