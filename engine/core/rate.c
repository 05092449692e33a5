/* rate.c - the shared start-rate limit as GCRA on one atomic (see rate.h).
 *
 * The whole state is tat, the theoretical arrival time of the next token in
 * integer nanoseconds. A start is allowed while tat runs no more than
 * `tolerance` ((burst - 1) intervals) ahead of now, and each start pushes tat
 * one interval further. Any thread may call rate_acquire: it is a load and a
 * compare-and-swap loop, and no other memory is published through tat, so
 * relaxed ordering is enough. Integers rather than doubles so the CAS compares
 * exact values and long runs do not drift by rounding. */
#include "core/rate.h"

#include <math.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define NS_PER_SEC 1e9
/* About 290 years of nanoseconds, far beyond any monotonic clock reading;
 * clamping there keeps the double -> int64 conversion defined. */
#define MAX_SEC 9.0e9

struct rate {
    /* Alone on its cache line: every worker hits it once per job, and a
     * neighbour's writes must not make that slower. */
    alignas(64) _Atomic int64_t tat;
    int64_t interval;  /* ns per token, >= 1 */
    int64_t tolerance; /* ns tat may lead now by */
};

rate *rate_new(double per_sec, double burst)
{
    if (!(per_sec > 0) || !isfinite(per_sec) || !(burst >= 1) || !isfinite(burst))
        return NULL;
    rate *r = aligned_alloc(alignof(struct rate), sizeof *r);
    if (!r)
        return NULL;
    /* Rates above 1e9/s round to one token a nanosecond: unlimited in effect. */
    double interval = fmax(1.0, round(NS_PER_SEC / per_sec));
    double tolerance = fmin((burst - 1) * interval, MAX_SEC * NS_PER_SEC);
    r->interval = (int64_t)interval;
    r->tolerance = (int64_t)tolerance;
    /* Far in the past, so the first caller sees a full bucket whatever its clock. */
    atomic_init(&r->tat, INT64_MIN);
    return r;
}

void rate_free(rate *r)
{
    free(r);
}

static int64_t to_ns(double sec)
{
    if (!(sec > -MAX_SEC)) /* NaN too */
        sec = -MAX_SEC;
    if (sec > MAX_SEC)
        sec = MAX_SEC;
    return (int64_t)llround(sec * NS_PER_SEC);
}

double rate_wait(const rate *r, double now)
{
    int64_t now_ns = to_ns(now);
    int64_t tat = atomic_load_explicit(&((rate *)r)->tat, memory_order_relaxed);
    int64_t t = tat > now_ns ? tat : now_ns;
    return t - now_ns > r->tolerance ? (double)(t - r->tolerance - now_ns) / NS_PER_SEC : 0;
}

double rate_acquire(rate *r, double now)
{
    int64_t now_ns = to_ns(now);
    int64_t tat = atomic_load_explicit(&r->tat, memory_order_relaxed);
    for (;;) {
        int64_t t = tat > now_ns ? tat : now_ns;
        if (t - now_ns > r->tolerance)
            return (double)(t - r->tolerance - now_ns) / NS_PER_SEC;
        /* On failure tat is reloaded and the decision made again: another
         * thread took a token, which may have been the last one. */
        if (atomic_compare_exchange_weak_explicit(&r->tat, &tat, t + r->interval,
                                                  memory_order_relaxed, memory_order_relaxed))
            return 0;
    }
}
