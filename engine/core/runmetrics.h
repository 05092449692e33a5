/* runmetrics.h - the engine's own metric families, and /metrics, /readyz.
 *
 * One runmetrics lives from before the HTTP server starts until after it
 * stops, so a scrape never meets a freed registry. It declares the
 * engine's families (the seed's names unchanged: jobs_total,
 * job_duration_seconds, workers_active, jobs_queue_depth; the rest named in
 * docs/ARCHITECTURE.md), reads process figures at scrape time, and holds
 * the series workers update on their hot paths.
 *
 * Threads: created and attached/detached by the main thread; the update
 * helpers are called by workers; the collector and the HTTP handlers run
 * on libmicrohttpd's threads. attach_run/detach_run and the collector take
 * `lock`, so a scrape reads a run's queue only while the run exists. */
#ifndef SHOAL_RUNMETRICS_H
#define SHOAL_RUNMETRICS_H

#include <pthread.h>
#include <stdatomic.h>

#include "telemetry/metrics/metrics.h"

struct httpd;
struct run;

#define RM_MAX_CUSTOM 8
#define RM_METHODS 8 /* GET HEAD POST PUT DELETE PATCH OPTIONS, other */

struct hosts_named;

struct runmetrics {
    struct registry *reg;
    int enabled; /* 0 with --no-metrics: hot paths skip every update */
    _Atomic int ready; /* /readyz: script loaded and workers running */
    _Atomic int finished; /* the run is over (/readyz says so, e.g. during --linger) */

    /* jobs; jobs_total and job_duration_seconds also carry the script's
     * custom labels (after status for jobs_total) */
    struct metric_family *jobs, *duration, *retries, *in_flight, *workers_active;
    struct metric_family *queue_depth, *delayed, *pushed, *deduplicated;
    struct metric_family *store_up, *results_held; /* the queue's store (Redis) */
    int ncustom;
    char custom[RM_MAX_CUSTOM][64];
    /* the series used when the script has no custom labels */
    struct metric_series *jobs_ok, *jobs_failed, *duration_all;
    struct metric_series *retries_s, *in_flight_s, *workers_active_s;

    /* HTTP client */
    struct metric_family *http_requests, *http_duration, *http_bytes;

    /* the crawl: url pushes out of scope by reason; per host (hosts.h) */
    struct metric_family *out_of_scope;
    struct metric_family *host_started, *host_inflight, *host_waiting, *host_delay, *host_paused;
    struct hosts_named *hosts; /* hosts with series of their own, kept between scrapes */

    /* shoal.emit's items, by status (written, dropped, failed, discarded) */
    struct metric_family *items;

    /* telemetry, by signal: fed by the exporters */
    struct metric_family *tel_exported, *tel_dropped, *tel_failed;

    /* Lua runtime, per worker */
    struct metric_family *lua_memory, *lua_gc_seconds, *lua_gc_cycles, *lua_gc_assists,
        *lua_coroutines, *lua_states_replaced;

    /* process, set by the collector */
    struct metric_series *cpu, *rss, *vsize, *open_fds, *max_fds, *threads, *start_time,
        *heap;
    struct metric_series *q_depth_s, *delayed_s, *pushed_s, *dedup_s;
    struct metric_series *store_up_s, *held_s;
    double boot_time; /* Unix seconds the machine booted, for start_time */

    pthread_mutex_t lock;
    struct run *run; /* the run whose queue and workers /metrics reports, or NULL */
};

/* Declares everything. custom: the script's options.metric_labels (checked
 * by the caller with metrics_check_label). NULL with a message on failure. */
struct runmetrics *runmetrics_new(int nshards, int max_series, int enabled,
                                  const char *const *custom, int ncustom, char *err,
                                  size_t errlen);
void runmetrics_free(struct runmetrics *m);

/* Serves /metrics and /readyz on server (NULL is a no-op). */
int runmetrics_serve(struct runmetrics *m, struct httpd *server);

/* The run whose queue and workers /metrics reports (jobs_queue_depth,
 * workers_active, jobs_in_flight, ...), or NULL when it ends. */
void runmetrics_attach_run(struct runmetrics *m, struct run *r);

/* Index of a method in the per-method arrays, and back. */
int runmetrics_method(const char *method);
const char *runmetrics_method_name(int method);

/* The http_client_requests_total series for (method index, status), where
 * status 0 means the request got no response (code="error"). Worker
 * threads; cache is the worker's own array of RM_METHODS * 600 pointers. */
struct metric_series *runmetrics_http_series(struct runmetrics *m, struct metric_series **cache,
                                             int method, long status);

#endif
