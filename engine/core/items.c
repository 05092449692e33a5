/* items.c - shoal.emit's rings and the writer thread (see items.h).
 *
 * The shape is logger.c's: a byte ring per emitting thread, one writer
 * that drains them all into a buffer written in large pieces. Here a
 * record is only bytes (the emitting state encoded it): a 4-byte length,
 * then the record with its "\n", copied in and out modulo the ring's size;
 * a record over half the ring is held outside it (see ring_put).
 *
 * Threads: items_emit* run on any thread and take only their ring's mutex
 * (uncontended: a worker's ring is its own; the mutex keeps a wedged
 * worker waking up from corrupting its successor's ring). The writer reads
 * each ring's tail (acquire) and frees room by advancing its head
 * (release), without the mutex. `lock` + `cond` wake the writer (a ring
 * past a quarter full, an emitter waiting, shutdown); otherwise it drains
 * every TICK_MS. An emitter facing a full ring waits on `room` (under
 * `room_lock`), which the writer broadcasts after freeing room when
 * `waiting` says someone waits. The CSV columns are set once under
 * `columns_lock` and published through `ncolumns` (release), read without
 * the lock after that. The file, its buffers and the written/failed
 * counts belong to the writer; items_new and items_shutdown to the main
 * thread. */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "core/items.h"
#include "base/clock.h"
#include "base/csv.h"
#include "base/thread.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/csv.h"
#include "base/fsutil.h"
#include "telemetry/logs/logger.h"
#include "telemetry/metrics/metrics.h"
#include "core/runmetrics.h"
#include "base/strbuf.h"
#include "core/worker.h"

#define TICK_MS 100
#define DEFAULT_RING (1u << 20)
#define SHARED_RING (256u << 10)
#define FLUSH_AT (256u << 10)

struct ring {
    pthread_mutex_t lock; /* emitters */
    size_t cap;           /* a power of two */
    char *buf;
    _Atomic size_t tail;      /* written up to (emitters, under lock) */
    _Atomic size_t head;      /* read up to (the writer) */
    _Atomic size_t big_bytes; /* large records held outside the ring, not yet written */
} __attribute__((aligned(64)));

/* The end of a record in the writer's buffer, and whether it is an item
 * (the CSV header is not). */
struct rec_end {
    size_t end;
    int item;
};

struct items {
    enum items_format format;
    char *path;
    int fd;       /* the file (or a copy of stdout), -1 without one */
    int seekable; /* a regular file: a torn record can be cut off */
    struct ring *rings;
    int nrings;
    struct metric_series *m_written, *m_dropped, *m_failed, *m_discarded;

    _Atomic uint64_t written, dropped, failed, discarded, extra;
    _Atomic int warned_drop, warned_discard, warned_extra;

    pthread_mutex_t columns_lock;
    char **columns;
    size_t *column_lens;
    _Atomic int ncolumns; /* 0 until set; then fixed */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;              /* under lock */
    pthread_mutex_t room_lock; /* emitters waiting for room, and the writer waking them */
    pthread_cond_t room;
    _Atomic int waiting; /* emitters in wait_for_room */
    int started;         /* the writer thread exists */
    int stuck;           /* it did not end when stopped: left behind */
    pthread_t thread;
    _Atomic int kicked;
    _Atomic int stopped;      /* the writer's last drain began: emits are dropped */
    _Atomic int64_t io_since; /* the writer is inside a write and last moved bytes then
                                 (mono ns), or 0 */
    _Atomic int64_t deadline; /* shutdown: give up a blocked write after (mono ns) */

    /* the writer's */
    struct strbuf out;
    struct rec_end *ends;
    size_t nends, ends_cap;
    int header_done; /* CSV: the header is written (or the file already had one) */
    int warned_write;
    uint64_t sink_bytes; /* written by a durable queue's thread (items_sink_write) */
};

static int64_t mono_ns(void)
{
    return (int64_t)(clock_now() * 1e9);
}

static void warn(const char *msg, const char *k1, const char *v1)
{
    struct log_record rec;
    log_begin(&rec, LOG_WARN, msg);
    if (k1)
        log_cstr(&rec, k1, v1);
    log_emit_global(&rec);
}

