/* otlp.c - OTLP trace payloads with protobuf-c (the contract is in otlp.h).
 *
 * Any thread may call these; a span encoder belongs to one thread at a
 * time, nothing else is shared. The encoder does not copy the spans'
 * strings and ids: it points the protobuf-c structs at them and packs each
 * span once, as a PackedSpan whose attributes are already-encoded
 * KeyValues (from the memo when they repeat); the request then wraps those
 * bytes (proto/trace_packed.proto: the same bytes as the official request,
 * each level sized once). Scratch arrays live in the encoder and only
 * grow, so a span costs no malloc once the encoder has seen its shape.
 *
 * Field choices a receiver sees: parent_span_id is absent for a root span;
 * Span.flags and Link.flags carry only the W3C trace flags (bits 0-7), so
 * bits 8-9 say "not known whether the parent is remote", which is what the
 * proto asks of a producer that does not track it; status is absent when it
 * is UNSET without a message. */
#include "telemetry/traces/otlp.h"

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

/* ------------------------------------------------------------ one span */

/* The memo: encoded KeyValues of attributes whose key is a string literal
 * and whose value is a number, a bool or a short string, direct-mapped by
 * (key address, value). The engine's own attributes repeat from span to
 * span (http.request.method = "GET", server.port = 443, worker.id = 3), and
 * a hit costs a hash and a compare where packing costs protobuf-c's walk of
 * two messages. */
/* The most a field takes besides its payload: a tag (two bytes for
 * Span.flags = 16, one for the rest) and a varint of up to 10 bytes, as a
 * length or a value. */
#define FIELD_MAX 12

#define MEMO_SLOTS 64
#define MEMO_STR 24 /* longest string value kept */
#define MEMO_ENC 64 /* longest encoded KeyValue kept */

struct memo_entry {
    const char *key; /* NULL: empty */
    uint64_t serial; /* the span that last used it: not replaced during that span */
    uint64_t bits;   /* int, bool, or the double's bits */
    uint8_t type, slen, len;
    char s[MEMO_STR];
    uint8_t enc[MEMO_ENC];
};

struct otlp_span_encoder {
    Shoal__Otlp__V1__PackedSpan p;
    pb_status status;
    uint64_t serial;
    /* the prepared span's attributes: bytes in the memo, or at arena_off in
     * the arena (which may move while it grows, so offsets until the end) */
    ProtobufCBinaryData *attr;
    size_t *arena_off;
    size_t attr_cap;
    uint8_t *arena;
    size_t arena_cap, arena_used;
    /* events and links: plain messages, like the request's other levels */
    pb_event *ev;
    pb_event **evp;
    size_t ev_cap;
    pb_kv *kv;
    pb_kv **kvp;
    size_t kv_cap;
    pb_any *any;
    size_t any_cap;
    pb_link *link;
    pb_link **linkp;
    size_t link_cap;
    struct memo_entry memo[MEMO_SLOTS];
};

struct otlp_span_encoder *otlp_span_encoder_new(void)
{
    return calloc(1, sizeof(struct otlp_span_encoder));
}

void otlp_span_encoder_free(struct otlp_span_encoder *e)
{
    if (!e)
        return;
    free(e->attr);
    free(e->arena_off);
    free(e->arena);
    free(e->ev);
    free(e->evp);
    free(e->kv);
    free(e->kvp);
    free(e->any);
    free(e->link);
    free(e->linkp);
    free(e);
}

/* Grows *p (an array of *cap elements of size) to hold n; 0 or -1. */
static int reserve(void *p, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < n)
        c *= 2;
    void *np = realloc(*(void **)p, c * size);
    if (!np)
        return -1;
    *(void **)p = np;
    *cap = c;
    return 0;
}

/* reserve() for arrays that grow together. */
static int reserve2(void *a, void *b, size_t *cap, size_t n, size_t size_a, size_t size_b)
{
    size_t c = *cap;
    if (reserve(a, &c, n, size_a) < 0)
        return -1;
    c = *cap;
    if (reserve(b, &c, n, size_b) < 0)
        return -1;
    *cap = c;
    return 0;
}

