/* test_otlp_logs.c - OTLP logs as a collector and a user rely on them.
 *
 * otlp_encode_logs: the request read back with protobuf-c (every field we
 * write: resource, scope, times, severity, body, typed attributes,
 * worker.id, ids only with has_ids), strings always valid UTF-8 and cut
 * like the log file's, and the field numbers and wire types of LogRecord
 * checked as raw bytes against the published ones (a wrong number in
 * proto/logs.proto would round-trip through protobuf-c unnoticed).
 * otlp_parse_export_response for logs: the answer's rejected count and message.
 * The sink: records reach a collector (a small HTTP server in this file)
 * when a batch fills and when the delay passes, with their observed time;
 * a 503 is retried and loses nothing; against a dead or silent collector
 * adding never waits, the queue bound drops and counts, every record is
 * accounted for, and shutdown keeps to the export timeout. */
#define _GNU_SOURCE /* strcasestr */
#include "check.h"
#include "find_kv.h"
#include "fake_env.h"
#include "logs_service.pb-c.h"
#include "telemetry/metrics/metrics.h"
#include "telemetry/send/otel.h"
#include "telemetry/traces/otlp.h"
#include "telemetry/logs/otlp_logs.h"
#include "tel_registry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest pb_request;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse pb_response;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_record;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
#define PB_REQUEST(fn) opentelemetry__proto__collector__logs__v1__export_logs_service_request__##fn
#define PB_RESPONSE(fn)                                                                            \
    opentelemetry__proto__collector__logs__v1__export_logs_service_response__##fn
#define CASE(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x##_VALUE