static const char *shown_path(const struct items *it)
{
    return it->path && strcmp(it->path, "-") ? it->path : "stdout";
}

/* ------------------------------------------------------------ rings */

static void copy_in(struct ring *g, size_t at, const void *src, size_t n)
{
    size_t off = at & (g->cap - 1), first = g->cap - off < n ? g->cap - off : n;
    memcpy(g->buf + off, src, first);
    memcpy(g->buf, (const char *)src + first, n - first);
}

static void copy_out(const struct ring *g, size_t at, void *dst, size_t n)
{
    size_t off = at & (g->cap - 1), first = g->cap - off < n ? g->cap - off : n;
    memcpy(dst, g->buf + off, first);
    memcpy((char *)dst + first, g->buf, n - first);
}

/* A record too large for the ring's half is kept outside it: the ring
 * holds BIG, then its length (8 bytes) and a pointer to a malloc'd copy,
 * which the writer frees. Its bytes count against the ring (big_bytes),
 * and it is taken only into an empty ring, so a ring never holds more
 * than its size or one large record. */
#define BIG 0xffffffffu
#define BIG_SIZE (sizeof(uint32_t) + sizeof(uint64_t) + sizeof(char *))

/* Puts the record (body and its "\n"): 0, or -1 when the ring has no room
 * (or, for a large one, no memory). Under the ring's lock. */
static int ring_put(struct ring *g, const char *body, size_t n)
{
    size_t tail = atomic_load_explicit(&g->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&g->head, memory_order_acquire);
    size_t used = tail - head + atomic_load(&g->big_bytes);
    if (sizeof(uint32_t) + n + 1 > g->cap / 2) {
        if (used)
            return -1;
        char *copy = malloc(n + 1);
        if (!copy)
            return -1;
        memcpy(copy, body, n);
        copy[n] = '\n';
        uint32_t mark = BIG;
        uint64_t len = n + 1;
        copy_in(g, tail, &mark, sizeof mark);
        copy_in(g, tail + sizeof mark, &len, sizeof len);
        copy_in(g, tail + sizeof mark + sizeof len, &copy, sizeof copy);
        atomic_fetch_add(&g->big_bytes, n + 1);
        atomic_store_explicit(&g->tail, tail + BIG_SIZE, memory_order_release);
        return 0;
    }
    uint32_t len = (uint32_t)(n + 1);
    if (used + sizeof len + len > g->cap)
        return -1;
    copy_in(g, tail, &len, sizeof len);
    copy_in(g, tail + sizeof len, body, n);
    copy_in(g, tail + sizeof len + n, "\n", 1);
    atomic_store_explicit(&g->tail, tail + sizeof len + len, memory_order_release);
    return 0;
}

size_t items_max_bytes(const struct items *it)
{
    (void)it;
    return ITEMS_MAX_BYTES;
}

/* ------------------------------------------------------------ emitting */

static void kick(struct items *it)
{
    if (atomic_exchange(&it->kicked, 1))
        return;
    pthread_mutex_lock(&it->lock);
    pthread_cond_signal(&it->cond);
    pthread_mutex_unlock(&it->lock);
}

/* The ring is full. Items are results, so the emitter waits for the writer
 * to make room (it is woken as soon as the writer frees some), up to
 * ITEMS_WAIT_MS; a writer that has moved no byte for ITEMS_STUCK_MS while
 * writing is waiting on the disk or a reader, not short of CPU, and then
 * the item is dropped at once rather than holding every job of this
 * worker for seconds more. The put is tried again under room_lock, which
 * the writer takes to wake waiters after freeing room: no wakeup is lost. */
