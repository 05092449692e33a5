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

/* Opens a queue with cfg and counts the notifies of each id in
 * calls[0 .. cfg->workers]. */
static queue *contract_queue_cfg(const struct contract *c, const struct queue_config *cfg,
                                 int *calls)
{
    int workers = cfg->workers;
    queue *q = c->open(c->arg, cfg);
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

/* Opens a queue of `capacity` with `workers` workers and no group limits. */
static queue *contract_queue(const struct contract *c, size_t capacity, int workers, int *calls)
{
    struct queue_config cfg = {.capacity = capacity, .workers = workers};
    return contract_queue_cfg(c, &cfg, calls);
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

/* Group checks. A job's data is its group's name and a digit, so a take
 * says whose it was. */
static int contract_gpush(queue *q, const char *data, const char *group, int priority, double delay,
                          double now)
{
    struct queue_push_opts o = {.priority = priority,
                                .delay = delay,
                                .group = group,
                                .group_len = group ? strlen(group) : 0};
    return queue_push(q, data, strlen(data), &o, now, NULL);
}

static queue *contract_groups(const struct contract *c, int workers, int limit, double delay,
                              int *calls)
{
    struct queue_config cfg = {.capacity = 1000,
                               .workers = workers,
                               .group_limit = limit,
                               .group_delay = delay,
                               .seed = 1};
    return contract_queue_cfg(c, &cfg, calls);
}

struct contract_seen {
    const char *name;
    int found;
    struct queue_group_info info;
};

static void contract_find_group(void *arg, const struct queue_group_info *g)
{
    struct contract_seen *s = arg;
    if (g->name_len == strlen(s->name) && memcmp(g->name, s->name, g->name_len) == 0 &&
        g->name[g->name_len] == '\0') {
        s->found++;
        s->info = *g;
    }
}

/* The group's info as queue_each_group reports it; found is 0 if it is not
 * reported, more than 1 if it is reported twice. */
static struct contract_seen contract_group(queue *q, const char *name)
{
    struct contract_seen s = {name, 0, {0}};
    queue_each_group(q, contract_find_group, &s);
    return s;
}

/* No more than the limit of one group leased at once; a full group is
 * skipped, not returned, and others' jobs go out meanwhile; an ack gives the
 * place back. The counts say so. */
static void contract_group_limit(const struct contract *c)
{
    queue *q = contract_groups(c, 1, 2, 0, NULL);
    if (!q)
        return;
    CHECK_EQ_INT(contract_gpush(q, "a1", "a", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "a2", "a", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "a3", "a", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "b1", "b", 0, 0, 0), QUEUE_OK);
    struct queue_lease a1, a2, l;
    CHECK(contract_take_is(q, 1, 0, "a1", &a1));
    CHECK(a1.group_len == 1 && strcmp(a1.group, "a") == 0);
    CHECK(contract_take_is(q, 1, 0, "a2", &a2));
    CHECK(contract_take_is(q, 1, 0, "b1", &l));
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 0); /* a3 waits: a is full */
    CHECK_EQ_INT(queue_next_due(q), 0);       /* nor is it waiting for a time */
    struct queue_stats s;
    queue_get_stats(q, &s);
    CHECK_EQ_INT(s.ready, 1);
    struct contract_seen a = contract_group(q, "a");
    CHECK_EQ_INT(a.found, 1);
    CHECK_EQ_INT(a.info.inflight, 2);
    CHECK_EQ_INT(a.info.ready, 1);
    CHECK_EQ_INT(a.info.started, 2);
    CHECK_EQ_INT(a.info.limit, 2);
    CHECK_EQ_INT(queue_ack(q, a1.lease), 0);
    CHECK(contract_take_is(q, 1, 0, "a3", &l));
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 0);
    CHECK_EQ_INT(contract_group(q, "a").info.started, 3);
    queue_free(q);
}

/* Two starts in a group are at least its delay apart; next_due is when the
 * group opens again, and only while it has a job waiting and room. */
