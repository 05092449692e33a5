/* queue.h - the shared job queue: push, take with a lease, ack, retry.
 *
 * One queue per run, shared by the producer and every worker thread. Jobs are
 * opaque bytes (the job's JSON); the queue never looks inside them. A job is
 * ready, delayed (not before a time) or leased (taken by a worker, not yet
 * acked). Retry puts a leased job back as delayed with attempt + 1; releasing
 * a worker puts all its leases back (a wedged or dead worker's jobs are taken
 * over). Acks and retries of a lease that is no longer held are ignored, so a
 * worker that comes back after its jobs were released cannot double-count.
 *
 * Backpressure is for the producer only: a push with from_producer set
 * returns QUEUE_FULL when ready + delayed >= capacity; pushes from workers
 * (crawl discovery) always succeed, so a crawl cannot deadlock itself.
 * Keys deduplicate: a key seen before in this run is dropped (QUEUE_DUP). The
 * queue keeps a 64-bit hash per key, not the key.
 *
 * Wakeups: a worker whose take found nothing is "hungry"; the next push of a
 * ready job calls that worker's notify function once (outside the lock). A
 * producer whose push was refused with QUEUE_FULL is notified once the queue
 * falls below capacity / 2. queue_close and the queue becoming drained notify
 * everyone. Delayed jobs wake nobody: a hungry worker sleeps until
 * queue_next_due().
 *
 * Thread safety: every function may be called from any thread; one mutex
 * guards the state and is held only for O(log n) work, never for a notify
 * callback or an allocation of job data. Times are seconds on the monotonic
 * clock (the caller passes now, so tests control time). */
#ifndef SHOAL_QUEUE_H
#define SHOAL_QUEUE_H

#include <stddef.h>
#include <stdint.h>

enum queue_status {
    QUEUE_OK = 0,
    QUEUE_FULL = 1,   /* producer push refused: wait for the notify, push again */
    QUEUE_DUP = 2,    /* key seen before: dropped, counted */
    QUEUE_CLOSED = 3, /* the run is stopping: nothing more is accepted */
    QUEUE_ERR = -1,   /* out of memory: nothing changed */
};

struct queue_config {
    size_t capacity; /* producer backpressure threshold, >= 1 */
    int workers;     /* notify slots: worker ids are 0 .. workers (0 = producer) */
};

#define QUEUE_CTX_MAX 544

struct queue_push_opts {
    const char *key; /* dedup key, or NULL */
    size_t key_len;
    double delay;      /* seconds from now before it may be taken; 0 = ready */
    int priority;      /* higher is taken first among ready jobs; FIFO within one */
    int from_producer; /* subject to capacity */
    const uint8_t *ctx; /* up to QUEUE_CTX_MAX bytes carried with the job (its
                           trace context), or NULL */
    size_t ctx_len;
};

struct queue_lease {
    uint64_t lease;   /* token for ack / retry; never 0 */
    uint64_t job_id;  /* stable across attempts, from 1 */
    int attempt;      /* 1 on the first attempt */
    const char *data; /* the job bytes, owned by the queue, valid until ack/retry/release */
    size_t len;
    const uint8_t *ctx; /* what the push carried, valid as data; ctx_len 0 if nothing */
    size_t ctx_len;
};

struct queue_stats {
    size_t ready, delayed, leased;
    uint64_t pushed;   /* accepted pushes (new jobs, not retries) */
    uint64_t dup;      /* pushes dropped by key */
    uint64_t retried;  /* retry calls accepted */
    uint64_t acked;
    size_t keys;       /* distinct keys held */
};

typedef struct queue queue;
typedef void (*queue_notify_fn)(void *arg);

/* Returns NULL on bad config or out of memory. */
queue *queue_new(const struct queue_config *cfg);
/* Frees everything, leases included. NULL is a no-op. */
void queue_free(queue *q);

/* Registers who to wake for worker id (0 = producer). Call before threads start. */
void queue_set_notify(queue *q, int worker, queue_notify_fn fn, void *arg);

/* Copies data and key. On QUEUE_OK stores the new job's id in *id_out (may be NULL). */
int queue_push(queue *q, const char *data, size_t len, const struct queue_push_opts *opts,
               double now, uint64_t *id_out);

/* Takes the best ready job (delayed jobs whose time has come count as ready).
 * Returns 1 and fills *out; 0 if none is ready (the worker becomes hungry);
 * 0 as well once closed. */
int queue_take(queue *q, int worker, double now, struct queue_lease *out);

/* The job is finished (done or finally failed). Returns 0, or -1 if the lease
 * is not held (released or already acked): nothing changes then. */
int queue_ack(queue *q, uint64_t lease);

/* Like queue_ack, but the job's bytes stay allocated until queue_free: for a
 * job whose worker thread is stuck and may still hold the data pointer. */
int queue_ack_kept(queue *q, uint64_t lease);

/* Puts the job back for another attempt, not before now + delay, attempt + 1,
 * same job id. Returns 0, or -1 if the lease is not held. */
int queue_retry(queue *q, uint64_t lease, double delay, double now);

/* Puts back every lease held by worker (same attempt number, ready now) except
 * `except` (0 = none), which stays leased for the caller to ack. Returns the
 * number put back. */
int queue_release_worker(queue *q, int worker, uint64_t except);

/* The producer has returned: once nothing is ready, delayed or leased the
 * queue is drained. */
void queue_producer_done(queue *q);
/* 1 when the producer is done and no job is ready, delayed or leased. */
int queue_drained(queue *q);

/* Stop handing out jobs (Ctrl-C): take returns 0, push returns QUEUE_CLOSED,
 * acks and retries still work (retries are recorded but not re-run). */
void queue_close(queue *q);

/* Earliest time a delayed job becomes ready; 0 if none is delayed. */
double queue_next_due(queue *q);

void queue_get_stats(queue *q, struct queue_stats *out);

#endif
