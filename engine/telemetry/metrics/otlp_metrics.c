/* otlp_metrics.c - the OTLP metrics exporter (see otlp_metrics.h): an
 * encoder that walks the registry into ExportMetricsServiceRequest, and
 * an otlp_batcher whose "batch" is one snapshot of the registry.
 *
 * Threads: otlp_metrics_new and otlp_metrics_shutdown run on the main
 * thread; everything else on the batcher's thread. The batcher calls take()
 * when the interval is up (or at shutdown); take() encodes a snapshot into
 * x->msg and returns its data points, encode() hands x->msg over. The only
 * thing shared is x->stopping, set by shutdown so that the flush takes one
 * last snapshot and then no more. */
#include "telemetry/metrics/otlp_metrics.h"
#include "base/hex.h"
#include "base/clock.h"

#include "metrics_service.pb-c.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/metrics/metrics.h"
#include "telemetry/send/otlp_common.h"
#include "telemetry/send/otlp_send.h"
#include "base/utf8.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Metrics__V1__Metric pb_metric;
typedef Opentelemetry__Proto__Metrics__V1__Sum pb_sum;
typedef Opentelemetry__Proto__Metrics__V1__Gauge pb_gauge;
typedef Opentelemetry__Proto__Metrics__V1__Histogram pb_histogram;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint pb_number;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint pb_hpoint;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar pb_exemplar;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics pb_scope_metrics;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics pb_resource_metrics;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest pb_request;

#define PB(fn) opentelemetry__proto__metrics__v1__##fn
#define PB_REQUEST(fn)                                                                             \
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__##fn
#define CUMULATIVE                                                                                 \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE

/* ------------------------------------------------------------ encoding */

/* The message tree of one request lives in an arena: a list of blocks,
 * zeroed as they are handed out, freed at once after packing. */
