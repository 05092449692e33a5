/* profile.h - one window of CPU samples, aggregated and symbolised, as the
 * profile encoders (pprof.c) and senders (pyroscope.c, --profile-dir) see
 * it.
 *
 * Built by the profiler thread (profiler.c) at the end of each
 * --profile-interval and handed to the encoder; nothing in it is shared
 * with other threads. Frames are functions with a name a person
 * recognises: a C function (`worker_main`, `curl_multi_socket_action`,
 * `memcpy`), or a Lua function as `handle examples/crawl.lua:42`. */
#ifndef SHOAL_PROFILE_H
#define SHOAL_PROFILE_H

#include <stddef.h>
#include <stdint.h>

struct prof_func {
    const char *name;     /* "worker_main", "handle examples/crawl.lua:42" */
    const char *filename; /* "engine/core/worker.c", "examples/crawl.lua", a library, or "" */
    int64_t line;         /* the function's first line when known, else 0 */
};

struct prof_sample {
    const uint32_t *frames; /* indices into funcs, leaf first (pprof's order) */
    int nframes;
    int64_t count;  /* samples with this stack and these labels */
    int64_t cpu_ns; /* CPU time they stand for: count * period, or scaled */
    int worker;     /* label "worker": the worker id, or -1 (no label) */
    const char *thread; /* label "thread": "worker", "producer", "main", "log-writer", ... */
    uint64_t span_id;   /* label "profile_id" when not 0: the span id's 8 bytes as
                           one number (profiler_set_span), written as its hex */
};

struct prof_profile {
    uint64_t start_ns, end_ns; /* the window, Unix ns */
    int64_t period_ns;         /* CPU time between two samples of one thread */
    const struct prof_func *funcs;
    size_t nfuncs;
    const struct prof_sample *samples;
    size_t nsamples;
};

#endif
