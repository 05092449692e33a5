/* queue_contract.h - what every queue backend guarantees (core/queue_backend.h),
 * as checks any backend's test runs: include this file, write an opener that
 * gives a new, empty queue on the backend each time it is called, and call
 * queue_contract_run. The checks go through the front (queue.h), so they
 * hold the backend to what the workers see, wakeups included.
 *
 * Single-threaded, with a fake clock passed in; the threaded checks of the
 * in-memory backend are in test_queue.c. Nothing here depends on how a
 * backend stores jobs, so a durable or shared one must pass it unchanged. */
#ifndef SHOAL_QUEUE_CONTRACT_H
#define SHOAL_QUEUE_CONTRACT_H

#include "check.h"
#include "core/queue_backend.h"

#include <stdint.h>
#include <string.h>

/* Returns a new, empty queue with this config, or NULL (a failed check). */
typedef queue *(*contract_open_fn)(void *arg, const struct queue_config *cfg);

struct contract {
    contract_open_fn open;
    void *arg;
    const char *backend; /* for the failure lines */
};

static void contract_count(void *arg)
{
    (*(int *)arg)++;
}

/* Opens a queue of `capacity` with `workers` workers and counts the notifies
 * of each id in calls[0 .. workers]. */
static queue *contract_queue(const struct contract *c, size_t capacity, int workers, int *calls)
{
    struct queue_config cfg = {capacity, workers};
    queue *q = c->open(c->arg, &cfg);
    if (!q) {
        fprintf(stderr, "contract[%s]: could not open a queue\n", c->backend);
        CHECK(q != NULL);
        return NULL;
    }
    for (int i = 0; calls && i <= workers; i++) {
        calls[i] = 0;
        queue_set_notify(q, i, contract_count, &calls[i]);
    }
    return q;
}

static int contract_push(queue *q, const char *s, int priority, double delay, double now)
{
    struct queue_push_opts o = {.priority = priority, .delay = delay};
    return queue_push(q, s, strlen(s), &o, now, NULL);
}

static int contract_take_is(queue *q, int worker, double now, const char *want,
                            struct queue_lease *l)
{
    if (queue_take(q, worker, now, l) != 1)
        return 0;
    return l->len == strlen(want) && memcmp(l->data, want, l->len) == 0;
}

/* A job comes back as it went in: bytes (NUL after them), ctx, group, id. */
static void contract_carry(const struct contract *c)
{
    queue *q = contract_queue(c, 10, 1, NULL);
    if (!q)
        return;
    uint8_t ctx[3] = {1, 0, 2};
    struct queue_push_opts o = {.ctx = ctx, .ctx_len = 3, .group = "example.org", .group_len = 11};
    uint64_t id = 0, id2 = 0;
    CHECK_EQ_INT(queue_push(q, "a\0b", 3, &o, 0, &id), QUEUE_OK);
    CHECK(id != 0);
    CHECK_EQ_INT(queue_push(q, "plain", 5, NULL, 0, &id2), QUEUE_OK);
    CHECK(id2 != 0 && id2 != id);

    struct queue_lease l;
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(l.job_id, id);
    CHECK_EQ_INT(l.attempt, 1);
    CHECK(l.len == 3 && memcmp(l.data, "a\0b", 3) == 0 && l.data[3] == '\0');
    CHECK(l.ctx_len == 3 && memcmp(l.ctx, ctx, 3) == 0);
    CHECK(l.group_len == 11 && strcmp(l.group, "example.org") == 0);
    struct queue_lease l2;
    CHECK_EQ_INT(queue_take(q, 1, 0, &l2), 1);
    CHECK_EQ_INT(l2.job_id, id2);
    CHECK(l2.ctx_len == 0 && l2.group_len == 0 && l2.group && l2.group[0] == '\0');
    /* one lease's data outlives another's ack */
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    CHECK(l2.len == 5 && memcmp(l2.data, "plain", 5) == 0);
    CHECK_EQ_INT(queue_ack(q, l2.lease), 0);

    /* A group past its maximum is refused and changes nothing; context past
     * its maximum is dropped and the job still goes in. */
    char big[QUEUE_GROUP_MAX + 2];
    memset(big, 'g', sizeof big);
    struct queue_push_opts too_long = {.group = big, .group_len = QUEUE_GROUP_MAX + 1};
    CHECK_EQ_INT(queue_push(q, "x", 1, &too_long, 0, NULL), QUEUE_ERR);
    struct queue_push_opts longest = {.group = big, .group_len = QUEUE_GROUP_MAX};
    CHECK_EQ_INT(queue_push(q, "y", 1, &longest, 0, NULL), QUEUE_OK);
    static uint8_t huge[QUEUE_CTX_MAX + 1];
    struct queue_push_opts big_ctx = {.ctx = huge, .ctx_len = sizeof huge};
    CHECK_EQ_INT(queue_push(q, "z", 1, &big_ctx, 0, NULL), QUEUE_OK);
    CHECK(contract_take_is(q, 1, 0, "y", &l));
    CHECK_EQ_INT(l.group_len, QUEUE_GROUP_MAX);
    CHECK(contract_take_is(q, 1, 0, "z", &l));
    CHECK_EQ_INT(l.ctx_len, 0);
    struct queue_stats s;
    queue_get_stats(q, &s);
    CHECK_EQ_INT(s.pushed, 4);
    queue_free(q);
}

