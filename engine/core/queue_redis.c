/* queue_redis.c - the queue backend shared by many processes through Redis
 * ("redis://[user:pass@]host:port/db?prefix=NAME"; the contract is in
 * queue.h and queue_backend.h, the keys and scripts in
 * queue_redis_scripts.c, the reasons in docs/ARCHITECTURE.md).
 *
 * Every change is one server-side script (EVALSHA, loaded with SCRIPT LOAD
 * and again after NOSCRIPT), so a take with its politeness checks, an ack
 * with its items, a push with its dedup are each one atomic step for all
 * processes. What stays in the process: the leases it holds (the job's
 * bytes, valid until ack, retry or release, and the lease's worker for
 * release_worker), its hungry workers, and the results it could not
 * deliver while Redis was away.
 *
 * Times: callers pass monotonic seconds; the store keeps shared ones,
 * now + off, where off is Redis's clock minus ours at open, rounded to
 * 1/1024 s so whole seconds convert back exactly (the contract's fake
 * clock compares them with ==). Leases live as long as their instance's
 * heartbeat, on Redis's own clock (TIME), renewed by the background thread.
 *
 * Redis away: a command that cannot reach Redis within IO_TIMEOUT marks
 * the store down (logged once). While down, take gives nothing, next_due
 * says "soon", and acks, retries, releases, worker pushes, items and
 * tunes are held, in order, in a local list (the producer's pushes get
 * QUEUE_FULL instead, and are woken when the store is back). The
 * background thread reconnects with backoff, puts back the leases of this
 * process that it does not know of (a take whose answer was lost),
 * replays the held list in order, and only then marks the store up (logged
 * once, with how many results were held). An ack or retry replayed after
 * its lease ran out is refused by the store, as it would have been on
 * time: the job is done again elsewhere, never counted twice. A push whose
 * answer was lost with the connection may be queued twice unless it has a
 * key (at least once, never lost).
 *
 * Threads: any thread may call any op. q->lock guards the lease table, the
 * hungry list, the flags and caches (never held over a Redis call or a
 * notify); q->pool_lock the idle connections (one hiredis context is used
 * by one thread at a time); q->held_lock the held list and, with it, the
 * down flag's changes (down is atomic, so ops read it without a lock).
 * The background thread (tick) is the only one that reconnects after a
 * loss, replays, polls and renews. */
#include "core/queue_redis.h"

#include "base/clock.h"
#include "base/strtab.h"
#include "core/dedup.h"
#include "core/queue_backend.h"
#include "core/queue_redis_scripts.h"
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
#define RELEASE_CHUNK 16
#define LEASE_BUCKETS_MIN 64
#define IO_TIMEOUT 1.0  /* seconds a connect or a command may take */
#define TICK_EVERY 0.1  /* the background thread's poll */
#define DOWN_DUE 0.25   /* while down, a hungry worker looks again this soon */
#define BACKOFF_MAX 2.0 /* between reconnection attempts */
#define FREE_FLUSH 10.0 /* at queue_free, how long held results may wait for Redis */
#define DEFAULT_TTL 30.0
#define ROLES_MAX 4
#define WAKE_BATCH 32

struct url {
    char *host, *user, *pass, *prefix;
    int port, db;
};

/* EVALSHA's arguments after the prefix and the instance. */
struct args {
    int n;
    const char *v[ARGS_MAX];
    size_t l[ARGS_MAX];
    char num[ARGS_MAX][32];
};

/* A lease this process holds: the job's bytes live here until it ends. */
struct rec {
    uint64_t lease;
    struct rec *next;          /* bucket chain; the kept list after ack_kept */
    struct rec *wprev, *wnext; /* its worker's leases */
    int worker;
    size_t len, ctx_len, group_len;
    char buf[]; /* data, NUL, ctx, group, NUL */
};

struct slot {
    struct rec *leases;
    int hungry;
    int hprev, hnext; /* hungry list, oldest first; -1 ends it */
};

/* A change held while the store is down: a script and a copy of its
 * arguments, replayed as they were. */
struct pending {
    struct pending *next;
    enum rs_script s;
    int n;
    size_t l[ARGS_MAX];
    size_t off[ARGS_MAX];
    char bytes[];
};

struct name {
    char *s; /* an interned group name, for queue_each_group */
};

struct rq {
    queue *front;
    struct url url;
    char *instance;
    double ttl;
    size_t capacity;
    int nslots;
    int limit;
    double delay, jitter;
    double off; /* the shared clock is monotonic + off */
    char sha[RS_COUNT][41];
    dedup *keys; /* for its hash alone, seeded by the store */

    pthread_mutex_t pool_lock;
    redisContext *idle[POOL_MAX];
    int nidle;

