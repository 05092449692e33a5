/* otlp_send.h - one OTLP export request over HTTP/protobuf or gRPC.
 *
 * Both go through libcurl: HTTP/protobuf is a POST of the message; gRPC is
 * a POST over HTTP/2 (h2c with prior knowledge for http://) of the message
 * in gRPC's 5-byte framing, with grpc-status read from the trailers (or
 * from the headers of a trailers-only answer). The outcome says what the
 * caller should do: done, retry (after retry_after seconds when the server
 * said), or give up. Called by an exporter thread on its own easy handle;
 * it blocks up to the target's timeout. */
#ifndef SHOAL_OTLP_SEND_H
#define SHOAL_OTLP_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "otel.h"

enum otlp_outcome { OTLP_DONE, OTLP_RETRY, OTLP_GIVE_UP };

struct otlp_reply {
    enum otlp_outcome outcome;
    double retry_after; /* seconds the server asked to wait, 0 if it did not */
    long http_status;
    int grpc_status; /* -1 when not gRPC or not given */
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

#endif
