/* logger.c - the structured logger: rings, the writer thread, formats (see
 * logger.h).
 *
 * Threads: logger_emit runs on any thread and takes only its ring's mutex
 * (a worker's ring is in practice only ever its own thread's, so that
 * mutex is uncontended; it is there so a replaced, wedged worker waking up
 * can never corrupt its successor's ring). The writer thread reads each
 * ring's tail (acquire) and advances its head (release) without the ring's
 * mutex. `wake` (lock + cond) wakes the writer when a ring passes a quarter
 * full, or at shutdown; otherwise it drains every WRITER_TICK_MS. The file
 * and the sinks belong to the writer thread.
 *
 * Order: a drain pass merges the rings by time (the oldest head record
 * first) and leaves lines stamped after it began to the next pass, which
 * its snapshot of some rings may have missed. So a line always comes after
 * every line queued before it was stamped, whatever thread wrote them
 * (done()'s line after the jobs' lines, a pushed job's after its
 * pusher's). Lines no such order relates (two threads at about the same
 * time) come out in time order too, unless a thread stalled between
 * stamping a line and queueing it (preempted on a busy machine, or waiting
 * for room in a full ring): that line comes later, by the stall. The time
 * is the first field, so `sort` puts such a file right. logger_new,
 * logger_add_sink and logger_shutdown belong to the main thread. */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "telemetry/logs/logger.h"
#include "base/hex.h"
#include "base/numtext.h"
#include "base/clock.h"
#include "base/thread.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
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

#include "base/fsutil.h"
#include "base/logfmt.h"
#include "base/logtext.h"
#include "telemetry/metrics/metrics.h"
#include "base/strbuf.h"
#include "base/utf8.h"

#define WRITER_TICK_MS 100
#define DEFAULT_RING (1u << 20)
#define SHARED_RING (256u << 10)

struct logger *_Atomic logger_global;

/* ------------------------------------------------------------ levels */

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

const char *log_level_name(enum log_level lv)
{
    return lv >= LOG_DEBUG && lv <= LOG_OFF ? level_names[lv] : "INFO";
}

int log_level_severity(enum log_level lv)
{
    static const int sev[] = {5, 9, 13, 17, 0};
    return lv >= LOG_DEBUG && lv <= LOG_OFF ? sev[lv] : 9;
}

int log_level_parse(const char *s, enum log_level *lv)
{
    static const struct {
        const char *name;
        enum log_level lv;
    } names[] = {{"debug", LOG_DEBUG},  {"info", LOG_INFO},   {"warn", LOG_WARN},
                 {"warning", LOG_WARN}, {"error", LOG_ERROR}, {"off", LOG_OFF}};
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i].name)) {
            *lv = names[i].lv;
            return 0;
        }
    return -1;
}

void log_begin(struct log_record *r, enum log_level lv, const char *msg)
{
    r->time_ns = clock_unix_ns();
    r->level = lv;
    r->worker = -1;
    r->msg = msg ? msg : "";
    r->msg_len = strlen(r->msg);
    r->has_ids = 0;
    r->trace_flags = 0;
    r->nfields = 0;
}

/* ------------------------------------------------------------ formatting */

/* "2026-11-25T14:27:10.123Z" (24 bytes) for t; the date and time part is
 * remembered per thread, since lines come many to a second. */
static void fmt_time(char out[25], uint64_t t)
{
    static __thread time_t last_sec = -1;
    static __thread char last[32];
    time_t sec = (time_t)(t / 1000000000u);
    if (sec != last_sec) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(last, sizeof last, "%Y-%m-%dT%H:%M:%S", &tm);
        last_sec = sec;
    }
    unsigned ms = (unsigned)(t / 1000000u % 1000u);
    memcpy(out, last, 19);
    out[19] = '.';
    out[20] = (char)('0' + ms / 100);
    out[21] = (char)('0' + ms / 10 % 10);
    out[22] = (char)('0' + ms % 10);
    out[23] = 'Z';
    out[24] = 0;
}

/* Numbers of a human scale (durations, sizes) in fixed point with up to
 * nine decimals and no trailing zeros (0.0123, 2.5, 0.000041491); the rest
 * through %.9g. json: non-finite numbers are not JSON, so they are null. */
