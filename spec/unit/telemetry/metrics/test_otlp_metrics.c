/* test_otlp_metrics.c - OTLP metrics as a collector and a user rely on them.
 *
 * otlp_encode_metrics: the request read back with protobuf-c. Every family
 * of a registry is one Metric named as on /metrics with its help; a counter
 * is a monotonic cumulative Sum, a gauge a Gauge, a histogram a cumulative
 * Histogram with the family's bounds, per-bucket counts (+Inf last), count,
 * sum and its exemplars' trace ids; every series is one point whose
 * attributes are its labels (valid UTF-8, the overflow series as
 * __overflow__), summed over the shards, from the start time to now; the
 * resource and scope are the traces'. The field numbers and wire types of
 * the messages shoal writes are checked as raw bytes against the published
 * metrics.proto, since a wrong number in proto/metrics.proto would
 * round-trip through protobuf-c unnoticed. metrics_walk: what it shows.
 * otel_metrics_config_load: when metrics are on, where they go, the
 * interval, timeout and temporality, and the errors a user sees. */
#include "check.h"
#include "fake_env.h"
#include "find_kv.h"
#include "telemetry/metrics/metrics.h"
#include "metrics_service.pb-c.h"
#include "telemetry/send/otel.h"
#include "telemetry/traces/otlp.h"
#include "telemetry/metrics/otlp_metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest pb_request;
typedef Opentelemetry__Proto__Metrics__V1__Metric pb_metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint pb_number;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint pb_hpoint;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
#define PB_REQUEST(fn)                                                                             \
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__##fn
#define M(x) OPENTELEMETRY__PROTO__METRICS__V1__##x
#define CUMULATIVE M(AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE)

static const char TRACE_HEX[] = "4bf92f3577b34da6a3ce929d0e0e4736";
static const uint8_t TRACE[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                  0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};

#define START_NS 1700000000000000000ull
#define NOW_NS 1700000005000000000ull

static void resource_init(struct otel_resource *r)
{
    memset(r, 0, sizeof *r);
    attrs_str(&r->attrs, "service.name", "crawl", 5);
    r->scope_name = "shoal";
    r->scope_version = "1.2.3";
}

static const pb_metric *find_metric(const pb_request *req, const char *name)
{
    const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
        req->resource_metrics[0]->scope_metrics[0];
    for (size_t i = 0; i < sm->n_metrics; i++)
        if (strcmp(sm->metrics[i]->name, name) == 0)
            return sm->metrics[i];
    return NULL;
}

/* The string value of attribute key, or NULL. */
static const char *attr(pb_kv **kv, size_t n, const char *key)
{
    const pb_kv *k = find_kv(kv, n, key);
    return k && k->value ? k->value->string_value : NULL;
}

/* The point of a sum or gauge whose label key reads value. */
static const pb_number *number_with(pb_number **p, size_t n, const char *key, const char *value)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = attr(p[i]->attributes, p[i]->n_attributes, key);
        if (v && strcmp(v, value) == 0)
            return p[i];
    }
    return NULL;
}

/* A registry like the engine's: a counter with labels updated from two
 * shards, a gauge without labels, a histogram with an exemplar. */
static struct registry *sample_registry(void)
{
    char err[256];
    struct registry *r = registry_new(2, 3);
    const char *status[1] = {"status"};
    struct metric_family *jobs =
        metrics_declare(r, METRIC_ENGINE, METRIC_COUNTER, "jobs_total", "Jobs finished", status, 1,
                        NULL, 0, err, sizeof err);
    struct metric_family *depth =
        metrics_declare(r, METRIC_ENGINE, METRIC_GAUGE, "queue_depth", "Jobs waiting", NULL, 0,
                        NULL, 0, err, sizeof err);
    const char *site[1] = {"site"};
    const double bounds[2] = {0.1, 1};
    struct metric_family *dur = metrics_declare(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "fetch_seconds",
                                                "Fetch time", site, 1, bounds, 2, err, sizeof err);
    metrics_declare(r, METRIC_SCRIPT, METRIC_GAUGE, "never_set", "No series yet", site, 1, NULL, 0,
                    err, sizeof err);
    const char *ok[1] = {"ok"}, *failed[1] = {"failed"};
    metrics_thread_shard(0);
    metric_add(metrics_series(jobs, ok, NULL, 1), 2);
    metrics_thread_shard(1);
    metric_add(metrics_series(jobs, ok, NULL, 1), 1);
    metric_add(metrics_series(jobs, failed, NULL, 1), 1);
    metrics_thread_shard(0);
    metric_set(metrics_series(depth, NULL, NULL, 0), 7);
    /* a byte that is not UTF-8 in a label value */
    const char *bad[1] = {"caf\xe9"};
    struct metric_series *h = metrics_series(dur, bad, NULL, 1);
    metric_observe(h, 0.05);
    metric_observe_exemplar(h, 0.5, TRACE_HEX, 1700000001.5);
    metric_observe(h, 3);
    return r;
}

