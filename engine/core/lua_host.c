/* lua_host.c - the engine's side of lua_host.h: what a worker's Lua state
 * asks of it, turned into calls on the worker (worker.h), the queue, the
 * items writer, the profiler and the watchdog.
 *
 * `host` is the worker. worker_lua_host.watch and profile_sample take no
 * host: `shoal check` sets them on a state with none, so its watchdog guard
 * still stops a runaway script. */
#include "core/worker.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/csv.h"
#include "core/items.h"
#include "core/polite.h"
#include "core/robots_cache.h"
#include "core/run.h"
#include "core/scope.h"
#include "core/sessions.h"
#include "core/tryout.h"
#include "telemetry/profiles/profiler.h"

static_assert(LJ_ITEMS_MAX_COLUMNS == ITEMS_MAX_COLUMNS, "lua_host.h's column limit is items.h's");
static_assert(LJ_PROFILE_DEPTH == PROFILER_LUA_DEPTH, "lua_host.h's stack depth is profiler.h's");

static struct items *items_of(void *host)
{
    return ((struct worker *)host)->run->items;
}

static int host_http_start(void *host, int slot, const struct lj_http_request *req, char *err,
                           size_t errlen)
{
    struct http_request r = {
        .method = req->method,
        .url = req->url,
        .headers = req->headers,
        .nheaders = req->nheaders,
        .body = req->body,
        .body_len = req->body_len,
        .timeout = req->timeout,
        .follow = req->follow,
        .insecure = req->insecure,
        .compressed = req->compressed,
        .proxy = req->proxy,
    };
    struct run *run = ((struct worker *)host)->run;
    if (req->session && !(r.share = sessions_get(run->sessions, req->session, req->session_len))) {
        snprintf(err, errlen, "out of memory making session '%s'", req->session);
        return -1;
    }
    char group[POLITE_GROUP_MAX];
    size_t glen;
    if (!r.proxy && run->proxies && (glen = polite_group(req->url, group)))
        r.proxy = proxies_pick(run->proxies, group, glen);
    return worker_http_start(host, slot, &r, err, errlen);
}

static void host_sleep_start(void *host, int slot, double seconds)
{
    worker_sleep_start(host, slot, seconds);
}

static enum lj_push_status host_push(void *host, int slot, const struct lj_push *p, uint64_t *id,
                                     const char **why)
{
    struct worker *w = host;
    struct queue_push_opts opts = {
        .key = p->key,
        .key_len = p->key_len,
        .delay = p->delay,
        .priority = p->priority,
        .group = p->group,
        .group_len = p->group_len,
        .depth = p->depth >= 0 ? p->depth : worker_push_depth(w, slot),
    };
    /* a job with a url: the crawl's scope, and its host as the group; the
     * URL is split once, for robots.txt and the group both */
    char group[POLITE_GROUP_MAX], origin[ROBOTS_ORIGIN_MAX];
    const char *path;
    size_t plen;
    int claimed = 0;
    if (p->url) {
        int split = robots_origin(p->url, origin, &path, &plen) == 0;
        enum scope_reason sr = scope_check(w->run->scope, p->url, p->url_len, opts.depth);
        if (sr == SCOPE_OK && split && w->run->robots &&
            robots_cache_disallows_at(w->run->robots, origin, path, plen)) {
            scope_unclaim(w->run->scope);
            sr = SCOPE_ROBOTS;
        }
        if (sr != SCOPE_OK) {
            *why = scope_reason_name(sr);
            worker_out_of_scope(w, slot, sr, p->url, p->url_len);
            if (w->run->cfg->try_job) {
                char what[64];
                snprintf(what, sizeof what, "dropped: out of scope (%s)", *why);
                tryout_push(p->data, p->len, p->key, p->key_len, what);
            }
            return LJ_PUSH_SCOPE;
        }
        claimed = 1;
        if (!p->group && split) {
            opts.group_len = polite_group_of_origin(origin, group);
            opts.group = group;
        }
    }
    /* a job with a valid traceparent field continues that trace; a
     * malformed one is ignored, as W3C asks */
    uint8_t ctx[TRACE_CTX_LEN + TRACESTATE_MAX];
    struct trace_ctx parent;
    if (p->traceparent &&
        trace_parse_traceparent(p->traceparent, p->traceparent_len, &parent) == 0) {
        trace_pack(ctx, 'P', &parent);
        opts.ctx = ctx;
        opts.ctx_len = TRACE_CTX_LEN;
        /* a bad tracestate is dropped alone */
        if (p->tracestate && trace_state_ok(p->tracestate, p->tracestate_len)) {
            memcpy(ctx + TRACE_CTX_LEN, p->tracestate, p->tracestate_len);
            opts.ctx_len += p->tracestate_len;
        }
    }
    int rc = worker_push(host, slot, p->data, p->len, &opts, id);
    if (rc != QUEUE_OK && claimed)
        scope_unclaim(w->run->scope); /* not accepted: no page of --max-pages */
    if (w->run->cfg->try_job && rc != QUEUE_FULL)
        tryout_push(p->data, p->len, p->key, p->key_len,
                    rc == QUEUE_OK    ? "queued"
                    : rc == QUEUE_DUP ? "dropped: duplicate"
                                      : "dropped: the run is stopping");
    switch (rc) {
    case QUEUE_OK:
        return LJ_PUSH_OK;
    case QUEUE_DUP:
        return LJ_PUSH_DUP;
    case QUEUE_FULL:
        return LJ_PUSH_FULL;
    case QUEUE_CLOSED:
        return LJ_PUSH_CLOSED;
    default:
        return LJ_PUSH_NOMEM;
    }
}

