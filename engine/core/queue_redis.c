/* queue_redis.c - the queue backend shared by many processes through Redis
 * ("redis://[user:pass@]host:port/db?prefix=NAME"; the contract is in
 * queue.h and queue_backend.h, the keys and scripts in
 * queue_redis_scripts.c, the reasons in docs/ARCHITECTURE.md).
 *
 * Every change is made by a server-side script (EVALSHA, loaded with
 * SCRIPT LOAD and again after NOSCRIPT), so a take with its politeness
 * checks, an ack with its items, a push with its dedup are each atomic for
 * all processes. What stays in the process: the leases it holds (the
 * job's bytes, valid until ack, retry or release, and the lease's worker
 * for release_worker), a few leases taken ahead for its next takes (the
 * stock), its hungry workers, the keys it has seen, and the outbox.
 *
 * The outbox: workers' pushes, acks, retries, releases, items, tunes and
 * pauses do not wait for Redis. Each is answered at once (a push with an
 * id from a block the store handed out, or QUEUE_DUP if this process has
 * seen its key) and appended to one ordered list, which goes to the store
 * in batches, one script call each: within FLUSH_EVERY of its first
 * change, at once when it is long, and before anything that reads the
 * store (take, stats, drained, next_due, the groups, sync, free), in the
 * same call as a take. One batch is on its way at a time (send_lock), so
 * the store sees this process's changes in the order they were made: a
 * job's pushes before its ack. A take that goes to the store takes up to
 * PREFETCH_MAX leases when many jobs are ready; the spare ones are real
 * leases (in flight for their group, renewed with the heartbeat) kept in
 * the stock for the next takes of any worker, refilled by the background
 * thread (REFILL_PACE after its last call, so a call carries the jobs
 * that ended meanwhile), and given back at close and free. Beside it, the
 * reserve: leases of the groups whose jobs end here, taken without a slot
 * of their group; a job's ack hands its slot to one ('h'), which goes
 * first in the stock, so a host's slots pass from job to job without
 * waiting for the store, as in memory. The producer's
 * pushes stay one call each: their answer is its backpressure. Wakeups of
 * this process's hungry workers are decided here, without the store: a
 * change that may make work (a push of a ready job, an ack, a retry, a
 * release) asks for a refill when there is a stock, and the hungry are
 * woken when its leases come; without a stock, and on a tune, one is woken
 * to ask the store itself; a worker woken for nothing finds nothing and is
 * hungry again.
 *
 * Times: callers pass monotonic seconds; the store keeps shared ones,
 * now + off, where off is Redis's clock minus ours at open, rounded to
 * 1/1024 s so whole seconds convert back exactly (the contract's fake
 * clock compares them with ==). Leases live as long as their instance's
 * heartbeat, on Redis's own clock (TIME), renewed by the background thread.
 *
 * Redis away: a call that cannot reach Redis within IO_TIMEOUT marks the
 * store down (logged once), and the batch it carried goes back to the
 * head of the outbox. While down, take gives nothing, next_due says
 * "soon", the producer's pushes get QUEUE_FULL (and are woken when the
 * store is back), and the outbox holds every other change. The background
 * thread reconnects with backoff, sends the outbox in order, puts back the
 * leases of this process that it does not know of (a take whose answer was
 * lost), and only then marks the store up (logged once, with how many
 * results were held). An ack or retry delivered after its lease ran out is
 * refused by the store, as it would have been on time: the job is done
 * again elsewhere, never counted twice. A batch whose answer was lost is
 * sent again: its pushes carry their job ids, so they are not queued twice
 * unless the job was done meanwhile.
 *
 * Threads: any thread may call any op. q->lock guards the lease table,
 * the stock, the hungry list, the seen keys, the id block, the flags and
 * caches (never held over a Redis call or a notify); q->send_lock is held
 * by the one sender of the outbox, over its calls; q->out_lock guards the
 * outbox and, with it, the down flag's changes (down is atomic, so ops
 * read it without a lock); q->pool_lock the idle connections (one hiredis
 * context is used by one thread at a time); q->tick_lock the background
 * thread's wakeups. Order when nested: send_lock, then lock or out_lock.
 * The background thread (tick) flushes, refills the stock, polls, renews,
 * and is the only one that reconnects after a loss. */
#include "core/queue_redis.h"

#include "base/clock.h"
#include "base/numtext.h"
#include "base/strtab.h"
#include "base/thread.h"
#include "core/dedup.h"
#include "core/jobpack.h"
#include "core/queue_backend.h"
#include "core/queue_redis_scripts.h"
#include "core/redis_url.h"
#include "telemetry/logs/logger.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 16
#define ARGS_MAX 24
#define LEASE_BUCKETS_MIN 64
#define IO_TIMEOUT 1.0  /* seconds a connect or a command may take */
#define TICK_EVERY 0.1  /* the background thread's poll */
#define DOWN_DUE 0.25   /* while down, a hungry worker looks again this soon */
#define BACKOFF_MAX 2.0 /* between reconnection attempts */
#define FREE_FLUSH 10.0 /* at queue_free, how long held results may wait for Redis */
#define DEFAULT_TTL 30.0
#define ROLES_MAX 4
#define WAKE_BATCH 32
#define FLUSH_EVERY 0.002         /* the longest a change waits in the outbox, Redis up */
#define REFILL_PACE 0.0003        /* a refill of the stock comes this long after the last call */
#define BATCH_OPS 512             /* changes in one call at most */
#define BATCH_BYTES (1024 * 1024) /* and their bytes, about */
#define PREFETCH_MAX 32           /* leases one take brings, the caller's and the stock's */
#define PREFETCH_MIN_READY 64     /* fewer jobs ready in the store: no stock */
#define RESERVE_GROUPS 4          /* groups a batch asks reserve leases for */
#define RESERVE_MAX 64            /* reserve leases held at most */
#define ID_BLOCK 1024             /* job ids handed to the process at once */
#define SEEN_MAX (4u << 20)       /* keys this process remembers (16 bytes each) */
/* How the keys and values under the prefix are laid out; a run laid out
 * otherwise (by another version of shoal) is refused at open. 2: jobs
 * packed by the process, one lease hash an instance; 3: reserve leases. */
#define REDIS_LAYOUT 3

/* A script's arguments after the prefix and the instance. */
struct args {
    int n;
    const char *v[ARGS_MAX];
    size_t l[ARGS_MAX];
    char num[ARGS_MAX][NUMTEXT_MAX];
};

/* A lease this process holds: the job's bytes live here until it ends. A
 * lease in the stock has worker -1 and is on the stock's list (wnext). */
struct rec {
    uint64_t lease;
    struct rec *next;          /* bucket chain; the kept list after ack_kept */
    struct rec *wprev, *wnext; /* its worker's leases, or the stock */
    int worker;
    int reserve;    /* taken without a slot of its group: runs only as an heir */
    int quiet;      /* its group has no delay: its end moves no start */
    uint64_t epoch; /* ... as of this tune epoch */
    uint64_t job_id;
    int attempt, depth;
    size_t len, ctx_len, group_len;
    char buf[]; /* data, NUL, ctx, group, NUL */
};

struct slot {
    struct rec *leases;
    int hungry;
    int hprev, hnext; /* hungry list, oldest first; -1 ends it */
};

/* A change on its way to the store: its letter, now and fields, as the
 * batch script reads them (queue_redis_scripts.c). */
struct op {
    struct op *next;
    int n;
    size_t l[ARGS_MAX];
    size_t off[ARGS_MAX];
    size_t size;
    int tried; /* in a call whose answer was lost */
    char bytes[];
};

struct name {
    char *s;           /* an interned group name, for queue_each_group */
    uint64_t quiet_at; /* tune epoch + 1 when a take saw it with no delay */
};

/* What one call of the batch script said. */
struct answer {
    int drained;
    long long waiting, ready;
    double due;    /* shared time; 0: nothing due */
    uint64_t loud; /* q->loud when the call was made */
    redisReply *r; /* leases from element 6 on; the caller frees it */
};

struct rq {
    queue *front;
    struct redis_url url;
    char *instance;
    double ttl;
    size_t capacity;
    int nslots;
    int in_flight_max; /* leases held here, the stock's included, at most; 0: no bound */
    int limit;
    double delay, jitter;
    double off; /* the shared clock is monotonic + off */
    char sha[RS_COUNT][41];

    pthread_mutex_t pool_lock;
    redisContext *idle[POOL_MAX];
    int nidle;

    pthread_mutex_t send_lock;

    pthread_mutex_t lock; /* guards what follows, up to out_lock */
    uint64_t rng;
    double now; /* the latest now a call passed */
    struct rec **buckets;
    size_t mask, nrecs;
    struct rec *kept;
    struct rec *stock, *stock_tail;
    int nstock, refill;
    struct rec *reserve, *reserve_tail; /* reserve leases, oldest first (wnext) */
    int nreserve;
    long long last_ready; /* jobs ready in the store, as the last batch saw */
    struct slot *slots;
    int hungry_head, hungry_tail;
    int closed, producer_waiting, drained_notified;
    dedup *keys;   /* keys seen here, seeded by the store: its hashes */
    uint64_t ppos; /* producer pushes answered OK or DUP */
    uint64_t next_id, id_end, spare_id, spare_end;
    int ids_asked;
    uint64_t loud;  /* bumped by every change that may move next_due anyhow */
    uint64_t epoch; /* bumped by a tune or pause, here or elsewhere */
    uint64_t due_loud;
    int due_valid;
    double due;              /* next_due's cache, valid while loud is due_loud */
    double low_since;        /* the earliest due of a delayed job since the last call */
    struct queue_stats last; /* for stats while down */
    long long others;        /* changes made by other processes, as last seen */
    char *roles[ROLES_MAX];
    int nroles;
    struct strtab names;

    pthread_mutex_t out_lock;
    struct op *head, *tail;
    size_t nops, nbytes;
    uint64_t dups; /* pushes answered QUEUE_DUP here, not yet counted in the store */
    atomic_int down;
    char why[256]; /* the reason the store went down; under out_lock */

    pthread_mutex_t tick_lock;
    pthread_cond_t tick_cond;
    int stop, kicked, thread_started;
    double first_at;   /* when the outbox's oldest change came; under tick_lock */
    double tick_until; /* the end of its wait, 0 while it runs; under tick_lock */
    double pace_at;    /* a refill's earliest, REFILL_PACE after its last call;
                          under tick_lock, written by the background thread only */
    pthread_t thread;
};
/* ------------------------------------------------------------ arguments */

static void arg_bytes(struct args *a, const void *p, size_t len)
{
    if (a->n >= ARGS_MAX)
        return;
    a->v[a->n] = len ? p : "";
    a->l[a->n++] = len;
}

static void arg_str(struct args *a, const char *s)
{
    arg_bytes(a, s, strlen(s));
}

static void arg_dbl(struct args *a, double x)
{
    if (a->n >= ARGS_MAX)
        return;
    arg_bytes(a, a->num[a->n], numtext_real(a->num[a->n], x));
}

static void arg_int(struct args *a, long long x)
{
    if (a->n >= ARGS_MAX)
        return;
    arg_bytes(a, a->num[a->n], numtext_i64(a->num[a->n], x));
}

/* --------------------------------------------------------- connections */

static struct timeval tv_of(double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - floor(s)) * 1e6)};
    return tv;
}

