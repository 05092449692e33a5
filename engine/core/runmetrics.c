/* runmetrics.c - the engine's metric families, the process collector, and
 * the /metrics and /readyz handlers (see runmetrics.h). */
#include "core/runmetrics.h"

#include "net/httpd.h"
#include "telemetry/logs/logger.h"
#include "core/hosts.h"
#include "core/queue.h"
#include "core/run.h"
#include "core/scope.h"
#include "core/worker.h"

#include <dirent.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

/* gperftools' C interface, present when shoal is linked with tcmalloc. */
int MallocExtension_GetNumericProperty(const char *property, size_t *value)
    __attribute__((weak));

static const char *const method_names[RM_METHODS] = {"GET",   "HEAD",    "POST", "PUT",
                                                     "DELETE", "PATCH", "OPTIONS", "other"};

int runmetrics_method(const char *method)
{
    for (int i = 0; i < RM_METHODS - 1; i++)
        if (strcmp(method, method_names[i]) == 0)
            return i;
    return RM_METHODS - 1;
}

const char *runmetrics_method_name(int method)
{
    return method_names[method >= 0 && method < RM_METHODS ? method : RM_METHODS - 1];
}

static double read_boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    double bt = 0;
    if (!f)
        return 0;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lf", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

/* The crawl's figures: pushes out of scope, and per host. Under m->lock. */
static void collect_crawl(struct runmetrics *m, struct run *r)
{
    for (int k = 1; k < STATS_SCOPE_REASONS; k++) {
        uint64_t n = 0;
        for (int i = 0; i <= r->nworkers; i++)
            n += counter_get(&r->workers[i]->stats.out_of_scope[k]);
        const char *v[1] = {scope_reason_name((enum scope_reason)k)};
        metric_set(metrics_series(m->out_of_scope, v, NULL, 1), (double)n);
    }
    if (!m->hosts && !(m->hosts = calloc(1, sizeof *m->hosts)))
        return;
    struct host_row rows[HOSTS_NAMED + 1];
    size_t ngroups;
    int n = hosts_collect(r->q, clock_now(), m->hosts, rows, HOSTS_NAMED, &rows[HOSTS_NAMED],
                          &ngroups);
    if (ngroups > (size_t)n)
        rows[n++] = rows[HOSTS_NAMED];
    for (int i = 0; i < n; i++) {
        const char *v[1] = {rows[i].name};
        metric_set(metrics_series(m->host_started, v, NULL, 1), (double)rows[i].started);
        metric_set(metrics_series(m->host_inflight, v, NULL, 1), (double)rows[i].inflight);
        metric_set(metrics_series(m->host_waiting, v, NULL, 1), (double)rows[i].waiting);
        metric_set(metrics_series(m->host_delay, v, NULL, 1), rows[i].delay);
        metric_set(metrics_series(m->host_paused, v, NULL, 1), rows[i].paused);
    }
}

/* Process figures from /proc/self (Linux), as Prometheus clients report them. */
static void collect(void *arg)
{
    struct runmetrics *m = arg;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        /* fields after the command name, which may itself hold spaces and ')' */
        char *p = strrchr(buf, ')');
        unsigned long utime, stime, vsize;
        long threads, rss;
        unsigned long long start;
        if (p && sscanf(p + 2,
                        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
                        "%ld %*d %llu %lu %ld",
                        &utime, &stime, &threads, &start, &vsize, &rss) == 6) {
            metric_set(m->cpu, (double)(utime + stime) / (double)tick);
            metric_set(m->threads, (double)threads);
            metric_set(m->vsize, (double)vsize);
            metric_set(m->rss, (double)rss * (double)page);
            if (m->boot_time > 0)
                metric_set(m->start_time, m->boot_time + (double)start / (double)tick);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        metric_set(m->open_fds, (double)(n - 1)); /* less the directory's own */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        metric_set(m->max_fds, rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
    size_t heap = 0;
    if (MallocExtension_GetNumericProperty &&
        MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &heap))
        metric_set(m->heap, (double)heap);
    else
        metric_set(m->heap, (double)mallinfo2().uordblks);

    pthread_mutex_lock(&m->lock);
    struct run *r = m->run;
    if (r) {
        struct queue_stats qs;
        queue_get_stats(r->q, &qs);
        metric_set(m->q_depth_s, (double)qs.ready);
        metric_set(m->delayed_s, (double)qs.delayed);
        metric_set(m->store_up_s, qs.store_down ? 0 : 1);
        metric_set(m->held_s, (double)qs.held);
        metric_set(m->pushed_s, (double)qs.pushed);
        metric_set(m->dedup_s, (double)qs.dup);
        /* the job workers taking jobs now (a wedged one's place is its
         * replacement's) and what they run, from their own counters */
        uint64_t active = 0, inflight = 0;
        for (int i = 1; i <= r->nworkers; i++) {
            struct worker *w = atomic_load(&r->wakers[i]);
            if (w && !atomic_load(&w->exited)) {
                active++;
                inflight += counter_get(&w->stats.inflight);
            }
        }
        metric_set(m->workers_active_s, (double)active);
        metric_set(m->in_flight_s, (double)inflight);
        collect_crawl(m, r);
    }
    pthread_mutex_unlock(&m->lock);
}

void runmetrics_attach_run(struct runmetrics *m, struct run *r)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    if (!r && m->run)
        collect_crawl(m, m->run); /* the final figures, for --linger's scrapes */
    m->run = r;
    if (!r) { /* the workers are gone */
        metric_set(m->workers_active_s, 0);
        metric_set(m->in_flight_s, 0);
    }
    pthread_mutex_unlock(&m->lock);
}


