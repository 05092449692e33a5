/* queue.c - the queue's front: checks each call's arguments and dispatches
 * it to the backend the queue was opened with (core/queue_backend.h), and
 * runs the notify callbacks the backends ask for.
 *
 * Threads: the notify table is written by queue_set_notify before the
 * threads start and only read afterwards, so it needs no lock; ops and the
 * backend pointer are fixed at open. Everything else is the backend's. */
#include "core/queue_backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct waker {
    queue_notify_fn fn;
    void *arg;
};

struct queue {
    const struct queue_ops *ops;
    void *b;
    int nslots; /* workers + 1: slot 0 is the producer */
    struct waker *wakers;
};

/* The backends this build has, by the spec's scheme. */
static const struct queue_ops *const backends[] = {&queue_mem_ops, &queue_sqlite_ops,
                                                   &queue_redis_ops};

static void say(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, arg);
}

queue *queue_open_ops(const struct queue_ops *ops, const char *where,
                      const struct queue_config *cfg, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!cfg || cfg->capacity < 1 || cfg->workers < 0) {
        say(err, errlen, "%s", "queue: the capacity must be at least 1 and workers at least 0");
        return NULL;
    }
    if (cfg->group_limit < 0) {
        snprintf(err, errlen, "queue: the per-group limit must be 0 (none) or more (got %d)",
                 cfg->group_limit);
        return NULL;
    }
    if (!(cfg->group_delay >= 0 && isfinite(cfg->group_delay))) {
        snprintf(err, errlen, "queue: the per-group delay must be 0 or more seconds (got %g)",
                 cfg->group_delay);
        return NULL;
    }
    if (!(cfg->group_jitter >= 0 && cfg->group_jitter <= 1)) {
        snprintf(err, errlen, "queue: the delay's jitter must be between 0 and 1 (got %g)",
                 cfg->group_jitter);
        return NULL;
    }
    queue *q = calloc(1, sizeof *q);
    if (q)
        q->wakers = calloc((size_t)cfg->workers + 1, sizeof *q->wakers);
    if (!q || !q->wakers) {
        free(q);
        say(err, errlen, "%s", "out of memory");
        return NULL;
    }
    q->ops = ops;
    q->nslots = cfg->workers + 1;
    err[0] = '\0';
    q->b = ops->open(q, where ? where : "", cfg, err, errlen);
    if (!q->b) {
        if (!err[0])
            say(err, errlen, "the %s queue could not be opened", ops->name);
        free(q->wakers);
        free(q);
        return NULL;
    }
    return q;
}

queue *queue_open(const char *spec, const struct queue_config *cfg, char *err, size_t errlen)
{
    if (!spec || !*spec)
        spec = "memory";
    /* "name", "name:where" or "name://where" (a URL keeps its scheme's
     * slashes in where: "redis://h:6379/0" gives "//h:6379/0") */
    size_t n = strcspn(spec, ":");
    const char *where = spec[n] == ':' ? spec + n + 1 : "";
    for (size_t i = 0; i < sizeof backends / sizeof *backends; i++)
        if (strlen(backends[i]->name) == n && strncmp(spec, backends[i]->name, n) == 0)
            return queue_open_ops(backends[i], where, cfg, err, errlen);
    say(err, errlen,
        "unknown queue backend '%s': this build has 'memory', 'sqlite:DIR' and 'redis://'", spec);
    return NULL;
}

void queue_free(queue *q)
{
    if (!q)
        return;
    q->ops->free(q->b);
    free(q->wakers);
    free(q);
}

void queue_set_notify(queue *q, int worker, queue_notify_fn fn, void *arg)
{
    if (worker < 0 || worker >= q->nslots)
        return;
    q->wakers[worker].fn = fn;
    q->wakers[worker].arg = arg;
}

void queue_wake(queue *q, int worker)
{
    if (worker >= 0 && worker < q->nslots && q->wakers[worker].fn)
        q->wakers[worker].fn(q->wakers[worker].arg);
}

void queue_wake_all(queue *q)
{
    for (int i = 0; i < q->nslots; i++)
        if (q->wakers[i].fn)
            q->wakers[i].fn(q->wakers[i].arg);
}

/* The odd push whose context or group pointer and length disagree: context
 * past its maximum is dropped, not an error (a job without its trace link
 * still runs); a length without a pointer counts as none. */
