/* rate.h - a shared start-rate limit (--rate N jobs/s across all workers).
 *
 * A lock-free token bucket in GCRA form: one atomic "theoretical arrival
 * time". Any thread may call rate_acquire. */
#ifndef SHOAL_RATE_H
#define SHOAL_RATE_H

typedef struct rate rate;

/* per_sec > 0; burst >= 1 starts allowed back to back. Returns NULL on OOM. */
rate *rate_new(double per_sec, double burst);
void rate_free(rate *r);

/* Returns 0 and consumes a token if one is available at now (seconds,
 * monotonic); otherwise returns the (positive) time in seconds to wait before
 * asking again, and consumes nothing. */
double rate_acquire(rate *r, double now);

/* What rate_acquire would answer at now, consuming nothing: 0 if a token is
 * there (another thread may take it first). */
double rate_wait(const rate *r, double now);

#endif
