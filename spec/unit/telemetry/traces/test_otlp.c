/* test_otlp.c - spans as the exporter relies on them, and the OTLP bytes a
 * receiver gets.
 *
 * span.h: copies are copies, arrays grow without losing what they hold,
 * strings always come out as UTF-8. otlp_encode_traces: the request is read
 * back twice. Once with protobuf-c, checking every field we write; and once
 * with a small wire reader below that knows the field numbers as published
 * in opentelemetry-proto, so a wrong number in proto/ (which protobuf-c would
 * happily read back) fails here. otlp_parse_export_response: success, partial
 * success, warnings, garbage. */
#include "check.h"
#include "find_kv.h"
#include "telemetry/traces/otlp.h"
#include "telemetry/traces/span.h"
#include "trace_service.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest pb_request;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse pb_response;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess pb_partial;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;

#define CASE(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x
#define PB_REQUEST(fn)                                                                             \
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__##fn
#define PB_RESPONSE(fn)                                                                            \
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__##fn

static const uint8_t TRACE_A[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t SPAN_A[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
static const uint8_t SPAN_B[8] = {0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8};
static const uint8_t TRACE_L[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t SPAN_L[8] = {0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1};

/* --- a wire reader independent of the generated code --- */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* The nth (0-based) occurrence of field `field` in message buf/len: its wire
 * type, and its bytes (the payload of a length-delimited field, the value
 * bytes otherwise). 0 if found; -1 if not or malformed, with *val NULL and
 * *vlen 0, so a chain of lookups after a miss keeps missing. */
static int wire_field(const uint8_t *buf, size_t len, unsigned field, int nth, int *wtype,
                      const uint8_t **val, size_t *vlen)
{
    *wtype = -1;
    *val = NULL;
    *vlen = 0;
    if (!buf)
        return -1;
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        uint64_t key, n;
        if (read_varint(&p, end, &key) < 0)
            return -1;
        const uint8_t *start = p;
        size_t size;
        switch (key & 7) {
        case 0:
            if (read_varint(&p, end, &n) < 0)
                return -1;
            size = (size_t)(p - start);
            break;
        case 1:
            size = 8;
            break;
        case 2:
            if (read_varint(&p, end, &n) < 0)
                return -1;
            start = p;
            size = (size_t)n;
            break;
        case 5:
            size = 4;
            break;
        default:
            return -1;
        }
        if (size > (size_t)(end - start))
            return -1;
        p = start + size;
        if ((key >> 3) == field && nth-- == 0) {
            *wtype = (int)(key & 7);
            *val = start;
            *vlen = size;
            return 0;
        }
    }
    return -1;
}

static uint64_t le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* --- span.h --- */

static void test_span_basics(void)
{
    char name[] = "process_job";
    struct span *s = span_new(name, SPAN_KIND_SERVER);
    CHECK(s != NULL);
    name[0] = 'X'; /* the span holds its own copy */
    CHECK_STR(s->name, "process_job");
    CHECK_EQ_INT(s->kind, SPAN_KIND_SERVER);
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(s->parent_span_id[i], 0);
    CHECK_EQ_INT(s->status, SPAN_STATUS_UNSET);
    CHECK(s->status_message == NULL && s->trace_state == NULL);
    CHECK_EQ_INT(s->attrs.n, 0);
    CHECK_EQ_INT(s->nevents, 0);
    CHECK_EQ_INT(s->nlinks, 0);
    span_free(s);
    span_free(NULL);
}

static void test_attrs(void)
{
    struct attrs a = {0};
    char key[] = "job.url", val[] = "http://example.test/a";
    CHECK_EQ_INT(attrs_str(&a, key, val, strlen(val)), 0);
    key[0] = val[0] = 'X';
    CHECK_EQ_INT(attrs_str(&a, "cut", "abcdef", 3), 0); /* len, not strlen, bounds it */
    CHECK_EQ_INT(attrs_int(&a, "worker.id", -7), 0);
    CHECK_EQ_INT(attrs_double(&a, "ratio", 0.25), 0);
    CHECK_EQ_INT(attrs_bool(&a, "retry", 42), 0);
    CHECK_EQ_INT(a.n, 5);
    CHECK_STR(a.a[0].key, "job.url");
    CHECK_EQ_INT(a.a[0].type, ATTR_STRING);
    CHECK_STR(a.a[0].v.s, "http://example.test/a");
    CHECK_STR(a.a[1].v.s, "abc");
    CHECK_EQ_INT(a.a[2].type, ATTR_INT);
    CHECK_EQ_INT(a.a[2].v.i, -7);
    CHECK_EQ_INT(a.a[3].type, ATTR_DOUBLE);
    CHECK(a.a[3].v.d == 0.25);
    CHECK_EQ_INT(a.a[4].type, ATTR_BOOL);
    CHECK_EQ_INT(a.a[4].v.b, 1);

    /* growth keeps every earlier attribute */
    char k[32];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%d", i);
        CHECK_EQ_INT(attrs_int(&a, k, i), 0);
    }
    CHECK_EQ_INT(a.n, 305);
    CHECK(a.cap >= a.n);
    CHECK_STR(a.a[0].v.s, "http://example.test/a");
    CHECK_STR(a.a[304].key, "k299");
    CHECK_EQ_INT(a.a[304].v.i, 299);

    attrs_clear(&a);
    CHECK(a.a == NULL);
    CHECK_EQ_INT(a.n, 0);
    CHECK_EQ_INT(a.cap, 0);
    /* clearing twice is fine, and a cleared list takes attributes again */
    attrs_clear(&a);
    CHECK_EQ_INT(attrs_bool(&a, "again", 0), 0);
    CHECK_EQ_INT(a.a[0].v.b, 0);
    attrs_clear(&a);
}

/* Bytes that are not UTF-8 (from a crawled page, a Lua string) must not make
 * a receiver throw the batch away: they come out as U+FFFD. */
static void test_utf8(void)
{
    struct attrs a = {0};
    static const char bad[] = "a\xff"
                              "b\xc3"
                              "\0c\xe2\x82\xac\xed\xa0\x80";
    CHECK_EQ_INT(attrs_str(&a, "k\x80", bad, sizeof bad - 1), 0);
    CHECK_STR(a.a[0].key, "k\xef\xbf\xbd");
    /* a, FFFD, b, FFFD (truncated C3), FFFD (NUL), c, euro kept, surrogate:
     * three FFFD */
    CHECK_STR(a.a[0].v.s, "a\xef\xbf\xbd"
                          "b\xef\xbf\xbd\xef\xbf\xbd"
                          "c\xe2\x82\xac\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    CHECK_EQ_INT(attrs_str(&a, "empty", "", 0), 0);
    CHECK_STR(a.a[1].v.s, "");
    attrs_clear(&a);

    struct span *s = span_new("GET \xc0\xaf", SPAN_KIND_CLIENT);
    CHECK_STR(s->name, "GET \xef\xbf\xbd\xef\xbf\xbd");
    span_set_status(s, SPAN_STATUS_ERROR, "bad \xfe");
    CHECK_STR(s->status_message, "bad \xef\xbf\xbd");
    struct span_event *e = span_add_event(s, "ev\xff", 1);
    CHECK(e != NULL);
    CHECK_STR(e->name, "ev\xef\xbf\xbd");
    span_free(s);
}

static void test_events_links_status(void)
{
    struct span *s = span_new("x", SPAN_KIND_INTERNAL);
    char name[32];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "ev%d", i);
        struct span_event *e = span_add_event(s, name, 1000 + (uint64_t)i);
        CHECK(e != NULL);
        CHECK_EQ_INT(e->attrs.n, 0);
        CHECK_EQ_INT(attrs_int(&e->attrs, "i", i), 0);
    }
    CHECK_EQ_INT(s->nevents, 40);
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "ev%d", i);
        CHECK_STR(s->events[i].name, name);
        CHECK_EQ_INT(s->events[i].time_ns, 1000 + i);
        CHECK_EQ_INT(s->events[i].attrs.a[0].v.i, i);
    }

    uint8_t tid[16], sid[8];
    for (int i = 0; i < 20; i++) {
        memset(tid, i, sizeof tid);
        memset(sid, 100 + i, sizeof sid);
        CHECK_EQ_INT(span_add_link(s, tid, sid, (uint8_t)(i & 1)), 0);
    }
    CHECK_EQ_INT(s->nlinks, 20);
    CHECK_EQ_INT(s->links[0].trace_id[15], 0);
    CHECK_EQ_INT(s->links[19].trace_id[0], 19);
    CHECK_EQ_INT(s->links[19].span_id[7], 119);
    CHECK_EQ_INT(s->links[19].flags, 1);
    CHECK_EQ_INT(s->links[18].flags, 0);

    char msg[] = "HTTP 503";
    span_set_status(s, SPAN_STATUS_ERROR, msg);
    msg[0] = 'X';
    CHECK_EQ_INT(s->status, SPAN_STATUS_ERROR);
    CHECK_STR(s->status_message, "HTTP 503");
    span_set_status(s, SPAN_STATUS_ERROR, "timeout");
    CHECK_STR(s->status_message, "timeout");
    span_set_status(s, SPAN_STATUS_OK, NULL);
    CHECK_EQ_INT(s->status, SPAN_STATUS_OK);
    CHECK(s->status_message == NULL);
    span_free(s); /* ASan's leak check covers the events' names and attrs */
}

