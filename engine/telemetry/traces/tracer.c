/* tracer.c - the batch span processor's queues (see tracer.h); the
 * exporter thread is an otlp_batcher (otlp_send.c).
 *
 * A span is encoded by the thread that ends it: tracer_submit_many packs it
 * with its queue's span encoder into the queue's fill buffer (records of a
 * 4-byte length and the span's bytes, back to back) and frees it on the
 * thread that made it. The batcher swaps a queue's full buffer for its
 * emptied one and wraps the records in place into a request; nothing is
 * copied or freed across threads. A queue holds at most OTEL_BSP_MAX_QUEUE_SIZE spans (those in
 * the fill buffer and those not yet taken from the drained one) and at
 * most buf_bytes of them in each buffer; past either, a span is dropped.
 *
 * Threads: tracer_submit_many runs on worker threads and takes only its own
 * queue's mutex, which also guards the queue's encoder; when its queue
 * reaches a batch it kicks the batcher (once per batch). The batcher's
 * thread owns each queue's drain buffer and t->batch, and takes a queue's
 * mutex only to swap buffers and count what it took. tracer_new and
 * tracer_shutdown belong to the main thread. */
#include "telemetry/traces/tracer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/metrics/metrics.h"
#include "telemetry/traces/otlp.h"
#include "telemetry/send/otlp_send.h"

#define REC_HEADER 4 /* a record's length, host order */

struct sbuf {
    uint8_t *data;
    size_t used; /* bytes of records */
};

/* The submitters' half and the batcher's half sit on cache lines of their
 * own: the batcher walking its drain buffer must not pull the line of the
 * lock every span takes. */
struct squeue {
    pthread_mutex_t lock;
    struct sbuf fill;              /* under lock */
    size_t count;                  /* under lock: in fill, and untaken in drain */
    struct otlp_span_encoder *enc; /* under lock */
    struct sbuf drain __attribute__((aligned(64))); /* the batcher's thread */
    size_t rd; /* the batcher's thread: next record in drain */
} __attribute__((aligned(64)));

struct tracer {
    const struct otel_config *cfg;
    struct squeue *q;
    int nq;
    size_t cap;       /* spans per queue */
    size_t buf_bytes; /* bytes per buffer */
    struct metric_series *exported, *dropped, *failed;
    struct otlp_batcher *batcher;
    int next_q; /* where take() starts; the batcher's thread only */
    ProtobufCBinaryData *batch; /* records in the queues' drain buffers */
};

void tracer_submit_many(struct tracer *t, int queue, struct span *const *spans, size_t n)
{
    struct squeue *q = &t->q[queue % t->nq];
    size_t held = 0, dropped = 0;
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < n; i++) {
        size_t room = q->count < t->cap ? otlp_span_prepare(q->enc, spans[i]) : 0;
        if (!room || room > UINT32_MAX || q->fill.used + REC_HEADER + room > t->buf_bytes) {
            dropped++;
            continue;
        }
        uint8_t *at = q->fill.data + q->fill.used;
        uint32_t len = (uint32_t)otlp_span_pack(q->enc, at + REC_HEADER);
        memcpy(at, &len, REC_HEADER);
        q->fill.used += REC_HEADER + len;
        q->count++;
    }
    held = q->count;
    pthread_mutex_unlock(&q->lock);
    for (size_t i = 0; i < n; i++)
        span_free(spans[i]);
    if (dropped)
        metric_add(t->dropped, (double)dropped);
    if (held >= (size_t)t->cfg->bsp_batch)
        otlp_batcher_kick(t->batcher);
}

/* Points t->batch at up to max records, starting one queue further on each
 * call, so no worker's spans wait behind another's. A queue whose drain
 * buffer is used up swaps it for its fill buffer first. The records stay
 * where they are until the next take(), which comes after the batch is
 * sent (otlp_send.h). The batcher's thread, like the other ops below. */
