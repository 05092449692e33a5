/* run.c - the main thread's side of a run.
 *
 * Builds the queue and the workers (each loads the script and runs init()
 * here, before any thread starts, so a broken script fails fast with its
 * file:line), starts the threads, then loops on sigtimedwait: every tick it
 * draws the progress line, enforces --duration, reloads for --watch, and
 * watches for runaway Lua (watchdog.h). A worker whose code stays past its
 * deadline is sent SIGUSR2 (which arms a hook in its state); one that stays
 * stuck after that is declared wedged: its other jobs go back to the queue,
 * a replacement takes its id, and the stuck thread is left behind. The
 * producer's produce() is told to stop when the run ends; a producer stuck
 * past that (or done() past its budget) is left behind too, and the run
 * ends with EXIT_WEDGED.
 *
 * The end: job workers leave when the queue is drained (or the run stops);
 * then the producer runs done(stats) and leaves; then the summary.
 * Threads: main only, except run_stop / run_worker_exited. */
#include "core/run.h"
#include "base/clock.h"
#include "core/runmetrics.h"
#include "telemetry/traces/tracer.h"

#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/items.h"
#include "telemetry/logs/logger.h"
#include "telemetry/logs/loki.h"
#include "telemetry/logs/otlp_logs.h"
#include "telemetry/profiles/profiler.h"
#include "telemetry/profiles/pyroscope.h"
#include "core/summary.h"
#include "core/watchdog.h"
#include "core/worker.h"
#include "core/polite.h"
#include "core/robots_cache.h"
#include "core/hosts.h"
#include "core/scope.h"
#include "core/sessions.h"

#define TICK_MS 100
#define PLAIN_PROGRESS_EVERY 10.0 /* seconds between progress lines off a terminal */

void run_worker_exited(struct run *r)
{
    pthread_kill(r->main_thread, SIGUSR1);
}

static void notify_worker(void *arg)
{
    _Atomic(struct worker *) *slot = arg;
    struct worker *w = atomic_load(slot);
    if (w)
        worker_wake(w);
}

static void wake_all(struct run *r)
{
    for (int i = 0; i <= r->nworkers; i++) {
        struct worker *w = atomic_load(&r->wakers[i]);
        if (w)
            worker_wake(w);
    }
}

void run_robots_changed(struct run *r)
{
    wake_all(r);
}

/* Loads the script into a new worker's state and runs its init(), here on
 * the main thread, each under a guard that bounds it (--hook-timeout). */
static struct worker *make_worker(struct run *r, int id, char *err, size_t errlen)
{
    const struct config *cfg = r->cfg;
    struct wd_guard *g =
        wd_guard_begin(WD_LOAD, cfg->hook_timeout, cfg->script, EXIT_SCRIPT, EXIT_INTERRUPT);
    struct worker *w = worker_new(r, id, err, errlen);
    wd_guard_end(g);
    if (!w)
        return NULL;
    char ierr[4096];
    g = wd_guard_begin(WD_INIT, cfg->hook_timeout, cfg->script, EXIT_SCRIPT, EXIT_INTERRUPT);
    int rc = lj_init(w->lua, ierr, sizeof ierr);
    wd_guard_end(g);
    if (rc != 0) {
        snprintf(err, errlen, "init() failed in worker %d: %s", id, ierr);
        worker_free(w);
        return NULL;
    }
    return w;
}

void run_stop(struct run *r, const char *reason)
{
    if (atomic_exchange(&r->stopping, 1))
        return;
    r->stop_reason = reason;
    queue_close(r->q);
    wake_all(r);
}

static void gather(struct run *r, struct stats *t)
{
    memset(t, 0, sizeof *t);
    for (int i = 1; i <= r->nworkers; i++)
        stats_merge(t, &r->workers[i]->stats);
    for (int i = 0; i < r->nabandoned; i++)
        stats_merge(t, &r->abandoned[i]->stats);
    stats_merge(t, r->main_stats);
}

