/* profiler.c - windows of CPU samples, aggregated, named, sent (see
 * profiler.h).
 *
 * Threads: the profiler thread owns the aggregation table, the symbols and
 * the window; it drains the sampler's per-thread buffers (sampler.c's
 * atomics) and the Lua samples (lua_lock). Workers call the hooks: the Lua
 * turn is two atomics (turn, written by the profiler thread; active,
 * written by the worker that holds LuaJIT's profiler). */
#include "telemetry/profiles/profiler.h"
#include "base/clock.h"
#include "base/thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telemetry/logs/logger.h"
#include "telemetry/metrics/metrics.h"
#include "telemetry/profiles/pprof.h"
#include "telemetry/profiles/profile.h"
#include "telemetry/profiles/sampler.h"

struct profiler *_Atomic profiler_global;

#define TICK_MS 100
#define LUA_QUEUE 4096 /* Lua samples between two ticks; past it they are lost */

/* One distinct stack with its labels, and how many samples it got. Lua
 * entries (lua != NULL) hold the script's frames and the C stack of the
 * LuaJIT callback, spliced at lua_resume when the window is named. */
struct entry {
    uint64_t hash;
    int32_t thread;
    uint64_t span;
    uint8_t in_lua, depth, used;
    void *pcs[SAMPLER_DEPTH];
    char *lua; /* "f1;f2;..." innermost first, or NULL */
    double count;
};

struct lua_sample {
    int worker;
    uint64_t span;
    int samples, depth;
    void *pcs[SAMPLER_DEPTH];
    char *stack; /* malloc'd, NUL-terminated; [0] is the VM state */
};

struct profiler {
    struct profiler_config cfg;
    char *dir;
    const struct profile_sink_ops *sink_ops;
    void *sink;
    struct metric_series *written, *failed_s;
    struct symbols *syms;
    /* the window */
    struct entry *tab;
    size_t cap, n;
    uint64_t win_start_ns;
    double win_end; /* monotonic s */
    /* the Lua turn */
    _Atomic int turn, active;
    int next_turn;
    /* Lua samples, from the profiled worker's thread */
    pthread_mutex_t lua_lock;
    struct lua_sample *lq, *lq_work;
    size_t lq_n;
    /* the thread */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;
    int warned;
    struct sampler_sample *drain_buf;
};

static __thread uint64_t tl_span;

/* ------------------------------------------------------------ aggregation */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t key_hash(const struct entry *e)
{
    uint64_t h = mix(0x1234567, (uint64_t)e->thread);
    h = mix(h, e->span);
    h = mix(h, (uint64_t)e->in_lua << 8 | e->depth);
    for (int i = 0; i < e->depth; i++)
        h = mix(h, (uint64_t)(uintptr_t)e->pcs[i]);
    for (const char *s = e->lua; s && *s; s++)
        h = mix(h, (unsigned char)*s);
    return h | 1;
}

static int same_key(const struct entry *a, const struct entry *b)
{
    if (a->hash != b->hash || a->thread != b->thread || a->span != b->span ||
        a->in_lua != b->in_lua || a->depth != b->depth)
        return 0;
    if (memcmp(a->pcs, b->pcs, sizeof a->pcs[0] * a->depth) != 0)
        return 0;
    if (!a->lua || !b->lua)
        return a->lua == b->lua;
    return strcmp(a->lua, b->lua) == 0;
}

static int grow(struct profiler *p)
{
    size_t ncap = p->cap ? p->cap * 2 : 1024;
    struct entry *nt = calloc(ncap, sizeof *nt);
    if (!nt)
        return -1;
    for (size_t i = 0; i < p->cap; i++) {
        if (!p->tab[i].used)
            continue;
        size_t j = p->tab[i].hash & (ncap - 1);
        while (nt[j].used)
            j = (j + 1) & (ncap - 1);
        nt[j] = p->tab[i];
    }
    free(p->tab);
    p->tab = nt;
    p->cap = ncap;
    return 0;
}

/* Adds count to e's stack (e is a key: copied in when new, its lua string
 * taken over). */
static void add(struct profiler *p, struct entry *e, double count)
{
    if ((p->n + 1) * 2 > p->cap && grow(p) != 0) {
        free(e->lua);
        return;
    }
    e->hash = key_hash(e);
    size_t j = e->hash & (p->cap - 1);
    while (p->tab[j].used) {
        if (same_key(&p->tab[j], e)) {
            p->tab[j].count += count;
            free(e->lua);
            return;
        }
        j = (j + 1) & (p->cap - 1);
    }
    p->tab[j] = *e;
    p->tab[j].used = 1;
    p->tab[j].count = count;
    p->n++;
}