static int reply_ok(redisContext *c, redisReply *r, char *err, size_t errlen, const char *what)
{
    if (!r) {
        snprintf(err, errlen, "%s: %s", what, c->errstr[0] ? c->errstr : "no answer");
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s: %s", what, r->str);
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

/* A new connection, authenticated and on the URL's database; NULL with the
 * reason in err. */
static redisContext *url_connect(const struct redis_url *u, char *err, size_t errlen)
{
    redisContext *c = redisConnectWithTimeout(u->host, u->port, tv_of(IO_TIMEOUT));
    if (!c || c->err) {
        snprintf(err, errlen, "cannot connect to Redis at %s:%d: %s", u->host, u->port,
                 c ? c->errstr : "out of memory");
        goto fail;
    }
    redisSetTimeout(c, tv_of(IO_TIMEOUT));
    if (u->pass) {
        const char *argv[3] = {"AUTH", u->user ? u->user : u->pass, u->pass};
        int argc = u->user ? 3 : 2;
        char what[300];
        snprintf(what, sizeof what, "Redis at %s:%d refused AUTH%s%s", u->host, u->port,
                 u->user ? " as " : "", u->user ? u->user : "");
        if (reply_ok(c, redisCommandArgv(c, argc, argv, NULL), err, errlen, what) < 0)
            goto fail;
    }
    if (u->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", u->db);
        const char *argv[2] = {"SELECT", db};
        if (reply_ok(c, redisCommandArgv(c, 2, argv, NULL), err, errlen, "Redis SELECT") < 0)
            goto fail;
    }
    return c;
fail:
    if (c)
        redisFree(c);
    return NULL;
}

static redisContext *conn_get(struct rq *q, char *err, size_t errlen)
{
    pthread_mutex_lock(&q->pool_lock);
    redisContext *c = q->nidle ? q->idle[--q->nidle] : NULL;
    pthread_mutex_unlock(&q->pool_lock);
    return c ? c : url_connect(&q->url, err, errlen);
}

static void conn_put(struct rq *q, redisContext *c)
{
    pthread_mutex_lock(&q->pool_lock);
    if (q->nidle < POOL_MAX) {
        q->idle[q->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&q->pool_lock);
    if (c)
        redisFree(c);
}

static void pool_drop(struct rq *q)
{
    pthread_mutex_lock(&q->pool_lock);
    while (q->nidle)
        redisFree(q->idle[--q->nidle]);
    pthread_mutex_unlock(&q->pool_lock);
}

static int load_script(struct rq *q, redisContext *c, enum rs_script s, char *err, size_t errlen)
{
    const char *src = rs_source(s);
    if (!src) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *argv[3] = {"SCRIPT", "LOAD", src};
    redisReply *r = redisCommandArgv(c, 3, argv, NULL);
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        snprintf(err, errlen, "Redis SCRIPT LOAD (%s): %s", rs_name(s),
                 !r                             ? c->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "odd answer");
        if (r)
            freeReplyObject(r);
        return -1;
    }
    memcpy(q->sha[s], r->str, 40);
    q->sha[s][40] = '\0';
    freeReplyObject(r);
    return 0;
}
/* Runs script s with argv[2 ..] (argv[0] and [1] are filled here) on c.
 * NULL if c is broken (c->err; the script may or may not have run) or out
 * of memory; an error reply is returned as it is. */
static redisReply *eval_on(struct rq *q, redisContext *c, enum rs_script s, int argc,
                           const char **argv, size_t *lens)
{
    argv[0] = "EVALSHA";
    argv[1] = q->sha[s];
    lens[0] = 7;
    lens[1] = 40;
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r); /* Redis restarted or flushed its scripts */
        const char *src = rs_source(s);
        argv[0] = "EVAL";
        argv[1] = src;
        lens[0] = 4;
        lens[1] = strlen(src);
        r = redisCommandArgv(c, argc, argv, lens); /* EVAL caches it for the next */
    }
    return r;
}

static redisReply *script_on(struct rq *q, redisContext *c, enum rs_script s, const struct args *a)
{
    const char *argv[ARGS_MAX + 5];
    size_t lens[ARGS_MAX + 5];
    argv[2] = "0";
    argv[3] = q->url.prefix;
    argv[4] = q->instance;
    for (int i = 2; i < 5; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < a->n; i++) {
        argv[5 + i] = a->v[i];
        lens[5 + i] = a->l[i];
    }
    return eval_on(q, c, s, a->n + 5, argv, lens);
}

/* ---------------------------------------------------------- store down */

static void say_down(const char *why)
{
    struct log_record rec;
    log_begin(&rec, LOG_WARN,
              "the queue's Redis is unreachable: no new jobs are taken, and results are "
              "held until it is back");
    log_cstr(&rec, "error", why);
    log_emit_global(&rec);
}

/* Wakes the background thread: the outbox has work, or the store went. */
static void kick(struct rq *q)
{
    pthread_mutex_lock(&q->tick_lock);
    q->kicked = 1;
    pthread_cond_signal(&q->tick_cond);
    pthread_mutex_unlock(&q->tick_lock);
}

/* Leases held here with a slot of their group: the workers' and the
 * stock's (the lease table holds the reserve's too). Under q->lock. */
static size_t slotted(const struct rq *q)
{
    return q->nrecs - (size_t)q->nreserve;
}

/* Asks for the stock's refill. Under q->lock; returns what kick_refill
 * takes once the lock is let go: 0 if the background thread was asked
 * already, else 1, or 2 if no worker here has a job running (then there
 * is nothing to wait for, and it is asked again). */
static int refill_ask(struct rq *q)
{
    int empty = slotted(q) == 0;
    if (q->refill && !empty)
        return 0;
    q->refill = 1;
    return empty ? 2 : 1;
}

/* Tells the background thread of a refill_ask (how: its answer): it looks
 * at once if running, and is woken only if its wait ends after the
 * refill's pace, not to wait again for it, unless the process is empty. */
static void kick_refill(struct rq *q, int how)
{
    if (!how)
        return;
    pthread_mutex_lock(&q->tick_lock);
    if (q->tick_until == 0 || how == 2 || q->tick_until > q->pace_at) {
        q->kicked = 1;
        pthread_cond_signal(&q->tick_cond);
    }
    pthread_mutex_unlock(&q->tick_lock);
}

/* The store is unreachable: say so once. Call without q->out_lock. */
static void store_lost(struct rq *q, const char *why)
{
    pthread_mutex_lock(&q->out_lock);
    int first = !atomic_load(&q->down);
    if (first) {
        atomic_store(&q->down, 1);
        snprintf(q->why, sizeof q->why, "%s", why);
    }
    pthread_mutex_unlock(&q->out_lock);
    if (first) {
        say_down(why);
        kick(q);
    }
}

/* Runs a script for an op that needs its answer now (the producer's push,
 * stats, groups, roles, the poll). NULL if the store is (or just went)
 * down. */
static redisReply *run(struct rq *q, enum rs_script s, const struct args *a)
{
    char err[256];
    redisContext *c = conn_get(q, err, sizeof err);
    if (!c) {
        store_lost(q, err);
        return NULL;
    }
    redisReply *r = script_on(q, c, s, a);
    if (!r) {
        snprintf(err, sizeof err, "Redis at %s:%d: %s", q->url.host, q->url.port,
                 c->errstr[0] ? c->errstr : "out of memory");
        redisFree(c);
        store_lost(q, err);
        return NULL;
    }
    conn_put(q, c);
    if (r->type == REDIS_REPLY_ERROR) {
        /* OOM or a busy server: tried again like an outage */
        snprintf(err, sizeof err, "Redis script %s: %s", rs_name(s), r->str);
        freeReplyObject(r);
        store_lost(q, err);
        return NULL;
    }
    return r;
}

