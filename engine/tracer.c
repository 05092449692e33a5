/* tracer.c - the batch span processor and its exporter thread (see tracer.h).
 *
 * Threads: tracer_submit runs on worker threads and takes only its own
 * queue's mutex; when its queue reaches a batch it wakes the exporter
 * (t->lock + cond, once per batch). The exporter thread takes each queue's
 * mutex only to move spans out. tracer_new and tracer_shutdown belong to
 * the main thread. */
#include "tracer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "logfmt.h"
#include "metrics.h"
#include "otlp.h"
#include "otlp_send.h"
#include "runmetrics.h"
#include "worker.h"

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
    struct otlp_sender *sender;
    struct metric_series *exported, *dropped, *failed;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping; /* under lock */
    _Atomic int kicked;
    int warned; /* exporter thread only */
    int down;   /* the last batch was given up on: at shutdown, no retries */
    int next_q; /* where take() starts */
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
    if (n >= (size_t)t->cfg->bsp_batch && !atomic_exchange(&t->kicked, 1)) {
        pthread_mutex_lock(&t->lock);
        pthread_cond_signal(&t->cond);
        pthread_mutex_unlock(&t->lock);
    }
}

/* Moves up to max spans out of the queues, starting one queue further on
 * each call, so no worker's spans wait behind another's. Exporter thread. */
static size_t take(struct tracer *t, struct span **out, size_t max)
{
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

static size_t queued(struct tracer *t)
{
    size_t n = 0;
    for (int i = 0; i < t->nq; i++) {
        pthread_mutex_lock(&t->q[i].lock);
        n += t->q[i].count;
        pthread_mutex_unlock(&t->q[i].lock);
    }
    return n;
}

/* Waits up to seconds for shutdown (or, with kick, a full batch). Returns
 * whether the tracer is stopping. Exporter thread. */
static int nap(struct tracer *t, double seconds, int kick)
{
    pthread_mutex_lock(&t->lock);
    if (!t->stopping && !(kick && atomic_load(&t->kicked))) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double at = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + seconds;
        ts.tv_sec = (time_t)at;
        ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    }
    int stopping = t->stopping;
    pthread_mutex_unlock(&t->lock);
    return stopping;
}

static void warn_once(struct tracer *t, const char *what)
{
    if (t->warned)
        return;
    t->warned = 1;
    char line[1200], v[1000];
    logfmt_value(v, sizeof v, what, strlen(what));
    int n = snprintf(line, sizeof line,
                     "level=WARN msg=\"trace export failed; spans are counted in "
                     "shoal_telemetry_failed_total and the run goes on\" endpoint=%s error=%s",
                     t->cfg->traces.url, v);
    worker_log(NULL, "WARN", line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
}

/* Sends one batch, retrying while the collector may take it later and the
 * deadline allows. */
static void export_batch(struct tracer *t, struct span **spans, size_t n, double deadline,
                         int retry)
{
    uint8_t *msg = NULL;
    size_t len = 0;
    if (otlp_encode_traces(&t->cfg->resource, spans, n, &msg, &len) != 0) {
        metric_add(t->failed, (double)n);
        warn_once(t, "cannot encode spans (out of memory?)");
        return;
    }
    double backoff = 0.5;
    for (;;) {
        struct otlp_reply r;
        double left = deadline - worker_clock();
        otlp_send(t->sender, msg, len, left > 0.001 ? (long)(left * 1000) : 1, &r);
        if (r.outcome == OTLP_DONE) {
            int64_t rejected = 0;
            char why[256] = "";
            if (r.body_len)
                otlp_parse_trace_response(r.body, r.body_len, &rejected, why, sizeof why);
            if (rejected < 0 || (size_t)rejected > n)
                rejected = (int64_t)n;
            metric_add(t->exported, (double)(n - (size_t)rejected));
            if (rejected) {
                metric_add(t->failed, (double)rejected);
                char msgtxt[400];
                snprintf(msgtxt, sizeof msgtxt, "the collector rejected %lld span(s): %s",
                         (long long)rejected, why[0] ? why : "no reason given");
                warn_once(t, msgtxt);
            }
            otlp_reply_clear(&r);
            t->down = 0;
            break;
        }
        otlp_reply_clear(&r);
        double wait = r.retry_after > 0 ? r.retry_after : backoff;
        if (r.outcome == OTLP_GIVE_UP || !retry || worker_clock() + wait >= deadline) {
            metric_add(t->failed, (double)n);
            warn_once(t, r.message);
            t->down = r.outcome == OTLP_RETRY;
            break;
        }
        /* wait, unless the run ends meanwhile: then the collector that is
         * away gets no more tries (the first one of each batch at most) */
        int stop = nap(t, wait, 0);
        if (stop && r.outcome == OTLP_RETRY && !r.http_status) {
            metric_add(t->failed, (double)n);
            warn_once(t, r.message);
            t->down = 1;
            break;
        }
        backoff = backoff * 2 > 5 ? 5 : backoff * 2;
    }
    free(msg);
}

static void *exporter_main(void *arg)
{
    struct tracer *t = arg;
    size_t batch = (size_t)t->cfg->bsp_batch;
    double delay = (double)t->cfg->bsp_delay_ms / 1000;
    double timeout = (double)t->cfg->bsp_timeout_ms / 1000;
    for (;;) {
        int stopping = nap(t, delay, 1);
        atomic_store(&t->kicked, 0);
        /* at shutdown, one deadline for the whole flush */
        double deadline = worker_clock() + timeout;
        size_t n;
        while ((n = take(t, t->batch, batch)) > 0) {
            /* a collector that was away when the run ended gets one try
             * per batch, so a run without one does not wait at exit */
            export_batch(t, t->batch, n, deadline, !(stopping && t->down));
            for (size_t i = 0; i < n; i++)
                span_free(t->batch[i]);
            if (!stopping && queued(t) < batch)
                break; /* a partial batch waits for the delay */
            if (stopping && worker_clock() >= deadline) {
                /* out of time: what is left is counted, not sent */
                while ((n = take(t, t->batch, batch)) > 0) {
                    metric_add(t->failed, (double)n);
                    for (size_t i = 0; i < n; i++)
                        span_free(t->batch[i]);
                }
            }
        }
        if (stopping)
            break;
    }
    return NULL;
}

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
    t->sender = otlp_sender_new(&cfg->traces);
    if (!t->sender)
        goto oom;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    if (pthread_create(&t->thread, NULL, exporter_main, t) != 0) {
        snprintf(err, errlen, "cannot start the trace exporter thread: %s", strerror(errno));
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->cond);
        goto fail;
    }
    return t;
oom:
    snprintf(err, errlen, "out of memory starting the trace exporter");
fail:
    if (t) {
        otlp_sender_free(t->sender);
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
    pthread_mutex_lock(&t->lock);
    t->stopping = 1;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    otlp_sender_free(t->sender);
    for (int i = 0; i < t->nq; i++) {
        for (size_t j = 0; j < t->q[i].count; j++)
            span_free(t->q[i].ring[(t->q[i].head + j) % t->cap]);
        pthread_mutex_destroy(&t->q[i].lock);
        free(t->q[i].ring);
    }
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t->q);
    free(t->batch);
    free(t);
}