static void clear(struct profiler *p)
{
    for (size_t i = 0; i < p->cap; i++)
        if (p->tab[i].used)
            free(p->tab[i].lua);
    memset(p->tab, 0, sizeof *p->tab * p->cap);
    p->n = 0;
}

#define DRAIN_MAX 1024

static void take_samples(struct profiler *p)
{
    size_t got;
    while ((got = sampler_drain(p->drain_buf, DRAIN_MAX)) > 0) {
        for (size_t i = 0; i < got; i++) {
            struct sampler_sample *s = &p->drain_buf[i];
            struct entry e = {
                .thread = s->thread, .span = s->span_id, .in_lua = s->in_lua, .depth = s->depth};
            memcpy(e.pcs, s->pcs, sizeof e.pcs[0] * s->depth);
            add(p, &e, 1);
        }
        if (got < DRAIN_MAX)
            break;
    }
    /* the hook fills the other queue meanwhile */
    pthread_mutex_lock(&p->lua_lock);
    struct lua_sample *q = p->lq;
    size_t n = p->lq_n;
    p->lq = p->lq_work;
    p->lq_work = q;
    p->lq_n = 0;
    pthread_mutex_unlock(&p->lua_lock);
    for (size_t i = 0; i < n; i++) {
        struct lua_sample *s = &q[i];
        /* thread -1 - worker: a Lua entry of that worker */
        struct entry e = {.thread = -1 - s->worker,
                          .span = s->span,
                          .in_lua = 1,
                          .depth = (uint8_t)s->depth,
                          .lua = s->stack};
        memcpy(e.pcs, s->pcs, sizeof e.pcs[0] * (size_t)s->depth);
        add(p, &e, s->samples > 0 ? s->samples : 1);
    }
}

/* ------------------------------------------------------------ naming */

/* The window's functions: each distinct name and file once. Every string
 * is interned in the symbols (symbols_intern), so a pair of pointers is
 * the key. */
struct functab {
    struct symbols *syms;
    struct prof_func *f;
    size_t n, cap;
    uint32_t *idx; /* name+file -> index, open addressing */
    size_t icap;
};

static uint64_t func_hash(const char *name, const char *file)
{
    /* the table takes low bits, and the arena's pointers are aligned */
    uint64_t h = mix(mix(0, (uint64_t)(uintptr_t)name), (uint64_t)(uintptr_t)file);
    return h ^ (h >> 29);
}

/* name and file: interned, or NULL (out of memory: -1) */
static int func_index(struct functab *t, const char *name, const char *file, int64_t line,
                      uint32_t *out)
{
    if (!name || !file)
        return -1;
    if ((t->n + 1) * 2 > t->icap) {
        size_t ncap = t->icap ? t->icap * 2 : 1024;
        uint32_t *ni = malloc(ncap * sizeof *ni);
        if (!ni)
            return -1;
        memset(ni, 0xff, ncap * sizeof *ni);
        for (size_t i = 0; i < t->n; i++) {
            size_t j = func_hash(t->f[i].name, t->f[i].filename) & (ncap - 1);
            while (ni[j] != UINT32_MAX)
                j = (j + 1) & (ncap - 1);
            ni[j] = (uint32_t)i;
        }
        free(t->idx);
        t->idx = ni;
        t->icap = ncap;
    }
    size_t j = func_hash(name, file) & (t->icap - 1);
    while (t->idx[j] != UINT32_MAX) {
        const struct prof_func *f = &t->f[t->idx[j]];
        if (f->name == name && f->filename == file) {
            *out = t->idx[j];
            return 0;
        }
        j = (j + 1) & (t->icap - 1);
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 512;
        struct prof_func *nf = realloc(t->f, ncap * sizeof *nf);
        if (!nf)
            return -1;
        t->f = nf;
        t->cap = ncap;
    }
    t->f[t->n] = (struct prof_func){.name = name, .filename = file, .line = line};
    t->idx[j] = (uint32_t)t->n;
    *out = (uint32_t)t->n++;
    return 0;
}

/* A function of the engine's own naming ("[LuaJIT interpreter]"), no file. */
static int named_func(struct functab *t, const char *name, uint32_t *out)
{
    return func_index(t, symbols_intern(t->syms, name, strlen(name)),
                      symbols_intern(t->syms, "", 0), 0, out);
}