static long long elem_int(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

static double elem_dbl(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return (double)e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtod(e->str, NULL);
    return 0;
}

static const redisReply *str_elem(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING ? r->element[i] : NULL;
}

/* ------------------------------------------------------------ the outbox */

static struct op *op_new(const struct args *a)
{
    size_t total = 0;
    for (int i = 0; i < a->n; i++)
        total += a->l[i];
    struct op *o = malloc(sizeof *o + total + 1);
    if (!o)
        return NULL;
    o->next = NULL;
    o->tried = 0;
    o->n = a->n;
    o->size = total;
    size_t at = 0;
    for (int i = 0; i < a->n; i++) {
        o->l[i] = a->l[i];
        o->off[i] = at;
        if (a->l[i])
            memcpy(o->bytes + at, a->v[i], a->l[i]);
        at += a->l[i];
    }
    return o;
}

static void ops_free(struct op *o)
{
    for (struct op *next; o; o = next) {
        next = o->next;
        free(o);
    }
}

/* Appends a change to the outbox (out of memory: logged, and lost). The
 * background thread hears of the first change and of a long outbox. */
static void post(struct rq *q, const struct args *a)
{
    struct op *o = op_new(a);
    if (!o) {
        struct log_record rec;
        log_begin(&rec, LOG_ERROR, "out of memory keeping a change for Redis: it is lost");
        log_emit_global(&rec);
        return;
    }
    pthread_mutex_lock(&q->out_lock);
    int first = q->head == NULL;
    if (q->tail)
        q->tail->next = o;
    else
        q->head = o;
    q->tail = o;
    q->nops++;
    q->nbytes += o->size;
    int full = q->nops % BATCH_OPS == 0;
    pthread_mutex_unlock(&q->out_lock);
    if (first) {
        pthread_mutex_lock(&q->tick_lock);
        q->first_at = clock_now();
        pthread_mutex_unlock(&q->tick_lock);
    }
    if (first || full)
        kick(q);
}

/* Up to one call's worth of the outbox, from its head, with the count of
 * local duplicates; *more says whether some is left. Under send_lock. */
static struct op *detach(struct rq *q, uint64_t *dups, int *more)
{
    pthread_mutex_lock(&q->out_lock);
    struct op *first = q->head, *o = first, *end = NULL;
    size_t n = 0, bytes = 0;
    while (o && n < BATCH_OPS && bytes < BATCH_BYTES) {
        bytes += o->size;
        n++;
        end = o;
        o = o->next;
    }
    if (end) {
        q->head = end->next;
        if (!q->head)
            q->tail = NULL;
        end->next = NULL;
    }
    q->nops -= n;
    q->nbytes -= bytes;
    *dups = q->dups;
    q->dups = 0;
    *more = q->head != NULL;
    pthread_mutex_unlock(&q->out_lock);
    return end ? first : NULL;
}

/* A batch that did not get through goes back in front. Under send_lock. */
static void undetach(struct rq *q, struct op *batch, uint64_t dups)
{
    pthread_mutex_lock(&q->out_lock);
    if (batch) {
        struct op *end = batch;
        size_t n = 1, bytes = batch->size;
        batch->tried = 1;
        for (; end->next; end = end->next, n++) {
            bytes += end->next->size;
            end->next->tried = 1;
        }
        end->next = q->head;
        q->head = batch;
        if (!q->tail)
            q->tail = end;
        q->nops += n;
        q->nbytes += bytes;
    }
    q->dups += dups;
    pthread_mutex_unlock(&q->out_lock);
}

static void arg_num(const char **argv, size_t *lens, char *num, long long x)
{
    *argv = num;
    *lens = numtext_i64(num, x);
}

static void arg_real(const char **argv, size_t *lens, char *num, double x)
{
    *argv = num;
    *lens = numtext_real(num, x);
}

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int reserve_wanted(struct rq *q, const struct op *batch, const char **g, size_t *glen,
                          int *want);
static int stock_mode(const struct rq *q);

/* One call of the batch script on c: the changes in `batch`, then a take
 * of up to `take` leases at now (shared), and reserve leases for the
 * groups of its acks. NULL if c broke. */
static redisReply *batch_on(struct rq *q, redisContext *c, const struct op *batch, double now,
                            int take, int reserve, uint64_t ids, uint64_t dups)
{
    const char *hg[RESERVE_GROUPS];
    size_t hlen[RESERVE_GROUPS];
    int hwant[RESERVE_GROUPS];
    int nh = reserve ? reserve_wanted(q, batch, hg, hlen, hwant) : 0;
    size_t n = 5 + 8 + (size_t)take + 1 + 2 * (size_t)nh;
    int careful = 0;
    for (const struct op *o = batch; o; o = o->next) {
        n += (size_t)o->n;
        careful |= o->tried;
    }
    const char **argv = malloc(n * sizeof *argv);
    size_t *lens = malloc(n * sizeof *lens);
    char num[8 + PREFETCH_MAX + 1 + RESERVE_GROUPS][NUMTEXT_MAX];
    redisReply *r = NULL;
    if (!argv || !lens)
        goto out;
    argv[2] = "0";
    argv[3] = q->url.prefix;
    argv[4] = q->instance;
    for (int i = 2; i < 5; i++)
        lens[i] = strlen(argv[i]);
    arg_real(&argv[5], &lens[5], num[0], now);
    arg_num(&argv[6], &lens[6], num[1], q->limit);
    arg_real(&argv[7], &lens[7], num[2], q->delay);
    arg_real(&argv[8], &lens[8], num[3], q->jitter);
    arg_num(&argv[9], &lens[9], num[4], (long long)ids);
    arg_num(&argv[10], &lens[10], num[5], take);
    arg_num(&argv[11], &lens[11], num[6], (long long)dups);
    arg_num(&argv[12], &lens[12], num[7], careful);
    pthread_mutex_lock(&q->lock);
    for (int i = 0; i < take; i++)
        arg_num(&argv[13 + i], &lens[13 + i], num[8 + i], (long long)(rng_next(&q->rng) >> 32));
    pthread_mutex_unlock(&q->lock);
    size_t at = 13 + (size_t)take;
    char(*hnum)[NUMTEXT_MAX] = num + 8 + take;
    arg_num(&argv[at], &lens[at], hnum[0], nh);
    at++;
    for (int i = 0; i < nh; i++, at += 2) {
        argv[at] = hg[i];
        lens[at] = hlen[i];
        arg_num(&argv[at + 1], &lens[at + 1], hnum[1 + i], hwant[i]);
    }
    for (const struct op *o = batch; o; o = o->next) {
        for (int i = 0; i < o->n; i++, at++) {
            argv[at] = o->bytes + o->off[i];
            lens[at] = o->l[i];
        }
    }
    r = eval_on(q, c, RS_BATCH, (int)n, argv, lens);
out:
    free(argv);
    free(lens);
    return r;
}

/* The new id block a batch brought: the next one to use. Under q->lock. */
static void ids_got(struct rq *q, uint64_t end)
{
    q->ids_asked = 0;
    if (end < ID_BLOCK)
        return;
    if (q->next_id > q->id_end) {
        q->next_id = end - ID_BLOCK + 1;
        q->id_end = end;
    } else {
        q->spare_id = end - ID_BLOCK + 1;
        q->spare_end = end;
    }
}

/* How many ids to ask for with a batch (then asked). Under q->lock. */
static uint64_t ids_wanted(struct rq *q)
{
    if (q->ids_asked || q->spare_end)
        return 0;
    uint64_t left = q->next_id <= q->id_end ? q->id_end - q->next_id + 1 : 0;
    if (left > ID_BLOCK / 2)
        return 0;
    q->ids_asked = 1;
    return ID_BLOCK;
}

/* The next job id of the blocks, or 0 if none is left (the store gives
 * the job one; the push answers id 0). Under q->lock. */
static uint64_t id_next(struct rq *q)
{
    if (q->next_id > q->id_end && q->spare_end) {
        q->next_id = q->spare_id;
        q->id_end = q->spare_end;
        q->spare_id = q->spare_end = 0;
    }
    return q->next_id <= q->id_end ? q->next_id++ : 0;
}

/* Sends the whole outbox on c, in order, in calls of at most BATCH_OPS
 * changes; the last call also takes up to `take` leases at now (shared),
 * and with force one call is made even with nothing to send, for its
 * answer. Under send_lock. Returns 0 with *ans filled from the last call
 * (ans->r is NULL if none was made), or -1 with the reason in err: what
 * was not delivered is back at the head of the outbox. */
static int deliver_on(struct rq *q, redisContext *c, int take, double now, int force, int reserve,
                      struct answer *ans, char *err, size_t errlen)
{
    memset(ans, 0, sizeof *ans);
    for (;;) {
        pthread_mutex_lock(&q->lock);
        uint64_t loud = q->loud;
        q->low_since = 0;
        uint64_t ids = ids_wanted(q);
        pthread_mutex_unlock(&q->lock);
        uint64_t dups;
        int more;
        struct op *batch = detach(q, &dups, &more);
        int k = more ? 0 : take;
        if (!batch && !dups && !k && !force)
            return 0;
        redisReply *r = batch_on(q, c, batch, now, k, reserve && !more, ids, dups);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 6) {
            snprintf(err, errlen, "Redis at %s:%d: %s", q->url.host, q->url.port,
                     !r                             ? (c->errstr[0] ? c->errstr : "out of memory")
                     : r->type == REDIS_REPLY_ERROR ? r->str
                                                    : "odd answer to a batch");
            if (r)
                freeReplyObject(r);
            undetach(q, batch, dups);
            if (ids) {
                pthread_mutex_lock(&q->lock);
                q->ids_asked = 0;
                pthread_mutex_unlock(&q->lock);
            }
            return -1;
        }
        ops_free(batch);
        if (ans->r)
            freeReplyObject(ans->r);
        ans->r = r;
        ans->loud = loud;
        ans->drained = (int)elem_int(r, 0);
        ans->waiting = elem_int(r, 1);
        ans->ready = elem_int(r, 2);
        ans->due = elem_dbl(r, 3);
        pthread_mutex_lock(&q->lock);
        if (ids)
            ids_got(q, (uint64_t)elem_int(r, 4));
        q->last_ready = ans->ready;
        pthread_mutex_unlock(&q->lock);
        if (!more)
            return 0;
        force = 0;
    }
}

/* deliver_on with a pooled connection, unless the store is down: -1. */
static int send_all(struct rq *q, int take, double now, int force, struct answer *ans)
{
    memset(ans, 0, sizeof *ans);
    pthread_mutex_lock(&q->send_lock);
    if (atomic_load(&q->down)) {
        pthread_mutex_unlock(&q->send_lock);
        return -1;
    }
    char err[256];
    redisContext *c = conn_get(q, err, sizeof err);
    int rc = c ? deliver_on(q, c, take, now, force, 1, ans, err, sizeof err) : -1;
    if (c && rc == 0)
        conn_put(q, c);
    else if (c)
        redisFree(c);
    pthread_mutex_unlock(&q->send_lock);
    if (rc < 0)
        store_lost(q, err);
    return rc;
}

/* ------------------------------------------------------ local state */

static double shared(const struct rq *q, double now)
{
    return now + q->off;
}

static double local_time(const struct rq *q, double t)
{
    return t == 0 ? 0 : t - q->off;
}

/* The latest now any call passed. Under q->lock. */
static void saw(struct rq *q, double now)
{
    if (now > q->now)
        q->now = now;
}

/* The shared time of the latest now any call passed. */
static double latest(struct rq *q)
{
    pthread_mutex_lock(&q->lock);
    double now = q->now;
    pthread_mutex_unlock(&q->lock);
    return shared(q, now);
}

/* A local change the store may not have seen yet. next_due's cache stays
 * right only if the change cannot move a group's start (keep: its group
 * has no delay, or it is a delayed job), lowered to due (the job's due
 * time, 0 if ready). Call after posting the change. Under q->lock. */
static void local_change(struct rq *q, int keep, double due)
{
    if (!keep) {
        q->loud++;
        return;
    }
    if (due > 0 && q->due_valid && (q->due == 0 || due < q->due))
        q->due = due;
    if (due > 0 && (q->low_since == 0 || due < q->low_since))
        q->low_since = due;
}

/* A group a take saw with no delay, in this tune epoch. Under q->lock. */
static int group_quiet(struct rq *q, const char *g, size_t len)
{
    if (len == 0)
        return 1; /* the empty group has no delay and no pause */
    struct name *n = strtab_get(&q->names, g, len, 0);
    return n && n->quiet_at == q->epoch + 1;
}

static int rec_quiet(const struct rq *q, const struct rec *e)
{
    return e->group_len == 0 || (e->quiet && e->epoch == q->epoch);
}

static void bucket_insert(struct rq *q, struct rec *e)
{
    if (q->nrecs + 1 > q->mask + 1) {
        size_t n = (q->mask + 1) * 2;
        struct rec **b = calloc(n, sizeof *b);
        if (b) { /* else the chains just grow longer */
            for (size_t i = 0; i <= q->mask; i++) {
                for (struct rec *r = q->buckets[i], *next; r; r = next) {
                    next = r->next;
                    r->next = b[r->lease & (n - 1)];
                    b[r->lease & (n - 1)] = r;
                }
            }
            free(q->buckets);
            q->buckets = b;
            q->mask = n - 1;
        }
    }
    struct rec **head = &q->buckets[e->lease & q->mask];
    e->next = *head;
    *head = e;
    q->nrecs++;
}

static struct rec *bucket_remove(struct rq *q, uint64_t lease)
{
    struct rec **p = &q->buckets[lease & q->mask];
    while (*p && (*p)->lease != lease)
        p = &(*p)->next;
    struct rec *e = *p;
    if (!e)
        return NULL;
    *p = e->next;
    e->next = NULL;
    q->nrecs--;
    return e;
}

static struct rec *rec_find(const struct rq *q, uint64_t lease)
{
    struct rec *e = q->buckets[lease & q->mask];
    while (e && e->lease != lease)
        e = e->next;
    return e;
}

static void slot_link(struct rq *q, struct rec *e)
{
    struct slot *s = &q->slots[e->worker];
    e->wprev = NULL;
    e->wnext = s->leases;
    if (s->leases)
        s->leases->wprev = e;
    s->leases = e;
}

/* A worker's lease out of the table; NULL if no worker holds it. */
static struct rec *rec_remove(struct rq *q, uint64_t lease)
{
    struct rec *e = rec_find(q, lease);
    if (!e || e->worker < 0)
        return NULL;
    bucket_remove(q, lease);
    if (e->wprev)
        e->wprev->wnext = e->wnext;
    else
        q->slots[e->worker].leases = e->wnext;
    if (e->wnext)
        e->wnext->wprev = e->wprev;
    return e;
}

static void stock_push(struct rq *q, struct rec *e)
{
    e->worker = -1;
    e->wprev = e->wnext = NULL;
    bucket_insert(q, e);
    if (q->stock_tail)
        q->stock_tail->wnext = e;
    else
        q->stock = e;
    q->stock_tail = e;
    q->nstock++;
}

static struct rec *stock_pop(struct rq *q)
{
    struct rec *e = q->stock;
    if (!e)
        return NULL;
    q->stock = e->wnext;
    if (!q->stock)
        q->stock_tail = NULL;
    q->nstock--;
    bucket_remove(q, e->lease);
    e->wnext = NULL;
    return e;
}

/* An heir goes first: a worker of this process runs it at once. It is in
 * the lease table already (reserve_heir leaves it there). */
static void stock_push_front(struct rq *q, struct rec *e)
{
    e->worker = -1;
    e->wprev = NULL;
    e->wnext = q->stock;
    q->stock = e;
    if (!q->stock_tail)
        q->stock_tail = e;
    q->nstock++;
}

/* The reserve: leases taken without a slot of their group, each waiting
 * for a job of its group here to end and hand it that slot (the job's
 * ack says so, and the store moves the slot instead of freeing it), so
 * a host's slots go from one job to the next without a call. In the
 * lease table, not the stock: no take hands one out. Under q->lock. */
static void reserve_push(struct rq *q, struct rec *e)
{
    e->worker = -1;
    e->wprev = e->wnext = NULL;
    bucket_insert(q, e);
    if (q->reserve_tail)
        q->reserve_tail->wnext = e;
    else
        q->reserve = e;
    q->reserve_tail = e;
    q->nreserve++;
}

/* Takes *pp (a link of the reserve list, prev the rec before it or NULL)
 * out of the reserve list. Under q->lock. */
static struct rec *reserve_unlink(struct rq *q, struct rec **pp, struct rec *prev)
{
    struct rec *e = *pp;
    *pp = e->wnext;
    if (q->reserve_tail == e)
        q->reserve_tail = prev;
    e->wnext = NULL;
    q->nreserve--;
    return e;
}

static const char *rec_group(const struct rec *e)
{
    return e->buf + e->len + 1 + e->ctx_len;
}

static int same_group(const struct rec *a, const char *g, size_t len)
{
    return a->group_len == len && memcmp(rec_group(a), g, len) == 0;
}

