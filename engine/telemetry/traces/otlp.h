/* otlp.h - OTLP/protobuf payloads for traces: the bytes of an export request
 * and the meaning of the receiver's answer, plus the pieces the other
 * signals share (attributes, reading the answer). The same bytes
 * go over gRPC (TraceService/Export) and over HTTP (POST /v1/traces);
 * sending them is the exporter's business. Pure functions: any thread, no
 * shared state. */
#ifndef SHOAL_OTLP_H
#define SHOAL_OTLP_H

#include "common.pb-c.h"
#include "resource.pb-c.h"
#include "telemetry/traces/span.h"

#include <stddef.h>
#include <stdint.h>

/* Encoding is two steps: each span to its own bytes (an encoded
 * opentelemetry.proto.trace.v1.Span) where it ends, then a batch of those
 * wrapped into one request on the exporter.
 *
 * A span encoder keeps scratch space and a memo of encoded attributes that
 * repeat; one thread uses it at a time. otlp_span_prepare readies s and
 * returns the room its encoding needs at most (0 on OOM: a span is never
 * empty); s must stay as it is until otlp_span_pack writes the bytes to
 * out (that much room) and returns how many it wrote. */
struct otlp_span_encoder;
struct otlp_span_encoder *otlp_span_encoder_new(void); /* NULL on OOM */
void otlp_span_encoder_free(struct otlp_span_encoder *e);
size_t otlp_span_prepare(struct otlp_span_encoder *e, const struct span *s);
size_t otlp_span_pack(struct otlp_span_encoder *e, uint8_t *out);

/* One ExportTraceServiceRequest of n encoded spans: one ResourceSpans for
 * res, holding one ScopeSpans named after res->scope_name/scope_version. On
 * success *out is a malloc'd buffer of *len bytes that the caller frees,
 * and 0 is returned; on OOM -1, with *out NULL and *len 0. */
int otlp_wrap_traces(const struct otel_resource *res, const ProtobufCBinaryData *spans, size_t n,
                     uint8_t **out, size_t *len);

/* Both steps for spans[0..n-1] (only read), as otlp_wrap_traces returns. */
int otlp_encode_traces(const struct otel_resource *res, struct span *const *spans, size_t n,
                       uint8_t **out, size_t *len);

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
