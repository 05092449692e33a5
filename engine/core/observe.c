/* observe.c - what a worker tells about its jobs: spans (the job's
 * process_job, the script's own, a CLIENT span per request), log records
 * (the script's, each attempt's line, the worker's events), the attempt
 * and request metrics and the summary's request counters. Called by
 * worker.c on the worker's thread; nothing here decides what a job does
 * next. */
#include "core/observe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "base/logtext.h"
#include "core/run.h"
#include "core/runmetrics.h"
#include "telemetry/profiles/profiler.h"
#include "telemetry/send/otel.h"
#include "telemetry/traces/tracer.h"

/* ------------------------------------------------------------ logs */

static struct logger *run_logger(const struct worker *w)
{
    return w->run->logger;
}

int worker_log_wants(const struct worker *w, int lv)
{
    return logger_wants(run_logger(w), (enum log_level)lv);
}

/* The job's own ids (its process_job span), or the innermost user span's. */
static void job_ids(const struct slot *s, struct log_record *rec)
{
    if (!s->ctx.valid)
        return;
    rec->has_ids = 1;
    rec->trace_flags = s->ctx.flags;
    memcpy(rec->trace_id, s->ctx.trace_id, 16);
    memcpy(rec->span_id, s->ctx.span_id, 8);
}

void worker_log(struct worker *w, int slot, struct log_record *rec)
{
    rec->worker = w->id;
    if (slot >= 0 && slot < w->nslots && w->slots[slot].kind == SLOT_JOB && w->slots[slot].busy) {
        /* job.id first, as in the engine's own lines */
        struct slot *s = &w->slots[slot];
        if (rec->nfields == LOG_MAX_FIELDS)
            rec->nfields--;
        memmove(&rec->f[1], &rec->f[0], sizeof rec->f[0] * (size_t)rec->nfields);
        rec->nfields++;
        rec->f[0] = (struct log_field){
            .key = "job.id", .key_len = 6, .type = LOG_INT, .i = (int64_t)s->job_id};
        job_ids(s, rec);
    }
    logger_emit(run_logger(w), w->id, rec);
}

void worker_job_url(struct worker *w, int slot, const char *url, size_t len)
{
    struct slot *s = &w->slots[slot];
    if (len > 8192)
        len = 8192;
    if (len + 1 > s->url_cap) {
        char *p = realloc(s->url, len + 1);
        if (!p)
            return;
        s->url = p;
        s->url_cap = len + 1;
    }
    memcpy(s->url, url, len);
    s->url[len] = 0;
    s->url_len = len;
    if (s->job_span)
        worker_trace_attr(w, slot, "job.url", url, len);
}

/* ------------------------------------------------------------ traces */

void observe_job_start(struct worker *w, struct slot *s, const struct queue_lease *l)
{
    struct run *r = w->run;
    memset(&s->ctx, 0, sizeof s->ctx);
    s->job_span = NULL;
    s->nuser = 0;
    if (!r->tracer)
        return;
    struct trace_ctx from = {0};
    char kind = 0;
    s->tracestate = NULL;
    s->tracestate_len = 0;
    if (l->ctx_len >= TRACE_CTX_LEN) {
        kind = (char)l->ctx[0];
        memcpy(from.trace_id, l->ctx + 1, 16);
        memcpy(from.span_id, l->ctx + 17, 8);
        from.flags = l->ctx[25];
        from.valid = 1;
    }
    int continues = kind == 'P';
    if (continues && l->ctx_len > TRACE_CTX_LEN) {
        s->tracestate = (const char *)l->ctx + TRACE_CTX_LEN;
        s->tracestate_len = l->ctx_len - TRACE_CTX_LEN;
    }
    if (continues)
        memcpy(s->ctx.trace_id, from.trace_id, 16);
    else
        trace_new_trace_id(s->ctx.trace_id);
    trace_new_span_id(s->ctx.span_id);
    int sampled =
        trace_sampler_decide(&r->otel->sampler, s->ctx.trace_id, continues ? &from : NULL);
    s->ctx.flags = sampled ? TRACE_FLAG_SAMPLED : 0;
    s->ctx.valid = 1;
    if (!sampled)
        return;
    /* a job continuing someone else's trace serves their request */
    struct span *sp = span_new("process_job", continues ? SPAN_KIND_SERVER : SPAN_KIND_INTERNAL);
    if (!sp)
        return;
    memcpy(sp->trace_id, s->ctx.trace_id, 16);
    memcpy(sp->span_id, s->ctx.span_id, 8);
    sp->flags = s->ctx.flags;
    if (continues)
        memcpy(sp->parent_span_id, from.span_id, 8);
    if (s->tracestate)
        sp->trace_state = strndup(s->tracestate, s->tracestate_len);
    else if (kind == 'L')
        span_add_link(sp, from.trace_id, from.span_id, from.flags);
    sp->start_ns = clock_unix_ns();
    sp->attrs.literal_keys = 1; /* job.url and user attributes come later, copied */
    attrs_int(&sp->attrs, "worker.id", w->id);
    attrs_int(&sp->attrs, "job.id", (int64_t)l->job_id);
    attrs_int(&sp->attrs, "job.attempt", l->attempt);
    sp->attrs.literal_keys = 0;
    if (atomic_load_explicit(&profiler_global, memory_order_relaxed)) {
        /* Grafana's "profiles for this span": the samples taken while this
         * span runs carry the same id as their profile_id label */
        char hex[17];
        trace_hex(sp->span_id, 8, hex);
        attrs_str(&sp->attrs, "pyroscope.profile.id", hex, 16);
    }
    s->job_span = sp;
}

