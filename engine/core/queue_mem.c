/* queue_mem.c - the in-memory queue backend (the contract is in queue.h and
 * queue_backend.h; queue.c calls these through queue_mem_ops).
 *
 * Any thread may call any function. One mutex, q->lock, guards all of struct
 * mem. Under the lock there is only heap and hash-table work: a job's memory
 * is allocated before the lock is taken and freed after it is dropped, and
 * the wakeups (queue_wake, the front's notify table) run after it is
 * dropped, so a callback may call back into the queue. The one O(n) step
 * left under the lock is a push that doubles the heaps (a realloc, which
 * glibc does by remapping pages for big arrays); the key set grows in small
 * steps (dedup.c) and the lease table stays the size of what workers hold.
 *
 * Every job is one malloc: struct entry followed by its bytes, its context
 * and its group. A job is in
 * exactly one place: the ready heap (priority desc, then seq asc, so FIFO
 * within a priority), the delayed heap (due time asc), or the lease table
 * (lease -> entry, chained through the entries) and its holder's lease list.
 * Both heaps always have room for every job the queue holds; they grow at
 * push time, where a failure can be reported, so take, retry and release
 * never allocate and cannot fail halfway through moving a job.
 *
 * Delayed jobs move to the ready heap when a take finds them due. Nothing
 * moves them otherwise, so stats may count a due job as delayed until the
 * next take. */
#include "core/dedup.h"
#include "core/queue_backend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define LEASE_MIN_BUCKETS 64
#define HEAP_MIN 64
#define WAKE_BATCH 32

struct entry {
    uint64_t job_id;
    uint64_t seq;                /* order within a priority; taken from q->next_seq */
    uint64_t lease;              /* 0 unless leased */
    struct entry *lease_next;    /* lease table bucket chain */
    struct entry *wprev, *wnext; /* holder's lease list */
    int priority;
    int attempt;
    int worker; /* holder, while leased */
    size_t len;
    uint16_t ctx_len;
    uint8_t group_len;
    char data[]; /* len bytes and a NUL, so text jobs can be read as strings,
                    then ctx_len bytes of context, then group_len bytes of
                    group and a NUL */
};

/* The keys are copied into the heap items so sifting does not touch the
 * entries: at a million jobs that is the difference between one cache line
 * per level and two. */
struct ready_item {
    int priority;
    uint64_t seq;
    struct entry *e;
};

struct delayed_item {
    double due;
    uint64_t seq;
    struct entry *e;
};

/* One per worker id (0 = the producer); its notify is the front's. */
struct holder {
    struct entry *leases; /* head of this worker's lease list */
    int hungry;
    int hprev, hnext; /* hungry list, oldest first; -1 ends it */
};

struct mem {
    pthread_mutex_t lock;
    queue *front; /* for queue_wake */
    size_t capacity;
    int nslots; /* workers + 1: slot 0 is the producer */
    struct holder *slots;
    int hungry_head, hungry_tail;

    struct ready_item *ready;
    size_t nready, ready_cap;
    struct delayed_item *delayed;
    size_t ndelayed, delayed_cap;

    struct entry **buckets; /* lease table; index is lease & mask */
    size_t mask, nleased;

    dedup *keys;
    uint64_t next_job_id, next_seq, next_lease;
    uint64_t pushed, dup, retried, acked;
    int closed, producer_done, producer_waiting, drained_notified;
    struct entry *kept; /* acked with queue_ack_kept, freed by queue_free */
};

static int ready_before(const struct ready_item *a, const struct ready_item *b)
{
    return a->priority > b->priority || (a->priority == b->priority && a->seq < b->seq);
}

static void ready_push(struct mem *q, struct entry *e)
{
    struct ready_item it = {e->priority, e->seq, e};
    size_t i = q->nready++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ready_before(&it, &q->ready[parent]))
            break;
        q->ready[i] = q->ready[parent];
        i = parent;
    }
    q->ready[i] = it;
}

