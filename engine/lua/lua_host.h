/* lua_host.h - what a Lua state asks of the engine that hosts it.
 *
 * The other side of the Lua boundary from lua_job.h: there the host drives
 * a state; here the state's C primitives (shoal.http, sleep, push, emit,
 * log, trace, job) reach the host. A state holds a struct lj_host (a table
 * of functions, core/lua_host.c fills it for the workers) and an opaque
 * `host` pointer handed back to every call (lj_config); lua/ sees nothing
 * else of the engine, so adding a primitive touches this header, its
 * implementation and the Lua API file that calls it.
 *
 * Every call below runs on the state's own thread. Those taking `host` run
 * inside a resume of slot's coroutine (a job's, produce()'s or done()'s)
 * and are made only when the state has a host (lj_config.host != NULL):
 * `shoal check` and unit tests load states that do no I/O. The two
 * without it, watch and profile_sample, describe the calling thread and may
 * be called with no host; watch is async-signal-safe. */
#ifndef SHOAL_LUA_HOST_H
#define SHOAL_LUA_HOST_H

#include <stddef.h>
#include <stdint.h>

struct log_record;

/* shoal.http: what the script asked for (the host adds trace headers). */
struct lj_http_request {
    const char *method; /* upper case */
    const char *url;
    const char *const *headers; /* "Name: value" lines */
    int nheaders;
    const char *body; /* NULL for none */
    size_t body_len;
    double timeout; /* seconds; 0 = the attempt's */
    int follow, insecure, compressed;
    const char *session; /* the cookie jar it shares, or NULL: none */
    size_t session_len;
    const char *proxy; /* its proxy URL, or NULL: --proxy-list's, or none */
};

/* Its outcome, handed to lj_resume_http (lua_job.h). */
struct lj_http_result {
    long status; /* 0 on transport failure */
    const char *body;
    size_t body_len;
    const char *url;     /* after redirects */
    double elapsed;      /* seconds */
    const char *headers; /* raw header block of the final response */
    size_t headers_len;
    const char *error; /* set when status == 0 */
};

/* shoal.push: a job's JSON and how to queue it. */
struct lj_push {
    const char *data;
    size_t len;
    const char *key; /* dedup key, or NULL */
    size_t key_len;
    double delay;
    int priority;
    /* a W3C traceparent the job continues (ignored if malformed), and its
     * tracestate (dropped alone if malformed); NULL: none */
    const char *traceparent, *tracestate;
    size_t traceparent_len, tracestate_len;
    /* the job's url field (scope, default group), or NULL; its group, or
     * NULL for the url's host */
    const char *url, *group;
    size_t url_len, group_len;
    int depth; /* the job's depth, or -1: the pushing job's + 1 (0 from produce) */
};

enum lj_push_status {
    LJ_PUSH_OK,
    LJ_PUSH_DUP,    /* key seen before */
    LJ_PUSH_FULL,   /* producer: the queue is full; yield, the host resumes when there is room */
    LJ_PUSH_CLOSED, /* the run is stopping (the producer yields and is parked) */
    LJ_PUSH_SCOPE,  /* out of the crawl's scope: dropped (why: the reason) */
    LJ_PUSH_NOMEM,
};

enum lj_emit_status {
    LJ_EMIT_OK,
    LJ_EMIT_DROPPED,   /* the writer did not make room in time */
    LJ_EMIT_DISCARDED, /* no --output */
    LJ_EMIT_TOO_BIG,   /* over emit_max_bytes */
};

enum lj_items_format { LJ_ITEMS_NONE, LJ_ITEMS_JSONL, LJ_ITEMS_CSV };

#define LJ_ITEMS_MAX_COLUMNS 256 /* cells of a CSV item */
#define LJ_PROFILE_DEPTH 48      /* Lua frames of a profile sample */

/* The watchdog's view of the script code running on the calling thread,
 * for the hook's decision and its message. */
struct lj_watch {
    int64_t deadline_ns; /* CLOCK_MONOTONIC; 0: no timed script code; INT64_MAX: no budget */
    int stop;            /* code with no budget is to stop: the run is ending */
    int handle;          /* the code is a job's handle() */
    const char *entry;   /* "init()", "the script's top level", ... */
    const char *flag;    /* the option setting its budget: "--hook-timeout" */
    double budget;       /* seconds */
};

struct lj_host {
    /* I/O for slot's coroutine, which yields after a 0 (the host resumes it
     * with lj_resume_http / lj_resume / lj_resume_push_retry) */
    int (*http_start)(void *host, int slot, const struct lj_http_request *req, char *err,
                      size_t errlen); /* 0; 1: yield, then ask again (robots.txt is being
                                         fetched); -1 with a message; -2 with a message:
                                         robots.txt disallows it, the job is to end */
    void (*sleep_start)(void *host, int slot, double seconds);
    enum lj_push_status (*push)(void *host, int slot, const struct lj_push *p, uint64_t *id,
                                const char **why);

    /* the job in slot: 0 and its id, attempt and depth, or -1 if slot runs
     * no job */
    int (*job)(void *host, int slot, uint64_t *id, int *attempt, int *depth);
    /* the job's url, for its log line and span */
    void (*job_url)(void *host, int slot, const char *url, size_t len);

    /* logs: 1 if records of level (enum log_level) are taken; one record,
     * for slot's job (slot < 0: none) */
    int (*log_wants)(void *host, int level);
    void (*log)(void *host, int slot, struct log_record *rec);

    /* traces of slot's job, no-ops with tracing off: the innermost open
     * span's ids as hex (0, or -1: none); a user span opened (child of the
     * innermost) or the innermost ended (-1: none open, or too deep); a
     * string attribute on the innermost */
    int (*trace_current)(void *host, int slot, char trace_id[33], char span_id[17]);
    int (*trace_begin)(void *host, int slot, const char *name);
    int (*trace_end)(void *host, int slot, const char *error);
    void (*trace_attr)(void *host, int slot, const char *key, const char *value, size_t len);

    /* items (shoal.emit): a JSON text, or a CSV record of n cells in column
     * order (extra_key: a key of the item outside the columns, or NULL);
     * may wait a bounded time for the writer */
    enum lj_emit_status (*emit)(void *host, const char *json, size_t len);
    enum lj_emit_status (*emit_csv)(void *host, int n, const char *const *cells, const size_t *lens,
                                    const char *extra_key, size_t key_len);
    size_t (*emit_max_bytes)(void *host);
    enum lj_items_format (*items_format)(void *host);
    /* the run's CSV columns: how many are set (names NULL), or sets them
     * if none are (n names; a later call changes nothing) and returns how
     * many there are, -1 out of memory; then column i's name */
    int (*items_columns)(void *host, int n, const char *const *names, const size_t *lens);
    void (*items_column)(void *host, int i, const char **name, size_t *len);

    /* no host: a sample of the script's stack (innermost first) taken by
     * LuaJIT's profiler on worker_id's state; the watchdog's view of this
     * thread (0, or -1: the thread runs no watched code) */
    void (*profile_sample)(int worker_id, const char *stack, size_t len, int samples, int vmstate);
    int (*watch)(struct lj_watch *out);
};

#endif