static void contract_group_delay(const struct contract *c)
{
    queue *q = contract_groups(c, 1, 0, 2, NULL);
    if (!q)
        return;
    CHECK_EQ_INT(contract_gpush(q, "a1", "a", 0, 0, 100), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "a2", "a", 0, 0, 100), QUEUE_OK);
    struct queue_lease l;
    CHECK(contract_take_is(q, 1, 100, "a1", &l));
    CHECK_EQ_INT(queue_take(q, 1, 101.9, &l), 0);
    CHECK(queue_next_due(q) == 102);
    struct contract_seen a = contract_group(q, "a");
    CHECK(a.info.delay == 2 && a.info.next_start == 102);
    CHECK(contract_take_is(q, 1, 102, "a2", &l));
    CHECK_EQ_INT(queue_next_due(q), 0); /* nothing waits in a */
    /* a delayed job due before its group opens waits for the group */
    CHECK_EQ_INT(contract_gpush(q, "a3", "a", 0, 1, 102), QUEUE_OK);
    CHECK(queue_next_due(q) == 103);
    CHECK_EQ_INT(queue_take(q, 1, 103, &l), 0);
    CHECK(queue_next_due(q) == 104);
    CHECK(contract_take_is(q, 1, 104, "a3", &l));
    queue_free(q);
}

/* A pause holds a group back until its time; a later one wins, an earlier
 * one changes nothing; other groups go on meanwhile. The empty group cannot
 * be paused; pausing a new group makes it. */
static void contract_group_pause(const struct contract *c)
{
    queue *q = contract_groups(c, 1, 0, 0, NULL);
    if (!q)
        return;
    CHECK_EQ_INT(queue_group_pause(q, "", 0, 50), -1);
    CHECK_EQ_INT(queue_group_pause(q, NULL, 0, 50), -1);
    CHECK_EQ_INT(queue_group_pause(q, "a", 1, 10), 0);
    CHECK_EQ_INT(contract_group(q, "a").found, 1);
    CHECK_EQ_INT(contract_gpush(q, "a1", "a", 5, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "b1", "b", 0, 0, 0), QUEUE_OK);
    struct queue_lease l;
    CHECK(contract_take_is(q, 1, 0, "b1", &l)); /* despite a1's priority */
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 0);
    CHECK(queue_next_due(q) == 10);
    CHECK_EQ_INT(queue_group_pause(q, "a", 1, 5), 0);
    CHECK(queue_next_due(q) == 10);
    CHECK(contract_group(q, "a").info.next_start == 10);
    CHECK_EQ_INT(queue_group_pause(q, "a", 1, 20), 0);
    CHECK(queue_next_due(q) == 20);
    CHECK_EQ_INT(queue_take(q, 1, 19.5, &l), 0);
    CHECK(contract_take_is(q, 1, 20, "a1", &l));
    /* a pause of a group whose job is open takes it back */
    CHECK_EQ_INT(contract_gpush(q, "a2", "a", 0, 0, 20), QUEUE_OK);
    CHECK_EQ_INT(queue_group_pause(q, "a", 1, 30), 0);
    CHECK_EQ_INT(queue_take(q, 1, 29, &l), 0);
    CHECK(contract_take_is(q, 1, 30, "a2", &l));
    queue_free(q);
}

/* Tune overrides one group's delay and limit, -1 keeping either; a group
 * tuned before its first job is made with them; raising the limit of a full
 * group lets its waiting job out. */