static struct entry *ready_pop(struct mem *q)
{
    struct entry *top = q->ready[0].e;
    struct ready_item last = q->ready[--q->nready];
    size_t n = q->nready, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && ready_before(&q->ready[c + 1], &q->ready[c]))
            c++;
        if (!ready_before(&q->ready[c], &last))
            break;
        q->ready[i] = q->ready[c];
        i = c;
    }
    if (n > 0)
        q->ready[i] = last;
    return top;
}

static int delayed_before(const struct delayed_item *a, const struct delayed_item *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void delayed_push(struct mem *q, struct entry *e, double due)
{
    struct delayed_item it = {due, e->seq, e};
    size_t i = q->ndelayed++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!delayed_before(&it, &q->delayed[parent]))
            break;
        q->delayed[i] = q->delayed[parent];
        i = parent;
    }
    q->delayed[i] = it;
}

static struct entry *delayed_pop(struct mem *q)
{
    struct entry *top = q->delayed[0].e;
    struct delayed_item last = q->delayed[--q->ndelayed];
    size_t n = q->ndelayed, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && delayed_before(&q->delayed[c + 1], &q->delayed[c]))
            c++;
        if (!delayed_before(&q->delayed[c], &last))
            break;
        q->delayed[i] = q->delayed[c];
        i = c;
    }
    if (n > 0)
        q->delayed[i] = last;
    return top;
}

static void promote_due(struct mem *q, double now)
{
    while (q->ndelayed > 0 && q->delayed[0].due <= now)
        ready_push(q, delayed_pop(q));
}

/* Makes both heaps able to hold `jobs` jobs. */
static int reserve(struct mem *q, size_t jobs)
{
    if (q->ready_cap < jobs) {
        size_t n = q->ready_cap * 2 > jobs ? q->ready_cap * 2 : jobs;
        struct ready_item *r = realloc(q->ready, n * sizeof *r);
        if (!r)
            return -1;
        q->ready = r;
        q->ready_cap = n;
    }
    if (q->delayed_cap < jobs) {
        size_t n = q->delayed_cap * 2 > jobs ? q->delayed_cap * 2 : jobs;
        struct delayed_item *d = realloc(q->delayed, n * sizeof *d);
        if (!d)
            return -1;
        q->delayed = d;
        q->delayed_cap = n;
    }
    return 0;
}

/* Leases are handed out in sequence, so lease & mask spreads the live ones
 * evenly without hashing. The table doubles to keep chains short; if that
 * fails, chains just get longer, which is slower but still correct. */
static void lease_insert(struct mem *q, struct entry *e)
{
    if (q->nleased + 1 > q->mask + 1) {
        size_t n = (q->mask + 1) * 2;
        struct entry **b = calloc(n, sizeof *b);
        if (b) {
            for (size_t i = 0; i <= q->mask; i++) {
                struct entry *x = q->buckets[i], *next;
                for (; x; x = next) {
                    next = x->lease_next;
                    x->lease_next = b[x->lease & (n - 1)];
                    b[x->lease & (n - 1)] = x;
                }
            }
            free(q->buckets);
            q->buckets = b;
            q->mask = n - 1;
        }
    }
    struct entry **head = &q->buckets[e->lease & q->mask];
    e->lease_next = *head;
    *head = e;
    q->nleased++;

    struct holder *s = &q->slots[e->worker];
    e->wprev = NULL;
    e->wnext = s->leases;
    if (s->leases)
        s->leases->wprev = e;
    s->leases = e;
}

/* Removes and returns the entry holding lease, or NULL if none does. */
static struct entry *lease_remove(struct mem *q, uint64_t lease)
{
    if (!lease)
        return NULL;
    struct entry **pp = &q->buckets[lease & q->mask];
    while (*pp && (*pp)->lease != lease)
        pp = &(*pp)->lease_next;
    struct entry *e = *pp;
    if (!e)
        return NULL;
    *pp = e->lease_next;
    q->nleased--;

    if (e->wprev)
        e->wprev->wnext = e->wnext;
    else
        q->slots[e->worker].leases = e->wnext;
    if (e->wnext)
        e->wnext->wprev = e->wprev;
    e->lease = 0;
    e->lease_next = e->wprev = e->wnext = NULL;
    return e;
}

