/* queue_mem.c - the in-memory queue backend (the contract is in queue.h and
 * queue_backend.h; queue.c calls these through queue_mem_ops).
 *
 * Any thread may call any function. One mutex, q->lock, guards all of struct
 * mem. Under the lock there is only heap and hash-table work: a job's memory
 * is allocated before the lock is taken and freed after it is dropped, and
 * the wakeups (queue_wake, the front's notify table) run after it is
 * dropped, so a callback may call back into the queue. The O(n) steps left
 * under the lock are a push that doubles a heap or the group table (a
 * realloc, which glibc does by remapping pages for big arrays), and the
 * small allocation of a group the first time it is named; the key set grows
 * in small steps (dedup.c) and the lease table stays the size of what
 * workers hold.
 *
 * Every job is one malloc: struct entry followed by its bytes and its
 * context. A job is in exactly one place: its group's ready heap (priority
 * desc, then seq asc, so FIFO within a priority), the delayed heap (due time
 * asc, all groups together), or the lease table (lease -> entry, chained
 * through the entries) and its holder's lease list. Each group's ready heap
 * has room for every job of the group, and the delayed heap for every job;
 * they grow at push time, where a failure can be reported, so take, retry
 * and release never allocate and cannot fail halfway through moving a job.
 *
 * Groups. A struct group per name, kept for the run (its name is what the
 * leases point at), found through an open-addressing table by the name's
 * seeded hash; the empty group is q->none, outside the table, with no limit
 * and no delay. A group with ready jobs and room for one more in flight is
 * in one of two heaps: open (its next start has come; ordered by its best
 * ready job, so the top of the open heap holds the best job that may be
 * taken now) or timed (ordered by its next start). A group that is full or
 * has no ready job is in neither: nothing about it is looked at until an
 * ack gives it room or a job becomes ready in it. So take is one pop from a
 * group's heap and one sift in the open heap, and a slow group costs the
 * others nothing. Calls that are given no time (ack, release, tune, pause)
 * judge "has its start come" by q->now, the latest time any call passed.
 *
 * Delayed jobs move to their group's ready heap when a take finds them due.
 * Nothing moves them otherwise, so stats may count a due job as delayed
 * until the next take. */
#include "core/queue_mem.h"

#include "core/dedup.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define LEASE_MIN_BUCKETS 64
#define HEAP_MIN 64
#define GROUP_TABLE_MIN 64
#define WAKE_BATCH 32

enum { NOWHERE, OPEN, TIMED };

struct group;

struct entry {
    uint64_t job_id;
    uint64_t seq;                /* order within a priority; taken from q->next_seq */
    uint64_t lease;              /* 0 unless leased */
    struct entry *lease_next;    /* lease table bucket chain */
    struct entry *wprev, *wnext; /* holder's lease list */
    struct group *group;
    int priority;
    int attempt;
    int worker; /* holder, while leased */
    int depth;
    size_t len;
    uint16_t ctx_len;
    char data[]; /* len bytes and a NUL, so text jobs can be read as strings,
                    then ctx_len bytes of context */
};

/* What orders ready jobs, and the open groups by their best one. The keys
 * are copied into the heap items so sifting does not touch the entries: at
 * a million jobs that is the difference between one cache line per level
 * and two. */
struct rank {
    int priority;
    uint64_t seq;
};

struct ready_item {
    struct rank r;
    struct entry *e;
};

struct delayed_item {
    double due;
    uint64_t seq;
    struct entry *e;
};

struct open_item {
    struct rank r; /* the group's best ready job's */
    struct group *g;
};

struct timed_item {
    double at; /* the group's next start */
    struct group *g;
};

/* 72 bytes and the name; the ready heap only once jobs came. A crawl keeps
 * one per host for the run: about 220 bytes a host all told
 * (test_queue_groups measures it). */
struct group {
    uint64_t hash;
    double next_start; /* no start before; 0 at first */
    double delay;
    uint64_t started;
    struct ready_item *ready;
    uint32_t nready, ready_cap;
    uint32_t inflight, ndelayed;
    int limit;    /* 0: none */
    uint32_t pos; /* index in the open or the timed heap, as where says */
    uint8_t where;
    uint8_t name_len;
    char name[]; /* NUL-terminated */
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