    pthread_mutex_t lock; /* guards what follows, up to held_lock */
    uint64_t rng;
    double now; /* the latest now a call passed */
    struct rec **buckets;
    size_t mask, nrecs;
    struct rec *kept;
    struct slot *slots;
    int hungry_head, hungry_tail;
    int closed, producer_waiting, drained_notified;
    uint64_t ppos; /* producer pushes answered OK or DUP */
    uint64_t gen;  /* bumped by every local change; next_due's cache is valid for one */
    uint64_t due_gen;
    int due_valid;
    double due;
    struct queue_stats last; /* for stats while down */
    long long others;        /* changes made by other processes, as last seen */
    char *roles[ROLES_MAX];
    int nroles;
    struct strtab names;

    pthread_mutex_t held_lock;
    struct pending *head, *tail;
    size_t held;
    atomic_int down;
    char why[256]; /* the reason the store went down; under held_lock */

    pthread_mutex_t tick_lock;
    pthread_cond_t tick_cond;
    int stop, thread_started;
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
    snprintf(a->num[a->n], sizeof a->num[0], "%.17g", x);
    arg_str(a, a->num[a->n]);
}

static void arg_int(struct args *a, long long x)
{
    if (a->n >= ARGS_MAX)
        return;
    snprintf(a->num[a->n], sizeof a->num[0], "%lld", x);
    arg_str(a, a->num[a->n]);
}

/* --------------------------------------------------------------- the URL */

static void url_free(struct url *u)
{
    free(u->host);
    free(u->user);
    free(u->pass);
    free(u->prefix);
    memset(u, 0, sizeof *u);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A copy of s[0..len) with %XX decoded; NULL on out of memory. */
static char *decoded(const char *s, size_t len)
{
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* where: "//[user:pass@]host[:port][/db][?prefix=NAME]". */
static int url_parse(const char *where, struct url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (strncmp(where, "//", 2) != 0) {
        snprintf(err, errlen,
                 "the redis queue wants a URL: redis://[user:pass@]host:port/db?prefix=NAME "
                 "(got 'redis:%s')",
                 where);
        return -1;
    }
    const char *p = where + 2;
    const char *end = p + strcspn(p, "/?");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p)
                u->user = decoded(p, (size_t)(colon - p));
            u->pass = decoded(colon + 1, (size_t)(at - colon - 1));
        } else {
            u->pass = decoded(p, (size_t)(at - p)); /* a password alone */
        }
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *host_end = colon ? colon : end;
    u->host = host_end > p ? decoded(p, (size_t)(host_end - p)) : strdup("127.0.0.1");
    if (colon) {
        char *e;
        long port = strtol(colon + 1, &e, 10);
        if (e != end || port < 1 || port > 65535) {
            snprintf(err, errlen, "redis queue URL: bad port in 'redis:%s'", where);
            goto fail;
        }
        u->port = (int)port;
    }
    p = end;
    if (*p == '/') {
        p++;
        if (*p && *p != '?') {
            char *e;
            long db = strtol(p, &e, 10);
            if ((*e && *e != '?') || db < 0 || db > 1000000) {
                snprintf(err, errlen, "redis queue URL: bad database number in 'redis:%s'", where);
                goto fail;
            }
            u->db = (int)db;
            p = e;
        }
    }
    if (*p == '?') {
        p++;
        while (*p) {
            size_t n = strcspn(p, "&");
            if (n > 7 && strncmp(p, "prefix=", 7) == 0) {
                free(u->prefix);
                u->prefix = decoded(p + 7, n - 7);
            } else {
                snprintf(err, errlen,
                         "redis queue URL: unknown parameter '%.*s' (only prefix=NAME is known)",
                         (int)n, p);
                goto fail;
            }
            p += n + (p[n] == '&');
        }
    }
    if (!u->prefix)
        u->prefix = strdup("shoal");
    if (!u->host || !u->prefix || (at && !u->pass)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return 0;
fail:
    url_free(u);
    return -1;
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
static redisContext *url_connect(const struct url *u, char *err, size_t errlen)
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

/* Runs script s on c. NULL if c is broken (c->err; the script may or may
 * not have run) or out of memory; an error reply is returned as it is. */
static redisReply *script_on(struct rq *q, redisContext *c, enum rs_script s, const struct args *a)
{
    const char *argv[ARGS_MAX + 5];
    size_t lens[ARGS_MAX + 5];
    argv[0] = "EVALSHA";
    argv[1] = q->sha[s];
    argv[2] = "0";
    argv[3] = q->url.prefix;
    argv[4] = q->instance;
    for (int i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < a->n; i++) {
        argv[5 + i] = a->v[i];
        lens[5 + i] = a->l[i];
    }
    redisReply *r = redisCommandArgv(c, a->n + 5, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r); /* Redis restarted or flushed its scripts */
        const char *src = rs_source(s);
        argv[0] = "EVAL";
        argv[1] = src;
        lens[0] = 4;
        lens[1] = strlen(src);
        r = redisCommandArgv(c, a->n + 5, argv, lens); /* EVAL caches it for the next */
    }
    return r;
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

static void wake_tick(struct rq *q)
{
    pthread_mutex_lock(&q->tick_lock);
    pthread_cond_signal(&q->tick_cond);
    pthread_mutex_unlock(&q->tick_lock);
}

/* The store is unreachable: say so once. Call without q->held_lock. */
static void store_lost(struct rq *q, const char *why)
{
    pthread_mutex_lock(&q->held_lock);
    int first = !atomic_load(&q->down);
    if (first) {
        atomic_store(&q->down, 1);
        snprintf(q->why, sizeof q->why, "%s", why);
    }
    pthread_mutex_unlock(&q->held_lock);
    if (first) {
        say_down(why);
        wake_tick(q);
    }
}

static struct pending *pending_new(enum rs_script s, const struct args *a)
{
    size_t total = 0;
    for (int i = 0; i < a->n; i++)
        total += a->l[i];
    struct pending *p = malloc(sizeof *p + total + 1);
    if (!p)
        return NULL;
    p->next = NULL;
    p->s = s;
    p->n = a->n;
    size_t at = 0;
    for (int i = 0; i < a->n; i++) {
        p->l[i] = a->l[i];
        p->off[i] = at;
        if (a->l[i])
            memcpy(p->bytes + at, a->v[i], a->l[i]);
        at += a->l[i];
    }
    return p;
}

static void pending_args(const struct pending *p, struct args *a)
{
    a->n = p->n;
    for (int i = 0; i < p->n; i++) {
        a->v[i] = p->bytes + p->off[i];
        a->l[i] = p->l[i];
    }
}

/* Holds a change for the replay if the store is down. Returns 1 if held
 * (or, out of memory, dropped with an error logged), 0 if the store is up:
 * the caller runs it now. */
static int hold_if_down(struct rq *q, enum rs_script s, const struct args *a)
{
    if (!atomic_load(&q->down))
        return 0;
    struct pending *p = pending_new(s, a);
    pthread_mutex_lock(&q->held_lock);
    int down = atomic_load(&q->down);
    if (down && p) {
        if (q->tail)
            q->tail->next = p;
        else
            q->head = p;
        q->tail = p;
        q->held++;
        p = NULL;
    }
    pthread_mutex_unlock(&q->held_lock);
    if (down && p == NULL)
        return 1;
    if (down) {
        struct log_record rec;
        log_begin(&rec, LOG_ERROR, "out of memory holding a result for Redis: it is lost");
        log_cstr(&rec, "op", rs_name(s));
        log_emit_global(&rec);
        free(p);
        return 1;
    }
    free(p); /* it came back meanwhile */
    return 0;
}

/* Runs a script for an op. NULL if the store is (or just went) down. */
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
        /* OOM or a busy server: held and tried again like an outage */
        snprintf(err, sizeof err, "Redis script %s: %s", rs_name(s), r->str);
        freeReplyObject(r);
        store_lost(q, err);
        return NULL;
    }
    return r;
}

