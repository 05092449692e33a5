/* test_sampler.c - the CPU sampler and the symboliser as the profiler
 * relies on them: a thread burning CPU is sampled about hz times a CPU
 * second and its samples name the function burning it (file and line
 * too); a sleeping thread is not sampled; the span and in-Lua marks are
 * in the samples taken after they are set; the LuaJIT kick raises SIGPROF
 * only inside Lua; a full buffer counts its losses; sampler_backtrace
 * starts at its caller; libc's functions have names; a signal after
 * shutdown is harmless.
 *
 * Counts are checked against wide bounds (at least 30% of CPU seconds x
 * hz) so that a loaded machine does not make the test flaky. Under
 * ThreadSanitizer, which runs signal handlers late and on another stack,
 * only the counts and marks are checked, not the stacks. */
#define _GNU_SOURCE
#include "check.h"
#include "telemetry/profiles/sampler.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#else
#define UNDER_TSAN 0
#endif

#define HZ 200
#define SPAN 0x1122334455667788ull

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile double sink;

static const int burn_decl_line = __LINE__ + 1;
static __attribute__((noinline)) double burn_cpu_here(long n)
{
    double x = 1.0;
    for (long i = 0; i < n; i++)
        x = x * 1.0000001 + 1e-9 / (x + (double)i);
    return x;
}

/* Burns seconds of this thread's CPU, checking the clock about every
 * millisecond so that the samples land in burn_cpu_here. */
static __attribute__((noinline)) void burn_for(double seconds)
{
    double end = thread_cpu() + seconds;
    while (thread_cpu() < end)
        sink = burn_cpu_here(200000);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L}, rem;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
        ts = rem;
}

/* Every sample drained so far, kept for the checks. */
static struct sampler_sample *got;
static size_t ngot, capgot;

static void drain_all(void)
{
    for (;;) {
        if (capgot - ngot < 64) {
            capgot = capgot ? capgot * 2 : 1024;
            got = realloc(got, capgot * sizeof *got);
            if (!got)
                abort();
        }
        size_t n = sampler_drain(got + ngot, 64);
        ngot += n;
        if (n < 64)
            return;
    }
}

static void forget_samples(void)
{
    drain_all();
    ngot = 0;
}

static int thread_of(const char *want)
{
    for (size_t i = 0; i < ngot; i++) {
        const char *name;
        int worker;
        sampler_thread_info(got[i].thread, &name, &worker);
        if (!strcmp(name, want))
            return got[i].thread;
    }
    return -1;
}

/* ------------------------------------------------------------ threads */

struct burner_result {
    double cpu_plain, cpu_marked;
    int entered;
};

static __attribute__((noinline)) void *burner_main(void *arg)
{
    struct burner_result *r = arg;
    r->entered = sampler_thread_enter("burner", 7) == 0;
    double t0 = thread_cpu();
    burn_for(0.25);
    double t1 = thread_cpu();
    sampler_set_span(SPAN);
    sampler_set_in_lua(1);
    burn_for(0.25);
    double t2 = thread_cpu();
    sampler_set_in_lua(0);
    sampler_set_span(0);
    sampler_thread_exit();
    r->cpu_plain = t1 - t0;
    r->cpu_marked = t2 - t1;
    return NULL;
}

static void *sleeper_main(void *arg)
{
    int *entered = arg;
    *entered = sampler_thread_enter("sleeper", -1) == 0;
    for (int i = 0; i < 10; i++)
        sleep_ms(40);
    sampler_thread_exit();
    return NULL;
}

static void test_refuses_before_init(void)
{
    char err[256] = "";
    CHECK_EQ_INT(sampler_thread_enter("early", -1), -1);
    CHECK_EQ_INT(sampler_init(0, err, sizeof err), -1);
    CHECK(strstr(err, "out of range") != NULL);
}

