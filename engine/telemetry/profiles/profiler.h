/* profiler.h - continuous CPU profiles of the whole engine, C and Lua.
 *
 * On when --pyroscope or --profile-dir is given. Every thread of the engine
 * joins the sampler (sampler.h: C stacks on each thread's own CPU time).
 * Lua stacks come from LuaJIT's own profiler, which is process-global: one
 * worker's VM is profiled at a time, a whole window each, in turn. On that
 * worker every C sample that lands inside Lua also asks LuaJIT (SIGPROF to
 * the same thread) for the script's stack at that very point; the Lua
 * frames then replace the VM's internals above the engine's lua_resume
 * call, so a script's functions sit inside the engine's picture.
 *
 * A profiler thread drains the samples, aggregates them by stack and
 * labels (worker, thread, the span running: profile_id), and every
 * --profile-interval names the frames, encodes pprof and sends it to
 * Pyroscope or writes DIR/cpu-<time>.pb.gz.
 *
 * Threads: profiler_new/profiler_shutdown on the main thread; the
 * profiler_* hooks below on the threads they name. */
#ifndef SHOAL_PROFILER_H
#define SHOAL_PROFILER_H

#include <stddef.h>
#include <stdint.h>

struct registry;

/* The Lua frames a sample keeps, innermost first. */
#define PROFILER_LUA_DEPTH 48

/* A backend each window's profile goes to (Pyroscope): the profiler never
 * names one, the run wires it. */
struct profile_sink_ops {
    /* The profiler thread: takes ownership of gz (a gzip'd pprof, len
     * bytes, malloc'd) for the window [from_ns, until_ns) in Unix ns.
     * Must never block on I/O. */
    void (*submit)(void *sink, uint8_t *gz, size_t len, uint64_t from_ns, uint64_t until_ns);
    /* Sends what is queued within timeout_ms, stops, frees sink. */
    void (*shutdown)(void *sink, long timeout_ms);
};

struct profiler_config {
    int hz;          /* samples per second of each thread's CPU time */
    double interval; /* seconds per window (and per Lua turn) */
    const char *dir; /* --profile-dir, or NULL */
    /* where windows go besides dir, or NULL; the profiler owns sink from
     * profiler_new on, whether it succeeds or not */
    const struct profile_sink_ops *sink_ops;
    void *sink;
    int nworkers; /* job workers 1..nworkers take Lua turns */
};

struct profiler;

/* The process's profiler while one runs (workers look here), else NULL. */
extern struct profiler *_Atomic profiler_global;

/* Installs the sampler (main thread, before any other thread starts),
 * joins the main thread, starts the profiler thread. NULL with a message
 * on failure. */
struct profiler *profiler_new(const struct profiler_config *c, struct registry *m, char *err,
                              size_t errlen);
/* Ends the last window (sent or written within timeout_ms), stops
 * sampling, frees. Main thread, after the other sampled threads ended.
 * NULL is a no-op. */
void profiler_shutdown(struct profiler *p, long timeout_ms);

/* Worker hooks. profiler_lua_turn: the worker whose VM should be under
 * LuaJIT's profiler now (0: none); a worker starts or stops it between
 * resumes and says so with profiler_lua_active. */
int profiler_lua_turn(const struct profiler *p);
void profiler_lua_active(struct profiler *p, int worker, int on);
/* Called from LuaJIT's profiler callback on the profiled worker's thread:
 * stack is the script's frames, innermost first, each "name file:line"
 * and separated by ';' (len bytes); vmstate is LuaJIT's ('N', 'I', 'C',
 * 'G', 'J'). */
void profiler_lua_sample(struct profiler *p, int worker, const char *stack, size_t len, int samples,
                         int vmstate);

/* The span running on the calling thread (NULL: none), for the samples'
 * profile_id label. The sampler keeps its 8 bytes as one number (one
 * atomic store, safe for its signal handler); pprof.c writes it back out
 * as the same 16 hex digits (profile_span_hex). */
void profiler_set_span(const uint8_t span_id[8]);

#endif