/* The reserve lease that inherits the slot of a job of group g, out of
 * the reserve (the oldest, first in line) but still in the lease table;
 * NULL if none. Under q->lock. */
static struct rec *reserve_heir(struct rq *q, const char *g, size_t len)
{
    struct rec *prev = NULL;
    for (struct rec **pp = &q->reserve; *pp; prev = *pp, pp = &(*pp)->wnext) {
        if (same_group(*pp, g, len)) {
            struct rec *e = reserve_unlink(q, pp, prev);
            e->reserve = 0;
            return e;
        }
    }
    return NULL;
}

/* Whether a worker here runs a job of group g, or the stock holds one
 * (with its slot: it runs next, an heir among them). Under q->lock. */
static int group_running(const struct rq *q, const char *g, size_t len)
{
    for (int w = 0; w < q->nslots; w++)
        for (const struct rec *l = q->slots[w].leases; l; l = l->wnext)
            if (same_group(l, g, len))
                return 1;
    for (const struct rec *l = q->stock; l; l = l->wnext)
        if (same_group(l, g, len))
            return 1;
    return 0;
}

/* Reserve leases whose group has no job running or in the stock here,
 * none would ever inherit a slot; and out of stock mode (few jobs ready:
 * the crawl's end) all of them, so that a few jobs running cannot hold
 * back many that other workers could start. Only group g is looked at if
 * given (a job of it just ended: no other group's count moved). They go
 * back (out of the reserve, on a list by next). Under q->lock. */
static struct rec *reserve_orphans(struct rq *q, const char *g, size_t len)
{
    if (!q->nreserve)
        return NULL;
    int all = !stock_mode(q);
    if (!all && g && group_running(q, g, len))
        return NULL;
    struct rec *out = NULL, *prev = NULL;
    for (struct rec **pp = &q->reserve; *pp;) {
        struct rec *e = *pp;
        int gone =
            all || (g ? same_group(e, g, len) : !group_running(q, rec_group(e), e->group_len));
        if (!gone) {
            prev = e;
            pp = &e->wnext;
            continue;
        }
        reserve_unlink(q, pp, prev);
        bucket_remove(q, e->lease);
        e->next = out;
        out = e;
    }
    return out;
}

/* What a batch asks for the reserve: for up to RESERVE_GROUPS groups of
 * its acks, twice as many leases as it acks there (the jobs that end until
 * the next call's answer), less those the reserve holds for the group;
 * RESERVE_MAX in all and a quarter of the ready jobs at most, none outside
 * stock mode. The groups point into the batch's ops. Returns how many. */
static int reserve_wanted(struct rq *q, const struct op *batch, const char **g, size_t *glen,
                          int *want)
{
    int n = 0;
    for (const struct op *o = batch; o; o = o->next) {
        if (o->n < 5 || o->l[0] != 1)
            continue;
        char letter = o->bytes[o->off[0]];
        if ((letter != 'a' && letter != 'h') || o->l[4] == 0)
            continue;
        const char *og = o->bytes + o->off[4];
        int i = 0;
        while (i < n && !(glen[i] == o->l[4] && memcmp(g[i], og, glen[i]) == 0))
            i++;
        if (i < n) {
            want[i] += 2;
        } else if (n < RESERVE_GROUPS) {
            g[n] = og;
            glen[n] = o->l[4];
            want[n++] = 2;
        }
    }
    pthread_mutex_lock(&q->lock);
    long long cap = q->last_ready / 4 < RESERVE_MAX ? q->last_ready / 4 : RESERVE_MAX;
    int budget = stock_mode(q) ? (int)cap - q->nreserve : 0, kept = 0;
    for (int i = 0; i < n; i++) {
        for (const struct rec *e = q->reserve; e; e = e->wnext)
            if (same_group(e, g[i], glen[i]))
                want[i]--;
        if (want[i] > budget)
            want[i] = budget;
        if (want[i] <= 0)
            continue;
        budget -= want[i];
        g[kept] = g[i];
        glen[kept] = glen[i];
        want[kept++] = want[i];
    }
    pthread_mutex_unlock(&q->lock);
    return kept;
}

static void hungry_unlink(struct rq *q, int w)
{
    struct slot *s = &q->slots[w];
    if (s->hprev >= 0)
        q->slots[s->hprev].hnext = s->hnext;
    else
        q->hungry_head = s->hnext;
    if (s->hnext >= 0)
        q->slots[s->hnext].hprev = s->hprev;
    else
        q->hungry_tail = s->hprev;
    s->hprev = s->hnext = -1;
    s->hungry = 0;
}

static void hungry_mark(struct rq *q, int w)
{
    struct slot *s = &q->slots[w];
    if (s->hungry)
        return;
    s->hungry = 1;
    s->hprev = q->hungry_tail;
    s->hnext = -1;
    if (q->hungry_tail >= 0)
        q->slots[q->hungry_tail].hnext = w;
    else
        q->hungry_head = w;
    q->hungry_tail = w;
}

/* The oldest hungry worker, no longer hungry; -1 if none. */
static int hungry_pop(struct rq *q)
{
    int w = q->hungry_head;
    if (w >= 0)
        hungry_unlink(q, w);
    return w;
}

static void hungry_clear(struct rq *q)
{
    while (q->hungry_head >= 0)
        hungry_unlink(q, q->hungry_head);
}

static void wake(struct rq *q, int w)
{
    if (w >= 0)
        queue_wake(q->front, w);
}

/* Wakes up to n hungry workers (all if n < 0), never under the lock. */
static void wake_hungry(struct rq *q, int n)
{
    for (;;) {
        int w[WAKE_BATCH], k = 0;
        pthread_mutex_lock(&q->lock);
        while ((n < 0 || k < n) && k < WAKE_BATCH && q->hungry_head >= 0)
            w[k++] = hungry_pop(q);
        pthread_mutex_unlock(&q->lock);
        for (int i = 0; i < k; i++)
            wake(q, w[i]);
        if (k < WAKE_BATCH)
            return;
        if (n > 0)
            n -= k;
    }
}

/* The first moment of being drained, as an answer said: wake everyone once. */
static void drained_edge(struct rq *q, int drained)
{
    if (!drained)
        return;
    pthread_mutex_lock(&q->lock);
    int first = !q->drained_notified;
    q->drained_notified = 1;
    if (first)
        hungry_clear(q);
    pthread_mutex_unlock(&q->lock);
    if (first)
        queue_wake_all(q->front);
}

/* After an answer saw `waiting` jobs ready or delayed: a producer held back
 * by QUEUE_FULL hears of room below half the capacity. */
static void producer_room(struct rq *q, long long waiting)
{
    pthread_mutex_lock(&q->lock);
    int w = q->producer_waiting && 2 * (size_t)waiting < q->capacity;
    if (w)
        q->producer_waiting = 0;
    pthread_mutex_unlock(&q->lock);
    if (w)
        queue_wake(q->front, 0);
}

/* Many jobs are ready in the store: takes are served from the stock,
 * which the background thread fills, and never wait for Redis (a worker
 * thread waiting would hold up all its jobs). With few, a take asks the
 * store itself and keeps the rest for other processes. Under q->lock. */
static int stock_mode(const struct rq *q)
{
    return !q->closed && q->last_ready >= PREFETCH_MIN_READY;
}

/* Leases the stock lacks: up to PREFETCH_MAX, never more than a quarter of
 * the ready jobs, none outside stock mode, and never so many that this
 * process would hold more leases than it runs jobs at once (mine: the
 * caller's own take, counted too): a lease in the stock holds a slot of
 * its group, which another process could be using (the reserve's hold
 * none). Under q->lock. */
static int prefetch_want(const struct rq *q, int mine)
{
    if (!stock_mode(q))
        return 0;
    long long want = q->last_ready / 4;
    if (want > PREFETCH_MAX)
        want = PREFETCH_MAX;
    want -= q->nstock;
    if (q->in_flight_max > 0) {
        long long room = (long long)q->in_flight_max - (long long)slotted(q) - mine;
        if (want > room)
            want = room;
    }
    return want > 0 ? (int)want : 0;
}

/* A change of this process that may make work (an ack, a retry, a
 * release, a push of a ready job), still in the outbox. A hungry worker
 * waits for the stock: the stock's refill is asked for, which sends the
 * change, and the worker is woken when leases come (absorb), not now, when
 * a take would find the stock as empty as before. Without a stock a
 * hungry worker asks the store itself: it is woken (returned, to wake
 * once the lock is let go). Under q->lock; *kick: refill_ask's answer. */
static int work_may_come(struct rq *q, int *kick)
{
    if (q->hungry_head < 0)
        return -1;
    if (!atomic_load(&q->down) && stock_mode(q) && prefetch_want(q, 0) > 0) {
        *kick = refill_ask(q);
        return -1;
    }
    return hungry_pop(q);
}

/* Fills a lease for the caller from rec e, now held by worker. Under
 * q->lock. */
static void hand_out(struct rq *q, struct rec *e, int worker, struct queue_lease *out)
{
    e->worker = worker;
    bucket_insert(q, e);
    slot_link(q, e);
    out->lease = e->lease;
    out->job_id = e->job_id;
    out->attempt = e->attempt;
    out->depth = e->depth;
    out->data = e->buf;
    out->len = e->len;
    out->ctx = (const uint8_t *)e->buf + e->len + 1;
    out->ctx_len = e->ctx_len;
    out->group = e->buf + e->len + 1 + e->ctx_len;
    out->group_len = e->group_len;
    if (q->slots[worker].hungry)
        hungry_unlink(q, worker); /* it found work without being woken */
}

/* A lease of a batch's answer as a record; NULL out of memory, or if what
 * the store holds for the job is not a packed job. */
static struct rec *rec_of(const redisReply *r, size_t at, uint64_t epoch)
{
    const redisReply *v = str_elem(r, at + 2);
    /* the stored value: 16 hex digits of sequence, then the packed job; ""
     * if the job was gone */
    size_t n = v ? v->len : 0;
    struct jobpack_fields j;
    if ((n > 0 && n <= 16) || jobpack_read(n ? v->str + 16 : "", n ? n - 16 : 0, &j) < 0)
        return NULL;
    if (j.ctx_len > QUEUE_CTX_MAX)
        j.ctx_len = 0;
    struct rec *e = malloc(sizeof *e + j.len + 1 + j.ctx_len + j.group_len + 1);
    if (!e)
        return NULL;
    e->lease = (uint64_t)elem_int(r, at);
    e->job_id = (uint64_t)elem_int(r, at + 1);
    e->attempt = j.attempt;
    e->depth = j.depth;
    long long flags = elem_int(r, at + 3);
    e->quiet = (int)(flags & 1);
    e->reserve = (flags & 2) != 0;
    e->epoch = epoch;
    e->next = e->wprev = e->wnext = NULL;
    e->worker = -1;
    e->len = j.len;
    e->ctx_len = j.ctx_len;
    e->group_len = j.group_len;
    if (j.len)
        memcpy(e->buf, j.data, j.len);
    e->buf[j.len] = '\0';
    if (j.ctx_len)
        memcpy(e->buf + j.len + 1, j.ctx, j.ctx_len);
    if (j.group_len)
        memcpy(e->buf + j.len + 1 + j.ctx_len, j.group, j.group_len);
    e->buf[j.len + 1 + j.ctx_len + j.group_len] = '\0';
    return e;
}

static void post_release(struct rq *q, uint64_t lease)
{
    struct args a = {0};
    arg_str(&a, "l");
    arg_dbl(&a, latest(q));
    arg_int(&a, (long long)lease);
    post(q, &a);
}

/* Leases out of the lease table, on a list by next, posted back. */
static void release_list(struct rq *q, struct rec *list)
{
    for (struct rec *e = list, *next; e; e = next) {
        next = e->next;
        post_release(q, e->lease);
        free(e);
    }
}

/* Notes a group of a lease as quiet or not, for next_due's cache. Under
 * q->lock. */