static void test_burn_and_sleep(struct symbols *syms)
{
    forget_samples();
    struct burner_result r = {0};
    int sleeper_entered = 0;
    pthread_t b, sl;
    pthread_create(&b, NULL, burner_main, &r);
    pthread_create(&sl, NULL, sleeper_main, &sleeper_entered);
    pthread_join(b, NULL);
    pthread_join(sl, NULL);
    drain_all();
    CHECK(r.entered);
    CHECK(sleeper_entered);

    int burner = thread_of("burner");
    CHECK(burner >= 0);
    const char *name;
    int worker;
    sampler_thread_info(burner, &name, &worker);
    CHECK_EQ_INT(worker, 7);

    size_t plain = 0, marked = 0, torn = 0, sleeper = 0, in_burn = 0, with_caller = 0;
    int decl_line_ok = 1;
    for (size_t i = 0; i < ngot; i++) {
        const struct sampler_sample *s = &got[i];
        sampler_thread_info(s->thread, &name, &worker);
        if (!strcmp(name, "sleeper"))
            sleeper++;
        if (s->thread != burner)
            continue;
        CHECK(s->depth >= 1 && s->depth <= SAMPLER_DEPTH);
        if (s->span_id == 0 && !s->in_lua)
            plain++;
        else if (s->span_id == SPAN && s->in_lua)
            marked++;
        else
            torn++;
        int found_burn = 0, found_caller = 0;
        for (int d = 0; d < s->depth; d++) {
            const char *fn, *file;
            int64_t line;
            /* the leaf is the interrupted instruction, the rest return
             * addresses */
            symbols_lookup(syms, (uintptr_t)s->pcs[d] + (d == 0), &fn, &file, &line);
            if (d < 2 && !strcmp(fn, "burn_cpu_here")) {
                found_burn = 1;
                if (strcmp(file, "spec/unit/telemetry/profiles/test_sampler.c") ||
                    line != burn_decl_line)
                    decl_line_ok = 0;
            }
            if (!strcmp(fn, "burner_main"))
                found_caller = 1;
        }
        in_burn += found_burn;
        with_caller += found_caller;
    }
    size_t total = plain + marked;
    double want = (r.cpu_plain + r.cpu_marked) * HZ;
    printf("burner: %zu samples for %.3f s of CPU (%.0f expected), %zu in burn_cpu_here, "
           "%zu reach burner_main; sleeper: %zu; lost %llu\n",
           total, r.cpu_plain + r.cpu_marked, want, in_burn, with_caller, sleeper,
           (unsigned long long)sampler_lost());
    CHECK(total >= 0.3 * want);
    CHECK(total <= 2 * want + 10);
    /* the two marks are two stores: a sample may fall between them */
    CHECK(torn <= 2);
    /* each half had its own samples, with the marks of that half */
    CHECK(plain >= 0.3 * r.cpu_plain * HZ);
    CHECK(marked >= 0.3 * r.cpu_marked * HZ);
    CHECK(sleeper <= 2);
    if (!UNDER_TSAN) {
        CHECK(in_burn >= total * 8 / 10);
        CHECK(with_caller >= total * 8 / 10);
        CHECK(decl_line_ok);
    }
}

/* ------------------------------------------------------------ the vDSO */

static void *clock_main(void *arg)
{
    (void)arg;
    sampler_thread_enter("clock", -1);
    double end = thread_cpu() + 0.15;
    struct timespec ts;
    do {
        for (int i = 0; i < 1000; i++)
            clock_gettime(CLOCK_MONOTONIC, &ts);
    } while (thread_cpu() < end);
    sampler_thread_exit();
    return NULL;
}

/* Time is read all the time; the vDSO's functions have their names too
 * (or libc's, where the clock has no vDSO path). */
