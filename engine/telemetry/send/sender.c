/* sender.c - the thread, waits, retries and counts every push backend
 * shares (see sender.h).
 *
 * The backoff between tries is backoff.c's schedule, 0.5 s doubling to
 * 5 s, without its jitter: a process has one sender per backend, so there
 * is no herd of its own to spread, and the retries of a batch must fit the
 * shutdown deadline as they always did (0.5 + 1 + 2 s for three). */
#include "telemetry/send/sender.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "base/logtext.h"
#include "base/thread.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telemetry/logs/logger.h"

#define BACKOFF_BASE 0.5 /* seconds before the first retry */
#define BACKOFF_MAX 5.0  /* seconds between two tries at most */

/* The loop's wait: until due, a kick or the stop; at once when stopping
 * already. Returns whether the sender is stopping. */
static int wait_due(struct sender *s, double due)
{
    pthread_mutex_lock(&s->lock);
    while (!s->stopping && !atomic_load(&s->kicked) && clock_now() < due)
        thread_cond_wait_until(&s->cond, &s->lock, due);
    int stopping = s->stopping;
    pthread_mutex_unlock(&s->lock);
    return stopping;
}

static void *loop(void *arg)
{
    struct sender *s = arg;
    const struct sender_ops *ops = s->ops;
    for (;;) {
        double due = ops->due ? ops->due(s->owner) : clock_now() + s->c.delay;
        int stopping = wait_due(s, due);
        atomic_store(&s->kicked, 0);
        size_t n;
        while ((n = ops->take(s->owner, stopping)) > 0) {
            ops->send(s->owner, n, stopping);
            if (ops->release)
                ops->release(s->owner, n);
            if (!stopping && !ops->ready(s->owner))
                break; /* the rest is not due yet */
        }
        if (stopping)
            break;
    }
    return NULL;
}

int sender_start(struct sender *s, const struct sender_config *c, const struct sender_ops *ops,
                 void *owner, char *err, size_t errlen)
{
    s->c = *c;
    s->ops = ops;
    s->owner = owner;
    /* the logger redacts too, but not what it writes once it has stopped */
    const char *url = c->endpoint ? c->endpoint : "";
    logtext_redact(s->shown, sizeof s->shown, url, strlen(url));
    pthread_mutex_init(&s->lock, NULL);
    thread_cond_init(&s->cond);
    int rc = thread_start(&s->thread, c->thread, 1, loop, s);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot start the %s thread: %s", c->what, c->thread,
                 strerror(rc));
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        return -1;
    }
    return 0;
}

void sender_stop(struct sender *s, long timeout_ms)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    s->deadline = clock_now() + (double)(timeout_ms > 0 ? timeout_ms : 0) / 1000;
    double deadline = s->deadline;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->c.wake)
        s->c.wake(s->c.wake_arg, deadline);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}

void sender_kick(struct sender *s)
{
    if (atomic_exchange(&s->kicked, 1))
        return; /* already woken for this batch */
    pthread_mutex_lock(&s->lock);
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void sender_kick_locked(struct sender *s)
{
    atomic_store(&s->kicked, 1);
    pthread_cond_signal(&s->cond);
}

double sender_deadline(struct sender *s, int *stopping)
{
    pthread_mutex_lock(&s->lock);
    int st = s->stopping;
    double at = st ? s->deadline : INFINITY;
    pthread_mutex_unlock(&s->lock);
    if (stopping)
        *stopping = st;
    return at;
}

int sender_late(struct sender *s)
{
    return clock_now() >= sender_deadline(s, NULL);
}

int sender_nap(struct sender *s, double until)
{
    pthread_mutex_lock(&s->lock);
    int was = s->stopping;
    if (was && s->deadline < until)
        until = s->deadline;
    while (s->stopping == was && clock_now() < until)
        thread_cond_wait_until(&s->cond, &s->lock, until);
    int stopping = s->stopping;
    pthread_mutex_unlock(&s->lock);
    return stopping;
}

double sender_retry_after(const char *value)
{
    double secs = atof(value); /* an HTTP-date reads as 0: the backoff is used */
    if (!(secs > 0))
        return 0;
    return secs < SENDER_RETRY_AFTER_MAX ? secs : SENDER_RETRY_AFTER_MAX;
}

void sender_begin(struct sender *s)
{
    s->attempt = 1;
}

enum sender_verdict sender_retry(struct sender *s, int retryable, int answered,
                                 double retry_after, double retry_until, double *wait)
{
    s->attempt++;
    *wait = retry_after > 0 ? retry_after : backoff_step(s->attempt, BACKOFF_BASE, BACKOFF_MAX);
    int stopping;
    double limit = sender_deadline(s, &stopping);
    if (!stopping)
        limit = retry_until;
    /* a backend that does not answer at shutdown is not waited for */
    if (stopping && !answered)
        return SENDER_UNANSWERED;
    if (!retryable || clock_now() + *wait > limit)
        return SENDER_GIVE_UP;
    return SENDER_AGAIN;
}

enum sender_verdict sender_pause(struct sender *s, double wait, int answered)
{
    int stopping = sender_nap(s, clock_now() + wait);
    return stopping && !answered ? SENDER_UNANSWERED : SENDER_AGAIN;
}

void sender_exported(struct sender *s, size_t n)
{
    metric_add(s->c.counts.exported, (double)n);
}

void sender_failed(struct sender *s, size_t n)
{
    metric_add(s->c.counts.failed, (double)n);
}

void sender_dropped(struct sender *s, size_t n)
{
    metric_add(s->c.counts.dropped, (double)n);
    atomic_store_explicit(&s->dropped_any, 1, memory_order_relaxed);
}

/* Through the process's logger (ring -1), whose writer may hand the record
 * to the logs exporter: no lock of ours is held here. Once per sender: a
 * backend that is down would otherwise say so for every batch. */
void sender_warn(struct sender *s, long status, const char *why, size_t n, int retrying)
{
    if (s->warned)
        return;
    s->warned = 1;
    struct log_record r;
    log_begin(&r, LOG_WARN, s->c.failure);
    log_cstr(&r, s->c.endpoint_key ? s->c.endpoint_key : "url", s->shown);
    if (status)
        log_int(&r, "status", status);
    log_cstr(&r, "error", why);
    if (s->c.count)
        log_int(&r, s->c.count, (int64_t)n);
    if (retrying >= 0)
        log_bool(&r, "retrying", retrying);
    log_emit_global(&r);
}

void sender_warn_drops(struct sender *s, const char *msg, const char *key, int64_t value)
{
    if (s->warned_drop || !atomic_load_explicit(&s->dropped_any, memory_order_relaxed))
        return;
    s->warned_drop = 1;
    struct log_record r;
    log_begin(&r, LOG_WARN, msg);
    log_cstr(&r, s->c.endpoint_key ? s->c.endpoint_key : "url", s->shown);
    log_int(&r, key, value);
    log_emit_global(&r);
}
