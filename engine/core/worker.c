/* worker.c - a worker thread: its slots and the pass of its loop.
 *
 * Each worker owns a Lua state and an event loop (net/loop.h: a curl multi
 * handle driven through curl_multi_socket_action on its own epoll set, an
 * eventfd other threads write to wake it, and a timer per coroutine slot
 * for attempt deadlines and sleeps). One pass of the loop:
 *
 *   wait on epoll (until the nearest of: curl's timer, a slot's wake time,
 *   a delayed job, the rate limit) -> feed socket events to curl -> resume
 *   the coroutines whose transfers finished -> fire expired sleeps and
 *   deadlines -> take jobs from the queue into free slots.
 *
 * A coroutine that asks for I/O (worker_http_start, worker_sleep_start, a
 * producer's push into a full queue, through lua_host.c) marks its slot
 * with the operation and yields; nothing here blocks except the loop's
 * wait, and that only when no slot can run. Worker 0 is the producer: it
 * runs produce() and, at the end, done(), in slots 0 and 1, and takes no
 * jobs.
 *
 * Shared with other threads: the queue and rate limiter (their own locks),
 * the run's flags (atomics, written by the main thread), this worker's stats
 * counters and watchdog site (atomics, written only here but for the site's
 * `stop`, watchdog.h). */
#include "core/worker.h"
#include "core/gcpace.h"
#include "core/observe.h"
#include "core/producer.h"
#include "base/clock.h"
#include "base/thread.h"
#include "core/runmetrics.h"
#include "telemetry/traces/tracer.h"
#include "telemetry/send/otel.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/backoff.h"
#include "telemetry/profiles/profiler.h"
#include "telemetry/profiles/sampler.h"
#include "base/logfmt.h"
#include "base/logtext.h"
#include "core/queue.h"
#include "core/rate.h"
#include "core/polite.h"
#include "core/run.h"
#include "core/tryout.h"
#include "core/scope.h"

/* ------------------------------------------------------------ timer heap */

static double wake_time(const struct slot *s)
{
    double t = s->deadline;
    if ((s->op == OP_SLEEP || s->op == OP_CACHED) && (t == 0 || s->sleep_until < t))
        t = s->sleep_until;
    return t;
}

/* Keeps the slot's place among the loop's timers right after its deadline,
 * sleep or operation changed. */
void worker_timer_set(struct worker *w, struct slot *s)
{
    loop_timer_set(&w->loop, s->idx, wake_time(s));
}

/* ------------------------------------------------------------ slots */

struct slot *worker_slot_take(struct worker *w)
{
    if (w->nfree == 0)
        return NULL;
    struct slot *s = &w->slots[w->free_slots[--w->nfree]];
    s->busy = 1;
    s->op = OP_NONE;
    s->deadline = 0;
    s->sleep_until = 0;
    s->group_len = 0;
    s->disallowed = 0;
    s->hopeless = 0;
    return s;
}

void worker_slot_put(struct worker *w, struct slot *s)
{
    s->busy = 0;
    s->op = OP_NONE;
    s->deadline = 0;
    worker_timer_set(w, s);
    w->free_slots[w->nfree++] = s->idx;
}

int worker_slot_job(const struct worker *w, int slot, uint64_t *id, int *attempt, int *depth)
{
    const struct slot *s = &w->slots[slot];
    if (!s->busy || s->kind != SLOT_JOB)
        return -1;
    *id = s->job_id;
    *attempt = s->attempt;
    *depth = s->depth;
    return 0;
}

int worker_push_depth(const struct worker *w, int slot)
{
    const struct slot *s = &w->slots[slot];
    return s->busy && s->kind == SLOT_JOB ? s->depth + 1 : 0;
}

void worker_out_of_scope(struct worker *w, int slot, int reason, const char *url, size_t len)
{
    if (reason > 0 && reason < STATS_SCOPE_REASONS)
        counter_add(&w->stats.out_of_scope[reason], 1);
    if (!logger_wants(w->run->logger, LOG_DEBUG))
        return;
    struct log_record rec;
    log_begin(&rec, LOG_DEBUG,
              reason == SCOPE_ROBOTS ? "push dropped: robots.txt disallows it"
                                     : "push dropped: out of the crawl's scope");
    log_str(&rec, "url", url, len);
    log_cstr(&rec, "reason", scope_reason_name((enum scope_reason)reason));
    worker_log(w, slot, &rec);
}

/* Every entry into Lua goes through here, so the watchdog always knows
 * which script code runs, for whom and until when (deadline WD_NO_LIMIT:
 * no time budget; budget: the seconds messages quote); watch_end says it
 * stopped. */
void worker_watch_begin(struct worker *w, enum wd_entry e, uint64_t lease, uint64_t job,
                        int64_t deadline, double budget)
{
    atomic_store_explicit(&w->running_lease, lease, memory_order_relaxed);
    atomic_store_explicit(&w->running_job, job, memory_order_relaxed);
    wd_begin(&w->site, e, deadline, budget);
}

void worker_watch_end(struct worker *w)
{
    wd_end(&w->site);
    lj_watchdog_clear(w->lua);
}

/* LuaJIT's profiler follows the profiler's turn: started or stopped here,
 * on this worker's thread, between resumes. */