static void functab_free(struct functab *t)
{
    free(t->f);
    free(t->idx);
}

/* A Lua frame "name file:line" as a function: the whole text is its name
 * (a flame graph shows where in the function), file and line apart. */
static int lua_func(struct functab *t, const char *frame, size_t n, uint32_t *out)
{
    const char *name = symbols_intern(t->syms, frame, n);
    if (!name)
        return -1;
    const char *sp = strrchr(name, ' ');
    const char *loc = sp ? sp + 1 : name;
    const char *colon = strrchr(loc, ':');
    const char *file = symbols_intern(t->syms, loc, colon ? (size_t)(colon - loc) : strlen(loc));
    return func_index(t, name, file, colon ? atoll(colon + 1) : 0, out);
}

static int c_func(struct functab *t, void *pc, int leaf, int in_lua, uint32_t *out)
{
    const char *name, *file;
    int64_t line;
    /* a leaf is the interrupted instruction itself; symbols_lookup takes
     * return addresses (it looks up pc - 1) */
    symbols_lookup(t->syms, (uintptr_t)pc + (leaf ? 1 : 0), &name, &file, &line);
    /* machine code LuaJIT made has no symbol, and no frame to walk past */
    if (in_lua && !strcmp(name, "??"))
        return named_func(t, "[LuaJIT compiled code]", out);
    if (in_lua && !strncmp(name, "[libluajit", 10))
        return named_func(t, "[LuaJIT interpreter]", out);
    return func_index(t, name, file, line, out);
}

static const char *vm_frame(int vmstate)
{
    switch (vmstate) {
    case 'G':
        return "[LuaJIT garbage collector]";
    case 'J':
        return "[LuaJIT JIT compiler]";
    default:
        return NULL;
    }
}

/* Frames of one entry, leaf first, into out (room for max). */
static int frames_of(struct functab *t, const struct entry *e, uint32_t *out, int max)
{
    int n = 0;
    if (!e->lua) {
        for (int i = 0; i < e->depth && n < max; i++)
            if (c_func(t, e->pcs[i], i == 0, e->in_lua, &out[n]) == 0)
                n++;
        return n;
    }
    /* the script's frames, then the C stack from lua_resume down */
    const char *s = e->lua;
    int vmstate = (unsigned char)s[0];
    s++;
    const char *vm = vm_frame(vmstate);
    if (vm && named_func(t, vm, &out[n]) == 0)
        n++;
    while (*s && n < max) {
        const char *end = strchr(s, ';');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len && lua_func(t, s, len, &out[n]) == 0)
            n++;
        s += len + (end ? 1 : 0);
    }
    /* the callback's C stack: this file's hook, LuaJIT's own frames (its
     * VM leaves lua_resume no frame of its own), then the engine's call
     * into Lua: keep from there down (all of it when that is not found) */
    const char *name[SAMPLER_DEPTH], *file[SAMPLER_DEPTH];
    int64_t line[SAMPLER_DEPTH];
    int from = 0, in_vm = 0;
    for (int i = 0; i < e->depth; i++) {
        symbols_lookup(t->syms, (uintptr_t)e->pcs[i], &name[i], &file[i], &line[i]);
        if (from)
            continue;
        if (!strncmp(name[i], "[libluajit", 10) || !strcmp(name[i], "??") ||
            !strncmp(name[i], "lua_", 4))
            in_vm = 1;
        else if (in_vm)
            from = i;
    }
    for (int i = from; i < e->depth && n < max; i++)
        if (func_index(t, name[i], file[i], line[i], &out[n]) == 0)
            n++;
    return n;
}

/* ------------------------------------------------------------ windows */

static void warn_once(struct profiler *p, const char *msg, const char *what)
{
    if (p->warned)
        return;
    p->warned = 1;
    struct log_record r;
    log_begin(&r, LOG_WARN, msg);
    log_cstr(&r, "error", what);
    log_emit_global(&r);
}