static struct metric_family *declare(struct runmetrics *m, enum metric_type type,
                                     const char *name, const char *help,
                                     const char *const *labels, int nlabels, const double *b,
                                     int nb, char *err, size_t errlen)
{
    return metrics_declare(m->reg, METRIC_ENGINE, type, name, help, labels, nlabels, b, nb, err,
                           errlen);
}

static struct metric_series *one(struct metric_family *f)
{
    return metrics_series(f, NULL, NULL, 0);
}

/* The registry's warnings (a family at its --max-series cap) go to the log. */
static void warn(void *arg, const char *message)
{
    (void)arg;
    struct log_record rec;
    log_begin(&rec, LOG_WARN, message);
    log_emit_global(&rec);
}

/* Fine buckets for GC steps: microseconds to tens of milliseconds. */
static const double gc_buckets[] = {1e-6,   2.5e-6, 5e-6,   1e-5,  2.5e-5, 5e-5,
                                    1e-4,   2.5e-4, 5e-4,   1e-3,  2.5e-3, 5e-3,
                                    1e-2,   2.5e-2, 5e-2,   0.1};

struct runmetrics *runmetrics_new(int nshards, int max_series, int enabled,
                                  const char *const *custom, int ncustom, char *err,
                                  size_t errlen)
{
    struct runmetrics *m = calloc(1, sizeof *m);
    if (!m || !(m->reg = registry_new(nshards, max_series))) {
        free(m);
        snprintf(err, errlen, "out of memory creating the metric registry");
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->enabled = enabled;
    if (ncustom > RM_MAX_CUSTOM)
        ncustom = RM_MAX_CUSTOM;
    m->ncustom = ncustom;
    const char *jl[RM_MAX_CUSTOM + 1] = {"status"}, *dl[RM_MAX_CUSTOM];
    for (int i = 0; i < ncustom; i++) {
        snprintf(m->custom[i], sizeof m->custom[i], "%s", custom[i]);
        jl[i + 1] = dl[i] = m->custom[i];
    }
    static const char *const worker[] = {"worker"},
                             *const mc[] = {"method", "code"}, *const meth[] = {"method"},
                             *const version[] = {"version"}, *const status[] = {"status"},
                             *const reason[] = {"reason"}, *const host[] = {"host"};
#define D(field, type, name, help, labels, n, b, nb)                                              \
    if (!(m->field = declare(m, type, name, help, labels, n, b, nb, err, errlen)))                \
        goto fail;
    D(jobs, METRIC_COUNTER, "jobs_total",
      "Jobs finished, by final status (a retried attempt is not a finished job)", jl,
      ncustom + 1, NULL, 0);
    D(duration, METRIC_HISTOGRAM, "job_duration_seconds",
      "Wall time of each job attempt, from start to success or failure", dl, ncustom, NULL, 0);
    D(retries, METRIC_COUNTER, "job_retries_total",
      "Failed attempts that were scheduled again", NULL, 0, NULL, 0);
    D(in_flight, METRIC_GAUGE, "jobs_in_flight", "Job attempts running now", NULL, 0, NULL,
      0);
    D(workers_active, METRIC_GAUGE, "workers_active",
      "Worker threads taking jobs (the producer and wedged workers excluded)", NULL, 0, NULL,
      0);
    D(queue_depth, METRIC_GAUGE, "jobs_queue_depth", "Jobs ready to run, waiting for a worker",
      NULL, 0, NULL, 0);
    D(delayed, METRIC_GAUGE, "jobs_delayed",
      "Jobs waiting for their time: retries in backoff and pushes with delay=", NULL, 0, NULL,
      0);
    D(store_up, METRIC_GAUGE, "queue_store_up",
      "1 while the queue's store (Redis with --queue) answers; 0 while it is away", NULL, 0,
      NULL, 0);
    D(results_held, METRIC_GAUGE, "queue_results_held",
      "Results (acks, retries, pushes, items) held in this process until the queue's store "
      "is back",
      NULL, 0, NULL, 0);
    D(pushed, METRIC_COUNTER, "jobs_pushed_total", "Jobs accepted into the queue", NULL, 0,
      NULL, 0);
    D(deduplicated, METRIC_COUNTER, "jobs_deduplicated_total",
      "Pushes dropped because their key was seen before", NULL, 0, NULL, 0);
    D(http_requests, METRIC_COUNTER, "http_client_requests_total",
      "HTTP requests made by scripts, by method and status code (code error: no response, "
      "cancelled at --timeout included)",
      mc, 2, NULL, 0);
    D(http_duration, METRIC_HISTOGRAM, "http_client_request_duration_seconds",
      "Time from sending an HTTP request to the end of its response, redirects included", meth,
      1, NULL, 0);
    D(http_bytes, METRIC_COUNTER, "http_client_response_body_bytes_total",
      "Response body bytes received (after decompression)", meth, 1, NULL, 0);
    D(out_of_scope, METRIC_COUNTER, "jobs_out_of_scope_total",
      "Pushes of url jobs dropped as out of the crawl's scope, by reason: depth (--max-depth), "
      "domain (--allowed-domains), include, exclude, max-pages",
      reason, 1, NULL, 0);
    D(host_started, METRIC_COUNTER, "host_jobs_started_total",
      "Jobs started per host (a job's group), the busiest hosts by name and the rest as "
      "__other__",
      host, 1, NULL, 0);
    D(host_inflight, METRIC_GAUGE, "host_jobs_in_flight",
      "Jobs running per host now (at most --per-host)", host, 1, NULL, 0);
    D(host_waiting, METRIC_GAUGE, "host_jobs_waiting",
      "Jobs queued per host, ready or delayed", host, 1, NULL, 0);
    D(host_delay, METRIC_GAUGE, "host_delay_seconds",
      "Least time between two starts on the host now: --delay, Crawl-delay or autothrottle's",
      host, 1, NULL, 0);
    D(host_paused, METRIC_GAUGE, "host_paused_seconds",
      "Seconds until the host may start a job again after a 429, a 503 or failures in a row",
      host, 1, NULL, 0);
    D(items, METRIC_COUNTER, "items_total",
      "Items the script emitted, by status: written to --output, dropped (the writer did not "
      "keep up), failed (the write failed), discarded (no --output)",
      status, 1, NULL, 0);
    struct metric_family *tel[3];
    if (metrics_telemetry_families(m->reg, tel, err, errlen) != 0)
        goto fail;
    m->tel_exported = tel[0];
    m->tel_dropped = tel[1];
    m->tel_failed = tel[2];
    D(lua_memory, METRIC_GAUGE, "shoal_lua_memory_bytes", "Lua heap in use, per worker state",
      worker, 1, NULL, 0);
    D(lua_gc_seconds, METRIC_HISTOGRAM, "shoal_lua_gc_step_seconds",
      "Time of each garbage-collector step the engine runs between resumes, per worker state",
      worker, 1, gc_buckets, (int)(sizeof gc_buckets / sizeof gc_buckets[0]));
    D(lua_gc_cycles, METRIC_COUNTER, "shoal_lua_gc_cycles_total",
      "Garbage-collection cycles completed, per worker state", worker, 1, NULL, 0);
    D(lua_gc_assists, METRIC_COUNTER, "shoal_lua_gc_assists_total",
      "Resumes that allocated so much that the collector ran inside them, per worker state",
      worker, 1, NULL, 0);
    D(lua_states_replaced, METRIC_COUNTER, "shoal_lua_states_replaced_total",
      "Worker states replaced by a fresh one because they still held most of the memory cap "
      "after a full collection",
      worker, 1, NULL, 0);
    D(lua_coroutines, METRIC_GAUGE, "shoal_lua_coroutines",
      "Coroutines alive (one per job slot in use), per worker state", worker, 1, NULL, 0);
    struct metric_family *f;
#define P(series, type, name, help)                                                               \
    if (!(f = declare(m, type, name, help, NULL, 0, NULL, 0, err, errlen)))                       \
        goto fail;                                                                                \
    m->series = one(f);
    P(cpu, METRIC_COUNTER, "process_cpu_seconds_total",
      "Total user and system CPU time spent in seconds.");
    P(rss, METRIC_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.");
    P(vsize, METRIC_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes.");
    P(open_fds, METRIC_GAUGE, "process_open_fds", "Number of open file descriptors.");
    P(max_fds, METRIC_GAUGE, "process_max_fds", "Maximum number of open file descriptors.");
    P(threads, METRIC_GAUGE, "process_threads", "Number of OS threads in the process.");
    P(start_time, METRIC_GAUGE, "process_start_time_seconds",
      "Start time of the process since unix epoch in seconds.");
    P(heap, METRIC_GAUGE, "shoal_malloc_heap_bytes",
      "C heap in use (malloc), Lua states' memory included");
#undef P
#undef D
    struct metric_family *info = declare(m, METRIC_GAUGE, "shoal_build_info",
                                         "Always 1; the version label says which shoal runs",
                                         version, 1, NULL, 0, err, errlen);
    if (!info)
        goto fail;
    const char *v[1] = {SHOAL_VERSION};
    metric_set(metrics_series(info, v, NULL, 1), 1);

    const char *sig[] = {"traces", "logs", "profiles"};
    for (int i = 0; i < 3; i++) {
        const char *s1[1] = {sig[i]};
        metrics_series(m->tel_exported, s1, NULL, 1);
        metrics_series(m->tel_dropped, s1, NULL, 1);
        metrics_series(m->tel_failed, s1, NULL, 1);
    }
    if (ncustom == 0) {
        const char *ok[1] = {"success"}, *bad[1] = {"failed"};
        m->jobs_ok = metrics_series(m->jobs, ok, NULL, 1);
        m->jobs_failed = metrics_series(m->jobs, bad, NULL, 1);
        /* status="disallowed" appears with the first job robots.txt ends */
        m->duration_all = one(m->duration);
    }
    m->retries_s = one(m->retries);
    m->in_flight_s = one(m->in_flight);
    m->workers_active_s = one(m->workers_active);
    m->q_depth_s = one(m->queue_depth);
    m->delayed_s = one(m->delayed);
    m->store_up_s = one(m->store_up);
    m->held_s = one(m->results_held);
    metric_set(m->store_up_s, 1);
    m->pushed_s = one(m->pushed);
    m->dedup_s = one(m->deduplicated);
    registry_on_warn(m->reg, warn, m);
    m->boot_time = read_boot_time();
    registry_add_collector(m->reg, collect, m);
    return m;
fail:
    runmetrics_free(m);
    return NULL;
}

void runmetrics_free(struct runmetrics *m)
{
    if (!m)
        return;
    registry_free(m->reg);
    pthread_mutex_destroy(&m->lock);
    free(m->hosts);
    free(m);
}

struct metric_series *runmetrics_http_series(struct runmetrics *m, struct metric_series **cache,
                                             int method, long status)
{
    if (status < 0 || status >= 600)
        status = 0;
    struct metric_series **slot = &cache[method * 600 + status];
    if (!*slot) {
        char code[8];
        snprintf(code, sizeof code, "%ld", status);
        const char *v[2] = {method_names[method], status ? code : "error"};
        *slot = metrics_series(m->http_requests, v, NULL, 2);
    }
    return *slot;
}

static int on_metrics(void *arg, const struct httpd_request *req, struct httpd_response *resp)
{
    struct runmetrics *m = arg;
    enum metrics_format fmt = metrics_negotiate(req->accept);
    size_t len;
    char *text = metrics_render(m->reg, fmt, &len);
    if (!text)
        return -1;
    resp->content_type = metrics_content_type(fmt);
    resp->body = text;
    resp->len = len;
    return 0;
}

static int on_readyz(void *arg, const struct httpd_request *req, struct httpd_response *resp)
{
    struct runmetrics *m = arg;
    int ready = atomic_load(&m->ready);
    resp->status = ready ? 200 : 503;
    resp->body = strdup(ready                       ? "ready\n"
                        : atomic_load(&m->finished) ? "finished: the run is over; /metrics "
                                                      "holds its final figures\n"
                                                    : "not ready: the script is loading or the "
                                                      "run ended\n");
    resp->len = resp->body ? strlen(resp->body) : 0;
    return 0;
}

int runmetrics_serve(struct runmetrics *m, struct httpd *server)
{
    if (!server)
        return 0;
    if (httpd_route(server, "/metrics", on_metrics, m) != 0 ||
        httpd_route(server, "/readyz", on_readyz, m) != 0)
        return -1;
    return 0;
}