static void lua_profile_turn(struct worker *w, int leaving)
{
    struct profiler *p = atomic_load_explicit(&profiler_global, memory_order_relaxed);
    int want = !leaving && p && w->id > 0 && profiler_lua_turn(p) == w->id;
    if (want == w->lua_profiling)
        return;
    if (want) {
        lj_profile_start(w->lua);
        sampler_set_lua_kick(1);
    } else {
        sampler_set_lua_kick(0);
        lj_profile_stop(w->lua);
    }
    w->lua_profiling = want;
    profiler_lua_active(p, w->id, want);
}

/* Code went over the memory cap and failed; the state has been collected.
 * If what is left still takes most of the cap (a script that keeps data in
 * globals from job to job), every job after would fail too: replace the
 * state, unless a fresh one would start nearly as full. */
static void after_cap_hit(struct worker *w)
{
    w->seen_cap_hits = lj_cap_hits(w->lua);
    size_t cap = w->lc.mem_cap;
    if (w->id > 0 && lj_mem_used(w->lua) > cap / 4 * 3 && w->mem_base < cap / 2)
        w->replace_state = 1;
}

int worker_enter_lua(struct worker *w, struct slot *s,
                     int (*fn)(struct worker *, struct slot *, const void *), const void *arg)
{
    int job = s->kind == SLOT_JOB;
    const struct config *cfg = w->run->cfg;
    gcpace_collect_if_full(&w->gc, w->lua);
    if (job)
        worker_watch_begin(w, WD_HANDLE, s->lease, s->job_id, worker_ns(s->deadline), cfg->timeout);
    else if (s->kind == SLOT_DONE)
        worker_watch_begin(w, WD_DONE, 0, 0, worker_ns(s->deadline), cfg->hook_timeout);
    else /* produce() runs until the run ends, which stops it */
        worker_watch_begin(w, WD_PRODUCE, 0, 0, WD_NO_LIMIT, 0);
    if (w->profiling) {
        profiler_set_span(job && s->job_span ? s->job_span->span_id : NULL);
        sampler_set_in_lua(1);
    }
    struct slot *outer = w->in_lua;
    w->in_lua = s;
    int r = fn(w, s, arg);
    w->in_lua = outer;
    if (w->profiling) {
        sampler_set_in_lua(0);
        profiler_set_span(NULL);
    }
    worker_watch_end(w);
    if (lj_cap_hits(w->lua) != w->seen_cap_hits)
        after_cap_hit(w);
    gcpace_between(&w->gc, w->lua);
    return r;
}

static int do_job_start(struct worker *w, struct slot *s, const void *arg)
{
    const struct queue_lease *l = arg;
    return lj_job_start(w->lua, s->idx, l->data, l->len, l->job_id, l->attempt);
}
static int do_resume_http(struct worker *w, struct slot *s, const void *arg)
{
    const struct http_result *res = arg;
    struct lj_http_result r = {
        .status = res->status,
        .body = res->body,
        .body_len = res->body_len,
        .url = res->url,
        .elapsed = res->elapsed,
        .headers = res->headers,
        .headers_len = res->headers_len,
        .error = res->error,
    };
    return lj_resume_http(w->lua, s->idx, &r);
}
static int do_resume(struct worker *w, struct slot *s, const void *arg)
{
    (void)arg;
    return lj_resume(w->lua, s->idx);
}
static int do_resume_again(struct worker *w, struct slot *s, const void *arg)
{
    (void)arg;
    return lj_resume_http_again(w->lua, s->idx);
}
/* The job is finished: with a durable queue its items go with the ack. */
static void ack(struct run *r, struct slot *s)
{
    if (s->items.len) {
        if (queue_ack_items(r->q, s->lease, s->items.p, s->items.len) == 0)
            atomic_fetch_add(&r->items_kept, s->nitems);
    } else {
        queue_ack(r->q, s->lease);
    }
    s->items.len = 0;
    s->nitems = 0;
    if (s->items.cap > (1u << 20)) {
        free(s->items.p);
        s->items = (struct strbuf){0};
    }
}

int worker_item(struct worker *w, const char *rec, size_t len)
{
    struct slot *s = w->in_lua;
    if (!s || s->kind != SLOT_JOB) {
        if (queue_items(w->run->q, rec, len) != 0)
            return -1;
        atomic_fetch_add(&w->run->items_kept, 1);
        return 0;
    }
    strbuf_add(&s->items, rec, len);
    if (s->items.oom) {
        s->items.oom = 0;
        return -1;
    }
    s->nitems++;
    return 0;
}