/* Sends or writes the window's profile, and starts the next window. */
static void end_window(struct profiler *p)
{
    take_samples(p);
    uint64_t end_ns = clock_unix_ns();
    /* a Lua-profiled worker's samples inside Lua are told again, better,
     * by its Lua entries: those take their weight, shared in proportion */
    int nw = p->cfg.nworkers + 1;
    double *c_in_lua = calloc((size_t)nw, sizeof *c_in_lua);
    double *lua_total = calloc((size_t)nw, sizeof *lua_total);
    for (size_t i = 0; c_in_lua && lua_total && i < p->cap; i++) {
        struct entry *e = &p->tab[i];
        if (!e->used)
            continue;
        int worker;
        if (e->lua) {
            worker = -1 - e->thread;
            if (worker > 0 && worker < nw)
                lua_total[worker] += e->count;
        } else if (e->in_lua) {
            const char *name;
            sampler_thread_info(e->thread, &name, &worker);
            if (worker > 0 && worker < nw)
                c_in_lua[worker] += e->count;
        }
    }
#define REPLACED(w)                                                                                \
    (c_in_lua && lua_total && (w) > 0 && (w) < nw && lua_total[w] > 0 && c_in_lua[w] > 0)
    struct functab ft = {.syms = p->syms};
    struct prof_sample *samples = calloc(p->n ? p->n : 1, sizeof *samples);
    uint32_t *frames =
        malloc(sizeof *frames * (p->n ? p->n : 1) * (SAMPLER_DEPTH + PROFILER_LUA_DEPTH + 1));
    size_t ns = 0, used = 0;
    int64_t period = sampler_period_ns();
    for (size_t i = 0; samples && frames && i < p->cap; i++) {
        struct entry *e = &p->tab[i];
        if (!e->used)
            continue;
        const char *tname = "worker";
        int worker = -1;
        double count = e->count;
        if (e->lua) {
            worker = -1 - e->thread;
            if (REPLACED(worker))
                count = e->count * c_in_lua[worker] / lua_total[worker];
        } else {
            sampler_thread_info(e->thread, &tname, &worker);
            if (e->in_lua && REPLACED(worker))
                continue;
        }
        int64_t c = (int64_t)(count + 0.5);
        if (c <= 0)
            continue;
        int nf = frames_of(&ft, e, frames + used, SAMPLER_DEPTH + PROFILER_LUA_DEPTH);
        if (nf == 0)
            continue;
        samples[ns++] = (struct prof_sample){.frames = frames + used,
                                             .nframes = nf,
                                             .count = c,
                                             .cpu_ns = c * period,
                                             .worker = worker,
                                             .thread = tname,
                                             .span_id = e->span};
        used += (size_t)nf;
    }
    if (ns > 0) {
        struct prof_profile prof = {.start_ns = p->win_start_ns,
                                    .end_ns = end_ns,
                                    .period_ns = period,
                                    .funcs = ft.f,
                                    .nfuncs = ft.n,
                                    .samples = samples,
                                    .nsamples = ns};
        uint8_t *gz = NULL;
        size_t len = 0;
        if (pprof_encode(&prof, &gz, &len) == 0) {
            if (p->dir) {
                char err[512];
                if (pprof_write_dir(p->dir, p->win_start_ns, gz, len, err, sizeof err) != 0) {
                    warn_once(p, "cannot write a profile", err);
                    if (p->failed_s)
                        metric_add(p->failed_s, 1);
                } else if (p->written) {
                    metric_add(p->written, 1);
                }
            }
            if (p->sink) {
                p->sink_ops->submit(p->sink, gz, len, p->win_start_ns, end_ns);
                gz = NULL;
            }
            free(gz);
        }
    }
#undef REPLACED
    free(c_in_lua);
    free(lua_total);
    free(samples);
    free(frames);
    functab_free(&ft);
    clear(p);
    p->win_start_ns = end_ns;
    p->win_end = clock_now() + p->cfg.interval;
}

/* Moves the Lua turn on: the holder must have let go before the next may
 * start (LuaJIT's profiler is one VM at a time). */
static void rotate(struct profiler *p)
{
    if (p->cfg.nworkers <= 0)
        return;
    atomic_store(&p->turn, 0);
    p->next_turn = p->next_turn % p->cfg.nworkers + 1;
}

static void *profiler_main(void *arg)
{
    struct profiler *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (!p->stopping)
            thread_cond_wait_until(&p->cond, &p->lock, clock_now() + TICK_MS / 1000.0);
        int stopping = p->stopping;
        pthread_mutex_unlock(&p->lock);
        take_samples(p);
        if (atomic_load(&p->turn) == 0 && atomic_load(&p->active) == 0 && p->next_turn > 0 &&
            !stopping)
            atomic_store(&p->turn, p->next_turn);
        if (stopping || clock_now() >= p->win_end) {
            end_window(p);
            rotate(p);
        }
        if (stopping)
            break;
    }
    return NULL;
}