static int wait_for_room(struct items *it, struct ring *g, const char *body, size_t n)
{
    int64_t start = mono_ns();
    int rc = -1;
    pthread_mutex_lock(&it->room_lock);
    atomic_fetch_add(&it->waiting, 1);
    for (;;) {
        int64_t now = mono_ns(), io = atomic_load(&it->io_since);
        if (now - start > (int64_t)ITEMS_WAIT_MS * 1000000 ||
            (io && now - io > (int64_t)ITEMS_STUCK_MS * 1000000))
            break;
        pthread_mutex_lock(&g->lock);
        rc = atomic_load(&it->stopped) ? -2 : ring_put(g, body, n);
        pthread_mutex_unlock(&g->lock);
        if (rc != -1)
            break;
        kick(it);
        /* 10 ms: to look at the clock and the writer again */
        thread_cond_wait_until(&it->room, &it->room_lock, clock_now() + 0.01);
    }
    atomic_fetch_sub(&it->waiting, 1);
    pthread_mutex_unlock(&it->room_lock);
    return rc == 0 ? 0 : -1;
}

/* The writer freed room in a ring: wakes the emitters waiting for some. */
static void room_made(struct items *it)
{
    if (!atomic_load(&it->waiting))
        return;
    pthread_mutex_lock(&it->room_lock);
    pthread_cond_broadcast(&it->room);
    pthread_mutex_unlock(&it->room_lock);
}

static void count_dropped(struct items *it)
{
    atomic_fetch_add(&it->dropped, 1);
    if (it->m_dropped)
        metric_add(it->m_dropped, 1);
    if (!atomic_exchange(&it->warned_drop, 1))
        warn(atomic_load(&it->stopped)
                 ? "items emitted after the output was closed are dropped (and counted)"
                 : "items are being dropped: the output has taken nothing for over a second, "
                   "or fell seconds behind (a stuck disk, or a reader that stopped?); "
                   "each is counted in items_total{status=\"dropped\"}",
             "output", shown_path(it));
}

static enum items_status emit(struct items *it, int ring, const char *body, size_t n)
{
    if (it->format == ITEMS_NONE) {
        atomic_fetch_add(&it->discarded, 1);
        if (it->m_discarded)
            metric_add(it->m_discarded, 1);
        if (!atomic_exchange(&it->warned_discard, 1))
            warn("shoal.emit: no --output was given, so items are counted but not saved "
                 "(run with --output FILE.jsonl, FILE.csv, or - for stdout)",
                 NULL, NULL);
        return ITEMS_DISCARDED;
    }
    if (n > items_max_bytes(it))
        return ITEMS_TOO_BIG;
    struct ring *g = &it->rings[ring >= 0 && ring < it->nrings - 1 ? ring : it->nrings - 1];
    pthread_mutex_lock(&g->lock);
    int rc = atomic_load(&it->stopped) ? -2 : ring_put(g, body, n);
    size_t used = atomic_load_explicit(&g->tail, memory_order_relaxed) -
                  atomic_load_explicit(&g->head, memory_order_relaxed);
    pthread_mutex_unlock(&g->lock);
    if (rc == -1)
        rc = wait_for_room(it, g, body, n);
    if (rc != 0) {
        count_dropped(it);
        return ITEMS_DROPPED;
    }
    if (used > g->cap / 4)
        kick(it);
    return ITEMS_OK;
}

enum items_status items_emit(struct items *it, int ring, const char *json, size_t len)
{
    return emit(it, ring, json, len);
}

enum items_status items_emit_csv(struct items *it, int ring, int n, const char *const *cells,
                                 const size_t *lens)
{
    struct strbuf b = {0};
    csv_record(&b, n, cells, lens);
    if (b.oom) {
        free(b.p);
        return ITEMS_TOO_BIG;
    }
    enum items_status st = emit(it, ring, b.p, b.len - 1); /* emit adds the "\n" */
    free(b.p);
    return st;
}

/* ------------------------------------------------------------ CSV columns */

