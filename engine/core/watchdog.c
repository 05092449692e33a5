/* watchdog.c - the sites that say which script code runs until when, the
 * check a watcher makes, and the guard thread for the main thread's own
 * script code (see watchdog.h). */
#include "core/watchdog.h"
#include "base/thread.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static __thread struct wd_site *tl_site;

void wd_bind(struct wd_site *s)
{
    if (s)
        s->thread = pthread_self();
    tl_site = s;
}

struct wd_site *wd_current(void)
{
    return tl_site;
}

double wd_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t wd_after(double seconds)
{
    if (seconds <= 0)
        return WD_NO_LIMIT;
    return (int64_t)((wd_clock() + seconds) * 1e9);
}

void wd_begin(struct wd_site *s, enum wd_entry e, int64_t deadline_ns, double budget)
{
    atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed);
    atomic_store_explicit(&s->entry, (int)e, memory_order_relaxed);
    atomic_store_explicit(&s->budget, budget, memory_order_relaxed);
    atomic_store_explicit(&s->deadline_ns, deadline_ns ? deadline_ns : WD_NO_LIMIT,
                          memory_order_release);
}

void wd_end(struct wd_site *s)
{
    atomic_store_explicit(&s->deadline_ns, 0, memory_order_release);
}

enum wd_verdict wd_check(struct wd_site *s, double now)
{
    int64_t dl = atomic_load_explicit(&s->deadline_ns, memory_order_acquire);
    int late = dl != 0 && (dl == WD_NO_LIMIT ? atomic_load(&s->stop) : (int64_t)(now * 1e9) >= dl);
    if (!late) {
        s->seen_seq = 0;
        return WD_FINE;
    }
    uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    if (s->seen_seq != seq) {
        s->seen_seq = seq;
        s->since = now;
    } else if (now - s->since > WD_GRACE) {
        return WD_STUCK;
    }
    pthread_kill(s->thread, SIGUSR2);
    return WD_LATE;
}

const char *wd_entry_name(enum wd_entry e)
{
    switch (e) {
    case WD_LOAD:
        return "the script's top level";
    case WD_INIT:
        return "init()";
    case WD_HANDLE:
        return "handle()";
    case WD_LABELS:
        return "labels()";
    case WD_PRODUCE:
        return "produce()";
    case WD_DONE:
        return "done()";
    case WD_RELOAD:
        return "the reloaded script's top level (--watch)";
    default:
        return "script code";
    }
}

const char *wd_entry_flag(enum wd_entry e)
{
    return e == WD_HANDLE || e == WD_LABELS ? "--timeout" : "--hook-timeout";
}

/* ------------------------------------------------------------ guard */

struct wd_guard {
    struct wd_site site; /* the guarded thread's, while the guard runs */
    struct wd_site *prev;
    pthread_t thread;
    sigset_t old_mask;
    const char *script;
    int stuck_code, interrupt_code;
    _Atomic int done;
};

#define GUARD_TICK_MS 50

/* The main thread is in script code: nobody else waits for Ctrl-C now, and
 * nobody else can stop that code. SIGUSR1 (thread-directed) says it left. */
static void *guard_main(void *arg)
{
    struct wd_guard *g = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    const char *what = wd_entry_name((enum wd_entry)atomic_load(&g->site.entry));
    for (;;) {
        struct timespec ts = {0, GUARD_TICK_MS * 1000000L};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (atomic_load(&g->done)) {
            if (sig == SIGINT || sig == SIGTERM)
                kill(getpid(), sig); /* not ours any more: the main loop's to take */
            return NULL;
        }
        if (sig == SIGINT || sig == SIGTERM) {
            fprintf(stderr, "\nshoal: interrupted while %s of %s was running\n", what, g->script);
            _exit(g->interrupt_code);
        }
        if (wd_check(&g->site, wd_clock()) == WD_STUCK) {
            fprintf(stderr,
                    "shoal: %s: %s did not return within %gs (%s), and the watchdog cannot "
                    "stop it: a loop the JIT compiled with no calls in it, like `while true do "
                    "end`? Exiting.\n",
                    g->script, what, atomic_load(&g->site.budget),
                    wd_entry_flag((enum wd_entry)atomic_load(&g->site.entry)));
            _exit(g->stuck_code);
        }
    }
}

struct wd_guard *wd_guard_begin(enum wd_entry e, double budget, const char *script, int stuck_code,
                                int interrupt_code)
{
    struct wd_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->script = script ? script : "the script";
    g->stuck_code = stuck_code;
    g->interrupt_code = interrupt_code;
    g->prev = wd_current();
    wd_bind(&g->site);
    wd_begin(&g->site, e, wd_after(budget), budget);
    /* the guard starts with what it waits for blocked (sigtimedwait needs
     * that), and SIGUSR2 too: that one is for the thread it guards */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &block, &g->old_mask);
    if (thread_start(&g->thread, "watchdog-guard", 0, guard_main, g) != 0) {
        pthread_sigmask(SIG_SETMASK, &g->old_mask, NULL);
        wd_bind(g->prev);
        free(g);
        return NULL;
    }
    sigset_t mask = g->old_mask;
    sigdelset(&mask, SIGUSR2);
    pthread_sigmask(SIG_SETMASK, &mask, NULL);
    return g;
}

void wd_guard_end(struct wd_guard *g)
{
    if (!g)
        return;
    pthread_sigmask(SIG_SETMASK, &g->old_mask, NULL);
    wd_end(&g->site);
    atomic_store(&g->done, 1);
    pthread_kill(g->thread, SIGUSR1);
    pthread_join(g->thread, NULL);
    wd_bind(g->prev);
    free(g);
}