static void fill_summary(struct run *r, struct summary *s, struct stats *t, double now)
{
    struct queue_stats qs;
    queue_get_stats(r->q, &qs);
    memset(s, 0, sizeof *s);
    s->script = r->cfg->script;
    s->instance = r->cfg->instance;
    if (!strncmp(s->script, "embedded:", 9))
        s->script += 9; /* the demo's built-in copy of examples/crawl.lua */
    s->workers = r->nworkers;
    s->concurrency = r->cfg->concurrency;
    s->elapsed = now - r->t0;
    s->totals = t;
    s->queued_left = qs.ready + qs.delayed + qs.leased;
    s->dup_dropped = qs.dup;
    s->pushed = qs.pushed;
    s->wedged = r->wedged;
    s->interrupted = r->interrupted;
    s->stop_reason = r->stop_reason ? r->stop_reason : "drained";
    s->nhosts = hosts_collect(r->q, now, NULL, s->hosts, HOSTS_TOP, &s->hosts_other, &s->ngroups);
    struct items_counts ic;
    items_counts(r->items, &ic);
    s->items_output = items_path(r->items);
    if (s->items_output && !strcmp(s->items_output, "-"))
        s->items_output = "stdout";
    s->items_written = ic.written;
    s->items_dropped = ic.dropped;
    s->items_failed = ic.failed;
    s->items_discarded = ic.discarded;
    s->items_extra_keys = ic.extra;
    if (r->shared_items) {
        s->items_output = "the shared queue (`shoal items` writes them out)";
        s->items_written = atomic_load(&r->items_kept);
    }
    const char *on[4];
    int n = 0;
    if (r->otel->traces_on)
        on[n++] = "traces";
    if (r->logging)
        on[n++] = "logs";
    if (r->cfg->loki)
        on[n++] = "logs_loki";
    if (r->otel->logs_on)
        on[n++] = "logs_otlp";
    if (r->cfg->pyroscope || r->cfg->profile_dir)
        on[n++] = "profiles";
    for (int i = 0; i < n; i++) {
        const char *sig[1] = {on[i]};
        struct summary_signal *g = &s->signals[s->nsignals++];
        g->name = on[i];
        g->exported = (unsigned long long)metric_value(
            metrics_series(r->metrics->tel_exported, sig, NULL, 1));
        g->dropped =
            (unsigned long long)metric_value(metrics_series(r->metrics->tel_dropped, sig, NULL, 1));
        g->failed =
            (unsigned long long)metric_value(metrics_series(r->metrics->tel_failed, sig, NULL, 1));
    }
}

/* The progress line: redrawn in place on a terminal (final ends it), or,
 * plain, one whole line for a log (CI, | tee) with the rate since the last. */
static void progress(struct run *r, double now, int final, int plain)
{
    uint64_t ok = 0, failed = 0, inflight = 0, retries = 0;
    for (int i = 1; i <= r->nworkers; i++) {
        struct stats *st = &r->workers[i]->stats;
        ok += counter_get(&st->jobs_ok);
        failed += counter_get(&st->jobs_failed);
        inflight += counter_get(&st->inflight);
        retries += counter_get(&st->retries);
    }
    struct queue_stats qs;
    queue_get_stats(r->q, &qs);
    /* jobs/s over the last ticks, smoothed so the figure is readable */
    if (r->last_progress_t == 0)
        r->last_progress_t = r->t0;
    double dt = now - r->last_progress_t;
    uint64_t done = ok + failed;
    if (dt > 0.05) {
        double rate = (double)(done - r->last_progress_done) / dt;
        r->last_rate = r->last_rate == 0 || plain ? rate : 0.6 * r->last_rate + 0.4 * rate;
        r->last_progress_t = now;
        r->last_progress_done = done;
    }
    fprintf(stderr,
            "%s%6.1fs  %llu ok  %llu failed  %llu retried  %zu queued  %llu in flight  %.0f "
            "jobs/s%s",
            plain ? "shoal: " : "\r\033[K", now - r->t0, (unsigned long long)ok,
            (unsigned long long)failed, (unsigned long long)retries, qs.ready + qs.delayed,
            (unsigned long long)inflight, r->last_rate, final || plain ? "\n" : "");
    fflush(stderr);
}