/* --- otlp_encode_traces --- */

static struct span *job_span(void)
{
    struct span *s = span_new("process_job", SPAN_KIND_SERVER);
    memcpy(s->trace_id, TRACE_A, 16);
    memcpy(s->span_id, SPAN_A, 8);
    s->flags = 0x01;
    s->trace_state = strdup("vendor=abc,other=1");
    s->start_ns = 1700000000123456789ULL;
    s->end_ns = 1700000000987654321ULL;
    attrs_int(&s->attrs, "worker.id", 3);
    attrs_str(&s->attrs, "job.id", "42", 2);
    attrs_str(&s->attrs, "job.url", "http://127.0.0.1:9/x", 20);
    attrs_double(&s->attrs, "job.weight", 1.5);
    attrs_bool(&s->attrs, "job.retry", 0); /* false and 0 must still be sent */
    attrs_int(&s->attrs, "job.attempt", 0);
    struct span_event *e = span_add_event(s, "retry", 1700000000500000000ULL);
    attrs_str(&e->attrs, "reason", "503", 3);
    span_add_event(s, "done", 1700000000900000000ULL);
    span_add_link(s, TRACE_L, SPAN_L, 0x01);
    span_set_status(s, SPAN_STATUS_ERROR, "HTTP 503 from upstream");
    return s;
}

