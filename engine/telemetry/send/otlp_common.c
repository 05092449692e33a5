/* otlp_common.c - the OTLP pieces every signal shares (see otlp_common.h).
 *
 * The strings of the attributes are pointed at, not copied: a request's
 * protobuf structs live no longer than the attributes they encode. */
#include "telemetry/send/otlp_common.h"

#include "trace_service.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource;
/* every signal's Export*ServiceResponse has the same fields: the traces'
 * reads them all */
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse pb_response;
#define PB_RESPONSE(fn)                                                                            \
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__##fn

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

void otlp_put_resource(const struct otel_resource *res, pb_kv *kv, pb_any *any, pb_kv **kvp,
                       pb_resource *resource, pb_scope *scope)
{
    size_t n = (size_t)res->attrs.n;
    opentelemetry__proto__resource__v1__resource__init(resource);
    otlp_put_attrs(&res->attrs, kv, any, kvp);
    resource->n_attributes = n;
    resource->attributes = n ? kvp : NULL;
    opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
    scope->name = (char *)res->scope_name;
    scope->version = (char *)res->scope_version;
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
