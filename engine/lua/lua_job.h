/* lua_job.h - one Lua state and the coroutines that run in it, seen from C.
 *
 * This is the narrow side of the Lua boundary: worker.c and run.c drive a
 * state through these calls and never see a lua_State. Each call runs Lua
 * protected; a failure comes back as a status and a message, never as a
 * longjmp or an exit. A state belongs to one thread (its worker's) for its
 * whole life; only lj_watchdog_signal and lj_watchdog_on_signal may be called
 * from elsewhere (a signal handler on that thread).
 *
 * A coroutine lives in a slot (0 .. concurrency-1). Starting or resuming one
 * returns LJ_WAIT when it yielded for I/O it asked of its host (lua_host.h), or
 * LJ_OK / LJ_FAIL when the attempt (or hook) finished; after LJ_FAIL,
 * lj_error() holds the message (first line: the error, then the traceback). */
#ifndef SHOAL_LUA_JOB_H
#define SHOAL_LUA_JOB_H

#include <stddef.h>
#include <stdint.h>

struct lj_host;
struct lj_http_result;
struct registry;

typedef struct lj lj;

struct lj_config {
    int worker_id;         /* 0 = producer */
    const char *script;    /* path of the user's script */
    const char *lua_path;  /* directory overriding embedded lua/ modules, or NULL */
    size_t mem_cap;        /* bytes a state may hold while job code runs; 0 = no cap */
    int slots;             /* coroutine slots */
    double timeout;        /* per attempt, for the watchdog's message */
    char **args;           /* shoal.args */
    const char *listen;    /* --listen HOST:PORT, for shoal.listen_url; "off" or NULL: none */
    int nargs;
    const struct lj_host *host_ops;    /* the engine's side (lua_host.h); NULL: none at all */
    void *host;                        /* handed to host_ops; NULL: no I/O (`shoal check`) */
    struct registry *registry;         /* where shoal.metrics declares */
    int tracing;                       /* spans are recorded: shoal.trace does work */
    const char *const *metric_labels;  /* options.metric_labels, for labels() */
    int nmetric_labels;
};

enum lj_status { LJ_WAIT = 0, LJ_OK = 1, LJ_FAIL = 2 };

/* Creates the state, loads the runtime and the script. Returns NULL with a
 * message in err (file:line for script errors). */
lj *lj_new(const struct lj_config *cfg, char *err, size_t errlen);
void lj_free(lj *s);

/* Checks what `shoal check` checks (handle defined, options well-formed).
 * Returns 0 (err then holds a warning, or ""), or -1 with a message. */
int lj_check(lj *s, char *err, size_t errlen);

/* Reads the script's numeric options: calls fn(name, value, arg) for each. */
void lj_options(lj *s, void (*fn)(const char *name, double value, const char *text, void *arg),
                void *arg);

/* Runs init(worker) to completion (no yields allowed). Returns 0 or -1 + err. */
int lj_init(lj *s, char *err, size_t errlen);

/* Starts an attempt of a job in slot. */
int lj_job_start(lj *s, int slot, const char *data, size_t len, uint64_t id, int attempt);
/* Starts produce(push) / done(stats) as a coroutine in slot. */
int lj_produce_start(lj *s, int slot);
int lj_done_start(lj *s, int slot, const char *stats_json);

/* Resumes a coroutine waiting on HTTP with its outcome. */
int lj_resume_http(lj *s, int slot, const struct lj_http_result *res);
/* Resumes a coroutine waiting on a sleep (no values). */
int lj_resume(lj *s, int slot);
/* Resumes a producer whose push found the queue full: it pushes again. */
int lj_resume_push_retry(lj *s, int slot);
/* Resumes a request that waited for robots.txt: it asks again. */
int lj_resume_http_again(lj *s, int slot);

/* Drops the coroutine in slot (timed out, or the run is aborting). */
void lj_abandon(lj *s, int slot);

/* The message of the last LJ_FAIL in slot; valid until the slot's next start. */
const char *lj_error(lj *s, int slot);
/* 1 when the last failure in slot is not to be retried: a mistake in how
 * the script called shoal, shoal.retry(false), error{retry = false}. */
int lj_final(const lj *s, int slot);

/* Reloads the script (--watch). On failure the old definitions stay and err
 * says why. */
int lj_reload(lj *s, const char *path, char *err, size_t errlen);

size_t lj_mem_used(const lj *s);
/* How many calls into Lua went over the memory cap (each failed with the
 * cap's error and was followed by a full collection). */
unsigned lj_cap_hits(const lj *s);
/* Full GC; call between jobs when lj_mem_used is near the cap. */
void lj_collect(lj *s);

/* Runs the script's labels(job, outcome) for a finished attempt (data: the
 * job's JSON) and points vals/lens at the values, in options.metric_labels
 * order, valid until the next call. Returns how many (0 without labels). */
int lj_job_labels(lj *s, const char *data, size_t len, int ok, const char *const **vals,
                  const size_t **lens);
/* A Grafana dashboard (JSON) for the metrics the script declared; malloc'd,
 * caller frees. NULL with a message in err. */
char *lj_dashboard(lj *s, const char *title, char *err, size_t errlen);
/* Coroutines alive in the state. */
int lj_coroutines(const lj *s);

/* The worker drives the collector: lj_gc_manual stops the automatic one
 * (a resume that grows the heap past assist_at turns it back on until the
 * next lj_gc_manual); lj_gc_step does about kb KiB of collection work and
 * returns 1 when that finished a cycle. lj_gc_take_assist: 1 if the
 * automatic collector had to run since the last call. */
void lj_gc_manual(lj *s, size_t assist_at);
int lj_gc_step(lj *s, int kb);
int lj_gc_take_assist(lj *s);

/* Async-signal-safe: arms a hook that raises in whatever Lua code runs next
 * on this state's thread, once the entry the host's watchdog describes for
 * that thread (lj_host's watch) is past its deadline or told to stop; the message
 * names the script's line, the entry and its budget ("job ran past its 10s
 * time budget (--timeout)", "init() ran past its 10s time budget
 * (--hook-timeout)", "produce() stopped here: the run is ending"). */
void lj_watchdog_signal(lj *s);
/* The SIGUSR2 handler's body: arms that hook on the state running script
 * code on the calling thread, if the host's watch says it runs any. */
void lj_watchdog_on_signal(void);
/* 1 if the hook stopped code with no time budget (produce()) because the
 * run is ending, since the last call; clears the flag. */
int lj_take_stopped(lj *s);
/* Clears that hook (worker thread, between resumes). */
void lj_watchdog_clear(lj *s);

/* LuaJIT's profiler on this state, its samples handed to the host's
 * profile_sample: started and stopped on the state's own thread, between
 * resumes; one state at a time. */
int lj_profile_start(lj *s);
void lj_profile_stop(lj *s);

#endif