static void hungry_unlink(struct mem *q, int w)
{
    struct holder *s = &q->slots[w];
    if (s->hprev >= 0)
        q->slots[s->hprev].hnext = s->hnext;
    else
        q->hungry_head = s->hnext;
    if (s->hnext >= 0)
        q->slots[s->hnext].hprev = s->hprev;
    else
        q->hungry_tail = s->hprev;
    s->hungry = 0;
    s->hprev = s->hnext = -1;
}

static void hungry_mark(struct mem *q, int w)
{
    struct holder *s = &q->slots[w];
    if (s->hungry)
        return; /* keeps its place in line */
    s->hungry = 1;
    s->hprev = q->hungry_tail;
    s->hnext = -1;
    if (q->hungry_tail >= 0)
        q->slots[q->hungry_tail].hnext = w;
    else
        q->hungry_head = w;
    q->hungry_tail = w;
}

/* The worker that has been hungry longest, no longer hungry; -1 if none. */
static int hungry_pop(struct mem *q)
{
    int id = q->hungry_head;
    if (id >= 0)
        hungry_unlink(q, id);
    return id;
}

static void hungry_clear(struct mem *q)
{
    while (q->hungry_head >= 0)
        hungry_unlink(q, q->hungry_head);
}

/* Returns 1 exactly once per transition into "drained", so notify-all fires
 * once; a later push re-arms it. Clears the hungry list because everyone is
 * about to be woken anyway. */
static int drained_edge(struct mem *q)
{
    if (q->drained_notified || !q->producer_done || q->nready || q->ndelayed || q->nleased)
        return 0;
    q->drained_notified = 1;
    hungry_clear(q);
    return 1;
}

/* Called without the lock; -1 wakes nobody. */
static void wake(struct mem *q, int worker)
{
    if (worker >= 0)
        queue_wake(q->front, worker);
}

/* Wakes up to n hungry workers, in batches so no callback runs under the lock. */
static void wake_hungry(struct mem *q, int n)
{
    while (n > 0) {
        int w[WAKE_BATCH];
        int k = 0;
        pthread_mutex_lock(&q->lock);
        while (k < n && k < WAKE_BATCH && q->hungry_head >= 0)
            w[k++] = hungry_pop(q);
        pthread_mutex_unlock(&q->lock);
        for (int i = 0; i < k; i++)
            wake(q, w[i]);
        if (k < WAKE_BATCH)
            break;
        n -= k;
    }
}

/* The seed only needs to be unknown to whoever writes the pages we crawl;
 * if getrandom is unavailable the clock and an address will do. */
static uint64_t dedup_seed(const void *salt)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
        return seed;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)(uintptr_t)salt;
}

