/* queue_sqlite.c - the durable queue: the memory backend, with its state
 * kept in SQLite in a state directory (--state-dir DIR, spec "sqlite:DIR").
 *
 * Every call runs on the memory backend (queue_mem.c), so take, ack and
 * the per-host scheduler cost what they cost in memory. The memory backend
 * tells this file every change it makes, under its lock, in the one order
 * they happened (queue_mem.h's journal); each change is appended to a batch
 * in memory. One thread, the committer, takes the batch every COMMIT_MS
 * and applies it to the database in one transaction. So the database is
 * always the state as of some moment of the run: a crash loses at most the
 * changes of the last COMMIT_MS, and those are undone together (a job whose
 * ack was not committed is done again; the pushes it made before its ack
 * come back with it, or not at all).
 *
 * Items (queue_ack_items) ride in their job's ack. The committer appends
 * them to the output file (through the items sink) before it commits the
 * transaction that holds the ack and the file's new size; a restart cuts
 * the file back to the size last committed. Items of a job whose ack was
 * committed are in the file once, and the items of one that was not are
 * cut off and made again when the job runs again: exactly once.
 *
 * What the database holds (queue.db, WAL mode):
 *   meta(k, v)   format, dedup seed, next job id, counters, the producer's
 *                position and whether it finished, the items file's size
 *   jobs         one row per job ever accepted: state (ready, delayed,
 *                leased, done), seq, attempt, priority, depth, due (wall
 *                clock), group, key hash, and the job's bytes and trace
 *                context until it is done (a done row keeps its key hash,
 *                which is the dedup set)
 *   groups       per-host scheduler state set by tune and pause
 * At open, every job not done is put back in memory (a leased one as ready,
 * attempt unchanged: it was in flight at the stop), and the keys, groups and
 * counts with it. Times are stored on the wall clock and converted back.
 *
 * The directory is locked (flock on DIR/lock, holding the PID) against a
 * second process; the kernel drops the lock when the holder dies, kill -9
 * included.
 *
 * Threads: any thread calls the ops (the memory backend's rules); the batch
 * is guarded by the memory backend's lock (the journal runs under it, and
 * the committer swaps the batch out with queue_mem_locked); the database
 * is the committer's alone after open. */
#include "core/queue_sqlite.h"

#include "core/queue_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/fsutil.h"
#include "base/strbuf.h"
#include "base/thread.h"
#include "telemetry/logs/logger.h"

#define COMMIT_MS 10
#define KICK_BYTES (4u << 20) /* a batch this big is committed at once */

enum { JOB_READY = 0, JOB_DELAYED = 1, JOB_LEASED = 2, JOB_DONE = 3 };

enum { NOTE_PRODUCED = 1, NOTE_ITEMS = 2 };

enum stmt {
    S_PUSH,
    S_TAKE,
    S_DONE,
    S_RETRY,
    S_RELEASE,
    S_TUNE,
    S_PAUSE,
    S_META,
    NSTMT,
};