static const uint8_t TRACE[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                  0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t SPAN[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void resource_init(struct otel_resource *r)
{
    memset(r, 0, sizeof *r);
    attrs_str(&r->attrs, "service.name", "crawl", 5);
    attrs_int(&r->attrs, "process.pid", 42);
    r->scope_name = "shoal";
    r->scope_version = "0.1.0";
}

/* "job done" as a worker logs it, inside a traced job */
static void job_done(struct log_record *r)
{
    log_begin(r, LOG_INFO, "job done");
    r->time_ns = 1700000000123456789ull;
    r->worker = 3;
    r->has_ids = 1;
    r->trace_flags = 1; /* sampled */
    memcpy(r->trace_id, TRACE, 16);
    memcpy(r->span_id, SPAN, 8);
    log_int(r, "job.id", 17);
    log_cstr(r, "url", "http://example.test/a");
    log_int(r, "status", 200);
    log_dbl(r, "duration", 0.25);
    log_bool(r, "retried", 0);
}

static pb_request *encode_unpack(const struct otel_resource *res,
                                 const struct log_record *const *recs, size_t n, uint8_t **buf,
                                 size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (otlp_encode_logs(res, recs, n, buf, len) != 0)
        return NULL;
    return PB_REQUEST(unpack)(NULL, *len, *buf);
}

static void test_encode(void)
{
    struct otel_resource res;
    resource_init(&res);
    struct log_record a, b;
    job_done(&a);
    /* an engine line: no worker, no ids, a warning */
    log_begin(&b, LOG_WARN, "queue full");
    b.time_ns = 5;
    const struct log_record *recs[2] = {&a, &b};
    uint8_t *buf;
    size_t len;
    pb_request *req = encode_unpack(&res, recs, 2, &buf, &len);
    CHECK(req != NULL);
    if (!req)
        return;
    CHECK_EQ_INT(req->n_resource_logs, 1);
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[0];
    CHECK_EQ_INT(rl->resource->n_attributes, 2);
    const pb_kv *svc =
        find_kv(rl->resource->attributes, rl->resource->n_attributes, "service.name");
    CHECK(svc && svc->value->value_case == CASE(STRING));
    CHECK_STR(svc ? svc->value->string_value : NULL, "crawl");
    const pb_kv *pid = find_kv(rl->resource->attributes, rl->resource->n_attributes, "process.pid");
    CHECK(pid && pid->value->int_value == 42);
    CHECK_EQ_INT(rl->n_scope_logs, 1);
    Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[0];
    CHECK_STR(sl->scope->name, "shoal");
    CHECK_STR(sl->scope->version, "0.1.0");
    CHECK_EQ_INT(sl->n_log_records, 2);

    pb_record *p = sl->log_records[0];
    CHECK(p->time_unix_nano == 1700000000123456789ull);
    CHECK(p->observed_time_unix_nano == 1700000000123456789ull); /* none given: its own */
    CHECK_EQ_INT(p->severity_number, 9);
    CHECK_STR(p->severity_text, "INFO");
    CHECK(p->body && p->body->value_case == CASE(STRING));
    CHECK_STR(p->body ? p->body->string_value : NULL, "job done");
    CHECK_EQ_INT(p->n_attributes, 6);
    const pb_kv *kv = find_kv(p->attributes, p->n_attributes, "job.id");
    CHECK(kv && kv->value->value_case == CASE(INT) && kv->value->int_value == 17);
    kv = find_kv(p->attributes, p->n_attributes, "url");
    CHECK(kv && kv->value->value_case == CASE(STRING));
    CHECK_STR(kv ? kv->value->string_value : NULL, "http://example.test/a");
    kv = find_kv(p->attributes, p->n_attributes, "status");
    CHECK(kv && kv->value->value_case == CASE(INT) && kv->value->int_value == 200);
    kv = find_kv(p->attributes, p->n_attributes, "duration");
    CHECK(kv && kv->value->value_case == CASE(DOUBLE) && kv->value->double_value == 0.25);
    kv = find_kv(p->attributes, p->n_attributes, "retried");
    CHECK(kv && kv->value->value_case == CASE(BOOL) && kv->value->bool_value == 0);
    kv = find_kv(p->attributes, p->n_attributes, "worker.id");
    CHECK(kv && kv->value->value_case == CASE(INT) && kv->value->int_value == 3);
    CHECK(p->trace_id.len == 16 && memcmp(p->trace_id.data, TRACE, 16) == 0);
    CHECK(p->span_id.len == 8 && memcmp(p->span_id.data, SPAN, 8) == 0);
    CHECK_EQ_INT(p->flags, 1);

    p = sl->log_records[1];
    CHECK_EQ_INT(p->severity_number, 13);
    CHECK_STR(p->severity_text, "WARN");
    CHECK_EQ_INT(p->n_attributes, 0); /* worker -1: no worker.id */
    CHECK_EQ_INT(p->trace_id.len, 0);
    CHECK_EQ_INT(p->span_id.len, 0);
    CHECK_EQ_INT(p->flags, 0);
    PB_REQUEST(free_unpacked)(req, NULL);
    free(buf);

    /* DEBUG and ERROR map to 5 and 17 */
    log_begin(&a, LOG_DEBUG, "d");
    log_begin(&b, LOG_ERROR, "e");
    req = encode_unpack(&res, recs, 2, &buf, &len);
    CHECK(req != NULL);
    if (req) {
        sl = req->resource_logs[0]->scope_logs[0];
        CHECK_EQ_INT(sl->log_records[0]->severity_number, 5);
        CHECK_STR(sl->log_records[0]->severity_text, "DEBUG");
        CHECK_EQ_INT(sl->log_records[1]->severity_number, 17);
        CHECK_STR(sl->log_records[1]->severity_text, "ERROR");
        PB_REQUEST(free_unpacked)(req, NULL);
    }
    free(buf);

    /* nothing to send is still a well-formed request */
    req = encode_unpack(&res, NULL, 0, &buf, &len);
    CHECK(req != NULL && req->resource_logs[0]->scope_logs[0]->n_log_records == 0);
    if (req)
        PB_REQUEST(free_unpacked)(req, NULL);
    free(buf);
    attrs_clear(&res.attrs);
}

/* A log line may hold any bytes; protobuf strings may not. */
static void test_utf8_and_cut(void)
{
    struct otel_resource res;
    resource_init(&res);
    static const char bad[] = "caf\xc3\xa9 \xff\xfe end\0x"; /* valid, invalid, NUL */
    char *big = malloc(LOG_MAX_VALUE + 100);
    /* 'a' then 2-byte characters, so LOG_MAX_VALUE falls inside one */
    big[0] = 'a';
    for (size_t i = 1; i + 1 < LOG_MAX_VALUE + 100; i += 2)
        big[i] = (char)0xc3, big[i + 1] = (char)0xa9;
    size_t big_len = LOG_MAX_VALUE + 99;
    struct log_record r;
    log_begin(&r, LOG_INFO, NULL);
    r.msg = bad;
    r.msg_len = sizeof bad - 1;
    log_str(&r, "k\xff", bad, sizeof bad - 1);
    log_str(&r, "big", big, big_len);
    const struct log_record *recs[1] = {&r};
    uint8_t *buf;
    size_t len;
    pb_request *req = encode_unpack(&res, recs, 1, &buf, &len);
    CHECK(req != NULL); /* protobuf-c's unpack checks strings are UTF-8 */
    if (req) {
        pb_record *p = req->resource_logs[0]->scope_logs[0]->log_records[0];
        CHECK_STR(p->body->string_value, "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd end\xef\xbf\xbdx");
        CHECK_STR(p->attributes[0]->key, "k\xef\xbf\xbd");
        CHECK_STR(p->attributes[0]->value->string_value, p->body->string_value);
        const char *v = p->attributes[1]->value->string_value;
        size_t n = strlen(v);
        /* cut at LOG_MAX_VALUE, on a character's start, with the marker */
        CHECK(n <= LOG_MAX_VALUE + 3 && n >= LOG_MAX_VALUE + 3 - 1);
        CHECK(n >= 3 && memcmp(v + n - 3, "...", 3) == 0);
        CHECK(n >= 5 && (unsigned char)v[n - 5] == 0xc3 && (unsigned char)v[n - 4] == 0xa9);
        PB_REQUEST(free_unpacked)(req, NULL);
    }
    free(buf);
    free(big);
    attrs_clear(&res.attrs);
}

static int contains(const uint8_t *buf, size_t len, const uint8_t *pat, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(buf + i, pat, n) == 0)
            return 1;
    return 0;
}

/* LogRecord's fields as opentelemetry-proto publishes them, as bytes:
 * key = number << 3 | wire type, then the value. Values are chosen so
 * that each pattern can only come from its field. */
static void test_wire_numbers(void)
{
    struct otel_resource res = {.scope_name = "s"};
    struct log_record r;
    job_done(&r);
    r.nfields = 0;
    r.worker = -1;
    r.time_ns = 0x1122334455667788ull;
    const struct log_record *recs[1] = {&r};
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_EQ_INT(otlp_encode_logs(&res, recs, 1, &buf, &len), 0);
    /* ExportLogsServiceRequest.resource_logs = 1, length-delimited */
    CHECK(len > 0 && buf[0] == 0x0a);
    static const uint8_t time1[] = {0x09, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
    static const uint8_t observed11[] = {0x59, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
    static const uint8_t severity2[] = {0x10, 0x09};
    static const uint8_t text3[] = {0x1a, 0x04, 'I', 'N', 'F', 'O'};
    static const uint8_t body5[] = {0x2a, 0x0a, 0x0a, 0x08, 'j', 'o', 'b', ' ', 'd', 'o', 'n', 'e'};
    static const uint8_t flags8[] = {0x45, 0x01, 0x00, 0x00, 0x00};
    uint8_t trace9[18] = {0x4a, 0x10}, span10[10] = {0x52, 0x08};
    memcpy(trace9 + 2, TRACE, 16);
    memcpy(span10 + 2, SPAN, 8);
    CHECK(contains(buf, len, time1, sizeof time1));
    CHECK(contains(buf, len, observed11, sizeof observed11));
    CHECK(contains(buf, len, severity2, sizeof severity2));
    CHECK(contains(buf, len, text3, sizeof text3));
    CHECK(contains(buf, len, body5, sizeof body5));
    CHECK(contains(buf, len, flags8, sizeof flags8));
    CHECK(contains(buf, len, trace9, sizeof trace9));
    CHECK(contains(buf, len, span10, sizeof span10));
    free(buf);
}

#define LOGS "ExportLogsServiceResponse"

static void test_response(void)
{
    uint8_t buf[256];
    char msg[64];
    int64_t rej = -1;
    CHECK_EQ_INT(otlp_parse_export_response(LOGS, NULL, 0, &rej, msg, sizeof msg), 0);
    CHECK_EQ_INT(rej, 0);
    CHECK_STR(msg, "");

    pb_response r;
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess ps;
    PB_RESPONSE(init)(&r);
    opentelemetry__proto__collector__logs__v1__export_logs_partial_success__init(&ps);
    ps.rejected_log_records = 4;
    ps.error_message = "4 records too old";
    r.partial_success = &ps;
    size_t n = PB_RESPONSE(pack)(&r, buf);
    CHECK_EQ_INT(otlp_parse_export_response(LOGS, buf, n, &rej, msg, sizeof msg), 0);
    CHECK_EQ_INT(rej, 4);
    CHECK_STR(msg, "4 records too old");

    static const char html[] = "<html>502</html>";
    CHECK_EQ_INT(otlp_parse_export_response(LOGS, (const uint8_t *)html, sizeof html - 1, &rej, msg,
                                            sizeof msg),
                 -1);
    CHECK_EQ_INT(rej, 0);
    CHECK(strstr(msg, "ExportLogsServiceResponse") != NULL);
}

/* ------------------------------------------------------------ the sink */

static double value(struct metric_family *f)
{
    const char *sig[1] = {"logs_otlp"};
    return metric_value(metrics_series(f, sig, NULL, 1));
}

static int load(struct otel_config *c, const char *endpoint)
{
    char err[256] = "";
    int rc = otel_config_load(c, fake_env, endpoint, NULL, 0, "t.lua", err, sizeof err);
    if (rc == 0)
        rc = otel_logs_config_load(c, fake_env, 1, err, sizeof err);
    if (rc)
        fprintf(stderr, "config: %s\n", err);
    return rc;
}

/* A collector on 127.0.0.1: answers each POST with the next status of its
 * script (then 200), keeps the bodies it answered 200 to. */
struct collector {
    int fd, port;
    const int *statuses;
    int nstatuses;
    pthread_t thread;
    pthread_mutex_t lock;
    uint8_t *bodies[64];
    size_t lens[64];
    double at[64];
    int nbodies, requests;
};

static int read_request(int c, uint8_t **body, size_t *blen)
{
    char head[8192];
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n == sizeof head - 1)
            return -1;
        ssize_t k = read(c, head + n, sizeof head - 1 - n);
        if (k <= 0)
            return -1;
        n += (size_t)k;
        head[n] = 0;
        end = strstr(head, "\r\n\r\n");
    }
    const char *cl = strcasestr(head, "content-length:");
    size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
    size_t have = n - (size_t)(end + 4 - head);
    uint8_t *b = malloc(want + 1);
    memcpy(b, end + 4, have < want ? have : want);
    while (have < want) {
        ssize_t k = read(c, b + have, want - have);
        if (k <= 0) {
            free(b);
            return -1;
        }
        have += (size_t)k;
    }
    *body = b;
    *blen = want;
    return 0;
}

static void *collector_main(void *arg)
{
    struct collector *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        uint8_t *body;
        size_t blen;
        while (read_request(c, &body, &blen) == 0) {
            pthread_mutex_lock(&s->lock);
            int i = s->requests++;
            int status = i < s->nstatuses ? s->statuses[i] : 200;
            if (status == 200 && s->nbodies < 64) {
                s->bodies[s->nbodies] = body;
                s->lens[s->nbodies] = blen;
                s->at[s->nbodies++] = now();
                body = NULL;
            }
            pthread_mutex_unlock(&s->lock);
            free(body);
            char resp[128];
            int k = snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\nContent-Length: 0\r\n%s\r\n",
                             status, status == 200 ? "" : "Retry-After: 0.1\r\n");
            if (write(c, resp, (size_t)k) != k)
                break;
        }
        close(c);
    }
}