/* Leases: never 0, never reused; a lease is done once. */
static void contract_leases(const struct contract *c)
{
    queue *q = contract_queue(c, 10, 2, NULL);
    if (!q)
        return;
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(contract_push(q, "j", 0, 0, 0), QUEUE_OK);
    struct queue_lease a, b, d;
    CHECK_EQ_INT(queue_take(q, 1, 0, &a), 1);
    CHECK_EQ_INT(queue_take(q, 2, 0, &b), 1);
    CHECK(a.lease != 0 && b.lease != 0 && a.lease != b.lease);
    CHECK(a.job_id != b.job_id);
    CHECK_EQ_INT(queue_ack(q, 0), -1);
    CHECK_EQ_INT(queue_ack(q, a.lease), 0);
    CHECK_EQ_INT(queue_ack(q, a.lease), -1);
    CHECK_EQ_INT(queue_ack_kept(q, a.lease), -1);
    CHECK_EQ_INT(queue_retry(q, a.lease, 0, 0), -1);
    CHECK_EQ_INT(queue_retry(q, b.lease, 0, 0), 0);
    CHECK_EQ_INT(queue_retry(q, b.lease, 0, 0), -1);
    CHECK_EQ_INT(queue_ack(q, b.lease), -1);
    /* the retried job, then the third; new leases each time */
    CHECK_EQ_INT(queue_take(q, 1, 0, &d), 1);
    CHECK(d.lease != a.lease && d.lease != b.lease);
    CHECK_EQ_INT(queue_ack_kept(q, d.lease), 0);
    CHECK_EQ_INT(queue_ack(q, d.lease), -1);
    struct queue_stats s;
    queue_get_stats(q, &s);
    CHECK_EQ_INT(s.acked, 2);
    CHECK_EQ_INT(s.retried, 1);
    CHECK_EQ_INT(s.ready, 1);
    CHECK_EQ_INT(s.leased, 0);
    queue_free(q);
}

/* Priority first, FIFO within one; a retry goes to the back of its
 * priority; a released job keeps its place. */
