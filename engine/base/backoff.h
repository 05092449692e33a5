/* backoff.h - delays between attempts: exponential with jitter.
 *
 * Pure functions; any thread. */
#ifndef SHOAL_BACKOFF_H
#define SHOAL_BACKOFF_H

#include <stdint.h>

/* Delay before attempt `next_attempt` (2 for the first retry): base * 2^(n-2),
 * capped at cap, then "equal jitter": half fixed, half uniform random, so
 * retries of many jobs that failed together spread out. *rng is a caller-owned
 * xorshift state (any nonzero seed). */
double backoff_delay(int next_attempt, double base, double cap, uint64_t *rng);
/* The same schedule without the jitter: base * 2^(n-2), capped at cap. For
 * a single client (a telemetry sender) that has no herd to spread and
 * whose waits must stay within a shutdown deadline. */
double backoff_step(int next_attempt, double base, double cap);

/* Next pseudo-random 64-bit value from *state (xorshift64*). */
uint64_t backoff_rand(uint64_t *state);

#endif
