/* tracer.c - the batch span processor's queues (see tracer.h); the
 * exporter thread is an otlp_batcher (otlp_send.c).
 *
 * Threads: tracer_submit runs on worker threads and takes only its own
 * queue's mutex; when its queue reaches a batch it kicks the batcher (once
 * per batch). The batcher's thread takes each queue's mutex only to move
 * spans out, and owns t->batch. tracer_new and tracer_shutdown belong to
 * the main thread. */
#include "tracer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "otlp.h"
#include "otlp_send.h"
#include "runmetrics.h"

struct squeue {
    pthread_mutex_t lock;
    struct span **ring;
    size_t head, count;
} __attribute__((aligned(64)));

struct tracer {
    const struct otel_config *cfg;
    struct squeue *q;
    int nq;
    size_t cap;
    struct metric_series *exported, *dropped, *failed;
    struct otlp_batcher *batcher;
    int next_q; /* where take() starts; the batcher's thread only */
    struct span **batch;
};

void tracer_submit(struct tracer *t, int queue, struct span *s)
{
    struct squeue *q = &t->q[queue % t->nq];
    pthread_mutex_lock(&q->lock);
    if (q->count == t->cap) {
        pthread_mutex_unlock(&q->lock);
        span_free(s);
        metric_add(t->dropped, 1);
        return;
    }
    q->ring[(q->head + q->count) % t->cap] = s;
    size_t n = ++q->count;
    pthread_mutex_unlock(&q->lock);
    if (n >= (size_t)t->cfg->bsp_batch)
        otlp_batcher_kick(t->batcher);
}

/* Moves up to max spans out of the queues into t->batch, starting one
 * queue further on each call, so no worker's spans wait behind another's.
 * The batcher's thread, like the other ops below. */
static size_t take(void *owner, size_t max)
{
    struct tracer *t = owner;
    struct span **out = t->batch;
    size_t n = 0;
    for (int k = 0; k < t->nq && n < max; k++) {
        struct squeue *q = &t->q[(t->next_q + k) % t->nq];
        pthread_mutex_lock(&q->lock);
        for (; q->count && n < max; q->count--) {
            out[n++] = q->ring[q->head];
            q->head = (q->head + 1) % t->cap;
        }
        pthread_mutex_unlock(&q->lock);
    }
    t->next_q = (t->next_q + 1) % t->nq;
    return n;
}

static size_t queued(void *owner)
{
    struct tracer *t = owner;
    size_t n = 0;
    for (int i = 0; i < t->nq; i++) {
        pthread_mutex_lock(&t->q[i].lock);
        n += t->q[i].count;
        pthread_mutex_unlock(&t->q[i].lock);
    }
    return n;
}

static int encode(void *owner, size_t n, uint8_t **out, size_t *len)
{
    struct tracer *t = owner;
    return otlp_encode_traces(&t->cfg->resource, t->batch, n, out, len);
}

static void release(void *owner, size_t n)
{
    struct tracer *t = owner;
    for (size_t i = 0; i < n; i++)
        span_free(t->batch[i]);
}

static const struct otlp_batch_ops span_ops = {
    .thread_name = "trace exporter",
    .items = "span(s)",
    .take = take,
    .queued = queued,
    .encode = encode,
    .release = release,
    .response = "ExportTraceServiceResponse",
    .failure = "trace export failed; spans are counted in shoal_telemetry_failed_total and "
               "the run goes on",
};

struct tracer *tracer_new(const struct otel_config *cfg, int nqueues, struct runmetrics *m,
                          char *err, size_t errlen)
{
    struct tracer *t = calloc(1, sizeof *t);
    if (!t)
        goto oom;
    t->cfg = cfg;
    t->nq = nqueues > 0 ? nqueues : 1;
    t->cap = (size_t)cfg->bsp_queue;
    t->q = aligned_alloc(64, sizeof *t->q * (size_t)t->nq);
    t->batch = calloc((size_t)cfg->bsp_batch, sizeof *t->batch);
    if (!t->q || !t->batch)
        goto oom;
    memset(t->q, 0, sizeof *t->q * (size_t)t->nq);
    for (int i = 0; i < t->nq; i++) {
        pthread_mutex_init(&t->q[i].lock, NULL);
        t->q[i].ring = calloc(t->cap, sizeof *t->q[i].ring);
        if (!t->q[i].ring)
            goto oom;
    }
    const char *sig[1] = {"traces"};
    t->exported = metrics_series(m->tel_exported, sig, NULL, 1);
    t->dropped = metrics_series(m->tel_dropped, sig, NULL, 1);
    t->failed = metrics_series(m->tel_failed, sig, NULL, 1);
    struct otlp_batcher_config bc = {
        .target = &cfg->traces,
        .batch = (size_t)cfg->bsp_batch,
        .delay_ms = cfg->bsp_delay_ms,
        .timeout_ms = cfg->bsp_timeout_ms,
        .exported = t->exported,
        .failed = t->failed,
    };
    t->batcher = otlp_batcher_start(&bc, &span_ops, t, err, errlen);
    if (!t->batcher)
        goto fail;
    return t;
oom:
    snprintf(err, errlen, "out of memory starting the trace exporter");
fail:
    if (t) {
        for (int i = 0; t->q && i < t->nq; i++) {
            pthread_mutex_destroy(&t->q[i].lock);
            free(t->q[i].ring);
        }
        free(t->q);
        free(t->batch);
        free(t);
    }
    return NULL;
}

void tracer_shutdown(struct tracer *t)
{
    if (!t)
        return;
    otlp_batcher_stop(t->batcher);
    /* what a worker submitted after the flush took its last batch */
    for (int i = 0; i < t->nq; i++) {
        for (size_t j = 0; j < t->q[i].count; j++)
            span_free(t->q[i].ring[(t->q[i].head + j) % t->cap]);
        pthread_mutex_destroy(&t->q[i].lock);
        free(t->q[i].ring);
    }
    free(t->q);
    free(t->batch);
    free(t);
}