static struct span *child_span(void)
{
    struct span *s = span_new("GET", SPAN_KIND_CLIENT);
    memcpy(s->trace_id, TRACE_A, 16);
    memcpy(s->span_id, SPAN_B, 8);
    memcpy(s->parent_span_id, SPAN_A, 8);
    s->flags = 0x00; /* an unsampled span still encodes its flags as 0 */
    s->start_ns = 1700000000200000000ULL;
    s->end_ns = 1700000000300000000ULL;
    attrs_str(&s->attrs, "http.request.method", "GET", 3);
    attrs_int(&s->attrs, "http.response.status_code", 200);
    return s;
}

static void resource_init(struct otel_resource *r)
{
    memset(r, 0, sizeof *r);
    attrs_str(&r->attrs, "service.name", "go-worker-pool", 14);
    attrs_str(&r->attrs, "service.version", "0.1.0", 5);
    r->scope_name = "shoal";
    r->scope_version = "0.1.0";
}

static void check_bytes(ProtobufCBinaryData b, const uint8_t *want, size_t n)
{
    CHECK_EQ_INT(b.len, n);
    CHECK(b.len == n && memcmp(b.data, want, n) == 0);
}

static void test_encode_unpack(void)
{
    struct otel_resource res;
    resource_init(&res);
    struct span *spans[2] = {job_span(), child_span()};
    uint8_t *buf = (uint8_t *)"sentinel";
    size_t len = 0;
    CHECK_EQ_INT(otlp_encode_traces(&res, spans, 2, &buf, &len), 0);
    CHECK(buf != NULL && len > 0);
    /* the encoder only reads the spans */
    CHECK_STR(spans[0]->name, "process_job");
    CHECK_EQ_INT(spans[0]->attrs.n, 6);

    pb_request *req = PB_REQUEST(unpack)(NULL, len, buf);
    CHECK(req != NULL);
    if (!req)
        goto done;
    CHECK_EQ_INT(req->n_resource_spans, 1);
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[0];
    CHECK(rs->resource != NULL);
    CHECK_EQ_INT(rs->resource->n_attributes, 2);
    CHECK_STR(rs->resource->attributes[0]->key, "service.name");
    CHECK_STR(rs->resource->attributes[0]->value->string_value, "go-worker-pool");
    CHECK_STR(rs->resource->attributes[1]->key, "service.version");
    CHECK_EQ_INT(rs->n_scope_spans, 1);
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[0];
    CHECK_STR(ss->scope->name, "shoal");
    CHECK_STR(ss->scope->version, "0.1.0");
    CHECK_EQ_INT(ss->n_spans, 2);

    pb_span *a = ss->spans[0], *b = ss->spans[1];
    check_bytes(a->trace_id, TRACE_A, 16);
    check_bytes(a->span_id, SPAN_A, 8);
    CHECK_EQ_INT(a->parent_span_id.len, 0); /* root: absent */
    CHECK_STR(a->trace_state, "vendor=abc,other=1");
    CHECK_EQ_INT(a->flags, 0x01);
    CHECK_STR(a->name, "process_job");
    CHECK_EQ_INT(a->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    CHECK(a->start_time_unix_nano == 1700000000123456789ULL);
    CHECK(a->end_time_unix_nano == 1700000000987654321ULL);
    CHECK_EQ_INT(a->n_attributes, 6);
    const pb_kv *kv = find_kv(a->attributes, a->n_attributes, "worker.id");
    CHECK(kv && kv->value->value_case == CASE(INT_VALUE) && kv->value->int_value == 3);
    kv = find_kv(a->attributes, a->n_attributes, "job.id");
    CHECK(kv && kv->value->value_case == CASE(STRING_VALUE));
    CHECK_STR(kv ? kv->value->string_value : NULL, "42");
    kv = find_kv(a->attributes, a->n_attributes, "job.url");
    CHECK_STR(kv ? kv->value->string_value : NULL, "http://127.0.0.1:9/x");
    kv = find_kv(a->attributes, a->n_attributes, "job.weight");
    CHECK(kv && kv->value->value_case == CASE(DOUBLE_VALUE) && kv->value->double_value == 1.5);
    kv = find_kv(a->attributes, a->n_attributes, "job.retry");
    CHECK(kv && kv->value->value_case == CASE(BOOL_VALUE) && kv->value->bool_value == 0);
    kv = find_kv(a->attributes, a->n_attributes, "job.attempt");
    CHECK(kv && kv->value->value_case == CASE(INT_VALUE) && kv->value->int_value == 0);
    CHECK_EQ_INT(a->n_events, 2);
    CHECK_STR(a->events[0]->name, "retry");
    CHECK(a->events[0]->time_unix_nano == 1700000000500000000ULL);
    CHECK_EQ_INT(a->events[0]->n_attributes, 1);
    CHECK_STR(a->events[0]->attributes[0]->key, "reason");
    CHECK_STR(a->events[0]->attributes[0]->value->string_value, "503");
    CHECK_STR(a->events[1]->name, "done");
    CHECK_EQ_INT(a->events[1]->n_attributes, 0);
    CHECK_EQ_INT(a->n_links, 1);
    check_bytes(a->links[0]->trace_id, TRACE_L, 16);
    check_bytes(a->links[0]->span_id, SPAN_L, 8);
    CHECK_EQ_INT(a->links[0]->flags, 0x01);
    CHECK(a->status != NULL);
    if (a->status) {
        CHECK_EQ_INT(a->status->code,
                     OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
        CHECK_STR(a->status->message, "HTTP 503 from upstream");
    }
    CHECK_EQ_INT(a->dropped_attributes_count + a->dropped_events_count + a->dropped_links_count, 0);

    check_bytes(b->trace_id, TRACE_A, 16);
    check_bytes(b->span_id, SPAN_B, 8);
    check_bytes(b->parent_span_id, SPAN_A, 8);
    CHECK_STR(b->trace_state, ""); /* absent reads back as the default */
    CHECK_EQ_INT(b->flags, 0);
    CHECK_STR(b->name, "GET");
    CHECK_EQ_INT(b->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
    CHECK_EQ_INT(b->n_attributes, 2);
    kv = find_kv(b->attributes, b->n_attributes, "http.response.status_code");
    CHECK(kv && kv->value->int_value == 200);
    CHECK_EQ_INT(b->n_events, 0);
    CHECK_EQ_INT(b->n_links, 0);
    CHECK(b->status == NULL); /* UNSET without a message: no Status at all */
    PB_REQUEST(free_unpacked)(req, NULL);
done:
    free(buf);
    span_free(spans[0]);
    span_free(spans[1]);
    attrs_clear(&res.attrs);
}

/* --- the span encoder: bounds, bytes, memo --- */

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Keys as the engine passes them (string literals, named by address) and
 * values that repeat, so the memo is hit, missed, and replaced. */
static const char *const KEYS[] = {"http.request.method", "server.port", "worker.id",
                                   "http.response.status_code", "error.type", "job.attempt",
                                   "a.key.long.enough.to.leave.the.memo.for.its.encoded.size."
                                   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
static const char *const STRS[] = {"GET", "POST", "", "127.0.0.1", "500", "_OTHER",
                                   "0123456789abcdef01234567" /* 24: the longest kept */,
                                   "0123456789abcdef012345678",
                                   "0123456789abcdef0X234567" /* same ends as the 24 */,
                                   "0123456789abcdef0123456789abcdef"};
static const int64_t INTS[] = {0, 1, -1, 200, 443, 503, INT64_MIN, INT64_MAX, 1 << 20};

static char long_text[4000];

static void random_attr(struct attrs *a)
{
    char key[40];
    const char *k = KEYS[rnd() % (sizeof KEYS / sizeof *KEYS)];
    a->literal_keys = rnd() % 4 != 0; /* now and then the same spelling, copied */
    if (rnd() % 8 == 0) {
        snprintf(key, sizeof key, "user.%u", (unsigned)(rnd() % 5));
        k = key;
        a->literal_keys = 0;
    }
    switch (rnd() % 5) {
    case 0:
    case 1: {
        const char *v = STRS[rnd() % (sizeof STRS / sizeof *STRS)];
        size_t len = strlen(v);
        if (rnd() % 4 == 0) {
            len = rnd() % sizeof long_text;
            v = long_text + rnd() % (sizeof long_text - len);
        }
        attrs_str(a, k, v, len);
        break;
    }
    case 2:
        attrs_int(a, k, rnd() % 3 ? INTS[rnd() % (sizeof INTS / sizeof *INTS)] : (int64_t)rnd());
        break;
    case 3:
        attrs_double(a, k, rnd() % 2 ? 0.5 : (double)(int64_t)rnd() / 7.0);
        break;
    default:
        attrs_bool(a, k, (int)(rnd() % 2));
        break;
    }
    a->literal_keys = 0;
}

static struct span *random_span(void)
{
    struct span *s = span_new(rnd() % 2 ? "GET" : "process_job", (enum span_kind)(1 + rnd() % 3));
    for (int i = 0; i < 16; i++)
        s->trace_id[i] = (uint8_t)rnd();
    for (int i = 0; i < 8; i++)
        s->span_id[i] = (uint8_t)rnd();
    if (rnd() % 2)
        for (int i = 0; i < 8; i++)
            s->parent_span_id[i] = (uint8_t)(rnd() | 1);
    s->flags = (uint8_t)(rnd() % 2);
    s->start_ns = rnd();
    s->end_ns = rnd();
    if (rnd() % 5 == 0)
        s->trace_state = strdup("vendor=abc");
    int n = (int)(rnd() % 12);
    for (int i = 0; i < n; i++)
        random_attr(&s->attrs);
    if (rnd() % 7 == 0)
        s->dropped_attrs = (uint32_t)rnd();
    if (rnd() % 10 == 0) {
        struct span_event *e = span_add_event(s, "retry", rnd());
        random_attr(&e->attrs);
        span_add_link(s, TRACE_L, SPAN_L, 1);
    }
    int st = (int)(rnd() % 4);
    if (st)
        span_set_status(s, st == 3 ? SPAN_STATUS_ERROR : (enum span_status)st,
                        rnd() % 2 ? NULL : long_text + rnd() % 3000);
    return s;
}

static int same_value(const struct attr *t, const pb_kv *kv)
{
    if (!kv->value)
        return 0;
    switch (t->type) {
    case ATTR_STRING:
        return kv->value->value_case == CASE(STRING_VALUE) &&
               strcmp(kv->value->string_value, t->v.s) == 0;
    case ATTR_INT:
        return kv->value->value_case == CASE(INT_VALUE) && kv->value->int_value == t->v.i;
    case ATTR_DOUBLE:
        return kv->value->value_case == CASE(DOUBLE_VALUE) &&
               memcmp(&kv->value->double_value, &t->v.d, sizeof t->v.d) == 0;
    case ATTR_BOOL:
        return kv->value->value_case == CASE(BOOL_VALUE) && kv->value->bool_value == t->v.b;
    }
    return 0;
}

/* One encoder across 3,000 random spans: each span fits the room prepare
 * promised (exactly that much is allocated, so ASan sees any overrun), reads
 * back as an opentelemetry Span whose own packing gives the same bytes,
 * and carries its own attributes, not ones the memo kept from another. */
static void test_span_encoder(void)
{
    for (size_t i = 0; i < sizeof long_text - 1; i++)
        long_text[i] = (char)('a' + i % 26);
    struct otlp_span_encoder *e = otlp_span_encoder_new();
    CHECK(e != NULL);
    int bad_room = 0, bad_bytes = 0, bad_attrs = 0;
    for (int k = 0; k < 3000; k++) {
        struct span *s = random_span();
        size_t room = otlp_span_prepare(e, s);
        uint8_t *buf = malloc(room);
        size_t len = otlp_span_pack(e, buf);
        bad_room += len > room;
        pb_span *p = opentelemetry__proto__trace__v1__span__unpack(NULL, len, buf);
        if (!p) {
            bad_bytes++;
        } else {
            uint8_t *again = malloc(len + 1);
            size_t len2 = opentelemetry__proto__trace__v1__span__pack(p, again);
            bad_bytes += len2 != len || memcmp(again, buf, len) != 0;
            free(again);
            if (p->n_attributes != (size_t)s->attrs.n)
                bad_attrs++;
            for (size_t i = 0; i < p->n_attributes && i < (size_t)s->attrs.n; i++)
                bad_attrs += strcmp(p->attributes[i]->key, s->attrs.a[i].key) != 0 ||
                             !same_value(&s->attrs.a[i], p->attributes[i]);
            opentelemetry__proto__trace__v1__span__free_unpacked(p, NULL);
        }
        free(buf);
        span_free(s);
    }
    CHECK_EQ_INT(bad_room, 0);
    CHECK_EQ_INT(bad_bytes, 0);
    CHECK_EQ_INT(bad_attrs, 0);
    otlp_span_encoder_free(e);
}

/* The field numbers and wire types as published in opentelemetry-proto,
 * read from the raw bytes. */
static void test_wire_numbers(void)
{
    struct otel_resource res;
    resource_init(&res);
    struct span *s = job_span();
    struct span *c = child_span();
    c->flags = 0x01;
    struct span *spans[2] = {s, c};
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_EQ_INT(otlp_encode_traces(&res, spans, 2, &buf, &len), 0);

    int wt;
    const uint8_t *rs = NULL, *ss = NULL, *sp = NULL, *sp2 = NULL, *v = NULL, *x = NULL;
    size_t rsl = 0, ssl = 0, spl = 0, sp2l = 0, vl = 0, xl = 0;
    /* ExportTraceServiceRequest.resource_spans = 1 */
    CHECK(wire_field(buf, len, 1, 0, &wt, &rs, &rsl) == 0 && wt == 2);
    /* ResourceSpans.resource = 1 -> Resource.attributes = 1 -> KeyValue key 1 */
    CHECK(wire_field(rs, rsl, 1, 0, &wt, &v, &vl) == 0 && wt == 2);
    CHECK(wire_field(v, vl, 1, 0, &wt, &x, &xl) == 0 && wt == 2);
    CHECK(wire_field(x, xl, 1, 0, &wt, &v, &vl) == 0 && vl == 12 && !memcmp(v, "service.name", 12));
    /* ResourceSpans.scope_spans = 2 -> ScopeSpans.scope = 1 (name 1, version 2) */
    CHECK(wire_field(rs, rsl, 2, 0, &wt, &ss, &ssl) == 0 && wt == 2);
    CHECK(wire_field(ss, ssl, 1, 0, &wt, &v, &vl) == 0);
    CHECK(wire_field(v, vl, 1, 0, &wt, &x, &xl) == 0 && xl == 5 && !memcmp(x, "shoal", 5));
    CHECK(wire_field(v, vl, 2, 0, &wt, &x, &xl) == 0 && xl == 5 && !memcmp(x, "0.1.0", 5));
    /* ScopeSpans.spans = 2 */
    CHECK(wire_field(ss, ssl, 2, 0, &wt, &sp, &spl) == 0 && wt == 2);
    CHECK(wire_field(ss, ssl, 2, 1, &wt, &sp2, &sp2l) == 0 && wt == 2);
    if (!sp || !sp2)
        goto done;

    CHECK(wire_field(sp, spl, 1, 0, &wt, &v, &vl) == 0 && wt == 2 && vl == 16 &&
          !memcmp(v, TRACE_A, 16));
    CHECK(wire_field(sp, spl, 2, 0, &wt, &v, &vl) == 0 && vl == 8 && !memcmp(v, SPAN_A, 8));
    CHECK(wire_field(sp, spl, 3, 0, &wt, &v, &vl) == 0 && wt == 2 && vl == 18);
    CHECK(wire_field(sp, spl, 4, 0, &wt, &v, &vl) != 0); /* root: no parent_span_id */
    CHECK(wire_field(sp2, sp2l, 4, 0, &wt, &v, &vl) == 0 && vl == 8 && !memcmp(v, SPAN_A, 8));
    CHECK(wire_field(sp, spl, 5, 0, &wt, &v, &vl) == 0 && vl == 11 &&
          !memcmp(v, "process_job", 11));
    CHECK(wire_field(sp, spl, 6, 0, &wt, &v, &vl) == 0 && wt == 0 && v[0] == 2);   /* SERVER */
    CHECK(wire_field(sp2, sp2l, 6, 0, &wt, &v, &vl) == 0 && wt == 0 && v[0] == 3); /* CLIENT */
    CHECK(wire_field(sp, spl, 7, 0, &wt, &v, &vl) == 0 && wt == 1 &&
          le(v, 8) == 1700000000123456789ULL); /* fixed64 */
    CHECK(wire_field(sp, spl, 8, 0, &wt, &v, &vl) == 0 && wt == 1 &&
          le(v, 8) == 1700000000987654321ULL);
    CHECK(wire_field(sp, spl, 9, 5, &wt, &v, &vl) == 0 && wt == 2); /* 6 attributes */
    CHECK(wire_field(sp, spl, 9, 6, &wt, &v, &vl) != 0);
    /* the bool attribute: KeyValue.value = 2 -> AnyValue.bool_value = 2, 0 */
    CHECK(wire_field(sp, spl, 9, 4, &wt, &v, &vl) == 0);
    CHECK(wire_field(v, vl, 2, 0, &wt, &x, &xl) == 0 && wt == 2);
    CHECK(wire_field(x, xl, 2, 0, &wt, &v, &vl) == 0 && wt == 0 && v[0] == 0);
    /* the int attribute 0: AnyValue.int_value = 3; the double: 4, fixed64 */
    CHECK(wire_field(sp, spl, 9, 5, &wt, &v, &vl) == 0);
    CHECK(wire_field(v, vl, 2, 0, &wt, &x, &xl) == 0);
    CHECK(wire_field(x, xl, 3, 0, &wt, &v, &vl) == 0 && wt == 0 && v[0] == 0);
    CHECK(wire_field(sp, spl, 9, 3, &wt, &v, &vl) == 0);
    CHECK(wire_field(v, vl, 2, 0, &wt, &x, &xl) == 0);
    CHECK(wire_field(x, xl, 4, 0, &wt, &v, &vl) == 0 && wt == 1);
    /* Event: time_unix_nano = 1 fixed64, name = 2, attributes = 3 */
    CHECK(wire_field(sp, spl, 11, 0, &wt, &x, &xl) == 0 && wt == 2);
    CHECK(wire_field(x, xl, 1, 0, &wt, &v, &vl) == 0 && wt == 1 &&
          le(v, 8) == 1700000000500000000ULL);
    CHECK(wire_field(x, xl, 2, 0, &wt, &v, &vl) == 0 && vl == 5 && !memcmp(v, "retry", 5));
    CHECK(wire_field(x, xl, 3, 0, &wt, &v, &vl) == 0 && wt == 2);
    CHECK(wire_field(sp, spl, 11, 1, &wt, &x, &xl) == 0);
    /* Link: trace_id 1, span_id 2, flags 6 fixed32 */
    CHECK(wire_field(sp, spl, 13, 0, &wt, &x, &xl) == 0 && wt == 2);
    CHECK(wire_field(x, xl, 1, 0, &wt, &v, &vl) == 0 && vl == 16 && !memcmp(v, TRACE_L, 16));
    CHECK(wire_field(x, xl, 2, 0, &wt, &v, &vl) == 0 && vl == 8 && !memcmp(v, SPAN_L, 8));
    CHECK(wire_field(x, xl, 6, 0, &wt, &v, &vl) == 0 && wt == 5 && le(v, 4) == 1);
    /* Status = 15: message 2, code 3 (field 1 is reserved) */
    CHECK(wire_field(sp, spl, 15, 0, &wt, &x, &xl) == 0 && wt == 2);
    CHECK(wire_field(x, xl, 1, 0, &wt, &v, &vl) != 0);
    CHECK(wire_field(x, xl, 2, 0, &wt, &v, &vl) == 0 && vl == 22);
    CHECK(wire_field(x, xl, 3, 0, &wt, &v, &vl) == 0 && wt == 0 && v[0] == 2);
    CHECK(wire_field(sp2, sp2l, 15, 0, &wt, &x, &xl) != 0);
    /* Span.flags = 16, fixed32: the W3C flags in bits 0-7 and nothing else */
    CHECK(wire_field(sp, spl, 16, 0, &wt, &v, &vl) == 0 && wt == 5 && le(v, 4) == 0x01);
    CHECK(wire_field(sp2, sp2l, 16, 0, &wt, &v, &vl) == 0 && wt == 5 && le(v, 4) == 0x01);
    /* nothing dropped, so no dropped_* counts (10, 12, 14) */
    CHECK(wire_field(sp, spl, 10, 0, &wt, &v, &vl) != 0);
    CHECK(wire_field(sp, spl, 12, 0, &wt, &v, &vl) != 0);
    CHECK(wire_field(sp, spl, 14, 0, &wt, &v, &vl) != 0);
done:
    free(buf);
    span_free(s);
    span_free(c);
    attrs_clear(&res.attrs);
}

/* No spans still makes a well-formed request (the resource and scope). */
static void test_encode_empty(void)
{
    struct otel_resource res;
    resource_init(&res);
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_EQ_INT(otlp_encode_traces(&res, NULL, 0, &buf, &len), 0);
    pb_request *req = PB_REQUEST(unpack)(NULL, len, buf);
    CHECK(req != NULL && req->n_resource_spans == 1);
    if (req) {
        CHECK_EQ_INT(req->resource_spans[0]->scope_spans[0]->n_spans, 0);
        PB_REQUEST(free_unpacked)(req, NULL);
    }
    free(buf);

    /* a resource without attributes or scope version */
    struct otel_resource bare = {.scope_name = "shoal"};
    struct span *s = span_new("", SPAN_KIND_INTERNAL);
    CHECK_EQ_INT(otlp_encode_traces(&bare, &s, 1, &buf, &len), 0);
    req = PB_REQUEST(unpack)(NULL, len, buf);
    CHECK(req != NULL);
    if (req) {
        Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = req->resource_spans[0]->scope_spans[0];
        CHECK_EQ_INT(req->resource_spans[0]->resource->n_attributes, 0);
        CHECK_STR(ss->scope->version, "");
        CHECK_EQ_INT(ss->n_spans, 1);
        CHECK_EQ_INT(ss->spans[0]->kind,
                     OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL);
        PB_REQUEST(free_unpacked)(req, NULL);
    }
    free(buf);
    span_free(s);
    attrs_clear(&res.attrs);
}

/* --- otlp_parse_export_response, for traces --- */

#define TRACES "ExportTraceServiceResponse"

static size_t pack_response(int64_t rejected, const char *message, int with_partial, uint8_t *out)
{
    pb_response r;
    pb_partial p;
    PB_RESPONSE(init)(&r);
    opentelemetry__proto__collector__trace__v1__export_trace_partial_success__init(&p);
    p.rejected_spans = rejected;
    p.error_message = (char *)message;
    if (with_partial)
        r.partial_success = &p;
    return PB_RESPONSE(pack)(&r, out);
}

static void test_response(void)
{
    uint8_t buf[256];
    char msg[64];
    int64_t rej = -99;

    /* empty body: every span accepted */
    memset(msg, 'X', sizeof msg);
    CHECK_EQ_INT(otlp_parse_export_response(TRACES, NULL, 0, &rej, msg, sizeof msg), 0);
    CHECK_EQ_INT(rej, 0);
    CHECK_STR(msg, "");

    /* partial success */
    size_t n = pack_response(3, "3 spans had no name", 1, buf);
    CHECK_EQ_INT(otlp_parse_export_response(TRACES, buf, n, &rej, msg, sizeof msg), 0);
    CHECK_EQ_INT(rej, 3);
    CHECK_STR(msg, "3 spans had no name");

    /* the same, written by hand from the published numbers:
     * partial_success = 1 { rejected_spans = 1: 7, error_message = 2: "no" } */
    static const uint8_t hand[] = {0x0a, 0x06, 0x08, 0x07, 0x12, 0x02, 'n', 'o'};
    CHECK_EQ_INT(otlp_parse_export_response(TRACES, hand, sizeof hand, &rej, msg, sizeof msg), 0);
    CHECK_EQ_INT(rej, 7);
    CHECK_STR(msg, "no");

    /* a warning: nothing rejected, a message */
    n = pack_response(0, "sampling rules changed", 1, buf);
    CHECK_EQ_INT(otlp_parse_export_response(TRACES, buf, n, &rej, msg, sizeof msg), 0);
    CHECK_EQ_INT(rej, 0);
    CHECK_STR(msg, "sampling rules changed");

    /* an empty partial_success is a full success */
    n = pack_response(0, NULL, 1, buf);
    CHECK(n > 0);
    CHECK_EQ_INT(otlp_parse_export_response(TRACES, buf, n, &rej, msg, sizeof msg), 0);
    CHECK_EQ_INT(rej, 0);
    CHECK_STR(msg, "");

    /* a negative count from a confused receiver is not a count of spans */
    n = pack_response(-5, "odd", 1, buf);
    CHECK_EQ_INT(otlp_parse_export_response(TRACES, buf, n, &rej, msg, sizeof msg), 0);
    CHECK_EQ_INT(rej, 0);

    /* a newer receiver's unknown fields are skipped */
    static const uint8_t newer[] = {0x0a, 0x02, 0x08, 0x02, 0x50, 0x01, 0x5a, 0x01, 'z'};
    CHECK_EQ_INT(otlp_parse_export_response(TRACES, newer, sizeof newer, &rej, msg, sizeof msg), 0);
    CHECK_EQ_INT(rej, 2);

    /* a long message is cut to fit, NUL-terminated */
    char small[8];
    n = pack_response(1, "a rather long explanation", 1, buf);
    CHECK_EQ_INT(otlp_parse_export_response(TRACES, buf, n, &rej, small, sizeof small), 0);
    CHECK_STR(small, "a rathe");
    CHECK_EQ_INT(otlp_parse_export_response(TRACES, buf, n, &rej, NULL, 0),
                 0); /* no room: no write */
    CHECK_EQ_INT(rej, 1);

    /* not a response: an HTML error page, a truncated message */
    static const char html[] = "<html><body>502 Bad Gateway</body></html>";
    rej = 5;
    CHECK_EQ_INT(otlp_parse_export_response(TRACES, (const uint8_t *)html, sizeof html - 1, &rej,
                                            msg, sizeof msg),
                 -1);
    CHECK_EQ_INT(rej, 0);
    CHECK(strlen(msg) > 0 && strlen(msg) < sizeof msg);
    CHECK(strstr(msg, "not an OTLP ExportTraceServiceResponse") != NULL);
    CHECK_EQ_INT(otlp_parse_export_response(TRACES, hand, sizeof hand - 1, &rej, msg, sizeof msg),
                 -1);
    CHECK_EQ_INT(
        otlp_parse_export_response(TRACES, hand, sizeof hand - 1, &rej, small, sizeof small), -1);
    CHECK_EQ_INT(strlen(small), sizeof small - 1);
}

int main(void)
{
    test_span_basics();
    test_attrs();
    test_utf8();
    test_events_links_status();
    test_encode_unpack();
    test_wire_numbers();
    test_span_encoder();
    test_encode_empty();
    test_response();
    return check_done();
}
