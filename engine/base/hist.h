/* hist.h - a log-linear latency histogram (microseconds, ~6% resolution).
 *
 * Fixed size, no allocation: a worker records into its own one; the main
 * thread merges them after the workers stop. Not thread-safe by itself. */
#ifndef SHOAL_HIST_H
#define SHOAL_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 4
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

struct hist {
    uint64_t count;
    uint64_t max_us;
    double sum_us;
    uint64_t buckets[HIST_BUCKETS];
};

void hist_record(struct hist *h, uint64_t us);
void hist_merge(struct hist *into, const struct hist *from);
/* The value at quantile q (0..1), an upper bound within one bucket; 0 if empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
