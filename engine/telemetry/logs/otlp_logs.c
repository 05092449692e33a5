/* otlp_logs.c - the OTLP logs sink (see otlp_logs.h): a bounded queue of
 * copied records in front of an otlp_batcher (otlp_send.c), and the
 * encoder of ExportLogsServiceRequest.
 *
 * Threads: otlp_logs_add runs on the logger's writer thread. It copies the
 * record into one malloc'd block with no lock held, then takes x->lock only
 * to put the block on the ring. The batcher's thread takes blocks off the
 * ring under the same lock and encodes and sends them with no lock held;
 * x->batch, x->views and x->observed are that thread's alone. The lock
 * guards ring, head, count and held. */
#include "telemetry/logs/otlp_logs.h"
#include "base/clock.h"

#include "logs_service.pb-c.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telemetry/metrics/metrics.h"
#include "telemetry/send/otlp_common.h"
#include "telemetry/send/otlp_send.h"
#include "base/utf8.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_record;
typedef Opentelemetry__Proto__Logs__V1__SeverityNumber pb_severity;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs pb_scope_logs;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs pb_resource_logs;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest pb_request;

#define PB_REQUEST(fn) opentelemetry__proto__collector__logs__v1__export_logs_service_request__##fn
#define ANY_CASE(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x##_VALUE

/* The queue bounds records (OTEL_BLRP_MAX_QUEUE_SIZE) and, so that a burst
 * of huge ones cannot take the memory, the bytes of their text as well. */
#define HELD_MAX ((size_t)32 << 20)

/* ------------------------------------------------------------ encoding */

/* Where a string is cut: LOG_MAX_VALUE bytes, moved back to the start of a
 * character so the cut does not make a broken one. */
static size_t cut_at(const char *s, size_t len)
{
    if (len <= LOG_MAX_VALUE)
        return len;
    size_t cut = LOG_MAX_VALUE;
    for (int i = 0; i < 3 && ((unsigned char)s[cut] & 0xc0) == 0x80; i++)
        cut--;
    return cut;
}

/* Room text_put needs for s: cleaned, "..." if cut, and a NUL. */
static size_t text_size(const char *s, size_t len)
{
    if (!s)
        return 1;
    size_t cut = cut_at(s, len);
    return utf8_clean_size(s, cut) + (cut < len ? 3 : 0) + 1;
}

/* Writes s at *at as a C string of valid UTF-8 (protobuf strings must be,
 * and protobuf-c wants them NUL-terminated: a NUL inside becomes U+FFFD),
 * cut as cut_at says; advances *at. */
static char *text_put(char **at, const char *s, size_t len)
{
    char *out = *at;
    size_t n = 0;
    if (s) {
        size_t cut = cut_at(s, len);
        n = utf8_clean(out, s, cut);
        if (cut < len) {
            memcpy(out + n, "...", 3);
            n += 3;
        }
    }
    out[n] = 0;
    *at = out + n + 1;
    return out;
}

static int nfields(const struct log_record *r)
{
    return r->nfields < 0 ? 0 : r->nfields > LOG_MAX_FIELDS ? LOG_MAX_FIELDS : r->nfields;
}

/* Every message of one request but the singletons, sized up front: a few
 * mallocs per request whatever it holds. */
struct msgs {
    pb_kv *kv, **kvp;
    pb_any *any; /* the attributes' values (nkv), then a body per record */
    size_t nkv;
    pb_record *rec, **recp;
    char *text;
};

static void msgs_free(struct msgs *m)
{
    free(m->kv);
    free(m->kvp);
    free(m->any);
    free(m->rec);
    free(m->recp);
    free(m->text);
}

