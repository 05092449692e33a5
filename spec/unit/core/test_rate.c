/* test_rate.c - the start-rate limit: R tokens a second plus the burst, waits
 * that are exactly long enough, and no over-grant when threads race. The
 * clock is always fake (the test passes now), so nothing depends on timing. */
#include "check.h"
#include "core/rate.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

static void test_bad_config(void)
{
    CHECK(rate_new(0, 1) == NULL);
    CHECK(rate_new(-5, 1) == NULL);
    CHECK(rate_new(NAN, 1) == NULL);
    CHECK(rate_new(INFINITY, 1) == NULL);
    CHECK(rate_new(10, 0.5) == NULL);
    CHECK(rate_new(10, NAN) == NULL);
    rate_free(NULL);
}

/* Asking as often as possible for T seconds yields the burst at once and then
 * R a second. */
static void test_tokens_over_time(void)
{
    rate *r = rate_new(100, 10);
    CHECK(r != NULL);
    const double t0 = 1000.0;
    int got = 0;
    for (int ms = 0; ms <= 10000; ms++) {
        double now = t0 + ms / 1000.0;
        while (rate_acquire(r, now) == 0)
            got++;
        if (ms == 0)
            CHECK_EQ_INT(got, 10); /* the burst, back to back */
    }
    CHECK_EQ_INT(got, 10 + 100 * 10);
    rate_free(r);
}

/* A caller that sleeps exactly the returned wait is never refused twice in a
 * row and gets the same budget. */
static void test_waits(void)
{
    rate *r = rate_new(100, 10);
    const double t0 = 50.0;
    for (int i = 0; i < 10; i++)
        CHECK(rate_acquire(r, t0) == 0);

    double w = rate_acquire(r, t0);
    CHECK(w > 0);
    CHECK(fabs(w - 0.010) < 1e-9);
    /* Asking again too early still waits, for the rest of the time, and
     * consumes nothing. */
    double w2 = rate_acquire(r, t0 + 0.004);
    CHECK(fabs(w2 - 0.006) < 1e-9);
    CHECK(rate_acquire(r, t0 + w) == 0);
    CHECK(rate_acquire(r, t0 + w) > 0);

    double now = t0 + w;
    int got = 0, refused_twice = 0, nonpositive = 0;
    int last_refused = 0;
    while (now < t0 + 10.0) {
        double wait = rate_acquire(r, now);
        if (wait == 0) {
            got++;
            last_refused = 0;
            continue;
        }
        if (wait < 0)
            nonpositive++;
        if (last_refused)
            refused_twice++;
        last_refused = 1;
        now += wait;
    }
    CHECK_EQ_INT(nonpositive, 0);
    CHECK_EQ_INT(refused_twice, 0);
    /* from t0 + 0.01 to t0 + 10: one token every 10 ms */
    CHECK(got >= 998 && got <= 1000);
    rate_free(r);
}

static void test_fractional_rate(void)
{
    rate *r = rate_new(3, 1);
    CHECK(rate_acquire(r, 7.0) == 0);
    double w = rate_acquire(r, 7.0);
    CHECK(fabs(w - 1.0 / 3) < 1e-8);
    CHECK(rate_acquire(r, 7.0 + w) == 0);
    rate_free(r);
}

/* Threads race for tokens on a clock that the main thread moves one interval
 * at a time, and only after some thread has found the bucket empty at the
 * current time. So the exact budget is known: burst + one token per step.
 * Any lost update in the compare-and-swap would show as extra tokens. */
#define THREADS 4
#define STEPS 20000
#define STEP_NS 1000000 /* 1 ms: one token at 1000/s */
#define BURST 5

struct race {
    rate *r;
    _Atomic int64_t clock_ns;
    _Atomic int64_t empty_at; /* latest clock at which a thread was refused */
    atomic_int stop;
    atomic_long granted;
};

static void *racer(void *arg)
{
    struct race *rc = arg;
    long mine = 0;
    while (!atomic_load(&rc->stop)) {
        int64_t c = atomic_load(&rc->clock_ns);
        if (rate_acquire(rc->r, c / 1e9) == 0) {
            mine++;
        } else {
            int64_t seen = atomic_load(&rc->empty_at);
            while (seen < c && !atomic_compare_exchange_weak(&rc->empty_at, &seen, c))
                ;
            sched_yield(); /* let the clock move: there are more racers than cores */
        }
    }
    atomic_fetch_add(&rc->granted, mine);
    return NULL;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_threads_never_exceed_budget(void)
{
    struct race rc;
    rc.r = rate_new(1000, BURST);
    atomic_init(&rc.clock_ns, (int64_t)100 * 1000000000);
    atomic_init(&rc.empty_at, 0);
    atomic_init(&rc.stop, 0);
    atomic_init(&rc.granted, 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, racer, &rc);

    double deadline = mono() + 60;
    int steps = 0, timed_out = 0;
    for (; steps <= STEPS && !timed_out; steps++) {
        int64_t c = atomic_load(&rc.clock_ns);
        while (atomic_load(&rc.empty_at) < c) {
            if (mono() > deadline) {
                timed_out = 1;
                break;
            }
            sched_yield();
        }
        if (steps < STEPS)
            atomic_store(&rc.clock_ns, c + STEP_NS);
    }
    atomic_store(&rc.stop, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);

    CHECK(!timed_out);
    CHECK_EQ_INT(atomic_load(&rc.granted), BURST + STEPS);
    rate_free(rc.r);
}

/* rate_wait answers what rate_acquire would, and takes nothing: the worker
 * asks it before taking a job, so that a job is not held waiting. */
static void test_wait_peeks(void)
{
    rate *r = rate_new(100, 2);
    const double t0 = 7.0;
    CHECK(rate_wait(r, t0) == 0);
    CHECK(rate_wait(r, t0) == 0); /* asking twice consumed nothing */
    CHECK(rate_acquire(r, t0) == 0);
    CHECK(rate_wait(r, t0) == 0); /* the burst's second token */
    CHECK(rate_acquire(r, t0) == 0);
    double w = rate_wait(r, t0);
    CHECK(fabs(w - 0.010) < 1e-9);
    CHECK(fabs(rate_acquire(r, t0) - w) < 1e-12);
    CHECK(fabs(rate_wait(r, t0 + 0.004) - 0.006) < 1e-9);
    CHECK(rate_wait(r, t0 + w) == 0);
    CHECK(rate_acquire(r, t0 + w) == 0);
    rate_free(r);
}

int main(void)
{
    test_bad_config();
    test_wait_peeks();
    test_tokens_over_time();
    test_waits();
    test_fractional_rate();
    test_threads_never_exceed_budget();
    return check_done();
}