static void finish_attempt(struct worker *w, struct slot *s, int ok, const char *err)
{
    struct run *r = w->run;
    const struct config *cfg = r->cfg;
    double now = clock_now();
    hist_record(&w->stats.latency, (uint64_t)((now - s->started) * 1e6));
    int will_retry = !ok && !s->final && !s->disallowed && !s->hopeless &&
                     s->attempt <= cfg->retries && !atomic_load(&r->stopping);
    s->final = 0;
    double delay = 0;
    if (will_retry)
        delay = backoff_delay(s->attempt + 1, cfg->retry_delay, 60.0, &w->rng);
    /* its metrics, log line and span; before the lease goes: err may live there */
    observe_attempt(w, s, ok, will_retry, err, now, delay);
    if (ok) {
        counter_add(&w->stats.jobs_ok, 1);
        ack(r, s);
    } else if (s->disallowed) {
        /* robots.txt said no: not a failure, and never retried */
        counter_add(&w->stats.jobs_disallowed, 1);
        ack(r, s);
    } else {
        counter_add(&w->stats.attempts_failed, 1);
        stats_error(&w->stats, err, s->url, s->url_len);
        if (will_retry) {
            if (r->metrics->enabled)
                metric_add(r->metrics->retries_s, 1);
            counter_add(&w->stats.retries, 1);
            queue_retry(r->q, s->lease, delay, now);
            s->items.len = 0; /* the next attempt makes them again */
            s->nitems = 0;
        } else {
            counter_add(&w->stats.jobs_failed, 1);
            ack(r, s);
        }
    }
    w->jobs_inflight--;
    counter_add(&w->stats.inflight, (uint64_t)-1);
    worker_slot_put(w, s);
}

/* Acts on what a resume returned. */
void worker_after_resume(struct worker *w, struct slot *s, int status)
{
    if (s->kind != SLOT_JOB) {
        producer_finished(w, s, status);
        return;
    }
    if (status == LJ_WAIT) {
        worker_timer_set(w, s);
        return;
    }
    s->final = status == LJ_FAIL && lj_final(w->lua, s->idx);
    /* failing past its deadline: the watchdog stopped its Lua (CPU budget) */
    if (status == LJ_FAIL && s->deadline && clock_now() >= s->deadline)
        counter_add(&w->stats.timeouts, 1);
    finish_attempt(w, s, status == LJ_OK, status == LJ_FAIL ? lj_error(w->lua, s->idx) : NULL);
}

/* ------------------------------------------------------------ requests from Lua */

/* The slot's transfer, made on its first request. 0 / -1 + err. */
static int slot_transfer(struct worker *w, struct slot *s, char *err, size_t errlen)
{
    if (s->xfer_ready)
        return 0;
    const struct config *cfg = w->run->cfg;
    if (fetch_init(&s->xfer, s, &w->loop, (size_t)cfg->max_body_mb << 20, cfg->user_agent) != 0) {
        snprintf(err, errlen, "out of memory creating an HTTP handle");
        return -1;
    }
    s->xfer_ready = 1;
    return 0;
}

/* What robots.txt says of req's URL (--robots obey): 0 go ahead, or
 * worker_http_start's 1, -1 or -2. */
static int robots_gate(struct worker *w, struct slot *s, const struct http_request *req,
                       char *err, size_t errlen)
{
    struct run *r = w->run;
    double now = clock_now(), until = 0;
    char why[96] = "";
    switch (robots_cache_check(r->robots, req->url, now, &until, why, sizeof why)) {
    case ROBOTS_ALLOW:
        return 0;
    case ROBOTS_DISALLOW: {
        char origin[ROBOTS_ORIGIN_MAX];
        const char *path;
        size_t plen;
        robots_origin(req->url, origin, &path, &plen);
        snprintf(err, errlen, "robots.txt of %s disallows %.*s (--robots ignore to fetch it)",
                 origin, (int)(plen > 300 ? 300 : plen), path);
        s->disallowed = 1;
        return -2;
    }
    case ROBOTS_UNAVAILABLE: {
        polite_robots_unavailable(r->polite, req->url, until);
        char origin[ROBOTS_ORIGIN_MAX];
        const char *path;
        size_t plen;
        robots_origin(req->url, origin, &path, &plen);
        snprintf(err, errlen,
                 "robots.txt of %s could not be had (%s), so the host is off limits until it "
                 "answers (RFC 9309; --robots ignore to go on); asking again in %.0f s",
                 origin, why, until - now);
        return -1;
    }
    case ROBOTS_WAIT:
        s->op = OP_ROBOTS_WAIT;
        w->robots_waiting++;
        return 1;
    case ROBOTS_FETCH:
        break;
    }
    /* this slot fetches it, on its own transfer, then asks again */
    const char *path;
    size_t plen;
    robots_origin(req->url, s->robots_origin, &path, &plen);
    char url[ROBOTS_ORIGIN_MAX + 16];
    snprintf(url, sizeof url, "%s/robots.txt", s->robots_origin);
    struct httpcache_entry kept;
    if (r->cfg->http_cache && httpcache_load(r->cfg->http_cache, url, &kept) == 1) {
        /* --http-cache: the file as it was, and the verdict at once */
        double delay = robots_cache_store(r->robots, s->robots_origin, kept.status, NULL,
                                          kept.body, kept.body_len, now);
        polite_robots_fetched(r->polite, s->robots_origin, delay, now);
        if (r->cfg->try_job)
            tryout_request("GET", url, kept.status, kept.body_len, 0, NULL);
        httpcache_entry_free(&kept);
        run_robots_changed(r);
        return robots_gate(w, s, req, err, errlen);
    }
    double timeout = r->cfg->timeout < 30 ? r->cfg->timeout : 30;
    struct http_request rr = {
        .method = "GET",
        .url = url,
        .timeout = timeout,
        .follow = 1,
        .compressed = 1,
        .insecure = req->insecure, /* the script's say on this host's certificate */
        .proxy = req->proxy,       /* the way the request would go */
        .max_redirects = 5,        /* RFC 9309 2.3.1.2 */
    };
    if (slot_transfer(w, s, err, errlen) != 0 || fetch_prepare(&s->xfer, &rr, err, errlen) != 0 ||
        loop_add(&w->loop, s->xfer.easy, err, errlen) != 0) {
        robots_cache_abandon(r->robots, s->robots_origin);
        return -1;
    }
    s->op = OP_ROBOTS;
    return 1;
}