static size_t fmt_double(char *out, double d, int json)
{
    if (!isfinite(d))
        return (size_t)sprintf(out, "%s",
                               json       ? "null"
                               : isnan(d) ? "NaN"
                               : d > 0    ? "+Inf"
                                          : "-Inf");
    double a = fabs(d);
    if (d == 0)
        return (size_t)sprintf(out, "0");
    if (a < 1e-9 || a >= 1e9)
        return (size_t)sprintf(out, "%.9g", d);
    uint64_t nanos = (uint64_t)(a * 1e9 + 0.5);
    size_t o = 0;
    if (d < 0)
        out[o++] = '-';
    o += numtext_u64(out + o, nanos / 1000000000u);
    unsigned frac = (unsigned)(nanos % 1000000000u);
    if (frac) {
        out[o++] = '.';
        char digits[9];
        for (int i = 8; i >= 0; i--) {
            digits[i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        int last = 8;
        while (digits[last] == '0')
            last--;
        memcpy(out + o, digits, (size_t)last + 1);
        o += (size_t)last + 1;
    }
    return o;
}

/* A key as logfmt allows it: bytes that would split or forge a field
 * become '_'; an empty key is "_". */
static void add_key_logfmt(struct strbuf *b, const char *k, size_t n)
{
    if (n == 0) {
        strbuf_add(b, "_", 1);
        return;
    }
    if (n > 128)
        n = 128;
    if (strbuf_reserve(b, n + 1) != 0)
        return;
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        o[i] = (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) ? '_' : (char)c;
    }
    b->len += n;
    b->p[b->len] = 0;
}

/* Room for a value of n bytes: all of it escaped (at most 4 bytes a byte in
 * logfmt and JSON alike: \u00NN) when it is within LOG_MAX_VALUE, else about
 * LOG_MAX_VALUE bytes of output, which cuts it and adds the marker. */
static size_t value_room(size_t n, size_t per_byte)
{
    return n <= LOG_MAX_VALUE ? n * per_byte + 8 : LOG_MAX_VALUE + 8;
}

static void add_value_logfmt(struct strbuf *b, const char *s, size_t n)
{
    size_t room = value_room(n, 6);
    if (strbuf_reserve(b, room) != 0)
        return;
    b->len += logfmt_value(b->p + b->len, room, s, n);
}

static void add_json_string(struct strbuf *b, const char *s, size_t n)
{
    size_t room = value_room(n, 6);
    if (strbuf_reserve(b, room) != 0)
        return;
    b->len += logtext_json(b->p + b->len, room, s, n);
}

static void add_number(struct strbuf *b, const struct log_field *f, int json)
{
    char num[40];
    size_t n;
    if (f->type == LOG_INT)
        n = numtext_i64(num, f->i);
    else if (f->type == LOG_DBL)
        n = fmt_double(num, f->d, json);
    else
        n = (size_t)sprintf(num, "%s", f->i ? "true" : "false");
    strbuf_add(b, num, n);
}

static void add_ids(struct strbuf *b, const struct log_record *r, int json)
{
    char t[33], s[17];
    hex_encode(r->trace_id, 16, t);
    hex_encode(r->span_id, 8, s);
    if (json)
        strbuf_printf(b, ",\"trace_id\":\"%s\",\"span_id\":\"%s\"", t, s);
    else
        strbuf_printf(b, " trace_id=%s span_id=%s", t, s);
}

/* What tells logfmt and JSON lines apart: the text around each part and
 * how keys and strings are written. The parts come in one order. */
struct line_style {
    const char *time, *level, *msg, *worker, *field_sep, *key_sep, *end;
    void (*key)(struct strbuf *b, const char *k, size_t n);
    void (*str)(struct strbuf *b, const char *s, size_t n);
    int json;
};

static void add_key_json(struct strbuf *b, const char *k, size_t n)
{
    add_json_string(b, k, n > 128 ? 128 : n);
}

static const struct line_style logfmt_style = {
    "time=", " level=", " msg=", " worker=", " ", "=", "\n", add_key_logfmt, add_value_logfmt, 0,
};
static const struct line_style json_style = {
    "{\"time\":\"",
    "\",\"level\":\"",
    "\",\"msg\":",
    ",\"worker\":",
    ",",
    ":",
    "}\n",
    add_key_json,
    add_json_string,
    1,
};

/* fixed: fields every line of this process has (the instance), formatted
 * once in st's form, each with its leading separator; NULL for none. */
static void format_line(struct strbuf *b, const struct log_record *r, const struct line_style *st,
                        const struct strbuf *fixed)
{
    char tm[25], num[24];
    fmt_time(tm, r->time_ns);
    strbuf_str(b, st->time);
    strbuf_add(b, tm, 24);
    strbuf_str(b, st->level);
    strbuf_str(b, log_level_name(r->level));
    strbuf_str(b, st->msg);
    st->str(b, r->msg, r->msg_len);
    if (r->worker >= 0) {
        strbuf_str(b, st->worker);
        strbuf_add(b, num, numtext_i64(num, r->worker));
    }
    for (int i = 0; i < r->nfields; i++) {
        const struct log_field *f = &r->f[i];
        strbuf_str(b, st->field_sep);
        st->key(b, f->key, f->key_len);
        strbuf_str(b, st->key_sep);
        if (f->type == LOG_STR)
            st->str(b, f->s, f->len);
        else
            add_number(b, f, st->json);
    }
    if (fixed && fixed->len)
        strbuf_add(b, fixed->p, fixed->len);
    if (r->has_ids)
        add_ids(b, r, st->json);
    strbuf_str(b, st->end);
}

void log_format_logfmt(struct strbuf *b, const struct log_record *r)
{
    format_line(b, r, &logfmt_style, NULL);
}

void log_format_json(struct strbuf *b, const struct log_record *r)
{
    format_line(b, r, &json_style, NULL);
}

/* For a person at a terminal: "14:27:10 WARN attempt failed; will retry
 * job.id=3 ...", no date and no ids; the message with control bytes shown
 * as spaces. */
static void format_human(struct strbuf *b, const struct log_record *r)
{
    char tm[25];
    fmt_time(tm, r->time_ns);
    strbuf_printf(b, "shoal: %.8s %s ", tm + 11, log_level_name(r->level));
    size_t n = r->msg_len > LOG_MAX_VALUE ? LOG_MAX_VALUE : r->msg_len;
    if (strbuf_reserve(b, utf8_clean_size(r->msg, n)) == 0) {
        size_t start = b->len;
        b->len += utf8_clean(b->p + b->len, r->msg, n);
        for (size_t i = start; i < b->len; i++)
            if ((unsigned char)b->p[i] < 0x20 || b->p[i] == 0x7f)
                b->p[i] = ' ';
        b->p[b->len] = 0;
    }
    if (r->worker >= 0)
        strbuf_printf(b, "  worker=%d", r->worker);
    for (int i = 0; i < r->nfields; i++) {
        const struct log_field *f = &r->f[i];
        strbuf_add(b, " ", 1);
        add_key_logfmt(b, f->key, f->key_len);
        strbuf_add(b, "=", 1);
        if (f->type == LOG_STR)
            add_value_logfmt(b, f->s, f->len);
        else
            add_number(b, f, 0);
    }
    strbuf_add(b, "\n", 1);
}

/* ------------------------------------------------------------ rings */

/* A record in a ring: this header, the message, then per field a struct
 * wfield, its key and its value (string bytes, or 8 bytes of number).
 * Records are padded to 8 bytes and never wrap: one that does not fit
 * before the end of the buffer starts again at its beginning, after a
 * WRAP mark (or a tail too short to hold one). */
struct whead {
    uint32_t len; /* the whole record, padded; WRAP: skip to the start */
    uint8_t level, has_ids, nfields, trace_flags;
    int32_t worker;
    uint32_t msg_len;
    uint64_t time_ns;
    uint8_t trace_id[16], span_id[8];
};
struct wfield {
    uint16_t key_len;
    uint8_t type, pad;
    uint32_t len; /* string bytes, 8 for numbers */
};
#define WRAP 0xffffffffu
#define PAD8(n) (((n) + 7u) & ~(size_t)7u)

struct ring {
    pthread_mutex_t lock; /* producers */
    size_t cap;           /* a power of two */
    char *buf;
    _Atomic size_t tail; /* written up to (producers, under lock) */
    _Atomic size_t head; /* read up to (the writer) */
    _Atomic uint64_t dropped;
} __attribute__((aligned(64)));

/* A ring during a drain pass: its next record and where the pass stops. */
struct cursor {
    struct ring *g;
    size_t head, tail;
    uint64_t time_ns; /* of the record at head */
    int order;        /* ties: the shared ring first, then by worker */
};

struct logger {
    struct logger_config cfg;
    enum log_level min_level; /* below it no destination takes a record */
    char *path;
    int fd; /* the file, or -1 */
    struct ring *rings;
    int nrings;
    struct {
        const struct log_sink_ops *ops;
        void *sink;
    } sinks[LOGGER_MAX_SINKS];
    int nsinks;
    struct metric_series *written, *dropped, *failed;
    _Atomic int reopen;
    _Atomic int kicked;
    _Atomic int stopped;      /* the writer's last drain began: emit goes to stderr */
    _Atomic int64_t io_since; /* the writer is in a write since (mono ns), or 0 */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping; /* under lock */
    pthread_t thread;
    _Atomic int64_t deadline; /* shutdown: give up writing after (mono ns), or 0 */
    _Atomic uint64_t lines;
    int warned_write; /* writer thread */
    /* writer scratch */
    struct strbuf out, err, line;
    struct strbuf fixed; /* " instance=..." as the file's format has it: made once */
    uint64_t out_lines;  /* in out */
    char *scratch;
    size_t scratch_cap;
    struct cursor *cursors; /* nrings of them */
    struct cursor **heap;   /* by time of the head record */
};

static size_t value_len(const struct log_field *f)
{
    if (f->type != LOG_STR)
        return 8;
    return f->len > LOG_MAX_VALUE ? LOG_MAX_VALUE + 1 : f->len;
}

static size_t record_size(const struct log_record *r)
{
    size_t n = sizeof(struct whead) + (r->msg_len > LOG_MAX_VALUE ? LOG_MAX_VALUE + 1 : r->msg_len);
    for (int i = 0; i < r->nfields; i++) {
        size_t k = r->f[i].key_len > 128 ? 128 : r->f[i].key_len;
        n += sizeof(struct wfield) + k + value_len(&r->f[i]);
    }
    return PAD8(n);
}

static void record_write(char *p, size_t size, const struct log_record *r)
{
    struct whead h = {
        .len = (uint32_t)size,
        .level = (uint8_t)r->level,
        .has_ids = (uint8_t)(r->has_ids != 0),
        .nfields = (uint8_t)r->nfields,
        .trace_flags = r->trace_flags,
        .worker = r->worker,
        .msg_len = (uint32_t)(r->msg_len > LOG_MAX_VALUE ? LOG_MAX_VALUE + 1 : r->msg_len),
        .time_ns = r->time_ns,
    };
    if (r->has_ids) {
        memcpy(h.trace_id, r->trace_id, 16);
        memcpy(h.span_id, r->span_id, 8);
    }
    memcpy(p, &h, sizeof h);
    char *o = p + sizeof h;
    memcpy(o, r->msg, h.msg_len);
    o += h.msg_len;
    for (int i = 0; i < r->nfields; i++) {
        const struct log_field *f = &r->f[i];
        struct wfield wf = {
            .key_len = (uint16_t)(f->key_len > 128 ? 128 : f->key_len),
            .type = (uint8_t)f->type,
            .len = (uint32_t)value_len(f),
        };
        memcpy(o, &wf, sizeof wf);
        o += sizeof wf;
        memcpy(o, f->key, wf.key_len);
        o += wf.key_len;
        if (f->type == LOG_STR)
            memcpy(o, f->s, wf.len);
        else if (f->type == LOG_DBL)
            memcpy(o, &f->d, 8);
        else
            memcpy(o, &f->i, 8);
        o += wf.len;
    }
}

/* Reads the record at p back (pointers into the ring). */
static void record_read(const char *p, struct log_record *r)
{
    struct whead h;
    memcpy(&h, p, sizeof h);
    r->time_ns = h.time_ns;
    r->level = (enum log_level)h.level;
    r->worker = h.worker;
    r->has_ids = h.has_ids;
    r->trace_flags = h.trace_flags;
    memcpy(r->trace_id, h.trace_id, 16);
    memcpy(r->span_id, h.span_id, 8);
    const char *o = p + sizeof h;
    r->msg = o;
    r->msg_len = h.msg_len;
    o += h.msg_len;
    r->nfields = h.nfields;
    for (int i = 0; i < h.nfields; i++) {
        struct wfield wf;
        memcpy(&wf, o, sizeof wf);
        o += sizeof wf;
        struct log_field *f = &r->f[i];
        f->key = o;
        f->key_len = wf.key_len;
        o += wf.key_len;
        f->type = (enum log_vtype)wf.type;
        if (wf.type == LOG_STR) {
            f->s = o;
            f->len = wf.len;
        } else if (wf.type == LOG_DBL) {
            memcpy(&f->d, o, 8);
        } else {
            memcpy(&f->i, o, 8);
        }
        o += wf.len;
    }
}

/* 0, or -1 when the ring has no room (the record is dropped). Under the
 * ring's lock. */
static int ring_put(struct ring *g, const struct log_record *r)
{
    size_t size = record_size(r);
    size_t tail = atomic_load_explicit(&g->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&g->head, memory_order_acquire);
    size_t off = tail & (g->cap - 1), skip = 0;
    if (g->cap - off < size)
        skip = g->cap - off; /* starts again at the beginning */
    if (size > g->cap / 2 || tail + skip + size - head > g->cap)
        return -1;
    if (skip) {
        uint32_t mark = WRAP;
        memcpy(g->buf + off, &mark, sizeof mark);
        off = 0;
    }
    record_write(g->buf + off, size, r);
    atomic_store_explicit(&g->tail, tail + skip + size, memory_order_release);
    return 0;
}

/* ------------------------------------------------------------ emitting */

int logger_wants(const struct logger *lg, enum log_level lv)
{
    return lg && lv >= lg->min_level && lv != LOG_OFF;
}

/* The lowest level some destination takes: with no file and no sink, only
 * what stderr shows is worth a record. */
static void set_min_level(struct logger *lg)
{
    enum log_level to_dest = lg->fd >= 0 || lg->nsinks ? lg->cfg.level : LOG_OFF;
    enum log_level m = to_dest < lg->cfg.stderr_level ? to_dest : lg->cfg.stderr_level;
    lg->min_level = m > lg->cfg.level ? m : lg->cfg.level;
}

static void emit_stderr(const struct log_record *rec)
{
    struct strbuf b = {0};
    log_format_logfmt(&b, rec);
    if (!b.oom) {
        ssize_t w = write(2, b.p, b.len);
        (void)w;
    }
    free(b.p);
}

static void kick(struct logger *lg)
{
    if (atomic_exchange(&lg->kicked, 1))
        return;
    pthread_mutex_lock(&lg->lock);
    pthread_cond_signal(&lg->cond);
    pthread_mutex_unlock(&lg->lock);
}

/* A full ring while the writer is busy formatting (not stuck writing):
 * the machine is short of CPU, not the disk slow. Then the emitter waits a
 * little for room (at most ROOM_WAIT_NS in short naps, letting the writer
 * run) rather than lose lines to a momentary race. A writer inside a write
 * for longer than IO_STUCK_NS is waiting on I/O: no wait, the line drops.
 * IO_STUCK_NS is well above a scheduler slice, so a writer merely
 * preempted in the middle of a write does not count as stuck. */
#define ROOM_WAIT_NS 1000000000LL
#define IO_STUCK_NS 200000000LL
static int64_t mono_ns(void)
{
    return (int64_t)(clock_now() * 1e9);
}

static int wait_for_room(struct logger *lg, struct ring *g, const struct log_record *rec)
{
    int64_t start = mono_ns();
    for (;;) {
        int64_t now = mono_ns(), io = atomic_load(&lg->io_since);
        if (now - start > ROOM_WAIT_NS || (io && now - io > IO_STUCK_NS) ||
            atomic_load(&lg->stopped))
            return -1;
        kick(lg);
        struct timespec nap = {0, 50000};
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&g->lock);
        int rc = atomic_load(&lg->stopped) ? -1 : ring_put(g, rec);
        pthread_mutex_unlock(&g->lock);
        if (rc == 0)
            return 0;
    }
}