static size_t take(void *owner, size_t max)
{
    struct tracer *t = owner;
    size_t n = 0;
    for (int k = 0; k < t->nq && n < max; k++) {
        struct squeue *q = &t->q[(t->next_q + k) % t->nq];
        if (q->rd == q->drain.used) {
            pthread_mutex_lock(&q->lock);
            struct sbuf used_up = q->drain;
            q->drain = q->fill;
            q->fill = (struct sbuf){.data = used_up.data};
            pthread_mutex_unlock(&q->lock);
            q->rd = 0;
        }
        size_t got = 0, rd = q->rd;
        const uint8_t *data = q->drain.data;
        while (n < max && rd < q->drain.used) {
            uint32_t len;
            memcpy(&len, data + rd, REC_HEADER);
            t->batch[n].data = (uint8_t *)data + rd + REC_HEADER;
            t->batch[n].len = len;
            rd += REC_HEADER + len;
            n++;
            got++;
        }
        q->rd = rd;
        if (got) {
            pthread_mutex_lock(&q->lock);
            q->count -= got;
            pthread_mutex_unlock(&q->lock);
        }
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
    return otlp_wrap_traces(&t->cfg->resource, t->batch, n, out, len);
}

static const struct otlp_batch_ops span_ops = {
    .thread_name = "trace exporter",
    .items = "span(s)",
    .take = take,
    .queued = queued,
    .encode = encode,
    /* no release: the records are reused in place once their buffer is
     * swapped back */
    .response = "ExportTraceServiceResponse",
    .failure = "trace export failed; spans are counted in shoal_telemetry_failed_total and "
               "the run goes on",
};

/* Room per buffer: OTEL_BSP_MAX_QUEUE_SIZE spans of 512 bytes (a job's
 * span with a long URL takes about 250), and at least 1 MiB, which holds
 * even a script's span at its limit (128 attributes of 2 KiB) a few times
 * over. Pages are touched only as spans fill them. */
static size_t buffer_bytes(size_t spans)
{
    size_t b = spans * 512;
    return b < (1u << 20) ? (1u << 20) : b;
}

static void free_queues(struct tracer *t)
{
    for (int i = 0; t->q && i < t->nq; i++) {
        pthread_mutex_destroy(&t->q[i].lock);
        free(t->q[i].fill.data);
        free(t->q[i].drain.data);
        otlp_span_encoder_free(t->q[i].enc);
    }
    free(t->q);
    free(t->batch);
    free(t);
}

struct tracer *tracer_new(const struct otel_config *cfg, int nqueues, struct registry *m,
                          char *err, size_t errlen)
{
    struct tracer *t = calloc(1, sizeof *t);
    if (!t)
        goto oom;
    t->cfg = cfg;
    t->nq = nqueues > 0 ? nqueues : 1;
    t->cap = (size_t)cfg->bsp_queue;
    t->buf_bytes = buffer_bytes(t->cap);
    t->q = aligned_alloc(64, sizeof *t->q * (size_t)t->nq);
    t->batch = calloc((size_t)cfg->bsp_batch, sizeof *t->batch);
    if (!t->q || !t->batch)
        goto oom;
    memset(t->q, 0, sizeof *t->q * (size_t)t->nq);
    for (int i = 0; i < t->nq; i++) {
        struct squeue *q = &t->q[i];
        pthread_mutex_init(&q->lock, NULL);
        q->fill.data = malloc(t->buf_bytes);
        q->drain.data = malloc(t->buf_bytes);
        q->enc = otlp_span_encoder_new();
        if (!q->fill.data || !q->drain.data || !q->enc)
            goto oom;
    }
    struct telemetry_counts tc = metrics_telemetry_counts(m, "traces");
    t->exported = tc.exported;
    t->dropped = tc.dropped;
    t->failed = tc.failed;
    struct otlp_batcher_config bc = {
        .target = &cfg->traces,
        .batch = (size_t)cfg->bsp_batch,
        .delay_ms = cfg->bsp_delay_ms,
        .timeout_ms = cfg->bsp_timeout_ms,
        .counts = tc,
    };
    t->batcher = otlp_batcher_start(&bc, &span_ops, t, err, errlen);
    if (!t->batcher)
        goto fail;
    return t;
oom:
    snprintf(err, errlen, "out of memory starting the trace exporter");
fail:
    if (t)
        free_queues(t);
    return NULL;
}

void tracer_shutdown(struct tracer *t)
{
    if (!t)
        return;
    otlp_batcher_stop(t->batcher);
    /* what a worker submitted after the flush took its last batch goes
     * with the buffers */
    free_queues(t);
}