/* One line per robots.txt fetched: INFO, WARN when it could not be had. */
static void robots_log(struct worker *w, const char *origin, long status, const char *error,
                       double delay)
{
    int down = status == 0 || status >= 500;
    enum log_level lv = down ? LOG_WARN : LOG_INFO;
    if (!logger_wants(w->run->logger, lv))
        return;
    struct log_record rec;
    log_begin(&rec, lv,
              down ? "robots.txt could not be had: the host is off limits until it answers"
                   : "robots.txt read");
    log_str(&rec, "origin", origin, strlen(origin));
    if (status)
        log_int(&rec, "status", status);
    if (error)
        log_cstr(&rec, "error", error);
    if (delay >= 0)
        log_dbl(&rec, "crawl_delay", delay);
    worker_log(w, -1, &rec);
}

/* A robots.txt this slot fetched is in: stored for everyone, its
 * Crawl-delay given to its host, and the request that waited asks again. */
static void robots_fetched(struct worker *w, struct slot *s, CURLcode result)
{
    struct run *r = w->run;
    struct http_result res;
    fetch_result(&s->xfer, result, &res);
    double now = clock_now();
    long status = res.error ? 0 : res.status;
    double delay = robots_cache_store(r->robots, s->robots_origin, status, res.error, res.body,
                                      res.body_len, now);
    if (r->cfg->http_cache && !res.error && httpcache_keeps(status)) {
        char url[ROBOTS_ORIGIN_MAX + 16], err[300];
        snprintf(url, sizeof url, "%s/robots.txt", s->robots_origin);
        httpcache_store(r->cfg->http_cache, url, status, res.url, res.headers, res.headers_len,
                        res.body, res.body_len, err, sizeof err);
    }
    polite_robots_fetched(r->polite, s->robots_origin, delay, now);
    if (r->cfg->try_job) {
        char url[ROBOTS_ORIGIN_MAX + 16];
        snprintf(url, sizeof url, "%s/robots.txt", s->robots_origin);
        tryout_request("GET", url, status, res.body_len, res.elapsed, res.error);
    }
    robots_log(w, s->robots_origin, status, res.error, delay);
    fetch_release(&s->xfer);
    s->op = OP_NONE;
    run_robots_changed(r);
    worker_timer_set(w, s);
    worker_after_resume(w, s, worker_enter_lua(w, s, do_resume_again, NULL));
}

/* Slots waiting for a robots.txt another request fetched ask again. */
static void robots_recheck(struct worker *w)
{
    unsigned gen = robots_cache_gen(w->run->robots);
    if (gen == w->robots_gen)
        return;
    w->robots_gen = gen;
    for (int i = 0; i < w->nslots && w->robots_waiting > 0; i++) {
        struct slot *s = &w->slots[i];
        if (!s->busy || s->op != OP_ROBOTS_WAIT)
            continue;
        s->op = OP_NONE;
        w->robots_waiting--;
        worker_after_resume(w, s, worker_enter_lua(w, s, do_resume_again, NULL));
    }
}

int worker_http_start(struct worker *w, int slot, const struct http_request *req, char *err,
                      size_t errlen)
{
    struct slot *s = &w->slots[slot];
    if (w->run->robots) {
        int rc = robots_gate(w, s, req, err, errlen);
        if (rc != 0)
            return rc;
    }
    const char *cache = w->run->cfg->http_cache;
    free(s->cache_key);
    s->cache_key = NULL;
    if (cache && !strcmp(req->method, "GET") && !req->body) {
        if (httpcache_load(cache, req->url, &s->cached) == 1) {
            s->op = OP_CACHED; /* replayed from the loop, as an answer would come */
            s->sleep_until = clock_now();
            s->http_method = runmetrics_method("GET");
            return 0;
        }
        s->cache_key = strdup(req->url); /* stored when the answer comes */
    }
    if (slot_transfer(w, s, err, errlen) != 0)
        return -1;
    struct http_request r = *req;
    if (r.timeout <= 0 && !s->deadline)
        r.timeout = w->run->cfg->timeout; /* produce() and done() have no attempt deadline */
    char tp[TRACEPARENT_LEN + 1];
    char ts_line[16 + TRACESTATE_MAX];
    const char *hdrs[65];
    struct trace_ctx client = s->ctx;
    if (client.valid && s->kind == SLOT_JOB) {
        trace_new_span_id(client.span_id);
        if (w->run->otel->propagate) {
            trace_format_traceparent(&client, tp);
            r.traceparent = tp;
            if (s->tracestate && r.nheaders < 64) {
                for (int i = 0; i < r.nheaders; i++)
                    hdrs[i] = req->headers[i];
                snprintf(ts_line, sizeof ts_line, "tracestate: %.*s", (int)s->tracestate_len,
                         s->tracestate);
                hdrs[r.nheaders++] = ts_line;
                r.headers = hdrs;
            }
        }
    }
    if (fetch_prepare(&s->xfer, &r, err, errlen) != 0)
        return -1;
    if (loop_add(&w->loop, s->xfer.easy, err, errlen) != 0)
        return -1;
    s->op = OP_HTTP;
    s->http_method = runmetrics_method(req->method);
    if (client.valid && (client.flags & TRACE_FLAG_SAMPLED) && s->kind == SLOT_JOB)
        s->http_span = observe_client_span(s, &client, req);
    return 0;
}