static void wedge(struct run *r, int id, double now)
{
    struct worker *w = r->workers[id];
    uint64_t lease = atomic_load(&w->running_lease);
    unsigned long long job = (unsigned long long)atomic_load(&w->running_job);
    atomic_store(&w->abandoned, 1);
    r->wedged++;
    int back = queue_release_worker(r->q, id, lease);
    if (lease && queue_ack_kept(r->q, lease) == 0) {
        counter_add(&r->main_stats->jobs_failed, 1);
        counter_add(&r->main_stats->attempts_failed, 1);
        counter_add(&r->main_stats->timeouts, 1); /* past its budget, like the watchdog's */
        if (r->metrics->enabled) {
            /* the script's labels() cannot run: that state is stuck */
            const char *v[RM_MAX_CUSTOM + 1] = {"failed"};
            metric_add(metrics_series(r->metrics->jobs, v, NULL, r->metrics->ncustom + 1), 1);
        }
        stats_error(r->main_stats,
                    "worker wedged: job code could not be stopped (a compiled "
                    "loop that never calls into the runtime?)",
                    NULL, 0);
    }
    enum wd_entry e = (enum wd_entry)atomic_load(&w->site.entry);
    char of[48] = "";
    if (job)
        snprintf(of, sizeof of, " of job %llu", job);
    fprintf(stderr,
            "\nshoal: worker %d is stuck in %s%s, in Lua code that ignores the watchdog (a "
            "JIT-compiled loop with no calls, like `while true do end`); ",
            id, wd_entry_name(e), of);
    if (lease)
        fprintf(stderr, "that job failed, %d other job(s) went back to the queue", back);
    else
        fprintf(stderr, "%d job(s) went back to the queue", back);
    if (r->nabandoned < (int)(sizeof r->abandoned / sizeof r->abandoned[0]))
        r->abandoned[r->nabandoned++] = w;
    if (r->wedged > r->cfg->max_wedged) {
        fprintf(stderr, "; that is more than --max-wedged %d, so the run stops\n",
                r->cfg->max_wedged);
        r->workers[id] = r->spare_exited; /* a stand-in that reads as exited */
        atomic_store(&r->wakers[id], NULL);
        run_stop(r, "wedged");
        return;
    }
    char err[4096];
    struct worker *nw = make_worker(r, id, err, sizeof err);
    if (!nw || worker_start(nw) != 0) {
        fprintf(stderr, "; cannot start a replacement: %s\n", nw ? "thread" : err);
        worker_free(nw);
        r->workers[id] = r->spare_exited;
        atomic_store(&r->wakers[id], NULL);
        return;
    }
    fprintf(stderr, "; a new worker %d took its place\n", id);
    r->workers[id] = nw;
    atomic_store(&r->wakers[id], nw);
    (void)now;
}

/* The producer cannot be replaced: a produce() that does not stop when the
 * run ends, or a done() past its budget, stuck where the hook cannot reach,
 * is left behind; the run ends as it would have without it (the queue
 * hears that nothing more comes), with EXIT_WEDGED. */
static void producer_wedged(struct run *r)
{
    struct worker *w = r->workers[0];
    enum wd_entry e = (enum wd_entry)atomic_load(&w->site.entry);
    atomic_store(&w->abandoned, 1);
    r->wedged++;
    r->producer_wedged = 1;
    char why[128];
    if (e == WD_PRODUCE)
        snprintf(why, sizeof why, "did not stop within %gs of the run ending (%s)", WD_GRACE,
                 r->stop_reason ? r->stop_reason : "stopping");
    else
        snprintf(why, sizeof why, "did not return within its %gs budget (%s)",
                 atomic_load(&w->site.budget), wd_entry_flag(e));
    snprintf(r->producer_error, sizeof r->producer_error,
             "%s %s: it is stuck in Lua code the watchdog cannot interrupt (a loop the JIT "
             "compiled with no calls in it, like `while true do end`?); the producer was "
             "abandoned",
             wd_entry_name(e), why);
    r->workers[0] = r->spare_exited; /* reads as exited: the run ends without it */
    atomic_store(&r->wakers[0], NULL);
    queue_producer_done(r->q);
}

/* Every worker's and the producer's script code, against its budget. */
static void watchdog(struct run *r, double now)
{
    int stopping = atomic_load(&r->stopping);
    for (int i = 0; i <= r->nworkers; i++) {
        struct worker *w = r->workers[i];
        if (w == r->spare_exited || atomic_load(&w->exited))
            continue;
        if (i == 0 && stopping)
            atomic_store(&w->site.stop, 1); /* produce() ends with the run */
        if (wd_check(&w->site, now) != WD_STUCK)
            continue;
        if (i == 0)
            producer_wedged(r);
        else
            wedge(r, i, now);
    }
}