/* A change that must reach the store: run now, or held for the replay.
 * Returns the reply (caller frees), or NULL if it was held. */
static redisReply *deliver(struct rq *q, enum rs_script s, const struct args *a)
{
    if (hold_if_down(q, s, a))
        return NULL;
    redisReply *r = run(q, s, a);
    if (!r)
        hold_if_down(q, s, a);
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

/* ------------------------------------------------------ local state */

static double shared(const struct rq *q, double now)
{
    return now + q->off;
}

static double local_time(const struct rq *q, double t)
{
    return t == 0 ? 0 : t - q->off;
}

/* The shared time of the latest now any call passed. */
static double latest(struct rq *q)
{
    pthread_mutex_lock(&q->lock);
    double now = q->now;
    pthread_mutex_unlock(&q->lock);
    return shared(q, now);
}

static void saw_now(struct rq *q, double now)
{
    pthread_mutex_lock(&q->lock);
    if (now > q->now)
        q->now = now;
    q->gen++;
    pthread_mutex_unlock(&q->lock);
}

static void changed(struct rq *q)
{
    pthread_mutex_lock(&q->lock);
    q->gen++;
    pthread_mutex_unlock(&q->lock);
}

static void rec_insert(struct rq *q, struct rec *e)
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
    struct slot *s = &q->slots[e->worker];
    e->wprev = NULL;
    e->wnext = s->leases;
    if (s->leases)
        s->leases->wprev = e;
    s->leases = e;
    q->nrecs++;
}