void worker_sleep_start(struct worker *w, int slot, double seconds)
{
    struct slot *s = &w->slots[slot];
    s->op = OP_SLEEP;
    s->sleep_until = clock_now() + seconds;
    if (s->sleep_until == 0)
        s->sleep_until = 1e-9;
}

int worker_push(struct worker *w, int slot, const char *data, size_t len,
                const struct queue_push_opts *opts, uint64_t *id)
{
    struct queue_push_opts o = *opts;
    o.from_producer = w->id == 0;
    /* the new job's trace links to the span that pushed it, unless the
     * script gave it a traceparent of its own (opts->ctx, 'P') */
    uint8_t ctx[TRACE_CTX_LEN];
    const struct slot *s = &w->slots[slot];
    if (!o.ctx && s->ctx.valid && s->kind == SLOT_JOB) {
        trace_pack(ctx, 'L', &s->ctx);
        o.ctx = ctx;
        o.ctx_len = TRACE_CTX_LEN;
    }
    int rc = queue_push(w->run->q, data, len, &o, clock_now(), id);
    if (rc == QUEUE_FULL || (rc == QUEUE_CLOSED && w->id == 0))
        w->slots[slot].op = OP_ROOM;
    return rc;
}

/* ------------------------------------------------------------ the loop */

/* --http-cache: the answer kept for the slot's GET, as if it had come. */
static void replay(struct worker *w, struct slot *s)
{
    struct http_result res = {
        .status = s->cached.status,
        .body = s->cached.body,
        .body_len = s->cached.body_len,
        .url = s->cached.url,
        .headers = s->cached.headers,
        .headers_len = s->cached.headers_len,
    };
    if (w->run->cfg->try_job)
        tryout_request("GET", res.url, res.status, res.body_len, 0, NULL);
    s->op = OP_NONE;
    s->sleep_until = 0;
    worker_timer_set(w, s);
    worker_after_resume(w, s, worker_enter_lua(w, s, do_resume_http, &res));
    httpcache_entry_free(&s->cached);
}

/* --http-cache: an answer worth keeping is written for the next run. */
static void keep_answer(struct worker *w, struct slot *s, const struct http_result *res)
{
    static _Atomic int warned;
    char err[300];
    if (!httpcache_keeps(res->status) ||
        httpcache_store(w->run->cfg->http_cache, s->cache_key, res->status, res->url,
                        res->headers, res->headers_len, res->body, res->body_len, err,
                        sizeof err) == 0 ||
        atomic_exchange(&warned, 1))
        return;
    worker_log_event(w, LOG_WARN, "--http-cache: an answer could not be kept (later ones may)",
                     "error", err);
}

/* What the host answered tells its group's pause and delay (polite.h). */
static void answered(struct worker *w, struct slot *s, CURL *easy, const struct http_result *res)
{
    curl_off_t ra = 0;
    if (res->status == 429 || res->status == 503)
        curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &ra);
    const char *url = NULL;
    curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url);
    if (!url)
        return;
    double pause = polite_answer(w->run->polite, s->group, s->group_len, url, res->status,
                                 (double)ra, res->elapsed, clock_now());
    if (pause > 0 && logger_wants(w->run->logger, LOG_INFO)) {
        struct log_record rec;
        log_begin(&rec, LOG_INFO, "host paused");
        char group[POLITE_GROUP_MAX];
        size_t glen = s->group_len ? s->group_len : polite_group(url, group);
        log_str(&rec, "group", s->group_len ? s->group : group, glen);
        if (res->status)
            log_int(&rec, "status", res->status);
        log_dbl(&rec, "seconds", pause);
        worker_log(w, s->idx, &rec);
    }
}

static void on_transfer_done(struct worker *w, CURL *easy, CURLcode result)
{
    struct slot *s = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&s);
    if (s && s->op == OP_ROBOTS) {
        robots_fetched(w, s, result);
        return;
    }
    if (!s || s->op != OP_HTTP)
        return;
    struct http_result res;
    fetch_result(&s->xfer, result, &res);
    observe_response(w, s, &res);
    answered(w, s, easy, &res);
    if (s->cache_key && !res.error)
        keep_answer(w, s, &res);
    if (w->run->cfg->try_job) {
        const char *url = NULL;
        curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url);
        tryout_request(runmetrics_method_name(s->http_method), url ? url : "?", res.status,
                       res.body_len, res.elapsed, res.error);
    }
    if (result == CURLE_TOO_MANY_REDIRECTS || s->xfer.too_big || result == CURLE_FILESIZE_EXCEEDED)
        s->hopeless = 1;
    s->op = OP_NONE;
    worker_timer_set(w, s);
    worker_after_resume(w, s, worker_enter_lua(w, s, do_resume_http, &res));
}