static void group_seen(struct rq *q, const struct rec *e)
{
    if (e->group_len == 0)
        return;
    struct name *n = strtab_get(&q->names, e->buf + e->len + 1 + e->ctx_len, e->group_len, 1);
    if (n)
        n->quiet_at = e->quiet ? q->epoch + 1 : 0;
}

/* What a batch's answer means here, with no lock held: its leases (the
 * first for worker, if >= 0, the rest to the stock), next_due's cache
 * (if nothing changed here since the batch was made), room for the
 * producer, the drain. Returns 1 with *out filled if worker got a lease,
 * else 0 (the worker is hungry). Frees ans->r. */
static int absorb(struct rq *q, struct answer *ans, int worker, struct queue_lease *out)
{
    const redisReply *r = ans->r;
    size_t got = r ? (size_t)elem_int(r, 5) : 0;
    int mine = 0, stocked = 0, reserved = 0, wake_n = 0;
    uint64_t lost[PREFETCH_MAX];
    int nlost = 0;
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < got && 6 + 4 * i + 3 < r->elements; i++) {
        struct rec *e = rec_of(r, 6 + 4 * i, q->epoch);
        if (!e || q->closed) {
            if (nlost < PREFETCH_MAX) /* the job must not stay leased by nobody */
                lost[nlost++] = (uint64_t)elem_int(r, 6 + 4 * i);
            free(e);
            continue;
        }
        group_seen(q, e);
        if (e->reserve) {
            reserve_push(q, e);
            reserved++;
        } else if (worker >= 0 && !mine) {
            hand_out(q, e, worker, out);
            mine = 1;
        } else {
            stock_push(q, e);
            stocked++;
        }
    }
    if (worker >= 0 && !mine && !q->closed && !atomic_load(&q->down)) {
        struct rec *e = stock_pop(q); /* filled meanwhile by another take */
        if (e) {
            hand_out(q, e, worker, out);
            mine = 1;
        }
    }
    if (r && q->loud == ans->loud) {
        double due = local_time(q, ans->due); /* and the delayed jobs posted since */
        q->due = q->low_since && (due == 0 || q->low_since < due) ? q->low_since : due;
        q->due_valid = 1;
        q->due_loud = q->loud;
    }
    if (worker >= 0 && !mine && !q->closed)
        hungry_mark(q, worker);
    if (stocked)
        wake_n = stocked;
    /* a reserve lease that came after the last job of its group here ended;
     * out of stock mode, all of them */
    struct rec *orphans = reserved || !stock_mode(q) ? reserve_orphans(q, NULL, 0) : NULL;
    pthread_mutex_unlock(&q->lock);
    release_list(q, orphans);
    for (int i = 0; i < nlost; i++)
        post_release(q, lost[i]);
    if (r) {
        freeReplyObject(ans->r);
        ans->r = NULL;
        producer_room(q, ans->waiting);
        drained_edge(q, ans->drained);
    }
    if (wake_n)
        wake_hungry(q, wake_n);
    return mine;
}

/* take found nothing and the store was not asked: the worker is hungry. */
static int hungry_now(struct rq *q, int worker)
{
    pthread_mutex_lock(&q->lock);
    if (!q->closed)
        hungry_mark(q, worker);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

/* ------------------------------------------------------------- the ops */

/* The job a push makes, packed for the store (jobpack.h). */
static int push_pack(struct jobpack *j, const char *data, size_t len,
                     const struct queue_push_opts *o)
{
    struct jobpack_fields f = {
        .attempt = 1,
        .priority = o->priority,
        .depth = o->depth,
        .group = o->group,
        .group_len = o->group_len,
        .data = data,
        .len = len,
        .ctx = (const char *)o->ctx,
        .ctx_len = o->ctx_len,
    };
    return jobpack_make(j, &f);
}

/* The producer's push: one call, answered by the store (capacity, its
 * position, the key), never held. */
static int push_now(struct rq *q, const char *data, size_t len, const struct queue_push_opts *opts,
                    double now, uint64_t *id_out, uint64_t hash)
{
    pthread_mutex_lock(&q->lock);
    uint64_t pos = q->ppos + 1;
    saw(q, now);
    pthread_mutex_unlock(&q->lock);
    unsigned char key[8];
    for (int i = 0; i < 8; i++)
        key[i] = (unsigned char)(hash >> (8 * i));
    struct jobpack j;
    if (push_pack(&j, data, len, opts) < 0)
        return QUEUE_ERR; /* out of memory: nothing changed */
    struct args a = {0};
    arg_dbl(&a, shared(q, now));
    arg_bytes(&a, j.p, j.len);
    arg_bytes(&a, opts->group, opts->group_len);
    arg_int(&a, -(long long)opts->priority);
    arg_dbl(&a, opts->delay > 0 ? opts->delay : 0); /* NaN and negatives mean now */
    arg_bytes(&a, key, opts->key ? 8 : 0);
    arg_str(&a, "1");
    arg_int(&a, (long long)q->capacity);
    arg_int(&a, (long long)pos);
    arg_int(&a, q->limit);
    arg_dbl(&a, q->delay);
    redisReply *r = atomic_load(&q->down) ? NULL : run(q, RS_PUSH, &a);
    jobpack_free(&j);
    if (!r) {
        pthread_mutex_lock(&q->lock);
        q->producer_waiting = 1; /* woken when the store is back */
        pthread_mutex_unlock(&q->lock);
        return QUEUE_FULL;
    }
    int status = (int)elem_int(r, 0);
    uint64_t id = (uint64_t)elem_int(r, 1);
    int woke = (int)elem_int(r, 2);
    freeReplyObject(r);
    int w = -1;
    pthread_mutex_lock(&q->lock);
    if (status == QUEUE_OK || status == QUEUE_DUP) {
        q->ppos = pos;
        if (opts->key && dedup_count(q->keys) < SEEN_MAX)
            dedup_add(q->keys, hash);
    }
    if (status == QUEUE_FULL)
        q->producer_waiting = 1;
    if (status == QUEUE_OK) {
        q->drained_notified = 0;
        local_change(q, 0, 0);
        if (woke)
            w = hungry_pop(q);
    }
    pthread_mutex_unlock(&q->lock);
    if (status == QUEUE_OK && id_out)
        *id_out = id;
    wake(q, w);
    return status;
}

static int rq_push(void *b, const char *data, size_t len, const struct queue_push_opts *opts,
                   double now, uint64_t *id_out)
{
    struct rq *q = b;
    uint64_t hash = opts->key ? dedup_hash(q->keys, opts->key, opts->key_len) : 0;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        return QUEUE_CLOSED;
    }
    if (opts->from_producer) {
        pthread_mutex_unlock(&q->lock);
        return push_now(q, data, len, opts, now, id_out, hash);
    }
    /* a key this process has seen is a duplicate in the store too (most of
     * a crawl's pushes): answered before anything is packed */
    int remember = opts->key && dedup_count(q->keys) < SEEN_MAX;
    int dup = remember && dedup_has(q->keys, hash);
    pthread_mutex_unlock(&q->lock);
    /* packed before the key is kept, so that out of memory changes nothing */
    struct jobpack j;
    if (!dup && push_pack(&j, data, len, opts) < 0)
        return QUEUE_ERR;
    pthread_mutex_lock(&q->lock);
    if (!dup && remember && dedup_add(q->keys, hash) == 0) {
        dup = 1; /* another worker pushed the key meanwhile */
        jobpack_free(&j);
    }
    if (dup) {
        pthread_mutex_unlock(&q->lock);
        pthread_mutex_lock(&q->out_lock);
        q->dups++;
        pthread_mutex_unlock(&q->out_lock);
        return QUEUE_DUP;
    }
    saw(q, now);
    uint64_t id = id_next(q);
    int quiet = group_quiet(q, opts->group, opts->group_len);
    pthread_mutex_unlock(&q->lock);
    double delay = opts->delay > 0 ? opts->delay : 0; /* NaN and negatives mean now */
    unsigned char key[8];
    for (int i = 0; i < 8; i++)
        key[i] = (unsigned char)(hash >> (8 * i));
    struct args a = {0};
    arg_str(&a, "p");
    arg_dbl(&a, shared(q, now));
    arg_int(&a, (long long)id);
    arg_bytes(&a, j.p, j.len);
    arg_bytes(&a, opts->group, opts->group_len);
    arg_int(&a, -(long long)opts->priority);
    arg_dbl(&a, delay);
    arg_bytes(&a, key, opts->key ? 8 : 0);
    post(q, &a); /* copies the bytes */
    jobpack_free(&j);
    pthread_mutex_lock(&q->lock);
    q->drained_notified = 0;
    local_change(q, delay > 0 || quiet, delay > 0 ? now + delay : 0);
    int kick = 0, w = delay > 0 ? -1 : work_may_come(q, &kick);
    pthread_mutex_unlock(&q->lock);
    wake(q, w);
    kick_refill(q, kick);
    if (id_out)
        *id_out = id;
    return QUEUE_OK;
}

static int rq_take(void *b, int worker, double now, struct queue_lease *out)
{
    struct rq *q = b;
    pthread_mutex_lock(&q->lock);
    saw(q, now);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        return 0;
    }
    int down = atomic_load(&q->down);
    struct rec *e = down ? NULL : stock_pop(q);
    if (e) {
        hand_out(q, e, worker, out);
        int low = q->nstock < PREFETCH_MAX / 2 && prefetch_want(q, 0) > 0;
        int kick = low ? refill_ask(q) : 0;
        pthread_mutex_unlock(&q->lock);
        kick_refill(q, kick);
        return 1;
    }
    if (!down && stock_mode(q) && prefetch_want(q, 0) > 0) {
        hungry_mark(q, worker); /* woken when the stock is filled */
        int kick = refill_ask(q);
        pthread_mutex_unlock(&q->lock);
        kick_refill(q, kick);
        return 0;
    }
    int want = prefetch_want(q, 1) + 1;
    if (want > PREFETCH_MAX)
        want = PREFETCH_MAX;
    /* out of stock mode the reserve goes back, with no job ending to say so:
     * this take may get its leases again, with their slots */
    struct rec *orphans = stock_mode(q) ? NULL : reserve_orphans(q, NULL, 0);
    pthread_mutex_unlock(&q->lock);
    release_list(q, orphans);
    if (down)
        return hungry_now(q, worker);
    struct answer ans;
    if (send_all(q, want, shared(q, now), 1, &ans) < 0)
        return hungry_now(q, worker);
    return absorb(q, &ans, worker, out);
}

/* Takes the lease out of the local table: its rec, put on the kept list
 * (until queue_free) if keep, else the caller's to free once the end is
 * posted; NULL if no worker here holds it. *quiet: rec_quiet. With heir,
 * also the reserve lease of its group that inherits its slot, if any
 * (reserve_heir). */
static struct rec *lease_out(struct rq *q, uint64_t lease, int keep, int *quiet, struct rec **heir)
{
    if (lease == 0)
        return NULL;
    pthread_mutex_lock(&q->lock);
    struct rec *e = rec_remove(q, lease);
    *quiet = e && rec_quiet(q, e);
    if (e && keep) {
        e->next = q->kept;
        q->kept = e;
    }
    if (heir)
        *heir = e && !q->closed ? reserve_heir(q, rec_group(e), e->group_len) : NULL;
    pthread_mutex_unlock(&q->lock);
    return e;
}

/* A lease's end (its rec e) is posted: its heir, if any, goes first in the
 * stock (only now, so that the heir's own end follows the 'h' that gives
 * it its slot) and a hungry worker is woken for it; next_due's cache,
 * work_may_come, and the reserve's orphans in e's group. */
static void lease_ended(struct rq *q, int quiet, double due, const struct rec *e, struct rec *heir)
{
    pthread_mutex_lock(&q->lock);
    int wh = -1;
    if (heir) {
        stock_push_front(q, heir);
        wh = hungry_pop(q);
    }
    struct rec *orphans = reserve_orphans(q, rec_group(e), e->group_len);
    local_change(q, quiet, due);
    int kick = 0, w = work_may_come(q, &kick);
    pthread_mutex_unlock(&q->lock);
    release_list(q, orphans);
    wake(q, wh);
    wake(q, w);
    kick_refill(q, kick);
}