/* First line of a failure message, for a span's status. */
static void first_line(char *out, size_t cap, const char *err)
{
    snprintf(out, cap, "%.*s", (int)strcspn(err ? err : "", "\n"), err ? err : "");
}

/* Hands the worker's finished spans to the tracer, which encodes them. */
void observe_flush(struct worker *w)
{
    if (w->ndone) {
        tracer_submit_many(w->run->tracer, w->id, w->done, (size_t)w->ndone);
        w->ndone = 0;
    }
}

/* Finished spans wait on the worker and go to the tracer together: when
 * WORKER_SPAN_BURST have gathered, or before the worker waits for I/O.
 * Encoding a span the moment it ends would interleave protobuf-c with the
 * script's work on every job (the body a script is about to scan, pushed
 * out of the cache); in bursts, each runs with its own code and data warm. */
static void trace_end_span(struct worker *w, struct span *sp, const char *err)
{
    if (!sp->end_ns)
        sp->end_ns = clock_unix_ns();
    if (err) {
        char line[512];
        first_line(line, sizeof line, err);
        span_set_status(sp, SPAN_STATUS_ERROR, line);
    }
    w->done[w->ndone++] = sp;
    if (w->ndone == WORKER_SPAN_BURST)
        observe_flush(w);
}

static void trace_end_job(struct worker *w, struct slot *s, int ok, const char *err)
{
    while (s->nuser > 0) /* spans the job left open end with it */
        worker_trace_end(w, s->idx, ok ? NULL : err);
    if (s->job_span)
        trace_end_span(w, s->job_span, ok ? NULL : err);
    s->job_span = NULL;
    s->ctx.valid = 0;
}

int worker_trace_current(const struct worker *w, int slot, char trace_id[33], char span_id[17])
{
    const struct slot *s = &w->slots[slot];
    if (!s->ctx.valid || s->kind != SLOT_JOB)
        return -1;
    trace_hex(s->ctx.trace_id, 16, trace_id);
    trace_hex(s->ctx.span_id, 8, span_id);
    return 0;
}

static struct span *innermost(struct slot *s)
{
    return s->nuser ? s->user[s->nuser - 1] : s->job_span;
}

void worker_trace_attr(struct worker *w, int slot, const char *key, const char *value, size_t len)
{
    struct span *sp = innermost(&w->slots[slot]);
    if (!sp)
        return;
    if (sp->attrs.n >= SPAN_MAX_ATTRS) {
        sp->dropped_attrs++;
        return;
    }
    char clean[2048]; /* job.url and script values: secrets redacted, as in url.full */
    size_t n = logtext_redact(clean, sizeof clean, value, len);
    attrs_str(&sp->attrs, key, clean, n);
}

int worker_trace_begin(struct worker *w, int slot, const char *name)
{
    struct slot *s = &w->slots[slot];
    if (!s->ctx.valid || s->nuser == (int)(sizeof s->user / sizeof s->user[0]))
        return -1;
    struct span *sp = NULL;
    if (s->ctx.flags & TRACE_FLAG_SAMPLED) {
        sp = span_new(name, SPAN_KIND_INTERNAL);
        if (!sp)
            return -1;
    }
    s->user_parent[s->nuser] = s->ctx;
    trace_new_span_id(s->ctx.span_id);
    if (sp) {
        memcpy(sp->trace_id, s->ctx.trace_id, 16);
        memcpy(sp->span_id, s->ctx.span_id, 8);
        memcpy(sp->parent_span_id, s->user_parent[s->nuser].span_id, 8);
        sp->flags = s->ctx.flags;
        sp->start_ns = clock_unix_ns();
    }
    s->user[s->nuser++] = sp;
    return 0;
}