    size_t nready; /* in all groups' heaps */
    struct delayed_item *delayed;
    size_t ndelayed, delayed_cap;

    struct group *none;   /* the empty group */
    struct group **table; /* the named groups; index is hash & table_mask */
    size_t table_mask, ngroups;
    struct open_item *open; /* both heaps have room for every group */
    struct timed_item *timed;
    size_t nopen, ntimed, heaps_cap;
    int limit;            /* the config's, for new groups */
    double delay, jitter; /* the config's */
    uint64_t rng;         /* the jitter's generator state */
    double now;           /* the latest time a call passed */

    struct entry **buckets; /* lease table; index is lease & mask */
    size_t mask, nleased;

    dedup *keys;
    uint64_t next_job_id, next_seq, next_lease;
    uint64_t pushed, dup, retried, acked;
    int closed, producer_done, producer_waiting, drained_notified;
    struct entry *kept; /* acked with queue_ack_kept, freed by queue_free */
    qm_journal_fn journal; /* queue_mem.h: told every change, under the lock */
    void *journal_arg;
};

/* Tells the journal, if there is one. Under the lock. */
static void note(struct mem *q, const struct qm_change *c)
{
    if (q->journal)
        q->journal(q->journal_arg, c);
}

static void note_job(struct mem *q, enum qm_kind kind, const struct entry *e, double due)
{
    if (!q->journal)
        return;
    struct qm_change c = {.kind = kind,
                          .job_id = e->job_id,
                          .seq = e->seq,
                          .attempt = e->attempt,
                          .priority = e->priority,
                          .depth = e->depth,
                          .due = due};
    q->journal(q->journal_arg, &c);
}

static int rank_before(const struct rank *a, const struct rank *b)
{
    return a->priority > b->priority || (a->priority == b->priority && a->seq < b->seq);
}

/* The group's heap has room: it was made at push time. */
static void ready_push(struct group *g, struct entry *e)
{
    struct ready_item it = {{e->priority, e->seq}, e};
    size_t i = g->nready++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!rank_before(&it.r, &g->ready[parent].r))
            break;
        g->ready[i] = g->ready[parent];
        i = parent;
    }
    g->ready[i] = it;
}

static struct entry *ready_pop(struct group *g)
{
    struct entry *top = g->ready[0].e;
    struct ready_item last = g->ready[--g->nready];
    size_t n = g->nready, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && rank_before(&g->ready[c + 1].r, &g->ready[c].r))
            c++;
        if (!rank_before(&g->ready[c].r, &last.r))
            break;
        g->ready[i] = g->ready[c];
        i = c;
    }
    if (n > 0)
        g->ready[i] = last;
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
    e->group->ndelayed++;
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
    top->group->ndelayed--;
    return top;
}

/* The open and timed heaps keep each group's index in it (g->pos), so a
 * group can be moved or removed from the middle when its key changes. */
static void open_set(struct mem *q, size_t i, struct open_item it)
{
    q->open[i] = it;
    it.g->pos = (uint32_t)i;
}