static void test_encode(void)
{
    struct otel_resource res;
    resource_init(&res);
    struct registry *r = sample_registry();
    uint8_t *buf;
    size_t len, npoints;
    CHECK_EQ_INT(otlp_encode_metrics(&res, r, START_NS, NOW_NS, &buf, &len, &npoints), 0);
    CHECK_EQ_INT(npoints, 4); /* jobs ok, failed; depth; one histogram series */
    pb_request *req = PB_REQUEST(unpack)(NULL, len, buf);
    CHECK(req != NULL);
    if (!req)
        goto out;
    CHECK_EQ_INT(req->n_resource_metrics, 1);
    const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[0];
    CHECK_STR(attr(rm->resource->attributes, rm->resource->n_attributes, "service.name"), "crawl");
    CHECK_EQ_INT(rm->n_scope_metrics, 1);
    CHECK_STR(rm->scope_metrics[0]->scope->name, "shoal");
    CHECK_STR(rm->scope_metrics[0]->scope->version, "1.2.3");
    /* a family without series is left out */
    CHECK_EQ_INT(rm->scope_metrics[0]->n_metrics, 3);
    CHECK(find_metric(req, "never_set") == NULL);

    const pb_metric *jobs = find_metric(req, "jobs_total");
    CHECK(jobs && jobs->data_case == M(METRIC__DATA_SUM));
    if (jobs && jobs->data_case == M(METRIC__DATA_SUM)) {
        CHECK_STR(jobs->description, "Jobs finished");
        CHECK_EQ_INT(jobs->sum->aggregation_temporality, CUMULATIVE);
        CHECK_EQ_INT(jobs->sum->is_monotonic, 1);
        CHECK_EQ_INT(jobs->sum->n_data_points, 2);
        const pb_number *ok =
            number_with(jobs->sum->data_points, jobs->sum->n_data_points, "status", "ok");
        const pb_number *failed =
            number_with(jobs->sum->data_points, jobs->sum->n_data_points, "status", "failed");
        CHECK(ok && failed);
        if (ok && failed) {
            CHECK(ok->value_case == M(NUMBER_DATA_POINT__VALUE_AS_DOUBLE));
            CHECK(ok->as_double == 3); /* 2 on one shard, 1 on the other */
            CHECK(failed->as_double == 1);
            CHECK_EQ_INT(ok->n_attributes, 1);
            CHECK(ok->start_time_unix_nano == START_NS);
            CHECK(ok->time_unix_nano == NOW_NS);
        }
    }

    const pb_metric *depth = find_metric(req, "queue_depth");
    CHECK(depth && depth->data_case == M(METRIC__DATA_GAUGE));
    if (depth && depth->data_case == M(METRIC__DATA_GAUGE)) {
        CHECK_EQ_INT(depth->gauge->n_data_points, 1);
        CHECK(depth->gauge->data_points[0]->as_double == 7);
        CHECK_EQ_INT(depth->gauge->data_points[0]->n_attributes, 0);
        CHECK(depth->gauge->data_points[0]->time_unix_nano == NOW_NS);
    }

    const pb_metric *dur = find_metric(req, "fetch_seconds");
    CHECK(dur && dur->data_case == M(METRIC__DATA_HISTOGRAM));
    if (dur && dur->data_case == M(METRIC__DATA_HISTOGRAM)) {
        CHECK_EQ_INT(dur->histogram->aggregation_temporality, CUMULATIVE);
        CHECK_EQ_INT(dur->histogram->n_data_points, 1);
        const pb_hpoint *h = dur->histogram->data_points[0];
        CHECK_STR(attr(h->attributes, h->n_attributes, "site"), "caf\xef\xbf\xbd");
        CHECK_EQ_INT(h->count, 3);
        CHECK(h->sum_present_case == M(HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM));
        CHECK(fabs(h->sum - 3.55) < 1e-9);
        CHECK_EQ_INT(h->n_explicit_bounds, 2);
        CHECK(h->n_explicit_bounds == 2 && h->explicit_bounds[0] == 0.1 &&
              h->explicit_bounds[1] == 1);
        CHECK_EQ_INT(h->n_bucket_counts, 3);
        if (h->n_bucket_counts == 3) {
            CHECK_EQ_INT(h->bucket_counts[0], 1); /* per bucket, not cumulative */
            CHECK_EQ_INT(h->bucket_counts[1], 1);
            CHECK_EQ_INT(h->bucket_counts[2], 1); /* +Inf */
        }
        CHECK(h->start_time_unix_nano == START_NS && h->time_unix_nano == NOW_NS);
        CHECK_EQ_INT(h->n_exemplars, 1);
        if (h->n_exemplars == 1) {
            const Opentelemetry__Proto__Metrics__V1__Exemplar *e = h->exemplars[0];
            CHECK(e->trace_id.len == 16 && memcmp(e->trace_id.data, TRACE, 16) == 0);
            CHECK(e->as_double == 0.5);
            CHECK(e->time_unix_nano / 1000000 == 1700000001500ull);
        }
    }
    PB_REQUEST(free_unpacked)(req, NULL);
out:
    free(buf);
    registry_free(r);
    attrs_clear(&res.attrs);
}