static void contract_group_tune(const struct contract *c)
{
    int calls[2];
    queue *q = contract_groups(c, 1, 1, 0, calls);
    if (!q)
        return;
    CHECK_EQ_INT(queue_group_tune(q, "", 0, 1, 1), -1);
    CHECK_EQ_INT(queue_group_tune(q, "slow", 4, 3, -1), 0);
    struct contract_seen s = contract_group(q, "slow");
    CHECK(s.found == 1 && s.info.delay == 3 && s.info.limit == 1);
    CHECK_EQ_INT(queue_group_tune(q, "slow", 4, -1, 2), 0);
    s = contract_group(q, "slow");
    CHECK(s.info.delay == 3 && s.info.limit == 2);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(contract_gpush(q, "s", "slow", 0, 0, 0), QUEUE_OK);
    struct queue_lease l;
    CHECK(contract_take_is(q, 1, 0, "s", &l));
    CHECK_EQ_INT(queue_take(q, 1, 2.9, &l), 0);
    CHECK(queue_next_due(q) == 3);
    CHECK(contract_take_is(q, 1, 3, "s", &l)); /* two in flight: its limit */
    CHECK_EQ_INT(queue_take(q, 1, 100, &l), 0);
    CHECK_EQ_INT(queue_next_due(q), 0);
    CHECK_EQ_INT(calls[1], 0);
    CHECK_EQ_INT(queue_group_tune(q, "slow", 4, 0, 0), 0); /* no limit, no delay */
    CHECK_EQ_INT(calls[1], 1);
    CHECK(contract_take_is(q, 1, 100, "s", &l));
    s = contract_group(q, "slow");
    CHECK(s.info.inflight == 3 && s.info.limit == 0 && s.info.delay == 0);
    queue_free(q);
}

/* A hungry worker hears of an ack that gives room to a full group with a
 * job waiting: nothing else would wake it. */