/* Threads that may still run Lua (wedged, or not waited for after a second
 * Ctrl-C): nothing they might touch may be freed, and the process leaves
 * with _exit. */
static int threads_left(const struct run *r)
{
    return r->aborted || r->nabandoned || r->producer_wedged;
}

static int all_exited(struct run *r)
{
    for (int i = 1; i <= r->nworkers; i++)
        if (r->workers[i] != r->spare_exited && !atomic_load(&r->workers[i]->exited))
            return 0;
    return 1;
}

static time_t script_mtime(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mtime * 1000000000L + st.st_mtim.tv_nsec : 0;
}

/* The service's name in every backend: the service.name otel.c settled
 * on for the traces' resource (--service, OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES, else the script's short name). */
static const char *service_name(const struct run *r)
{
    const struct attrs *a = &r->otel->resource.attrs;
    for (int i = 0; i < a->n; i++)
        if (a->a[i].type == ATTR_STRING && !strcmp(a->a[i].key, "service.name"))
            return a->a[i].v.s;
    return "shoal";
}

/* CPU profiles, when asked for: 0, or -1 with a message. */
static int start_profiler(struct run *r, char *err, size_t errlen)
{
    const struct config *cfg = r->cfg;
    if (!cfg->pyroscope && !cfg->profile_dir)
        return 0;
    struct profiler_config pc = {
        .hz = cfg->profile_hz,
        .interval = cfg->profile_interval,
        .dir = cfg->profile_dir,
        .nworkers = cfg->workers,
    };
    if (cfg->pyroscope) {
        struct pyroscope_config yc = {
            .url = cfg->pyroscope, .service = service_name(r), .instance = cfg->instance};
        if (!(pc.sink = pyroscope_new(&yc, r->metrics->reg, err, errlen)))
            return -1;
        pc.sink_ops = &pyroscope_sink_ops;
    }
    r->profiler = profiler_new(&pc, r->metrics->reg, err, errlen);
    return r->profiler ? 0 : -1;
}

/* The logger and its sinks, from the flags: 0, or -1 with a message. */
static int start_logger(struct run *r, char *err, size_t errlen)
{
    const struct config *cfg = r->cfg;
    struct logger_config lc = {
        .format = !strcmp(cfg->log_format, "json") ? LOG_FORMAT_JSON : LOG_FORMAT_LOGFMT,
        .file = strcmp(cfg->log_file, "off") ? cfg->log_file : NULL,
        .nworkers = cfg->workers,
        .stderr_tty = isatty(2),
        .instance = cfg->instance,
    };
    log_level_parse(cfg->log_level, &lc.level);
    log_level_parse(cfg->log_stderr, &lc.stderr_level);
    if (lc.file && !*lc.file)
        lc.file = NULL;
    struct loki *loki = NULL;
    struct otlp_logs *ol = NULL;
    const char *svc = service_name(r);
    if (cfg->loki) {
        struct loki_config kc = {.url = cfg->loki, .service = svc, .instance = cfg->instance};
        if (!(loki = loki_new(&kc, r->metrics->reg, err, errlen)))
            return -1;
    }
    if (r->otel->logs_on && !(ol = otlp_logs_new(r->otel, r->metrics->reg, err, errlen))) {
        loki_shutdown(loki, 0);
        return -1;
    }
    struct logger *lg = logger_new(&lc, r->metrics->reg, err, errlen);
    if (!lg) {
        loki_shutdown(loki, 0);
        otlp_logs_shutdown(ol);
        return -1;
    }
    logger_add_sink(lg, &loki_sink_ops, loki);
    logger_add_sink(lg, &otlp_logs_sink_ops, ol);
    r->logger = lg;
    r->logging = lc.file != NULL;
    logger_global = lg;
    return 0;
}

static void log_run_start(struct run *r)
{
    if (!logger_wants(r->logger, LOG_INFO))
        return;
    struct log_record rec;
    log_begin(&rec, LOG_INFO, "run started");
    log_cstr(&rec, "script", r->cfg->script);
    log_int(&rec, "workers", r->cfg->workers);
    log_int(&rec, "concurrency", r->cfg->concurrency);
    log_cstr(&rec, "version", SHOAL_VERSION);
    log_int(&rec, "pid", (int64_t)getpid());
    logger_emit(r->logger, -1, &rec);
}

