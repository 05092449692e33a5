/* hist.c - log-linear histogram: values below 2^HIST_SUB_BITS get a bucket
 * each; above, every power of two is split into 2^HIST_SUB_BITS equal
 * buckets, so the relative error stays under 1/16 at any magnitude while the
 * whole thing is a fixed array a worker can own. */
#include "base/hist.h"

static unsigned bucket_of(uint64_t v)
{
    if (v < (1u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned e = 63 - (unsigned)__builtin_clzll(v); /* e >= HIST_SUB_BITS */
    unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) & ((1u << HIST_SUB_BITS) - 1);
    return ((e - HIST_SUB_BITS + 1) << HIST_SUB_BITS) + sub;
}

/* Largest value that falls in bucket b. */
static uint64_t bucket_top(unsigned b)
{
    if (b < (1u << HIST_SUB_BITS))
        return b;
    unsigned e = (b >> HIST_SUB_BITS) + HIST_SUB_BITS - 1;
    uint64_t sub = b & ((1u << HIST_SUB_BITS) - 1);
    uint64_t base = (1ull << e) + (sub << (e - HIST_SUB_BITS));
    return base + (1ull << (e - HIST_SUB_BITS)) - 1;
}

void hist_record(struct hist *h, uint64_t us)
{
    h->buckets[bucket_of(us)]++;
    h->count++;
    h->sum_us += (double)us;
    if (us > h->max_us)
        h->max_us = us;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    into->count += from->count;
    into->sum_us += from->sum_us;
    if (from->max_us > into->max_us)
        into->max_us = from->max_us;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q <= 0)
        q = 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t top = bucket_top(i);
            return top < h->max_us ? top : h->max_us;
        }
    }
    return h->max_us;
}
