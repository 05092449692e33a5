/* otlp_send.h - OTLP export requests over HTTP/protobuf or gRPC, and the
 * exporter thread every signal's batch processor runs on.
 *
 * Both go through libcurl: HTTP/protobuf is a POST of the message; gRPC is
 * a POST over HTTP/2 (h2c with prior knowledge for http://) of the message
 * in gRPC's 5-byte framing, with grpc-status read from the trailers (or
 * from the headers of a trailers-only answer). The outcome says what the
 * caller should do: done, retry (after retry_after seconds when the server
 * said), or give up. Called by an exporter thread on its own easy handle;
 * it blocks up to the target's timeout.
 *
 * The batcher (below) is the sending half of OpenTelemetry's batch
 * processor, the same for spans, log records and metrics, as ops of the
 * sender framework (sender.h): its thread waits for a full batch or the
 * schedule delay, takes a batch from the signal's queue,
 * has the signal encode it, sends it and retries what the collector may
 * take later (backoff, Retry-After, never past a deadline), counts the
 * outcome, reports the first failure once, and at shutdown flushes what
 * was accepted within the export timeout. The signal keeps its own queue
 * and says how to take, encode and free through struct otlp_batch_ops. */
#ifndef SHOAL_OTLP_SEND_H
#define SHOAL_OTLP_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/metrics/metrics.h"
#include "telemetry/send/otel.h"

enum otlp_outcome { OTLP_DONE, OTLP_RETRY, OTLP_GIVE_UP };

struct otlp_reply {
    enum otlp_outcome outcome;
    double retry_after; /* seconds the server asked to wait, 0 if it did not */
    long http_status;
    int grpc_status;   /* -1 when not gRPC or not given */
    char message[512]; /* why it failed, for the log */
    uint8_t *body;     /* the response message (gRPC framing removed), malloc'd */
    size_t body_len;
};

struct otlp_sender;

/* NULL on OOM. */
struct otlp_sender *otlp_sender_new(const struct otlp_target *t);
void otlp_sender_free(struct otlp_sender *s);

/* Sends msg (an encoded Export*ServiceRequest). Fills r (free r->body with
 * otlp_reply_clear). timeout_ms caps this attempt below the target's own
 * timeout when shorter (0: the target's). */
void otlp_send(struct otlp_sender *s, const uint8_t *msg, size_t len, long timeout_ms,
               struct otlp_reply *r);
void otlp_reply_clear(struct otlp_reply *r);

/* gzip of in (for Content-Encoding / grpc-encoding gzip). malloc'd; NULL on
 * failure. */
uint8_t *otlp_gzip(const uint8_t *in, size_t len, size_t *out_len);

/* Any thread: an attempt still running at when (clock_now() seconds)
 * ends then as a transport failure (OTLP_RETRY), within about a second.
 * 0: no such limit. */
void otlp_sender_abort_at(struct otlp_sender *s, double when);

/* ------------------------------------------------------------ the batcher */

/* What a signal gives its batcher. The callbacks run on the batcher's
 * thread with none of its locks held; owner is the signal's own state. */
struct otlp_batch_ops {
    const char *thread_name; /* "trace exporter": for the start-up error */
    const char *items;       /* "span(s)": for the messages */
    /* Moves up to max items from the queue into the signal's batch (any
     * earlier batch is released by then); returns how many. */
    size_t (*take)(void *owner, size_t max);
    /* Items waiting in the queue. */
    size_t (*queued)(void *owner);
    /* Encodes the n items of the batch: 0 with a malloc'd *out, or -1. */
    int (*encode)(void *owner, size_t n, uint8_t **out, size_t *len);
    /* Frees the n items of the batch, sent or not. */
    void (*release)(void *owner, size_t n); /* NULL: nothing to free */
    /* The answer's message, for otlp_parse_export_response
     * ("ExportTraceServiceResponse"). */
    const char *response;
    /* The first failure is logged once (WARN) with this message, and the
     * endpoint and error as fields. */
    const char *failure;
};

struct otlp_batcher_config {
    const struct otlp_target *target;
    size_t batch;    /* items a request at most */
    long delay_ms;   /* a partial batch waits this long */
    long timeout_ms; /* the flush at shutdown, and any one batch, get this long */
    struct telemetry_counts counts; /* exported and failed (NULLs: not counted) */
};

struct otlp_batcher;

/* Starts the thread; it calls ops at once, so owner must be ready. NULL
 * with a message in err on failure. ops and c->target must outlive it. */
struct otlp_batcher *otlp_batcher_start(const struct otlp_batcher_config *c,
                                        const struct otlp_batch_ops *ops, void *owner, char *err,
                                        size_t errlen);
/* A full batch is waiting: send now rather than at the delay. Any thread;
 * a short mutex once per batch, never I/O. */
void otlp_batcher_kick(struct otlp_batcher *b);
/* Sends what the queue holds (within timeout_ms; a collector that was
 * already away gets one try per batch; what is left at the deadline is
 * counted failed), stops the thread, frees. NULL is a no-op. */
void otlp_batcher_stop(struct otlp_batcher *b);

#endif