static void log_run_end(struct run *r, struct stats *t, double end)
{
    if (!logger_wants(r->logger, LOG_INFO))
        return;
    struct log_record rec;
    log_begin(&rec, LOG_INFO, "run finished");
    log_cstr(&rec, "reason",
             r->interrupted   ? "interrupted"
             : r->stop_reason ? r->stop_reason
                              : "drained");
    log_int(&rec, "ok", (int64_t)counter_get(&t->jobs_ok));
    log_int(&rec, "failed", (int64_t)counter_get(&t->jobs_failed));
    log_int(&rec, "retried", (int64_t)counter_get(&t->retries));
    log_dbl(&rec, "elapsed", end - r->t0);
    logger_emit(r->logger, -1, &rec);
}

/* Writes every accepted line and stops the logger and its sinks. A stuck
 * log file or pipe gets LOG_STOP_MS; the sinks have their own bounds. */
#define LOG_STOP_MS 5000
#define LOG_ABORT_MS 500
#define ITEMS_STOP_MS 10000
static void stop_logger(struct run *r)
{
    if (!r->logger)
        return;
    if (r->aborted)
        logger_finish(r->logger, LOG_ABORT_MS); /* a second Ctrl-C: leave soon */
    else if (threads_left(r))
        logger_finish(r->logger, LOG_STOP_MS); /* threads still run: keep the memory */
    else
        logger_shutdown(r->logger, LOG_STOP_MS);
    r->logger = NULL;
}

/* A queue kept from an earlier process: say what it holds, or that the
 * run is over. Returns -1 if there is nothing left to do. */
static int say_resumed(struct run *r)
{
    struct queue_stats was;
    if (!queue_resumed(r->q, &was))
        return 0;
    const char *dir = r->cfg->state_dir ? r->cfg->state_dir : r->cfg->queue;
    if (!queue_claim(r->q, "producer") && queue_drained(r->q)) {
        fprintf(stderr,
                "shoal: the run kept in %s is finished (%" PRIu64 " jobs done); nothing to do. "
                "Remove it, or give another --state-dir, to run again.\n",
                dir, was.acked);
        return -1;
    }
    fprintf(stderr,
            "shoal: resuming the run kept in %s: %zu jobs waiting, %zu delayed, %zu of them "
            "in flight when it stopped (they run again), %" PRIu64 " done before\n",
            dir, was.ready + was.leased, was.delayed, was.leased, was.acked);
    struct log_record rec;
    log_begin(&rec, LOG_INFO, "resuming a kept run");
    log_cstr(&rec, "state", dir);
    log_int(&rec, "waiting", was.ready + was.leased);
    log_int(&rec, "delayed", was.delayed);
    log_int(&rec, "in_flight_before", was.leased);
    log_int(&rec, "done_before", was.acked);
    log_emit_global(&rec);
    return 0;
}

static long long sink_write(void *arg, const char *bytes, size_t len)
{
    return items_sink_write(arg, bytes, len);
}
static long long sink_size(void *arg)
{
    return items_sink_size(arg);
}
static int sink_cut(void *arg, long long size)
{
    return items_sink_cut(arg, size);
}
static int sink_flush(void *arg)
{
    return items_sink_flush(arg);
}

/* --output. A queue that keeps items (a state dir, a shared queue) writes
 * them itself, with the acks of their jobs: the file is opened keeping what
 * it holds, and the queue cuts it back to what it had committed. */
static int open_items(struct run *r, char *err, size_t errlen)
{
    const struct config *cfg = r->cfg;
    if (cfg->queue && strcmp(cfg->queue, "memory") && queue_items_durable(r->q) &&
        !cfg->try_job) {
        /* a shared run's items are kept in its store, whoever made them;
         * `shoal items` writes them out */
        r->durable_items = r->shared_items = 1;
        struct items_config none = {.nworkers = cfg->workers};
        r->items = items_new(&none, r->metrics, err, errlen);
        return r->items ? 0 : -1;
    }
    int durable = queue_items_durable(r->q) && cfg->output && !cfg->try_job;
    struct items_config ic = {
        .path = cfg->output, .append = cfg->output_append || durable, .nworkers = cfg->workers};
    if (!(r->items = items_new(&ic, r->metrics, err, errlen)))
        return -1;
    if (durable) {
        struct queue_items_sink sink = {
            sink_write, sink_size, sink_cut, sink_flush, r->items, cfg->output_append};
        queue_set_items_sink(r->q, &sink); /* cuts the file back to what was committed */
        r->durable_items = 1;
    }
    if (durable || cfg->output_append)
        items_adopt_header(r->items);
    return 0;
}