static void drain_transfers(struct worker *w)
{
    CURL *easy;
    CURLcode result;
    while ((easy = loop_next_done(&w->loop, &result)))
        on_transfer_done(w, easy, result);
}

void worker_cancel_io(struct worker *w, struct slot *s)
{
    observe_cancelled(w, s);
    if (s->op == OP_HTTP || s->op == OP_ROBOTS) {
        loop_remove(&w->loop, s->xfer.easy);
        fetch_release(&s->xfer);
    }
    if (s->op == OP_ROBOTS) {
        robots_cache_abandon(w->run->robots, s->robots_origin);
        run_robots_changed(w->run);
    }
    if (s->op == OP_ROBOTS_WAIT)
        w->robots_waiting--;
    if (s->op == OP_CACHED)
        httpcache_entry_free(&s->cached);
    s->op = OP_NONE;
}

static void fire_timers(struct worker *w, double now)
{
    double t;
    int id;
    while ((id = loop_timer_first(&w->loop, &t)) >= 0) {
        if (t > now)
            break;
        struct slot *s = &w->slots[id];
        if (s->deadline && s->deadline <= now && s->kind == SLOT_DONE) {
            producer_done_late(w, s);
            continue;
        }
        if (s->deadline && s->deadline <= now && s->kind == SLOT_JOB) {
            worker_cancel_io(w, s);
            lj_abandon(w->lua, s->idx);
            counter_add(&w->stats.timeouts, 1);
            char msg[160];
            snprintf(msg, sizeof msg, "job timed out after %gs (--timeout)", w->run->cfg->timeout);
            finish_attempt(w, s, 0, msg);
            continue;
        }
        if (s->op == OP_CACHED) {
            replay(w, s);
            continue;
        }
        /* a sleep ended */
        s->op = OP_NONE;
        s->sleep_until = 0;
        worker_timer_set(w, s);
        worker_after_resume(w, s, worker_enter_lua(w, s, do_resume, NULL));
    }
}

static void start_job(struct worker *w, const struct queue_lease *l, double now)
{
    struct slot *s = worker_slot_take(w);
    s->kind = SLOT_JOB;
    s->lease = l->lease;
    s->job_id = l->job_id;
    s->attempt = l->attempt;
    s->started = now;
    s->deadline = now + w->run->cfg->timeout;
    s->data = l->data;
    s->len = l->len;
    s->group = l->group;
    s->group_len = l->group_len;
    s->depth = l->depth;
    s->last_status = 0;
    s->url_len = 0;
    if (w->profiling)
        lua_profile_turn(w, 0); /* between resumes; jobs may never leave this loop */
    observe_job_start(w, s, l);
    w->jobs_inflight++;
    counter_add(&w->stats.started, 1);
    counter_add(&w->stats.inflight, 1);
    worker_timer_set(w, s);
    worker_after_resume(w, s, worker_enter_lua(w, s, do_job_start, l));
}

/* --max-jobs: claims one of the run's job starts. Returns 0 once they are
 * all taken, after asking the run to stop. */
static int claim_start(struct run *r)
{
    long max = r->cfg->max_jobs;
    if (!max)
        return 1;
    if (atomic_fetch_add(&r->started_jobs, 1) < max)
        return 1;
    atomic_fetch_sub(&r->started_jobs, 1);
    run_stop(r, "max-jobs");
    return 0;
}

/* Fills free slots from the queue. Returns the time the rate limit next
 * allows a start, or 0. */
static double fill_slots(struct worker *w, double now)
{
    struct run *r = w->run;
    while (w->nfree > 0 && !w->replace_state &&
           !atomic_load_explicit(&r->stopping, memory_order_relaxed)) {
        if (w->held.lease == 0) {
            /* take only once the rate would let the job start: taking
             * starts its host's --delay, so a job held while the rate
             * limit waits would come closer to the next one than that */
            double wait = r->rate ? rate_wait(r->rate, now) : 0;
            if (wait > 0)
                return now + wait;
            if (!queue_take(r->q, w->id, now, &w->held))
                return 0;
            /* a job in hand, then a start claimed for it: a claim is never
             * given back, so two workers near --max-jobs cannot each see
             * the other's passing claim and stop one job short. A retry is
             * not a new job. Past the limit the lease stays held and goes
             * back unstarted when the worker leaves. */
            if (w->held.attempt == 1 && !claim_start(r))
                return 0;
        }
        if (r->rate) {
            double wait = rate_acquire(r->rate, now);
            if (wait > 0)
                return now + wait; /* keep the held lease until a token frees up */
        }
        struct queue_lease l = w->held;
        w->held.lease = 0;
        start_job(w, &l, now);
        now = clock_now();
    }
    return 0;
}

