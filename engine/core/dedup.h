/* dedup.h - a set of 64-bit key hashes: "has this key been seen in this run?"
 *
 * Used by the in-memory queue backend (queue_mem.c). It keeps a hash per
 * key, never the key, so a million URLs cost about 16 bytes each instead of
 * their length. The price is that two keys with the same 64-bit hash count
 * as one: at a million keys the chance of any such pair is about 3 in 10^8,
 * and its cost is one job dropped as a duplicate. The hash is seeded per set so that a hostile page
 * cannot bring a list of keys made in advance to collide or to pile into one probe run.
 *
 * Not thread-safe: the caller's lock guards a set. dedup_hash only reads the
 * seed, fixed at dedup_new, so it may run outside that lock. */
#ifndef SHOAL_DEDUP_H
#define SHOAL_DEDUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct dedup dedup;

/* Returns NULL on out of memory. Sets with the same seed hash alike. */
dedup *dedup_new(uint64_t seed);
/* NULL is a no-op. */
void dedup_free(dedup *d);

/* The key's hash under d's seed; never 0. key may be NULL when len is 0. */
uint64_t dedup_hash(const dedup *d, const void *key, size_t len);

/* Adds a hash from dedup_hash. Returns 1 if it was new, 0 if already held,
 * -1 on out of memory (the set is unchanged). */
int dedup_add(dedup *d, uint64_t hash);
/* Whether the set holds a hash from dedup_hash, changing nothing. */
int dedup_has(const dedup *d, uint64_t hash);

/* Distinct hashes held. */
size_t dedup_count(const dedup *d);
/* Bytes the set holds on the heap, for memory reports. */
size_t dedup_bytes(const dedup *d);

#endif