int worker_trace_end(struct worker *w, int slot, const char *error)
{
    struct slot *s = &w->slots[slot];
    if (s->nuser == 0)
        return -1;
    struct span *sp = s->user[--s->nuser];
    s->ctx = s->user_parent[s->nuser];
    if (sp)
        trace_end_span(w, sp, error);
    return 0;
}

/* ------------------------------------------------------------ an attempt */

/* jobs_total (when final) and job_duration_seconds for a finished attempt,
 * with the script's custom labels when it declares some. */
static void count_attempt(struct worker *w, struct slot *s, int ok, int final, double seconds)
{
    struct runmetrics *m = w->run->metrics;
    if (!m->enabled)
        return;
    char tid[33];
    int ex = s->job_span != NULL; /* sampled: its trace exists */
    double ts = 0;
    if (ex) {
        trace_hex(s->ctx.trace_id, 16, tid);
        ts = (double)s->job_span->end_ns / 1e9; /* set by finish_attempt */
    }
#define OBSERVE(series)                                                                            \
    do {                                                                                           \
        if (ex)                                                                                    \
            metric_observe_exemplar(series, seconds, tid, ts);                                     \
        else                                                                                       \
            metric_observe(series, seconds);                                                       \
    } while (0)
    if (m->ncustom == 0) {
        OBSERVE(m->duration_all);
        if (final && s->disallowed) {
            const char *no[1] = {"disallowed"};
            metric_add(metrics_series(m->jobs, no, NULL, 1), 1);
        } else if (final) {
            metric_add(ok ? m->jobs_ok : m->jobs_failed, 1);
        }
        return;
    }
    const char *const *vals;
    const size_t *lens;
    /* labels() is script code: the watchdog bounds it like a resume (no
     * lease named, so a wedge here re-queues this job rather than fail it) */
    worker_watch_begin(w, WD_LABELS, 0, s->job_id, worker_ns(clock_now() + w->run->cfg->timeout),
                w->run->cfg->timeout);
    int n = lj_job_labels(w->lua, s->data, s->len, ok, &vals, &lens);
    worker_watch_end(w);
    OBSERVE(metrics_series(m->duration, vals, lens, n));
#undef OBSERVE
    if (final) {
        const char *st = ok ? "success" : s->disallowed ? "disallowed" : "failed";
        const char *jv[RM_MAX_CUSTOM + 1] = {st};
        size_t jl[RM_MAX_CUSTOM + 1] = {strlen(st)};
        for (int i = 0; i < n && i < RM_MAX_CUSTOM; i++) {
            jv[i + 1] = vals[i];
            jl[i + 1] = lens[i];
        }
        metric_add(metrics_series(m->jobs, jv, jl, n + 1), 1);
    }
}

void observe_attempt(struct worker *w, struct slot *s, int ok, int will_retry, const char *err,
                     double now, double delay)
{
    if (s->job_span)
        s->job_span->end_ns = clock_unix_ns(); /* the exemplar's time, too */
    count_attempt(w, s, ok, !will_retry, now - s->started);
    /* the attempt's line: job done (INFO), will retry (WARN), failed
     * (ERROR), disallowed by robots.txt (DEBUG: a crawl meets many) */
    int no = !ok && s->disallowed;
    enum log_level lv = ok ? LOG_INFO : no ? LOG_DEBUG : will_retry ? LOG_WARN : LOG_ERROR;
    if (logger_wants(run_logger(w), lv)) {
        struct log_record rec;
        log_begin(&rec, lv,
                  ok           ? "job done"
                  : no         ? "job disallowed by robots.txt"
                  : will_retry ? "attempt failed; will retry"
                               : "job failed");
        log_int(&rec, "attempt", s->attempt);
        if (s->url_len)
            log_str(&rec, "url", s->url, s->url_len);
        if (s->last_status)
            log_int(&rec, "status", s->last_status);
        log_dbl(&rec, "duration", now - s->started);
        if (will_retry)
            log_dbl(&rec, "retry_in", delay);
        if (!ok)
            log_cstr(&rec, "error", err);
        /* emitted before the span ends: err may live there */
        worker_log(w, s->idx, &rec);
    }
    trace_end_job(w, s, ok, err);
}

/* ------------------------------------------------------------ requests */

