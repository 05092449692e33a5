/* loop.h - one thread's event loop: an epoll set driving a curl multi
 * handle (curl_multi_socket_action), an eventfd other threads write to wake
 * it, and a heap of timers keyed by small integers (a worker's coroutine
 * slots: attempt deadlines and sleeps).
 *
 * The owner drives it: loop_kick lets curl act on a due timer,
 * loop_next_done hands back finished transfers, loop_timer_first the
 * nearest timer, loop_poll blocks until an event or the timeout and
 * loop_dispatch feeds every socket event of that wait to curl. It calls nothing back: what
 * happens next is the owner's. Everything but loop_wake belongs to the
 * owning thread. */
#ifndef SHOAL_LOOP_H
#define SHOAL_LOOP_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <stddef.h>
#include <stdint.h>

struct loop {
    CURLM *multi;
    int epfd, evfd;
    _Atomic int wake_pending; /* an eventfd write is in flight; skip more */
    double curl_due;          /* curl's timer, 0 = none */
    uint32_t *fds;            /* per descriptor: ours?, in epoll?, wanted?, events */
    size_t fdcap;
    /* timers: ids 0 .. ntimers-1, ordered by when[id] in heap */
    int ntimers, nheap;
    int *heap, *pos; /* pos[id]: id's place in heap, -1 if absent */
    double *when;
    struct epoll_event evs[256]; /* the last loop_poll's */
};

/* Sets up a loop for timers 0 .. ntimers-1, keeping up to maxconnects idle
 * connections. 0, or -1 with a message in err (loop_free cleans up). */
int loop_init(struct loop *l, int ntimers, long maxconnects, char *err, size_t errlen);
void loop_free(struct loop *l);

/* Wakes the loop's wait (any thread; async-signal-safe). */
void loop_wake(struct loop *l);

/* Timer id fires at t (CLOCK_MONOTONIC seconds, clock.h); t = 0: never. */
void loop_timer_set(struct loop *l, int id, double t);
/* The nearest timer's id and time, or -1 if none is set. */
static inline int loop_timer_first(const struct loop *l, double *t)
{
    if (l->nheap == 0)
        return -1;
    *t = l->when[l->heap[0]];
    return l->heap[0];
}

/* When curl wants to be called back (0: not), and letting it act once that
 * time has come: new transfers are due at once. */
static inline double loop_curl_due(const struct loop *l)
{
    return l->curl_due;
}
void loop_kick(struct loop *l);

/* Adds a prepared easy handle / takes one out (finished or cancelled).
 * loop_add: 0, or -1 with a message. */
int loop_add(struct loop *l, CURL *easy, char *err, size_t errlen);
void loop_remove(struct loop *l, CURL *easy);
/* The next finished transfer, taken out of the loop, and its outcome; or
 * NULL. */
CURL *loop_next_done(struct loop *l, CURLcode *result);

/* Waits up to timeout_ms (0: not at all) for events; returns how many.
 * loop_dispatch then feeds them to curl (and takes a wake-up). */
int loop_poll(struct loop *l, int timeout_ms);
void loop_dispatch(struct loop *l, int n);

/* fetch.c's socket callbacks: a socket one of this loop's transfers opened
 * or closed (keeps the epoll bookkeeping right when numbers are reused). */
void loop_socket_opened(struct loop *l, int fd);
void loop_socket_closed(struct loop *l, int fd);

#endif
