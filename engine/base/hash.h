/* hash.h - FNV-1a (64-bit) over bytes: the string hash of the engine's own
 * tables (metric series, interned symbols, pprof strings, warn-once
 * messages). Fast on the short keys those hold; not for hostile input where
 * flooding one bucket would matter. */
#ifndef SHOAL_HASH_H
#define SHOAL_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

#endif