static void test_vdso_names(struct symbols *syms)
{
    forget_samples();
    pthread_t t;
    pthread_create(&t, NULL, clock_main, NULL);
    pthread_join(t, NULL);
    drain_all();
    int clock = thread_of("clock");
    size_t n = 0, named = 0;
    for (size_t i = 0; i < ngot; i++) {
        if (got[i].thread != clock)
            continue;
        const char *fn, *file;
        int64_t line;
        symbols_lookup(syms, (uintptr_t)got[i].pcs[0] + 1, &fn, &file, &line);
        n++;
        named += strstr(fn, "clock_gettime") != NULL || strstr(fn, "vdso") != NULL;
    }
    printf("clock_gettime loop: %zu samples, %zu in clock_gettime\n", n, named);
    CHECK(n >= 0.3 * 0.15 * HZ);
    if (!UNDER_TSAN)
        CHECK(named >= n / 2);
}

/* ------------------------------------------------------------ the kick */

static _Atomic int profs;

static void on_prof(int sig)
{
    (void)sig;
    atomic_fetch_add(&profs, 1);
}

static void *kicked_main(void *arg)
{
    int *counts = arg;
    sampler_thread_enter("kicked", -1);
    sampler_set_lua_kick(1);
    burn_for(0.1);
    counts[0] = atomic_load(&profs);
    sampler_set_in_lua(1);
    burn_for(0.15);
    sampler_set_in_lua(0);
    counts[1] = atomic_load(&profs);
    sampler_set_lua_kick(0);
    sampler_thread_exit();
    return NULL;
}

static void test_kick(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prof;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, &old);
    int counts[2] = {0, 0};
    pthread_t t;
    pthread_create(&t, NULL, kicked_main, counts);
    pthread_join(t, NULL);
    sigaction(SIGPROF, &old, NULL);
    printf("kick: %d SIGPROF outside Lua, %d inside\n", counts[0], counts[1] - counts[0]);
    CHECK_EQ_INT(counts[0], 0);
    CHECK(counts[1] - counts[0] >= (int)(0.3 * 0.15 * HZ));
    forget_samples();
}

/* ------------------------------------------------------------ losses */

static void *small_ring_main(void *arg)
{
    (void)arg;
    sampler_thread_enter("small", -1);
    burn_for(0.3);
    sampler_thread_exit();
    return NULL;
}

static void test_full_buffer_counts_losses(void)
{
    forget_samples();
    uint64_t lost0 = sampler_lost();
    sampler_set_ring_size(8);
    pthread_t t;
    pthread_create(&t, NULL, small_ring_main, NULL);
    pthread_join(t, NULL);
    sampler_set_ring_size(1024);
    drain_all();
    int small = thread_of("small");
    size_t kept = 0;
    for (size_t i = 0; i < ngot; i++)
        kept += got[i].thread == small;
    uint64_t lost = sampler_lost() - lost0;
    printf("small ring: %zu kept, %llu lost\n", kept, (unsigned long long)lost);
    CHECK_EQ_INT(kept, 8);
    CHECK(kept + lost >= 0.3 * 0.3 * HZ);
    /* drained: nothing more comes out */
    CHECK_EQ_INT(sampler_drain(got, 1), 0);
}

/* ------------------------------------------------------------ backtrace */

static __attribute__((noinline)) int backtrace_here(void **pcs, int max)
{
    int n = sampler_backtrace(pcs, max);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
    return n;
}

static __attribute__((noinline)) void test_backtrace(struct symbols *syms)
{
    void *pcs[32];
    int n = backtrace_here(pcs, 32);
    __asm__ volatile("" ::: "memory");
    CHECK(n >= 3);
    const char *fn, *file;
    int64_t line;
    symbols_lookup(syms, (uintptr_t)pcs[0], &fn, &file, &line);
    CHECK_STR(fn, "backtrace_here");
    CHECK_STR(file, "spec/unit/telemetry/profiles/test_sampler.c");
    symbols_lookup(syms, (uintptr_t)pcs[1], &fn, &file, &line);
    CHECK_STR(fn, "test_backtrace");
    int has_main = 0;
    for (int i = 0; i < n; i++) {
        symbols_lookup(syms, (uintptr_t)pcs[i], &fn, &file, &line);
        has_main |= !strcmp(fn, "main");
    }
    CHECK(has_main);
    /* max is respected */
    CHECK_EQ_INT(backtrace_here(pcs, 2), 2);
    CHECK_EQ_INT(backtrace_here(pcs, 0), 0);
}

