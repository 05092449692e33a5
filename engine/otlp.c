/* otlp.c - OTLP trace payloads with protobuf-c (the contract is in otlp.h).
 *
 * Any thread may call these; they share nothing. The encoder does not copy
 * the spans' strings and ids: it points the protobuf-c structs at them,
 * packs each Span once, wraps those bytes in the request
 * (proto/trace_packed.proto: the same bytes as the official request, sized
 * once rather than at every level), and frees the structs. Those structs
 * come from a handful of arrays sized up front (struct msgs), so one
 * request costs a few mallocs whatever the number of spans and attributes,
 * and a failure leaves nothing behind.
 *
 * Field choices a receiver sees: parent_span_id is absent for a root span;
 * Span.flags and Link.flags carry only the W3C trace flags (bits 0-7), so
 * bits 8-9 say "not known whether the parent is remote", which is what the
 * proto asks of a producer that does not track it; status is absent when it
 * is UNSET without a message. */
#include "otlp.h"

#include "trace_packed.pb-c.h"
#include "trace_service.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse pb_response;
#define PB_RESPONSE(fn)                                                                            \
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__##fn

/* Every message of one request but the few singletons. Each array has room
 * for the whole request; the counters say how much is handed out. */
struct msgs {
    pb_kv *kv;
    pb_kv **kvp; /* the repeated fields point into this */
    pb_any *any;
    size_t nkv;
    pb_span *span;
    pb_span **spanp;
    pb_event *ev;
    pb_event **evp;
    size_t nev;
    pb_link *link;
    pb_link **linkp;
    size_t nlink;
    pb_status *status;
};

static void msgs_free(struct msgs *m)
{
    free(m->kv);
    free(m->kvp);
    free(m->any);
    free(m->span);
    free(m->spanp);
    free(m->ev);
    free(m->evp);
    free(m->link);
    free(m->linkp);
    free(m->status);
}