/* An ack names its job and group, so the store ends it with one command.
 * With a reserve lease of the group here, the ack hands it its slot (an
 * 'h'), and it goes first in the stock: the host's slot goes on to the
 * next job without waiting for the store. */
static int ack_with(struct rq *q, uint64_t lease, int keep, const char *items, size_t len)
{
    int quiet;
    struct rec *heir;
    struct rec *e = lease_out(q, lease, keep, &quiet, &heir);
    if (!e)
        return -1;
    struct args a = {0};
    arg_str(&a, heir ? "h" : "a");
    arg_dbl(&a, latest(q));
    arg_int(&a, (long long)lease);
    arg_int(&a, (long long)e->job_id);
    arg_bytes(&a, rec_group(e), e->group_len);
    arg_bytes(&a, items, items ? len : 0);
    if (heir)
        arg_int(&a, (long long)heir->lease);
    post(q, &a); /* copies the bytes */
    lease_ended(q, quiet, 0, e, heir);
    if (!keep)
        free(e);
    return 0;
}

static int rq_ack(void *b, uint64_t lease, int keep)
{
    return ack_with(b, lease, keep, NULL, 0);
}

static int rq_ack_items(void *b, uint64_t lease, const char *items, size_t len)
{
    return ack_with(b, lease, 0, items, len);
}

static int rq_retry(void *b, uint64_t lease, double delay, double now)
{
    struct rq *q = b;
    pthread_mutex_lock(&q->lock);
    saw(q, now);
    pthread_mutex_unlock(&q->lock);
    delay = delay > 0 ? delay : 0;
    int quiet;
    struct rec *e = lease_out(q, lease, 0, &quiet, NULL);
    if (!e)
        return -1;
    struct args a = {0};
    arg_str(&a, "r");
    arg_dbl(&a, shared(q, now));
    arg_int(&a, (long long)lease);
    arg_dbl(&a, delay);
    post(q, &a);
    lease_ended(q, quiet, delay > 0 ? now + delay : 0, e, NULL);
    free(e);
    return 0;
}

static int rq_release_worker(void *b, int worker, uint64_t except)
{
    struct rq *q = b;
    int total = 0;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        struct rec *e = q->slots[worker].leases;
        while (e && e->lease == except)
            e = e->wnext;
        int quiet = e && rec_quiet(q, e);
        if (e)
            rec_remove(q, e->lease);
        pthread_mutex_unlock(&q->lock);
        if (!e)
            break;
        post_release(q, e->lease);
        free(e);
        pthread_mutex_lock(&q->lock);
        local_change(q, quiet, 0);
        pthread_mutex_unlock(&q->lock);
        total++;
    }
    pthread_mutex_lock(&q->lock);
    struct rec *orphans = reserve_orphans(q, NULL, 0);
    pthread_mutex_unlock(&q->lock);
    release_list(q, orphans);
    wake_hungry(q, total);
    return total;
}

static void rq_producer_done(void *b)
{
    struct rq *q = b;
    struct args a = {0};
    arg_str(&a, "D");
    arg_dbl(&a, latest(q));
    post(q, &a);
    struct answer ans;
    if (send_all(q, 0, latest(q), 0, &ans) == 0)
        absorb(q, &ans, -1, NULL);
}

static int rq_drained(void *b)
{
    struct rq *q = b;
    /* a lease held here, a worker's or the stock's, is a job not done; so
     * are the many jobs the store had ready at its last answer, which the
     * stock's refill brings (the worker asking is hungry, and is woken when
     * they come) without a call from its thread */
    pthread_mutex_lock(&q->lock);
    struct rec *orphans = stock_mode(q) ? NULL : reserve_orphans(q, NULL, 0);
    int holding = q->nrecs > 0; /* the stock's and the reserve's included */
    int ready = !holding && !atomic_load(&q->down) && stock_mode(q);
    int kick = ready ? refill_ask(q) : 0;
    pthread_mutex_unlock(&q->lock);
    release_list(q, orphans);
    kick_refill(q, kick);
    if (holding || ready)
        return 0;
    struct answer ans;
    if (atomic_load(&q->down) || send_all(q, 0, latest(q), 1, &ans) < 0)
        return 0;
    int drained = ans.drained;
    absorb(q, &ans, -1, NULL);
    return drained;
}

/* Stops this process: its stock goes back to the store. */
static void rq_close(void *b)
{
    struct rq *q = b;
    pthread_mutex_lock(&q->lock);
    int first = !q->closed;
    q->closed = 1;
    q->producer_waiting = 0;
    hungry_clear(q);
    struct rec *stock = NULL;
    for (struct rec *e; (e = stock_pop(q));) {
        e->next = stock;
        stock = e;
    }
    struct rec *reserve = reserve_orphans(q, NULL, 0); /* closed: all of it */
    pthread_mutex_unlock(&q->lock);
    release_list(q, stock);
    release_list(q, reserve);
    if (first)
        queue_wake_all(q->front);
}

static double rq_next_due(void *b)
{
    struct rq *q = b;
    if (atomic_load(&q->down))
        return clock_now() + DOWN_DUE;
    pthread_mutex_lock(&q->lock);
    int cached = q->due_valid && q->due_loud == q->loud;
    double due = q->due;
    int quick = !cached && stock_mode(q);
    pthread_mutex_unlock(&q->lock);
    if (cached)
        return due;
    if (quick) /* busy: a call soon brings it; a worker looking again costs nothing */
        return clock_now() + FLUSH_EVERY * 5;
    struct answer ans;
    if (send_all(q, 0, latest(q), 1, &ans) < 0)
        return clock_now() + DOWN_DUE;
    due = local_time(q, ans.due);
    absorb(q, &ans, -1, NULL);
    return due;
}

/* Sends the outbox before a call that reads the store. */
static void flush_now(struct rq *q)
{
    struct answer ans;
    if (!atomic_load(&q->down) && send_all(q, 0, latest(q), 0, &ans) == 0)
        absorb(q, &ans, -1, NULL);
}

static void rq_stats(void *b, struct queue_stats *out)
{
    struct rq *q = b;
    flush_now(q);
    redisReply *r = NULL;
    if (!atomic_load(&q->down)) {
        struct args a = {0};
        r = run(q, RS_STATS, &a);
    }
    pthread_mutex_lock(&q->lock);
    if (r) {
        q->last.ready = (size_t)elem_int(r, 0);
        q->last.delayed = (size_t)elem_int(r, 1);
        q->last.leased = (size_t)elem_int(r, 2);
        q->last.pushed = (uint64_t)elem_int(r, 3);
        q->last.dup = (uint64_t)elem_int(r, 4);
        q->last.retried = (uint64_t)elem_int(r, 5);
        q->last.acked = (uint64_t)elem_int(r, 6);
        q->last.keys = (size_t)elem_int(r, 7);
    }
    *out = q->last;
    pthread_mutex_unlock(&q->lock);
    if (r)
        freeReplyObject(r);
    pthread_mutex_lock(&q->out_lock);
    out->store_down = atomic_load(&q->down);
    out->held = out->store_down ? q->nops : 0;
    pthread_mutex_unlock(&q->out_lock);
}

static void rq_sync(void *b, int last)
{
    (void)last;
    flush_now(b);
}

/* A tune or pause: a group's start may move, here and in every process. */
static void group_changed(struct rq *q)
{
    pthread_mutex_lock(&q->lock);
    q->epoch++;
    local_change(q, 0, 0);
    pthread_mutex_unlock(&q->lock);
}

static int rq_group_tune(void *b, const char *group, size_t len, double delay, int limit)
{
    struct rq *q = b;
    struct args a = {0};
    arg_str(&a, "t");
    arg_dbl(&a, latest(q));
    arg_bytes(&a, group, len);
    arg_dbl(&a, delay);
    arg_int(&a, limit);
    post(q, &a);
    group_changed(q);
    wake_hungry(q, 1); /* its limit may have gone up */
    return 0;
}

static int rq_group_pause(void *b, const char *group, size_t len, double until)
{
    struct rq *q = b;
    struct args a = {0};
    arg_str(&a, "u");
    arg_dbl(&a, latest(q));
    arg_bytes(&a, group, len);
    arg_dbl(&a, shared(q, until));
    post(q, &a);
    group_changed(q);
    return 0;
}

/* The group's name as a string that lives until queue_free. */
static const char *interned(struct rq *q, const char *s, size_t len)
{
    pthread_mutex_lock(&q->lock);
    struct name *n = strtab_get(&q->names, s, len, 1);
    if (n && !n->s && (n->s = malloc(len + 1))) {
        memcpy(n->s, s, len);
        n->s[len] = '\0';
    }
    const char *out = n ? n->s : NULL;
    pthread_mutex_unlock(&q->lock);
    return out;
}

static void rq_each_group(void *b, void (*fn)(void *arg, const struct queue_group_info *g),
                          void *arg)
{
    struct rq *q = b;
    flush_now(q);
    if (atomic_load(&q->down))
        return;
    struct args a = {0};
    redisReply *r = run(q, RS_GROUPS, &a);
    if (!r)
        return;
    pthread_mutex_lock(&q->lock);
    double now = q->now;
    pthread_mutex_unlock(&q->lock);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 8 <= r->elements; i += 8) {
        const redisReply *name = r->element[i];
        if (name->type != REDIS_REPLY_STRING)
            continue;
        const char *s = interned(q, name->str, name->len);
        if (!s)
            continue;
        double next = local_time(q, elem_dbl(r, i + 7));
        struct queue_group_info info = {
            .name = s,
            .name_len = name->len,
            .inflight = (size_t)elem_int(r, i + 1),
            .ready = (size_t)elem_int(r, i + 2),
            .delayed = (size_t)elem_int(r, i + 3),
            .started = (uint64_t)elem_int(r, i + 4),
            .delay = elem_dbl(r, i + 5),
            .limit = (int)elem_int(r, i + 6),
            .next_start = next > now ? next : 0,
        };
        fn(arg, &info);
    }
    freeReplyObject(r);
}

static int rq_claim(void *b, const char *role)
{
    struct rq *q = b;
    if (!role || !*role || atomic_load(&q->down))
        return 0;
    struct args a = {0};
    arg_str(&a, role);
    arg_int(&a, (long long)(q->ttl * 1000));
    redisReply *r = run(q, RS_CLAIM, &a);
    if (!r)
        return 0;
    int held = (int)r->integer;
    freeReplyObject(r);
    if (held) {
        pthread_mutex_lock(&q->lock);
        int known = 0;
        for (int i = 0; i < q->nroles; i++)
            known |= strcmp(q->roles[i], role) == 0;
        if (!known && q->nroles < ROLES_MAX && (q->roles[q->nroles] = strdup(role)))
            q->nroles++;
        pthread_mutex_unlock(&q->lock);
    }
    return held;
}

static int rq_items(void *b, const char *items, size_t len)
{
    struct rq *q = b;
    if (!items || len == 0)
        return 0;
    struct args a = {0};
    arg_str(&a, "i");
    arg_dbl(&a, latest(q));
    arg_bytes(&a, items, len);
    post(q, &a);
    return 0;
}

/* Items go to the store's stream; queue_redis_drain writes them out. */
static void rq_set_sink(void *b, const struct queue_items_sink *sink)
{
    (void)b;
    (void)sink;
}

/* ------------------------------------------------ the background thread */

/* Puts back this instance's leases that the table does not know of (a
 * take whose answer was lost). Under send_lock, with the outbox sent. */
