/* logger.h - the one structured logger of the engine and of scripts.
 *
 * A log record is a level, a message, typed fields and, inside a job, the
 * job's trace and span ids. Threads that log (workers, the producer, and
 * the engine's other threads) copy records, unformatted, into rings of
 * their own: a bounded byte ring per worker, and one shared ring (short
 * mutex) for the rest. One writer thread takes records out, redacts
 * secrets, formats each once as logfmt (or JSON with --log-format json),
 * writes them to the log file (O_APPEND, reopened on SIGHUP) and to stderr
 * (warnings and errors by default; short lines on a terminal, the file's
 * format otherwise), and hands them to the optional push
 * sinks (Loki, OTLP logs), which batch and send on threads of their own.
 *
 * Nobody waits on log I/O: a ring that is full drops the record and counts
 * it (shoal_telemetry_dropped_total{signal="logs"}). At shutdown the writer
 * writes everything accepted before it stops. */
#ifndef SHOAL_LOGGER_H
#define SHOAL_LOGGER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };
enum log_vtype { LOG_STR, LOG_INT, LOG_DBL, LOG_BOOL };

#define LOG_MAX_FIELDS 32
#define LOG_MAX_VALUE 4096 /* longer values are cut, with a marker, when written */

struct log_field {
    const char *key;
    size_t key_len;
    enum log_vtype type;
    const char *s; /* LOG_STR: len bytes, any bytes */
    size_t len;
    int64_t i; /* LOG_INT; LOG_BOOL as 0/1 */
    double d;  /* LOG_DBL */
};

/* A record. Its strings belong to whoever built it: a sink that keeps
 * anything past the call it was given the record in copies it. */
struct log_record {
    uint64_t time_ns; /* Unix time, nanoseconds */
    enum log_level level;
    int worker; /* the worker that logged, -1 for the engine's other threads */
    const char *msg;
    size_t msg_len;
    int has_ids; /* trace_id/span_id are those of the job that logged */
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t trace_flags; /* W3C flags of that context: bit 0, sampled */
    int nfields;
    struct log_field f[LOG_MAX_FIELDS];
};

/* "DEBUG", "INFO", "WARN", "ERROR" (slog's names), and OTLP's
 * SeverityNumber for each (5, 9, 13, 17). */
const char *log_level_name(enum log_level lv);
int log_level_severity(enum log_level lv);
/* "debug" / "info" / "warn" (or "warning") / "error" / "off", any case:
 * 0 and *lv, or -1. */
int log_level_parse(const char *s, enum log_level *lv);

/* Building a record: begin, then add fields (past LOG_MAX_FIELDS they are
 * ignored). Keys and strings must live until the record is emitted. */
void log_begin(struct log_record *r, enum log_level lv, const char *msg);
static inline struct log_field *log_field_(struct log_record *r, const char *key)
{
    if (r->nfields >= LOG_MAX_FIELDS)
        return NULL;
    struct log_field *f = &r->f[r->nfields++];
    f->key = key;
    f->key_len = strlen(key);
    return f;
}
static inline void log_str(struct log_record *r, const char *key, const char *s, size_t len)
{
    struct log_field *f = log_field_(r, key);
    if (f) {
        f->type = LOG_STR;
        f->s = s ? s : "";
        f->len = s ? len : 0;
    }
}
static inline void log_cstr(struct log_record *r, const char *key, const char *s)
{
    log_str(r, key, s, s ? strlen(s) : 0);
}
static inline void log_int(struct log_record *r, const char *key, int64_t v)
{
    struct log_field *f = log_field_(r, key);
    if (f) {
        f->type = LOG_INT;
        f->i = v;
    }
}
static inline void log_dbl(struct log_record *r, const char *key, double v)
{
    struct log_field *f = log_field_(r, key);
    if (f) {
        f->type = LOG_DBL;
        f->d = v;
    }
}
static inline void log_bool(struct log_record *r, const char *key, int v)
{
    struct log_field *f = log_field_(r, key);
    if (f) {
        f->type = LOG_BOOL;
        f->i = v != 0;
    }
}

/* ------------------------------------------------------------ formatting */

