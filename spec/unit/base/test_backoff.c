/* test_backoff.c - retry delays grow exponentially, stop at the cap, and
 * jitter within [d/2, d] from a deterministic generator. */
#include "base/backoff.h"
#include "check.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>

#define SAMPLES 2000

struct sample {
    double min, max, mean;
};

static struct sample sample(int attempt, double base, double cap, uint64_t seed)
{
    struct sample s = {INFINITY, -INFINITY, 0};
    uint64_t rng = seed;
    for (int i = 0; i < SAMPLES; i++) {
        double d = backoff_delay(attempt, base, cap, &rng);
        s.min = fmin(s.min, d);
        s.max = fmax(s.max, d);
        s.mean += d / SAMPLES;
    }
    return s;
}

/* Every sample lies in [d/2, d], and the spread reaches both ends, so the
 * jitter is real and the undelayed value is d. */
static void check_range(int attempt, double base, double cap, double d)
{
    struct sample s = sample(attempt, base, cap, 42 + (uint64_t)attempt);
    CHECK(s.min >= d / 2);
    CHECK(s.max <= d);
    CHECK(s.min < d / 2 * 1.01);
    CHECK(s.max > d * 0.99);
    CHECK(fabs(s.mean - 0.75 * d) < 0.02 * d);
}

static void test_exponential_growth(void)
{
    /* base 0.5s: 0.5, 1, 2, 4, 8 before the cap of 60 matters */
    double d = 0.5;
    for (int attempt = 2; attempt <= 8; attempt++, d *= 2)
        check_range(attempt, 0.5, 60, d);
}

static void test_cap(void)
{
    check_range(9, 0.5, 60, 60);  /* 0.5 * 2^7 = 64 > 60 */
    check_range(50, 0.5, 60, 60); /* 2^48 times base: far past the cap */
    check_range(INT_MAX, 0.5, 60, 60);
    uint64_t rng = 7;
    double d = backoff_delay(INT_MAX, 1, INFINITY, &rng);
    CHECK(isfinite(d) && d > 0);
}

static void test_odd_inputs(void)
{
    uint64_t rng = 3;
    /* Attempts below 2 are the first retry's delay, not less. */
    check_range(1, 2, 60, 2);
    check_range(0, 2, 60, 2);
    CHECK(backoff_delay(3, 0, 60, &rng) == 0);
    CHECK(backoff_delay(3, -1, 60, &rng) == 0);
    CHECK(backoff_delay(3, NAN, 60, &rng) == 0);
}

static void test_jitter_spreads(void)
{
    /* Equal jitter: the random half is uniform, so each quarter of [d/2, d]
     * gets about a quarter of the samples. */
    int bins[4] = {0};
    uint64_t rng = 99;
    for (int i = 0; i < 40000; i++) {
        double d = backoff_delay(3, 1, 60, &rng); /* d = 2: [1, 2] */
        int b = (int)((d - 1) * 4);
        if (b >= 0 && b < 4)
            bins[b]++;
    }
    for (int b = 0; b < 4; b++)
        CHECK(bins[b] > 9000 && bins[b] < 11000);
}

static void test_rng_deterministic(void)
{
    /* The published xorshift64* sequence from seed 1. */
    uint64_t s = 1;
    CHECK(backoff_rand(&s) == 0x47E4CE4B896CDD1DULL);
    CHECK(backoff_rand(&s) == 0xABCFA6A8E079651DULL);
    CHECK(backoff_rand(&s) == 0xB9D10D8FEB731F57ULL);

    uint64_t a = 12345, b = 12345, c = 12346;
    int same = 1, differs = 0;
    for (int i = 0; i < 100; i++) {
        double da = backoff_delay(4, 1, 60, &a), db = backoff_delay(4, 1, 60, &b);
        double dc = backoff_delay(4, 1, 60, &c);
        same &= da == db;
        differs |= da != dc;
    }
    CHECK(same);
    CHECK(differs);

    /* A zeroed state must not get stuck returning 0. */
    uint64_t z = 0;
    uint64_t r1 = backoff_rand(&z), r2 = backoff_rand(&z);
    CHECK(z != 0);
    CHECK(r1 != r2);
}

int main(void)
{
    test_exponential_growth();
    test_cap();
    test_odd_inputs();
    test_jitter_spreads();
    test_rng_deterministic();
    return check_done();
}