/* Past the family's cap (3 series here), new label sets fold into one
 * series whose attributes read __overflow__. */
static void test_overflow(void)
{
    struct otel_resource res;
    resource_init(&res);
    char err[256];
    struct registry *r = registry_new(1, 2);
    const char *l[2] = {"a", "b"};
    struct metric_family *f = metrics_declare(r, METRIC_SCRIPT, METRIC_COUNTER, "hits_total", "", l,
                                              2, NULL, 0, err, sizeof err);
    for (int i = 0; i < 5; i++) {
        char v[8];
        snprintf(v, sizeof v, "%d", i);
        const char *vals[2] = {v, "x"};
        metric_add(metrics_series(f, vals, NULL, 2), 1);
    }
    uint8_t *buf;
    size_t len, npoints;
    CHECK_EQ_INT(otlp_encode_metrics(&res, r, START_NS, NOW_NS, &buf, &len, &npoints), 0);
    pb_request *req = PB_REQUEST(unpack)(NULL, len, buf);
    const pb_metric *m = req ? find_metric(req, "hits_total") : NULL;
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_INT(m->sum->n_data_points, 3); /* two series and the overflow */
        const pb_number *o =
            number_with(m->sum->data_points, m->sum->n_data_points, "a", "__overflow__");
        CHECK(o && o->as_double == 3);
        CHECK(o && strcmp(attr(o->attributes, o->n_attributes, "b"), "__overflow__") == 0);
        const pb_number *one = number_with(m->sum->data_points, m->sum->n_data_points, "a", "1");
        CHECK(one && strcmp(attr(one->attributes, one->n_attributes, "b"), "x") == 0);
    }
    if (req)
        PB_REQUEST(free_unpacked)(req, NULL);
    free(buf);
    registry_free(r);

    /* nothing to show: a valid request with no metrics */
    r = registry_new(1, 10);
    CHECK_EQ_INT(otlp_encode_metrics(&res, r, START_NS, NOW_NS, &buf, &len, &npoints), 0);
    CHECK_EQ_INT(npoints, 0);
    req = PB_REQUEST(unpack)(NULL, len, buf);
    CHECK(req && req->n_resource_metrics == 1 &&
          req->resource_metrics[0]->scope_metrics[0]->n_metrics == 0);
    if (req)
        PB_REQUEST(free_unpacked)(req, NULL);
    free(buf);
    registry_free(r);
    attrs_clear(&res.attrs);
}

