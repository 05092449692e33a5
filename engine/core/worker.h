/* worker.h - a worker thread: one Lua state, its slots, one loop (net/loop.h).
 *
 * Core only: run.c creates the workers and reads their stats and watchdog
 * fields; a Lua state reaches the worker_* request functions through
 * lua_host.c (lua/lua_host.h) from inside a coroutine the worker is resuming
 * (always on the worker's own thread); observe.c, producer.c and gcpace.c
 * are parts of the worker split out of worker.c. Worker 0 is the producer:
 * it runs produce() and done() instead of taking jobs.
 *
 * Fields marked "atomic" are read by the main thread (watchdog, progress);
 * everything else belongs to the worker thread alone. */
#ifndef SHOAL_WORKER_H
#define SHOAL_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "net/fetch.h"
#include "net/httpcache.h"
#include "net/loop.h"
#include "base/clock.h"
#include "base/strbuf.h"
#include "base/thread.h"
#include "telemetry/logs/logger.h"
#include "lua/lua_host.h"
#include "lua/lua_job.h"
#include "core/gcpace.h"
#include "core/queue.h"
#include "core/robots_cache.h"
#include "core/stats.h"
#include "telemetry/traces/trace.h"
#include "core/watchdog.h"

struct run;

/* OP_ROBOTS: the slot's transfer fetches a robots.txt its request needs;
 * OP_ROBOTS_WAIT: another request fetches it (both resume the coroutine,
 * which asks again) */
enum slot_op { OP_NONE, OP_HTTP, OP_SLEEP, OP_ROOM, OP_ROBOTS, OP_ROBOTS_WAIT, OP_CACHED };
enum slot_kind { SLOT_JOB, SLOT_PRODUCE, SLOT_DONE };

struct slot {
    int idx;
    int busy;
    enum slot_kind kind;
    enum slot_op op;
    uint64_t lease, job_id;
    int attempt;
    int depth; /* the job's, carried by the queue */
    int final; /* the attempt's failure is not to be retried (lj_final) */
    double started, deadline, sleep_until;
    /* tracing: the innermost open span's context (the job's, or a user
     * span's); ctx.valid is 0 when tracing is off */
    struct trace_ctx ctx;
    struct span *job_span;  /* NULL if unsampled */
    const char *tracestate; /* the job's W3C tracestate (in its lease), or NULL */
    size_t tracestate_len;
    struct span *http_span;          /* the request in flight's CLIENT span */
    struct span *user[8];            /* shoal.trace.span, innermost last */
    struct trace_ctx user_parent[8]; /* ctx to restore when each ends */
    int nuser;
    const char *data; /* the job's JSON, the queue's until ack or retry */
    size_t len;
    const char *group; /* its group (politeness unit), the queue's as data; len 0: none */
    size_t group_len;
    int http_method;  /* runmetrics_method() of the request in flight */
    long last_status; /* of the job's latest response (0: none yet), for its log line */
    char *url;        /* the job's url field (core.job_url), for its log line */
    size_t url_len, url_cap;
    struct transfer xfer;
    int xfer_ready;
    int disallowed; /* robots.txt refused a request of this attempt */
    int hopeless;   /* a request of it failed in a way a retry cannot mend (redirect
                       loop, body over --max-body): its failure is not retried */
    char robots_origin[ROBOTS_ORIGIN_MAX]; /* OP_ROBOTS: whose robots.txt */
    /* --http-cache: OP_CACHED replays this answer at its timer; a GET that
     * missed keeps its url here, to store what comes */
    struct httpcache_entry cached;
    char *cache_key;
    /* a durable or shared queue (queue_items_durable): the attempt's items,
     * encoded, kept with its ack (or dropped with its retry) */
    struct strbuf items;
    uint64_t nitems; /* records in items */
};

#define WORKER_SPAN_BURST 32

struct worker {
    int profiling;     /* this thread is sampled (a profiler runs) */
    int lua_profiling; /* LuaJIT's profiler is on this worker's state */
    int id;
    struct run *run;
    pthread_t thread;
    lj *lua;
    struct loop loop; /* epoll, curl, the slots' timers (net/loop.h) */
    struct slot *slots;
    int nslots;
    struct slot *in_lua; /* the slot whose script code runs now, or NULL */
    int *free_slots, nfree;
    int jobs_inflight;
    unsigned seen_gen;
    uint64_t rng;
    int producer_state;      /* worker 0: 0 producing, 1 produced, 2 done() running, 3 finished */
    struct queue_lease held; /* taken but waiting for the rate limit; lease 0 = none */
    /* a state that still holds most of its cap after a job went over it is
     * replaced by a fresh one once its jobs in flight are done */
    struct lj_config lc;          /* how this worker's states are made */
    const char *label_names[8];   /* lc.metric_labels points here */
    size_t mem_base;              /* the state's heap right after init() */
    unsigned seen_cap_hits;
    int replace_state;            /* 1: take no job until the state is replaced */
    int robots_waiting;    /* slots in OP_ROBOTS_WAIT */
    unsigned robots_gen;   /* robots_cache_gen when they last asked */

    struct gcpace gc; /* the collector, stepped between resumes */
    /* finished spans not yet handed to the tracer (trace_end_span) */
    struct span *done[WORKER_SPAN_BURST];
    int ndone;
    /* metrics: this worker's series */
    struct metric_series **http_series; /* RM_METHODS * 600, made on first use */
    struct metric_series *http_duration_s[8], *http_bytes_s[8]; /* by method */
    struct metric_series *replaced_s;