static int reconcile(struct rq *q, redisContext *c)
{
    char key[512];
    snprintf(key, sizeof key, "%s:l:%s", q->url.prefix, q->instance);
    const char *argv[2] = {"HKEYS", key};
    redisReply *r = redisCommandArgv(c, 2, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    double now = latest(q);
    for (size_t i = 0; i < r->elements; i++) {
        uint64_t lease = strtoull(r->element[i]->str ? r->element[i]->str : "0", NULL, 10);
        pthread_mutex_lock(&q->lock);
        int known = rec_find(q, lease) != NULL;
        pthread_mutex_unlock(&q->lock);
        if (!known) {
            struct args a = {0};
            arg_str(&a, "l");
            arg_dbl(&a, now);
            arg_int(&a, (long long)lease);
            post(q, &a);
        }
    }
    freeReplyObject(r);
    char err[256];
    struct answer ans;
    int rc = deliver_on(q, c, 0, now, 0, 0, &ans, err, sizeof err);
    if (ans.r)
        freeReplyObject(ans.r);
    return rc;
}

/* The store is up once nothing is held: ops stop holding from then on. */
static int mark_up(struct rq *q)
{
    pthread_mutex_lock(&q->out_lock);
    int up = q->head == NULL;
    if (up)
        atomic_store(&q->down, 0);
    pthread_mutex_unlock(&q->out_lock);
    return up;
}

static void say_back(const struct rq *q, size_t delivered)
{
    struct log_record rec;
    log_begin(&rec, LOG_WARN, "the queue's Redis is back: taking jobs again");
    log_cstr(&rec, "redis", q->url.host);
    log_int(&rec, "results_held", (int64_t)delivered);
    log_emit_global(&rec);
}

/* One attempt to bring the store back. 0 if it is up again. */
static int come_back(struct rq *q)
{
    char err[256];
    redisContext *c = url_connect(&q->url, err, sizeof err);
    if (!c)
        return -1;
    pthread_mutex_lock(&q->out_lock);
    size_t held = q->nops;
    pthread_mutex_unlock(&q->out_lock);
    /* The held acks and retries first: their leases are no longer in the
     * table, and reconcile would put them back. Takes wait until it is up,
     * so the table does not change under reconcile. */
    pthread_mutex_lock(&q->send_lock);
    int rc = 0;
    do {
        struct answer ans;
        rc = deliver_on(q, c, 0, latest(q), 0, 0, &ans, err, sizeof err);
        if (ans.r)
            freeReplyObject(ans.r);
        if (rc == 0)
            rc = reconcile(q, c);
    } while (rc == 0 && !mark_up(q));
    pthread_mutex_unlock(&q->send_lock);
    if (rc < 0) {
        redisFree(c);
        return -1;
    }
    pool_drop(q); /* connections from before may be half-broken */
    conn_put(q, c);
    say_back(q, held);
    pthread_mutex_lock(&q->lock);
    int producer = q->producer_waiting;
    q->producer_waiting = 0;
    q->loud++;
    pthread_mutex_unlock(&q->lock);
    wake_hungry(q, -1);
    if (producer)
        queue_wake(q->front, 0);
    return 0;
}

/* Heartbeat, role renewal, takeover of dead instances' leases, and news of
 * other processes' changes: wakes this process's hungry workers for them. */
static void poll_store(struct rq *q)
{
    struct args a = {0};
    arg_dbl(&a, q->ttl);
    arg_dbl(&a, shared(q, clock_now()));
    pthread_mutex_lock(&q->lock);
    for (int i = 0; i < q->nroles; i++)
        arg_str(&a, q->roles[i]); /* the strings live until free */
    pthread_mutex_unlock(&q->lock);
    redisReply *r = run(q, RS_POLL, &a);
    if (!r)
        return;
    long long reclaimed = elem_int(r, 0), others = elem_int(r, 1), waiting = elem_int(r, 2);
    int drained = (int)elem_int(r, 3);
    freeReplyObject(r);
    pthread_mutex_lock(&q->lock);
    int news = others != q->others;
    q->others = others;
    if (news || reclaimed) {
        q->loud++;
        q->epoch++; /* a tune or pause elsewhere may be among them */
    }
    pthread_mutex_unlock(&q->lock);
    /* Only what another process did: this process's own changes wake its
     * workers as they happen, and doing it here too would wake twice. */
    if (!news && !reclaimed)
        return;
    wake_hungry(q, -1);
    producer_room(q, waiting);
    drained_edge(q, drained);
}

/* When the outbox must go (0: it is empty), and whether the stock wants
 * filling (2: at once, no worker here has a job running). */
static double flush_due(struct rq *q, int *refill)
{
    pthread_mutex_lock(&q->lock);
    *refill = q->refill ? (slotted(q) == 0 ? 2 : 1) : 0;
    pthread_mutex_unlock(&q->lock);
    pthread_mutex_lock(&q->out_lock);
    int some = q->head != NULL || q->dups > 0, full = q->nops >= BATCH_OPS;
    pthread_mutex_unlock(&q->out_lock);
    pthread_mutex_lock(&q->tick_lock);
    double at = some ? (full ? 1e-9 : q->first_at + FLUSH_EVERY) : 0;
    pthread_mutex_unlock(&q->tick_lock);
    return at;
}

/* The background thread's send: the outbox, and leases for the stock. */
static void send_behind(struct rq *q, int refill)
{
    pthread_mutex_lock(&q->lock);
    int want = refill ? prefetch_want(q, 0) : 0;
    q->refill = 0;
    pthread_mutex_unlock(&q->lock);
    struct answer ans;
    if (send_all(q, want, latest(q), 0, &ans) == 0)
        absorb(q, &ans, -1, NULL);
    if (refill && want == 0)
        wake_hungry(q, -1); /* out of stock mode: they ask the store themselves */
}

static void *tick_main(void *arg)
{
    struct rq *q = arg;
    double backoff = 0.1, next_poll = 0;
    thread_name("redis-queue");
    pthread_mutex_lock(&q->tick_lock);
    while (!q->stop) {
        q->kicked = 0;
        pthread_mutex_unlock(&q->tick_lock);
        double now = clock_now(), wait;
        if (atomic_load(&q->down)) {
            if (come_back(q) == 0) {
                backoff = 0.1;
                wait = 0;
            } else {
                wait = backoff;
                backoff = backoff * 2 < BACKOFF_MAX ? backoff * 2 : BACKOFF_MAX;
            }
        } else {
            if (now >= next_poll) {
                poll_store(q);
                next_poll = now + TICK_EVERY;
            }
            /* A refill waits for REFILL_PACE after the last call, so that
             * the jobs that end meanwhile go with it: a call's fixed part
             * costs Redis about as much as ten jobs, and fewer, larger
             * calls measured 12% less Redis CPU for the same pages/s. */
            int refill;
            double at = flush_due(q, &refill);
            if ((at && at <= now) || refill == 2 || (refill && now >= q->pace_at)) {
                send_behind(q, refill);
                double pace_at = clock_now() + REFILL_PACE;
                pthread_mutex_lock(&q->tick_lock);
                q->pace_at = pace_at;
                pthread_mutex_unlock(&q->tick_lock);
                at = flush_due(q, &refill);
            }
            now = clock_now();
            wait = next_poll - now;
            if (at && at - now < wait)
                wait = at - now;
            if (refill && q->pace_at - now < wait)
                wait = q->pace_at - now;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (wait > 0 ? wait : 0);
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - floor(t)) * 1e9);
        pthread_mutex_lock(&q->tick_lock);
        if (!q->stop && !q->kicked && wait > 0) {
            q->tick_until = clock_now() + wait;
            pthread_cond_timedwait(&q->tick_cond, &q->tick_lock, &ts);
            q->tick_until = 0;
        }
    }
    pthread_mutex_unlock(&q->tick_lock);
    return NULL;
}

/* -------------------------------------------------------- open and free */

static void drop_name(void *value)
{
    free(((struct name *)value)->s);
}

/* At a clean exit: the outbox gets a last chance (up to FREE_FLUSH
 * seconds if the store is away), then this instance's leases, the stock's
 * among them, go back and its roles are left as queue_claim says. */
static void goodbye(struct rq *q)
{
    flush_now(q);
    double deadline = clock_now() + FREE_FLUSH;
    while (atomic_load(&q->down) && clock_now() < deadline) {
        if (come_back(q) == 0)
            break;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&q->down)) {
        struct log_record rec;
        log_begin(&rec, LOG_ERROR, "the queue's Redis did not come back: held results are lost");
        log_int(&rec, "results_held", (int64_t)q->nops);
        log_emit_global(&rec);
        return;
    }
    struct args a = {0};
    arg_dbl(&a, latest(q));
    redisReply *r = run(q, RS_GOODBYE, &a);
    if (r)
        freeReplyObject(r);
}
static void rq_free(void *b)
{
    struct rq *q = b;
    if (!q)
        return;
    if (q->thread_started) {
        pthread_mutex_lock(&q->tick_lock);
        q->stop = 1;
        pthread_cond_signal(&q->tick_cond);
        pthread_mutex_unlock(&q->tick_lock);
        pthread_join(q->thread, NULL);
        goodbye(q);
    }
    pool_drop(q);
    for (size_t i = 0; q->buckets && i <= q->mask; i++) {
        for (struct rec *e = q->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    for (struct rec *e = q->kept, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    ops_free(q->head);
    for (int i = 0; i < q->nroles; i++)
        free(q->roles[i]);
    strtab_free(&q->names, drop_name);
    free(q->buckets);
    free(q->slots);
    free(q->instance);
    dedup_free(q->keys);
    redis_url_free(&q->url);
    pthread_mutex_destroy(&q->lock);
    pthread_mutex_destroy(&q->pool_lock);
    pthread_mutex_destroy(&q->out_lock);
    pthread_mutex_destroy(&q->send_lock);
    pthread_mutex_destroy(&q->tick_lock);
    pthread_cond_destroy(&q->tick_cond);
    free(q);
}

static char *default_instance(void)
{
    char host[256] = "host";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    char id[300];
    snprintf(id, sizeof id, "%s-%ld", host, (long)getpid());
    return strdup(id);
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)clock_unix_ns() ^ ((uint64_t)getpid() << 32);
    return seed ? seed : 1;
}

/* Loads the scripts, registers the heartbeat, reads the shared dedup seed
 * and Redis's clock, and takes a first block of job ids. */
static int hello(struct rq *q, char *err, size_t errlen)
{
    redisContext *c = url_connect(&q->url, err, errlen);
    if (!c)
        return -1;
    for (int s = 0; s < RS_COUNT; s++)
        if (load_script(q, c, (enum rs_script)s, err, errlen) < 0)
            goto fail;
    struct args a = {0};
    arg_dbl(&a, q->ttl);
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)random_seed());
    arg_str(&a, seed);
    arg_int(&a, ID_BLOCK);
    arg_int(&a, REDIS_LAYOUT);
    double before = clock_now();
    redisReply *r = script_on(q, c, RS_HELLO, &a);
    double after = clock_now();
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LAYOUT ", 7) == 0) {
        snprintf(err, errlen,
                 "Redis at %s:%d: the run under prefix \"%s\" was made by another version of "
                 "shoal (its keys are laid out as version %s, this shoal's as %d): finish it with "
                 "the shoal that made it, or start this run under another prefix "
                 "(redis://%s:%d/%d?prefix=NEW)",
                 q->url.host, q->url.port, q->url.prefix, r->str + 7, REDIS_LAYOUT, q->url.host,
                 q->url.port, q->url.db);
        freeReplyObject(r);
        goto fail;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        snprintf(err, errlen, "Redis at %s:%d: %s", q->url.host, q->url.port,
                 !r                             ? c->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "odd answer to hello");
        if (r)
            freeReplyObject(r);
        goto fail;
    }
    uint64_t s = strtoull(r->element[0]->str ? r->element[0]->str : "1", NULL, 10);
    double redis_now = elem_dbl(r, 1) + elem_dbl(r, 2) / 1e6;
    ids_got(q, (uint64_t)elem_int(r, 3));
    freeReplyObject(r);
    q->off = round((redis_now - (before + after) / 2) * 1024) / 1024;
    q->keys = dedup_new(s);
    if (!q->keys) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    conn_put(q, c);
    return 0;
fail:
    redisFree(c);
    return -1;
}