/* A socket listening on a free port of 127.0.0.1: its fd, and *port. */
static int listen_local(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t salen = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, salen) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &salen) != 0)
        fprintf(stderr, "cannot listen on 127.0.0.1\n");
    *port = ntohs(sa.sin_port);
    return fd;
}

static void collector_start(struct collector *s, const int *statuses, int n)
{
    memset(s, 0, sizeof *s);
    s->statuses = statuses;
    s->nstatuses = n;
    pthread_mutex_init(&s->lock, NULL);
    s->fd = listen_local(&s->port);
    pthread_create(&s->thread, NULL, collector_main, s);
}

static void collector_stop(struct collector *s)
{
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < s->nbodies; i++)
        free(s->bodies[i]);
    pthread_mutex_destroy(&s->lock);
}

static int bodies(struct collector *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->nbodies;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int wait_bodies(struct collector *s, int n, double secs)
{
    double until = now() + secs;
    while (bodies(s) < n && now() < until)
        usleep(10000);
    return bodies(s) >= n;
}

/* Records in every body received, and whether each has an observed time
 * at or after its own time. */
static size_t records_received(struct collector *s, int *observed_ok)
{
    size_t n = 0;
    *observed_ok = 1;
    for (int i = 0; i < s->nbodies; i++) {
        pb_request *req = PB_REQUEST(unpack)(NULL, s->lens[i], s->bodies[i]);
        if (!req) {
            *observed_ok = 0;
            continue;
        }
        Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = req->resource_logs[0]->scope_logs[0];
        for (size_t k = 0; k < sl->n_log_records; k++)
            if (sl->log_records[k]->observed_time_unix_nano < sl->log_records[k]->time_unix_nano)
                *observed_ok = 0;
        n += sl->n_log_records;
        PB_REQUEST(free_unpacked)(req, NULL);
    }
    return n;
}

static void test_sink_sends(void)
{
    /* a 503 first: retried after its Retry-After, nothing lost */
    static const int script[] = {503};
    struct collector s;
    collector_start(&s, script, 1);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s.port);
    nvars = 0;
    set("OTEL_BLRP_SCHEDULE_DELAY", "500");
    set("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "5");
    struct otel_config cfg;
    CHECK_EQ_INT(load(&cfg, url), 0);
    char want[96];
    snprintf(want, sizeof want, "%s/v1/logs", url);
    CHECK_STR(cfg.logs.url, want);
    char err[256];
    struct tel_registry *m = tel_registry_new(2, 100);
    struct otlp_logs *x = otlp_logs_new(&cfg, m->reg, err, sizeof err);
    CHECK(x != NULL);
    if (!x)
        return;

    /* two records: a partial batch goes out after the delay */
    struct log_record r;
    job_done(&r);
    otlp_logs_add(x, &r);
    otlp_logs_add(x, &r);
    usleep(100000);
    CHECK_EQ_INT(bodies(&s), 0); /* not before the delay */
    CHECK(wait_bodies(&s, 1, 5));
    CHECK_EQ_INT(s.requests, 2); /* the 503, then the retry */

    /* a full batch does not wait for the delay */
    double t0 = now();
    for (int i = 0; i < 5; i++)
        otlp_logs_add(x, &r);
    CHECK(wait_bodies(&s, 2, 5));
    CHECK(s.at[1] - t0 < 0.4);

    /* what is left goes at shutdown */
    otlp_logs_add(x, &r);
    otlp_logs_shutdown(x);
    int observed_ok;
    CHECK_EQ_INT(records_received(&s, &observed_ok), 8);
    CHECK(observed_ok);
    CHECK_EQ_INT((long long)value(m->tel_exported), 8);
    CHECK_EQ_INT((long long)(value(m->tel_dropped) + value(m->tel_failed)), 0);
    collector_stop(&s);
    tel_registry_free(m);
    otel_config_free(&cfg);
}

static void test_sink_dead_collector(void)
{
    /* nothing listens on port 1: every try is refused at once */
    nvars = 0;
    set("OTEL_BLRP_MAX_QUEUE_SIZE", "50");
    set("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "20");
    set("OTEL_BLRP_EXPORT_TIMEOUT", "1000");
    struct otel_config cfg;
    CHECK_EQ_INT(load(&cfg, "http://127.0.0.1:1"), 0);
    char err[256];
    struct tel_registry *m = tel_registry_new(2, 100);
    struct otlp_logs *x = otlp_logs_new(&cfg, m->reg, err, sizeof err);
    CHECK(x != NULL);
    if (!x)
        return;
    struct log_record r;
    job_done(&r);
    int n = 10000;
    double t0 = now();
    for (int i = 0; i < n; i++)
        otlp_logs_add(x, &r);
    double adding = now() - t0;
    CHECK(adding < 1.0); /* never waits on the exporter */
    /* what is neither dropped nor given up on is at most the queue and
     * the batch in flight */
    CHECK(value(m->tel_dropped) + value(m->tel_failed) >= n - 50 - 20);
    t0 = now();
    otlp_logs_shutdown(x);
    CHECK(now() - t0 < 2.5);
    CHECK_EQ_INT((long long)(value(m->tel_dropped) + value(m->tel_failed)), n);
    CHECK_EQ_INT((long long)value(m->tel_exported), 0);
    tel_registry_free(m);
    otel_config_free(&cfg);
}

static void test_sink_silent_collector(void)
{
    /* a collector that takes the connection and never answers (a listening
     * socket nobody accepts on), with the default 10 s request timeout:
     * shutdown still ends near OTEL_BLRP_EXPORT_TIMEOUT */
    int port;
    int lfd = listen_local(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    nvars = 0;
    set("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "10");
    set("OTEL_BLRP_EXPORT_TIMEOUT", "1000");
    struct otel_config cfg;
    CHECK_EQ_INT(load(&cfg, url), 0);
    CHECK_EQ_INT(cfg.logs.timeout_ms, 10000);
    char err[256];
    struct tel_registry *m = tel_registry_new(2, 100);
    struct otlp_logs *x = otlp_logs_new(&cfg, m->reg, err, sizeof err);
    CHECK(x != NULL);
    if (!x)
        return;
    struct log_record r;
    job_done(&r);
    for (int i = 0; i < 35; i++)
        otlp_logs_add(x, &r);
    usleep(200000); /* the first batch is in flight, waiting */
    double t0 = now();
    otlp_logs_shutdown(x);
    double took = now() - t0;
    CHECK(took < 2.6); /* 1 s, and curl's ~1 s between progress calls */
    if (took >= 2.6)
        fprintf(stderr, "shutdown took %.2f s\n", took);
    CHECK_EQ_INT((long long)(value(m->tel_failed) + value(m->tel_dropped)), 35);
    CHECK_EQ_INT((long long)value(m->tel_exported), 0);
    tel_registry_free(m);
    otel_config_free(&cfg);
    close(lfd);
}

int main(void)
{
    test_encode();
    test_utf8_and_cut();
    test_wire_numbers();
    test_response();
    otlp_logs_shutdown(NULL);
    otlp_logs_add(NULL, NULL);
    test_sink_sends();
    test_sink_dead_collector();
    test_sink_silent_collector();
    return check_done();
}