int items_set_columns(struct items *it, int n, const char *const *names, const size_t *lens)
{
    if (atomic_load_explicit(&it->ncolumns, memory_order_acquire) || n <= 0)
        return 0;
    pthread_mutex_lock(&it->columns_lock);
    int rc = 0;
    if (!atomic_load(&it->ncolumns)) {
        it->columns = calloc((size_t)n, sizeof *it->columns);
        it->column_lens = calloc((size_t)n, sizeof *it->column_lens);
        for (int i = 0; it->columns && it->column_lens && i < n; i++) {
            if (!(it->columns[i] = malloc(lens[i] + 1))) {
                rc = -1;
                break;
            }
            memcpy(it->columns[i], names[i], lens[i]);
            it->columns[i][lens[i]] = 0;
            it->column_lens[i] = lens[i];
        }
        if (!it->columns || !it->column_lens)
            rc = -1;
        if (rc == 0) {
            atomic_store_explicit(&it->ncolumns, n, memory_order_release);
        } else {
            for (int i = 0; it->columns && i < n; i++)
                free(it->columns[i]);
            free(it->columns);
            free(it->column_lens);
            it->columns = NULL;
            it->column_lens = NULL;
        }
    }
    pthread_mutex_unlock(&it->columns_lock);
    return rc;
}

#define HEADER_MAX (64 * 1024) /* the most of a file's header read back */
#define COLUMNS_MAX 1024

void items_adopt_header(struct items *it)
{
    if (!it || it->format != ITEMS_CSV || !it->seekable || !it->path || items_columns(it))
        return;
    int fd = open(it->path, O_RDONLY | O_CLOEXEC);
    char *buf = fd >= 0 ? malloc(HEADER_MAX) : NULL;
    ssize_t n = buf ? pread(fd, buf, HEADER_MAX, 0) : -1;
    if (fd >= 0)
        close(fd);
    if (n > 0) {
        char *names[COLUMNS_MAX];
        size_t lens[COLUMNS_MAX], used = 0;
        int k = csv_read_record(buf, (size_t)n, COLUMNS_MAX, names, lens, &used);
        if (k > 0) {
            items_set_columns(it, k, (const char *const *)names, lens);
            for (int i = 0; i < k; i++)
                free(names[i]);
        } else {
            warn("the CSV file goes on, but its first line is no header shoal can read; the "
                 "next item's keys are the columns (write to a new file to be sure)",
                 "output", it->path);
        }
    }
    free(buf);
}

int items_columns(struct items *it)
{
    return atomic_load_explicit(&it->ncolumns, memory_order_acquire);
}

void items_column(struct items *it, int i, const char **name, size_t *len)
{
    *name = it->columns[i];
    *len = it->column_lens[i];
}

void items_extra_key(struct items *it, const char *key, size_t len)
{
    atomic_fetch_add(&it->extra, 1);
    if (atomic_exchange(&it->warned_extra, 1))
        return;
    char k[200];
    snprintf(k, sizeof k, "%.*s", (int)(len < 150 ? len : 150), key);
    warn("shoal.emit: an item has a key that is not a column of the CSV header (the first "
         "item's keys); such keys are dropped and counted. Give the first item every key "
         "(shoal.json.null for an empty one), or write JSON lines",
         "field", k);
}

/* ------------------------------------------------------------ the writer */

/* Writes as much of buf as it can: the bytes written; *err is 0 when that
 * is all of them, else the errno that stopped it. A full FIFO or pipe is
 * waited for with poll, until the shutdown deadline if there is one. A
 * pipe gets PIPE_CHUNK bytes a call, so each move marks progress: a slow
 * reader is waited for, and only one that took nothing for
 * ITEMS_STUCK_MS reads as stuck to the emitters. */
#define PIPE_CHUNK (16u << 10)
static size_t write_some(struct items *it, const char *buf, size_t len, int *err)
{
    size_t done = 0;
    *err = 0;
    while (done < len) {
        size_t want = len - done;
        if (!it->seekable && want > PIPE_CHUNK)
            want = PIPE_CHUNK;
        ssize_t n = write(it->fd, buf + done, want);
        if (n > 0) {
            done += (size_t)n;
            atomic_store(&it->io_since, mono_ns());
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            int64_t dl = atomic_load(&it->deadline);
            if (dl > 0 && mono_ns() > dl) {
                *err = EAGAIN;
                break;
            }
            struct pollfd p = {.fd = it->fd, .events = POLLOUT};
            poll(&p, 1, 100);
            continue;
        }
        *err = n < 0 ? errno : EIO;
        break;
    }
    return done;
}

