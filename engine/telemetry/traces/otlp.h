/* otlp.h - OTLP/protobuf payloads for traces: the bytes of an export
 * request (the pieces every signal shares, attributes, resource and reading
 * the answer, are send/otlp_common.h's). The same bytes
 * go over gRPC (TraceService/Export) and over HTTP (POST /v1/traces);
 * sending them is the exporter's business. Pure functions: any thread, no
 * shared state. */
#ifndef SHOAL_OTLP_H
#define SHOAL_OTLP_H

#include "telemetry/send/otlp_common.h"
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

#endif
