/* queue_backend.h - what a queue backend implements and guarantees.
 *
 * Callers see only queue.h; queue.c, the front, checks arguments, keeps the
 * notify table and dispatches every call through a backend's queue_ops. The
 * backend holds everything else: the jobs, the leases, the dedup keys, the
 * counts, the hungry workers. Dedup and the hungry list belong there because
 * each must be one atomic step with the state it guards: "is this key new"
 * with the insert of its job (for a queue shared by many processes, only the
 * shared store can answer that), and "nothing to take, note me hungry" with
 * the push that must wake the hungry (else a wakeup is lost in between).
 *
 * What every backend guarantees (spec/unit/queue_contract.h checks it; a new
 * backend runs those checks against its ops):
 *
 * - At least once. An accepted job is handed out by take until a lease of it
 *   is acked. A job is done twice only if its lease was given up (released,
 *   or expired with its process) while the first attempt was running.
 * - Leases. take returns a lease token that is never 0 and never reused
 *   within the run. It stays held until ack, retry or release; after that
 *   every ack or retry of it returns -1 and changes nothing, so a worker that
 *   comes back late cannot count a job twice. release_worker puts back every
 *   lease of one worker of this process at once (the watchdog gives up on a
 *   wedged thread). Worker ids are this process's (0 .. workers); a backend
 *   shared by processes tags its leases with an id of the process, and
 *   gives them a time to live that it renews itself while the process lives
 *   (workers call nothing for it), so the leases of a process that died go
 *   back once their time is up and another process takes them over.
 * - Job ids are stable across attempts (and, in a durable backend, across
 *   restarts); attempt counts 1, 2, ... across retries, not across releases.
 * - Order. Among ready jobs higher priority goes first, FIFO within one
 *   priority; a retried job goes behind the jobs already waiting at its
 *   priority; a released one keeps its place. A delayed job is never handed
 *   out before its time. A backend shared by processes keeps this order per
 *   store, with no promise about which process takes what.
 * - Dedup. A key accepted once is refused (QUEUE_DUP) for the rest of the
 *   run, across processes and restarts where the backend spans them. A push
 *   refused for any other reason does not mark its key seen.
 * - Backpressure, close and drain as queue.h says. Close stops this process
 *   only. Drained means the producer is done and nothing is ready, delayed
 *   or leased anywhere in the store.
 * - Groups. Every job keeps the group it was pushed with and take hands it
 *   back in the lease. Every group but the empty one has a limit of jobs
 *   leased at once and a next allowed start: take hands out a job only from
 *   a group under its limit whose next start has come, and then counts it in
 *   flight and moves the group's next start to now + its delay (times the
 *   jitter factor). A job of a group that is full or not yet open is
 *   skipped, not returned, and never holds up another group's jobs; among
 *   the open groups' jobs priority and FIFO hold as above, so a run with
 *   only the empty group sees no groups at all. Ack, retry and release give
 *   the place back. next_due includes the next start of every group that
 *   has ready jobs and room but is not open yet. group_tune and group_pause
 *   change one group's delay and limit, and hold it back until a time. The
 *   limits' state lives in the backend beside the jobs, so a shared backend
 *   holds them for all its processes (in flight is counted per lease, so an
 *   expired lease frees its place). In memory the shape is a table of
 *   groups (in flight, next start, a ready heap of their own), a heap of the
 *   open groups by their best job and a heap of the groups that wait for
 *   their next start by that time, so take stays O(log n) in jobs and
 *   groups; in Redis, a hash per group and a sorted set of groups by next
 *   start, read and updated by one server-side script with the take.
 * - Wakeups. A push or retry that makes a job ready in a group with room
 *   wakes one hungry worker (queue_wake), and so does an ack, retry, release
 *   or tune that gives room to a full group with ready jobs; the producer
 *   is woken once the queue falls below half its capacity after a
 *   QUEUE_FULL; close and the first moment of being drained wake everyone
 *   (queue_wake_all). Never while holding a lock that take needs: a
 *   notified worker calls take at once. A shared backend also wakes a
 *   hungry worker for work that arrives from another process.
 * - Data. The bytes and ctx a lease points at stay valid until that lease
 *   is acked, retried or released (ack_kept: until the queue is freed), and
 *   the group's name at least as long. take, ack, retry and release never
 *   fail halfway through moving a job: a job is always ready, delayed,
 *   leased or done, exactly one of them.
 * - Time is the caller's: every call that depends on it is passed now
 *   (monotonic seconds), so the contract runs on a fake clock. A backend
 *   that stores times for other processes converts them to its store's
 *   clock itself. */