static int push_fixed(queue *q, const char *data, size_t len, const struct queue_push_opts *opts,
                      double now, uint64_t *id_out)
{
    struct queue_push_opts o = *opts;
    if (!o.ctx || o.ctx_len > QUEUE_CTX_MAX)
        o.ctx_len = 0;
    if (!o.group)
        o.group_len = 0;
    return q->ops->push(q->b, data, len, &o, now, id_out);
}

int queue_push(queue *q, const char *data, size_t len, const struct queue_push_opts *opts,
               double now, uint64_t *id_out)
{
    static const struct queue_push_opts defaults;
    if (!opts)
        opts = &defaults;
    if ((!data && len > 0) || (opts->group && opts->group_len > QUEUE_GROUP_MAX))
        return QUEUE_ERR;
    if (opts->ctx_len > QUEUE_CTX_MAX || (!opts->ctx && opts->ctx_len) ||
        (!opts->group && opts->group_len))
        return push_fixed(q, data, len, opts, now, id_out);
    return q->ops->push(q->b, data, len, opts, now, id_out); /* no copy: a tail call */
}

int queue_take(queue *q, int worker, double now, struct queue_lease *out)
{
    if (worker < 0 || worker >= q->nslots)
        return 0;
    return q->ops->take(q->b, worker, now, out);
}

int queue_ack(queue *q, uint64_t lease)
{
    return q->ops->ack(q->b, lease, 0);
}

int queue_ack_kept(queue *q, uint64_t lease)
{
    return q->ops->ack(q->b, lease, 1);
}

int queue_retry(queue *q, uint64_t lease, double delay, double now)
{
    return q->ops->retry(q->b, lease, delay, now);
}

int queue_release_worker(queue *q, int worker, uint64_t except)
{
    if (worker < 0 || worker >= q->nslots)
        return 0;
    return q->ops->release_worker(q->b, worker, except);
}

void queue_producer_done(queue *q)
{
    q->ops->producer_done(q->b);
}

int queue_drained(queue *q)
{
    return q->ops->drained(q->b);
}

void queue_close(queue *q)
{
    q->ops->close(q->b);
}

double queue_next_due(queue *q)
{
    return q->ops->next_due(q->b);
}

void queue_get_stats(queue *q, struct queue_stats *out)
{
    *out = (struct queue_stats){0};
    q->ops->stats(q->b, out);
}

/* The empty group is never limited, so it cannot be tuned or paused. */
static int group_ok(const char *group, size_t len)
{
    return group && len > 0 && len <= QUEUE_GROUP_MAX;
}

int queue_group_tune(queue *q, const char *group, size_t len, double delay, int limit)
{
    if (!group_ok(group, len) || !isfinite(delay))
        return -1;
    return q->ops->group_tune(q->b, group, len, delay, limit);
}

int queue_group_pause(queue *q, const char *group, size_t len, double until)
{
    if (!group_ok(group, len) || isnan(until))
        return -1;
    return q->ops->group_pause(q->b, group, len, until);
}

void queue_each_group(queue *q, void (*fn)(void *arg, const struct queue_group_info *g), void *arg)
{
    if (fn)
        q->ops->each_group(q->b, fn, arg);
}

int queue_claim(queue *q, const char *role)
{
    return q->ops->claim ? q->ops->claim(q->b, role) : 1;
}

int queue_items_durable(queue *q)
{
    return q->ops->ack_items != NULL;
}

int queue_ack_items(queue *q, uint64_t lease, const char *items, size_t len)
{
    if (!q->ops->ack_items)
        return q->ops->ack(q->b, lease, 0);
    return q->ops->ack_items(q->b, lease, items, items ? len : 0);
}

int queue_items(queue *q, const char *items, size_t len)
{
    return q->ops->items ? q->ops->items(q->b, items, len) : 0;
}

void queue_set_items_sink(queue *q, const struct queue_items_sink *sink)
{
    if (q->ops->set_sink)
        q->ops->set_sink(q->b, sink);
}

int queue_resumed(queue *q, struct queue_stats *at_open)
{
    return q->ops->resumed ? q->ops->resumed(q->b, at_open) : 0;
}

void queue_sync(queue *q, int last)
{
    if (q->ops->sync)
        q->ops->sync(q->b, last);
}
