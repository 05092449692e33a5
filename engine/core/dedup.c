/* dedup.c - the key-hash set behind queue dedup (see dedup.h).
 *
 * A flat array of 8-byte slots, open addressing with linear probing, 0 meaning
 * empty (dedup_hash never returns 0). It doubles at 3/4 load, so it sits
 * between 3/8 and 3/4 full: 11 to 21 bytes a key, 16.8 at a million keys.
 * Hashes are never removed (a key stays seen for the whole run), so there are
 * no tombstones and a probe stops at the first empty slot.
 *
 * Doubling does not rehash everything at once: the caller holds the queue's
 * lock, and copying three million hashes stalled every worker for a quarter
 * of a second. The old table is kept, read-only, and each insert copies the
 * next MIGRATE_STEP of its slots across; lookups check both until it is done.
 * The copy finishes long before the new table can fill (it needs old/64
 * inserts, the new table takes old*3/4 before its next doubling), so there
 * are at most two tables, and while there are two the set costs 24 bytes a key.
 *
 * Called only under the queue's lock, except dedup_hash, which reads nothing
 * that changes. */
#include "core/dedup.h"

#include <stdlib.h>
#include <string.h>

#define DEDUP_MIN_SLOTS 1024
#define MIGRATE_STEP 64

/* Odd 64-bit constants with well-spread bits (the xxHash64 primes). */
#define K1 0x9E3779B185EBCA87ULL
#define K2 0xC2B2AE3D27D4EB4FULL
#define K3 0x165667B19E3779F9ULL
#define K4 0x85EBCA77C2B2AE63ULL
#define K5 0x27D4EB2F165667C5ULL

struct dedup {
    uint64_t *slots; /* where inserts go */
    size_t mask;     /* slots - 1; the slot count is a power of two */
    uint64_t *old;   /* the table before the last doubling, until copied across */
    size_t old_mask;
    size_t moved; /* old slots below this index are copied */
    size_t count; /* distinct hashes, in either table */
    uint64_t seed;
};

dedup *dedup_new(uint64_t seed)
{
    dedup *d = calloc(1, sizeof *d);
    if (!d)
        goto fail;
    d->slots = calloc(DEDUP_MIN_SLOTS, sizeof *d->slots);
    if (!d->slots)
        goto fail;
    d->mask = DEDUP_MIN_SLOTS - 1;
    d->seed = seed;
    return d;
fail:
    dedup_free(d);
    return NULL;
}

void dedup_free(dedup *d)
{
    if (!d)
        return;
    free(d->slots);
    free(d->old);
    free(d);
}

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Little-endian on the hosts we build for; the hash is never stored or sent,
 * so a big-endian host giving other values would be harmless. */
static uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t load32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* One lane, 8 bytes a step. Each step is a bijection of the state for a fixed
 * input word and of the input word for a fixed state (multiplying by an odd
 * constant and rotating lose nothing), so two keys of the same length that
 * differ in one word always end in different states; the final avalanche
 * (also a bijection) then spreads every input bit over the low bits that pick
 * a slot. Keys are short (URLs), so one lane is fast enough. */
uint64_t dedup_hash(const dedup *d, const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = d->seed + K5 + (uint64_t)len;

    for (; len >= 8; p += 8, len -= 8) {
        h ^= rotl(load64(p) * K2, 31) * K1;
        h = rotl(h, 27) * K1 + K4;
    }
    if (len >= 4) {
        h ^= (uint64_t)load32(p) * K1;
        h = rotl(h, 23) * K2 + K3;
        p += 4;
        len -= 4;
    }
    for (; len > 0; p++, len--) {
        h ^= *p * K5;
        h = rotl(h, 11) * K1;
    }
    h ^= h >> 33;
    h *= K2;
    h ^= h >> 29;
    h *= K3;
    h ^= h >> 32;
    /* 0 marks an empty slot; folding it onto 1 costs one extra collision in 2^64. */
    return h ? h : 1;
}

/* Returns the slot holding hash, or the empty slot where it belongs. */
static uint64_t *probe(uint64_t *slots, size_t mask, uint64_t hash)
{
    size_t i = (size_t)hash & mask;
    while (slots[i] && slots[i] != hash)
        i = (i + 1) & mask;
    return &slots[i];
}

static void migrate(dedup *d, size_t steps)
{
    size_t end = d->old_mask + 1;
    if (steps < end - d->moved)
        end = d->moved + steps;
    for (; d->moved < end; d->moved++) {
        uint64_t h = d->old[d->moved];
        if (h)
            *probe(d->slots, d->mask, h) = h;
    }
    if (d->moved > d->old_mask) {
        free(d->old);
        d->old = NULL;
    }
}

static int grow(dedup *d)
{
    size_t n = (d->mask + 1) * 2;
    uint64_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    if (d->old)
        migrate(d, SIZE_MAX); /* not while MIGRATE_STEP >= 2 (see above); keeps it at two tables */
    d->old = d->slots;
    d->old_mask = d->mask;
    d->moved = 0;
    d->slots = slots;
    d->mask = n - 1;
    return 0;
}

int dedup_has(const dedup *d, uint64_t hash)
{
    if (!hash)
        hash = 1; /* as dedup_hash would have */
    if (*probe(d->slots, d->mask, hash))
        return 1;
    /* The old table is never written after a doubling, so a hash not yet
     * copied across is still found there. */
    return d->old && *probe(d->old, d->old_mask, hash);
}

int dedup_add(dedup *d, uint64_t hash)
{
    if (!hash)
        hash = 1; /* as dedup_hash would have */
    if (dedup_has(d, hash))
        return 0;
    uint64_t *slot = probe(d->slots, d->mask, hash);
    /* Grow only for a new hash, so a run of duplicates never costs memory. */
    if ((d->count + 1) * 4 > (d->mask + 1) * 3) {
        if (grow(d) < 0)
            return -1;
        slot = probe(d->slots, d->mask, hash);
    }
    *slot = hash;
    d->count++;
    if (d->old)
        migrate(d, MIGRATE_STEP);
    return 1;
}

size_t dedup_count(const dedup *d)
{
    return d->count;
}

size_t dedup_bytes(const dedup *d)
{
    size_t old = d->old ? (d->old_mask + 1) * sizeof *d->old : 0;
    return sizeof *d + (d->mask + 1) * sizeof *d->slots + old;
}