static const char *const sql[NSTMT] = {
    [S_PUSH] = "INSERT OR IGNORE INTO jobs(id,state,seq,attempt,priority,depth,due,grp,keyhash,"
               "data,ctx) VALUES(?1,?2,?3,1,?4,?5,?6,?7,?8,?9,?10)",
    [S_TAKE] = "UPDATE jobs SET state=2 WHERE id=?1",
    [S_DONE] = "UPDATE jobs SET state=3,data=NULL,ctx=NULL WHERE id=?1",
    [S_RETRY] = "UPDATE jobs SET state=?2,attempt=?3,seq=?4,due=?5 WHERE id=?1",
    [S_RELEASE] = "UPDATE jobs SET state=0 WHERE id=?1",
    [S_TUNE] = "INSERT INTO groups(name,delay,lim,until) VALUES(?1,?2,?3,0) ON CONFLICT(name) "
               "DO UPDATE SET delay=CASE WHEN ?2>=0 THEN ?2 ELSE delay END,"
               "lim=CASE WHEN ?3>=0 THEN ?3 ELSE lim END",
    [S_PAUSE] = "INSERT INTO groups(name,delay,lim,until) VALUES(?1,-1,-1,?2) ON CONFLICT(name) "
                "DO UPDATE SET until=max(until,?2)",
    [S_META] = "INSERT INTO meta(k,v) VALUES(?1,?2) ON CONFLICT(k) DO UPDATE SET v=?2",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY, state INTEGER NOT NULL,"
    " seq INTEGER NOT NULL, attempt INTEGER NOT NULL, priority INTEGER NOT NULL,"
    " depth INTEGER NOT NULL, due REAL NOT NULL, grp TEXT NOT NULL, keyhash INTEGER,"
    " data BLOB, ctx BLOB);"
    "CREATE TABLE IF NOT EXISTS groups(name TEXT PRIMARY KEY, delay REAL NOT NULL,"
    " lim INTEGER NOT NULL, until REAL NOT NULL) WITHOUT ROWID;";

/* The run's figures kept in meta, besides the format and the seed. */
struct counts {
    uint64_t next_id, pushed, dup, retried, acked, produced;
    int producer_done;
    long long output_size; /* -1: no items file yet */
};

struct sq {
    void *mem; /* the memory backend's state: every op runs there */
    char *dir;
    int lock_fd;
    sqlite3 *db;
    sqlite3_stmt *st[NSTMT];
    int sync;
    double wall_offset; /* wall clock - monotonic clock, at open */

    /* under the memory backend's lock (the journal's) */
    struct strbuf batch;
    size_t batch_changes;
    uint64_t lost; /* changes not saved for want of memory */

    /* the committer's */
    struct counts c;
    struct strbuf applying, out;
    struct queue_items_sink sink;
    _Atomic size_t applying_len; /* what applying held before the last append */
    _Atomic int failing;         /* the last commit failed: its changes are retried */
    size_t hold;                 /* failing with this much unsaved: takes give nothing */
    int hold_said;               /* the hold was logged (the committer's) */
    queue *front;                /* to wake the workers when the hold ends */
    uint64_t lost_swapped, lost_seen;
    int has_sink, warned;
    char errmsg[512];

    /* the producer's position: pushes to answer QUEUE_DUP to */
    _Atomic uint64_t skip;
    int resumed; /* the state held a run */
    _Atomic int closed;
    struct queue_stats at_open; /* what it held */

    pthread_t thread;
    int started;
    pthread_mutex_t lock; /* the committer's sleep, and sync's wait */
    pthread_cond_t cond, synced;
    int stopping, kicked;
    uint64_t sync_asked, sync_done; /* sync: rounds asked for, rounds committed */
    int drop_sink;                  /* sync(last): no item written after */
};

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void warn_once(struct sq *s, const char *what)
{
    if (s->warned)
        return;
    s->warned = 1;
    char msg[1024];
    snprintf(msg, sizeof msg,
             "the state in %s could not be saved (%s): %s; the run goes on, "
             "and a resume would start from the last state that was saved",
             s->dir, what, sqlite3_errmsg(s->db));
    struct log_record rec;
    log_begin(&rec, LOG_ERROR, msg);
    log_emit_global(&rec);
}

/* ------------------------------------------------------------ the batch */

/* A change in the batch: the struct, then its bytes (data, ctx, group,
 * items) one after another; the pointers are rebuilt when it is read. */
static void journal(void *arg, const struct qm_change *c)
{
    struct sq *s = arg;
    size_t more = sizeof *c + c->len + c->ctx_len + c->group_len + c->items_len;
    if (strbuf_reserve(&s->batch, more + 8) != 0) {
        s->batch.oom = 0;
        s->lost++; /* out of memory: this change is not saved; the run goes on */
        return;
    }
    struct qm_change *d = (struct qm_change *)(s->batch.p + s->batch.len);
    *d = *c;
    char *p = (char *)(d + 1);
    memcpy(p, c->data ? c->data : "", c->len);
    p += c->len;
    memcpy(p, c->ctx ? (const void *)c->ctx : "", c->ctx_len);
    p += c->ctx_len;
    memcpy(p, c->group ? c->group : "", c->group_len);
    p += c->group_len;
    memcpy(p, c->items ? c->items : "", c->items_len);
    /* keep the next struct aligned */
    s->batch.len += (more + 7) & ~(size_t)7;
    s->batch_changes++;
    if (s->batch.len >= KICK_BYTES && !s->kicked) {
        pthread_mutex_lock(&s->lock);
        s->kicked = 1;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
}

/* Under the memory backend's lock: the batch becomes the committer's; or,
 * after a commit that failed (a full disk), goes behind what it retries. */
static void take_batch(void *arg)
{
    struct sq *s = arg;
    if (!s->applying.len) {
        struct strbuf t = s->applying;
        s->applying = s->batch;
        s->batch = t;
    } else if (s->batch.len) {
        strbuf_add(&s->applying, s->batch.p, s->batch.len);
        if (s->applying.oom) { /* keep it for the next round */
            s->applying.oom = 0;
            s->applying.len = s->applying_len;
            return;
        }
    }
    s->applying_len = s->applying.len;
    s->batch.len = 0;
    s->batch_changes = 0;
    s->lost_swapped = s->lost;
}

/* ------------------------------------------------------------ applying */

static int step(struct sq *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
    (void)s;
}

static int meta_set(struct sq *s, const char *k, sqlite3_int64 v)
{
    sqlite3_stmt *st = s->st[S_META];
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return step(s, st);
}

static int apply_push(struct sq *s, const struct qm_change *c, const char *data, const char *ctx,
                      const char *group)
{
    sqlite3_stmt *st = s->st[S_PUSH];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)c->job_id);
    sqlite3_bind_int(st, 2, c->due > 0 ? JOB_DELAYED : JOB_READY);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)c->seq);
    sqlite3_bind_int(st, 4, c->priority);
    sqlite3_bind_int(st, 5, c->depth);
    sqlite3_bind_double(st, 6, c->due > 0 ? c->due + s->wall_offset : 0);
    sqlite3_bind_text(st, 7, group, (int)c->group_len, SQLITE_STATIC);
    if (c->key_hash)
        sqlite3_bind_int64(st, 8, (sqlite3_int64)c->key_hash);
    sqlite3_bind_blob(st, 9, data, (int)c->len, SQLITE_STATIC);
    if (c->ctx_len)
        sqlite3_bind_blob(st, 10, ctx, (int)c->ctx_len, SQLITE_STATIC);
    s->c.pushed++;
    if (c->from_producer)
        s->c.produced++;
    if (c->job_id >= s->c.next_id)
        s->c.next_id = c->job_id + 1;
    return step(s, st);
}