/* Writes the buffer. On a failure, the records wholly written count as
 * written; the one cut in the middle is removed from the end of a regular
 * file (ftruncate back to its start), so the file always ends on a whole
 * record; it and the records after it count as failed, and the first
 * failure is said once. A pipe cannot be cut: a record begun there is
 * given a last second at shutdown; a reader that went away (EPIPE) or
 * stays stuck past that sees a torn end, but no later record. */
static void flush_out(struct items *it)
{
    if (!it->out.len)
        return;
    int err;
    atomic_store(&it->io_since, mono_ns());
    size_t done = write_some(it, it->out.p, it->out.len, &err);
    if (err == EAGAIN && !it->seekable) {
        /* a pipe cannot be cut back: past the shutdown deadline, a record
         * begun still gets a second to end, should its reader wake up */
        size_t prev = 0, next = 0;
        for (size_t i = 0; i < it->nends && !next; i++) {
            if (it->ends[i].end > done)
                next = it->ends[i].end;
            else
                prev = it->ends[i].end;
        }
        if (next && done > prev) {
            atomic_store(&it->deadline, mono_ns() + 1000000000);
            done += write_some(it, it->out.p + done, next - done, &err);
            err = EAGAIN; /* what follows that record is still unwritten */
        }
    }
    atomic_store(&it->io_since, 0);
    uint64_t ok = 0, bad = 0;
    size_t boundary = 0;
    for (size_t i = 0; i < it->nends; i++) {
        if (it->ends[i].end <= done)
            boundary = it->ends[i].end;
        if (it->ends[i].item)
            it->ends[i].end <= done ? ok++ : bad++;
        else if (it->ends[i].end > done)
            it->header_done = 0; /* the CSV header did not make it: it goes first again */
    }
    if (err && done > boundary && it->seekable) {
        struct stat st;
        if (fstat(it->fd, &st) == 0 && (size_t)st.st_size >= done - boundary &&
            ftruncate(it->fd, st.st_size - (off_t)(done - boundary)) != 0)
            err = errno;
    }
    if (ok) {
        atomic_fetch_add(&it->written, ok);
        if (it->m_written)
            metric_add(it->m_written, (double)ok);
    }
    if (bad) {
        atomic_fetch_add(&it->failed, bad);
        if (it->m_failed)
            metric_add(it->m_failed, (double)bad);
    }
    if (err && !it->warned_write) {
        it->warned_write = 1;
        char msg[512];
        snprintf(msg, sizeof msg,
                 "cannot write items to %s: %s; the items that could not be written are "
                 "counted in items_total{status=\"failed\"}%s",
                 shown_path(it),
                 err == EAGAIN ? "the reader did not take them before shutdown" : strerror(err),
                 it->seekable ? " and the file ends on a whole record" : "");
        struct log_record rec;
        log_begin(&rec, LOG_ERROR, msg);
        log_emit_global(&rec);
    }
    it->out.len = 0;
    it->out.oom = 0;
    it->nends = 0;
    if (it->out.cap > 4 * FLUSH_AT) { /* after a large item: give the memory back */
        free(it->out.p);
        it->out = (struct strbuf){0};
    }
}

static void add_record(struct items *it, size_t end, int item)
{
    if (it->nends == it->ends_cap) {
        size_t cap = it->ends_cap ? it->ends_cap * 2 : 1024;
        struct rec_end *p = realloc(it->ends, cap * sizeof *p);
        if (!p)
            return; /* then flush_out counts too few: only under OOM */
        it->ends = p;
        it->ends_cap = cap;
    }
    it->ends[it->nends++] = (struct rec_end){end, item};
}

static void add_header(struct items *it)
{
    int n = items_columns(it);
    const char **names = malloc(sizeof *names * (size_t)(n > 0 ? n : 1));
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        names[i] = it->columns[i];
    csv_record(&it->out, n, names, it->column_lens);
    free(names);
    add_record(it, it->out.len, 0);
    it->header_done = 1;
}