static int msgs_alloc(struct msgs *m, const struct otel_resource *res,
                      const struct log_record *const *recs, size_t n)
{
    size_t kv = (size_t)res->attrs.n, text = 0;
    for (size_t i = 0; i < n; i++) {
        const struct log_record *r = recs[i];
        text += text_size(r->msg, r->msg_len);
        for (int f = 0; f < nfields(r); f++) {
            text += text_size(r->f[f].key, r->f[f].key_len);
            if (r->f[f].type == LOG_STR)
                text += text_size(r->f[f].s, r->f[f].len);
        }
        if (r->worker >= 0) {
            kv++;
            text += sizeof "worker.id"; /* copied like any key, see encode() */
        }
        kv += (size_t)nfields(r);
    }
    memset(m, 0, sizeof *m);
    m->nkv = kv;
    m->kv = calloc(kv + 1, sizeof *m->kv);
    m->kvp = calloc(kv + 1, sizeof *m->kvp);
    m->any = calloc(kv + n + 1, sizeof *m->any);
    m->rec = calloc(n + 1, sizeof *m->rec);
    m->recp = calloc(n + 1, sizeof *m->recp);
    m->text = malloc(text + 1);
    if (!m->kv || !m->kvp || !m->any || !m->rec || !m->recp || !m->text) {
        msgs_free(m);
        return -1;
    }
    return 0;
}

/* One field as a KeyValue (at kv/any, pointed to from kvp). */
static void put_field(const struct log_field *f, char **text, pb_kv *kv, pb_any *v, pb_kv **kvp)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = text_put(text, f->key, f->key_len);
    kv->value = v;
    if (f->type == LOG_STR) {
        v->value_case = ANY_CASE(STRING);
        v->string_value = text_put(text, f->s, f->len);
    } else if (f->type == LOG_INT) {
        v->value_case = ANY_CASE(INT);
        v->int_value = f->i;
    } else if (f->type == LOG_DBL) {
        v->value_case = ANY_CASE(DOUBLE);
        v->double_value = f->d;
    } else {
        v->value_case = ANY_CASE(BOOL);
        v->bool_value = f->i != 0;
    }
    *kvp = kv;
}

/* observed: the time each record reached the sink, or NULL (then its own
 * time is used). */
static int encode(const struct otel_resource *res, const struct log_record *const *recs,
                  const uint64_t *observed, size_t n, uint8_t **out, size_t *len)
{
    struct msgs m;
    *out = NULL;
    *len = 0;
    if (msgs_alloc(&m, res, recs, n) < 0)
        return -1;

    pb_resource resource;
    pb_scope scope;
    otlp_put_resource(res, m.kv, m.any, m.kvp, &resource, &scope);
    size_t k = (size_t)res->attrs.n; /* the records' attributes follow */

    char *text = m.text;
    pb_any *bodies = m.any + m.nkv;

    for (size_t i = 0; i < n; i++) {
        const struct log_record *r = recs[i];
        pb_record *p = &m.rec[i];
        opentelemetry__proto__logs__v1__log_record__init(p);
        p->time_unix_nano = r->time_ns;
        p->observed_time_unix_nano = observed ? observed[i] : r->time_ns;
        p->severity_number = (pb_severity)log_level_severity(r->level);
        p->severity_text = (char *)log_level_name(r->level);
        pb_any *body = &bodies[i];
        opentelemetry__proto__common__v1__any_value__init(body);
        body->value_case = ANY_CASE(STRING);
        body->string_value = text_put(&text, r->msg, r->msg_len);
        p->body = body;

        size_t first = k;
        for (int f = 0; f < nfields(r); f++, k++)
            put_field(&r->f[f], &text, &m.kv[k], &m.any[k], &m.kvp[k]);
        if (r->worker >= 0) {
            struct log_field w = {
                .key = "worker.id", .key_len = 9, .type = LOG_INT, .i = r->worker};
            put_field(&w, &text, &m.kv[k], &m.any[k], &m.kvp[k]);
            k++;
        }
        p->n_attributes = k - first;
        p->attributes = k > first ? &m.kvp[first] : NULL;

        if (r->has_ids) {
            p->trace_id.data = (uint8_t *)r->trace_id;
            p->trace_id.len = sizeof r->trace_id;
            p->span_id.data = (uint8_t *)r->span_id;
            p->span_id.len = sizeof r->span_id;
            p->flags = r->trace_flags; /* W3C flags: 1 when the job's trace is sampled */
        }
        m.recp[i] = p;
    }

    pb_scope_logs sl, *slp = &sl;
    opentelemetry__proto__logs__v1__scope_logs__init(&sl);
    sl.scope = &scope;
    sl.n_log_records = n;
    sl.log_records = n ? m.recp : NULL;

    pb_resource_logs rl, *rlp = &rl;
    opentelemetry__proto__logs__v1__resource_logs__init(&rl);
    rl.resource = &resource;
    rl.n_scope_logs = 1;
    rl.scope_logs = &slp;

    pb_request req;
    PB_REQUEST(init)(&req);
    req.n_resource_logs = 1;
    req.resource_logs = &rlp;

    size_t size = PB_REQUEST(get_packed_size)(&req);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf || PB_REQUEST(pack)(&req, buf) != size) {
        free(buf);
        msgs_free(&m);
        return -1;
    }
    msgs_free(&m);
    *out = buf;
    *len = size;
    return 0;
}