static struct rec *rec_remove(struct rq *q, uint64_t lease)
{
    struct rec **p = &q->buckets[lease & q->mask];
    while (*p && (*p)->lease != lease)
        p = &(*p)->next;
    struct rec *e = *p;
    if (!e)
        return NULL;
    *p = e->next;
    e->next = NULL;
    if (e->wprev)
        e->wprev->wnext = e->wnext;
    else
        q->slots[e->worker].leases = e->wnext;
    if (e->wnext)
        e->wnext->wprev = e->wprev;
    q->nrecs--;
    return e;
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

/* The first moment of being drained, as a reply said: wake everyone once. */
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

/* After a take or a poll saw `waiting` jobs ready or delayed: a producer
 * held back by QUEUE_FULL hears of room below half the capacity. */
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

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* ------------------------------------------------------------- the ops */

static void common_args(struct args *a)
{
    a->n = 0;
}

static int rq_push(void *b, const char *data, size_t len, const struct queue_push_opts *opts,
                   double now, uint64_t *id_out)
{
    struct rq *q = b;
    pthread_mutex_lock(&q->lock);
    int closed = q->closed;
    uint64_t pos = q->ppos + 1;
    pthread_mutex_unlock(&q->lock);
    if (closed)
        return QUEUE_CLOSED;
    if (opts->from_producer && atomic_load(&q->down)) {
        pthread_mutex_lock(&q->lock);
        q->producer_waiting = 1; /* woken when the store is back */
        pthread_mutex_unlock(&q->lock);
        return QUEUE_FULL;
    }
    saw_now(q, now);
    unsigned char key[8];
    if (opts->key) {
        uint64_t h = dedup_hash(q->keys, opts->key, opts->key_len);
        for (int i = 0; i < 8; i++)
            key[i] = (unsigned char)(h >> (8 * i));
    }
    struct args a;
    common_args(&a);
    arg_dbl(&a, shared(q, now));
    arg_bytes(&a, data, len);
    arg_bytes(&a, opts->ctx, opts->ctx_len);
    arg_bytes(&a, opts->group, opts->group_len);
    arg_int(&a, opts->depth);
    arg_int(&a, opts->priority);
    arg_dbl(&a, opts->delay > 0 ? opts->delay : 0); /* NaN and negatives mean now */
    arg_bytes(&a, key, opts->key ? 8 : 0);
    arg_str(&a, opts->from_producer ? "1" : "0");
    arg_int(&a, (long long)q->capacity);
    arg_int(&a, (long long)pos);
    arg_int(&a, q->limit);
    arg_dbl(&a, q->delay);

    redisReply *r;
    if (opts->from_producer) {
        r = run(q, RS_PUSH, &a); /* never held: the producer waits instead */
        if (!r) {
            pthread_mutex_lock(&q->lock);
            q->producer_waiting = 1;
            pthread_mutex_unlock(&q->lock);
            return QUEUE_FULL;
        }
    } else {
        r = deliver(q, RS_PUSH, &a);
        if (!r) {
            if (id_out)
                *id_out = 0; /* held: its id is given when the store takes it */
            return QUEUE_OK;
        }
    }
    int status = (int)elem_int(r, 0);
    uint64_t id = (uint64_t)elem_int(r, 1);
    int woke = (int)elem_int(r, 2);
    freeReplyObject(r);
    int w = -1;
    pthread_mutex_lock(&q->lock);
    if (opts->from_producer && (status == QUEUE_OK || status == QUEUE_DUP))
        q->ppos = pos;
    if (status == QUEUE_FULL)
        q->producer_waiting = 1;
    if (status == QUEUE_OK) {
        q->drained_notified = 0;
        if (woke)
            w = hungry_pop(q);
    }
    pthread_mutex_unlock(&q->lock);
    if (status == QUEUE_OK && id_out)
        *id_out = id;
    wake(q, w);
    return status;
}

/* take found nothing: the worker is hungry; r (if not NULL) says when
 * something is due, cached for next_due if nothing changed since gen. */
static int hungry_now(struct rq *q, int worker, const redisReply *r, uint64_t gen)
{
    pthread_mutex_lock(&q->lock);
    if (!q->closed)
        hungry_mark(q, worker);
    if (r && q->gen == gen) {
        q->due = local_time(q, elem_dbl(r, 2));
        q->due_valid = 1;
        q->due_gen = q->gen;
    }
    pthread_mutex_unlock(&q->lock);
    return 0;
}

static const redisReply *str_elem(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING ? r->element[i] : NULL;
}

static int rq_take(void *b, int worker, double now, struct queue_lease *out)
{
    struct rq *q = b;
    pthread_mutex_lock(&q->lock);
    int closed = q->closed;
    if (now > q->now)
        q->now = now;
    uint64_t u = rng_next(&q->rng);
    uint64_t gen = ++q->gen;
    pthread_mutex_unlock(&q->lock);
    if (closed)
        return 0;
    if (atomic_load(&q->down))
        return hungry_now(q, worker, NULL, gen);
    struct args a;
    common_args(&a);
    arg_int(&a, worker);
    arg_dbl(&a, shared(q, now));
    arg_dbl(&a, (double)(u >> 11) * 0x1.0p-53);
    arg_dbl(&a, q->jitter);
    arg_int(&a, (long long)q->capacity);
    redisReply *r = run(q, RS_TAKE, &a);
    if (!r)
        return hungry_now(q, worker, NULL, gen);
    uint64_t lease = (uint64_t)elem_int(r, 0);
    if (lease == 0) {
        hungry_now(q, worker, r, gen);
        freeReplyObject(r);
        return 0;
    }
    const redisReply *d = str_elem(r, 3), *c = str_elem(r, 4), *g = str_elem(r, 5);
    size_t len = d ? d->len : 0, clen = c ? c->len : 0, glen = g ? g->len : 0;
    if (clen > QUEUE_CTX_MAX)
        clen = 0;
    struct rec *e = malloc(sizeof *e + len + 1 + clen + glen + 1);
    if (!e) {
        /* put it back: the job must not stay leased by nobody */
        struct args ra;
        common_args(&ra);
        arg_dbl(&ra, shared(q, now));
        arg_int(&ra, (long long)lease);
        redisReply *rr = deliver(q, RS_RELEASE, &ra);
        if (rr)
            freeReplyObject(rr);
        freeReplyObject(r);
        return hungry_now(q, worker, NULL, gen);
    }
    e->lease = lease;
    e->worker = worker;
    e->len = len;
    e->ctx_len = clen;
    e->group_len = glen;
    if (len)
        memcpy(e->buf, d->str, len);
    e->buf[len] = '\0';
    if (clen)
        memcpy(e->buf + len + 1, c->str, clen);
    if (glen)
        memcpy(e->buf + len + 1 + clen, g->str, glen);
    e->buf[len + 1 + clen + glen] = '\0';
    out->lease = lease;
    out->job_id = (uint64_t)elem_int(r, 1);
    out->attempt = (int)elem_int(r, 2);
    out->depth = (int)elem_int(r, 6);
    out->data = e->buf;
    out->len = len;
    out->ctx = (const uint8_t *)e->buf + len + 1;
    out->ctx_len = clen;
    out->group = e->buf + len + 1 + clen;
    out->group_len = glen;
    long long waiting = elem_int(r, 7);
    freeReplyObject(r);
    pthread_mutex_lock(&q->lock);
    rec_insert(q, e);
    if (q->slots[worker].hungry)
        hungry_unlink(q, worker); /* it found work without being woken */
    pthread_mutex_unlock(&q->lock);
    producer_room(q, waiting);
    return 1;
}

/* Takes the lease out of the local table; -1 if this process does not
 * hold it. The bytes are freed, or kept until queue_free. */
static int end_local(struct rq *q, uint64_t lease, int keep)
{
    pthread_mutex_lock(&q->lock);
    struct rec *e = rec_remove(q, lease);
    if (e && keep) {
        e->next = q->kept;
        q->kept = e;
    }
    q->gen++;
    pthread_mutex_unlock(&q->lock);
    if (!e)
        return -1;
    if (!keep)
        free(e);
    return 0;
}

static int finish(struct rq *q, uint64_t lease, int keep, const char *items, size_t len,
                  int with_items)
{
    if (lease == 0 || end_local(q, lease, keep) < 0)
        return -1;
    struct args a;
    common_args(&a);
    arg_int(&a, (long long)lease);
    arg_dbl(&a, latest(q));
    arg_str(&a, with_items ? "1" : "0");
    arg_bytes(&a, items, with_items ? len : 0);
    redisReply *r = deliver(q, RS_ACK, &a);
    if (!r)
        return 0; /* held: delivered when the store is back */
    int status = (int)elem_int(r, 0), woke = (int)elem_int(r, 1), drained = (int)elem_int(r, 2);
    freeReplyObject(r);
    if (status != 0)
        return -1; /* it ran out while we were away: another process has the job */
    if (woke)
        wake_hungry(q, 1);
    drained_edge(q, drained);
    return 0;
}

static int rq_ack(void *b, uint64_t lease, int keep)
{
    return finish(b, lease, keep, NULL, 0, 0);
}

static int rq_ack_items(void *b, uint64_t lease, const char *items, size_t len)
{
    return finish(b, lease, 0, items, len, 1);
}

static int rq_retry(void *b, uint64_t lease, double delay, double now)
{
    struct rq *q = b;
    if (lease == 0 || end_local(q, lease, 0) < 0)
        return -1;
    saw_now(q, now);
    struct args a;
    common_args(&a);
    arg_int(&a, (long long)lease);
    arg_dbl(&a, delay > 0 ? delay : 0);
    arg_dbl(&a, shared(q, now));
    redisReply *r = deliver(q, RS_RETRY, &a);
    if (!r)
        return 0;
    int status = (int)elem_int(r, 0), woke = (int)elem_int(r, 1);
    freeReplyObject(r);
    if (status != 0)
        return -1;
    if (woke)
        wake_hungry(q, 1);
    return 0;
}

static int rq_release_worker(void *b, int worker, uint64_t except)
{
    struct rq *q = b;
    uint64_t leases[RELEASE_CHUNK];
    int total = 0;
    for (;;) {
        int k = 0;
        pthread_mutex_lock(&q->lock);
        struct rec *e = q->slots[worker].leases, *next;
        for (; e && k < RELEASE_CHUNK; e = next) {
            next = e->wnext;
            if (e->lease == except)
                continue;
            leases[k++] = e->lease;
            rec_remove(q, e->lease);
            free(e);
        }
        q->gen++;
        pthread_mutex_unlock(&q->lock);
        if (k == 0)
            break;
        struct args a;
        common_args(&a);
        arg_dbl(&a, latest(q));
        for (int i = 0; i < k; i++)
            arg_int(&a, (long long)leases[i]);
        redisReply *r = deliver(q, RS_RELEASE, &a);
        total += r ? (int)r->integer : k;
        if (r)
            freeReplyObject(r);
    }
    wake_hungry(q, total);
    return total;
}

static void rq_producer_done(void *b)
{
    struct rq *q = b;
    struct args a;
    common_args(&a);
    redisReply *r = deliver(q, RS_PRODUCER_DONE, &a);
    if (!r)
        return;
    int drained = (int)r->integer;
    freeReplyObject(r);
    drained_edge(q, drained);
}

static int rq_drained(void *b)
{
    struct rq *q = b;
    if (atomic_load(&q->down))
        return 0;
    struct args a;
    common_args(&a);
    redisReply *r = run(q, RS_DRAINED, &a);
    if (!r)
        return 0;
    int drained = (int)r->integer;
    freeReplyObject(r);
    return drained;
}

static void rq_close(void *b)
{
    struct rq *q = b;
    pthread_mutex_lock(&q->lock);
    int first = !q->closed;
    q->closed = 1;
    q->producer_waiting = 0;
    hungry_clear(q);
    pthread_mutex_unlock(&q->lock);
    if (first)
        queue_wake_all(q->front);
}

static double rq_next_due(void *b)
{
    struct rq *q = b;
    if (atomic_load(&q->down))
        return clock_now() + DOWN_DUE;
    pthread_mutex_lock(&q->lock);
    int cached = q->due_valid && q->due_gen == q->gen;
    double due = q->due;
    uint64_t gen = q->gen;
    pthread_mutex_unlock(&q->lock);
    if (cached)
        return due;
    struct args a;
    common_args(&a);
    redisReply *r = run(q, RS_NEXT_DUE, &a);
    if (!r)
        return clock_now() + DOWN_DUE;
    due = r->type == REDIS_REPLY_STRING ? local_time(q, strtod(r->str, NULL)) : 0;
    freeReplyObject(r);
    pthread_mutex_lock(&q->lock);
    if (q->gen == gen) {
        q->due = due;
        q->due_valid = 1;
        q->due_gen = gen;
    }
    pthread_mutex_unlock(&q->lock);
    return due;
}

static void rq_stats(void *b, struct queue_stats *out)
{
    struct rq *q = b;
    redisReply *r = NULL;
    if (!atomic_load(&q->down)) {
        struct args a;
        common_args(&a);
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
    pthread_mutex_lock(&q->held_lock);
    out->store_down = atomic_load(&q->down);
    out->held = q->held;
    pthread_mutex_unlock(&q->held_lock);
}

static int rq_group_tune(void *b, const char *group, size_t len, double delay, int limit)
{
    struct rq *q = b;
    changed(q);
    struct args a;
    common_args(&a);
    arg_bytes(&a, group, len);
    arg_dbl(&a, delay);
    arg_int(&a, limit);
    arg_dbl(&a, latest(q));
    arg_int(&a, q->limit);
    arg_dbl(&a, q->delay);
    redisReply *r = deliver(q, RS_TUNE, &a);
    if (!r)
        return 0;
    int woke = (int)r->integer;
    freeReplyObject(r);
    if (woke)
        wake_hungry(q, 1);
    return 0;
}

static int rq_group_pause(void *b, const char *group, size_t len, double until)
{
    struct rq *q = b;
    changed(q);
    struct args a;
    common_args(&a);
    arg_bytes(&a, group, len);
    arg_dbl(&a, shared(q, until));
    arg_dbl(&a, latest(q));
    arg_int(&a, q->limit);
    arg_dbl(&a, q->delay);
    redisReply *r = deliver(q, RS_PAUSE, &a);
    if (r)
        freeReplyObject(r);
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
    if (atomic_load(&q->down))
        return;
    struct args a;
    common_args(&a);
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
    struct args a;
    common_args(&a);
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
    struct args a;
    common_args(&a);
    arg_bytes(&a, items, len);
    redisReply *r = deliver(q, RS_ITEMS, &a);
    if (r)
        freeReplyObject(r);
    return 0;
}

/* Items go to the store's stream; queue_redis_drain writes them out. */
static void rq_set_sink(void *b, const struct queue_items_sink *sink)
{
    (void)b;
    (void)sink;
}

/* ------------------------------------------------ the background thread */

/* Puts back this instance's leases that the table does not know of. */
static int reconcile(struct rq *q, redisContext *c)
{
    char key[512];
    snprintf(key, sizeof key, "%s:il:%s", q->url.prefix, q->instance);
    const char *argv[2] = {"SMEMBERS", key};
    redisReply *r = redisCommandArgv(c, 2, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    struct args a;
    common_args(&a);
    arg_dbl(&a, latest(q));
    int rc = 0;
    for (size_t i = 0; i < r->elements && rc == 0; i++) {
        uint64_t lease = strtoull(r->element[i]->str ? r->element[i]->str : "0", NULL, 10);
        pthread_mutex_lock(&q->lock);
        struct rec *e = q->buckets[lease & q->mask];
        while (e && e->lease != lease)
            e = e->next;
        pthread_mutex_unlock(&q->lock);
        if (e)
            continue;
        arg_int(&a, (long long)lease);
        if (a.n == ARGS_MAX || i + 1 == r->elements) {
            redisReply *x = script_on(q, c, RS_RELEASE, &a);
            rc = x && x->type != REDIS_REPLY_ERROR ? 0 : -1;
            if (x)
                freeReplyObject(x);
            a.n = 1;
        }
    }
    if (rc == 0 && a.n > 1) {
        redisReply *x = script_on(q, c, RS_RELEASE, &a);
        rc = x && x->type != REDIS_REPLY_ERROR ? 0 : -1;
        if (x)
            freeReplyObject(x);
    }
    freeReplyObject(r);
    return rc;
}

/* Replays the held changes in order on c, until none is left: 0, or -1 if
 * c failed (the rest stays held). */
static int replay(struct rq *q, redisContext *c, size_t *delivered)
{
    for (;;) {
        pthread_mutex_lock(&q->held_lock);
        struct pending *p = q->head;
        pthread_mutex_unlock(&q->held_lock);
        if (!p)
            return 0;
        struct args a;
        pending_args(p, &a);
        redisReply *r = script_on(q, c, p->s, &a);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
        pthread_mutex_lock(&q->held_lock);
        q->head = p->next;
        if (!q->head)
            q->tail = NULL;
        q->held--;
        pthread_mutex_unlock(&q->held_lock);
        free(p);
        (*delivered)++;
    }
}

/* The store is up once nothing is held: ops stop holding from then on. */
static int mark_up(struct rq *q)
{
    pthread_mutex_lock(&q->held_lock);
    int up = q->head == NULL;
    if (up)
        atomic_store(&q->down, 0);
    pthread_mutex_unlock(&q->held_lock);
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
    /* The held acks and retries first: their leases are no longer in the
     * table, and reconcile would put them back. Takes wait until it is up,
     * so the table does not change under reconcile. */
    size_t delivered = 0;
    do {
        if (replay(q, c, &delivered) < 0 || reconcile(q, c) < 0) {
            redisFree(c);
            return -1;
        }
    } while (!mark_up(q));
    pool_drop(q); /* connections from before may be half-broken */
    conn_put(q, c);
    say_back(q, delivered);
    pthread_mutex_lock(&q->lock);
    int producer = q->producer_waiting;
    q->producer_waiting = 0;
    q->gen++;
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
    struct args a;
    common_args(&a);
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
    if (news || reclaimed)
        q->gen++;
    pthread_mutex_unlock(&q->lock);
    /* Only what another process did: this process's own changes wake its
     * workers as they happen, and doing it here too would wake twice. */
    if (!news && !reclaimed)
        return;
    wake_hungry(q, -1);
    producer_room(q, waiting);
    drained_edge(q, drained);
}

static void *tick_main(void *arg)
{
    struct rq *q = arg;
    double backoff = 0.1;
    pthread_mutex_lock(&q->tick_lock);
    while (!q->stop) {
        pthread_mutex_unlock(&q->tick_lock);
        double wait = TICK_EVERY;
        if (atomic_load(&q->down)) {
            if (come_back(q) == 0) {
                backoff = 0.1;
            } else {
                wait = backoff;
                backoff = backoff * 2 < BACKOFF_MAX ? backoff * 2 : BACKOFF_MAX;
            }
        } else {
            poll_store(q);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + wait;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - floor(t)) * 1e9);
        pthread_mutex_lock(&q->tick_lock);
        if (!q->stop)
            pthread_cond_timedwait(&q->tick_cond, &q->tick_lock, &ts);
    }
    pthread_mutex_unlock(&q->tick_lock);
    return NULL;
}

/* -------------------------------------------------------- open and free */

static void drop_name(void *value)
{
    free(((struct name *)value)->s);
}

/* At a clean exit: the held results get a last chance (up to FREE_FLUSH
 * seconds), then this instance's leases go back and its roles are left
 * as queue_claim says. */
static void goodbye(struct rq *q)
{
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
        log_int(&rec, "results_held", (int64_t)q->held);
        log_emit_global(&rec);
        return;
    }
    struct args a;
    common_args(&a);
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
    for (struct pending *p = q->head, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    for (int i = 0; i < q->nroles; i++)
        free(q->roles[i]);
    strtab_free(&q->names, drop_name);
    free(q->buckets);
    free(q->slots);
    free(q->instance);
    dedup_free(q->keys);
    url_free(&q->url);
    pthread_mutex_destroy(&q->lock);
    pthread_mutex_destroy(&q->pool_lock);
    pthread_mutex_destroy(&q->held_lock);
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
 * and Redis's clock. */
static int hello(struct rq *q, char *err, size_t errlen)
{
    redisContext *c = url_connect(&q->url, err, errlen);
    if (!c)
        return -1;
    for (int s = 0; s < RS_COUNT; s++)
        if (load_script(q, c, (enum rs_script)s, err, errlen) < 0)
            goto fail;
    struct args a;
    common_args(&a);
    arg_dbl(&a, q->ttl);
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)random_seed());
    arg_str(&a, seed);
    double before = clock_now();
    redisReply *r = script_on(q, c, RS_HELLO, &a);
    double after = clock_now();
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
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
    pthread_mutex_init(&q->held_lock, NULL);
    pthread_mutex_init(&q->tick_lock, NULL);
    pthread_cond_init(&q->tick_cond, NULL);
    if (url_parse(where, &q->url, err, errlen) < 0)
        goto fail_quiet;
    q->front = front;
    q->capacity = cfg->capacity;
    q->nslots = cfg->workers + 1;
    q->limit = cfg->group_limit;
    q->delay = cfg->group_delay;
    q->jitter = cfg->group_jitter;
    q->rng = cfg->seed ? cfg->seed : random_seed();
    q->ttl = cfg->lease_ttl > 0 ? cfg->lease_ttl : DEFAULT_TTL;
    q->instance = cfg->instance && *cfg->instance ? strdup(cfg->instance) : default_instance();
    q->hungry_head = q->hungry_tail = -1;
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

#define DRAIN_BATCH "512"
#define DRAIN_BLOCK_MS "500"

struct drain {
    redisContext *c;
    const char *prefix;
    char key[300], rec[300]; /* the stream; the drainer's record */
    char last[64];           /* the last entry written */
    long long size;          /* the file's size the record vouches for */
    int fd;
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
static int drain_start(struct drain *d, const char *path, char *err, size_t errlen)
{
    const char *argv[4] = {"HMGET", d->rec, "size", "id"};
    redisReply *r = redisCommandArgv(d->c, 4, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return drain_fail(err, errlen, "reading the drainer's record", d->c, r);
    d->size = r->element[0]->type == REDIS_REPLY_STRING ? strtoll(r->element[0]->str, NULL, 10) : 0;
    snprintf(d->last, sizeof d->last, "%s",
             r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "0-0");
    freeReplyObject(r);
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

long long queue_redis_drain(const char *url, const char *path, int follow, char *err, size_t errlen)
{
    struct url u;
    struct drain d = {.fd = -1};
    long long total = 0;
    if (strncmp(url, "redis:", 6) != 0) {
        snprintf(err, errlen, "items: a redis:// URL is needed (got '%s')", url);
        return -1;
    }
    if (url_parse(url + 6, &u, err, errlen) < 0)
        return -1;
    d.prefix = u.prefix;
    snprintf(d.key, sizeof d.key, "%s:items", u.prefix);
    snprintf(d.rec, sizeof d.rec, "%s:drain", u.prefix);
    if (!(d.c = url_connect(&u, err, errlen)) || drain_start(&d, path, err, errlen) < 0)
        goto fail;
    /* the blocking read waits longer than the command timeout allows */
    redisSetTimeout(d.c, tv_of(IO_TIMEOUT + 2));
    int finishing = 0;
    for (;;) {
        int block = follow && !finishing;
        const char *argv[8] = {"XREAD",        "COUNT",   DRAIN_BATCH, "BLOCK",
                               DRAIN_BLOCK_MS, "STREAMS", d.key,       d.last};
        redisReply *r = block ? redisCommandArgv(d.c, 8, argv, NULL) : NULL;
        if (!block) {
            const char *once[6] = {"XREAD", "COUNT", DRAIN_BATCH, "STREAMS", d.key, d.last};
            r = redisCommandArgv(d.c, 6, once, NULL);
        }
        if (!r || r->type == REDIS_REPLY_ERROR) {
            drain_fail(err, errlen, "reading the items stream", d.c, r);
            goto fail;
        }
        long long n = drain_batch(&d, r, path, err, errlen);
        freeReplyObject(r);
        if (n < 0)
            goto fail;
        total += n;
        if (n > 0)
            continue;
        if (!follow || finishing)
            break;
        /* drained means every ack is in: one more pass reads the last ones */
        finishing = run_drained(&d);
    }
    close(d.fd);
    redisFree(d.c);
    url_free(&u);
    return total;
fail:
    if (d.fd >= 0)
        close(d.fd);
    if (d.c)
        redisFree(d.c);
    url_free(&u);
    return -1;
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
};