static int apply_id(struct sq *s, enum stmt which, uint64_t id)
{
    sqlite3_bind_int64(s->st[which], 1, (sqlite3_int64)id);
    return step(s, s->st[which]);
}

static int apply_retry(struct sq *s, const struct qm_change *c)
{
    sqlite3_stmt *st = s->st[S_RETRY];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)c->job_id);
    sqlite3_bind_int(st, 2, c->due > 0 ? JOB_DELAYED : JOB_READY);
    sqlite3_bind_int(st, 3, c->attempt);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)c->seq);
    sqlite3_bind_double(st, 5, c->due > 0 ? c->due + s->wall_offset : 0);
    s->c.retried++;
    return step(s, st);
}

static int apply_group(struct sq *s, const struct qm_change *c, const char *group)
{
    sqlite3_stmt *st = s->st[c->kind == QM_TUNE ? S_TUNE : S_PAUSE];
    sqlite3_bind_text(st, 1, group, (int)c->group_len, SQLITE_STATIC);
    if (c->kind == QM_TUNE) {
        sqlite3_bind_double(st, 2, c->delay);
        sqlite3_bind_int(st, 3, c->limit);
    } else {
        sqlite3_bind_double(st, 2, c->until + s->wall_offset);
    }
    return step(s, st);
}

static int apply_one(struct sq *s, const struct qm_change *c)
{
    const char *data = (const char *)(c + 1), *ctx = data + c->len;
    const char *group = ctx + c->ctx_len, *items = group + c->group_len;
    switch (c->kind) {
    case QM_PUSH:
        return apply_push(s, c, data, ctx, group);
    case QM_TAKE:
        return apply_id(s, S_TAKE, c->job_id);
    case QM_ACK:
        s->c.acked++;
        if (c->items_len)
            strbuf_add(&s->out, items, c->items_len);
        return apply_id(s, S_DONE, c->job_id);
    case QM_RETRY:
        return apply_retry(s, c);
    case QM_RELEASE:
        return apply_id(s, S_RELEASE, c->job_id);
    case QM_TUNE:
    case QM_PAUSE:
        return apply_group(s, c, group);
    case QM_PRODUCER_DONE:
        s->c.producer_done = 1;
        return 0;
    case QM_NOTE:
        if (c->note == NOTE_PRODUCED)
            s->c.produced++;
        else if (c->note == NOTE_ITEMS && c->items_len)
            strbuf_add(&s->out, items, c->items_len);
        return 0;
    }
    return 0;
}

static int save_counts(struct sq *s)
{
    struct queue_stats now;
    queue_mem_ops.stats(s->mem, &now);
    s->c.dup = now.dup;
    return meta_set(s, "next_id", (sqlite3_int64)s->c.next_id) ||
           meta_set(s, "pushed", (sqlite3_int64)s->c.pushed) ||
           meta_set(s, "dup", (sqlite3_int64)s->c.dup) ||
           meta_set(s, "retried", (sqlite3_int64)s->c.retried) ||
           meta_set(s, "acked", (sqlite3_int64)s->c.acked) ||
           meta_set(s, "produced", (sqlite3_int64)s->c.produced) ||
           meta_set(s, "producer_done", s->c.producer_done) ||
           meta_set(s, "output_size", s->c.output_size) ||
           meta_set(s, "saved_at", (sqlite3_int64)wall_now());
}

/* Items first, then the transaction that records them: a crash in between
 * leaves bytes past the committed size, which the next open cuts off. */
static void write_items(struct sq *s)
{
    if (!s->out.len)
        return;
    if (s->has_sink) {
        long long size = s->sink.write(s->sink.arg, s->out.p, s->out.len);
        if (size >= 0) {
            if (s->sync == QUEUE_SYNC_FULL && s->sink.flush)
                s->sink.flush(s->sink.arg);
            s->c.output_size = size;
        }
    }
    s->out.len = 0;
    if (s->out.cap > (16u << 20)) {
        free(s->out.p);
        s->out = (struct strbuf){0};
    }
}

static void say_failing(struct sq *s, int failing)
{
    char msg[1024];
    if (failing)
        snprintf(msg, sizeof msg,
                 "the state in %s cannot be saved (%s); the run goes on, its changes are kept "
                 "in memory and saved once it can be, and items wait for their jobs' changes",
                 s->dir, s->errmsg);
    else
        snprintf(msg, sizeof msg, "the state in %s is saved again", s->dir);
    struct log_record rec;
    log_begin(&rec, failing ? LOG_ERROR : LOG_INFO, msg);
    log_emit_global(&rec);
}