static uint64_t attr_bits(const struct attr *t)
{
    uint64_t b = 0;
    if (t->type == ATTR_INT)
        b = (uint64_t)t->v.i;
    else if (t->type == ATTR_DOUBLE)
        memcpy(&b, &t->v.d, sizeof b);
    else if (t->type == ATTR_BOOL)
        b = (uint64_t)(t->v.b != 0);
    return b;
}

/* The memo slot for t, or NULL if t is not kept there (*slen: the string
 * value's length). */
static struct memo_entry *memo_slot(struct otlp_span_encoder *e, const struct attr *t,
                                    size_t *slen)
{
    if (!t->key_static)
        return NULL;
    uint64_t h = (uint64_t)(uintptr_t)t->key * 0x9e3779b97f4a7c15u;
    if (t->type == ATTR_STRING) {
        /* the length and the first and last eight bytes: memo_holds
         * compares the rest */
        *slen = strlen(t->v.s);
        if (*slen > MEMO_STR)
            return NULL;
        uint64_t head = 0, tail = 0;
        memcpy(&head, t->v.s, *slen < 8 ? *slen : 8);
        if (*slen > 8)
            memcpy(&tail, t->v.s + *slen - 8, 8);
        h ^= (head * 0xff51afd7ed558ccdu) ^ (tail * 0xc4ceb9fe1a85ec53u) ^ *slen;
    } else {
        *slen = 0;
        h ^= attr_bits(t) * 0xff51afd7ed558ccdu;
    }
    h ^= h >> 29;
    return &e->memo[(h ^ (h >> 17)) % MEMO_SLOTS];
}

static int memo_holds(const struct memo_entry *m, const struct attr *t, size_t slen)
{
    if (m->key != t->key || m->type != (uint8_t)t->type)
        return 0;
    if (t->type == ATTR_STRING)
        return m->slen == slen && memcmp(m->s, t->v.s, slen) == 0;
    return m->bits == attr_bits(t);
}

/* Readies attribute i of the span being prepared: from the memo, or packed
 * into the arena (and kept in the memo when it may repeat). 0 or -1. */