static void contract_group_wake(const struct contract *c)
{
    int calls[3];
    queue *q = contract_groups(c, 2, 1, 0, calls);
    if (!q)
        return;
    CHECK_EQ_INT(contract_gpush(q, "a1", "a", 0, 0, 0), QUEUE_OK);
    struct queue_lease a1, l;
    CHECK(contract_take_is(q, 1, 0, "a1", &a1));
    CHECK_EQ_INT(queue_take(q, 2, 0, &l), 0); /* 2 hungry */
    CHECK_EQ_INT(contract_gpush(q, "a2", "a", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(queue_take(q, 2, 0, &l), 0); /* still hungry: a is full */
    int before = calls[2];
    CHECK_EQ_INT(queue_ack(q, a1.lease), 0);
    CHECK_EQ_INT(calls[2], before + 1);
    CHECK(contract_take_is(q, 2, 0, "a2", &l));
    /* the same through a delayed retry, which frees the place at once */
    CHECK_EQ_INT(contract_gpush(q, "a3", "a", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(queue_take(q, 1, 0, &a1), 0); /* 1 hungry */
    before = calls[1];
    CHECK_EQ_INT(queue_retry(q, l.lease, 60, 0), 0);
    CHECK_EQ_INT(calls[1], before + 1);
    CHECK(contract_take_is(q, 1, 0, "a3", &l));
    queue_free(q);
}

/* Ten groups, one of them slow: the other nine's jobs all go out at once,
 * in push order; the slow group holds up nobody. */
static void contract_group_fair(const struct contract *c)
{
    queue *q = contract_groups(c, 1, 2, 0, NULL);
    if (!q)
        return;
    CHECK_EQ_INT(queue_group_tune(q, "g0", 2, 60, -1), 0);
    char name[8], data[8];
    for (int j = 0; j < 5; j++) {
        for (int g = 0; g < 10; g++) {
            snprintf(name, sizeof name, "g%d", g);
            snprintf(data, sizeof data, "g%d", g);
            CHECK_EQ_INT(contract_gpush(q, data, name, 0, 0, 0), QUEUE_OK);
        }
    }
    struct queue_lease held[64], l;
    int n = 0, slow = 0;
    while (n < 64 && queue_take(q, 1, 0, &held[n]) == 1) {
        slow += strcmp(held[n].group, "g0") == 0;
        n++;
    }
    CHECK_EQ_INT(n, 19); /* 2 of each fast group, 1 of the slow one */
    CHECK_EQ_INT(slow, 1);
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(queue_ack(q, held[i].lease), 0);
    n = slow = 0;
    while (n < 64 && queue_take(q, 1, 1, &l) == 1) {
        slow += strcmp(l.group, "g0") == 0;
        n++;
        CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    }
    CHECK_EQ_INT(n, 27); /* the rest of the fast ones */
    CHECK_EQ_INT(slow, 0);
    CHECK(queue_next_due(q) == 60);
    queue_free(q);
}

/* Priority beats group, and FIFO holds across groups: the open groups'
 * jobs go out as if there were one queue. */
static void contract_group_order(const struct contract *c)
{
    queue *q = contract_groups(c, 1, 0, 0, NULL);
    if (!q)
        return;
    CHECK_EQ_INT(contract_gpush(q, "a", "x", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "b", "y", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "c", NULL, 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "d", "x", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "e", "y", 2, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "f", "z", 1, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "g", NULL, 1, 0, 0), QUEUE_OK);
    const char *want[] = {"e", "f", "g", "a", "b", "c", "d"};
    struct queue_lease l;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CHECK(contract_take_is(q, 1, 0, want[i], &l));
    queue_free(q);
}

/* The empty group is never limited, whatever the config says; depth goes
 * from the push to every lease of the job. */
static void contract_group_empty(const struct contract *c)
{
    queue *q = contract_groups(c, 1, 1, 30, NULL);
    if (!q)
        return;
    struct queue_push_opts o = {.depth = 7};
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(queue_push(q, "e", 1, &o, 0, NULL), QUEUE_OK);
    struct queue_lease l[3];
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(queue_take(q, 1, 0, &l[i]), 1);
        CHECK_EQ_INT(l[i].depth, 7);
        CHECK_EQ_INT(l[i].group_len, 0);
    }
    CHECK_EQ_INT(queue_retry(q, l[0].lease, 0, 0), 0);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l[0]), 1);
    CHECK_EQ_INT(l[0].attempt, 2);
    CHECK_EQ_INT(l[0].depth, 7);
    CHECK_EQ_INT(contract_group(q, "").found, 0); /* not reported */
    struct queue_push_opts deep = {.depth = 3, .group = "h", .group_len = 1};
    CHECK_EQ_INT(queue_push(q, "h", 1, &deep, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l[1]), 1);
    CHECK_EQ_INT(l[1].depth, 3);
    queue_free(q);
}

/* Retry and release give the group's place back: the next job of a full
 * group goes out at once (a retry with a delay waits in the delayed heap,
 * not in the group's place). */
static void contract_group_free(const struct contract *c)
{
    queue *q = contract_groups(c, 2, 1, 0, NULL);
    if (!q)
        return;
    CHECK_EQ_INT(contract_gpush(q, "a1", "a", 0, 0, 0), QUEUE_OK);
    CHECK_EQ_INT(contract_gpush(q, "a2", "a", 0, 0, 0), QUEUE_OK);
    struct queue_lease l, m;
    CHECK(contract_take_is(q, 1, 0, "a1", &l));
    CHECK_EQ_INT(queue_take(q, 1, 0, &m), 0);
    CHECK_EQ_INT(queue_retry(q, l.lease, 10, 0), 0);
    CHECK(contract_take_is(q, 1, 0, "a2", &m));
    CHECK_EQ_INT(queue_take(q, 2, 10, &l), 0); /* a1 is due, a is full */
    CHECK_EQ_INT(queue_release_worker(q, 1, 0), 1);
    CHECK(contract_take_is(q, 2, 10, "a2", &m)); /* released: its place, before a1 */
    CHECK_EQ_INT(queue_take(q, 2, 10, &l), 0);
    CHECK_EQ_INT(queue_retry(q, m.lease, 0, 10), 0);
    CHECK(contract_take_is(q, 2, 10, "a1", &l)); /* a2, retried, goes behind it */
    CHECK_EQ_INT(l.attempt, 2);
    CHECK_EQ_INT(queue_take(q, 2, 10, &m), 0);
    CHECK_EQ_INT(contract_group(q, "a").info.inflight, 1);
    CHECK_EQ_INT(contract_group(q, "a").info.ready, 1);
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
        {"group limit", contract_group_limit},
        {"group delay", contract_group_delay},
        {"group pause", contract_group_pause},
        {"group tune", contract_group_tune},
        {"group wake", contract_group_wake},
        {"group fair", contract_group_fair},
        {"group order", contract_group_order},
        {"group empty", contract_group_empty},
        {"group free", contract_group_free},
    };
    for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
        int failed = check_failed;
        checks[i].run(c);
        if (check_failed > failed)
            fprintf(stderr, "contract[%s]: %s failed (see above)\n", c->backend, checks[i].name);
    }
}

#endif
