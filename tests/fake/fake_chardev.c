#include "fake_chardev.h"

#include <stdlib.h>
#include <string.h>

struct chardev {
	struct chardev_receiver rx;
	bool have_rx, paused;
	unsigned resumes;
	uint8_t queue[FAKE_CHARDEV_QUEUE];
	size_t qhead, qlen;
	uint64_t out_bytes, in_delivered;
	uint8_t out[FAKE_CHARDEV_OUT_KEEP];
};

struct chardev *fake_chardev_new(void)
{
	return calloc(1, sizeof(struct chardev));
}

void chardev_close(struct chardev *c)
{
	free(c);
}

int chardev_open(const char *spec, struct evloop *loop, struct chardev **out, char *err,
		 size_t errlen)
{
	(void)spec;
	(void)loop;
	(void)err;
	(void)errlen;
	*out = fake_chardev_new();
	return *out ? 0 : -12; /* -ENOMEM */
}

void chardev_set_receiver(struct chardev *c, const struct chardev_receiver *rx)
{
	if (!c)
		return;
	c->have_rx = rx != NULL;
	c->paused = false;
	if (rx)
		c->rx = *rx;
}

void chardev_resume_input(struct chardev *c)
{
	if (!c)
		return;
	c->resumes++;
	c->paused = false;
}

void chardev_inject_input(struct chardev *c, const uint8_t *buf, size_t len)
{
	if (!c || !c->have_rx)
		return;
	size_t room = c->rx.can_receive(c->rx.opaque);
	if (room)
		c->rx.receive(c->rx.opaque, buf, len < room ? len : room);
}

ssize_t chardev_write(struct chardev *c, const void *buf, size_t len)
{
	if (!c)
		return (ssize_t)len;
	const uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		c->out[c->out_bytes++ % FAKE_CHARDEV_OUT_KEEP] = p[i];
	return (ssize_t)len;
}

size_t fake_chardev_queue(struct chardev *c, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	while (n < len && c->qlen < FAKE_CHARDEV_QUEUE) {
		c->queue[(c->qhead + c->qlen) % FAKE_CHARDEV_QUEUE] = buf[n++];
		c->qlen++;
	}
	return n;
}

size_t fake_chardev_pump(struct chardev *c)
{
	if (!c->have_rx || c->paused || !c->qlen)
		return 0;
	size_t room = c->rx.can_receive(c->rx.opaque);
	if (!room) {
		c->paused = true;
		return 0;
	}
	/* The real backend reads at most 512 bytes per wakeup. */
	uint8_t buf[512];
	size_t n = room < sizeof(buf) ? room : sizeof(buf);
	if (n > c->qlen)
		n = c->qlen;
	for (size_t i = 0; i < n; i++)
		buf[i] = c->queue[(c->qhead + i) % FAKE_CHARDEV_QUEUE];
	c->qhead = (c->qhead + n) % FAKE_CHARDEV_QUEUE;
	c->qlen -= n;
	c->in_delivered += n;
	c->rx.receive(c->rx.opaque, buf, n);
	return n;
}

void fake_chardev_stats(const struct chardev *c, struct fake_chardev_stats *out)
{
	*out = (struct fake_chardev_stats){
		.out_bytes = c->out_bytes, .in_delivered = c->in_delivered, .in_queued = c->qlen,
		.paused = c->paused, .have_rx = c->have_rx, .resumes = c->resumes,
	};
}

int fake_chardev_out_byte(const struct chardev *c, unsigned n)
{
	if (n >= FAKE_CHARDEV_OUT_KEEP || n >= c->out_bytes)
		return -1;
	return c->out[(c->out_bytes - 1 - n) % FAKE_CHARDEV_OUT_KEEP];
}