int otlp_encode_logs(const struct otel_resource *res, const struct log_record *const *recs,
                     size_t n, uint8_t **out, size_t *len)
{
    return encode(res, recs, NULL, n, out, len);
}

/* ------------------------------------------------------------ the sink */

/* A record copied for the queue: rec's strings point into text. */
struct qrec {
    struct log_record rec;
    uint64_t observed_ns;
    size_t size; /* of the block, for the held bound */
    char text[];
};

struct otlp_logs {
    const struct otel_config *cfg;
    pthread_mutex_t lock;
    struct qrec **ring;
    size_t cap, head, count, held; /* under lock */
    struct qrec **batch;           /* the batcher's thread */
    const struct log_record **views;
    uint64_t *observed;
    struct metric_series *exported, *dropped, *failed;
    struct otlp_batcher *batcher;
};

static char *copy_bytes(char **at, const char *s, size_t len)
{
    char *out = *at;
    if (len)
        memcpy(out, s, len);
    *at = out + len;
    return out;
}

/* One block holding rec and its strings, as they are (the encoder cleans
 * them on the batcher's thread, off the writer's). NULL on OOM. */
static struct qrec *copy_record(const struct log_record *r)
{
    int nf = nfields(r);
    size_t msg_len = r->msg ? r->msg_len : 0;
    size_t text = msg_len;
    for (int i = 0; i < nf; i++)
        text += r->f[i].key_len + (r->f[i].type == LOG_STR ? r->f[i].len : 0);
    struct qrec *q = malloc(sizeof *q + text);
    if (!q)
        return NULL;
    q->size = sizeof *q + text;
    q->observed_ns = clock_unix_ns();
    struct log_record *c = &q->rec;
    c->time_ns = r->time_ns;
    c->level = r->level;
    c->worker = r->worker;
    c->has_ids = r->has_ids;
    c->trace_flags = r->trace_flags;
    memcpy(c->trace_id, r->trace_id, sizeof c->trace_id);
    memcpy(c->span_id, r->span_id, sizeof c->span_id);
    char *at = q->text;
    c->msg = copy_bytes(&at, r->msg, msg_len);
    c->msg_len = msg_len;
    c->nfields = nf;
    for (int i = 0; i < nf; i++) {
        c->f[i] = r->f[i];
        c->f[i].key = copy_bytes(&at, r->f[i].key, r->f[i].key_len);
        if (r->f[i].type == LOG_STR)
            c->f[i].s = copy_bytes(&at, r->f[i].s, r->f[i].len);
    }
    return q;
}

void otlp_logs_add(struct otlp_logs *x, const struct log_record *rec)
{
    if (!x)
        return;
    struct qrec *q = copy_record(rec);
    if (!q) {
        metric_add(x->dropped, 1);
        return;
    }
    pthread_mutex_lock(&x->lock);
    if (x->count == x->cap || x->held + q->size > HELD_MAX) {
        pthread_mutex_unlock(&x->lock);
        free(q);
        metric_add(x->dropped, 1);
        return;
    }
    x->ring[(x->head + x->count) % x->cap] = q;
    x->held += q->size;
    size_t n = ++x->count;
    pthread_mutex_unlock(&x->lock);
    if (n >= (size_t)x->cfg->blrp_batch)
        otlp_batcher_kick(x->batcher);
}

/* The batcher's ops: its thread only. */
static size_t take(void *owner, size_t max)
{
    struct otlp_logs *x = owner;
    size_t n = 0;
    pthread_mutex_lock(&x->lock);
    for (; x->count && n < max; x->count--) {
        x->batch[n++] = x->ring[x->head];
        x->head = (x->head + 1) % x->cap;
    }
    pthread_mutex_unlock(&x->lock);
    return n;
}

