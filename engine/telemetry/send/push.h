/* push.h - the plain HTTP transport of the sender framework (sender.h),
 * for the backends that are not OTLP: Loki and Pyroscope. One POST at a
 * time from the backend's sender thread, cut short at the shutdown
 * deadline.
 *
 * A backend embeds a struct push, fills it with push_init, starts its
 * sender with push_start (the sender's loop over the backend's ops) and
 * ends it with push_stop; its queue lives under push.s.lock, and what it
 * adds kicks the loop (sender_kick_locked). Its send op prepares each
 * request on `easy` (body, and the URL when it varies) and hands it to
 * push_send, which retries 429, 5xx and no answer as the sender framework
 * says (sender_retry) until the backend's bound, or once stopping until
 * the deadline, and counts the items exported or failed. The first
 * trouble is logged once, with the URL's credentials redacted.
 *
 * Threads: as sender.h; the curl handles and the reply belong to the
 * sender thread. */
#ifndef SHOAL_PUSH_H
#define SHOAL_PUSH_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "telemetry/send/sender.h"

struct registry;

struct push_config {
    const char *flag;           /* "--loki": names the option in errors */
    const char *url;            /* the request URL; messages show it redacted */
    const char *signal;         /* the signal label of the telemetry counters */
    const char *failure;        /* the warning when a push fails: "loki push failed" */
    const char *count;          /* its field for the items at stake ("lines"), or NULL */
    const char *const *headers; /* NULL-terminated, sent before Expect: and User-Agent */
    long timeout_ms;            /* per request; 0: 10 s */
};

struct push {
    struct sender s; /* the thread, lock, cond, stop, counts and warnings */
    struct sender_config sc;
    /* sender thread only */
    CURLM *multi;
    CURL *easy; /* the sink sets its body (and URL) before push_send */
    struct curl_slist *headers;
    char reply[256];
    size_t reply_len;
    double retry_after;
};

enum push_outcome {
    PUSH_SENT,      /* a 2xx */
    PUSH_FAILED,    /* refused, or out of tries */
    PUSH_UNANSWERED /* failed with no answer during shutdown */
};

/* Sets up the handles and counters (m may be NULL: tests). c's strings
 * must outlive p. 0, or -1 with "<flag>: out of memory" in err; either way
 * push_free releases what it made. */
int push_init(struct push *p, const struct push_config *c, struct registry *m, char *err,
              size_t errlen);
/* Starts the sender's loop over the backend's ops (sender_start). 0, or
 * -1 with err filled (nothing left to undo but push_free). */
int push_start(struct push *p, const struct sender_ops *ops, void *owner, char *err,
               size_t errlen);
/* Stops the sender by now + timeout_ms, a request in flight included
 * (sender_stop). */
void push_stop(struct push *p, long timeout_ms);
/* Releases the handles; not p itself. A zeroed p is fine. */
void push_free(struct push *p);

/* 0 when url is http(s) with a host (u then holds it), else -1. */
int push_url_ok(CURLU *u, const char *url);

/* Sends the request prepared on easy for n items, retrying until
 * retry_until (clock_now seconds) while the run goes on. Counts the n
 * items exported or failed and warns on the first trouble. */
enum push_outcome push_send(struct push *p, size_t n, double retry_until);
/* Counts n items failed for why (such as "out of memory"), warning once. */
void push_fail(struct push *p, size_t n, const char *why);

#endif
