/* otlp_common.h - the OTLP/protobuf pieces every signal's payload shares:
 * attributes, the resource and scope, and reading the collector's answer.
 * Pure functions: any thread, no shared state. */
#ifndef SHOAL_OTLP_COMMON_H
#define SHOAL_OTLP_COMMON_H

#include "common.pb-c.h"
#include "resource.pb-c.h"
#include "telemetry/send/attrs.h"

#include <stddef.h>
#include <stdint.h>

/* Reads an Export*ServiceResponse of any signal: they are the same bytes,
 * partial_success = 1 { rejected_<items> = 1 (int64), error_message = 2 }.
 * what names the message for the error ("ExportTraceServiceResponse").
 * buf is len bytes; an empty body is a full success. Returns 0 with
 * *rejected the number of items the receiver dropped (never negative) and
 * msg its error_message, "" if none; a message with *rejected == 0 is a
 * warning about accepted items. Returns -1 if buf is not such a message,
 * with *rejected 0 and msg saying so. msg is always NUL-terminated (cut to
 * fit) when msglen > 0. */
int otlp_parse_export_response(const char *what, const uint8_t *buf, size_t len, int64_t *rejected,
                               char *msg, size_t msglen);

/* Points kv[i], any[i] at the attributes of a (a->n of each, initialised
 * here; the strings are a's, not copied) and sets kvp[i] = &kv[i], for a
 * repeated KeyValue field. For the encoders of every signal. */
void otlp_put_attrs(const struct attrs *a, Opentelemetry__Proto__Common__V1__KeyValue *kv,
                    Opentelemetry__Proto__Common__V1__AnyValue *any,
                    Opentelemetry__Proto__Common__V1__KeyValue **kvp);

/* Every request's Resource and InstrumentationScope, from res: the
 * resource's attributes through kv, any and kvp (res->attrs.n of each, as
 * otlp_put_attrs), the scope named res->scope_name/scope_version. */
void otlp_put_resource(const struct otel_resource *res,
                       Opentelemetry__Proto__Common__V1__KeyValue *kv,
                       Opentelemetry__Proto__Common__V1__AnyValue *any,
                       Opentelemetry__Proto__Common__V1__KeyValue **kvp,
                       Opentelemetry__Proto__Resource__V1__Resource *resource,
                       Opentelemetry__Proto__Common__V1__InstrumentationScope *scope);

#endif