    /* watchdog: which script code runs until when (atomics, watchdog.h) */
    struct wd_site site;
    _Atomic int abandoned;              /* declared wedged: leave without touching the queue */
    _Atomic int exited;
    _Atomic uint64_t running_lease; /* lease of the job being resumed, 0 = none */
    _Atomic uint64_t running_job;   /* and its job id */

    struct stats stats;
};

/* Creates a worker and its Lua state (on the calling thread; the state is
 * then handed to the worker's thread). Returns NULL with a message in err. */
struct worker *worker_new(struct run *run, int id, char *err, size_t errlen);
/* Starts the thread. 0 / -1. */
int worker_start(struct worker *w);
/* Wakes the worker's loop (any thread; async-signal-safe). */
void worker_wake(struct worker *w);
/* Frees a worker whose thread has been joined. */
void worker_free(struct worker *w);

/* --- between worker.c and its parts (observe.c, producer.c, lua_host.c) */

static inline int64_t worker_ns(double t)
{
    return (int64_t)(t * 1e9);
}
/* Every entry into script code is bracketed by these, so the watchdog knows
 * which code runs, for which lease and job, until when (deadline: ns,
 * WD_NO_LIMIT for no budget; budget: the seconds messages quote). */
void worker_watch_begin(struct worker *w, enum wd_entry e, uint64_t lease, uint64_t job,
                        int64_t deadline, double budget);
void worker_watch_end(struct worker *w);
/* A free slot, busy now (NULL if none) / given back. */
struct slot *worker_slot_take(struct worker *w);
void worker_slot_put(struct worker *w, struct slot *s);
/* Puts the slot's timer at its next wake time (deadline or sleep's end). */
void worker_timer_set(struct worker *w, struct slot *s);
/* Runs fn (a call into the slot's coroutine) as every entry into Lua runs:
 * watched, profiled, and followed by a step of the collector. */
int worker_enter_lua(struct worker *w, struct slot *s,
                     int (*fn)(struct worker *, struct slot *, const void *), const void *arg);
/* Acts on what a resume returned (LJ_WAIT, LJ_OK, LJ_FAIL). */
void worker_after_resume(struct worker *w, struct slot *s, int status);
/* Takes back the I/O slot s waits on (its request cancelled, unanswered). */
void worker_cancel_io(struct worker *w, struct slot *s);
/* An engine event of the worker that is not about one job. */
void worker_log_event(struct worker *w, enum log_level lv, const char *msg, const char *key,
                      const char *value);

/* What a worker's Lua state asks of it (lua_host.h; lua_host.c): host is
 * the worker. Its watch and profile_sample need none, so a state made for
 * `shoal check` takes this table with a NULL host. */
extern const struct lj_host worker_lua_host;

/* --- called through worker_lua_host, on the worker's thread, inside a resume */

/* The job in slot: 0 and its id, attempt and depth, or -1 if slot runs no
 * job. */
int worker_slot_job(const struct worker *w, int slot, uint64_t *id, int *attempt, int *depth);
/* The depth of a job slot pushes: its own job's + 1; 0 from produce(). */
int worker_push_depth(const struct worker *w, int slot);
/* Counts a push dropped as out of the crawl's scope (scope.h's reason),
 * with a DEBUG line naming its url. */
void worker_out_of_scope(struct worker *w, int slot, int reason, const char *url, size_t len);
/* Starts an HTTP request for slot. 0: started, the caller yields for its
 * result. 1: it waits for the host's robots.txt; the caller yields and,
 * resumed, asks again. -1: an error (err). -2: robots.txt disallows it
 * (err says so): the attempt ends, counted as disallowed. */
int worker_http_start(struct worker *w, int slot, const struct http_request *req, char *err,
                      size_t errlen);
/* Arms a sleep for slot; the caller then yields. */
void worker_sleep_start(struct worker *w, int slot, double seconds);
/* Pushes a job. Returns a queue_status; on QUEUE_FULL (producer only) the
 * slot now waits for room and the caller yields, then pushes again. */
/* A durable queue's item (an encoded record, ending in "\n"): held with
 * the job whose script code runs now, or, outside any job (init, produce,
 * done), handed to the queue at once. 0, or -1 out of memory. */
int worker_item(struct worker *w, const char *rec, size_t len);
int worker_push(struct worker *w, int slot, const char *data, size_t len,
                const struct queue_push_opts *opts, uint64_t *id);
/* Tracing, for the slot's job (no-ops when tracing is off or the slot runs
 * no job). The innermost open span's ids as hex: 0, or -1 if none. */
int worker_trace_current(const struct worker *w, int slot, char trace_id[33], char span_id[17]);
/* Adds a string attribute to the innermost open span. */
void worker_trace_attr(struct worker *w, int slot, const char *key, const char *value, size_t len);
/* Opens a user span (child of the innermost) / ends the innermost user
 * span, with an error message if it failed. -1: none open, or too deep. */
int worker_trace_begin(struct worker *w, int slot, const char *name);
int worker_trace_end(struct worker *w, int slot, const char *error);
/* Fills the record's worker id, and for slot's job (slot < 0: none) its
 * job.id field and trace ids, then hands it to the run's logger. */
void worker_log(struct worker *w, int slot, struct log_record *rec);
/* 1 if the run's logger takes records of level lv. */
int worker_log_wants(const struct worker *w, int lv);
/* The job's url (its `url` field), for its log line and span. */
void worker_job_url(struct worker *w, int slot, const char *url, size_t len);

#endif