static void open_sift(struct mem *q, size_t i)
{
    struct open_item it = q->open[i];
    size_t n = q->nopen;
    while (i > 0 && rank_before(&it.r, &q->open[(i - 1) / 2].r)) {
        open_set(q, i, q->open[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (size_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && rank_before(&q->open[c + 1].r, &q->open[c].r))
            c++;
        if (!rank_before(&q->open[c].r, &it.r))
            break;
        open_set(q, i, q->open[c]);
    }
    open_set(q, i, it);
}

static void open_remove(struct mem *q, struct group *g)
{
    size_t i = g->pos;
    struct open_item last = q->open[--q->nopen];
    if (i < q->nopen) {
        open_set(q, i, last);
        open_sift(q, i);
    }
}

static void timed_set(struct mem *q, size_t i, struct timed_item it)
{
    q->timed[i] = it;
    it.g->pos = (uint32_t)i;
}

static void timed_sift(struct mem *q, size_t i)
{
    struct timed_item it = q->timed[i];
    size_t n = q->ntimed;
    while (i > 0 && it.at < q->timed[(i - 1) / 2].at) {
        timed_set(q, i, q->timed[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (size_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && q->timed[c + 1].at < q->timed[c].at)
            c++;
        if (!(q->timed[c].at < it.at))
            break;
        timed_set(q, i, q->timed[c]);
    }
    timed_set(q, i, it);
}

static void timed_remove(struct mem *q, struct group *g)
{
    size_t i = g->pos;
    struct timed_item last = q->timed[--q->ntimed];
    if (i < q->ntimed) {
        timed_set(q, i, last);
        timed_sift(q, i);
    }
}

static int has_room(const struct group *g)
{
    return g->limit == 0 || g->inflight < (uint32_t)g->limit;
}

/* Puts g where it belongs now that its jobs, in flight count, limit or next
 * start changed: open if it has a ready job, room, and its start has come by
 * `now`; timed if only the start is missing; else neither. An open group's
 * key is its best job, which may have changed too. */
static void group_settle(struct mem *q, struct group *g, double now)
{
    int want = NOWHERE;
    if (g->nready > 0 && has_room(g))
        want = g->next_start <= now ? OPEN : TIMED;
    if (want != g->where) {
        if (g->where == OPEN)
            open_remove(q, g);
        else if (g->where == TIMED)
            timed_remove(q, g);
        g->where = (uint8_t)want;
        if (want == OPEN) {
            q->open[q->nopen] = (struct open_item){g->ready[0].r, g};
            open_sift(q, q->nopen++);
        } else if (want == TIMED) {
            q->timed[q->ntimed] = (struct timed_item){g->next_start, g};
            timed_sift(q, q->ntimed++);
        }
    } else if (want == OPEN) {
        q->open[g->pos].r = g->ready[0].r;
        open_sift(q, g->pos);
    } else if (want == TIMED) {
        q->timed[g->pos].at = g->next_start;
        timed_sift(q, g->pos);
    }
}

static void promote_due(struct mem *q, double now)
{
    while (q->ndelayed > 0 && q->delayed[0].due <= now) {
        struct entry *e = delayed_pop(q);
        ready_push(e->group, e);
        q->nready++;
        group_settle(q, e->group, now);
    }
    while (q->ntimed > 0 && q->timed[0].at <= now)
        group_settle(q, q->timed[0].g, now);
}

/* splitmix64: the jitter needs spread, not secrecy. */
static uint64_t rng_next(struct mem *q)
{
    uint64_t z = (q->rng += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The gap before the group's next start: its delay times a factor drawn
 * uniformly from [1 - jitter, 1 + jitter). */
static double next_gap(struct mem *q, const struct group *g)
{
    if (q->jitter <= 0)
        return g->delay;
    double u = (double)(rng_next(q) >> 11) * 0x1.0p-53;
    return g->delay * (1 - q->jitter + 2 * q->jitter * u);
}

/* Makes the delayed heap able to hold `jobs` jobs. */
static int reserve_delayed(struct mem *q, size_t jobs)
{
    if (q->delayed_cap >= jobs)
        return 0;
    size_t n = q->delayed_cap * 2 > jobs ? q->delayed_cap * 2 : jobs;
    struct delayed_item *d = realloc(q->delayed, n * sizeof *d);
    if (!d)
        return -1;
    q->delayed = d;
    q->delayed_cap = n;
    return 0;
}

/* Makes g's ready heap able to hold `jobs` jobs. It starts at what the
 * first push needs: most hosts of a big crawl have a page or two. */
static int reserve_group(struct group *g, size_t jobs)
{
    if (g->ready_cap >= jobs)
        return 0;
    if (jobs > UINT32_MAX)
        return -1;
    size_t n = (size_t)g->ready_cap * 2;
    if (n < jobs)
        n = jobs;
    if (n > UINT32_MAX)
        n = UINT32_MAX;
    struct ready_item *r = realloc(g->ready, n * sizeof *r);
    if (!r)
        return -1;
    g->ready = r;
    g->ready_cap = (uint32_t)n;
    return 0;
}

static struct group *group_new(struct mem *q, uint64_t hash, const char *name, size_t len)
{
    struct group *g = calloc(1, sizeof *g + len + 1);
    if (!g)
        return NULL;
    g->hash = hash;
    g->limit = q->limit;
    g->delay = q->delay;
    g->name_len = (uint8_t)len;
    if (len)
        memcpy(g->name, name, len);
    g->name[len] = '\0';
    return g;
}

static struct group *group_find(struct mem *q, uint64_t hash, const char *name, size_t len)
{
    for (size_t i = hash & q->table_mask;; i = (i + 1) & q->table_mask) {
        struct group *g = q->table[i];
        if (!g)
            return NULL;
        if (g->hash == hash && g->name_len == len && memcmp(g->name, name, len) == 0)
            return g;
    }
}

static void table_put(struct group **table, size_t mask, struct group *g)
{
    size_t i = g->hash & mask;
    while (table[i])
        i = (i + 1) & mask;
    table[i] = g;
}

/* The named group, created with the config's limit and delay if new; NULL
 * if it is new and memory ran out (nothing changed then). */
static struct group *group_get(struct mem *q, uint64_t hash, const char *name, size_t len)
{
    struct group *g = group_find(q, hash, name, len);
    if (g)
        return g;
    /* the room first, so a failure leaves nothing half made */
    size_t need = q->ngroups + 2; /* and the empty group */
    if (q->heaps_cap < need) {
        size_t n = q->heaps_cap * 2 > need ? q->heaps_cap * 2 : need;
        struct open_item *o = realloc(q->open, n * sizeof *o);
        if (!o)
            return NULL;
        q->open = o;
        struct timed_item *t = realloc(q->timed, n * sizeof *t);
        if (!t)
            return NULL;
        q->timed = t;
        q->heaps_cap = n;
    }
    if (2 * (q->ngroups + 1) > q->table_mask + 1) { /* at most half full */
        size_t n = 2 * (q->table_mask + 1);
        struct group **t = calloc(n, sizeof *t);
        if (!t)
            return NULL;
        for (size_t i = 0; i <= q->table_mask; i++)
            if (q->table[i])
                table_put(t, n - 1, q->table[i]);
        free(q->table);
        q->table = t;
        q->table_mask = n - 1;
    }
    g = group_new(q, hash, name, len);
    if (!g)
        return NULL;
    table_put(q->table, q->table_mask, g);
    q->ngroups++;
    return g;
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

static void group_free(struct group *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nready; i++)
        free(g->ready[i].e);
    free(g->ready);
    free(g);
}

static void mem_free(void *b)
{
    struct mem *q = b;
    if (!q)
        return;
    for (size_t i = 0; q->table && i <= q->table_mask; i++)
        group_free(q->table[i]);
    group_free(q->none);
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
    free(q->table);
    free(q->open);
    free(q->timed);
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
    q->limit = cfg->group_limit;
    q->delay = cfg->group_delay;
    q->jitter = cfg->group_jitter;
    q->rng = cfg->seed ? cfg->seed : dedup_seed(&q->rng);
    q->slots = calloc((size_t)q->nslots, sizeof *q->slots);
    if (!q->slots)
        goto fail;
    for (int i = 0; i < q->nslots; i++)
        q->slots[i].hprev = q->slots[i].hnext = -1;
    q->buckets = calloc(LEASE_MIN_BUCKETS, sizeof *q->buckets);
    if (!q->buckets)
        goto fail;
    q->mask = LEASE_MIN_BUCKETS - 1;
    q->table = calloc(GROUP_TABLE_MIN, sizeof *q->table);
    q->open = malloc(GROUP_TABLE_MIN * sizeof *q->open);
    q->timed = malloc(GROUP_TABLE_MIN * sizeof *q->timed);
    /* the empty group is never limited, whatever the config says */
    q->none = calloc(1, sizeof *q->none + 1);
    if (!q->table || !q->open || !q->timed || !q->none)
        goto fail;
    q->table_mask = GROUP_TABLE_MIN - 1;
    q->heaps_cap = GROUP_TABLE_MIN;
    if (reserve_delayed(q, HEAP_MIN) < 0 || reserve_group(q->none, HEAP_MIN) < 0)
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
    if (len > SIZE_MAX - sizeof(struct entry) - 1 - QUEUE_CTX_MAX)
        return QUEUE_ERR;

    struct entry *e = malloc(sizeof *e + len + 1 + ctx_len);
    if (!e)
        return QUEUE_ERR;
    if (len > 0)
        memcpy(e->data, data, len);
    e->data[len] = '\0';
    e->len = len;
    e->ctx_len = (uint16_t)ctx_len;
    if (ctx_len)
        memcpy(e->data + len + 1, opts->ctx, ctx_len);
    e->priority = opts->priority;
    e->depth = opts->depth;
    e->attempt = 1;
    e->lease = 0;
    e->worker = -1;
    e->lease_next = e->wprev = e->wnext = NULL;
    uint64_t hash = opts->key ? dedup_hash(q->keys, opts->key, opts->key_len) : 0;
    uint64_t ghash = group_len ? dedup_hash(q->keys, opts->group, group_len) : 0;
    int delayed = opts->delay > 0; /* NaN and negatives mean now */

    int status, added = 1, w = -1;
    struct group *g = NULL;
    pthread_mutex_lock(&q->lock);
    if (now > q->now)
        q->now = now;
    size_t waiting = q->nready + q->ndelayed;
    if (q->closed) {
        status = QUEUE_CLOSED;
    } else if (opts->from_producer && waiting >= q->capacity) {
        /* Checked before dedup so the refused key is not marked seen: the
         * producer will push it again. */
        q->producer_waiting = 1;
        status = QUEUE_FULL;
    } else if (!(g = group_len ? group_get(q, ghash, opts->group, group_len) : q->none) ||
               reserve_group(g, (size_t)g->nready + g->ndelayed + g->inflight + 1) < 0 ||
               reserve_delayed(q, waiting + q->nleased + 1) < 0 ||
               (opts->key && (added = dedup_add(q->keys, hash)) < 0)) {
        status = QUEUE_ERR;
    } else if (!added) {
        q->dup++;
        status = QUEUE_DUP;
    } else {
        status = QUEUE_OK;
        e->job_id = q->next_job_id++;
        e->seq = q->next_seq++;
        e->group = g;
        if (q->journal) {
            struct qm_change c = {.kind = QM_PUSH,
                                  .job_id = e->job_id,
                                  .seq = e->seq,
                                  .attempt = 1,
                                  .priority = e->priority,
                                  .depth = e->depth,
                                  .from_producer = opts->from_producer,
                                  .due = delayed ? now + opts->delay : 0,
                                  .data = e->data,
                                  .len = len,
                                  .ctx = opts->ctx,
                                  .ctx_len = ctx_len,
                                  .group = g->name,
                                  .group_len = g->name_len,
                                  .key_hash = opts->key ? hash : 0};
            note(q, &c);
        }
        if (delayed) {
            delayed_push(q, e, now + opts->delay);
        } else {
            ready_push(g, e);
            q->nready++;
            group_settle(q, g, now);
            /* a full group's job waits for an ack, which wakes then */
            if (has_room(g))
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
    if (now > q->now)
        q->now = now;
    promote_due(q, now);
    if (q->nopen == 0) {
        hungry_mark(q, worker);
        pthread_mutex_unlock(&q->lock);
        return 0;
    }
    struct group *g = q->open[0].g;
    struct entry *e = ready_pop(g);
    q->nready--;
    g->inflight++;
    g->started++;
    if (g->delay > 0)
        g->next_start = now + next_gap(q, g);
    group_settle(q, g, now);
    e->lease = q->next_lease++;
    e->worker = worker;
    lease_insert(q, e);
    note_job(q, QM_TAKE, e, 0);
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
    out->group = g->name;
    out->group_len = g->name_len;
    out->depth = e->depth;
    pthread_mutex_unlock(&q->lock);
    wake(q, w);
    return 1;
}

/* One fewer of g's jobs in flight. Returns 1 if that gave room to a full
 * group with ready jobs: a hungry worker must hear of it, since its sleep
 * until next_due did not count this group. */
static int group_done(struct mem *q, struct group *g)
{
    int was_full = !has_room(g);
    g->inflight--;
    if (!was_full)
        return 0; /* where it is does not change */
    group_settle(q, g, q->now);
    return g->nready > 0;
}

static int ack(struct mem *q, uint64_t lease, int keep, const char *items, size_t items_len)
{
    int w = -1;
    pthread_mutex_lock(&q->lock);
    struct entry *e = lease_remove(q, lease);
    if (!e) {
        pthread_mutex_unlock(&q->lock);
        return -1;
    }
    if (q->journal) {
        struct qm_change c = {
            .kind = QM_ACK, .job_id = e->job_id, .items = items, .items_len = items_len};
        note(q, &c);
    }
    q->acked++;
    if (group_done(q, e->group))
        w = hungry_pop(q);
    if (keep) {
        e->lease_next = q->kept;
        q->kept = e;
    }
    int drained = drained_edge(q);
    pthread_mutex_unlock(&q->lock);
    if (!keep)
        free(e);
    wake(q, w);
    if (drained)
        queue_wake_all(q->front);
    return 0;
}

static int mem_ack(void *b, uint64_t lease, int keep)
{
    return ack(b, lease, keep, NULL, 0);
}

int queue_mem_ack_items(void *b, uint64_t lease, const char *items, size_t len)
{
    return ack(b, lease, 0, items, len);
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
    if (now > q->now)
        q->now = now;
    struct group *g = e->group;
    int freed = group_done(q, g);
    e->attempt++;
    /* A fresh seq sends a failed job behind the jobs already waiting at its
     * priority instead of letting it jump the line. */
    e->seq = q->next_seq++;
    q->retried++;
    note_job(q, QM_RETRY, e, delay > 0 ? now + delay : 0);
    if (delay > 0) {
        delayed_push(q, e, now + delay);
    } else {
        ready_push(g, e);
        q->nready++;
        group_settle(q, g, now);
        freed = has_room(g);
    }
    if (freed)
        w = hungry_pop(q); /* none once closed: close cleared it, take stops marking */
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
        note_job(q, QM_RELEASE, e, 0);
        /* The old seq puts it back where it was: the job did not fail, its
         * worker went away. */
        e->group->inflight--;
        ready_push(e->group, e);
        q->nready++;
        group_settle(q, e->group, q->now);
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
    struct qm_change c = {.kind = QM_PRODUCER_DONE};
    note(q, &c);
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

/* The timed heap holds exactly the groups with ready jobs and room whose
 * start has not come (as of when they went in), so its top is the earliest
 * group opening. */
static double mem_next_due(void *b)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    double due = q->ndelayed ? q->delayed[0].due : 0;
    if (q->ntimed && (due == 0 || q->timed[0].at < due))
        due = q->timed[0].at;
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

static int mem_group_tune(void *b, const char *group, size_t len, double delay, int limit)
{
    struct mem *q = b;
    uint64_t hash = dedup_hash(q->keys, group, len);
    int w = -1;
    pthread_mutex_lock(&q->lock);
    struct group *g = group_get(q, hash, group, len);
    if (!g) {
        pthread_mutex_unlock(&q->lock);
        return -1;
    }
    int was_full = !has_room(g);
    if (delay >= 0)
        g->delay = delay;
    if (limit >= 0)
        g->limit = limit;
    struct qm_change c = {
        .kind = QM_TUNE, .group = g->name, .group_len = g->name_len, .delay = delay, .limit = limit};
    note(q, &c);
    group_settle(q, g, q->now);
    if (was_full && has_room(g) && g->nready > 0)
        w = hungry_pop(q);
    pthread_mutex_unlock(&q->lock);
    wake(q, w);
    return 0;
}

static int mem_group_pause(void *b, const char *group, size_t len, double until)
{
    struct mem *q = b;
    uint64_t hash = dedup_hash(q->keys, group, len);
    pthread_mutex_lock(&q->lock);
    struct group *g = group_get(q, hash, group, len);
    if (g && until > g->next_start) {
        g->next_start = until;
        struct qm_change c = {
            .kind = QM_PAUSE, .group = g->name, .group_len = g->name_len, .until = until};
        note(q, &c);
        group_settle(q, g, q->now);
    }
    pthread_mutex_unlock(&q->lock);
    return g ? 0 : -1;
}

static void mem_each_group(void *b, void (*fn)(void *arg, const struct queue_group_info *g),
                           void *arg)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i <= q->table_mask; i++) {
        const struct group *g = q->table[i];
        if (!g)
            continue;
        struct queue_group_info info = {
            .name = g->name,
            .name_len = g->name_len,
            .inflight = g->inflight,
            .ready = g->nready,
            .delayed = g->ndelayed,
            .started = g->started,
            .delay = g->delay,
            .limit = g->limit,
            .next_start = g->next_start > q->now ? g->next_start : 0,
        };
        fn(arg, &info);
    }
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
    .group_tune = mem_group_tune,
    .group_pause = mem_group_pause,
    .each_group = mem_each_group,
};

/* ------------------------------------------------ for a backend built on it */

void queue_mem_set_journal(void *b, qm_journal_fn fn, void *arg)
{
    struct mem *q = b;
    q->journal = fn;
    q->journal_arg = arg;
}

int queue_mem_set_seed(void *b, uint64_t seed)
{
    struct mem *q = b;
    dedup *keys = dedup_new(seed);
    if (!keys)
        return -1;
    dedup_free(q->keys);
    q->keys = keys;
    return 0;
}

uint64_t queue_mem_key_hash(void *b, const char *key, size_t len)
{
    return dedup_hash(((struct mem *)b)->keys, key, len);
}

int queue_mem_restore_job(void *b, const struct qm_change *job, double now)
{
    struct mem *q = b;
    size_t len = job->len, ctx_len = job->ctx_len <= QUEUE_CTX_MAX ? job->ctx_len : 0;
    size_t group_len = job->group_len <= QUEUE_GROUP_MAX ? job->group_len : 0;
    struct entry *e = calloc(1, sizeof *e + len + 1 + ctx_len);
    if (!e)
        return -1;
    if (len)
        memcpy(e->data, job->data, len);
    if (ctx_len)
        memcpy(e->data + len + 1, job->ctx, ctx_len);
    e->len = len;
    e->ctx_len = (uint16_t)ctx_len;
    e->job_id = job->job_id;
    e->seq = job->seq;
    e->attempt = job->attempt > 0 ? job->attempt : 1;
    e->priority = job->priority;
    e->depth = job->depth;
    e->worker = -1;
    uint64_t ghash = group_len ? dedup_hash(q->keys, job->group, group_len) : 0;
    pthread_mutex_lock(&q->lock);
    if (now > q->now)
        q->now = now;
    size_t waiting = q->nready + q->ndelayed;
    struct group *g = group_len ? group_get(q, ghash, job->group, group_len) : q->none;
    if (!g || reserve_group(g, (size_t)g->nready + g->ndelayed + g->inflight + 1) < 0 ||
        reserve_delayed(q, waiting + q->nleased + 1) < 0) {
        pthread_mutex_unlock(&q->lock);
        free(e);
        return -1;
    }
    e->group = g;
    if (job->due > now) {
        delayed_push(q, e, job->due);
    } else {
        ready_push(g, e);
        q->nready++;
        group_settle(q, g, now);
    }
    if (e->job_id >= q->next_job_id)
        q->next_job_id = e->job_id + 1;
    if (e->seq >= q->next_seq)
        q->next_seq = e->seq + 1;
    q->drained_notified = 0;
    pthread_mutex_unlock(&q->lock);
    return 0;
}

int queue_mem_restore_key(void *b, uint64_t hash)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    int rc = dedup_add(q->keys, hash);
    pthread_mutex_unlock(&q->lock);
    return rc < 0 ? -1 : 0;
}

void queue_mem_restore_counts(void *b, uint64_t next_job_id, const struct queue_stats *counts,
                              int producer_done)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    if (next_job_id > q->next_job_id)
        q->next_job_id = next_job_id;
    q->pushed = counts->pushed;
    q->dup = counts->dup;
    q->retried = counts->retried;
    q->acked = counts->acked;
    q->producer_done = producer_done;
    pthread_mutex_unlock(&q->lock);
}

void queue_mem_note(void *b, const struct qm_change *c)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    note(q, c);
    pthread_mutex_unlock(&q->lock);
}

void queue_mem_locked(void *b, void (*fn)(void *arg), void *arg)
{
    struct mem *q = b;
    pthread_mutex_lock(&q->lock);
    fn(arg);
    pthread_mutex_unlock(&q->lock);
}