static void contract_order(const struct contract *c)
{
    queue *q = contract_queue(c, 100, 2, NULL);
    if (!q)
        return;
    CHECK_EQ_INT(contract_push(q, "a", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_push(q, "b", 1, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_push(q, "c", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_push(q, "d", 1, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_push(q, "e", -1, 0, 0), QUEUE_OK);
    struct queue_lease l, b;
    CHECK(contract_take_is(q, 1, 0, "b", &b));
    CHECK_EQ_INT(queue_retry(q, b.lease, 0, 0), 0); /* behind d */
    CHECK(contract_take_is(q, 2, 0, "d", &l));
    CHECK_EQ_INT(queue_release_worker(q, 2, 0), 1); /* d back in front of b */
    CHECK(contract_take_is(q, 1, 0, "d", &l));
    CHECK(contract_take_is(q, 1, 0, "b", &l));
    CHECK_EQ_INT(l.attempt, 2);
    CHECK_EQ_INT(l.job_id, b.job_id);
    CHECK(contract_take_is(q, 1, 0, "a", &l));
    CHECK(contract_take_is(q, 1, 0, "c", &l));
    CHECK(contract_take_is(q, 1, 0, "e", &l));
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 0);
    queue_free(q);
}

/* Delayed jobs and delayed retries are not handed out before their time;
 * next_due says when. */
static void contract_delay(const struct contract *c)
{
    queue *q = contract_queue(c, 100, 1, NULL);
    if (!q)
        return;
    CHECK_EQ_INT(queue_next_due(q), 0);
    CHECK_EQ_INT(contract_push(q, "later", 0, 5, 100), QUEUE_OK);
    struct queue_lease l;
    CHECK_EQ_INT(queue_take(q, 1, 104.9, &l), 0);
    CHECK(queue_next_due(q) == 105);
    CHECK(contract_take_is(q, 1, 105, "later", &l));
    CHECK_EQ_INT(queue_retry(q, l.lease, 10, 106), 0);
    CHECK(queue_next_due(q) == 116);
    CHECK_EQ_INT(queue_take(q, 1, 115, &l), 0);
    CHECK(contract_take_is(q, 1, 116, "later", &l));
    CHECK_EQ_INT(l.attempt, 2);
    queue_free(q);
}

/* Releasing a worker gives back its leases (same attempt) except the one
 * named; the released leases are dead. */
static void contract_release(const struct contract *c)
{
    queue *q = contract_queue(c, 100, 2, NULL);
    if (!q)
        return;
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(contract_push(q, "r", 0, 0, 0), QUEUE_OK);
    struct queue_lease a, b, other, l;
    CHECK_EQ_INT(queue_take(q, 1, 0, &a), 1);
    CHECK_EQ_INT(queue_take(q, 1, 0, &b), 1);
    CHECK_EQ_INT(queue_take(q, 2, 0, &other), 1);
    CHECK_EQ_INT(queue_release_worker(q, 1, b.lease), 1);
    CHECK_EQ_INT(queue_ack(q, a.lease), -1);
    CHECK_EQ_INT(queue_retry(q, a.lease, 0, 0), -1);
    CHECK_EQ_INT(queue_take(q, 2, 0, &l), 1);
    CHECK_EQ_INT(l.job_id, a.job_id);
    CHECK_EQ_INT(l.attempt, 1);
    CHECK_EQ_INT(queue_ack(q, b.lease), 0);     /* kept back */
    CHECK_EQ_INT(queue_ack(q, other.lease), 0); /* other workers' untouched */
    CHECK_EQ_INT(queue_release_worker(q, 1, 0), 0);
    CHECK_EQ_INT(queue_release_worker(q, 7, 0), 0); /* no such worker */
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    queue_free(q);
}

/* A key accepted once is refused for the rest of the run, also after its
 * job is done; a push refused for capacity does not mark its key. */
static void contract_dedup(const struct contract *c)
{
    queue *q = contract_queue(c, 1, 1, NULL);
    if (!q)
        return;
    struct queue_push_opts k1 = {.key = "k1", .key_len = 2, .from_producer = 1};
    struct queue_push_opts k2 = {.key = "k2", .key_len = 2, .from_producer = 1};
    CHECK_EQ_INT(queue_push(q, "1", 1, &k1, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_push(q, "2", 1, &k2, 0, NULL), QUEUE_FULL);
    struct queue_lease l;
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    CHECK_EQ_INT(queue_push(q, "2", 1, &k2, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    CHECK_EQ_INT(queue_push(q, "1", 1, &k1, 0, NULL), QUEUE_DUP);
    struct queue_push_opts from_worker = {.key = "k2", .key_len = 2};
    CHECK_EQ_INT(queue_push(q, "2", 1, &from_worker, 0, NULL), QUEUE_DUP);
    struct queue_stats s;
    queue_get_stats(q, &s);
    CHECK_EQ_INT(s.pushed, 2);
    CHECK_EQ_INT(s.dup, 2);
    CHECK_EQ_INT(s.keys, 2);
    queue_free(q);
}

/* The producer is held at capacity and woken below half of it; workers'
 * pushes always go in. */
static void contract_backpressure(const struct contract *c)
{
    int calls[2];
    queue *q = contract_queue(c, 4, 1, calls);
    if (!q)
        return;
    struct queue_push_opts prod = {.from_producer = 1};
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(queue_push(q, "p", 1, &prod, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_push(q, "p", 1, &prod, 0, NULL), QUEUE_FULL);
    CHECK_EQ_INT(contract_push(q, "w", 0, 0, 0), QUEUE_OK); /* 5 waiting */
    struct queue_lease l;
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(calls[0], 0); /* 2 waiting: not below half */
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(calls[0], 1); /* 1 waiting */
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(calls[0], 1); /* once per refusal */
    CHECK_EQ_INT(queue_push(q, "p", 1, &prod, 0, NULL), QUEUE_OK);
    queue_free(q);
}

/* A ready job wakes one hungry worker, once; a delayed one wakes nobody; a
 * retry made ready wakes; close and the drain wake everyone once. */
static void contract_wakeups(const struct contract *c)
{
    int calls[3];
    queue *q = contract_queue(c, 100, 2, calls);
    if (!q)
        return;
    struct queue_lease l;
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 0); /* 1 hungry */
    CHECK_EQ_INT(queue_take(q, 2, 0, &l), 0); /* 2 hungry */
    CHECK_EQ_INT(contract_push(q, "d", 0, 5, 0), QUEUE_OK);
    CHECK(calls[1] == 0 && calls[2] == 0);
    CHECK_EQ_INT(contract_push(q, "a", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(calls[1] + calls[2], 1);
    CHECK_EQ_INT(contract_push(q, "b", 0, 0, 0), QUEUE_OK);
    CHECK(calls[1] == 1 && calls[2] == 1);
    CHECK_EQ_INT(contract_push(q, "c", 0, 0, 0), QUEUE_OK);
    CHECK(calls[1] == 1 && calls[2] == 1); /* nobody is hungry */

    struct queue_lease a, b, cc, d;
    CHECK_EQ_INT(queue_take(q, 1, 0, &a), 1);
    CHECK_EQ_INT(queue_take(q, 1, 0, &b), 1);
    CHECK_EQ_INT(queue_take(q, 1, 0, &cc), 1);
    CHECK_EQ_INT(queue_take(q, 2, 0, &d), 0); /* d is delayed; 2 hungry */
    CHECK_EQ_INT(queue_retry(q, a.lease, 0, 0), 0);
    CHECK_EQ_INT(calls[2], 2);
    CHECK_EQ_INT(queue_take(q, 2, 0, &a), 1);

    /* drained: everyone once, when the last lease goes */
    CHECK_EQ_INT(queue_take(q, 2, 5, &d), 1);
    queue_producer_done(q);
    CHECK_EQ_INT(calls[0], 0);
    CHECK_EQ_INT(queue_drained(q), 0);
    CHECK_EQ_INT(queue_ack(q, a.lease), 0);
    CHECK_EQ_INT(queue_ack(q, b.lease), 0);
    CHECK_EQ_INT(queue_ack(q, cc.lease), 0);
    CHECK_EQ_INT(calls[0], 0);
    CHECK_EQ_INT(queue_ack(q, d.lease), 0);
    CHECK_EQ_INT(queue_drained(q), 1);
    CHECK(calls[0] == 1 && calls[1] == 2 && calls[2] == 3);
    queue_producer_done(q);
    CHECK_EQ_INT(calls[0], 1);

    /* close: everyone once more */
    queue_close(q);
    queue_close(q);
    CHECK(calls[0] == 2 && calls[1] == 3 && calls[2] == 4);
    queue_free(q);
}

/* A notify runs with no lock held: a woken worker calls take at once, and
 * the drain's callback reads the counts. A backend that notified under its
 * lock would hang here (CTest's timeout fails it). */
struct contract_reentry {
    queue *q;
    int calls, took;
    struct queue_stats seen;
};

static void contract_reenter(void *arg)
{
    struct contract_reentry *r = arg;
    struct queue_lease l;
    r->calls++;
    if (queue_take(r->q, 1, 0, &l) == 1) {
        r->took++;
        CHECK_EQ_INT(queue_ack(r->q, l.lease), 0); /* may drain: notifies again */
    }
    queue_get_stats(r->q, &r->seen);
    (void)queue_next_due(r->q);
    (void)queue_drained(r->q);
}

static void contract_reentry(const struct contract *c)
{
    queue *q = contract_queue(c, 100, 1, NULL);
    if (!q)
        return;
    struct contract_reentry r = {q, 0, 0, {0}};
    queue_set_notify(q, 0, contract_reenter, &r);
    queue_set_notify(q, 1, contract_reenter, &r);
    struct queue_lease l;
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 0); /* hungry */
    CHECK_EQ_INT(contract_push(q, "a", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(r.took, 1);
    CHECK_EQ_INT(r.seen.acked, 1);
    queue_producer_done(q); /* drained: both callbacks, nothing left to take */
    CHECK_EQ_INT(queue_drained(q), 1);
    CHECK_EQ_INT(r.took, 1);
    CHECK(r.calls >= 3);
    queue_close(q);
    queue_free(q);
}

/* After close nothing is taken or accepted, but leases can still be
 * finished. */
static void contract_close(const struct contract *c)
{
    queue *q = contract_queue(c, 100, 1, NULL);
    if (!q)
        return;
    CHECK_EQ_INT(contract_push(q, "a", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_push(q, "b", 0, 0, 0), QUEUE_OK);
    struct queue_lease l, m, none;
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(queue_take(q, 1, 0, &m), 1);
    queue_close(q);
    CHECK_EQ_INT(contract_push(q, "c", 0, 0, 0), QUEUE_CLOSED);
    CHECK_EQ_INT(queue_take(q, 1, 0, &none), 0);
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    CHECK_EQ_INT(queue_retry(q, m.lease, 0, 0), 0);
    CHECK_EQ_INT(queue_take(q, 1, 0, &none), 0);
    struct queue_stats s;
    queue_get_stats(q, &s);
    CHECK_EQ_INT(s.pushed, 2);
    CHECK_EQ_INT(s.acked, 1);
    CHECK_EQ_INT(s.retried, 1);
    queue_free(q);
}

/* Runs every check on the backend c opens. */
static void queue_contract_run(const struct contract *c)
{
    static const struct {
        const char *name;
        void (*run)(const struct contract *);
    } checks[] = {
        {"carry", contract_carry},
        {"leases", contract_leases},
        {"order", contract_order},
        {"delay", contract_delay},
        {"release", contract_release},
        {"dedup", contract_dedup},
        {"backpressure", contract_backpressure},
        {"wakeups", contract_wakeups},
        {"reentry", contract_reentry},
        {"close", contract_close},
    };
    for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
        int failed = check_failed;
        checks[i].run(c);
        if (check_failed > failed)
            fprintf(stderr, "contract[%s]: %s failed (see above)\n", c->backend, checks[i].name);
    }
}

#endif
