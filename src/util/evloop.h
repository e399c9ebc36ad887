/* The event loop: one thread waits on everything that waits (console
 * input, sockets, signals through signalfd, timers). Callbacks run on the
 * loop thread. Adding, changing and removing sources is safe from any
 * thread. */
#pragma once
#include <stdint.h>

struct evloop;
struct evloop_source;

/* events are EPOLLIN/EPOLLOUT/EPOLLHUP/EPOLLERR bits. */
typedef void (*evloop_cb)(void *opaque, uint32_t events);

struct evloop *evloop_create(void);
void evloop_destroy(struct evloop *loop);

/* Watch fd for events. Returns NULL on failure (errno set). */
struct evloop_source *evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_cb cb,
				 void *opaque);
int evloop_modify(struct evloop *loop, struct evloop_source *src, uint32_t events);
/* Stop watching; the callback is not called after this returns on the loop
 * thread, nor after the current dispatch round when called elsewhere. */
void evloop_remove(struct evloop *loop, struct evloop_source *src);

/* Run callbacks until evloop_stop(). Returns 0, or -errno on failure. */
int evloop_run(struct evloop *loop);
void evloop_stop(struct evloop *loop);
/* One dispatch round: wait up to timeout_ms (-1: forever, 0: not at all)
 * and run the callbacks that are ready. Returns how many ran, or -errno.
 * For tests that drive the loop by hand. */
int evloop_run_once(struct evloop *loop, int timeout_ms);

/* Timers on the loop, backed by a timerfd each (CLOCK_MONOTONIC): the
 * callback runs on the loop thread once per expiry. For libraries that
 * keep their own timers (libslirp). */
struct evloop_timer;
typedef void (*evloop_timer_cb)(void *opaque);
struct evloop_timer *evloop_timer_new(struct evloop *loop, evloop_timer_cb cb, void *opaque);
/* Arm for the absolute CLOCK_MONOTONIC time expire_ns (a time already
 * past fires at once); expire_ns < 0 disarms. */
int evloop_timer_mod(struct evloop_timer *t, int64_t expire_ns);
void evloop_timer_free(struct evloop_timer *t);
/* CLOCK_MONOTONIC now, in nanoseconds. */
int64_t evloop_now_ns(void);