/* The CLIENT span of a request, by the OpenTelemetry HTTP conventions. */
struct span *observe_client_span(struct slot *s, const struct trace_ctx *c,
                                const struct http_request *req)
{
    struct span *sp = span_new(req->method, SPAN_KIND_CLIENT);
    if (!sp)
        return NULL;
    memcpy(sp->trace_id, c->trace_id, 16);
    memcpy(sp->span_id, c->span_id, 8);
    memcpy(sp->parent_span_id, s->ctx.span_id, 8);
    sp->flags = c->flags;
    if (s->tracestate)
        sp->trace_state = strndup(s->tracestate, s->tracestate_len);
    sp->start_ns = clock_unix_ns();
    sp->attrs.literal_keys = 1; /* every key here and in end_client_span */
    attrs_str(&sp->attrs, "http.request.method", req->method, strlen(req->method));
    /* credentials in a URL (userinfo, token= and the like) never leave in
     * telemetry */
    char url[2048];
    size_t ulen = logtext_redact(url, sizeof url, req->url, strlen(req->url));
    attrs_str(&sp->attrs, "url.full", url, ulen);
    /* server.address and server.port from scheme://[userinfo@]host[:port]/ */
    const char *p = strstr(req->url, "://");
    if (p) {
        int https = strncasecmp(req->url, "https", 5) == 0;
        p += 3;
        size_t auth = strcspn(p, "/?#");
        const char *at = memchr(p, '@', auth);
        if (at) {
            auth -= (size_t)(at + 1 - p);
            p = at + 1;
        }
        const char *host = p;
        size_t hlen = auth;
        long port = https ? 443 : 80;
        const char *colon = NULL;
        if (*host == '[') {
            const char *close = memchr(host, ']', auth);
            if (close) {
                hlen = (size_t)(close - host) + 1;
                if (hlen < auth && host[hlen] == ':')
                    colon = host + hlen;
            }
        } else {
            colon = memchr(host, ':', auth);
            if (colon)
                hlen = (size_t)(colon - host);
        }
        if (colon)
            port = strtol(colon + 1, NULL, 10);
        attrs_str(&sp->attrs, "server.address", host, hlen);
        attrs_int(&sp->attrs, "server.port", port);
    }
    return sp;
}

static void end_client_span(struct worker *w, struct slot *s, long status, const char *error)
{
    struct span *sp = s->http_span;
    if (!sp)
        return;
    s->http_span = NULL;
    if (status > 0) {
        attrs_int(&sp->attrs, "http.response.status_code", status);
        if (status >= 400) {
            char code[24];
            snprintf(code, sizeof code, "%ld", status);
            attrs_str(&sp->attrs, "error.type", code, strlen(code));
            span_set_status(sp, SPAN_STATUS_ERROR, NULL);
        }
    } else {
        attrs_str(&sp->attrs, "error.type", "_OTHER", 6);
    }
    trace_end_span(w, sp, status > 0 ? NULL : error);
}

void observe_response(struct worker *w, struct slot *s, const struct http_result *res)
{
    counter_add(&w->stats.http_requests, 1);
    if (res->error) {
        counter_add(&w->stats.http_errors, 1);
    } else {
        long st = res->status;
        counter_add(&w->stats.status[st >= 100 && st < 600 ? st / 100 : 0], 1);
        if (st >= 0 && st < 600)
            counter_add(&w->stats.status_code[st], 1);
        counter_add(&w->stats.bytes_in, res->body_len);
    }
    s->last_status = res->error ? 0 : res->status;
    end_client_span(w, s, res->error ? 0 : res->status, res->error);
    struct runmetrics *m = w->run->metrics;
    if (m->enabled) {
        int mi = s->http_method;
        metric_add(runmetrics_http_series(m, w->http_series, mi, res->error ? 0 : res->status), 1);
        if (!w->http_duration_s[mi]) {
            const char *v[1] = {runmetrics_method_name(mi)};
            w->http_duration_s[mi] = metrics_series(m->http_duration, v, NULL, 1);
            w->http_bytes_s[mi] = metrics_series(m->http_bytes, v, NULL, 1);
        }
        metric_observe(w->http_duration_s[mi], res->elapsed);
        metric_add(w->http_bytes_s[mi], (double)res->body_len);
    }
}

void observe_cancelled(struct worker *w, struct slot *s)
{
    end_client_span(w, s, 0, "cancelled at the attempt's deadline (--timeout)");
    if (s->op == OP_HTTP) {
        /* a request with no response, like any transport failure: in the
         * summary's requests and transport errors, and code="error" */
        counter_add(&w->stats.http_requests, 1);
        counter_add(&w->stats.http_errors, 1);
        if (w->run->metrics->enabled)
            metric_add(runmetrics_http_series(w->run->metrics, w->http_series, s->http_method, 0),
                       1);
    }
}

/* An engine event of a worker that is not about one job. */
void worker_log_event(struct worker *w, enum log_level lv, const char *msg, const char *key,
                      const char *value)
{
    if (!logger_wants(run_logger(w), lv))
        return;
    struct log_record rec;
    log_begin(&rec, lv, msg);
    if (key)
        log_cstr(&rec, key, value);
    worker_log(w, -1, &rec);
}