void logger_emit(struct logger *lg, int ring, const struct log_record *rec)
{
    if (!lg)
        return;
    struct ring *g = &lg->rings[ring >= 0 && ring < lg->nrings - 1 ? ring : lg->nrings - 1];
    pthread_mutex_lock(&g->lock);
    if (atomic_load(&lg->stopped)) {
        /* the writer has taken its last look: say it here rather than lose it */
        pthread_mutex_unlock(&g->lock);
        if (rec->level >= lg->cfg.stderr_level)
            emit_stderr(rec);
        return;
    }
    int rc = ring_put(g, rec);
    size_t used = atomic_load_explicit(&g->tail, memory_order_relaxed) -
                  atomic_load_explicit(&g->head, memory_order_relaxed);
    pthread_mutex_unlock(&g->lock);
    if (rc != 0 && record_size(rec) <= g->cap / 2)
        rc = wait_for_room(lg, g, rec);
    if (rc != 0) {
        atomic_fetch_add_explicit(&g->dropped, 1, memory_order_relaxed);
        if (lg->dropped)
            metric_add(lg->dropped, 1);
        return;
    }
    if (used > g->cap / 4 || rec->level >= LOG_WARN)
        kick(lg);
}

void log_emit_global(const struct log_record *rec)
{
    struct logger *lg = logger_global;
    if (lg) {
        if (logger_wants(lg, rec->level))
            logger_emit(lg, -1, rec);
        return;
    }
    emit_stderr(rec);
}