/* Takes every record out of every ring. */
static void drain(struct items *it)
{
    for (int k = 0; k < it->nrings; k++) {
        struct ring *g = &it->rings[k];
        size_t head = atomic_load_explicit(&g->head, memory_order_relaxed);
        size_t tail = atomic_load_explicit(&g->tail, memory_order_acquire);
        unsigned taken = 0;
        while (head != tail) {
            uint32_t mark;
            uint64_t len;
            char *big = NULL;
            copy_out(g, head, &mark, sizeof mark);
            if (mark == BIG) {
                copy_out(g, head + sizeof mark, &len, sizeof len);
                copy_out(g, head + sizeof mark + sizeof len, &big, sizeof big);
            } else {
                len = mark;
            }
            if (it->format == ITEMS_CSV && !it->header_done)
                add_header(it); /* columns are set before any CSV record exists */
            if (strbuf_reserve(&it->out, len) == 0) {
                if (big)
                    memcpy(it->out.p + it->out.len, big, len);
                else
                    copy_out(g, head + sizeof mark, it->out.p + it->out.len, len);
                it->out.len += len;
                add_record(it, it->out.len, 1);
            } else {
                atomic_fetch_add(&it->failed, 1);
                if (it->m_failed)
                    metric_add(it->m_failed, 1);
                it->out.oom = 0;
            }
            if (big) {
                free(big);
                atomic_fetch_sub(&g->big_bytes, len);
                head += BIG_SIZE;
            } else {
                head += sizeof mark + len;
            }
            if (it->out.len >= FLUSH_AT)
                flush_out(it);
            /* give the room back as we go, so a waiting emitter is not held up */
            if ((++taken & 63) == 0) {
                atomic_store_explicit(&g->head, head, memory_order_release);
                room_made(it);
            }
        }
        atomic_store_explicit(&g->head, head, memory_order_release);
        if (taken)
            room_made(it);
    }
}

static void *writer_main(void *arg)
{
    struct items *it = arg;
    for (;;) {
        pthread_mutex_lock(&it->lock);
        if (!it->stopping && !atomic_load(&it->kicked))
            thread_cond_wait_until(&it->cond, &it->lock, clock_now() + TICK_MS / 1000.0);
        int stopping = it->stopping;
        pthread_mutex_unlock(&it->lock);
        atomic_store(&it->kicked, 0);
        if (stopping) {
            /* from here emits are refused; this drain sees all the rest */
            for (int i = 0; i < it->nrings; i++) {
                pthread_mutex_lock(&it->rings[i].lock);
                atomic_store(&it->stopped, 1);
                pthread_mutex_unlock(&it->rings[i].lock);
            }
        }
        drain(it);
        flush_out(it);
        if (stopping)
            break;
    }
    return NULL;
}

/* ------------------------------------------------------------ a durable queue's sink */

/* Records in bytes that hold whole ones: JSON lines end at each newline (a
 * JSON text holds none); a CSV record ends at a newline outside quotes. */
static uint64_t count_records(const struct items *it, const char *b, size_t n)
{
    uint64_t recs = 0;
    int quoted = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '"' && it->format == ITEMS_CSV)
            quoted = !quoted;
        else if (b[i] == '\n' && !quoted)
            recs++;
    }
    return recs;
}

long long items_sink_size(struct items *it)
{
    if (it->fd < 0)
        return 0;
    if (!it->seekable)
        return (long long)it->sink_bytes;
    struct stat st;
    return fstat(it->fd, &st) == 0 ? (long long)st.st_size : -1;
}