static int compute_timeout_ms(struct worker *w, double now, double rate_at)
{
    double until = now + 1.0; /* re-check flags at least once a second */
    double due = loop_curl_due(&w->loop), t;
    if (due && due < until)
        until = due;
    if (loop_timer_first(&w->loop, &t) >= 0 && t < until)
        until = t;
    if (rate_at && rate_at < until)
        until = rate_at;
    if (w->id != 0 && w->nfree > 0) {
        due = queue_next_due(w->run->q);
        if (due && due < until)
            until = due;
    }
    double ms = (until - now) * 1000.0;
    return ms <= 0 ? 0 : (int)ceil(ms);
}

static int should_exit(struct worker *w)
{
    struct run *r = w->run;
    if (w->id == 0)
        return producer_finished_all(w);
    if (w->jobs_inflight > 0)
        return 0;
    return atomic_load(&r->stopping) || queue_drained(r->q);
}

static void reload_script(struct worker *w)
{
    unsigned gen = atomic_load(&w->run->script_gen);
    if (gen == w->seen_gen)
        return;
    w->seen_gen = gen;
    char err[2048];
    double budget = w->run->cfg->hook_timeout;
    worker_watch_begin(w, WD_RELOAD, 0, 0, wd_after(budget), budget);
    int rc = lj_reload(w->lua, w->run->cfg->script, err, sizeof err);
    worker_watch_end(w);
    if (rc != 0) {
        if (w->id == 1)
            worker_log_event(w, LOG_ERROR,
                             "script reload failed; the previous version keeps running", "error",
                             err);
    } else if (w->id == 1) {
        worker_log_event(w, LOG_INFO, "script reloaded", "script", w->run->cfg->script);
    }
}

/* A fresh state for this worker, made as the first was (script loaded,
 * init() run), once no job of the old one is in flight. On failure the old
 * state stays, and the worker tries no more. */
static void replace_state(struct worker *w)
{
    static _Atomic int warned;
    w->replace_state = 0;
    size_t held = lj_mem_used(w->lua);
    char err[2048], ierr[1900];
    double budget = w->run->cfg->hook_timeout;
    wd_begin(&w->site, WD_LOAD, wd_after(budget), budget);
    lj *fresh = lj_new(&w->lc, err, sizeof err);
    wd_end(&w->site);
    if (fresh) {
        lj_watchdog_clear(fresh);
        wd_begin(&w->site, WD_INIT, wd_after(budget), budget);
        int rc = lj_init(fresh, ierr, sizeof ierr);
        wd_end(&w->site);
        lj_watchdog_clear(fresh);
        if (rc != 0) {
            snprintf(err, sizeof err, "init() failed: %s", ierr);
            lj_free(fresh);
            fresh = NULL;
        }
    }
    if (!fresh) {
        w->mem_base = (size_t)-1; /* do not try again */
        worker_log_event(w, LOG_ERROR, "could not replace a Lua state over its memory cap", "error",
                         err);
        return;
    }
    if (w->profiling)
        lua_profile_turn(w, 1); /* LuaJIT's profiler is bound to the old state */
    lj_free(w->lua);
    w->lua = fresh;
    w->seen_cap_hits = 0;
    w->mem_base = lj_mem_used(fresh);
    metric_add(w->replaced_s, 1);
    gcpace_start(&w->gc, fresh);
    if (!atomic_exchange(&warned, 1)) {
        char text[160];
        snprintf(text, sizeof text,
                 "worker %d held %zu MiB of its %zu MiB cap after a full collection; "
                 "later replacements are counted in shoal_lua_states_replaced_total",
                 w->id, held >> 20, w->lc.mem_cap >> 20);
        worker_log_event(w, LOG_WARN,
                         "a Lua state kept its memory from job to job (data left in globals?) and "
                         "was replaced by a fresh one",
                         "detail", text);
    }
}

/* Runs everything that is ready. Starting jobs adds transfers, which sets
 * curl's timer to "now"; kicking curl can finish transfers at once
 * (loopback), which frees slots: go round until nothing is due. Returns when
 * the rate limit next allows a start (0 = not limited). */