/* ------------------------------------------------------------ hooks */

int profiler_lua_turn(const struct profiler *p)
{
    return p ? atomic_load_explicit(&p->turn, memory_order_relaxed) : 0;
}

void profiler_lua_active(struct profiler *p, int worker, int on)
{
    if (!p)
        return;
    atomic_store(&p->active, on ? worker : 0);
}

void profiler_lua_sample(struct profiler *p, int worker, const char *stack, size_t len, int samples,
                         int vmstate)
{
    if (!p)
        return;
    struct lua_sample s = {.worker = worker, .span = tl_span, .samples = samples};
    s.depth = sampler_backtrace(s.pcs, SAMPLER_DEPTH);
    /* the stack's first byte carries the VM state */
    s.stack = malloc(len + 2);
    if (!s.stack)
        return;
    s.stack[0] = (char)vmstate;
    memcpy(s.stack + 1, stack, len);
    s.stack[len + 1] = 0;
    pthread_mutex_lock(&p->lua_lock);
    if (p->lq_n < LUA_QUEUE) {
        p->lq[p->lq_n++] = s;
        s.stack = NULL;
    }
    pthread_mutex_unlock(&p->lua_lock);
    free(s.stack);
}

void profiler_set_span(const uint8_t span_id[8])
{
    uint64_t v = 0;
    for (int i = 0; span_id && i < 8; i++)
        v = v << 8 | span_id[i];
    tl_span = v;
    sampler_set_span(v);
}

/* ------------------------------------------------------------ life */

static void free_parts(struct profiler *p)
{
    symbols_free(p->syms);
    free(p->drain_buf);
    free(p->lq);
    free(p->lq_work);
    free(p->tab);
    free(p->dir);
    free(p);
}

struct profiler *profiler_new(const struct profiler_config *c, struct registry *m, char *err,
                              size_t errlen)
{
    struct profiler *p = calloc(1, sizeof *p);
    if (!p)
        goto oom;
    p->cfg = *c;
    p->sink_ops = c->sink_ops;
    p->sink = c->sink;
    if (p->cfg.hz <= 0)
        p->cfg.hz = 100;
    if (p->cfg.interval <= 0)
        p->cfg.interval = 10;
    p->drain_buf = malloc(sizeof *p->drain_buf * DRAIN_MAX);
    p->lq = calloc(LUA_QUEUE, sizeof *p->lq);
    p->lq_work = calloc(LUA_QUEUE, sizeof *p->lq);
    p->syms = symbols_new();
    if (!p->drain_buf || !p->lq || !p->lq_work || !p->syms || grow(p) != 0)
        goto oom;
    if (c->dir && !(p->dir = strdup(c->dir)))
        goto oom;
    struct telemetry_counts tc = metrics_telemetry_counts(m, "profiles");
    p->written = tc.exported;
    p->failed_s = tc.failed;
    if (sampler_init(p->cfg.hz, err, errlen) != 0)
        goto fail;
    sampler_thread_enter("main", -1);
    p->win_start_ns = clock_unix_ns();
    p->win_end = clock_now() + p->cfg.interval;
    p->next_turn = c->nworkers > 0 ? 1 : 0;
    pthread_mutex_init(&p->lua_lock, NULL);
    pthread_mutex_init(&p->lock, NULL);
    thread_cond_init(&p->cond);
    /* sampled through the hooks sampler_init set */
    int rc = thread_start(&p->thread, "profiler", 0, profiler_main, p);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the profiler thread: %s", strerror(rc));
        sampler_thread_exit();
        sampler_shutdown();
        goto fail;
    }
    atomic_store(&profiler_global, p);
    return p;
oom:
    snprintf(err, errlen, "out of memory starting the profiler");
fail:
    if (c->sink)
        c->sink_ops->shutdown(c->sink, 0);
    if (p)
        free_parts(p);
    return NULL;
}

void profiler_shutdown(struct profiler *p, long timeout_ms)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    atomic_store(&profiler_global, NULL);
    sampler_thread_exit();
    sampler_shutdown();
    if (p->sink)
        p->sink_ops->shutdown(p->sink, timeout_ms);
    for (size_t i = 0; i < p->lq_n; i++)
        free(p->lq[i].stack);
    clear(p);
    pthread_mutex_destroy(&p->lua_lock);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free_parts(p);
}