/* ------------------------------------------------------------ raw bytes */

struct field {
    unsigned num, wt;
    uint64_t v;         /* varint and fixed64 */
    const uint8_t *sub; /* length-delimited */
    size_t len;
};

static uint64_t varint(const uint8_t *b, size_t n, size_t *at)
{
    uint64_t v = 0;
    for (int shift = 0; *at < n && shift < 64; shift += 7) {
        uint8_t c = b[(*at)++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
    }
    return v;
}

/* The next field of b at *at; 0 at the end or on bytes that are not one. */
static int next_field(const uint8_t *b, size_t n, size_t *at, struct field *f)
{
    if (*at >= n)
        return 0;
    uint64_t key = varint(b, n, at);
    f->num = (unsigned)(key >> 3);
    f->wt = (unsigned)(key & 7);
    f->sub = NULL;
    f->len = 0;
    if (f->wt == 0) {
        f->v = varint(b, n, at);
    } else if (f->wt == 1) {
        if (*at + 8 > n)
            return 0;
        memcpy(&f->v, b + *at, 8);
        *at += 8;
    } else if (f->wt == 2) {
        f->len = (size_t)varint(b, n, at);
        if (*at + f->len > n)
            return 0;
        f->sub = b + *at;
        *at += f->len;
    } else {
        return 0;
    }
    return 1;
}

/* The first field num of the message b, or 0. */
static int field_of(const uint8_t *b, size_t n, unsigned num, struct field *f)
{
    size_t at = 0;
    while (next_field(b, n, &at, f))
        if (f->num == num)
            return 1;
    return 0;
}

/* Records the field numbers and wire types a message holds, as "n:wt ". */
static void tags(const uint8_t *b, size_t n, char *out, size_t cap)
{
    size_t at = 0, o = 0;
    struct field f;
    out[0] = 0;
    while (next_field(b, n, &at, &f) && o + 8 < cap) {
        char t[16];
        snprintf(t, sizeof t, "%u:%u ", f.num, f.wt);
        if (!strstr(out, t))
            o += (size_t)snprintf(out + o, cap - o, "%s", t);
    }
}

/* The Metric named name in a request's bytes. */
static int raw_metric(const uint8_t *b, size_t n, const char *name, struct field *m)
{
    struct field rm, sm, f;
    if (!field_of(b, n, 1, &rm) || !field_of(rm.sub, rm.len, 2, &sm))
        return 0;
    size_t at = 0;
    while (next_field(sm.sub, sm.len, &at, m))
        if (m->num == 2 && field_of(m->sub, m->len, 1, &f) && f.len == strlen(name) &&
            memcmp(f.sub, name, f.len) == 0)
            return 1;
    return 0;
}

static void test_wire(void)
{
    struct otel_resource res;
    resource_init(&res);
    struct registry *r = sample_registry();
    uint8_t *buf;
    size_t len, npoints;
    CHECK_EQ_INT(otlp_encode_metrics(&res, r, START_NS, NOW_NS, &buf, &len, &npoints), 0);
    char t[256];
    struct field m, data, pt, ex;

    /* Metric: name 1, description 2, sum 7; Sum: data_points 1,
     * aggregation_temporality 2 = 2, is_monotonic 3 = 1; NumberDataPoint:
     * start 2 and time 3 (fixed64), as_double 4 (64-bit), attributes 7 */
    CHECK(raw_metric(buf, len, "jobs_total", &m));
    tags(m.sub, m.len, t, sizeof t);
    CHECK_STR(t, "1:2 2:2 7:2 ");
    CHECK(field_of(m.sub, m.len, 7, &data));
    struct field f;
    CHECK(field_of(data.sub, data.len, 2, &f) && f.wt == 0 && f.v == 2);
    CHECK(field_of(data.sub, data.len, 3, &f) && f.wt == 0 && f.v == 1);
    CHECK(field_of(data.sub, data.len, 1, &pt));
    tags(pt.sub, pt.len, t, sizeof t);
    CHECK_STR(t, "2:1 3:1 4:1 7:2 ");
    CHECK(field_of(pt.sub, pt.len, 2, &f) && f.v == START_NS);

    /* a gauge is Metric field 5 */
    CHECK(raw_metric(buf, len, "queue_depth", &m));
    tags(m.sub, m.len, t, sizeof t);
    CHECK_STR(t, "1:2 2:2 5:2 ");

    /* Metric.histogram 9; Histogram: data_points 1, temporality 2;
     * HistogramDataPoint: attributes 9, start 2, time 3, count 4 (fixed64),
     * sum 5 (double), bucket_counts 6 and explicit_bounds 7 (packed),
     * exemplars 8; Exemplar: time 2, as_double 3, trace_id 5 */
    CHECK(raw_metric(buf, len, "fetch_seconds", &m));
    tags(m.sub, m.len, t, sizeof t);
    CHECK_STR(t, "1:2 2:2 9:2 ");
    CHECK(field_of(m.sub, m.len, 9, &data));
    tags(data.sub, data.len, t, sizeof t);
    CHECK_STR(t, "1:2 2:0 ");
    CHECK(field_of(data.sub, data.len, 1, &pt));
    tags(pt.sub, pt.len, t, sizeof t);
    CHECK_STR(t, "2:1 3:1 4:1 5:1 6:2 7:2 8:2 9:2 ");
    CHECK(field_of(pt.sub, pt.len, 4, &f) && f.v == 3);
    CHECK(field_of(pt.sub, pt.len, 6, &f) && f.len == 3 * 8);
    CHECK(field_of(pt.sub, pt.len, 7, &f) && f.len == 2 * 8);
    CHECK(field_of(pt.sub, pt.len, 8, &ex));
    tags(ex.sub, ex.len, t, sizeof t);
    CHECK_STR(t, "2:1 3:1 5:2 ");
    CHECK(field_of(ex.sub, ex.len, 5, &f) && f.len == 16 && memcmp(f.sub, TRACE, 16) == 0);
    free(buf);
    registry_free(r);
    attrs_clear(&res.attrs);
}

/* ------------------------------------------------------------ walking */

struct walk_seen {
    int points, exemplars;
    double jobs;
};

static void on_point(const struct metric_point *p, void *arg)
{
    struct walk_seen *w = arg;
    w->points++;
    w->exemplars += p->nexemplars;
    if (!strcmp(metrics_family_name(p->family), "jobs_total"))
        w->jobs += p->value;
    if (!strcmp(metrics_family_name(p->family), "fetch_seconds")) {
        CHECK_EQ_INT(metrics_family_nbuckets(p->family), 2);
        CHECK_EQ_INT(p->count, p->buckets[0] + p->buckets[1] + p->buckets[2]);
        CHECK(p->nexemplars == 1 && p->exemplars[0].bucket == 1 &&
              !strcmp(p->exemplars[0].trace_id, TRACE_HEX));
    }
}

static void test_walk(void)
{
    struct registry *r = sample_registry();
    struct walk_seen w = {0};
    CHECK_EQ_INT(metrics_walk(r, on_point, &w), 4);
    CHECK_EQ_INT(w.points, 4);
    CHECK_EQ_INT(w.exemplars, 1);
    CHECK(w.jobs == 4);
    registry_free(r);
}

/* ------------------------------------------------------------ settings */

static int load(struct otel_config *c, const char *flag, int on, char *err)
{
    if (otel_config_load(c, fake_env, flag, NULL, 0, "crawl.lua", err, 256) != 0)
        return -2;
    return otel_metrics_config_load(c, fake_env, on, err, 256);
}

static void test_config(void)
{
    struct otel_config c;
    char err[256];

    /* neither the flag nor OTEL_METRICS_EXPORTER: off, defaults set */
    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
    CHECK_EQ_INT(load(&c, NULL, 0, err), 0);
    CHECK_EQ_INT(c.metrics_on, 0);
    CHECK_EQ_INT(c.metric_interval_ms, 60000);
    CHECK_EQ_INT(c.metric_timeout_ms, 30000);
    otel_config_free(&c);

    /* the flag: the general endpoint plus /v1/metrics */
    CHECK_EQ_INT(load(&c, NULL, 1, err), 0);
    CHECK_EQ_INT(c.metrics_on, 1);
    CHECK_STR(c.metrics.url, "http://collector:4318/v1/metrics");
    otel_config_free(&c);

    /* the metrics' own endpoint as is, protocol, headers, interval */
    nvars = 0;
    set("OTEL_METRICS_EXPORTER", "otlp");
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
    set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9090/api/v1/otlp/v1/metrics");
    set("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-scope=a");
    set("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "2500");
    set("OTEL_METRIC_EXPORT_INTERVAL", "500");
    set("OTEL_METRIC_EXPORT_TIMEOUT", "1500");
    set("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Cumulative");
    CHECK_EQ_INT(load(&c, NULL, 0, err), 0);
    CHECK_EQ_INT(c.metrics_on, 1);
    CHECK_STR(c.metrics.url, "http://m:9090/api/v1/otlp/v1/metrics");
    CHECK_EQ_INT(c.metrics.nheaders, 1);
    CHECK_EQ_INT(c.metrics.timeout_ms, 2500);
    CHECK_EQ_INT(c.metric_interval_ms, 500);
    CHECK_EQ_INT(c.metric_timeout_ms, 1500);
    CHECK_STR(c.traces.url, "http://collector:4318/v1/traces");
    otel_config_free(&c);

    /* --otlp-endpoint wins, gRPC gets the service path */
    nvars = 0;
    set("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc");
    set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://ignored:1");
    CHECK_EQ_INT(load(&c, "http://127.0.0.1:4317/", 1, err), 0);
    CHECK_EQ_INT(c.metrics.protocol, OTLP_GRPC);
    CHECK_STR(
        c.metrics.url,
        "http://127.0.0.1:4317/opentelemetry.proto.collector.metrics.v1.MetricsService/Export");
    CHECK_EQ_INT(c.traces.protocol, OTLP_HTTP_PROTOBUF);
    otel_config_free(&c);

    /* OTEL_METRICS_EXPORTER=otlp alone: the local collector */
    nvars = 0;
    set("OTEL_METRICS_EXPORTER", "otlp");
    CHECK_EQ_INT(load(&c, NULL, 0, err), 0);
    CHECK_STR(c.metrics.url, "http://localhost:4318/v1/metrics");
    CHECK_EQ_INT(c.traces_on, 0);
    otel_config_free(&c);

    /* none wins over the flag */
    nvars = 0;
    set("OTEL_METRICS_EXPORTER", "none");
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
    CHECK_EQ_INT(load(&c, NULL, 1, err), 0);
    CHECK_EQ_INT(c.metrics_on, 0);
    otel_config_free(&c);

    /* the errors a user sees */
    nvars = 0;
    CHECK_EQ_INT(load(&c, NULL, 1, err), -1);
    CHECK(strstr(err, "--otlp-metrics needs an OTLP endpoint") != NULL);
    CHECK_EQ_INT(c.metrics_on, 0);
    otel_config_free(&c);

    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
    set("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta");
    CHECK_EQ_INT(load(&c, NULL, 1, err), -1);
    CHECK(strstr(err, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta") &&
          strstr(err, "cumulative"));
    otel_config_free(&c);

    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
    set("OTEL_METRIC_EXPORT_INTERVAL", "0");
    CHECK_EQ_INT(load(&c, NULL, 1, err), -1);
    CHECK(strstr(err, "OTEL_METRIC_EXPORT_INTERVAL") != NULL);
    otel_config_free(&c);

    nvars = 0;
    set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
    set("OTEL_METRIC_EXPORT_TIMEOUT", "soon");
    CHECK_EQ_INT(load(&c, NULL, 1, err), -1);
    CHECK(strstr(err, "OTEL_METRIC_EXPORT_TIMEOUT=soon") != NULL);
    otel_config_free(&c);

    nvars = 0;
    set("OTEL_METRICS_EXPORTER", "prometheus");
    CHECK_EQ_INT(load(&c, NULL, 1, err), -1);
    CHECK(strstr(err, "OTEL_METRICS_EXPORTER=prometheus") != NULL);
    otel_config_free(&c);
}

int main(void)
{
    test_encode();
    test_overflow();
    test_wire();
    test_walk();
    test_config();
    return check_done();
}
