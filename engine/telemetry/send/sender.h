/* sender.h - the one sender framework every push backend runs on: OTLP
 * traces, logs and metrics (otlp_send.c's batcher, over HTTP/protobuf or
 * gRPC) and Loki and Pyroscope (push.c, a plain HTTP POST).
 *
 * A backend embeds a struct sender and gives it, in struct sender_config,
 * the names it shows and the counters it feeds, and in struct sender_ops
 * its queue: when its next batch is due, take it, send it, release it.
 * The sender owns what every backend needs and none should write twice:
 * the background thread and its batch loop (started through thread_start,
 * ended at sender_stop: every batch accepted is taken once more), the lock and the
 * condition that wake it (on CLOCK_MONOTONIC), the stop request and its
 * deadline, the kick of a full batch, the retry policy (one backoff,
 * backoff.c's schedule; Retry-After honoured up to 30 s; a backend that
 * does not answer once shutdown has begun is not waited for), counting
 * items exported, dropped or failed, and saying the first failure and the
 * first drop once through the process's logger. A backend only formats
 * its batches and names its endpoint; the transport (push.c, otlp_send.c)
 * makes the request.
 *
 * Threads: `lock` guards `stopping` and `deadline`, and whatever the
 * backend keeps under it (its queue, for Loki and Pyroscope); `cond` wakes
 * the sender's thread. sender_stop runs on the thread that started it;
 * sender_kick and sender_dropped on any thread (atomics, and a short lock
 * for the kick); the rest, and the fields below "the sender's thread
 * only", on the sender's thread. */
#ifndef SHOAL_SENDER_H
#define SHOAL_SENDER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "telemetry/metrics/metrics.h"

#define SENDER_RETRY_AFTER_MAX 30.0 /* the longest Retry-After taken as given */

/* A backend's queue, as the sender's loop sees it. The calls run on the
 * sender's thread with none of its locks held; owner is the backend's
 * own state. */
struct sender_ops {
    /* When the next batch is due (clock_now seconds; INFINITY: when
     * kicked). NULL: sender_config.delay after each round. */
    double (*due)(void *owner);
    /* Whether another batch is ready now (the round goes on). */
    int (*ready)(void *owner);
    /* Takes the batch that is due, or at shutdown (stopping) whatever is
     * left: its items (any count > 0 the backend likes), 0 when none. */
    size_t (*take)(void *owner, int stopping);
    /* Sends the batch taken (format, transport, retries, counts). */
    void (*send)(void *owner, size_t n, int stopping);
    /* Frees it, sent or not. NULL: nothing to free. */
    void (*release)(void *owner, size_t n);
};

struct sender_config {
    const char *thread;       /* the thread's name: "loki-sender", "otlp-exporter" */
    const char *what;         /* names it in start-up errors: "--loki", "trace exporter" */
    const char *endpoint;     /* its URL; messages show it with credentials redacted */
    const char *endpoint_key; /* the URL's field in messages: "url", "endpoint" */
    const char *failure;      /* the first failure's warning: "loki push failed" */
    const char *count;        /* its field for the items at stake ("lines"), or NULL */
    struct telemetry_counts counts;
    /* Called by sender_stop once stopping is set: cut a request in flight
     * at deadline (clock_now seconds). NULL: nothing to cut. */
    void (*wake)(void *arg, double deadline);
    void *wake_arg;
    double delay; /* seconds between rounds, when ops->due is NULL */
};

struct sender {
    struct sender_config c;
    char shown[512]; /* the endpoint for messages, credentials redacted */
    const struct sender_ops *ops;
    void *owner;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;    /* under lock */
    double deadline; /* under lock, once stopping */
    _Atomic int kicked, dropped_any;
    /* the sender's thread only */
    int warned, warned_drop;
    int attempt;  /* tries of the request being retried */
};

/* Initialises lock and cond and starts the sender's thread, whose loop
 * naps until a batch is due (or a kick, or the stop), then takes and sends
 * batches while they are ready; once stopping, it takes and sends what is
 * left and ends. It calls ops at once, so owner must be ready. c's strings
 * and ops must outlive s. 0, or -1 with err filled (nothing to undo). */
int sender_start(struct sender *s, const struct sender_config *c, const struct sender_ops *ops,
                 void *owner, char *err, size_t errlen);
/* Asks the thread to stop by now + timeout_ms, wakes it (and, through
 * c.wake, a request in flight), joins it, and destroys lock and cond. */
void sender_stop(struct sender *s, long timeout_ms);

/* Wakes the thread for a batch that is due (a full one, the first item of
 * one that is due later); once until it naps again. sender_kick_locked
 * with s->lock held (a backend whose queue lives under it). */
void sender_kick(struct sender *s);
void sender_kick_locked(struct sender *s);
/* When a request must end: the shutdown deadline, or INFINITY. *stopping
 * (when not NULL) tells whether shutdown has begun. Takes the lock. */
double sender_deadline(struct sender *s, int *stopping);
/* Whether the shutdown deadline has passed. */
int sender_late(struct sender *s);
/* Waits until `until` (clock_now seconds), the deadline once stopping,
 * or the start of shutdown, whichever comes first: a backend's pause
 * between tries. Returns whether shutdown has begun. Takes the lock. */
int sender_nap(struct sender *s, double until);

/* Seconds a Retry-After header's value asks for: its delay-seconds, at
 * most SENDER_RETRY_AFTER_MAX; 0 when it gives none (or an HTTP-date,
 * which then leaves the wait to the backoff). */
double sender_retry_after(const char *value);

enum sender_verdict {
    SENDER_AGAIN,     /* try the request again (after the wait) */
    SENDER_GIVE_UP,   /* refused, or out of time: count the items failed */
    SENDER_UNANSWERED /* no answer during shutdown: the backend is away */
};
/* Starts the retries of a new request (the backoff from its first step). */
void sender_begin(struct sender *s);
/* After a failed try: whether to try again and, in *wait, after how long
 * (Retry-After's seconds, else the backoff's). retryable: the failure may
 * pass (429, 5xx, no answer); answered: the backend answered at all;
 * retry_until: no try starts later while the run goes on (at shutdown the
 * deadline is the bound). The caller may say why, then calls sender_pause. */
enum sender_verdict sender_retry(struct sender *s, int retryable, int answered,
                                 double retry_after, double retry_until, double *wait);
/* Naps wait seconds (cut by shutdown): SENDER_AGAIN, or SENDER_UNANSWERED
 * when the backend did not answer and shutdown has begun meanwhile. */
enum sender_verdict sender_pause(struct sender *s, double wait, int answered);

/* Counting. Any thread for sender_dropped; the sender's thread else. */
void sender_exported(struct sender *s, size_t n);
void sender_failed(struct sender *s, size_t n);
void sender_dropped(struct sender *s, size_t n);
/* Once per sender, through the process's logger: c.failure with the
 * endpoint, status (when not 0), why, n in c.count's field, and retrying
 * (when 0 or 1; -1 leaves it out). No lock of the sender is held. */
void sender_warn(struct sender *s, long status, const char *why, size_t n, int retrying);
/* Once, after the first drop: msg with the endpoint and key=value. */
void sender_warn_drops(struct sender *s, const char *msg, const char *key, int64_t value);

#endif
