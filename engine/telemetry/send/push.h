/* push.h - what the push exporters (Loki, Pyroscope) share: one HTTP POST
 * at a time from a sender thread of their own, retried with backoff, cut
 * short at the shutdown deadline.
 *
 * A sink embeds a struct push, fills it with push_init, starts its sender
 * with push_start and ends it with push_stop. The sender prepares each
 * request on `easy` (body, and the URL when it varies) and hands it to
 * push_send, which retries 429, 5xx and no answer (Retry-After honoured, at
 * most 30 s) until the sink's bound, or once stopping until the deadline,
 * and counts the items exported or failed. The first trouble is logged
 * once, with the URL's credentials redacted.
 *
 * Threads: `lock` guards `stopping` and `deadline`, and whatever the sink
 * keeps under it (its queue); `cond` wakes the sender, and waits on
 * CLOCK_MONOTONIC, the clock of clock_now().
 * push_stop runs on the thread that started it; push_dropped on any
 * thread (an atomic); everything else, and the fields below "sender thread
 * only", belong to the sender. */
#ifndef SHOAL_PUSH_H
#define SHOAL_PUSH_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct registry;
struct metric_series;

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
    void *(*fn)(void *); /* the sink's sender loop, and its argument */
    void *fn_arg;
    struct push_config c;
    char shown[512]; /* the URL for messages, credentials redacted */
    struct metric_series *exported, *dropped, *failed;

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;    /* under lock */
    double deadline; /* under lock, once stopping */
    _Atomic int dropped_any;

    /* sender thread only */
    CURLM *multi;
    CURL *easy; /* the sink sets its body (and URL) before push_send */
    struct curl_slist *headers;
    char reply[256];
    size_t reply_len;
    double retry_after;
    int warned, warned_drop;
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
/* Initialises lock and cond and starts fn(arg) as the sender. 0, or -1
 * with err filled (nothing left to undo but push_free). */
int push_start(struct push *p, void *(*fn)(void *), void *arg, char *err, size_t errlen);
/* Asks the sender to stop by now + timeout_ms, wakes it (a request in
 * flight included), joins it, and destroys lock and cond. */
void push_stop(struct push *p, long timeout_ms);
/* Releases the handles; not p itself. A zeroed p is fine. */
void push_free(struct push *p);

/* 0 when url is http(s) with a host (u then holds it), else -1. */
int push_url_ok(CURLU *u, const char *url);

/* When a request must end: the shutdown deadline, or INFINITY. *stopping
 * (when not NULL) tells whether shutdown has begun. Takes the lock. */
double push_deadline(struct push *p, int *stopping);
/* Whether the shutdown deadline has passed. */
int push_late(struct push *p);
/* Waits until `until` (clock_now seconds), the deadline, or the start of
 * shutdown, whichever comes first. */
void push_nap(struct push *p, double until);

/* Sends the request prepared on easy for n items, retrying until
 * retry_until (clock_now seconds) while the run goes on. Counts the n
 * items exported or failed and warns on the first trouble. */
enum push_outcome push_send(struct push *p, size_t n, double retry_until);
/* Counts n items failed for why (such as "out of memory"), warning once. */
void push_fail(struct push *p, size_t n, const char *why);
/* Counts n items dropped; push_warn_drops will then say so. Any thread. */
void push_dropped(struct push *p, size_t n);
/* Once, after the first drop: msg with the URL and key=value. */
void push_warn_drops(struct push *p, const char *msg, const char *key, int64_t value);

#endif