/* A transaction that did not commit: nothing of it counts. The items it
 * wrote are cut off, and its changes stay in applying for the next try. */
static void commit_failed(struct sq *s, const struct counts *before)
{
    snprintf(s->errmsg, sizeof s->errmsg, "%s", sqlite3_errmsg(s->db));
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->c = *before;
    if (s->has_sink && s->c.output_size >= 0)
        s->sink.cut(s->sink.arg, s->c.output_size);
    if (!atomic_exchange(&s->failing, 1))
        say_failing(s, 1);
    if (!s->hold_said && atomic_load(&s->applying_len) >= s->hold) {
        s->hold_said = 1;
        char msg[1024];
        snprintf(msg, sizeof msg,
                 "%zu MiB of changes wait to be saved in %s: workers take no new jobs until they "
                 "are (--state-hold)",
                 s->hold >> 20, s->dir);
        struct log_record rec;
        log_begin(&rec, LOG_WARN, msg);
        log_emit_global(&rec);
    }
}

/* Applies what the batch holds in one transaction. */
static void commit_batch(struct sq *s)
{
    queue_mem_locked(s->mem, take_batch, s);
    if (s->lost_seen != s->lost_swapped) {
        s->lost_seen = s->lost_swapped;
        warn_once(s, "out of memory");
    }
    if (!s->applying.len)
        return;
    struct counts before = s->c;
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        commit_failed(s, &before);
        return;
    }
    int bad = 0;
    for (size_t at = 0; at < s->applying.len && !bad;) {
        const struct qm_change *c = (const struct qm_change *)(s->applying.p + at);
        size_t more = sizeof *c + c->len + c->ctx_len + c->group_len + c->items_len;
        bad = apply_one(s, c) != 0;
        at += (more + 7) & ~(size_t)7;
    }
    s->out.len -= bad ? s->out.len : 0;
    if (!bad)
        write_items(s);
    if (bad || save_counts(s) != 0 ||
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        s->out.len = 0;
        commit_failed(s, &before);
        return;
    }
    if (atomic_exchange(&s->failing, 0))
        say_failing(s, 0);
    if (s->hold_said) { /* the workers held back take again */
        s->hold_said = 0;
        queue_wake_all(s->front);
    }
    s->applying.len = 0;
    if (s->applying.cap > 4 * KICK_BYTES) {
        free(s->applying.p);
        s->applying = (struct strbuf){0};
    }
}

static void *committer_main(void *arg)
{
    struct sq *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        if (!s->stopping && !s->kicked && s->sync_asked == s->sync_done)
            thread_cond_wait_until(&s->cond, &s->lock, clock_now() + COMMIT_MS / 1000.0);
        int stopping = s->stopping;
        uint64_t asked = s->sync_asked;
        int drop = s->drop_sink;
        s->kicked = 0;
        pthread_mutex_unlock(&s->lock);
        commit_batch(s);
        if (drop)
            s->has_sink = 0;
        pthread_mutex_lock(&s->lock);
        s->sync_done = asked;
        pthread_cond_broadcast(&s->synced);
        pthread_mutex_unlock(&s->lock);
        if (stopping)
            break;
    }
    return NULL;
}

static void sq_sync(void *b, int last)
{
    struct sq *s = b;
    if (!s->started)
        return;
    pthread_mutex_lock(&s->lock);
    uint64_t want = ++s->sync_asked;
    if (last)
        s->drop_sink = 1;
    pthread_cond_signal(&s->cond);
    while (s->sync_done < want)
        thread_cond_wait_until(&s->synced, &s->lock, clock_now() + 1);
    pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------ open */

static int lock_dir(struct sq *s, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", s->dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(s->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errlen,
                 "the state directory %s is in use by another shoal (pid %s): stop that run, "
                 "or give this one another --state-dir",
                 s->dir, pid[0] ? pid : "unknown");
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, pid, (size_t)n, 0) != n)
        return 0; /* the lock holds; only the message naming us would lack the pid */
    return 0;
}

static int db_error(struct sq *s, const char *what, char *err, size_t errlen)
{
    int code = sqlite3_errcode(s->db);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
        snprintf(err, errlen,
                 "%s/queue.db is damaged or is not a shoal state (%s, while %s): move the "
                 "directory away to start the run over, or put back a copy of it",
                 s->dir, sqlite3_errmsg(s->db), what);
    else
        snprintf(err, errlen, "cannot use the state in %s/queue.db (%s, while %s)", s->dir,
                 sqlite3_errmsg(s->db), what);
    return -1;
}