/* calloc that never returns NULL for zero elements, so NULL means OOM. */
static void *alloc_n(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

static int msgs_alloc(struct msgs *m, const struct otel_resource *res, struct span *const *spans,
                      size_t n)
{
    size_t kv = (size_t)res->attrs.n, ev = 0, link = 0;
    for (size_t i = 0; i < n; i++) {
        const struct span *s = spans[i];
        kv += (size_t)s->attrs.n;
        for (int e = 0; e < s->nevents; e++)
            kv += (size_t)s->events[e].attrs.n;
        ev += (size_t)s->nevents;
        link += (size_t)s->nlinks;
    }
    memset(m, 0, sizeof *m);
    m->kv = alloc_n(kv, sizeof *m->kv);
    m->kvp = alloc_n(kv, sizeof *m->kvp);
    m->any = alloc_n(kv, sizeof *m->any);
    m->span = alloc_n(n, sizeof *m->span);
    m->spanp = alloc_n(n, sizeof *m->spanp);
    m->ev = alloc_n(ev, sizeof *m->ev);
    m->evp = alloc_n(ev, sizeof *m->evp);
    m->link = alloc_n(link, sizeof *m->link);
    m->linkp = alloc_n(link, sizeof *m->linkp);
    m->status = alloc_n(n, sizeof *m->status);
    if (!m->kv || !m->kvp || !m->any || !m->span || !m->spanp || !m->ev || !m->evp || !m->link ||
        !m->linkp || !m->status) {
        msgs_free(m);
        return -1;
    }
    return 0;
}

void otlp_put_attrs(const struct attrs *a, pb_kv *kv, pb_any *any, pb_kv **kvp)
{
    for (int i = 0; i < a->n; i++) {
        const struct attr *t = &a->a[i];
        pb_kv *k = &kv[i];
        pb_any *v = &any[i];
        opentelemetry__proto__common__v1__key_value__init(k);
        opentelemetry__proto__common__v1__any_value__init(v);
        k->key = t->key;
        k->value = v;
        switch (t->type) {
        case ATTR_STRING:
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            v->string_value = t->v.s;
            break;
        case ATTR_INT:
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            v->int_value = t->v.i;
            break;
        case ATTR_DOUBLE:
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
            v->double_value = t->v.d;
            break;
        case ATTR_BOOL:
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
            v->bool_value = t->v.b != 0;
            break;
        }
        kvp[i] = k;
    }
}

/* Hands out one KeyValue per attribute of a; sets the repeated field. */
static void put_attrs(struct msgs *m, const struct attrs *a, size_t *n_out, pb_kv ***out)
{
    *n_out = (size_t)a->n;
    *out = a->n ? &m->kvp[m->nkv] : NULL;
    otlp_put_attrs(a, &m->kv[m->nkv], &m->any[m->nkv], &m->kvp[m->nkv]);
    m->nkv += (size_t)a->n;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void put_span(struct msgs *m, size_t i, struct span *s)
{
    pb_span *p = &m->span[i];
    opentelemetry__proto__trace__v1__span__init(p);
    p->trace_id.data = s->trace_id;
    p->trace_id.len = sizeof s->trace_id;
    p->span_id.data = s->span_id;
    p->span_id.len = sizeof s->span_id;
    if (!all_zero(s->parent_span_id, sizeof s->parent_span_id)) {
        p->parent_span_id.data = s->parent_span_id;
        p->parent_span_id.len = sizeof s->parent_span_id;
    }
    p->trace_state = s->trace_state; /* NULL or "" is left out */
    p->flags = s->flags;
    p->name = s->name;
    p->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
    p->start_time_unix_nano = s->start_ns;
    p->end_time_unix_nano = s->end_ns;
    put_attrs(m, &s->attrs, &p->n_attributes, &p->attributes);
    p->dropped_attributes_count = s->dropped_attrs;

    p->n_events = (size_t)s->nevents;
    p->events = s->nevents ? &m->evp[m->nev] : NULL;
    for (int e = 0; e < s->nevents; e++) {
        pb_event *pe = &m->ev[m->nev];
        opentelemetry__proto__trace__v1__span__event__init(pe);
        pe->time_unix_nano = s->events[e].time_ns;
        pe->name = s->events[e].name;
        put_attrs(m, &s->events[e].attrs, &pe->n_attributes, &pe->attributes);
        m->evp[m->nev++] = pe;
    }

    p->n_links = (size_t)s->nlinks;
    p->links = s->nlinks ? &m->linkp[m->nlink] : NULL;
    for (int l = 0; l < s->nlinks; l++) {
        pb_link *pl = &m->link[m->nlink];
        opentelemetry__proto__trace__v1__span__link__init(pl);
        pl->trace_id.data = s->links[l].trace_id;
        pl->trace_id.len = sizeof s->links[l].trace_id;
        pl->span_id.data = s->links[l].span_id;
        pl->span_id.len = sizeof s->links[l].span_id;
        pl->flags = s->links[l].flags;
        m->linkp[m->nlink++] = pl;
    }

    if (s->status != SPAN_STATUS_UNSET || (s->status_message && *s->status_message)) {
        pb_status *st = &m->status[i];
        opentelemetry__proto__trace__v1__status__init(st);
        st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status;
        st->message = s->status_message;
        p->status = st;
    }
    m->spanp[i] = p;
}

int otlp_encode_traces(const struct otel_resource *res, struct span *const *spans, size_t n,
                       uint8_t **out, size_t *len)
{
    struct msgs m;
    *out = NULL;
    *len = 0;
    if (msgs_alloc(&m, res, spans, n) < 0)
        return -1;

    pb_resource resource;
    opentelemetry__proto__resource__v1__resource__init(&resource);
    put_attrs(&m, &res->attrs, &resource.n_attributes, &resource.attributes);

    pb_scope scope;
    opentelemetry__proto__common__v1__instrumentation_scope__init(&scope);
    scope.name = (char *)res->scope_name;
    scope.version = (char *)res->scope_version;

    for (size_t i = 0; i < n; i++)
        put_span(&m, i, spans[i]);

    /* each span packed once, into one buffer; the wrapper carries the
     * bytes (trace_packed.proto says why that is the same request) */
    uint8_t *spanbuf = NULL, *buf = NULL;
    ProtobufCBinaryData *enc = alloc_n(n, sizeof *enc);
    size_t total = 0;
    if (!enc)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        enc[i].len = opentelemetry__proto__trace__v1__span__get_packed_size(m.spanp[i]);
        total += enc[i].len;
    }
    if (!(spanbuf = malloc(total ? total : 1)))
        goto fail;
    for (size_t i = 0, at = 0; i < n; at += enc[i].len, i++) {
        enc[i].data = spanbuf + at;
        opentelemetry__proto__trace__v1__span__pack(m.spanp[i], enc[i].data);
    }

    Shoal__Otlp__V1__PackedScopeSpans ss, *ssp = &ss;
    shoal__otlp__v1__packed_scope_spans__init(&ss);
    ss.scope = &scope;
    ss.n_spans = n;
    ss.spans = n ? enc : NULL;

    Shoal__Otlp__V1__PackedResourceSpans rs, *rsp = &rs;
    shoal__otlp__v1__packed_resource_spans__init(&rs);
    rs.resource = &resource;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;

    Shoal__Otlp__V1__PackedExportTraceServiceRequest req;
    shoal__otlp__v1__packed_export_trace_service_request__init(&req);
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;

    size_t size = shoal__otlp__v1__packed_export_trace_service_request__get_packed_size(&req);
    buf = malloc(size);
    if (!buf || shoal__otlp__v1__packed_export_trace_service_request__pack(&req, buf) != size)
        goto fail;
    free(enc);
    free(spanbuf);
    msgs_free(&m);
    *out = buf;
    *len = size;
    return 0;
fail:
    free(buf);
    free(enc);
    free(spanbuf);
    msgs_free(&m);
    return -1;
}

static void set_msg(char *msg, size_t msglen, const char *s)
{
    if (!msglen)
        return;
    size_t n = strlen(s);
    if (n >= msglen)
        n = msglen - 1;
    memcpy(msg, s, n);
    msg[n] = 0;
}

int otlp_parse_export_response(const char *what, const uint8_t *buf, size_t len, int64_t *rejected,
                               char *msg, size_t msglen)
{
    *rejected = 0;
    set_msg(msg, msglen, "");
    if (len == 0)
        return 0;
    pb_response *r = PB_RESPONSE(unpack)(NULL, len, buf);
    if (!r) {
        if (msglen)
            snprintf(msg, msglen, "not an OTLP %s (%zu bytes)", what, len);
        return -1;
    }
    if (r->partial_success) {
        int64_t n = r->partial_success->rejected_spans;
        *rejected = n > 0 ? n : 0;
        if (r->partial_success->error_message)
            set_msg(msg, msglen, r->partial_success->error_message);
    }
    PB_RESPONSE(free_unpacked)(r, NULL);
    return 0;
}