long long items_sink_write(struct items *it, const char *bytes, size_t len)
{
    if (it->fd < 0)
        return -1;
    struct strbuf head = {0};
    if (it->format == ITEMS_CSV && !it->header_done && items_sink_size(it) == 0) {
        int n = items_columns(it);
        const char **names = malloc(sizeof *names * (size_t)(n > 0 ? n : 1));
        for (int i = 0; names && i < n; i++)
            names[i] = it->columns[i];
        if (names && n > 0)
            csv_record(&head, n, names, it->column_lens);
        free(names);
    }
    long long before = items_sink_size(it);
    uint64_t recs = count_records(it, bytes, len);
    int err = 0;
    size_t done = head.len ? write_some(it, head.p, head.len, &err) : 0;
    if (!err && done == head.len)
        done += write_some(it, bytes, len, &err);
    if (err || done != head.len + len) {
        if (it->seekable && before >= 0 && ftruncate(it->fd, before) != 0)
            err = errno;
        atomic_fetch_add(&it->failed, recs);
        if (it->m_failed)
            metric_add(it->m_failed, (double)recs);
        if (!it->warned_write) {
            it->warned_write = 1;
            char msg[512];
            snprintf(msg, sizeof msg,
                     "cannot write items to %s: %s; the items that could not be written are "
                     "counted in items_total{status=\"failed\"}",
                     shown_path(it), strerror(err ? err : EIO));
            struct log_record rec;
            log_begin(&rec, LOG_ERROR, msg);
            log_emit_global(&rec);
        }
        free(head.p);
        return -1;
    }
    if (head.len)
        it->header_done = 1;
    free(head.p);
    it->sink_bytes += done;
    atomic_fetch_add(&it->written, recs);
    if (it->m_written)
        metric_add(it->m_written, (double)recs);
    return items_sink_size(it);
}

int items_sink_cut(struct items *it, long long size)
{
    if (it->fd < 0 || !it->seekable || size < 0)
        return -1;
    if (ftruncate(it->fd, size) != 0)
        return -1;
    it->header_done = size > 0;
    return 0;
}

int items_sink_flush(struct items *it)
{
    return it->fd >= 0 && it->seekable ? fdatasync(it->fd) : 0;
}

/* ------------------------------------------------------------ life */

static enum items_format format_of(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    if (!path)
        return ITEMS_NONE;
    return n >= 4 && !strcasecmp(path + n - 4, ".csv") ? ITEMS_CSV : ITEMS_JSONL;
}

/* The output's descriptor: 0, or -1 with errno set. For "-", a copy of
 * stdout, which is then pointed at stderr so nothing else lands among the
 * items (the summary, a script's print). */
static int open_output(struct items *it, const char *path, int append)
{
    if (!strcmp(path, "-")) {
        fflush(stdout);
        if ((it->fd = fcntl(1, F_DUPFD_CLOEXEC, 3)) < 0 || dup2(2, 1) < 0)
            return -1;
    } else {
        if (fs_make_parents(path) != 0)
            return -1;
        /* O_NONBLOCK matters only for a FIFO: a stuck reader then costs a
         * bounded wait at shutdown, never a hang */
        int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK | (append ? O_APPEND : O_TRUNC);
        if ((it->fd = open(path, flags, 0644)) < 0)
            return -1;
    }
    struct stat st;
    if (fstat(it->fd, &st) == 0 && S_ISREG(st.st_mode)) {
        it->seekable = 1;
        it->header_done = append && st.st_size > 0; /* that file has its header */
    }
    return 0;
}

