/* net/loop.h on its own: the timer heap always yields the nearest timer
 * (checked against a plain scan through random sets, moves and removals),
 * and a wake from another thread ends a long poll at once, again after
 * each dispatch. */
#include "check.h"
#include "net/loop.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define N 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The nearest of when[] (0: unset), by scanning: -1 if none. */
static int nearest(const double *when, double *t)
{
    int best = -1;
    for (int i = 0; i < N; i++)
        if (when[i] != 0 && (best < 0 || when[i] < when[best]))
            best = i;
    if (best >= 0)
        *t = when[best];
    return best;
}

static void *waker(void *arg)
{
    usleep(50000);
    loop_wake(arg);
    return NULL;
}

int main(void)
{
    char err[256];
    struct loop l;
    CHECK_EQ_INT(loop_init(&l, N, 8, err, sizeof err), 0);

    /* a few by hand */
    double t = 0;
    CHECK_EQ_INT(loop_timer_first(&l, &t), -1);
    loop_timer_set(&l, 0, 5);
    loop_timer_set(&l, 1, 3);
    loop_timer_set(&l, 2, 9);
    loop_timer_set(&l, 3, 1);
    CHECK_EQ_INT(loop_timer_first(&l, &t), 3);
    CHECK(t == 1);
    loop_timer_set(&l, 3, 0); /* removed */
    CHECK_EQ_INT(loop_timer_first(&l, &t), 1);
    loop_timer_set(&l, 2, 2); /* moved earlier */
    CHECK_EQ_INT(loop_timer_first(&l, &t), 2);
    loop_timer_set(&l, 2, 10); /* and later */
    CHECK_EQ_INT(loop_timer_first(&l, &t), 1);
    for (int i = 0; i < 4; i++)
        loop_timer_set(&l, i, 0);
    CHECK_EQ_INT(loop_timer_first(&l, &t), -1);

    /* random sets, moves and removals agree with a scan */
    double when[N] = {0};
    srand(7);
    int agree = 1;
    for (int step = 0; step < 20000 && agree; step++) {
        int id = rand() % N;
        double v = rand() % 4 == 0 ? 0 : 1 + rand() % 1000;
        when[id] = v;
        loop_timer_set(&l, id, v);
        double want_t = 0, got_t = 0;
        int want = nearest(when, &want_t), got = loop_timer_first(&l, &got_t);
        if ((want < 0) != (got < 0) || (want >= 0 && want_t != got_t))
            agree = 0;
    }
    CHECK(agree);
    /* drained in order */
    double last = 0;
    int ordered = 1, id;
    while ((id = loop_timer_first(&l, &t)) >= 0) {
        if (t < last)
            ordered = 0;
        last = t;
        loop_timer_set(&l, id, 0);
    }
    CHECK(ordered);

    /* nothing to wait for: a poll times out */
    double t0 = now_s();
    CHECK_EQ_INT(loop_poll(&l, 30), 0);
    CHECK(now_s() - t0 >= 0.02);

    /* a wake from another thread ends a 10 s poll, twice */
    for (int round = 0; round < 2; round++) {
        pthread_t th;
        t0 = now_s();
        pthread_create(&th, NULL, waker, &l);
        int n = loop_poll(&l, 10000);
        CHECK_EQ_INT(n, 1);
        CHECK(now_s() - t0 < 5);
        loop_dispatch(&l, n); /* takes the wake-up, so the next one writes again */
        pthread_join(th, NULL);
    }
    CHECK_EQ_INT(loop_poll(&l, 0), 0); /* nothing left over */

    /* curl's timer: none until a transfer asks */
    CHECK(loop_curl_due(&l) == 0);
    CURL *easy = NULL;
    CHECK(loop_next_done(&l, &(CURLcode){0}) == easy);

    loop_free(&l);
    return check_done();
}
