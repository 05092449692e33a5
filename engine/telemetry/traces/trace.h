/* trace.h - trace context: ids, W3C traceparent, and the sampler.
 *
 * Ids come from a per-thread xoshiro256** generator seeded from the kernel
 * (getrandom), so making one takes no lock and no system call; an id is
 * never all zero. traceparent follows W3C Trace Context level 1: a header
 * that does not parse is ignored (the job starts a trace of its own), never
 * an error. The sampler decides as OTEL_TRACES_SAMPLER says (otel.c reads
 * that setting into a struct trace_sampler).
 * Pure functions apart from the per-thread generator; any thread. */
#ifndef SHOAL_TRACE_H
#define SHOAL_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/send/otel.h" /* struct trace_sampler: OTEL_TRACES_SAMPLER */

#define TRACE_FLAG_SAMPLED 0x01
#define TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */

struct trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;
    uint8_t valid; /* 0: no context */
};

void trace_new_trace_id(uint8_t out[16]);
void trace_new_span_id(uint8_t out[8]);

/* Lower-case hex of n bytes into out (2n chars and a NUL): base/hex.h's
 * hex_encode, by the name the tracing code knows. */
void trace_hex(const uint8_t *b, size_t n, char *out);

/* Parses a traceparent header value (len bytes, surrounding blanks
 * allowed). Returns 0 and fills out (valid = 1), or -1 if it is malformed:
 * wrong length, upper-case or non-hex digits, version ff, an all-zero id,
 * or (version 00) anything after the flags. */
int trace_parse_traceparent(const char *s, size_t len, struct trace_ctx *out);

/* Writes "00-<trace id>-<span id>-<flags>" and a NUL into out, which has
 * room for TRACEPARENT_LEN + 1 bytes. */
void trace_format_traceparent(const struct trace_ctx *c, char *out);

/* A job's trace context as the queue carries it: kind 'P' + ids continues
 * that trace (a traceparent the script gave the job), 'L' + ids links the
 * job's trace to the span that pushed it. */
#define TRACE_CTX_LEN 26
#define TRACESTATE_MAX 512 /* W3C: a tracestate header of at most 512 characters */
void trace_pack(uint8_t out[TRACE_CTX_LEN], char kind, const struct trace_ctx *c);
/* Whether s (len bytes) may be sent as a tracestate header: 1..512 bytes of
 * printable ASCII (list members are not checked one by one). */
int trace_state_ok(const char *s, size_t len);

/* Whether a new span in trace_id is sampled, given its parent's context
 * (NULL or !valid for a root span). */
int trace_sampler_decide(const struct trace_sampler *s, const uint8_t trace_id[16],
                   const struct trace_ctx *parent);

#endif