static int meta_get(struct sq *s, const char *k, sqlite3_int64 *v)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT v FROM meta WHERE k=?1", -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int open_db(struct sq *s, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/queue.db", s->dir);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        return db_error(s, "opening it", err, errlen);
    sqlite3_busy_timeout(s->db, 5000);
    const char *sync = s->sync == QUEUE_SYNC_FULL  ? "PRAGMA synchronous=FULL"
                       : s->sync == QUEUE_SYNC_OFF ? "PRAGMA synchronous=OFF"
                                                   : "PRAGMA synchronous=NORMAL";
    if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, sync, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK)
        return db_error(s, "reading its schema", err, errlen);
    sqlite3_int64 format = 0;
    int has = meta_get(s, "format", &format);
    if (has < 0)
        return db_error(s, "reading its format", err, errlen);
    if (has && format != QUEUE_SQLITE_FORMAT) {
        snprintf(err, errlen,
                 "%s holds a state of format %lld, and this shoal reads format %d: finish "
                 "that run with the shoal that began it, or move the directory away to start "
                 "over",
                 s->dir, (long long)format, QUEUE_SQLITE_FORMAT);
        return -1;
    }
    for (int i = 0; i < NSTMT; i++)
        if (sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
            SQLITE_OK)
            return db_error(s, "preparing its statements", err, errlen);
    s->resumed = has;
    return 0;
}

/* A new state: its format and the dedup seed, for good. */
static int begin_state(struct sq *s, char *err, size_t errlen)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)(wall_now() * 1e9) ^ (uint64_t)getpid();
    if (queue_mem_set_seed(s->mem, seed) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->c = (struct counts){.next_id = 1, .output_size = -1};
    if (meta_set(s, "format", QUEUE_SQLITE_FORMAT) || meta_set(s, "seed", (sqlite3_int64)seed) ||
        meta_set(s, "created_at", (sqlite3_int64)wall_now()) || save_counts(s))
        return db_error(s, "starting it", err, errlen);
    return 0;
}

static uint64_t meta_u64(struct sq *s, const char *k)
{
    sqlite3_int64 v = 0;
    return meta_get(s, k, &v) == 1 ? (uint64_t)v : 0;
}