static size_t queued(void *owner)
{
    struct otlp_logs *x = owner;
    pthread_mutex_lock(&x->lock);
    size_t n = x->count;
    pthread_mutex_unlock(&x->lock);
    return n;
}

static int encode_batch(void *owner, size_t n, uint8_t **out, size_t *len)
{
    struct otlp_logs *x = owner;
    for (size_t i = 0; i < n; i++) {
        x->views[i] = &x->batch[i]->rec;
        x->observed[i] = x->batch[i]->observed_ns;
    }
    return encode(&x->cfg->resource, x->views, x->observed, n, out, len);
}

static void release(void *owner, size_t n)
{
    struct otlp_logs *x = owner;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += x->batch[i]->size;
        free(x->batch[i]);
    }
    pthread_mutex_lock(&x->lock);
    x->held -= bytes;
    pthread_mutex_unlock(&x->lock);
}

static const struct otlp_batch_ops record_ops = {
    .thread_name = "OTLP logs exporter",
    .items = "log record(s)",
    .take = take,
    .queued = queued,
    .encode = encode_batch,
    .release = release,
    .response = "ExportLogsServiceResponse",
    .failure = "otlp logs export failed",
};

static void sink_free(struct otlp_logs *x)
{
    pthread_mutex_destroy(&x->lock);
    free(x->ring);
    free(x->batch);
    free(x->views);
    free(x->observed);
    free(x);
}

struct otlp_logs *otlp_logs_new(const struct otel_config *cfg, struct registry *m, char *err,
                                size_t errlen)
{
    if (!cfg->logs_on) {
        snprintf(err, errlen, "OTLP logs are off (no endpoint, or OTEL_LOGS_EXPORTER=none)");
        return NULL;
    }
    struct otlp_logs *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory starting the OTLP logs exporter");
        return NULL;
    }
    pthread_mutex_init(&x->lock, NULL);
    x->cfg = cfg;
    x->cap = cfg->blrp_queue > 0 ? (size_t)cfg->blrp_queue : 1;
    size_t batch = cfg->blrp_batch > 0 ? (size_t)cfg->blrp_batch : 1;
    x->ring = calloc(x->cap, sizeof *x->ring);
    x->batch = calloc(batch, sizeof *x->batch);
    x->views = calloc(batch, sizeof *x->views);
    x->observed = calloc(batch, sizeof *x->observed);
    if (!x->ring || !x->batch || !x->views || !x->observed) {
        snprintf(err, errlen, "out of memory starting the OTLP logs exporter");
        sink_free(x);
        return NULL;
    }
    struct telemetry_counts tc = metrics_telemetry_counts(m, "logs_otlp");
    x->exported = tc.exported;
    x->dropped = tc.dropped;
    x->failed = tc.failed;
    struct otlp_batcher_config bc = {
        .target = &cfg->logs,
        .batch = batch,
        .delay_ms = cfg->blrp_delay_ms,
        .timeout_ms = cfg->blrp_timeout_ms,
        .counts = tc,
    };
    x->batcher = otlp_batcher_start(&bc, &record_ops, x, err, errlen);
    if (!x->batcher) {
        sink_free(x);
        return NULL;
    }
    return x;
}

void otlp_logs_shutdown(struct otlp_logs *x)
{
    if (!x)
        return;
    otlp_batcher_stop(x->batcher);
    /* records added after the flush took its last batch: accepted, never
     * sent */
    for (; x->count; x->count--) {
        free(x->ring[x->head]);
        x->head = (x->head + 1) % x->cap;
        metric_add(x->failed, 1);
    }
    sink_free(x);
}

static void sink_add(void *sink, const struct log_record *rec, const char *line, size_t len)
{
    (void)line;
    (void)len;
    otlp_logs_add(sink, rec);
}

static void sink_shutdown(void *sink, long timeout_ms)
{
    (void)timeout_ms;
    otlp_logs_shutdown(sink);
}

const struct log_sink_ops otlp_logs_sink_ops = {sink_add, sink_shutdown};