static void *rq_open(queue *front, const char *where, const struct queue_config *cfg, char *err,
                     size_t errlen)
{
    struct rq *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_mutex_init(&q->pool_lock, NULL);
    pthread_mutex_init(&q->out_lock, NULL);
    pthread_mutex_init(&q->send_lock, NULL);
    pthread_mutex_init(&q->tick_lock, NULL);
    pthread_cond_init(&q->tick_cond, NULL);
    size_t ulen = strlen(where) + 7;
    char *url = malloc(ulen); /* where: what follows "redis:" */
    if (url)
        snprintf(url, ulen, "redis:%s", where);
    else
        snprintf(err, errlen, "out of memory");
    int bad = !url || redis_url_parse(url, &q->url, err, errlen) < 0;
    free(url);
    if (bad)
        goto fail_quiet;
    q->front = front;
    q->capacity = cfg->capacity;
    q->nslots = cfg->workers + 1;
    q->in_flight_max = cfg->in_flight_max;
    q->limit = cfg->group_limit;
    q->delay = cfg->group_delay;
    q->jitter = cfg->group_jitter;
    q->rng = cfg->seed ? cfg->seed : random_seed();
    q->ttl = cfg->lease_ttl > 0 ? cfg->lease_ttl : DEFAULT_TTL;
    q->instance = cfg->instance && *cfg->instance ? strdup(cfg->instance) : default_instance();
    q->hungry_head = q->hungry_tail = -1;
    q->next_id = 1;
    q->slots = calloc((size_t)q->nslots, sizeof *q->slots);
    q->buckets = calloc(LEASE_BUCKETS_MIN, sizeof *q->buckets);
    q->mask = LEASE_BUCKETS_MIN - 1;
    if (!q->instance || !q->slots || !q->buckets || strtab_init(&q->names, sizeof(struct name))) {
        snprintf(err, errlen, "out of memory");
        goto fail_quiet;
    }
    for (int i = 0; i < q->nslots; i++)
        q->slots[i].hprev = q->slots[i].hnext = -1;
    if (hello(q, err, errlen) < 0)
        goto fail_quiet;
    if (pthread_create(&q->thread, NULL, tick_main, q) != 0) {
        snprintf(err, errlen, "cannot start the Redis queue's thread");
        goto fail_quiet;
    }
    q->thread_started = 1;
    return q;
fail_quiet:
    rq_free(q);
    return NULL;
}

/* ----------------------------------------------------- the items drainer */

#define DRAIN_BATCH 512 /* entries one read takes at most */
#define DRAIN_QUOTE_(x) #x
#define DRAIN_QUOTE(x) DRAIN_QUOTE_(x)
#define DRAIN_BATCH_ARG DRAIN_QUOTE(DRAIN_BATCH)
/* Following: how soon an idle drainer looks for the run's end; and, after
 * a short read, how long before the next, so that items are written (and
 * fsynced) in batches. */
#define DRAIN_BLOCK_MS "100"
#define DRAIN_PACE 0.02

struct drain {
    redisContext *c;
    const char *prefix;
    char key[300], rec[300]; /* the stream; the drainer's record */
    char last[64];           /* the last entry written */
    long long size;          /* the file's size the record vouches for */
    int fd;
    int ended; /* the stream said the run is drained */
};

static int drain_fail(char *err, size_t errlen, const char *what, redisContext *c, redisReply *r)
{
    snprintf(err, errlen, "%s: %s", what,
             r && r->type == REDIS_REPLY_ERROR ? r->str
             : c && c->err                     ? c->errstr
                                               : "odd answer");
    if (r)
        freeReplyObject(r);
    return -1;
}

/* Reads the record and makes the file agree with it. */
static int drain_start(struct drain *d, const char *path, long long had, char *err, size_t errlen)
{
    const char *argv[4] = {"HMGET", d->rec, "size", "id"};
    redisReply *r = redisCommandArgv(d->c, 4, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return drain_fail(err, errlen, "reading the drainer's record", d->c, r);
    d->size = r->element[0]->type == REDIS_REPLY_STRING ? strtoll(r->element[0]->str, NULL, 10) : 0;
    snprintf(d->last, sizeof d->last, "%s",
             r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "0-0");
    freeReplyObject(r);
    if (d->size < had) {
        /* a Redis that came back without its data: the file is left alone */
        snprintf(err, errlen,
                 "Redis came back without the record of the %lld bytes drained into %s (it "
                 "restarted without persistence?); the file is kept as it is",
                 had, path);
        return -1;
    }
    d->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    if (d->fd < 0 || fstat(d->fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (st.st_size < d->size) {
        snprintf(err, errlen,
                 "%s holds %lld bytes, fewer than the %lld already drained into it: it is "
                 "another file, or was cut (drain to a new file with another prefix's record "
                 "removed: DEL %s)",
                 path, (long long)st.st_size, d->size, d->rec);
        return -1;
    }
    /* bytes past the record were written but never recorded: a crash between
     * the write and the record; the next batch writes them again */
    if ((st.st_size > d->size && ftruncate(d->fd, (off_t)d->size) < 0) ||
        lseek(d->fd, (off_t)d->size, SEEK_SET) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes one XREAD answer's entries, fsyncs, and records size and last id
 * with a trim of the stream, in one MULTI. Returns the bytes written, 0 if
 * there was nothing, -1 on failure. */
static long long drain_batch(struct drain *d, redisReply *r, const char *path, char *err,
                             size_t errlen)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return 0;
    const redisReply *entries = r->element[0]->element[1];
    long long wrote = 0;
    char last[64] = "";
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i], *f = e->element[1];
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            const redisReply *v = f->element[k + 1];
            if (strcmp(f->element[k]->str, "e") == 0)
                d->ended = 1;
            if (strcmp(f->element[k]->str, "i") != 0 || v->type != REDIS_REPLY_STRING)
                continue;
            if (write_all(d->fd, v->str, v->len) < 0) {
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                return -1;
            }
            wrote += (long long)v->len;
        }
        snprintf(last, sizeof last, "%s", e->element[0]->str);
    }
    if (!last[0])
        return 0;
    if (fsync(d->fd) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char size[32];
    snprintf(size, sizeof size, "%lld", d->size + wrote);
    const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};
    const char *hset[6] = {"HSET", d->rec, "size", size, "id", last};
    const char *trim[4] = {"XTRIM", d->key, "MINID", last};
    redisAppendCommandArgv(d->c, 1, multi, NULL);
    redisAppendCommandArgv(d->c, 6, hset, NULL);
    redisAppendCommandArgv(d->c, 4, trim, NULL);
    redisAppendCommandArgv(d->c, 1, exec, NULL);
    for (int i = 0; i < 4; i++) {
        void *x = NULL;
        if (redisGetReply(d->c, &x) != REDIS_OK)
            return drain_fail(err, errlen, "recording the drained items", d->c, NULL);
        redisReply *rx = x;
        int bad = rx->type == REDIS_REPLY_ERROR || (i == 3 && rx->type != REDIS_REPLY_ARRAY);
        if (bad)
            return drain_fail(err, errlen, "recording the drained items", d->c, rx);
        freeReplyObject(rx);
    }
    d->size += wrote;
    snprintf(d->last, sizeof d->last, "%s", last);
    return wrote;
}

static int run_drained(struct drain *d)
{
    char n[300];
    snprintf(n, sizeof n, "%s:n", d->prefix);
    const char *argv[6] = {"HMGET", n, "pdone", "ready", "delayed", "leased"};
    redisReply *r = redisCommandArgv(d->c, 6, argv, NULL);
    int drained = r && r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
                  r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "1") == 0;
    for (size_t i = 1; drained && i < 4; i++)
        drained = r->element[i]->type != REDIS_REPLY_STRING || atoll(r->element[i]->str) == 0;
    if (r)
        freeReplyObject(r);
    return drained;
}

/* Reads the stream into the file until it is empty (or, following, until
 * the run is drained). 0 when done, -1 on failure (d->c->err set if the
 * connection was the trouble). */
static int drain_loop(struct drain *d, const char *path, int follow, char *err, size_t errlen)
{
    /* the blocking read waits longer than the command timeout allows */
    redisSetTimeout(d->c, tv_of(IO_TIMEOUT + 2));
    int finishing = 0;
    for (;;) {
        int block = follow && !finishing;
        const char *argv[8] = {"XREAD",        "COUNT",   DRAIN_BATCH_ARG, "BLOCK",
                               DRAIN_BLOCK_MS, "STREAMS", d->key,          d->last};
        const char *once[6] = {"XREAD", "COUNT", DRAIN_BATCH_ARG, "STREAMS", d->key, d->last};
        redisReply *r =
            block ? redisCommandArgv(d->c, 8, argv, NULL) : redisCommandArgv(d->c, 6, once, NULL);
        if (!r || r->type == REDIS_REPLY_ERROR)
            return drain_fail(err, errlen, "reading the items stream", d->c, r);
        size_t entries = r->type == REDIS_REPLY_ARRAY && r->elements > 0
                             ? r->element[0]->element[1]->elements
                             : 0;
        long long n = drain_batch(d, r, path, err, errlen);
        freeReplyObject(r);
        if (n < 0)
            return -1;
        if (follow && d->ended && !finishing) {
            finishing = 1; /* one more read, without waiting, for the last ones */
            continue;
        }
        if (n > 0) {
            if (follow && entries < DRAIN_BATCH) {
                struct timespec pace = {0, (long)(DRAIN_PACE * 1e9)};
                nanosleep(&pace, NULL);
            }
            continue;
        }
        if (!follow || finishing)
            return 0;
        /* drained means every ack is in: one more pass reads the last ones */
        finishing = run_drained(d);
    }
}

static void drain_close(struct drain *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    if (d->c)
        redisFree(d->c);
    d->c = NULL;
}

long long queue_redis_drain(const char *url, const char *path, int follow, char *err, size_t errlen)
{
    struct redis_url u;
    struct drain d = {.fd = -1};
    if (redis_url_parse(url, &u, err, errlen) < 0) /* it hides a password */
        return -1;
    d.prefix = u.prefix;
    snprintf(d.key, sizeof d.key, "%s:items", u.prefix);
    snprintf(d.rec, sizeof d.rec, "%s:drain", u.prefix);
    long long first = -1, had = 0;
    int away = 0;
    double backoff = 0.1;
    for (;;) {
        int rc = -1;
        if ((d.c = url_connect(&u, err, errlen)) && drain_start(&d, path, had, err, errlen) == 0) {
            if (first < 0)
                first = d.size;
            if (away)
                fprintf(stderr, "shoal: items: Redis is back; going on from byte %lld of %s\n",
                        d.size, path);
            away = 0;
            backoff = 0.1;
            rc = drain_loop(&d, path, follow, err, errlen);
        }
        if (rc == 0)
            break;
        /* following, a connection lost (or not yet back) is waited out: the
         * record in Redis says where the file stands, and the next start
         * cuts it back to that */
        int lost = first >= 0 && (!d.c || d.c->err);
        if (!follow || !lost) {
            drain_close(&d);
            redis_url_free(&u);
            return -1;
        }
        if (!away)
            fprintf(stderr, "shoal: items: %s; trying again until Redis is back (Ctrl-C stops)\n",
                    err);
        away = 1;
        had = d.size;
        drain_close(&d);
        struct timespec ts = {(time_t)backoff, (long)((backoff - floor(backoff)) * 1e9)};
        nanosleep(&ts, NULL);
        backoff = backoff * 2 < BACKOFF_MAX ? backoff * 2 : BACKOFF_MAX;
    }
    long long total = d.size - first;
    drain_close(&d);
    redis_url_free(&u);
    return total;
}

const struct queue_ops queue_redis_ops = {
    .name = "redis",
    .open = rq_open,
    .free = rq_free,
    .push = rq_push,
    .take = rq_take,
    .ack = rq_ack,
    .retry = rq_retry,
    .release_worker = rq_release_worker,
    .producer_done = rq_producer_done,
    .drained = rq_drained,
    .close = rq_close,
    .next_due = rq_next_due,
    .stats = rq_stats,
    .group_tune = rq_group_tune,
    .group_pause = rq_group_pause,
    .each_group = rq_each_group,
    .claim = rq_claim,
    .ack_items = rq_ack_items,
    .items = rq_items,
    .set_sink = rq_set_sink,
    .sync = rq_sync,
};