struct strbuf;
/* Appends rec as one line (with its '\n') in logfmt: time=<RFC3339, ms,
 * UTC> level=<name> msg=<msg> [worker=N] <fields...> [trace_id= span_id=].
 * Values are quoted and escaped when they must be (a newline, quote, '=',
 * space or control byte can never end the line or forge a field), invalid
 * UTF-8 becomes U+FFFD, values over LOG_MAX_VALUE bytes are cut and end
 * with "...". Strings are written as they are: redact before. */
void log_format_logfmt(struct strbuf *b, const struct log_record *rec);
/* The same record as one JSON object on one line: "time", "level", "msg",
 * "worker", the fields (numbers and booleans as JSON ones), "trace_id",
 * "span_id". */
void log_format_json(struct strbuf *b, const struct log_record *rec);

/* ------------------------------------------------------------ the logger */

struct registry;

struct logger_config {
    enum log_level level;        /* records below it are not taken */
    enum log_level stderr_level; /* of those, what also goes to stderr */
    enum log_format format;      /* of the file */
    const char *file;            /* NULL: no file */
    int nworkers;                /* rings 0..nworkers; ring nworkers+1 is shared */
    size_t ring_bytes;           /* per worker ring; 0: the default (1 MiB) */
    int stderr_tty;              /* stderr is a terminal: lines there take a short form
                                    and clear the progress line first; otherwise they
                                    are written as in the file, for tools to read */
    const char *instance;        /* this process's id: every line of the file (and what
                                    the sinks get) says instance=<it> after the record's
                                    fields, before trace_id; NULL: none. Formatted once,
                                    copied into each line */
};

struct logger;

/* Opens the file (directories created), starts the writer. NULL with a
 * message naming the file on failure. m may be NULL (tests). */
struct logger *logger_new(const struct logger_config *c, struct registry *m, char *err,
                          size_t errlen);
/* A backend the writer hands every record it takes (Loki, OTLP logs): the
 * logger never names one, the run wires them with logger_add_sink. */
struct log_sink_ops {
    /* The writer thread: rec and its line as the file has it (len bytes,
     * no newline). Must never block on I/O. */
    void (*add)(void *sink, const struct log_record *rec, const char *line, size_t len);
    /* Sends what is pending (within timeout_ms), stops, frees sink. */
    void (*shutdown)(void *sink, long timeout_ms);
};
#define LOGGER_MAX_SINKS 4
/* A sink fed by the writer from now on (sink NULL: nothing added). Call
 * before the first record is emitted. The logger owns it from here:
 * logger_finish shuts it down after the writer's last line. 0, or -1 when
 * LOGGER_MAX_SINKS are set already (then the caller still owns it). */
int logger_add_sink(struct logger *lg, const struct log_sink_ops *ops, void *sink);

/* 1 if records of level lv are taken: callers test this before building
 * one. Any thread. */
int logger_wants(const struct logger *lg, enum log_level lv);

/* Copies rec into ring (a worker's id, or -1 for the shared ring) for the
 * writer. Never blocks on I/O: a full ring drops the record and counts it.
 * Worker `ring` must be called only from that worker's thread. */
void logger_emit(struct logger *lg, int ring, const struct log_record *rec);

/* Asks the writer to reopen the file (SIGHUP: async-signal-safe). */
void logger_reopen(struct logger *lg);

/* Records written out, and dropped for a full ring, so far. */
uint64_t logger_lines(const struct logger *lg);
uint64_t logger_dropped(const struct logger *lg);

/* Writes everything accepted (waiting up to timeout_ms for a stuck file or
 * stderr), stops the writer, frees. NULL is a no-op. Main thread. */
void logger_shutdown(struct logger *lg, long timeout_ms);

/* logger_shutdown without the freeing, for a run that leaves threads
 * behind (a second Ctrl-C, a wedged worker): they may still log. */
void logger_finish(struct logger *lg, long timeout_ms);

/* The process's logger (set by main; NULL before and after), and a record
 * to it from any thread that is not a worker: ring -1. With no logger the
 * record goes to stderr at once, formatted as logfmt. */
extern struct logger *_Atomic logger_global;
void log_emit_global(const struct log_record *rec);

#endif