/* ------------------------------------------------------------ symbols */

static void test_symbols(struct symbols *syms)
{
    const char *fn, *file, *fn2, *file2;
    int64_t line, line2;
    /* two addresses inside one function: one answer, the same strings */
    symbols_lookup(syms, (uintptr_t)burn_cpu_here + 2, &fn, &file, &line);
    symbols_lookup(syms, (uintptr_t)burn_cpu_here + 9, &fn2, &file2, &line2);
    CHECK_STR(fn, "burn_cpu_here");
    CHECK_STR(file, "spec/unit/telemetry/profiles/test_sampler.c");
    CHECK_EQ_INT(line, burn_decl_line);
    CHECK(fn == fn2 && file == file2 && line == line2);
    /* cached: the same again */
    symbols_lookup(syms, (uintptr_t)burn_cpu_here + 2, &fn2, &file2, &line2);
    CHECK(fn == fn2 && file == file2);

    /* libc's functions, found through its symbol tables; the file is
     * libc's path, or its source file where its debug information is
     * installed (libc6-dbg); under TSan, nanosleep is its interceptor */
    symbols_lookup(syms, (uintptr_t)&nanosleep + 1, &fn, &file, &line);
    CHECK(strstr(fn, "nanosleep") != NULL);
    CHECK(UNDER_TSAN || strstr(file, "libc") != NULL || strstr(file, "nanosleep.c") != NULL);
    symbols_lookup(syms, (uintptr_t)&strlen + 1, &fn, &file, &line);
    CHECK(strstr(fn, "strlen") != NULL);

    /* the engine's own files read relative to the tree */
    symbols_lookup(syms, (uintptr_t)&sampler_drain + 1, &fn, &file, &line);
    CHECK_STR(fn, "sampler_drain");
    CHECK_STR(file, "engine/telemetry/profiles/sampler.c");
    CHECK(line > 0);

    /* no object: "??"; memory mapped after symbols_new is looked for */
    symbols_lookup(syms, 16, &fn, &file, &line);
    CHECK_STR(fn, "??");
    CHECK_STR(file, "");
    CHECK_EQ_INT(line, 0);
    void *anon = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(anon != MAP_FAILED);
    symbols_lookup(syms, (uintptr_t)anon + 100, &fn, &file, &line);
    CHECK_STR(fn, "??");
    munmap(anon, 4096);
}

/* ------------------------------------------------------------ shutdown */

static void test_shutdown_then_signal(void)
{
    sampler_thread_exit();
    sampler_shutdown();
    /* a straggler after shutdown: ignored, not fatal */
    raise(SIGRTMIN + 4);
    CHECK(1);
    CHECK_EQ_INT(sampler_thread_enter("late", -1), -1);
    char err[256];
    CHECK_EQ_INT(sampler_init(HZ, err, sizeof err), 0);
    CHECK_EQ_INT(sampler_init(HZ, err, sizeof err), -1);
    sampler_shutdown();
    sampler_shutdown();
}

int main(void)
{
    test_refuses_before_init();
    char err[256] = "";
    if (sampler_init(HZ, err, sizeof err) != 0) {
        fprintf(stderr, "sampler_init: %s\n", err);
        return 1;
    }
    CHECK_EQ_INT(sampler_period_ns(), 1000000000 / HZ);
    /* the main thread joins too: it is the one running the symboliser */
    CHECK_EQ_INT(sampler_thread_enter("main", -1), 0);
    CHECK_EQ_INT(sampler_thread_enter("main", -1), -1);
    struct symbols *syms = symbols_new();
    CHECK(syms != NULL);
    if (!syms)
        return check_done();

    test_burn_and_sleep(syms);
    test_vdso_names(syms);
    test_kick();
    test_full_buffer_counts_losses();
    test_backtrace(syms);
    test_symbols(syms);
    test_shutdown_then_signal();
    symbols_free(syms);
    free(got);
    return check_done();
}
