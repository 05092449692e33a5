/* watchdog.h - a time budget for every entry into script code, on any thread.
 *
 * A thread that runs script code owns a wd_site and brackets each entry
 * into Lua with wd_begin / wd_end: which part of the script runs (its top
 * level, init(), handle(), ...) and until when it may. The Lua state's
 * watchdog hook (lua_state.c) reads the running thread's site (wd_current)
 * to decide whether to raise, and what to say.
 *
 * A watcher on another thread calls wd_check on the site now and then. Past
 * the deadline it sends the owner SIGUSR2, whose handler arms the hook: the
 * hook raises at the next Lua instruction or call. Code the hook never
 * reaches (a JIT-compiled loop with no calls, `while true do end`) is still
 * in the same entry WD_GRACE seconds later: wd_check says WD_STUCK and the
 * watcher decides what to do with the thread. run.c's main loop watches the
 * workers and the producer; a guard thread (wd_guard_begin) watches the main
 * thread itself while it loads a script or runs init().
 *
 * produce() has no time budget (it may rightly run for hours): it is
 * entered with WD_NO_LIMIT and stopped by the watcher setting `stop` when
 * the run ends.
 *
 * Threads: the owner writes its site's atomics, except `stop`, which the
 * watcher sets; seen_seq and since are the watcher's alone. */
#ifndef SHOAL_WATCHDOG_H
#define SHOAL_WATCHDOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* Which part of the script runs. */
enum wd_entry {
    WD_IDLE,
    WD_LOAD,    /* the script's top level (and `shoal check`) */
    WD_INIT,    /* init(worker) */
    WD_HANDLE,  /* handle(job) */
    WD_LABELS,  /* labels(job, outcome) */
    WD_PRODUCE, /* produce(push) */
    WD_DONE,    /* done(stats) */
    WD_RELOAD,  /* the top level again, for --watch */
};

#define WD_GRACE 2.0          /* seconds a hooked entry may take to notice */
#define WD_NO_LIMIT INT64_MAX /* a deadline: in script code, with no time budget */

struct wd_site {
    _Atomic int64_t deadline_ns; /* monotonic; 0 outside script code */
    _Atomic uint64_t seq;        /* bumped at every entry */
    _Atomic int entry;           /* enum wd_entry */
    _Atomic double budget;       /* seconds, for messages; 0 = none */
    _Atomic int stop;            /* set by the watcher: stop code with no time budget now */
    pthread_t thread;            /* the owner (wd_bind) */
    uint64_t seen_seq;           /* watcher: the entry it found late, 0 = none */
    double since;                /* watcher: when it found it late */
};

/* The calling thread owns s from now on (NULL: no site). */
void wd_bind(struct wd_site *s);
/* The calling thread's site, or NULL. Async-signal-safe. */
struct wd_site *wd_current(void);

/* Seconds on the monotonic clock, and a deadline that many seconds from now
 * (WD_NO_LIMIT for seconds <= 0). */
double wd_clock(void);
int64_t wd_after(double seconds);

/* Script code starts running (owner only): e until deadline_ns; budget is
 * what messages quote. wd_end: it stopped. */
void wd_begin(struct wd_site *s, enum wd_entry e, int64_t deadline_ns, double budget);
void wd_end(struct wd_site *s);

enum wd_verdict { WD_FINE, WD_LATE, WD_STUCK };
/* Watcher: WD_FINE (outside script code, or in time); WD_LATE (past its
 * deadline or told to stop: the owner was just sent SIGUSR2); WD_STUCK (late
 * for WD_GRACE seconds in the same entry: the hook cannot reach it). */
enum wd_verdict wd_check(struct wd_site *s, double now);

/* "the script's top level", "init()", "handle()", ... */
const char *wd_entry_name(enum wd_entry e);
/* The option that sets e's budget: "--timeout" or "--hook-timeout". */
const char *wd_entry_flag(enum wd_entry e);

/* Runs the calling thread's next script code (e, for at most budget
 * seconds) under a guard thread that does for it what run.c does for the
 * workers. When the code cannot be stopped the guard says so, naming e and
 * the script, and ends the process with stuck_code; Ctrl-C (SIGINT or
 * SIGTERM) meanwhile ends it at once with interrupt_code. Returns NULL if
 * the guard thread cannot start (the code then runs unguarded). */
struct wd_guard *wd_guard_begin(enum wd_entry e, double budget, const char *script, int stuck_code,
                                int interrupt_code);
/* The code returned: stops the guard (NULL is a no-op). */
void wd_guard_end(struct wd_guard *g);

#endif