static int host_job(void *host, int slot, uint64_t *id, int *attempt, int *depth)
{
    return worker_slot_job(host, slot, id, attempt, depth);
}

static void host_job_url(void *host, int slot, const char *url, size_t len)
{
    worker_job_url(host, slot, url, len);
}

static int host_log_wants(void *host, int level)
{
    return worker_log_wants(host, level);
}

static void host_log(void *host, int slot, struct log_record *rec)
{
    worker_log(host, slot, rec);
}

static int host_trace_current(void *host, int slot, char trace_id[33], char span_id[17])
{
    return worker_trace_current(host, slot, trace_id, span_id);
}

static int host_trace_begin(void *host, int slot, const char *name)
{
    return worker_trace_begin(host, slot, name);
}

static int host_trace_end(void *host, int slot, const char *error)
{
    return worker_trace_end(host, slot, error);
}

static void host_trace_attr(void *host, int slot, const char *key, const char *value, size_t len)
{
    worker_trace_attr(host, slot, key, value, len);
}

static enum lj_emit_status emit_status(enum items_status st)
{
    switch (st) {
    case ITEMS_OK:
        return LJ_EMIT_OK;
    case ITEMS_DROPPED:
        return LJ_EMIT_DROPPED;
    case ITEMS_DISCARDED:
        return LJ_EMIT_DISCARDED;
    default:
        return LJ_EMIT_TOO_BIG;
    }
}

static enum lj_emit_status host_emit(void *host, const char *json, size_t len)
{
    if (((struct worker *)host)->run->cfg->try_job) {
        tryout_item(json, len);
        return LJ_EMIT_OK;
    }
    struct worker *w = host;
    struct items *it = items_of(host);
    if (w->run->durable_items && (items_format(it) != ITEMS_NONE || w->run->shared_items)) {
        if (len > items_max_bytes(it))
            return LJ_EMIT_TOO_BIG;
        struct strbuf b = {0};
        strbuf_add(&b, json, len);
        strbuf_add(&b, "\n", 1);
        int rc = b.oom ? -1 : worker_item(w, b.p, b.len);
        free(b.p);
        return rc == 0 ? LJ_EMIT_OK : LJ_EMIT_DROPPED;
    }
    return emit_status(items_emit(it, w->id, json, len));
}

static enum lj_emit_status host_emit_csv(void *host, int n, const char *const *cells,
                                         const size_t *lens, const char *extra_key, size_t key_len)
{
    struct items *it = items_of(host);
    if (extra_key)
        items_extra_key(it, extra_key, key_len);
    struct worker *w = host;
    if (w->run->durable_items) {
        struct strbuf b = {0};
        csv_record(&b, n, cells, lens);
        int rc = b.oom ? -1 : b.len > items_max_bytes(it) ? -2 : worker_item(w, b.p, b.len);
        free(b.p);
        return rc == 0 ? LJ_EMIT_OK : rc == -2 ? LJ_EMIT_TOO_BIG : LJ_EMIT_DROPPED;
    }
    return emit_status(items_emit_csv(it, w->id, n, cells, lens));
}

static size_t host_emit_max_bytes(void *host)
{
    return items_max_bytes(items_of(host));
}

static enum lj_items_format host_items_format(void *host)
{
    if (((struct worker *)host)->run->shared_items)
        return LJ_ITEMS_JSONL;
    enum items_format f = items_format(items_of(host));
    return f == ITEMS_CSV ? LJ_ITEMS_CSV : f == ITEMS_JSONL ? LJ_ITEMS_JSONL : LJ_ITEMS_NONE;
}

static int host_items_columns(void *host, int n, const char *const *names, const size_t *lens)
{
    struct items *it = items_of(host);
    if (names && !items_columns(it) && items_set_columns(it, n, names, lens) != 0)
        return -1;
    return items_columns(it);
}

static void host_items_column(void *host, int i, const char **name, size_t *len)
{
    items_column(items_of(host), i, name, len);
}

static void host_profile_sample(int worker_id, const char *stack, size_t len, int samples,
                                int vmstate)
{
    profiler_lua_sample(profiler_global, worker_id, stack, len, samples, vmstate);
}

/* Async-signal-safe: atomics of the calling thread's site only. */
static int host_watch(struct lj_watch *out)
{
    struct wd_site *site = wd_current();
    if (!site)
        return -1;
    out->deadline_ns = atomic_load_explicit(&site->deadline_ns, memory_order_acquire);
    out->stop = out->deadline_ns == WD_NO_LIMIT && atomic_load(&site->stop);
    enum wd_entry e = (enum wd_entry)atomic_load_explicit(&site->entry, memory_order_relaxed);
    out->handle = e == WD_HANDLE;
    out->entry = wd_entry_name(e);
    out->flag = wd_entry_flag(e);
    out->budget = atomic_load(&site->budget);
    return 0;
}

const struct lj_host worker_lua_host = {
    .http_start = host_http_start,
    .sleep_start = host_sleep_start,
    .push = host_push,
    .job = host_job,
    .job_url = host_job_url,
    .log_wants = host_log_wants,
    .log = host_log,
    .trace_current = host_trace_current,
    .trace_begin = host_trace_begin,
    .trace_end = host_trace_end,
    .trace_attr = host_trace_attr,
    .emit = host_emit,
    .emit_csv = host_emit_csv,
    .emit_max_bytes = host_emit_max_bytes,
    .items_format = host_items_format,
    .items_columns = host_items_columns,
    .items_column = host_items_column,
    .profile_sample = host_profile_sample,
    .watch = host_watch,
};