static double run_ready(struct worker *w)
{
    struct run *r = w->run;
    double rate_at = 0;
    for (int rounds = 0; rounds < 64; rounds++) {
        double now = clock_now();
        loop_kick(&w->loop);
        drain_transfers(w);
        fire_timers(w, now);
        if (w->robots_waiting)
            robots_recheck(w);
        if (w->seen_gen != atomic_load_explicit(&r->script_gen, memory_order_relaxed))
            reload_script(w);
        if (w->id == 0) {
            producer_step(w);
        } else {
            rate_at = fill_slots(w, now);
            if (w->replace_state && w->jobs_inflight == 0)
                replace_state(w);
        }
        double due = loop_curl_due(&w->loop);
        if (!due || due > clock_now())
            break;
    }
    return rate_at;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->run;
    wd_bind(&w->site);
    if (w->id == 0)
        thread_name("producer");
    else
        thread_name("worker-%d", w->id);
    metrics_thread_shard(w->id);
    w->profiling = atomic_load(&profiler_global) != NULL &&
                   thread_enter(w->id == 0 ? "producer" : "worker", w->id) == 0;
    w->mem_base = lj_mem_used(w->lua);
    gcpace_start(&w->gc, w->lua);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    if (w->id == 0)
        producer_start(w);
    double rate_at = 0;
    while (!atomic_load(&w->abandoned)) {
        if (w->profiling)
            lua_profile_turn(w, 0);
        rate_at = run_ready(w);
        if (should_exit(w))
            break;
        int timeout = compute_timeout_ms(w, clock_now(), rate_at);
        if (timeout != 0)
            observe_flush(w); /* about to wait: nothing of ours sits still */
        int n = loop_poll(&w->loop, timeout);
        if (atomic_load(&w->abandoned))
            break;
        loop_dispatch(&w->loop, n);
        /* Only now, with every event of this wait fed to curl, do finished
         * jobs resume and new requests go out (run_ready, above): sent in a
         * burst, they wake an idle server once rather than once each. That
         * measured 20% more jobs/s than sending each next request as soon
         * as its slot freed, with nginx on its own core. */
    }
    if (w->held.lease && !atomic_load(&w->abandoned))
        queue_release_worker(r->q, w->id, 0); /* give back the unstarted job, same attempt */
    if (!atomic_load(&w->abandoned))
        observe_flush(w);
    if (w->profiling) {
        lua_profile_turn(w, 1);
        thread_exit();
    }
    gcpace_publish(&w->gc, w->lua);
    atomic_store(&w->exited, 1);
    run_worker_exited(r);
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

void worker_wake(struct worker *w)
{
    loop_wake(&w->loop);
}

struct worker *worker_new(struct run *run, int id, char *err, size_t errlen)
{
    const struct config *cfg = run->cfg;
    struct worker *w = calloc(1, sizeof *w);
    if (!w)
        goto oom;
    w->id = id;
    w->run = run;
    w->loop.epfd = w->loop.evfd = -1; /* nothing for worker_free to close yet */
    w->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)id * 0xbf58476d1ce4e5b9ull) ^
             (uint64_t)(clock_now() * 1e9);
    w->nslots = id == 0 ? 2 : cfg->concurrency;
    w->slots = calloc((size_t)w->nslots, sizeof *w->slots);
    w->free_slots = calloc((size_t)w->nslots, sizeof *w->free_slots);
    if (!w->slots || !w->free_slots)
        goto oom;
    for (int i = w->nslots - 1; i >= 0; i--) {
        w->slots[i].idx = i;
        w->free_slots[w->nfree++] = i;
    }
    w->gc.mem_soft = (size_t)cfg->memory_mb * 1024 * 1024 / 2;
    if (loop_init(&w->loop, w->nslots, (long)w->nslots + 16, err, errlen) != 0)
        goto fail;

    w->lc = (struct lj_config){
        .worker_id = id,
        .script = cfg->script,
        .lua_path = cfg->lua_path,
        .mem_cap = (size_t)cfg->memory_mb * 1024 * 1024,
        .slots = w->nslots,
        .timeout = cfg->timeout,
        .args = cfg->args,
        .nargs = cfg->nargs,
        .listen = cfg->listen,
        .host_ops = &worker_lua_host,
        .host = w,
        .registry = run->metrics->reg,
        .tracing = run->tracer != NULL,
        .nmetric_labels = cfg->nmetric_labels,
    };
    for (int i = 0; i < cfg->nmetric_labels; i++)
        w->label_names[i] = cfg->metric_labels[i];
    w->lc.metric_labels = w->label_names;
    w->lua = lj_new(&w->lc, err, errlen);
    if (!w->lua)
        goto fail;
    struct runmetrics *m = run->metrics;
    char idtext[16];
    snprintf(idtext, sizeof idtext, "%d", id);
    const char *wl[1] = {idtext};
    w->gc.memory = metrics_series(m->lua_memory, wl, NULL, 1);
    w->gc.seconds = metrics_series(m->lua_gc_seconds, wl, NULL, 1);
    w->gc.cycles = metrics_series(m->lua_gc_cycles, wl, NULL, 1);
    w->gc.assists = metrics_series(m->lua_gc_assists, wl, NULL, 1);
    w->gc.coroutines = metrics_series(m->lua_coroutines, wl, NULL, 1);
    w->replaced_s = metrics_series(m->lua_states_replaced, wl, NULL, 1);
    w->http_series = calloc((size_t)RM_METHODS * 600, sizeof *w->http_series);
    if (!w->http_series)
        goto oom;
    w->seen_gen = atomic_load(&run->script_gen);
    return w;
oom:
    snprintf(err, errlen, "out of memory creating worker %d", id);
fail:
    worker_free(w);
    return NULL;
}

int worker_start(struct worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    for (int i = 0; w->slots && i < w->nslots; i++) {
        if (w->slots[i].xfer_ready) {
            if (w->loop.multi)
                loop_remove(&w->loop, w->slots[i].xfer.easy);
            fetch_cleanup(&w->slots[i].xfer);
        }
        free(w->slots[i].url);
        free(w->slots[i].cache_key);
        free(w->slots[i].items.p);
        httpcache_entry_free(&w->slots[i].cached);
    }
    loop_free(&w->loop);
    lj_free(w->lua);
    free(w->slots);
    free(w->free_slots);
    free(w->http_series);
    free(w);
}