static int restore_jobs(struct sq *s, double now)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id,seq,attempt,priority,depth,due,grp,data,ctx,state FROM jobs "
                           "WHERE state<3 ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        double due = sqlite3_column_double(st, 5);
        struct qm_change j = {
            .job_id = (uint64_t)sqlite3_column_int64(st, 0),
            .seq = (uint64_t)sqlite3_column_int64(st, 1),
            .attempt = sqlite3_column_int(st, 2),
            .priority = sqlite3_column_int(st, 3),
            .depth = sqlite3_column_int(st, 4),
            .due = due > 0 ? due - s->wall_offset : 0,
            .group = (const char *)sqlite3_column_text(st, 6),
            .group_len = (size_t)sqlite3_column_bytes(st, 6),
            .data = sqlite3_column_blob(st, 7),
            .len = (size_t)sqlite3_column_bytes(st, 7),
            .ctx = sqlite3_column_blob(st, 8),
            .ctx_len = (size_t)sqlite3_column_bytes(st, 8),
        };
        int state = sqlite3_column_int(st, 9);
        if (state == JOB_DELAYED)
            s->at_open.delayed++;
        else if (state == JOB_LEASED)
            s->at_open.leased++;
        else
            s->at_open.ready++;
        if (queue_mem_restore_job(s->mem, &j, now) != 0)
            break;
    }
    sqlite3_finalize(st);
    /* the leased ones are ready again: so says the database too */
    if (rc == SQLITE_DONE &&
        sqlite3_exec(s->db, "UPDATE jobs SET state=0 WHERE state=2", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    return rc == SQLITE_DONE ? 0 : -1;
}

static int restore_keys_and_groups(struct sq *s, double now)
{
    sqlite3_stmt *st;
    int rc;
    if (sqlite3_prepare_v2(s->db, "SELECT keyhash FROM jobs WHERE keyhash IS NOT NULL", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (queue_mem_restore_key(s->mem, (uint64_t)sqlite3_column_int64(st, 0)) != 0)
            break;
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -1;
    if (sqlite3_prepare_v2(s->db, "SELECT name,delay,lim,until FROM groups", -1, &st, NULL) !=
        SQLITE_OK)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        double delay = sqlite3_column_double(st, 1), until = sqlite3_column_double(st, 3);
        int limit = sqlite3_column_int(st, 2);
        if (len == 0 || len > QUEUE_GROUP_MAX)
            continue;
        if (delay >= 0 || limit >= 0)
            queue_mem_ops.group_tune(s->mem, name, len, delay, limit);
        if (until > 0 && until - s->wall_offset > now)
            queue_mem_ops.group_pause(s->mem, name, len, until - s->wall_offset);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* An old state: the seed first (hashes must match), then everything. */
static int restore_state(struct sq *s, char *err, size_t errlen)
{
    if (queue_mem_set_seed(s->mem, meta_u64(s, "seed")) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sqlite3_int64 size = -1;
    meta_get(s, "output_size", &size);
    s->c = (struct counts){
        .next_id = meta_u64(s, "next_id"),
        .pushed = meta_u64(s, "pushed"),
        .dup = meta_u64(s, "dup"),
        .retried = meta_u64(s, "retried"),
        .acked = meta_u64(s, "acked"),
        .produced = meta_u64(s, "produced"),
        .producer_done = (int)meta_u64(s, "producer_done"),
        .output_size = size,
    };
    double now = mono_now();
    if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        restore_keys_and_groups(s, now) != 0 || restore_jobs(s, now) != 0 ||
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return db_error(s, "reading the jobs it holds", err, errlen);
    struct queue_stats counts = {
        .pushed = s->c.pushed, .dup = s->c.dup, .retried = s->c.retried, .acked = s->c.acked};
    queue_mem_restore_counts(s->mem, s->c.next_id, &counts, s->c.producer_done);
    s->at_open.pushed = s->c.pushed;
    s->at_open.acked = s->c.acked;
    s->at_open.retried = s->c.retried;
    s->at_open.dup = s->c.dup;
    atomic_store(&s->skip, s->c.producer_done ? 0 : s->c.produced);
    return 0;
}

static void sq_free(void *b);

static void *sq_open(queue *front, const char *where, const struct queue_config *cfg, char *err,
                     size_t errlen)
{
    if (!where || !*where) {
        snprintf(err, errlen, "sqlite: which directory? give sqlite:DIR (--state-dir DIR)");
        return NULL;
    }
    struct sq *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(where))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->lock_fd = -1;
    s->sync = cfg->sync;
    s->hold = cfg->hold_bytes ? cfg->hold_bytes : (size_t)64 << 20;
    s->front = front;
    pthread_mutex_init(&s->lock, NULL);
    thread_cond_init(&s->cond);
    thread_cond_init(&s->synced);
    s->wall_offset = wall_now() - mono_now();
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/queue.db", s->dir);
    if (fs_make_parents(marker) != 0) {
        snprintf(err, errlen, "cannot make the state directory %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    if (!(s->mem = queue_mem_ops.open(front, "", cfg, err, errlen)) || lock_dir(s, err, errlen) ||
        open_db(s, err, errlen) ||
        (s->resumed ? restore_state(s, err, errlen) : begin_state(s, err, errlen)))
        goto fail;
    queue_mem_set_journal(s->mem, journal, s);
    if (thread_start(&s->thread, "state-commit", 0, committer_main, s) != 0) {
        snprintf(err, errlen, "cannot start the state's thread");
        goto fail;
    }
    s->started = 1;
    return s;
fail:
    sq_free(s);
    return NULL;
}

static void sq_free(void *b)
{
    struct sq *s = b;
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->lock);
        s->stopping = 1;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    for (int i = 0; i < NSTMT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db) {
        /* leave a small WAL behind: the next open reads less */
        if (s->started)
            sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_close(s->db);
    }
    if (s->mem)
        queue_mem_ops.free(s->mem);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* and with it the lock */
    free(s->batch.p);
    free(s->applying.p);
    free(s->out.p);
    free(s->dir);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->synced);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ------------------------------------------------------------ the ops */

static int sq_push(void *b, const char *data, size_t len, const struct queue_push_opts *opts,
                   double now, uint64_t *id_out)
{
    struct sq *s = b;
    if (opts->from_producer && atomic_load(&s->skip) > 0) {
        /* a producer run again after a restart: this push was made before */
        uint64_t left = atomic_load(&s->skip);
        while (left > 0 && !atomic_compare_exchange_weak(&s->skip, &left, left - 1))
            ;
        if (left > 0)
            return QUEUE_DUP;
    }
    int rc = queue_mem_ops.push(s->mem, data, len, opts, now, id_out);
    if (rc == QUEUE_DUP && opts->from_producer) {
        struct qm_change c = {.kind = QM_NOTE, .note = NOTE_PRODUCED};
        queue_mem_note(s->mem, &c);
    }
    return rc;
}

/* The state cannot be saved and its unsaved changes reached --state-hold:
 * no new jobs until they are saved (the committer wakes the workers). */
static int holding(struct sq *s)
{
    return atomic_load(&s->failing) && atomic_load(&s->applying_len) >= s->hold;
}

static int sq_take(void *b, int worker, double now, struct queue_lease *out)
{
    struct sq *s = b;
    if (holding(s))
        return 0;
    return queue_mem_ops.take(s->mem, worker, now, out);
}

static int sq_ack(void *b, uint64_t lease, int keep)
{
    return queue_mem_ops.ack(((struct sq *)b)->mem, lease, keep);
}

static int sq_ack_items(void *b, uint64_t lease, const char *items, size_t len)
{
    return queue_mem_ack_items(((struct sq *)b)->mem, lease, items, len);
}

static int sq_items(void *b, const char *items, size_t len)
{
    struct qm_change c = {.kind = QM_NOTE, .note = NOTE_ITEMS, .items = items, .items_len = len};
    queue_mem_note(((struct sq *)b)->mem, &c);
    return 0;
}

static int sq_retry(void *b, uint64_t lease, double delay, double now)
{
    return queue_mem_ops.retry(((struct sq *)b)->mem, lease, delay, now);
}

static int sq_release_worker(void *b, int worker, uint64_t except)
{
    return queue_mem_ops.release_worker(((struct sq *)b)->mem, worker, except);
}

/* A producer stopped by the run (Ctrl-C, a failure) did not finish: only
 * one that returned while the queue was open is kept as done. */
static void sq_producer_done(void *b)
{
    struct sq *s = b;
    if (!atomic_load(&s->closed))
        queue_mem_ops.producer_done(s->mem);
}

static int sq_drained(void *b)
{
    return queue_mem_ops.drained(((struct sq *)b)->mem);
}

static void sq_close(void *b)
{
    struct sq *s = b;
    atomic_store(&s->closed, 1);
    queue_mem_ops.close(s->mem);
}

static double sq_next_due(void *b)
{
    struct sq *s = b;
    if (holding(s))
        return clock_now() + 0.25; /* and the committer wakes them sooner */
    return queue_mem_ops.next_due(s->mem);
}

static void sq_stats(void *b, struct queue_stats *out)
{
    struct sq *s = b;
    queue_mem_ops.stats(s->mem, out);
    out->store_down = atomic_load(&s->failing);
    out->held = out->store_down ? s->applying_len : 0; /* bytes of changes: a gauge */
}

static int sq_group_tune(void *b, const char *group, size_t len, double delay, int limit)
{
    return queue_mem_ops.group_tune(((struct sq *)b)->mem, group, len, delay, limit);
}

static int sq_group_pause(void *b, const char *group, size_t len, double until)
{
    return queue_mem_ops.group_pause(((struct sq *)b)->mem, group, len, until);
}

static void sq_each_group(void *b, void (*fn)(void *arg, const struct queue_group_info *g),
                          void *arg)
{
    queue_mem_ops.each_group(((struct sq *)b)->mem, fn, arg);
}

/* The producer's role is taken once its run finished: a resume does not
 * run produce() again. */
static int sq_claim(void *b, const char *role)
{
    struct sq *s = b;
    if (!strcmp(role, "producer"))
        return !s->c.producer_done || !s->resumed;
    /* done() ends the run: not after a Ctrl-C, which a resume goes on from */
    return !strcmp(role, "done") ? queue_mem_ops.drained(s->mem) : 1;
}

/* Set before the first push, so the committer has not run yet: the file is
 * cut back to what the state last recorded (or emptied for a new state,
 * unless it is appended to). */
static void sq_set_sink(void *b, const struct queue_items_sink *sink)
{
    struct sq *s = b;
    s->sink = *sink;
    s->has_sink = 1;
    long long size = sink->size(sink->arg);
    if (s->resumed && s->c.output_size >= 0) {
        if (size < s->c.output_size) {
            char msg[1024];
            snprintf(msg, sizeof msg,
                     "the items file is shorter (%lld bytes) than the state in %s recorded "
                     "(%lld bytes): items written before this resume are missing from it",
                     size, s->dir, s->c.output_size);
            struct log_record rec;
            log_begin(&rec, LOG_WARN, msg);
            log_emit_global(&rec);
        } else if (size > s->c.output_size) {
            sink->cut(sink->arg, s->c.output_size); /* written, never committed */
        }
        s->c.output_size = size < s->c.output_size ? size : s->c.output_size;
    } else {
        if (!sink->append && size > 0)
            sink->cut(sink->arg, 0);
        s->c.output_size = sink->append ? size : 0;
    }
}

static int sq_resumed(void *b, struct queue_stats *at_open)
{
    struct sq *s = b;
    if (s->resumed)
        *at_open = s->at_open;
    return s->resumed;
}

const struct queue_ops queue_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .free = sq_free,
    .push = sq_push,
    .take = sq_take,
    .ack = sq_ack,
    .retry = sq_retry,
    .release_worker = sq_release_worker,
    .producer_done = sq_producer_done,
    .drained = sq_drained,
    .close = sq_close,
    .next_due = sq_next_due,
    .stats = sq_stats,
    .group_tune = sq_group_tune,
    .group_pause = sq_group_pause,
    .each_group = sq_each_group,
    .claim = sq_claim,
    .ack_items = sq_ack_items,
    .items = sq_items,
    .set_sink = sq_set_sink,
    .resumed = sq_resumed,
    .sync = sq_sync,
};

/* ------------------------------------------------------------ shoal state */

static sqlite3_int64 count_of(sqlite3 *db, const char *q)
{
    sqlite3_stmt *st;
    sqlite3_int64 n = -1;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void print_time(FILE *out, const char *label, sqlite3_int64 t)
{
    char buf[64] = "unknown";
    time_t tt = (time_t)t;
    struct tm tm;
    if (t > 0 && gmtime_r(&tt, &tm))
        strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    fprintf(out, "%s %s", label, buf);
}

/* Who holds the directory's lock: its pid, 0 if nobody, -1 if unknown. */
static long lock_holder(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    long pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        char buf[32] = "";
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        pid = strtol(buf, NULL, 10);
        if (pid <= 0)
            pid = -1;
    }
    close(fd);
    return pid;
}

static void print_hosts(sqlite3 *db, FILE *out)
{
    sqlite3_int64 n =
        count_of(db, "SELECT count(DISTINCT grp) FROM jobs WHERE state<3 AND grp<>''");
    if (n <= 0)
        return;
    fprintf(out, "  hosts      %lld with jobs waiting; the busiest:\n", (long long)n);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT j.grp, count(*), g.delay, g.lim, g.until FROM jobs j "
                           "LEFT JOIN groups g ON g.name=j.grp WHERE j.state<3 AND j.grp<>'' "
                           "GROUP BY j.grp ORDER BY count(*) DESC, j.grp LIMIT 10",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    double now = wall_now();
    while (sqlite3_step(st) == SQLITE_ROW) {
        fprintf(out, "             %-32s %6lld waiting", (const char *)sqlite3_column_text(st, 0),
                (long long)sqlite3_column_int64(st, 1));
        if (sqlite3_column_type(st, 2) != SQLITE_NULL && sqlite3_column_double(st, 2) >= 0)
            fprintf(out, ", delay %g s", sqlite3_column_double(st, 2));
        if (sqlite3_column_type(st, 3) != SQLITE_NULL && sqlite3_column_int(st, 3) >= 0)
            fprintf(out, ", limit %d", sqlite3_column_int(st, 3));
        if (sqlite3_column_double(st, 4) > now)
            fprintf(out, ", paused for %.0f s more", sqlite3_column_double(st, 4) - now);
        fputc('\n', out);
    }
    sqlite3_finalize(st);
}

int queue_sqlite_report(const char *dir, FILE *out, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/queue.db", dir);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen, "%s holds no shoal state (no queue.db): %s", dir, strerror(errno));
        return -1;
    }
    struct sq s = {.dir = (char *)dir};
    if (sqlite3_open_v2(path, &s.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        db_error(&s, "opening it", err, errlen);
        sqlite3_close(s.db);
        return -1;
    }
    sqlite3_busy_timeout(s.db, 5000);
    sqlite3_int64 format = 0;
    int has = meta_get(&s, "format", &format);
    if (has <= 0 || format != QUEUE_SQLITE_FORMAT) {
        if (has < 0)
            db_error(&s, "reading its format", err, errlen);
        else
            snprintf(err, errlen, "%s holds a state of format %lld; this shoal reads format %d",
                     dir, (long long)format, QUEUE_SQLITE_FORMAT);
        sqlite3_close(s.db);
        return -1;
    }
    sqlite3_int64 created = 0, saved = 0;
    meta_get(&s, "created_at", &created);
    meta_get(&s, "saved_at", &saved);
    fprintf(out, "state in %s (format %lld, ", dir, (long long)format);
    print_time(out, "created", created);
    print_time(out, ", saved", saved);
    fputs(")\n", out);
    sqlite3_int64 ready = count_of(s.db, "SELECT count(*) FROM jobs WHERE state=0");
    sqlite3_int64 delayed = count_of(s.db, "SELECT count(*) FROM jobs WHERE state=1");
    sqlite3_int64 leased = count_of(s.db, "SELECT count(*) FROM jobs WHERE state=2");
    sqlite3_int64 done = count_of(s.db, "SELECT count(*) FROM jobs WHERE state=3");
    sqlite3_int64 keys = count_of(s.db, "SELECT count(*) FROM jobs WHERE keyhash IS NOT NULL");
    if (ready < 0 || delayed < 0 || leased < 0 || done < 0 || keys < 0) {
        db_error(&s, "counting its jobs", err, errlen);
        sqlite3_close(s.db);
        return -1;
    }
    long holder = lock_holder(dir);
    int producer_done = (int)meta_u64(&s, "producer_done");
    const char *run = holder != 0 ? "running"
                      : producer_done && !ready && !delayed && !leased
                          ? "finished"
                          : "stopped: `shoal run` with --state-dir set to it goes on from here";
    fprintf(out, "  run        %s", run);
    if (holder > 0)
        fprintf(out, " (shoal pid %ld holds it)", holder);
    fputc('\n', out);
    uint64_t produced = meta_u64(&s, "produced");
    if (producer_done)
        fprintf(out, "  producer   finished (%" PRIu64 " pushes)\n", produced);
    else
        fprintf(out,
                "  producer   not finished: %" PRIu64 " pushes made; produce() runs again "
                "on resume and those are skipped\n",
                produced);
    fprintf(out, "  queued     %lld ready, %lld delayed\n", (long long)ready, (long long)delayed);
    fprintf(out, "  leased     %lld%s\n", (long long)leased,
            leased && holder == 0 ? " (in flight when it stopped: they run again)" : "");
    fprintf(out, "  done       %lld (%" PRIu64 " retries)\n", (long long)done,
            meta_u64(&s, "retried"));
    fprintf(out, "  dedup keys %lld\n", (long long)keys);
    sqlite3_int64 size = -1;
    if (meta_get(&s, "output_size", &size) == 1 && size >= 0)
        fprintf(out, "  items      %lld bytes of the --output file are committed\n",
                (long long)size);
    print_hosts(s.db, out);
    sqlite3_close(s.db);
    return 0;
}