struct block {
    struct block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

struct arena {
    struct block *head;
    int oom;
};

static void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (!(b = malloc(sizeof *b + cap))) {
            a->oom = 1;
            return NULL;
        }
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

static void arena_free(struct arena *a)
{
    while (a->head) {
        struct block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* s (len bytes) as a NUL-terminated string of valid UTF-8, as protobuf-c
 * wants its strings. NULL on OOM. */
static char *arena_text(struct arena *a, const char *s, size_t len)
{
    char *out = arena_alloc(a, utf8_clean_size(s, len) + 1);
    if (out)
        out[utf8_clean(out, s, len)] = 0;
    return out;
}

/* A family's Metric, and where its points sit in builder.points. */
struct family_out {
    pb_metric *m;
    enum metric_type type;
    size_t first, n;
};

struct builder {
    struct arena a;
    uint64_t start_ns, now_ns;
    void **points; /* pb_number * or pb_hpoint *, family after family */
    size_t npoints, pcap;
    struct family_out *fams;
    size_t nfams, fcap;
    const struct metric_family *cur;
};

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * size);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* The Metric of p's family, begun when its first series arrives. */
static struct family_out *family_begin(struct builder *b, const struct metric_family *f)
{
    if (grow((void **)&b->fams, &b->fcap, b->nfams + 1, sizeof *b->fams) != 0)
        return NULL;
    struct family_out *fo = &b->fams[b->nfams];
    pb_metric *m = arena_alloc(&b->a, sizeof *m);
    if (!m)
        return NULL;
    PB(metric__init)(m);
    const char *name = metrics_family_name(f), *help = metrics_family_help(f);
    m->name = arena_text(&b->a, name, strlen(name));
    m->description = arena_text(&b->a, help, strlen(help));
    fo->type = metrics_family_type(f);
    if (fo->type == METRIC_COUNTER) {
        pb_sum *s = arena_alloc(&b->a, sizeof *s);
        if (s) {
            PB(sum__init)(s);
            s->aggregation_temporality = CUMULATIVE;
            s->is_monotonic = 1;
        }
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        m->sum = s;
    } else if (fo->type == METRIC_GAUGE) {
        pb_gauge *g = arena_alloc(&b->a, sizeof *g);
        if (g)
            PB(gauge__init)(g);
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        m->gauge = g;
    } else {
        pb_histogram *h = arena_alloc(&b->a, sizeof *h);
        if (h) {
            PB(histogram__init)(h);
            h->aggregation_temporality = CUMULATIVE;
        }
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        m->histogram = h;
    }
    if (b->a.oom)
        return NULL;
    fo->m = m;
    fo->first = b->npoints;
    fo->n = 0;
    b->nfams++;
    b->cur = f;
    return fo;
}

/* The labels of p as attributes: *n of them in a malloc'd array. */
static pb_kv **labels(struct builder *b, const struct metric_point *p, size_t *n)
{
    int nl = metrics_family_nlabels(p->family);
    *n = (size_t)nl;
    if (!nl)
        return NULL;
    pb_kv **kvp = arena_alloc(&b->a, (size_t)nl * sizeof *kvp);
    pb_kv *kv = arena_alloc(&b->a, (size_t)nl * sizeof *kv);
    pb_any *any = arena_alloc(&b->a, (size_t)nl * sizeof *any);
    if (!kvp || !kv || !any)
        return NULL;
    for (int i = 0; i < nl; i++) {
        opentelemetry__proto__common__v1__key_value__init(&kv[i]);
        opentelemetry__proto__common__v1__any_value__init(&any[i]);
        kv[i].key = (char *)metrics_family_label(p->family, i);
        any[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        any[i].string_value = arena_text(&b->a, p->values[i], p->lens[i]);
        kv[i].value = &any[i];
        kvp[i] = &kv[i];
    }
    return kvp;
}

static pb_exemplar *exemplar(struct builder *b, const struct metric_exemplar *e)
{
    pb_exemplar *x = arena_alloc(&b->a, sizeof *x);
    uint8_t *id = arena_alloc(&b->a, 16);
    if (!x || !id)
        return NULL;
    PB(exemplar__init)(x);
    x->time_unix_nano = e->ts > 0 ? (uint64_t)(e->ts * 1e9) : 0;
    x->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
    x->as_double = e->value;
    for (int i = 0; i < 16; i++) /* the registry keeps only well-formed ids */
        id[i] = (uint8_t)(hex_digit(e->trace_id[2 * i]) << 4 | hex_digit(e->trace_id[2 * i + 1]));
    x->trace_id.data = id;
    x->trace_id.len = 16;
    return x;
}

static void *histogram_point(struct builder *b, const struct metric_point *p)
{
    pb_hpoint *h = arena_alloc(&b->a, sizeof *h);
    if (!h)
        return NULL;
    PB(histogram_data_point__init)(h);
    int nb = metrics_family_nbuckets(p->family);
    h->start_time_unix_nano = b->start_ns;
    h->time_unix_nano = b->now_ns;
    h->count = p->count;
    h->sum_present_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
    h->sum = p->sum;
    h->n_bucket_counts = (size_t)nb + 1;
    h->bucket_counts = arena_alloc(&b->a, h->n_bucket_counts * sizeof *h->bucket_counts);
    if (!h->bucket_counts)
        return NULL;
    memcpy(h->bucket_counts, p->buckets, h->n_bucket_counts * sizeof *h->bucket_counts);
    h->n_explicit_bounds = (size_t)nb;
    h->explicit_bounds = (double *)metrics_family_buckets(p->family); /* only read */
    if (p->nexemplars) {
        h->exemplars = arena_alloc(&b->a, (size_t)p->nexemplars * sizeof *h->exemplars);
        if (!h->exemplars)
            return NULL;
        for (int i = 0; i < p->nexemplars; i++)
            if (!(h->exemplars[i] = exemplar(b, &p->exemplars[i])))
                return NULL;
        h->n_exemplars = (size_t)p->nexemplars;
    }
    h->attributes = labels(b, p, &h->n_attributes);
    return h->n_attributes && !h->attributes ? NULL : h;
}

static void *number_point(struct builder *b, const struct metric_point *p)
{
    pb_number *d = arena_alloc(&b->a, sizeof *d);
    if (!d)
        return NULL;
    PB(number_data_point__init)(d);
    d->start_time_unix_nano = b->start_ns;
    d->time_unix_nano = b->now_ns;
    d->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    d->as_double = p->value;
    d->attributes = labels(b, p, &d->n_attributes);
    return d->n_attributes && !d->attributes ? NULL : d;
}

static void on_point(const struct metric_point *p, void *arg)
{
    struct builder *b = arg;
    if (b->a.oom)
        return;
    struct family_out *fo =
        b->cur == p->family ? &b->fams[b->nfams - 1] : family_begin(b, p->family);
    void *pt = NULL;
    if (fo && grow((void **)&b->points, &b->pcap, b->npoints + 1, sizeof *b->points) == 0)
        pt = fo->type == METRIC_HISTOGRAM ? histogram_point(b, p) : number_point(b, p);
    if (!pt) {
        b->a.oom = 1;
        return;
    }
    b->points[b->npoints++] = pt;
    fo->n++;
}

int otlp_encode_metrics(const struct otel_resource *res, struct registry *reg, uint64_t start_ns,
                        uint64_t now_ns, uint8_t **out, size_t *len, size_t *npoints)
{
    *out = NULL;
    *len = 0;
    *npoints = 0;
    struct builder b = {.start_ns = start_ns, .now_ns = now_ns};
    metrics_walk(reg, on_point, &b);
    int rc = -1;
    size_t nres = (size_t)res->attrs.n;
    pb_kv *kv = arena_alloc(&b.a, (nres ? nres : 1) * sizeof *kv);
    pb_any *any = arena_alloc(&b.a, (nres ? nres : 1) * sizeof *any);
    pb_kv **kvp = arena_alloc(&b.a, (nres ? nres : 1) * sizeof *kvp);
    pb_metric **metrics = arena_alloc(&b.a, (b.nfams ? b.nfams : 1) * sizeof *metrics);
    if (b.a.oom)
        goto out;
    /* the points are all in: each family takes its run of them */
    for (size_t i = 0; i < b.nfams; i++) {
        struct family_out *fo = &b.fams[i];
        void **pts = &b.points[fo->first];
        if (fo->type == METRIC_COUNTER) {
            fo->m->sum->n_data_points = fo->n;
            fo->m->sum->data_points = (pb_number **)pts;
        } else if (fo->type == METRIC_GAUGE) {
            fo->m->gauge->n_data_points = fo->n;
            fo->m->gauge->data_points = (pb_number **)pts;
        } else {
            fo->m->histogram->n_data_points = fo->n;
            fo->m->histogram->data_points = (pb_hpoint **)pts;
        }
        metrics[i] = fo->m;
    }

    pb_resource resource;
    pb_scope scope;
    otlp_put_resource(res, kv, any, kvp, &resource, &scope);

    pb_scope_metrics sm, *smp = &sm;
    PB(scope_metrics__init)(&sm);
    sm.scope = &scope;
    sm.n_metrics = b.nfams;
    sm.metrics = b.nfams ? metrics : NULL;

    pb_resource_metrics rm, *rmp = &rm;
    PB(resource_metrics__init)(&rm);
    rm.resource = &resource;
    rm.n_scope_metrics = 1;
    rm.scope_metrics = &smp;

    pb_request req;
    PB_REQUEST(init)(&req);
    req.n_resource_metrics = 1;
    req.resource_metrics = &rmp;

    size_t size = PB_REQUEST(get_packed_size)(&req);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf || PB_REQUEST(pack)(&req, buf) != size) {
        free(buf);
        goto out;
    }
    *out = buf;
    *len = size;
    *npoints = b.npoints;
    rc = 0;
out:
    arena_free(&b.a);
    free(b.points);
    free(b.fams);
    return rc;
}

/* ------------------------------------------------------------ the exporter */

struct otlp_metrics {
    const struct otel_config *cfg;
    struct registry *reg;
    uint64_t start_ns;
    _Atomic int stopping;
    int final_taken; /* the batcher's thread */
    uint8_t *msg;    /* the batcher's thread: the snapshot taken */
    size_t len;
    struct metric_series *exported, *failed;
    struct otlp_batcher *batcher;
};

/* The batcher's ops: its thread only. A snapshot is one batch of as many
 * items as it has data points; once shutdown began, one more and no more. */
static size_t take(void *owner, size_t max)
{
    struct otlp_metrics *x = owner;
    (void)max;
    if (atomic_load(&x->stopping)) {
        if (x->final_taken)
            return 0;
        x->final_taken = 1;
    }
    free(x->msg);
    size_t n = 0;
    if (otlp_encode_metrics(&x->cfg->resource, x->reg, x->start_ns, clock_unix_ns(), &x->msg,
                            &x->len, &n) != 0) {
        metric_add(x->failed, 1); /* out of memory: no snapshot, counted as one failure */
        return 0;
    }
    if (n == 0) {
        free(x->msg);
        x->msg = NULL;
    }
    return n;
}

static size_t queued(void *owner)
{
    (void)owner;
    return 0; /* a snapshot is taken when due, never waiting */
}

static int encode(void *owner, size_t n, uint8_t **out, size_t *len)
{
    struct otlp_metrics *x = owner;
    (void)n;
    *out = x->msg;
    *len = x->len;
    x->msg = NULL;
    return *out ? 0 : -1;
}

static void release(void *owner, size_t n)
{
    struct otlp_metrics *x = owner;
    (void)n;
    free(x->msg); /* taken but never encoded: the flush ran out of time */
    x->msg = NULL;
}

static const struct otlp_batch_ops metric_ops = {
    .thread_name = "OTLP metrics exporter",
    .items = "data point(s)",
    .take = take,
    .queued = queued,
    .encode = encode,
    .release = release,
    .response = "ExportMetricsServiceResponse",
    .failure = "otlp metrics export failed; data points are counted in "
               "shoal_telemetry_failed_total and the run goes on",
};

struct otlp_metrics *otlp_metrics_new(const struct otel_config *cfg, struct registry *m,
                                      char *err, size_t errlen)
{
    if (!cfg->metrics_on) {
        snprintf(err, errlen, "OTLP metrics are off (no --otlp-metrics or OTEL_METRICS_EXPORTER)");
        return NULL;
    }
    struct otlp_metrics *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory starting the OTLP metrics exporter");
        return NULL;
    }
    x->cfg = cfg;
    x->reg = m;
    x->start_ns = clock_unix_ns();
    /* all three declared now, so the first export shows dropped at 0 too */
    struct telemetry_counts tc = metrics_telemetry_counts(m, "metrics");
    x->exported = tc.exported;
    x->failed = tc.failed;
    struct otlp_batcher_config bc = {
        .target = &cfg->metrics,
        .batch = SIZE_MAX,
        .delay_ms = cfg->metric_interval_ms,
        .timeout_ms = cfg->metric_timeout_ms,
        .counts = tc,
    };
    x->batcher = otlp_batcher_start(&bc, &metric_ops, x, err, errlen);
    if (!x->batcher) {
        free(x);
        return NULL;
    }
    return x;
}

void otlp_metrics_shutdown(struct otlp_metrics *x)
{
    if (!x)
        return;
    atomic_store(&x->stopping, 1);
    otlp_batcher_stop(x->batcher);
    free(x->msg);
    free(x);
}