static void mem_free(void *b)
{
    struct mem *q = b;
    if (!q)
        return;
    for (size_t i = 0; i < q->nready; i++)
        free(q->ready[i].e);
    for (size_t i = 0; i < q->ndelayed; i++)
        free(q->delayed[i].e);
    if (q->buckets) {
        for (size_t i = 0; i <= q->mask; i++) {
            struct entry *e = q->buckets[i], *next;
            for (; e; e = next) {
                next = e->lease_next;
                free(e);
            }
        }
    }
    for (struct entry *e = q->kept, *next; e; e = next) {
        next = e->lease_next;
        free(e);
    }
    free(q->buckets);
    free(q->ready);
    free(q->delayed);
    free(q->slots);
    dedup_free(q->keys);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

/* "memory" takes no location: where must be empty. */
static void *mem_open(queue *front, const char *where, const struct queue_config *cfg, char *err,
                      size_t errlen)
{
    if (where && *where) {
        snprintf(err, errlen, "the memory queue takes no location (got 'memory:%s'): use 'memory'",
                 where);
        return NULL;
    }
    struct mem *q = calloc(1, sizeof *q);
    if (!q || pthread_mutex_init(&q->lock, NULL) != 0) {
        free(q);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->front = front;
    q->capacity = cfg->capacity;
    q->nslots = cfg->workers + 1;
    q->hungry_head = q->hungry_tail = -1;
    q->next_job_id = q->next_seq = q->next_lease = 1;
    q->slots = calloc((size_t)q->nslots, sizeof *q->slots);
    if (!q->slots)
        goto fail;
    for (int i = 0; i < q->nslots; i++)
        q->slots[i].hprev = q->slots[i].hnext = -1;
    q->buckets = calloc(LEASE_MIN_BUCKETS, sizeof *q->buckets);
    if (!q->buckets)
        goto fail;
    q->mask = LEASE_MIN_BUCKETS - 1;
    if (reserve(q, HEAP_MIN) < 0)
        goto fail;
    q->keys = dedup_new(dedup_seed(q));
    if (!q->keys)
        goto fail;
    return q;
fail:
    mem_free(q);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

static int mem_push(void *b, const char *data, size_t len, const struct queue_push_opts *opts,
                    double now, uint64_t *id_out)
{
    struct mem *q = b;
    size_t ctx_len = opts->ctx_len, group_len = opts->group_len;
    if (len > SIZE_MAX - sizeof(struct entry) - 2 - QUEUE_CTX_MAX - QUEUE_GROUP_MAX)
        return QUEUE_ERR;

    struct entry *e = malloc(sizeof *e + len + 1 + ctx_len + group_len + 1);
    if (!e)
        return QUEUE_ERR;
    if (len > 0)
        memcpy(e->data, data, len);
    e->data[len] = '\0';
    e->len = len;
    e->ctx_len = (uint16_t)ctx_len;
    if (ctx_len)
        memcpy(e->data + len + 1, opts->ctx, ctx_len);
    e->group_len = (uint8_t)group_len;
    char *group = e->data + len + 1 + ctx_len;
    if (group_len)
        memcpy(group, opts->group, group_len);
    group[group_len] = '\0';
    e->priority = opts->priority;
    e->attempt = 1;
    e->lease = 0;
    e->worker = -1;
    e->lease_next = e->wprev = e->wnext = NULL;
    uint64_t hash = opts->key ? dedup_hash(q->keys, opts->key, opts->key_len) : 0;
    int delayed = opts->delay > 0; /* NaN and negatives mean now */

    int status, added = 1, w = -1;
    pthread_mutex_lock(&q->lock);
    size_t waiting = q->nready + q->ndelayed;
    if (q->closed) {
        status = QUEUE_CLOSED;
    } else if (opts->from_producer && waiting >= q->capacity) {
        /* Checked before dedup so the refused key is not marked seen: the
         * producer will push it again. */
        q->producer_waiting = 1;
        status = QUEUE_FULL;
    } else if (reserve(q, waiting + q->nleased + 1) < 0 ||
               (opts->key && (added = dedup_add(q->keys, hash)) < 0)) {
        status = QUEUE_ERR;
    } else if (!added) {
        q->dup++;
        status = QUEUE_DUP;
    } else {
        status = QUEUE_OK;
        e->job_id = q->next_job_id++;
        e->seq = q->next_seq++;
        if (delayed) {
            delayed_push(q, e, now + opts->delay);
        } else {
            ready_push(q, e);
            w = hungry_pop(q);
        }
        q->pushed++;
        q->drained_notified = 0;
        if (id_out)
            *id_out = e->job_id; /* e may be taken and freed once we unlock */
    }
    pthread_mutex_unlock(&q->lock);

    if (status != QUEUE_OK)
        free(e);
    wake(q, w);
    return status;
}

static int mem_take(void *b, int worker, double now, struct queue_lease *out)
{
    struct mem *q = b;
    int w = -1;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        return 0;
    }
    promote_due(q, now);
    if (q->nready == 0) {
        hungry_mark(q, worker);
        pthread_mutex_unlock(&q->lock);
        return 0;
    }
    struct entry *e = ready_pop(q);
    e->lease = q->next_lease++;
    e->worker = worker;
    lease_insert(q, e);
    if (q->slots[worker].hungry)
        hungry_unlink(q, worker); /* it found work without being woken */
    if (q->producer_waiting && 2 * (q->nready + q->ndelayed) < q->capacity) {
        q->producer_waiting = 0;
        w = 0;
    }
    out->lease = e->lease;
    out->job_id = e->job_id;
    out->attempt = e->attempt;
    out->data = e->data;
    out->len = e->len;
    out->ctx = (const uint8_t *)e->data + e->len + 1;
    out->ctx_len = e->ctx_len;
    out->group = e->data + e->len + 1 + e->ctx_len;
    out->group_len = e->group_len;
    pthread_mutex_unlock(&q->lock);
    wake(q, w);
    return 1;
}

static int mem_ack(void *b, uint64_t lease, int keep)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    struct entry *e = lease_remove(q, lease);
    if (!e) {
        pthread_mutex_unlock(&q->lock);
        return -1;
    }
    q->acked++;
    if (keep) {
        e->lease_next = q->kept;
        q->kept = e;
    }
    int drained = drained_edge(q);
    pthread_mutex_unlock(&q->lock);
    if (!keep)
        free(e);
    if (drained)
        queue_wake_all(q->front);
    return 0;
}

static int mem_retry(void *b, uint64_t lease, double delay, double now)
{
    struct mem *q = b;
    int w = -1;
    pthread_mutex_lock(&q->lock);
    struct entry *e = lease_remove(q, lease);
    if (!e) {
        pthread_mutex_unlock(&q->lock);
        return -1;
    }
    e->attempt++;
    /* A fresh seq sends a failed job behind the jobs already waiting at its
     * priority instead of letting it jump the line. */
    e->seq = q->next_seq++;
    q->retried++;
    if (delay > 0) {
        delayed_push(q, e, now + delay);
    } else {
        ready_push(q, e);
        w = hungry_pop(q); /* none once closed: close cleared it, take stops marking */
    }
    pthread_mutex_unlock(&q->lock);
    wake(q, w);
    return 0;
}

static int mem_release_worker(void *b, int worker, uint64_t except)
{
    struct mem *q = b;
    int n = 0;
    pthread_mutex_lock(&q->lock);
    struct entry *e = q->slots[worker].leases, *next;
    for (; e; e = next) {
        next = e->wnext;
        if (e->lease == except)
            continue;
        lease_remove(q, e->lease);
        /* The old seq puts it back where it was: the job did not fail, its
         * worker went away. */
        ready_push(q, e);
        n++;
    }
    pthread_mutex_unlock(&q->lock);
    wake_hungry(q, n);
    return n;
}

static void mem_producer_done(void *b)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    q->producer_done = 1;
    int drained = drained_edge(q);
    pthread_mutex_unlock(&q->lock);
    if (drained)
        queue_wake_all(q->front);
}