int run_script(const struct config *cfg, struct httpd *server, struct runmetrics *metrics,
               const struct otel_config *otel)
{
    (void)server;
    int code = EXIT_OK;
    char err[8192];
    /* found now, not after the whole run */
    if (cfg->summary_json && summary_check_path(cfg->summary_json, err, sizeof err) != 0) {
        fprintf(stderr, "shoal: %s\n", err);
        return EXIT_ENV;
    }
    struct run *r = calloc(1, sizeof *r);
    struct stats *totals = calloc(1, sizeof *totals);
    if (!r || !totals) {
        fprintf(stderr, "shoal: out of memory\n");
        free(r);
        free(totals);
        return EXIT_ENV;
    }
    r->cfg = cfg;
    r->metrics = metrics;
    r->otel = otel;
    /* first: the threads started after it are sampled from their start */
    if (start_profiler(r, err, sizeof err) != 0) {
        fprintf(stderr, "shoal: %s\n", err);
        free(r);
        free(totals);
        return EXIT_ENV;
    }
    if (otel->traces_on &&
        !(r->tracer = tracer_new(otel, cfg->workers + 1, metrics->reg, err, sizeof err))) {
        fprintf(stderr, "shoal: %s\n", err);
        free(r);
        free(totals);
        return EXIT_ENV;
    }
    if (start_logger(r, err, sizeof err) != 0) {
        fprintf(stderr, "shoal: %s\n", err);
        tracer_shutdown(r->tracer);
        free(r);
        free(totals);
        return EXIT_ENV;
    }
    r->nworkers = cfg->workers;
    r->main_thread = pthread_self();
    r->main_stats = calloc(1, sizeof *r->main_stats);
    r->spare_exited = calloc(1, sizeof *r->spare_exited);
    r->workers = calloc((size_t)r->nworkers + 1, sizeof *r->workers);
    r->wakers = calloc((size_t)r->nworkers + 1, sizeof *r->wakers);
    struct queue_config qc = {
        .capacity = (size_t)cfg->queue_size,
        .workers = cfg->workers,
        .group_limit = cfg->per_host,
        /* autothrottle starts each host at 1 s (or --delay) and adapts */
        .group_delay = cfg->autothrottle && cfg->delay < 1 ? 1 : cfg->delay,
        .group_jitter = cfg->delay_jitter,
        .in_flight_max = cfg->workers * cfg->concurrency,
    };
    char spec[4096] = "memory";
    if (cfg->state_dir)
        snprintf(spec, sizeof spec, "sqlite:%s", cfg->state_dir);
    else if (cfg->queue)
        snprintf(spec, sizeof spec, "%s", cfg->queue);
    qc.instance = cfg->instance;
    qc.lease_ttl = cfg->lease_ttl;
    qc.hold_bytes = (size_t)cfg->state_hold_mb << 20;
    qc.sync = !cfg->sync                  ? QUEUE_SYNC_NORMAL
              : !strcmp(cfg->sync, "full")  ? QUEUE_SYNC_FULL
              : !strcmp(cfg->sync, "off") ? QUEUE_SYNC_OFF
                                          : QUEUE_SYNC_NORMAL;
    if (!(r->q = queue_open(spec, &qc, err, sizeof err))) {
        fprintf(stderr, "shoal: %s\n", err);
        code = EXIT_ENV;
        goto out;
    }
    if (say_resumed(r) != 0)
        goto out; /* a finished run: nothing to do */
    if (open_items(r, err, sizeof err) != 0) {
        fprintf(stderr, "shoal: %s\n", err);
        code = EXIT_ENV;
        goto out;
    }
    if (cfg->rate > 0)
        r->rate = rate_new(cfg->rate, 1);
    struct polite_config pc = {
        .delay = cfg->delay, .autothrottle = cfg->autothrottle, .target = cfg->autothrottle_target};
    if (r->q)
        r->polite = polite_new(&pc, r->q);
    if (!(r->scope = scope_new(cfg, err, sizeof err))) {
        fprintf(stderr, "shoal: %s\n", err);
        code = EXIT_USAGE;
        goto out;
    }
    if (cfg->proxy_list && !(r->proxies = proxies_load(cfg->proxy_list, err, sizeof err))) {
        fprintf(stderr, "shoal: %s\n", err);
        code = EXIT_ENV;
        goto out;
    }
    r->sessions = sessions_new();
    int robots = strcmp(cfg->robots, "obey") == 0;
    if (robots)
        r->robots = robots_cache_new(cfg->user_agent);
    if (!r->main_stats || !r->spare_exited || !r->workers || !r->wakers || !r->q ||
        (cfg->rate > 0 && !r->rate) || !r->polite || (robots && !r->robots) || !r->sessions) {
        fprintf(stderr, "shoal: out of memory\n");
        code = EXIT_ENV;
        goto out;
    }
    atomic_store(&r->spare_exited->exited, 1);
    for (int i = 0; i <= r->nworkers; i++)
        queue_set_notify(r->q, i, notify_worker, &r->wakers[i]);

    for (int i = 0; i <= r->nworkers; i++) {
        r->workers[i] = make_worker(r, i, err, sizeof err);
        if (!r->workers[i]) {
            fprintf(stderr, "shoal: %s\n", err);
            code = EXIT_SCRIPT;
            goto out;
        }
        atomic_store(&r->wakers[i], r->workers[i]);
    }

    log_run_start(r);
    r->t0 = clock_now();
    int started = 0;
    for (int i = 0; i <= r->nworkers; i++, started++) {
        if (worker_start(r->workers[i]) != 0) {
            fprintf(stderr, "shoal: cannot start worker thread %d\n", i);
            code = EXIT_ENV;
            run_stop(r, "error");
            break;
        }
    }

    runmetrics_attach_run(metrics, r);
    atomic_store(&metrics->ready, started == r->nworkers + 1);

    int tty = isatty(2) && !cfg->quiet;
    int plain = !isatty(2) && !cfg->quiet; /* CI, | tee: no redrawing */
    double next_plain = r->t0 + PLAIN_PROGRESS_EVERY;
    sigset_t waitset;
    sigemptyset(&waitset);
    sigaddset(&waitset, SIGINT);
    sigaddset(&waitset, SIGTERM);
    sigaddset(&waitset, SIGUSR1);
    sigaddset(&waitset, SIGHUP);
    time_t mtime = cfg->watch ? script_mtime(cfg->script) : 0;
    double next_tick = 0;
    int phase = 0; /* 0: jobs running, 1: producer finishing */
    for (;;) {
        struct timespec ts = {0, TICK_MS * 1000000L};
        int sig = sigtimedwait(&waitset, NULL, &ts);
        double now = clock_now();
        if (sig == SIGHUP)
            logger_reopen(r->logger); /* logrotate moved the file */
        if (sig == SIGINT || sig == SIGTERM) {
            if (r->interrupted) {
                fprintf(stderr, "\nshoal: second interrupt: aborting without waiting for "
                                "in-flight jobs\n");
                r->aborted = 1;
                break;
            }
            r->interrupted = 1;
            if (!cfg->quiet)
                fprintf(stderr, "\nshoal: interrupted: finishing in-flight jobs, no new ones "
                                "(Ctrl-C again to abort)\n");
            run_stop(r, "interrupted");
            if (phase == 1)
                wake_all(r);
        }
        watchdog(r, now);
        if (phase == 0) {
            if (cfg->duration > 0 && now - r->t0 >= cfg->duration)
                run_stop(r, "duration");
            if (cfg->watch && now >= next_tick) {
                time_t m = script_mtime(cfg->script);
                if (m && m != mtime) {
                    mtime = m;
                    atomic_fetch_add(&r->script_gen, 1);
                    wake_all(r);
                }
            }
            if (all_exited(r)) {
                phase = 1;
                gather(r, totals);
                struct summary s;
                fill_summary(r, &s, totals, now);
                r->stats_json = summary_json(&s);
                atomic_store(&r->finish_producer, 1);
                if (r->workers[0] != r->spare_exited)
                    worker_wake(r->workers[0]);
            }
        }
        if (phase == 1 && atomic_load(&r->workers[0]->exited))
            break;
        if (tty && now >= next_tick)
            progress(r, now, 0, 0);
        if (plain && now >= next_plain) {
            progress(r, now, 0, 1);
            while (next_plain <= now)
                next_plain += PLAIN_PROGRESS_EVERY;
        }
        if (now >= next_tick)
            next_tick = now + 0.25;
    }
    atomic_store(&metrics->ready, 0);
    double end = clock_now();
    if (tty)
        progress(r, end, 1, 0);
    if (!r->aborted) {
        for (int i = 0; i <= r->nworkers; i++)
            if (r->workers[i] != r->spare_exited)
                pthread_join(r->workers[i]->thread, NULL);
    }
    if (!threads_left(r)) {
        /* every span is in: flush them (within OTEL_BSP_EXPORT_TIMEOUT) */
        tracer_shutdown(r->tracer);
        r->tracer = NULL;
    }
    gather(r, totals);
    /* every emitted item is written before the summary counts them (a
     * stuck output gets ITEMS_STOP_MS); late emits of threads left
     * running are dropped and counted */
    queue_sync(r->q, 1); /* the last items are written, and the sink let go */
    items_finish(r->items, ITEMS_STOP_MS);
    log_run_end(r, totals, end);
    stop_logger(r);
    if (!threads_left(r)) {
        profiler_shutdown(r->profiler, 5000); /* the last window */
        r->profiler = NULL;
    }
    struct summary s;
    fill_summary(r, &s, totals, end);
    if (r->interrupted)
        s.stop_reason = "interrupted";
    if (cfg->command != CMD_SHELL) /* the prompt was the run: nothing to sum up */
        summary_print(stdout, &s);
    fflush(stdout);
    char serr[4200];
    if (cfg->summary_json && summary_write_json(cfg->summary_json, &s, serr, sizeof serr) != 0) {
        fprintf(stderr, "shoal: %s\n", serr);
        code = EXIT_ENV;
    }
    if (r->producer_error[0])
        fprintf(stderr, "shoal: %s\n", r->producer_error);
    if (r->producer_wedged) {
        code = EXIT_WEDGED;
    } else if (r->producer_error[0]) {
        code = EXIT_SCRIPT;
    } else if (r->wedged > cfg->max_wedged) {
        code = EXIT_WEDGED;
    } else if (r->interrupted) {
        code = EXIT_INTERRUPT;
    } else if (code == EXIT_OK && counter_get(&totals->jobs_failed) > 0) {
        code = EXIT_FAILURES;
    }
    struct queue_stats qs;
    queue_get_stats(r->q, &qs);
    if (qs.store_down && (code == EXIT_OK || code == EXIT_FAILURES || code == EXIT_INTERRUPT)) {
        fprintf(stderr,
                "shoal: the last changes of this run could not be saved in %s (see the log); "
                "its items are written only once they are: run the same command again once "
                "there is room, and it goes on from the last state saved\n",
                cfg->state_dir ? cfg->state_dir : "the queue's store");
        code = EXIT_ENV;
    }
    if ((code == EXIT_OK || code == EXIT_FAILURES) && (s.items_dropped || s.items_failed)) {
        fprintf(stderr, "shoal: %llu item(s) did not reach --output %s (see the items line)\n",
                s.items_dropped + s.items_failed, s.items_output);
        code = EXIT_ENV; /* results were lost: a pipeline must not take them as complete */
    }
    if (threads_left(r)) {
        /* threads are still running Lua we cannot stop: leave without freeing
         * what they might touch */
        fflush(stderr);
        _exit(code);
    }
out:
    runmetrics_attach_run(metrics, NULL);
    tracer_shutdown(r->tracer);
    if (r->q)
        queue_sync(r->q, 1);
    items_shutdown(r->items, 0);
    stop_logger(r);
    profiler_shutdown(r->profiler, 5000);
    if (r->workers)
        for (int i = 0; i <= r->nworkers; i++)
            if (r->workers[i] != r->spare_exited)
                worker_free(r->workers[i]);
    free((void *)r->stats_json);
    queue_free(r->q);
    polite_free(r->polite);
    scope_free(r->scope);
    sessions_free(r->sessions);
    proxies_free(r->proxies);
    robots_cache_free(r->robots);
    rate_free(r->rate);
    free(r->workers);
    free(r->wakers);
    free(r->main_stats);
    free(r->spare_exited);
    free(r);
    free(totals);
    return code;
}