static int prepare_attr(struct otlp_span_encoder *e, size_t i, const struct attr *t)
{
    size_t slen = 0;
    struct memo_entry *m = memo_slot(e, t, &slen);
    if (m && memo_holds(m, t, slen)) {
        m->serial = e->serial;
        e->attr[i].data = m->enc;
        e->attr[i].len = m->len;
        e->arena_off[i] = SIZE_MAX;
        return 0;
    }
    pb_kv kv;
    pb_any any;
    pb_kv *kvp;
    struct attrs one = {.a = (struct attr *)t, .n = 1};
    otlp_put_attrs(&one, &kv, &any, &kvp);
    /* packed against a bound rather than sized first: protobuf-c's sizing
     * walks the message as far as packing does */
    size_t value = t->type == ATTR_STRING ? (m ? slen : strlen(t->v.s)) : 0;
    size_t bound = 2 * FIELD_MAX + strlen(t->key) + FIELD_MAX + value;
    if (reserve(&e->arena, &e->arena_cap, e->arena_used + bound, 1) < 0)
        return -1;
    uint8_t *out = e->arena + e->arena_used;
    size_t len = opentelemetry__proto__common__v1__key_value__pack(&kv, out);
    e->arena_off[i] = e->arena_used;
    e->attr[i].len = len;
    e->arena_used += len;
    if (m && m->serial != e->serial && len <= MEMO_ENC) {
        m->key = t->key;
        m->serial = e->serial;
        m->type = (uint8_t)t->type;
        m->bits = attr_bits(t);
        m->slen = (uint8_t)slen;
        memcpy(m->s, t->type == ATTR_STRING ? t->v.s : "", slen);
        m->len = (uint8_t)len;
        memcpy(m->enc, out, len);
    }
    return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Events and links, as plain messages. 0 or -1. */
static int prepare_events_links(struct otlp_span_encoder *e, const struct span *s)
{
    Shoal__Otlp__V1__PackedSpan *p = &e->p;
    size_t nkv = 0;
    for (int i = 0; i < s->nevents; i++)
        nkv += (size_t)s->events[i].attrs.n;
    if (reserve2(&e->ev, &e->evp, &e->ev_cap, (size_t)s->nevents, sizeof *e->ev,
                 sizeof *e->evp) < 0 ||
        reserve2(&e->kv, &e->kvp, &e->kv_cap, nkv, sizeof *e->kv, sizeof *e->kvp) < 0 ||
        reserve(&e->any, &e->any_cap, nkv, sizeof *e->any) < 0)
        return -1;
    size_t k = 0;
    for (int i = 0; i < s->nevents; i++) {
        const struct span_event *se = &s->events[i];
        pb_event *pe = &e->ev[i];
        opentelemetry__proto__trace__v1__span__event__init(pe);
        pe->time_unix_nano = se->time_ns;
        pe->name = se->name;
        pe->n_attributes = (size_t)se->attrs.n;
        pe->attributes = se->attrs.n ? &e->kvp[k] : NULL;
        otlp_put_attrs(&se->attrs, &e->kv[k], &e->any[k], &e->kvp[k]);
        k += (size_t)se->attrs.n;
        e->evp[i] = pe;
    }
    p->n_events = (size_t)s->nevents;
    p->events = s->nevents ? e->evp : NULL;

    if (reserve2(&e->link, &e->linkp, &e->link_cap, (size_t)s->nlinks, sizeof *e->link,
                 sizeof *e->linkp) < 0)
        return -1;
    for (int i = 0; i < s->nlinks; i++) {
        pb_link *pl = &e->link[i];
        opentelemetry__proto__trace__v1__span__link__init(pl);
        pl->trace_id.data = (uint8_t *)s->links[i].trace_id;
        pl->trace_id.len = sizeof s->links[i].trace_id;
        pl->span_id.data = (uint8_t *)s->links[i].span_id;
        pl->span_id.len = sizeof s->links[i].span_id;
        pl->flags = s->links[i].flags;
        e->linkp[i] = pl;
    }
    p->n_links = (size_t)s->nlinks;
    p->links = s->nlinks ? e->linkp : NULL;
    return 0;
}

size_t otlp_span_prepare(struct otlp_span_encoder *e, const struct span *s)
{
    Shoal__Otlp__V1__PackedSpan *p = &e->p;
    shoal__otlp__v1__packed_span__init(p);
    e->serial++;
    p->trace_id.data = (uint8_t *)s->trace_id;
    p->trace_id.len = sizeof s->trace_id;
    p->span_id.data = (uint8_t *)s->span_id;
    p->span_id.len = sizeof s->span_id;
    if (!all_zero(s->parent_span_id, sizeof s->parent_span_id)) {
        p->parent_span_id.data = (uint8_t *)s->parent_span_id;
        p->parent_span_id.len = sizeof s->parent_span_id;
    }
    p->trace_state = s->trace_state; /* NULL or "" is left out */
    p->flags = s->flags;
    p->name = s->name;
    p->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
    p->start_time_unix_nano = s->start_ns;
    p->end_time_unix_nano = s->end_ns;

    size_t n = (size_t)s->attrs.n;
    if (reserve2(&e->attr, &e->arena_off, &e->attr_cap, n, sizeof *e->attr,
                 sizeof *e->arena_off) < 0)
        return 0;
    e->arena_used = 0;
    for (size_t i = 0; i < n; i++)
        if (prepare_attr(e, i, &s->attrs.a[i]) < 0)
            return 0;
    for (size_t i = 0; i < n; i++)
        if (e->arena_off[i] != SIZE_MAX)
            e->attr[i].data = e->arena + e->arena_off[i];
    p->n_attributes = n;
    p->attributes = n ? e->attr : NULL;
    p->dropped_attributes_count = s->dropped_attrs;

    if (s->status != SPAN_STATUS_UNSET || (s->status_message && *s->status_message)) {
        opentelemetry__proto__trace__v1__status__init(&e->status);
        e->status.code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status;
        e->status.message = s->status_message;
        p->status = &e->status;
    }

    /* events and links are rare: those spans are sized exactly */
    if (s->nevents || s->nlinks) {
        if (prepare_events_links(e, s) < 0)
            return 0;
        return shoal__otlp__v1__packed_span__get_packed_size(p);
    }
    /* the rest are packed against a bound: every field at its widest */
    size_t bound = 12 * FIELD_MAX + sizeof s->trace_id + sizeof s->span_id +
                   sizeof s->parent_span_id + strlen(s->name) +
                   (s->trace_state ? strlen(s->trace_state) : 0) +
                   (p->status ? 3 * FIELD_MAX + strlen(s->status_message ? s->status_message : "")
                              : 0);
    for (size_t i = 0; i < n; i++)
        bound += FIELD_MAX + e->attr[i].len;
    return bound;
}

size_t otlp_span_pack(struct otlp_span_encoder *e, uint8_t *out)
{
    return shoal__otlp__v1__packed_span__pack(&e->p, out);
}

/* ------------------------------------------------------------ the request */

int otlp_wrap_traces(const struct otel_resource *res, const ProtobufCBinaryData *spans, size_t n,
                     uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    size_t nres = (size_t)res->attrs.n;
    pb_kv *kv = calloc(nres ? nres : 1, sizeof *kv);
    pb_any *any = calloc(nres ? nres : 1, sizeof *any);
    pb_kv **kvp = calloc(nres ? nres : 1, sizeof *kvp);
    uint8_t *buf = NULL;
    if (!kv || !any || !kvp)
        goto done;

    pb_resource resource;
    pb_scope scope;
    otlp_put_resource(res, kv, any, kvp, &resource, &scope);

    /* the wrapper carries the spans' bytes (trace_packed.proto says why
     * that is the same request) */
    Shoal__Otlp__V1__PackedScopeSpans ss, *ssp = &ss;
    shoal__otlp__v1__packed_scope_spans__init(&ss);
    ss.scope = &scope;
    ss.n_spans = n;
    ss.spans = n ? (ProtobufCBinaryData *)spans : NULL;

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
    if (buf && shoal__otlp__v1__packed_export_trace_service_request__pack(&req, buf) == size) {
        *out = buf;
        *len = size;
        buf = NULL;
    }
done:
    free(buf);
    free(kv);
    free(any);
    free(kvp);
    return *out ? 0 : -1;
}

int otlp_encode_traces(const struct otel_resource *res, struct span *const *spans, size_t n,
                       uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    struct otlp_span_encoder *e = otlp_span_encoder_new();
    ProtobufCBinaryData *bin = calloc(n ? n : 1, sizeof *bin);
    size_t *at = calloc(n ? n : 1, sizeof *at);
    uint8_t *all = NULL;
    size_t used = 0, cap = 0;
    int rc = -1;
    if (!e || !bin || !at)
        goto done;
    for (size_t i = 0; i < n; i++) {
        size_t room = otlp_span_prepare(e, spans[i]);
        if (!room || reserve(&all, &cap, used + room, 1) < 0)
            goto done;
        at[i] = used;
        bin[i].len = otlp_span_pack(e, all + used);
        used += bin[i].len;
    }
    for (size_t i = 0; i < n; i++)
        bin[i].data = all + at[i];
    rc = otlp_wrap_traces(res, bin, n, out, len);
done:
    otlp_span_encoder_free(e);
    free(bin);
    free(at);
    free(all);
    return rc;
}