static int mem_drained(void *b)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    int drained = q->producer_done && !q->nready && !q->ndelayed && !q->nleased;
    pthread_mutex_unlock(&q->lock);
    return drained;
}

static void mem_close(void *b)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    int first = !q->closed;
    q->closed = 1;
    q->producer_waiting = 0;
    hungry_clear(q);
    pthread_mutex_unlock(&q->lock);
    if (first)
        queue_wake_all(q->front);
}

static double mem_next_due(void *b)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    double due = q->ndelayed ? q->delayed[0].due : 0;
    pthread_mutex_unlock(&q->lock);
    return due;
}

static void mem_stats(void *b, struct queue_stats *out)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    out->ready = q->nready;
    out->delayed = q->ndelayed;
    out->leased = q->nleased;
    out->pushed = q->pushed;
    out->dup = q->dup;
    out->retried = q->retried;
    out->acked = q->acked;
    out->keys = dedup_count(q->keys);
    pthread_mutex_unlock(&q->lock);
}

const struct queue_ops queue_mem_ops = {
    .name = "memory",
    .open = mem_open,
    .free = mem_free,
    .push = mem_push,
    .take = mem_take,
    .ack = mem_ack,
    .retry = mem_retry,
    .release_worker = mem_release_worker,
    .producer_done = mem_producer_done,
    .drained = mem_drained,
    .close = mem_close,
    .next_due = mem_next_due,
    .stats = mem_stats,
};
