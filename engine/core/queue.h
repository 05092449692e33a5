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
 * in-memory backend keeps a 64-bit hash per key, not the key.
 *
 * Every job has a group (a string, empty unless the push names one; the
 * crawl defaults it to the URL's host), handed back with its lease. Take
 * honours per-group politeness inside the backend: a group has at most
 * group_limit jobs leased at once and starts one job per group_delay (with
 * jitter), tune overrides both for one group (robots' Crawl-delay,
 * autothrottle) and pause holds a group back until a time (a 429's
 * Retry-After). A job of a group that is full or not yet open is skipped,
 * never returned, and never holds up the jobs of other groups. The empty
 * group is never limited, so a run that names no group behaves as if there
 * were no groups. See queue_backend.h.
 *
 * Wakeups: a worker whose take found nothing is "hungry"; the next push of a
 * ready job, or an ack that frees a place in a full group with jobs waiting,
 * calls that worker's notify function once (outside the lock). A
 * producer whose push was refused with QUEUE_FULL is notified once the queue
 * falls below capacity / 2. queue_close and the queue becoming drained notify
 * everyone. Delayed jobs and groups waiting for their next start wake
 * nobody: a hungry worker sleeps until queue_next_due().
 *
 * Backends: this header is the front every caller uses; it dispatches each
 * call to the backend the queue was opened with (queue_open), which holds
 * the jobs, leases, keys and counts. What a backend must guarantee, and the
 * ops it implements, are in core/queue_backend.h. The in-memory backend is
 * core/queue_mem.c.
 *
 * Thread safety: every function may be called from any thread, except
 * queue_open, queue_set_notify and queue_free, which run before the threads
 * start or after they end. The in-memory backend guards its state with one
 * mutex, held only for O(log n) work, never for a notify callback or an
 * allocation of job data. Times are seconds on the monotonic clock (the
 * caller passes now, so tests control time). */
#ifndef SHOAL_QUEUE_H
#define SHOAL_QUEUE_H

#include <stddef.h>
#include <stdint.h>

enum queue_status {
    QUEUE_OK = 0,
    QUEUE_FULL = 1,   /* producer push refused: wait for the notify, push again */
    QUEUE_DUP = 2,    /* key seen before: dropped, counted */
    QUEUE_CLOSED = 3, /* the run is stopping: nothing more is accepted */
    QUEUE_ERR = -1,   /* out of memory or a bad argument: nothing changed */
};

struct queue_config {
    size_t capacity; /* producer backpressure threshold, >= 1 */
    int workers;     /* notify slots: worker ids are 0 .. workers (0 = producer) */
    /* Per-group politeness, for every group but the empty one ("" is never
     * limited). */
    int group_limit;     /* jobs of one group leased at once; 0 = no limit */
    double group_delay;  /* seconds between two starts in one group; 0 = none */
    double group_jitter; /* 0..1: each gap is group_delay x a uniform factor in
                            [1 - jitter, 1 + jitter] */
    uint64_t seed;       /* for the jitter; 0 = seeded from the clock */
    /* For durable and shared backends (the memory backend reads none). */
    const char *instance; /* this process's id (leases and roles are tagged
                             with it), NULL: hostname-pid */
    double lease_ttl;     /* seconds a shared lease lives unless renewed; 0: 30 */
    int sync;             /* a durable backend's fsync level: QUEUE_SYNC_* */
    size_t hold_bytes;    /* a durable backend that cannot save (a full disk) keeps its
                             changes in memory; past this many bytes, take gives nothing
                             until they are saved; 0: 64 MiB */
    int in_flight_max;    /* jobs this process runs at once (workers x concurrency): a
                             shared backend holds no more leases, those it takes ahead
                             for its next takes included, so it never sits on a
                             group's slots it cannot use; 0: no bound */
};

enum queue_sync {
    QUEUE_SYNC_NORMAL = 0, /* the default: survives a crash of the process */
    QUEUE_SYNC_FULL = 1,   /* survives a crash of the machine too */
    QUEUE_SYNC_OFF = 2,    /* leaves it to the OS: fastest, and a machine crash may corrupt */
};

#define QUEUE_CTX_MAX 544
#define QUEUE_GROUP_MAX 255 /* a host name is at most 253 */

struct queue_push_opts {
    const char *key; /* dedup key, or NULL */
    size_t key_len;
    double delay;       /* seconds from now before it may be taken; 0 = ready */
    int priority;       /* higher is taken first among ready jobs; FIFO within one */
    int from_producer;  /* subject to capacity */
    const uint8_t *ctx; /* up to QUEUE_CTX_MAX bytes carried with the job (its
                           trace context), or NULL */
    size_t ctx_len;
    const char *group; /* the job's group (politeness unit), up to QUEUE_GROUP_MAX
                          bytes, or NULL for the empty group */
    size_t group_len;
    int depth; /* carried unchanged to the lease (the crawl's link depth) */
};

struct queue_lease {
    uint64_t lease;   /* token for ack / retry; never 0 */
    uint64_t job_id;  /* stable across attempts, from 1 */
    int attempt;      /* 1 on the first attempt */
    const char *data; /* the job bytes, owned by the queue, valid until ack/retry/release */
    size_t len;
    const uint8_t *ctx; /* what the push carried, valid as data; ctx_len 0 if nothing */
    size_t ctx_len;
    const char *group; /* the push's group, NUL-terminated, valid as data; "" if none */
    size_t group_len;
    int depth; /* the push's */
};

struct queue_stats {
    size_t ready, delayed, leased;
    uint64_t pushed;  /* accepted pushes (new jobs, not retries) */
    uint64_t dup;     /* pushes dropped by key */
    uint64_t retried; /* retry calls accepted */
    uint64_t acked;
    size_t keys; /* distinct keys held */
    /* A durable or shared backend whose store does not take changes now (a
     * full disk, Redis away): 1, with the changes it holds until it does. */
    int store_down;
    size_t held;
};

typedef struct queue queue;
typedef void (*queue_notify_fn)(void *arg);

/* Opens a queue on the backend `spec` names: "memory" (or NULL or "") for
 * the in-memory queue, "sqlite:DIR" for a durable one in a state directory
 * (core/queue_sqlite.c), "redis://..." for one shared by many processes
 * (core/queue_redis.c). Returns NULL on
 * a bad config, an unknown or failing backend, or out of memory, with the
 * reason in err (err may be NULL). */
queue *queue_open(const char *spec, const struct queue_config *cfg, char *err, size_t errlen);
/* Frees everything, leases included. NULL is a no-op. */
void queue_free(queue *q);

/* Registers who to wake for worker id (0 = producer). Call before threads
 * start: the table is read without a lock afterwards. */
void queue_set_notify(queue *q, int worker, queue_notify_fn fn, void *arg);

/* Copies data, key, ctx and group. On QUEUE_OK stores the new job's id in
 * *id_out (may be NULL). */
int queue_push(queue *q, const char *data, size_t len, const struct queue_push_opts *opts,
               double now, uint64_t *id_out);

/* Takes the best ready job of the groups that are open now: under their
 * limit and past their next start (delayed jobs whose time has come count as
 * ready). Priority first, then the order of push (or retry) across groups.
 * Taking one counts it in flight in its group and sets the group's next start
 * to now + its delay (jittered). Returns 1 and fills *out; 0 if no job can be
 * taken now (the worker becomes hungry); 0 as well once closed. */
int queue_take(queue *q, int worker, double now, struct queue_lease *out);

/* The job is finished (done or finally failed); its group has one fewer in
 * flight. Returns 0, or -1 if the lease is not held (released or already
 * acked): nothing changes then. */
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

/* The earliest of: the time a delayed job becomes ready, and the next start
 * of a group that has ready jobs and room for one more in flight but is not
 * open yet. 0 if there is neither. A hungry worker sleeps until then. */
double queue_next_due(queue *q);

/* Counts every job, whatever the state of its group: a job of a full or
 * paused group is ready. */
void queue_get_stats(queue *q, struct queue_stats *out);

/* Overrides for one group (robots' Crawl-delay, autothrottle): delay < 0
 * keeps the current one, limit < 0 keeps it (0 = no limit). A new delay
 * counts from the group's next start on; a start already set stays. A group
 * not seen yet is created with them. Returns 0, or -1 for the empty group, a
 * name longer than QUEUE_GROUP_MAX, a delay that is NaN or infinite, or out
 * of memory: nothing changes then. */
int queue_group_tune(queue *q, const char *group, size_t len, double delay, int limit);

/* No job of the group starts before `until` (monotonic seconds; a 429's
 * Retry-After). A later pause wins; an earlier one changes nothing. Creates
 * the group if new. Returns 0, or -1 for the empty group, a name longer than
 * QUEUE_GROUP_MAX, an until that is NaN, or out of memory. */
int queue_group_pause(queue *q, const char *group, size_t len, double until);

/* Roles a run has once, whatever the number of processes sharing the
 * queue: "producer" (run produce()) and "done" (run done() once drained).
 * Returns 1 if this process holds the role now, 0 if another one does or
 * did (a durable queue whose producer already finished; a shared queue
 * whose producer runs elsewhere). A role held by a process that died goes
 * to the next one that asks. The memory backend says 1 to each once.
 *
 * A producer that runs again (after a restart, or in place of one that
 * died) pushes the same jobs again: the backend counts the producer's
 * accepted pushes and answers the first that many of a new producer with
 * QUEUE_DUP without queueing them, so produce() must push the same jobs in
 * the same order (start URLs, lines of a file) for a resume to be exact. */
int queue_claim(queue *q, const char *role);

/* Items that must be written exactly once: a backend that keeps them
 * (durable or shared) takes a job's items with its ack, in one atomic step,
 * and writes them itself (queue_set_items_sink). 1 if this backend does;
 * 0 for the memory backend, whose callers hand items to the writer
 * directly. */
int queue_items_durable(queue *q);
/* queue_ack, with the items (whole encoded records, one after another) the
 * job made: kept if and only if the ack is. The memory backend ignores
 * them. */
int queue_ack_items(queue *q, uint64_t lease, const char *items, size_t len);
/* Items made outside any job (init, produce, done): kept in order with the
 * queue's other changes. 0, or -1 (out of memory, closed store). */
int queue_items(queue *q, const char *items, size_t len);

/* Where a durable backend writes items once they are kept: write appends
 * the bytes and returns the file's size after them (-1 on failure, which
 * the backend retries), size returns it now, cut truncates to a size (a
 * restart drops what was written for changes never committed). Called
 * from the backend's own thread. Set before the first push. */
struct queue_items_sink {
    long long (*write)(void *arg, const char *bytes, size_t len);
    long long (*size)(void *arg);
    int (*cut)(void *arg, long long size);
    int (*flush)(void *arg); /* to the disk (fdatasync), for QUEUE_SYNC_FULL */
    void *arg;
    int append; /* a new state keeps what the file held (--output-append) */
};
void queue_set_items_sink(queue *q, const struct queue_items_sink *sink);

/* Makes everything done so far durable before it returns (a durable
 * backend commits now); last: and no item is written after (the sink is
 * let go: the items file is about to close). No-op for the others. */
void queue_sync(queue *q, int last);

/* 1 if the queue continues a run kept by an earlier process (a state
 * directory's), with what it held then in *at_open (ready, delayed,
 * leased: in flight when it stopped; pushed, acked, retried, dup); else 0. */
int queue_resumed(queue *q, struct queue_stats *at_open);

struct queue_group_info {
    const char *name; /* NUL-terminated; valid until queue_free */
    size_t name_len;
    size_t inflight, ready, delayed;
    uint64_t started;  /* leases handed out, ever */
    double delay;      /* its current gap (tuned or the config's) */
    int limit;         /* its current in-flight limit; 0 = none */
    double next_start; /* earliest next start (pause included); 0: any time */
};

/* Calls fn for every group (not the empty one) under the backend's lock, in
 * no particular order; fn must not call the queue. For per-host metrics and
 * the summary. Groups are kept for the run, once seen. */
void queue_each_group(queue *q, void (*fn)(void *arg, const struct queue_group_info *g), void *arg);

#endif
