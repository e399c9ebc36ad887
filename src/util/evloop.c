#include "util/evloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

struct evloop_source {
	int fd;
	evloop_cb cb;
	void *opaque;
	atomic_bool removed;
	struct evloop_source *next_dead;
	struct evloop_source *prev, *next; /* every live source, for destroy */
};

struct evloop {
	int epfd;
	int wakefd;
	atomic_bool stop;
	pthread_mutex_t lock; /* guards the dead list */
	struct evloop_source *dead;
	struct evloop_source *live;
	struct evloop_source wake_source;
};

struct evloop *evloop_create(void)
{
	struct evloop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&loop->lock, NULL);
	if (loop->epfd < 0 || loop->wakefd < 0)
		goto fail;
	loop->wake_source.fd = loop->wakefd;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &loop->wake_source };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0)
		goto fail;
	return loop;
fail:
	evloop_destroy(loop);
	return NULL;
}

static void free_dead(struct evloop *loop)
{
	pthread_mutex_lock(&loop->lock);
	struct evloop_source *s = loop->dead;
	loop->dead = NULL;
	pthread_mutex_unlock(&loop->lock);
	while (s) {
		struct evloop_source *next = s->next_dead;
		free(s);
		s = next;
	}
}

void evloop_destroy(struct evloop *loop)
{
	if (!loop)
		return;
	free_dead(loop);
	for (struct evloop_source *s = loop->live, *next; s; s = next) {
		next = s->next;
		free(s);
	}
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->wakefd >= 0)
		close(loop->wakefd);
	pthread_mutex_destroy(&loop->lock);
	free(loop);
}

struct evloop_source *evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_cb cb,
				 void *opaque)
{
	struct evloop_source *src = calloc(1, sizeof(*src));
	if (!src)
		return NULL;
	src->fd = fd;
	src->cb = cb;
	src->opaque = opaque;
	pthread_mutex_lock(&loop->lock);
	src->next = loop->live;
	if (loop->live)
		loop->live->prev = src;
	loop->live = src;
	pthread_mutex_unlock(&loop->lock);
	struct epoll_event ev = { .events = events, .data.ptr = src };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		evloop_remove(loop, src);
		errno = e;
		return NULL;
	}
	return src;
}

int evloop_modify(struct evloop *loop, struct evloop_source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, src->fd, &ev) < 0 ? -errno : 0;
}

void evloop_remove(struct evloop *loop, struct evloop_source *src)
{
	if (!src)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, src->fd, NULL);
	pthread_mutex_lock(&loop->lock);
	if (src->prev)
		src->prev->next = src->next;
	else if (loop->live == src)
		loop->live = src->next;
	if (src->next)
		src->next->prev = src->prev;
	src->prev = src->next = NULL;
	src->removed = true;
	src->next_dead = loop->dead;
	loop->dead = src;
	pthread_mutex_unlock(&loop->lock);
}

int evloop_run_once(struct evloop *loop, int timeout_ms)
{
	struct epoll_event events[32];
	int n = epoll_wait(loop->epfd, events, 32, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	int ran = 0;
	for (int i = 0; i < n && !atomic_load(&loop->stop); i++) {
		struct evloop_source *src = events[i].data.ptr;
		if (src == &loop->wake_source) {
			uint64_t v;
			ssize_t r = read(loop->wakefd, &v, sizeof(v));
			(void)r;
			continue;
		}
		/* A callback earlier in this round may have removed src;
		 * it stays allocated until the round ends. */
		if (!src->removed) {
			src->cb(src->opaque, events[i].events);
			ran++;
		}
	}
	free_dead(loop);
	return ran;
}

int evloop_run(struct evloop *loop)
{
	while (!atomic_load(&loop->stop)) {
		int r = evloop_run_once(loop, -1);
		if (r < 0)
			return r;
	}
	return 0;
}

void evloop_stop(struct evloop *loop)
{
	atomic_store(&loop->stop, true);
	uint64_t one = 1;
	ssize_t r = write(loop->wakefd, &one, sizeof(one));
	(void)r;
}

/* ---- timers ---- */

struct evloop_timer {
	struct evloop *loop;
	struct evloop_source *src;
	int fd;
	evloop_timer_cb cb;
	void *opaque;
};

int64_t evloop_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_timer(void *opaque, uint32_t events)
{
	(void)events;
	struct evloop_timer *t = opaque;
	uint64_t n;
	if (read(t->fd, &n, sizeof(n)) != sizeof(n))
		return; /* disarmed or re-armed meanwhile */
	t->cb(t->opaque);
}

struct evloop_timer *evloop_timer_new(struct evloop *loop, evloop_timer_cb cb, void *opaque)
{
	struct evloop_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->loop = loop;
	t->cb = cb;
	t->opaque = opaque;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (t->fd < 0 || !(t->src = evloop_add(loop, t->fd, EPOLLIN, on_timer, t))) {
		int e = errno;
		if (t->fd >= 0)
			close(t->fd);
		free(t);
		errno = e;
		return NULL;
	}
	return t;
}

int evloop_timer_mod(struct evloop_timer *t, int64_t expire_ns)
{
	struct itimerspec its = { 0 };
	if (expire_ns >= 0) {
		if (expire_ns == 0)
			expire_ns = 1; /* 0 would disarm */
		its.it_value.tv_sec = expire_ns / 1000000000;
		its.it_value.tv_nsec = expire_ns % 1000000000;
	}
	return timerfd_settime(t->fd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ? -errno : 0;
}

void evloop_timer_free(struct evloop_timer *t)
{
	if (!t)
		return;
	evloop_remove(t->loop, t->src);
	close(t->fd);
	free(t);
}