struct items *items_new(const struct items_config *c, struct runmetrics *m, char *err,
                        size_t errlen)
{
    struct items *it = calloc(1, sizeof *it);
    if (!it)
        goto oom;
    it->fd = -1;
    it->format = format_of(c->path);
    pthread_mutex_init(&it->columns_lock, NULL);
    pthread_mutex_init(&it->lock, NULL);
    thread_cond_init(&it->cond);
    pthread_mutex_init(&it->room_lock, NULL);
    thread_cond_init(&it->room);
    it->nrings = (c->nworkers > 0 ? c->nworkers : 0) + 2;
    size_t cap = c->ring_bytes ? c->ring_bytes : DEFAULT_RING, pow = 4096;
    while (pow < cap)
        pow <<= 1;
    it->rings = aligned_alloc(64, sizeof *it->rings * (size_t)it->nrings);
    if (!it->rings)
        goto oom;
    memset(it->rings, 0, sizeof *it->rings * (size_t)it->nrings);
    for (int i = 0; i < it->nrings; i++) {
        struct ring *g = &it->rings[i];
        pthread_mutex_init(&g->lock, NULL);
        g->cap = i == it->nrings - 1 && pow > SHARED_RING ? SHARED_RING : pow;
        /* no memory for rings nobody writes to */
        if (it->format != ITEMS_NONE && !(g->buf = malloc(g->cap)))
            goto oom;
    }
    if (m) {
        const char *st[4][1] = {{"written"}, {"dropped"}, {"failed"}, {"discarded"}};
        it->m_written = metrics_series(m->items, st[0], NULL, 1);
        it->m_dropped = metrics_series(m->items, st[1], NULL, 1);
        it->m_failed = metrics_series(m->items, st[2], NULL, 1);
        it->m_discarded = metrics_series(m->items, st[3], NULL, 1);
    }
    if (it->format == ITEMS_NONE)
        return it;
    if (!(it->path = strdup(c->path)))
        goto oom;
    if (open_output(it, c->path, c->append) != 0) {
        snprintf(err, errlen, "cannot open --output %s: %s (give a writable path, or - for stdout)",
                 c->path, strerror(errno));
        goto fail;
    }
    int rc = thread_start(&it->thread, "items-writer", 0, writer_main, it);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the items writer thread: %s", strerror(rc));
        goto fail;
    }
    it->started = 1;
    return it;
oom:
    snprintf(err, errlen, "out of memory starting the items writer");
fail:
    items_shutdown(it, 0);
    return NULL;
}

enum items_format items_format(const struct items *it)
{
    return it ? it->format : ITEMS_NONE;
}

const char *items_path(const struct items *it)
{
    return it ? it->path : NULL;
}

void items_counts(const struct items *it, struct items_counts *c)
{
    memset(c, 0, sizeof *c);
    if (!it)
        return;
    c->written = atomic_load(&it->written);
    c->dropped = atomic_load(&it->dropped);
    c->failed = atomic_load(&it->failed);
    c->discarded = atomic_load(&it->discarded);
    c->extra = atomic_load(&it->extra);
}

/* Stops the writer after its last drain. 1 if it ended (or never ran). */
static int stop(struct items *it, long timeout_ms)
{
    if (it->stuck)
        return 0;
    if (!it->started)
        return 1;
    long ms = timeout_ms > 0 ? timeout_ms : 5000;
    atomic_store(&it->deadline, mono_ns() + (int64_t)ms * 1000000);
    pthread_mutex_lock(&it->lock);
    it->stopping = 1;
    pthread_cond_signal(&it->cond);
    pthread_mutex_unlock(&it->lock);
    struct timespec ts; /* pthread_timedjoin_np counts on CLOCK_REALTIME */
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000 + 2;
    if (pthread_timedjoin_np(it->thread, NULL, &ts) != 0) {
        /* inside a blocking write to stdout whose reader stopped: leave it */
        fprintf(stderr,
                "shoal: the items writer is stuck writing to %s; exiting without it "
                "(items it still held are lost)\n",
                shown_path(it));
        it->stuck = 1;
        return 0;
    }
    it->started = 0;
    return 1;
}

void items_finish(struct items *it, long timeout_ms)
{
    if (it)
        stop(it, timeout_ms);
}

void items_shutdown(struct items *it, long timeout_ms)
{
    if (!it || !stop(it, timeout_ms))
        return;
    if (it->fd >= 0)
        close(it->fd);
    for (int i = 0; it->rings && i < it->nrings; i++) {
        pthread_mutex_destroy(&it->rings[i].lock);
        free(it->rings[i].buf); /* the writer's last drain took every large record */
    }
    for (int i = 0; i < atomic_load(&it->ncolumns); i++)
        free(it->columns[i]);
    free(it->columns);
    free(it->column_lens);
    pthread_mutex_destroy(&it->columns_lock);
    pthread_mutex_destroy(&it->lock);
    pthread_cond_destroy(&it->cond);
    pthread_mutex_destroy(&it->room_lock);
    pthread_cond_destroy(&it->room);
    free(it->rings);
    free(it->out.p);
    free(it->ends);
    free(it->path);
    free(it);
}
