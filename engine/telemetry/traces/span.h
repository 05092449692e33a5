/* span.h - a finished span as the engine hands it to the trace exporter.
 *
 * A span owns everything it points to (span_free releases it all). Workers
 * build spans on their own thread and pass finished ones to the exporter,
 * which encodes batches (otlp.c) and frees them; a span is never shared by
 * two threads at once. Times are Unix nanoseconds. */
#ifndef SHOAL_SPAN_H
#define SHOAL_SPAN_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/send/attrs.h"

/* Values as OTLP numbers them (Span.SpanKind, Status.StatusCode). */
enum span_kind { SPAN_KIND_INTERNAL = 1, SPAN_KIND_SERVER = 2, SPAN_KIND_CLIENT = 3 };
enum span_status { SPAN_STATUS_UNSET = 0, SPAN_STATUS_OK = 1, SPAN_STATUS_ERROR = 2 };

struct span_event {
    char *name;
    uint64_t time_ns;
    struct attrs attrs;
};

struct span_link {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags; /* W3C trace flags of the linked context */
};

struct span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_span_id[8]; /* all zero for a root span */
    uint8_t flags;             /* W3C trace flags: bit 0 = sampled */
    char *trace_state;         /* W3C tracestate, or NULL */
    char *name; /* in the span's text area, or malloc'd (name_owned) */
    unsigned char name_owned;
    enum span_kind kind;
    uint64_t start_ns, end_ns;
    enum span_status status;
    char *status_message; /* or NULL */
    struct attrs attrs;
    uint32_t dropped_attrs; /* past SPAN_MAX_ATTRS: counted, not kept */
    struct span_event *events;
    int nevents;
    struct span_link *links;
    int nlinks;
};

/* The OpenTelemetry SDKs' default attribute count limit per span: a user
 * span set from Lua cannot grow without bound. */
#define SPAN_MAX_ATTRS 128

/* A new span named name (copied), everything else zero. NULL on OOM. */
struct span *span_new(const char *name, enum span_kind kind);
/* Frees s and all it owns; NULL is a no-op. */
void span_free(struct span *s);

/* Adds an event (name copied) at time_ns; returns it so attributes can be
 * added (valid until the next span_add_event), or NULL on OOM. */
struct span_event *span_add_event(struct span *s, const char *name, uint64_t time_ns);
/* Adds a link. 0 / -1. */
int span_add_link(struct span *s, const uint8_t trace_id[16], const uint8_t span_id[8],
                  uint8_t flags);
/* Sets the status; message copied (may be NULL). */
void span_set_status(struct span *s, enum span_status st, const char *message);

#endif