void logger_reopen(struct logger *lg)
{
    if (lg)
        atomic_store(&lg->reopen, 1);
}

uint64_t logger_dropped(const struct logger *lg)
{
    uint64_t n = 0;
    for (int i = 0; lg && i < lg->nrings; i++)
        n += atomic_load(&lg->rings[i].dropped);
    return n;
}

/* ------------------------------------------------------------ the writer */

static int open_file(const char *path)
{
    /* O_NONBLOCK matters only for a pipe or FIFO: a stuck reader then
     * costs the writer a bounded wait at shutdown, never a hang */
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0644);
}

/* Writes all of buf to fd, waiting while the fd is full until deadline
 * (0: as long as it takes, but looking at the stop flag). 0, or -1. */
static int write_all(struct logger *lg, int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            int64_t dl = atomic_load(&lg->deadline);
            if (dl > 0 && mono_ns() > dl)
                return -1;
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 100);
            continue;
        }
        return -1;
    }
    return 0;
}

static void warn_write(struct logger *lg, const char *what)
{
    if (lg->warned_write)
        return;
    lg->warned_write = 1;
    char line[4400];
    int n = snprintf(line, sizeof line,
                     "shoal: cannot write the log file %s: %s (lines are "
                     "dropped and counted until it works again)\n",
                     lg->path, what);
    ssize_t w = write(2, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
    (void)w;
}

static void flush_out(struct logger *lg)
{
    if (lg->err.len) {
        ssize_t w = write(2, lg->err.p, lg->err.len);
        (void)w;
        lg->err.len = 0;
    }
    if (!lg->out.len)
        return;
    atomic_store(&lg->io_since, mono_ns());
    int rc = write_all(lg, lg->fd, lg->out.p, lg->out.len);
    int e = errno;
    atomic_store(&lg->io_since, 0);
    if (rc == 0) {
        if (lg->written)
            metric_add(lg->written, (double)lg->out_lines);
    } else {
        if (lg->failed)
            metric_add(lg->failed, (double)lg->out_lines);
        warn_write(lg, e == EAGAIN ? "the reader is not keeping up" : strerror(e));
    }
    lg->out.len = 0;
    lg->out.oom = 0;
    lg->out_lines = 0;
}

static void do_reopen(struct logger *lg)
{
    if (!lg->path)
        return;
    flush_out(lg);
    fs_make_parents(lg->path);
    int fd = open_file(lg->path);
    if (fd < 0) {
        warn_write(lg, strerror(errno));
        return;
    }
    if (lg->fd >= 0)
        close(lg->fd);
    lg->fd = fd;
    lg->warned_write = 0;
}

/* Redacts the record's strings into the writer's scratch area: secrets in
 * URLs and key=value text, and the whole value of a field named like a
 * secret (token, password, ...). */
static void redact(struct logger *lg, struct log_record *r)
{
    size_t need = LOGTEXT_REDACT_ROOM(r->msg_len);
    for (int i = 0; i < r->nfields; i++)
        if (r->f[i].type == LOG_STR)
            need += LOGTEXT_REDACT_ROOM(r->f[i].len);
    if (need > lg->scratch_cap) {
        char *p = realloc(lg->scratch, need);
        if (!p) {
            r->msg_len = 0; /* rather than risk a secret */
            r->nfields = 0;
            return;
        }
        lg->scratch = p;
        lg->scratch_cap = need;
    }
    char *o = lg->scratch;
    size_t n = logtext_redact(o, LOGTEXT_REDACT_ROOM(r->msg_len), r->msg, r->msg_len);
    r->msg = o;
    r->msg_len = n;
    o += n + 1;
    for (int i = 0; i < r->nfields; i++) {
        struct log_field *f = &r->f[i];
        if (f->type != LOG_STR)
            continue;
        if (logtext_secret_name(f->key, f->key_len)) {
            f->s = "REDACTED";
            f->len = 8;
            continue;
        }
        n = logtext_redact(o, LOGTEXT_REDACT_ROOM(f->len), f->s, f->len);
        f->s = o;
        f->len = n;
        o += n + 1;
    }
}

static void handle_record(struct logger *lg, struct log_record *r)
{
    redact(lg, r);
    lg->line.len = 0;
    format_line(&lg->line, r, lg->cfg.format == LOG_FORMAT_JSON ? &json_style : &logfmt_style,
                &lg->fixed);
    if (lg->line.oom) {
        lg->line.oom = 0;
        return;
    }
    if (lg->fd >= 0) {
        strbuf_add(&lg->out, lg->line.p, lg->line.len);
        lg->out_lines++;
        if (lg->out.len >= 256u << 10)
            flush_out(lg);
    }
    if (r->level >= lg->cfg.stderr_level) {
        if (lg->cfg.stderr_tty) {
            strbuf_add(&lg->err, "\r\033[K", 4);
            format_human(&lg->err, r);
        } else {
            strbuf_add(&lg->err, lg->line.p, lg->line.len);
        }
        if (lg->err.len >= 64u << 10)
            flush_out(lg);
    }
    for (int i = 0; i < lg->nsinks; i++)
        lg->sinks[i].ops->add(lg->sinks[i].sink, r, lg->line.p, lg->line.len - 1);
    atomic_fetch_add_explicit(&lg->lines, 1, memory_order_relaxed);
}

/* Moves c past a WRAP mark to its next record and reads its time.
 * Returns 0 when the pass has nothing more from this ring: it is empty, or
 * its next record was stamped at or after cut (less than a second after:
 * a clock that jumped back must not hold lines for long). */
static int cursor_next(struct cursor *c, uint64_t cut)
{
    struct ring *g = c->g;
    while (c->head != c->tail) {
        size_t off = c->head & (g->cap - 1);
        uint32_t len = WRAP;
        if (g->cap - off >= sizeof len)
            memcpy(&len, g->buf + off, sizeof len);
        if (len == WRAP) {
            c->head += g->cap - off;
            continue;
        }
        memcpy(&c->time_ns, g->buf + off + offsetof(struct whead, time_ns), sizeof c->time_ns);
        if (c->time_ns >= cut && c->time_ns - cut < 1000000000u)
            break;
        return 1;
    }
    atomic_store_explicit(&g->head, c->head, memory_order_release);
    return 0;
}

static int before(const struct cursor *a, const struct cursor *b)
{
    return a->time_ns < b->time_ns || (a->time_ns == b->time_ns && a->order < b->order);
}

static void sift_down(struct cursor **h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < n && before(h[l], h[m]))
            m = l;
        if (l + 1 < n && before(h[l + 1], h[m]))
            m = l + 1;
        if (m == i)
            return;
        struct cursor *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Takes the records out of every ring, oldest first (a k-way merge of the
 * rings by time): all of them when last, else those stamped before the
 * pass began. Returns how many. */
static size_t drain(struct logger *lg, int last)
{
    size_t total = 0;
    struct log_record r;
    int n = 0;
    uint64_t cut = last ? UINT64_MAX : (uint64_t)clock_unix_ns();
    for (int k = 0; k < lg->nrings; k++) {
        struct cursor *c = &lg->cursors[k];
        c->g = &lg->rings[k];
        c->order = (k + 1) % lg->nrings; /* the shared ring is the last */
        c->head = atomic_load_explicit(&c->g->head, memory_order_relaxed);
        c->tail = atomic_load_explicit(&c->g->tail, memory_order_acquire);
        if (cursor_next(c, cut))
            lg->heap[n++] = c;
    }
    for (int i = n / 2 - 1; i >= 0; i--)
        sift_down(lg->heap, n, i);
    while (n > 0) {
        struct cursor *c = lg->heap[0];
        const char *p = c->g->buf + (c->head & (c->g->cap - 1));
        uint32_t len;
        memcpy(&len, p, sizeof len);
        record_read(p, &r);
        handle_record(lg, &r);
        c->head += len;
        total++;
        /* give the room back as we go, so a busy worker is not held up */
        if ((total & 63) == 0)
            atomic_store_explicit(&c->g->head, c->head, memory_order_release);
        if (!cursor_next(c, cut))
            lg->heap[0] = lg->heap[--n];
        sift_down(lg->heap, n, 0);
    }
    return total;
}

static void *writer_main(void *arg)
{
    struct logger *lg = arg;
    for (;;) {
        pthread_mutex_lock(&lg->lock);
        if (!lg->stopping && !atomic_load(&lg->kicked))
            thread_cond_wait_until(&lg->cond, &lg->lock, clock_now() + WRITER_TICK_MS / 1000.0);
        int stopping = lg->stopping;
        pthread_mutex_unlock(&lg->lock);
        atomic_store(&lg->kicked, 0);
        if (atomic_exchange(&lg->reopen, 0))
            do_reopen(lg);
        if (stopping) {
            /* from here emit goes to stderr; this drain sees all the rest */
            for (int i = 0; i < lg->nrings; i++) {
                pthread_mutex_lock(&lg->rings[i].lock);
                atomic_store(&lg->stopped, 1);
                pthread_mutex_unlock(&lg->rings[i].lock);
            }
        }
        drain(lg, stopping);
        flush_out(lg);
        if (stopping)
            break;
    }
    return NULL;
}

/* ------------------------------------------------------------ life */

/* Appends one field as every line of the given format writes it, with its
 * separator: the process's constants cost a copy per line, not a format. */
static int fixed_field(struct strbuf *b, enum log_format fmt, const char *key, const char *value)
{
    const struct line_style *st = fmt == LOG_FORMAT_JSON ? &json_style : &logfmt_style;
    strbuf_str(b, st->field_sep);
    st->key(b, key, strlen(key));
    strbuf_str(b, st->key_sep);
    st->str(b, value, strlen(value));
    return b->oom ? -1 : 0;
}

struct logger *logger_new(const struct logger_config *c, struct registry *m, char *err,
                          size_t errlen)
{
    struct logger *lg = calloc(1, sizeof *lg);
    if (!lg)
        goto oom;
    lg->cfg = *c;
    lg->fd = -1;
    lg->nrings = (c->nworkers > 0 ? c->nworkers : 0) + 2;
    size_t cap = c->ring_bytes ? c->ring_bytes : DEFAULT_RING;
    size_t pow = 4096;
    while (pow < cap)
        pow <<= 1;
    lg->rings = aligned_alloc(64, sizeof *lg->rings * (size_t)lg->nrings);
    if (!lg->rings)
        goto oom;
    memset(lg->rings, 0, sizeof *lg->rings * (size_t)lg->nrings);
    lg->cursors = calloc((size_t)lg->nrings, sizeof *lg->cursors);
    lg->heap = calloc((size_t)lg->nrings, sizeof *lg->heap);
    if (!lg->cursors || !lg->heap)
        goto oom;
    for (int i = 0; i < lg->nrings; i++) {
        struct ring *g = &lg->rings[i];
        pthread_mutex_init(&g->lock, NULL);
        int shared = i == lg->nrings - 1;
        g->cap = shared && pow > SHARED_RING ? SHARED_RING : pow;
        g->buf = malloc(g->cap);
        if (!g->buf)
            goto oom;
    }
    if (c->file && *c->file) {
        lg->path = strdup(c->file);
        if (!lg->path)
            goto oom;
        if (fs_make_parents(c->file) != 0 || (lg->fd = open_file(c->file)) < 0) {
            snprintf(err, errlen,
                     "cannot open the log file %s: %s (set --log-file to a "
                     "writable path, or off)",
                     c->file, strerror(errno));
            goto fail;
        }
    }
    if (c->instance && fixed_field(&lg->fixed, c->format, "instance", c->instance) != 0)
        goto oom;
    struct telemetry_counts tc = metrics_telemetry_counts(m, "logs");
    lg->written = tc.exported;
    lg->dropped = tc.dropped;
    lg->failed = tc.failed;
    set_min_level(lg);
    pthread_mutex_init(&lg->lock, NULL);
    thread_cond_init(&lg->cond);
    int rc = thread_start(&lg->thread, "log-writer", 0, writer_main, lg);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the log writer thread: %s", strerror(rc));
        goto fail;
    }
    return lg;
oom:
    snprintf(err, errlen, "out of memory starting the logger");
fail:
    if (lg) {
        if (lg->fd >= 0)
            close(lg->fd);
        for (int i = 0; lg->rings && i < lg->nrings; i++) {
            pthread_mutex_destroy(&lg->rings[i].lock);
            free(lg->rings[i].buf);
        }
        free(lg->rings);
        free(lg->cursors);
        free(lg->heap);
        free(lg->path);
        free(lg->fixed.p);
        free(lg);
    }
    return NULL;
}