#ifndef SHOAL_QUEUE_BACKEND_H
#define SHOAL_QUEUE_BACKEND_H

#include "core/queue.h"

/* b is what open returned. The front has checked the arguments: opts is
 * never NULL, data is NULL only when len is 0, ctx_len <= QUEUE_CTX_MAX (0
 * without ctx), group_len <= QUEUE_GROUP_MAX (0 without group), and worker
 * is in 0 .. cfg->workers; in cfg, group_limit >= 0, group_delay is finite
 * and >= 0 and group_jitter is in 0 .. 1. Return values are those of the queue_* function
 * of the same name. */
struct queue_ops {
    const char *name; /* the spec's scheme: "memory", later "sqlite", "redis" */
    /* where: the spec after "name:" ("" if none). front: the queue to pass to
     * queue_wake. Returns NULL with the reason in err on failure. */
    void *(*open)(queue *front, const char *where, const struct queue_config *cfg, char *err,
                  size_t errlen);
    void (*free)(void *b);
    int (*push)(void *b, const char *data, size_t len, const struct queue_push_opts *opts,
                double now, uint64_t *id_out);
    int (*take)(void *b, int worker, double now, struct queue_lease *out);
    int (*ack)(void *b, uint64_t lease, int keep); /* keep: queue_ack_kept */
    int (*retry)(void *b, uint64_t lease, double delay, double now);
    int (*release_worker)(void *b, int worker, uint64_t except);
    void (*producer_done)(void *b);
    int (*drained)(void *b);
    void (*close)(void *b);
    double (*next_due)(void *b);
    void (*stats)(void *b, struct queue_stats *out);
    /* The front has checked: len is 1 .. QUEUE_GROUP_MAX, delay is finite,
     * until is not NaN. */
    int (*group_tune)(void *b, const char *group, size_t len, double delay, int limit);
    int (*group_pause)(void *b, const char *group, size_t len, double until);
    void (*each_group)(void *b, void (*fn)(void *arg, const struct queue_group_info *g), void *arg);
    /* Optional (NULL: as the memory backend). claim: queue_claim. ack_items
     * and items: a backend that keeps items (queue_items_durable is 1 when
     * ack_items is set). set_sink: queue_set_items_sink. */
    int (*claim)(void *b, const char *role);
    int (*ack_items)(void *b, uint64_t lease, const char *items, size_t len);
    int (*items)(void *b, const char *items, size_t len);
    void (*set_sink)(void *b, const struct queue_items_sink *sink);
    int (*resumed)(void *b, struct queue_stats *at_open); /* queue_resumed */
    void (*sync)(void *b, int last);                      /* queue_sync */
};

extern const struct queue_ops queue_sqlite_ops;

extern const struct queue_ops queue_mem_ops;
extern const struct queue_ops queue_redis_ops; /* core/queue_redis.c */

/* Opens a queue on the given ops (tests run the contract on each backend
 * this way); queue_open picks the ops by the spec's scheme. */
queue *queue_open_ops(const struct queue_ops *ops, const char *where,
                      const struct queue_config *cfg, char *err, size_t errlen);

/* For backends: run worker's notify (0 = producer), or everyone's. Call
 * without holding the backend's lock. */
void queue_wake(queue *q, int worker);
void queue_wake_all(queue *q);

#endif
