/* run.h - one run of a script: the queue, the workers, and the main thread's
 * job of watching them (progress, watchdog, signals, end, summary).
 *
 * Created and driven by main.c on the main thread. Workers read the config
 * and the atomic flags below; only the main thread writes the flags (the
 * workers' own counters live in their struct stats). */
#ifndef SHOAL_RUN_H
#define SHOAL_RUN_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/config.h"
#include "core/queue.h"
#include "core/rate.h"

struct worker;
struct stats;
struct httpd;
struct runmetrics;
struct otel_config;
struct tracer;
struct polite;
struct robots_cache;
struct scope;
struct sessions;
struct proxies;

struct run {
    const struct config *cfg;
    queue *q;
    rate *rate;
    struct polite *polite;      /* pauses and delays of groups from their answers */
    struct robots_cache *robots; /* --robots obey: each origin's robots.txt; else NULL */
    struct scope *scope;         /* which url jobs a push accepts */
    struct sessions *sessions;   /* shoal.http's named cookie jars */
    struct proxies *proxies;     /* --proxy-list, or NULL */
    int durable_items; /* the queue keeps items with their jobs' acks (queue_items_durable) */
    int shared_items;  /* ... and in its store, not in --output (--queue): JSON lines */
    _Atomic uint64_t items_kept; /* records handed to the queue with acks */
    struct runmetrics *metrics;
    const struct otel_config *otel;
    struct tracer *tracer; /* NULL when tracing is off */
    struct logger *logger; /* the run's logger (also logger_global) */
    struct profiler *profiler; /* CPU profiles, or NULL */
    struct items *items;       /* shoal.emit's writer (counts alone without --output) */
    int logging;           /* a log file is written */
    double t0; /* monotonic start */

    _Atomic int stopping;        /* take no new jobs: Ctrl-C, --duration, --max-jobs */
    _Atomic int finish_producer; /* workers are done: the producer runs done() and leaves */
    _Atomic unsigned script_gen; /* bumped by --watch when the script changes */
    _Atomic long started_jobs;   /* first attempts started, for --max-jobs */

    struct worker **workers; /* [0] producer, [1..nworkers] job workers */
    _Atomic(struct worker *) *wakers; /* what queue notifies go to, per id (replaceable) */
    int nworkers;
    int wedged; /* workers replaced so far, and a wedged producer */
    int producer_wedged; /* the producer's thread was left behind */
    const char *stats_json; /* done()'s argument, set before finish_producer */
    char producer_error[4096]; /* produce()/done() failure, set by the producer thread */
    pthread_t main_thread;
    struct stats *main_stats; /* failures the main thread records (wedged jobs) */
    struct worker *abandoned[64]; /* wedged workers left running */
    int nabandoned;
    struct worker *spare_exited; /* stands in for a worker slot nobody fills any more */
    const char *stop_reason;
    int interrupted, aborted;
    double last_progress_t, last_rate;
    unsigned long long last_progress_done;
};

/* Runs cfg->script to the end. Returns an exit code (config.h). */
int run_script(const struct config *cfg, struct httpd *server, struct runmetrics *metrics,
               const struct otel_config *otel);

/* Stops starting jobs (any thread): in-flight jobs finish, then the run
 * ends. The first reason given is the one reported. */
void run_stop(struct run *r, const char *reason);
/* A robots.txt came in or was given up (any worker): wakes every worker, so
 * requests that waited for it ask again. */
void run_robots_changed(struct run *r);
/* Used by workers as their thread ends: wakes the main thread. */
void run_worker_exited(struct run *r);

#endif