int logger_add_sink(struct logger *lg, const struct log_sink_ops *ops, void *sink)
{
    if (!sink)
        return 0;
    if (lg->nsinks == LOGGER_MAX_SINKS)
        return -1;
    lg->sinks[lg->nsinks].ops = ops;
    lg->sinks[lg->nsinks].sink = sink;
    lg->nsinks++;
    return 0;
}

uint64_t logger_lines(const struct logger *lg)
{
    return lg ? atomic_load(&lg->lines) : 0;
}

/* Stops the writer and the sinks. 1 if the writer thread ended. */
static int stop(struct logger *lg, long timeout_ms)
{
    atomic_store(&lg->deadline,
                 mono_ns() + (int64_t)(timeout_ms > 0 ? timeout_ms : 5000) * 1000000);
    pthread_mutex_lock(&lg->lock);
    lg->stopping = 1;
    pthread_cond_signal(&lg->cond);
    pthread_mutex_unlock(&lg->lock);
    struct timespec ts; /* pthread_timedjoin_np counts on CLOCK_REALTIME */
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (timeout_ms > 0 ? timeout_ms : 5000) / 1000 + 2;
    int joined = pthread_timedjoin_np(lg->thread, NULL, &ts) == 0;
    if (logger_global == lg)
        logger_global = NULL;
    if (!joined) {
        /* stuck writing to stderr: leave it, and everything it may touch
         * (the sinks too: it may still hand them a record) */
        ssize_t w = write(2, "shoal: the log writer is stuck; exiting without it\n", 51);
        (void)w;
        return 0;
    }
    /* the sinks last: their own trouble now goes straight to stderr */
    for (int i = 0; i < lg->nsinks; i++)
        lg->sinks[i].ops->shutdown(lg->sinks[i].sink, timeout_ms);
    return 1;
}

void logger_finish(struct logger *lg, long timeout_ms)
{
    if (lg)
        stop(lg, timeout_ms);
}

void logger_shutdown(struct logger *lg, long timeout_ms)
{
    if (!lg || !stop(lg, timeout_ms))
        return;
    if (lg->fd >= 0)
        close(lg->fd);
    for (int i = 0; i < lg->nrings; i++) {
        pthread_mutex_destroy(&lg->rings[i].lock);
        free(lg->rings[i].buf);
    }
    pthread_mutex_destroy(&lg->lock);
    pthread_cond_destroy(&lg->cond);
    free(lg->rings);
    free(lg->cursors);
    free(lg->heap);
    free(lg->out.p);
    free(lg->err.p);
    free(lg->line.p);
    free(lg->fixed.p);
    free(lg->scratch);
    free(lg->path);
    free(lg);
}
