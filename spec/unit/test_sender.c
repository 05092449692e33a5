/* test_sender.c - the sender framework every push backend runs on: its
 * retry schedule (backoff.c's, Retry-After winning up to 30 s), what it
 * gives up on, the wake-ups of its thread (a kick, the stop), the verdict
 * on a backend that does not answer at shutdown, its counters, and the
 * monotonic waits of base/thread.h. */
#include "base/clock.h"
#include "base/thread.h"
#include "check.h"
#include "telemetry/metrics/metrics.h"
#include "telemetry/send/sender.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

static void test_retry_after(void)
{
    CHECK(sender_retry_after("2") == 2);
    CHECK(sender_retry_after(" 1.5") == 1.5);
    CHECK(sender_retry_after("120") == SENDER_RETRY_AFTER_MAX);
    CHECK(sender_retry_after("0") == 0);
    CHECK(sender_retry_after("-3") == 0);
    /* a date leaves the wait to the backoff */
    CHECK(sender_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0);
}

/* The sender's thread for the tests: naps until stopped (or kicked, when
 * asked), then records what it was told. */
struct probe {
    struct sender s;
    int use_kick;
    _Atomic int kicks;
    _Atomic double woke_at;
    enum sender_verdict at_stop;
};

static void *probe_main(void *arg)
{
    struct probe *p = arg;
    for (;;) {
        int stopping = sender_nap(&p->s, INFINITY, p->use_kick);
        if (stopping)
            break;
        if (atomic_exchange(&p->s.kicked, 0)) {
            p->kicks++;
            p->woke_at = clock_now();
        }
    }
    /* shutdown has begun: a backend that did not answer is not waited for */
    double wait;
    p->at_stop = sender_retry(&p->s, 1, 0, 0, INFINITY, &wait);
    return NULL;
}

static int start(struct probe *p, struct registry *reg)
{
    struct sender_config c = {.thread = "test-sender",
                              .what = "test",
                              .endpoint = "http://u:secret@127.0.0.1:1/x",
                              .failure = "test push failed",
                              .counts = metrics_telemetry_counts(reg, "test")};
    char err[256];
    if (sender_start(&p->s, &c, probe_main, p, err, sizeof err) != 0) {
        fprintf(stderr, "sender_start: %s\n", err);
        return -1;
    }
    return 0;
}

static void test_schedule(void)
{
    struct probe p = {0};
    CHECK(start(&p, NULL) == 0);
    /* the credentials never reach a message */
    CHECK(strstr(p.s.shown, "secret") == NULL);
    sender_begin(&p.s);
    const double want[] = {0.5, 1, 2, 4, 5, 5};
    for (int i = 0; i < 6; i++) {
        double wait = -1;
        CHECK_EQ_INT(sender_retry(&p.s, 1, 1, 0, INFINITY, &wait), SENDER_AGAIN);
        CHECK(wait == want[i]);
    }
    /* a new request starts from the first step again */
    sender_begin(&p.s);
    double wait;
    sender_retry(&p.s, 1, 1, 0, INFINITY, &wait);
    CHECK(wait == 0.5);
    /* Retry-After wins over the backoff */
    CHECK_EQ_INT(sender_retry(&p.s, 1, 1, 3, INFINITY, &wait), SENDER_AGAIN);
    CHECK(wait == 3);
    /* what would fail again is given up at once; so is a try past the bound */
    CHECK_EQ_INT(sender_retry(&p.s, 0, 1, 0, INFINITY, &wait), SENDER_GIVE_UP);
    CHECK_EQ_INT(sender_retry(&p.s, 1, 1, 0, clock_now() + 0.1, &wait), SENDER_GIVE_UP);
    /* a pause is cut short by nothing while the run goes on */
    double t0 = clock_now();
    CHECK_EQ_INT(sender_pause(&p.s, 0.05, 0), SENDER_AGAIN);
    CHECK(clock_now() - t0 >= 0.045);
    sender_stop(&p.s, 1000);
    CHECK_EQ_INT(p.at_stop, SENDER_UNANSWERED);
}

static void test_wakeups(void)
{
    struct probe p = {.use_kick = 1};
    CHECK(start(&p, NULL) == 0);
    double t0 = clock_now();
    sender_kick(&p.s);
    /* the thread wakes for the kick, long before any timeout */
    for (int i = 0; i < 500 && p.kicks == 0; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ_INT(p.kicks, 1);
    CHECK(p.woke_at - t0 < 4);
    /* the stop wakes a nap with no end, and the join does not wait for
     * the deadline */
    t0 = clock_now();
    sender_stop(&p.s, 10000);
    CHECK(clock_now() - t0 < 5);
}

static void test_counts(void)
{
    struct registry *reg = registry_new(1, 100);
    CHECK(reg != NULL);
    struct probe p = {0};
    CHECK(start(&p, reg) == 0);
    sender_exported(&p.s, 3);
    sender_failed(&p.s, 2);
    sender_dropped(&p.s, 1);
    CHECK(atomic_load(&p.s.dropped_any) == 1);
    sender_stop(&p.s, 0);
    /* the same series as anyone finds for the signal (the summary's) */
    struct telemetry_counts c = metrics_telemetry_counts(reg, "test");
    CHECK(metric_value(c.exported) == 3);
    CHECK(metric_value(c.failed) == 2);
    CHECK(metric_value(c.dropped) == 1);
    struct metric_family *f[3];
    char err[256];
    CHECK_EQ_INT(metrics_telemetry_families(reg, f, err, sizeof err), 0);
    CHECK(f[0] == metrics_find(reg, "shoal_telemetry_exported_total"));
    registry_free(reg);
    /* no registry (tests of a backend alone): nothing counted, no crash */
    struct telemetry_counts none = metrics_telemetry_counts(NULL, "test");
    CHECK(none.exported == NULL && none.dropped == NULL && none.failed == NULL);
}

static void test_monotonic_wait(void)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond;
    CHECK_EQ_INT(thread_cond_init(&cond), 0);
    pthread_mutex_lock(&lock);
    double t0 = clock_now();
    /* a deadline on clock_now's clock: reached, not missed by an epoch */
    while (clock_now() < t0 + 0.1)
        thread_cond_wait_until(&cond, &lock, t0 + 0.1);
    double took = clock_now() - t0;
    pthread_mutex_unlock(&lock);
    CHECK(took >= 0.1 && took < 3);
    pthread_cond_destroy(&cond);
}

static void *set_flag(void *arg)
{
    *(int *)arg = 1;
    return NULL;
}

static void test_thread_start(void)
{
    int ran = 0;
    pthread_t t;
    CHECK_EQ_INT(thread_start(&t, "test", 1, set_flag, &ran), 0);
    pthread_join(t, NULL);
    CHECK_EQ_INT(ran, 1);
}

int main(void)
{
    test_retry_after();
    test_schedule();
    test_wakeups();
    test_counts();
    test_monotonic_wait();
    test_thread_start();
    return check_done();
}
