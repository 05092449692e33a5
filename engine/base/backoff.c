/* backoff.c - retry delays: exponential, capped, with equal jitter (see backoff.h).
 *
 * Pure functions of their arguments and the caller's rng state; any thread,
 * as long as each thread passes its own state. */
#include "base/backoff.h"

#include <float.h>
#include <math.h>

uint64_t backoff_rand(uint64_t *state)
{
    uint64_t x = *state;
    /* Zero is xorshift's one fixed point; a state left zeroed by mistake
     * would return 0 forever, so give it a start instead. */
    if (x == 0)
        x = 0x9E3779B97F4A7C15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

double backoff_step(int next_attempt, double base, double cap)
{
    if (!(base > 0) || !(cap > 0))
        return 0;
    if (next_attempt < 2)
        next_attempt = 2;
    /* ldexp saturates to inf for large exponents instead of overflowing an
     * integer shift, and the cap brings it back; an infinite cap ("none")
     * becomes DBL_MAX so the jitter of backoff_delay never computes
     * inf * 0. */
    return fmin(ldexp(base, next_attempt - 2), fmin(cap, DBL_MAX));
}

double backoff_delay(int next_attempt, double base, double cap, uint64_t *rng)
{
    double d = backoff_step(next_attempt, base, cap);
    if (d == 0)
        return 0;
    /* The top 53 bits make a uniform double in [0, 1). */
    double u = (double)(backoff_rand(rng) >> 11) * 0x1.0p-53;
    return d / 2 + d / 2 * u;
}
