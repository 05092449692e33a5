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

/* A backend for the tests: items queued by the test, taken all at once
 * when due (at due_at, or when kicked), the sends and the verdict on an
 * unanswered try at shutdown recorded. */
struct probe {
    struct sender s;
    _Atomic int queued;
    _Atomic double due_at; /* 0: when kicked */
    _Atomic int sends, items;
    _Atomic double sent_at;
    _Atomic int at_stop;
};

static double probe_due(void *owner)
{
    struct probe *p = owner;
    double at = atomic_load(&p->due_at);
    return atomic_load(&p->queued) && at > 0 ? at : INFINITY;
}

static int probe_ready(void *owner)
{
    (void)owner;
    return 0;
}

static size_t probe_take(void *owner, int stopping)
{
    struct probe *p = owner;
    if (!stopping && clock_now() < atomic_load(&p->due_at))
        return 0; /* the batch is not due yet */
    return (size_t)atomic_exchange(&p->queued, 0);
}

static void probe_send(void *owner, size_t n, int stopping)
{
    struct probe *p = owner;
    if (stopping) {
        /* shutdown has begun: a backend that did not answer is not
         * waited for */
        double wait;
        atomic_store(&p->at_stop, sender_retry(&p->s, 1, 0, 0, INFINITY, &wait));
    }
    atomic_store(&p->sent_at, clock_now());
    atomic_fetch_add(&p->items, (int)n);
    atomic_fetch_add(&p->sends, 1);
}

static const struct sender_ops probe_ops = {
    .due = probe_due, .ready = probe_ready, .take = probe_take, .send = probe_send};

static int start(struct probe *p, struct registry *reg)
{
    struct sender_config c = {.thread = "test-sender",
                              .what = "test",
                              .endpoint = "http://u:secret@127.0.0.1:1/x",
                              .failure = "test push failed",
                              .counts = metrics_telemetry_counts(reg, "test")};
    atomic_store(&p->at_stop, -1);
    char err[256];
    if (sender_start(&p->s, &c, &probe_ops, p, err, sizeof err) != 0) {
        fprintf(stderr, "sender_start: %s\n", err);
        return -1;
    }
    return 0;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to 5 s for the probe's sends to reach n. */
static int wait_sends(struct probe *p, int n)
{
    for (int i = 0; i < 500 && atomic_load(&p->sends) < n; i++)
        nap_ms(10);
    return atomic_load(&p->sends) >= n;
}

static void test_schedule(void)
{
    struct probe p = {0};
    CHECK(start(&p, NULL) == 0);
    /* the credentials never reach a message */
    CHECK(strstr(p.s.shown, "secret") == NULL);
    /* (the retries' calls are the sender thread's; it is idle here) */
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
}

static void test_loop(void)
{
    struct probe p = {0};
    CHECK(start(&p, NULL) == 0);
    /* queued but not due, not kicked: not sent */
    atomic_store(&p.queued, 2);
    nap_ms(200);
    CHECK_EQ_INT(atomic_load(&p.sends), 0);
    /* a kick: sent at once, both items in one batch */
    double t0 = clock_now();
    sender_kick(&p.s);
    CHECK(wait_sends(&p, 1));
    CHECK_EQ_INT(atomic_load(&p.items), 2);
    CHECK(atomic_load(&p.sent_at) - t0 < 4);
    /* due in 0.3 s: sent then, not before, with no kick */
    t0 = clock_now();
    atomic_store(&p.due_at, t0 + 0.3);
    atomic_store(&p.queued, 1);
    sender_kick(&p.s); /* a new first item: the loop looks at the due time again */
    CHECK(wait_sends(&p, 2));
    CHECK(atomic_load(&p.sent_at) - t0 >= 0.29);
    /* the stop wakes the loop, which takes what is left with stopping
     * set, and the join does not wait for the deadline */
    atomic_store(&p.due_at, 0);
    atomic_store(&p.queued, 1);
    t0 = clock_now();
    sender_stop(&p.s, 10000);
    CHECK(clock_now() - t0 < 5);
    CHECK_EQ_INT(atomic_load(&p.sends), 3);
    CHECK_EQ_INT(atomic_load(&p.at_stop), SENDER_UNANSWERED);
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
    test_loop();
    test_counts();
    test_monotonic_wait();
    test_thread_start();
    return check_done();
}
