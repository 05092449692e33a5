/* otlp.h - OTLP/protobuf payloads for traces: the bytes of an export request
 * and the meaning of the receiver's answer. The same bytes go over gRPC
 * (TraceService/Export) and over HTTP (POST /v1/traces); sending them is the
 * exporter's business. Pure functions: any thread, no shared state. */
#ifndef SHOAL_OTLP_H
#define SHOAL_OTLP_H

#include "span.h"

#include <stddef.h>
#include <stdint.h>

/* Packs spans[0..n-1] into one ExportTraceServiceRequest: one ResourceSpans
 * for res, holding one ScopeSpans named after res->scope_name/scope_version.
 * The spans are only read. On success *out is a malloc'd buffer of *len
 * bytes that the caller frees, and 0 is returned; on OOM -1, with *out NULL
 * and *len 0. */
int otlp_encode_traces(const struct otel_resource *res, struct span *const *spans, size_t n,
                       uint8_t **out, size_t *len);

/* Reads an ExportTraceServiceResponse (buf, len bytes; an empty body is a
 * full success). Returns 0 with *rejected the number of spans the receiver
 * dropped (never negative) and msg its error_message, "" if none; a message
 * with *rejected == 0 is a warning about accepted spans. Returns -1 if buf
 * is not such a message, with *rejected 0 and msg saying so. msg is always
 * NUL-terminated (cut to fit) when msglen > 0. */
int otlp_parse_trace_response(const uint8_t *buf, size_t len, int64_t *rejected, char *msg,
                              size_t msglen);

#endif
