/* queue_mem.h - what the in-memory backend offers a backend built on it.
 *
 * The durable backend (queue_sqlite.c) runs every call on the memory
 * backend and keeps a copy of its state in SQLite. For that it needs two
 * things the queue's front does not give: a journal, a function the memory
 * backend calls under its lock at every change of state, so the copy
 * sees the changes in the one order they happened; and a way to put back,
 * at open, the jobs, keys and groups a state held, with their ids and
 * attempts, without journaling them again.
 *
 * The journal function runs under the memory backend's lock: it must not
 * call the queue, and should only copy what it is given (every pointer in
 * a change is valid only during the call). */
#ifndef SHOAL_QUEUE_MEM_H
#define SHOAL_QUEUE_MEM_H

#include "core/queue_backend.h"

enum qm_kind {
    QM_PUSH,          /* a new job (all of it): ready, or delayed until due */
    QM_TAKE,          /* job_id leased */
    QM_ACK,           /* job_id done; items: what it made (queue_ack_items) */
    QM_RETRY,         /* job_id back for attempt, not before due, behind seq */
    QM_RELEASE,       /* job_id back, ready, same attempt and seq */
    QM_TUNE,          /* group's delay (< 0: kept) and limit (< 0: kept) */
    QM_PAUSE,         /* group held back until `until` */
    QM_PRODUCER_DONE, /* produce() returned */
    QM_NOTE,          /* anything the caller of queue_mem_note passed */
};

struct qm_change {
    enum qm_kind kind;
    uint64_t job_id;
    uint64_t seq;
    int attempt, priority, depth;
    int from_producer; /* QM_PUSH: pushed by produce() */
    double due;        /* monotonic; 0: ready now */
    const char *data;
    size_t len;
    const uint8_t *ctx;
    size_t ctx_len;
    const char *group;
    size_t group_len;
    uint64_t key_hash; /* QM_PUSH: the dedup key's hash, 0: no key */
    double delay, until;
    int limit;
    const char *items; /* QM_ACK, QM_NOTE: bytes passed along, or NULL */
    size_t items_len;
    int note; /* QM_NOTE: the caller's tag */
};

typedef void (*qm_journal_fn)(void *arg, const struct qm_change *c);

/* b: what queue_mem_ops.open returned. Call before any other call. */
void queue_mem_set_journal(void *b, qm_journal_fn fn, void *arg);
/* Hashes keys and group names with this seed from now on (a durable state
 * keeps its seed, so the hashes it stored still match). Before any push,
 * tune or pause. 0 on success, -1 out of memory. */
int queue_mem_set_seed(void *b, uint64_t seed);
/* The dedup hash of a key, as a push with that key would store it. */
uint64_t queue_mem_key_hash(void *b, const char *key, size_t len);

/* Puts back one job a state held (QM_PUSH's fields: job_id, seq, attempt,
 * priority, depth, due, data, ctx, group): ready, or delayed until due if
 * that is after now. Job ids, seqs and leases handed out later come after
 * every one restored. Not journaled. 0, or -1 out of memory. */
int queue_mem_restore_job(void *b, const struct qm_change *job, double now);
/* Marks a key hash seen. 0, or -1 out of memory. */
int queue_mem_restore_key(void *b, uint64_t hash);
/* The counts a state held, and whether its producer had finished. */
void queue_mem_restore_counts(void *b, uint64_t next_job_id, const struct queue_stats *counts,
                              int producer_done);

/* ack with the job's items in the journal's QM_ACK. */
int queue_mem_ack_items(void *b, uint64_t lease, const char *items, size_t len);
/* Journals c (kind QM_NOTE) under the lock, in order with every change. */
void queue_mem_note(void *b, const struct qm_change *c);
/* Runs fn under the lock (the durable backend takes its batch this way). */
void queue_mem_locked(void *b, void (*fn)(void *arg), void *arg);

#endif
