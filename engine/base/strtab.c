/* strtab.c - a table from strings to small records (strtab.h). */
#include "base/strtab.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>


int strtab_init(struct strtab *t, size_t value_size)
{
    memset(t, 0, sizeof *t);
    t->cap = 16;
    t->cells = calloc(t->cap, sizeof *t->cells);
    if (!t->cells)
        return -1;
    t->value_size = (value_size + 15) & ~(size_t)15;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t->seed = ((uint64_t)ts.tv_nsec << 32 ^ (uint64_t)ts.tv_sec ^ (uintptr_t)t) |
              1; /* never 0, so a seeded hash differs from the bare one */
    return 0;
}

void strtab_free(struct strtab *t, void (*drop)(void *value))
{
    for (size_t i = 0; t->cells && i < t->cap; i++) {
        if (!t->cells[i].key)
            continue;
        if (drop)
            drop(t->cells[i].value);
        free(t->cells[i].value); /* the key lives in the same block */
    }
    free(t->cells);
    memset(t, 0, sizeof *t);
}

static uint64_t seeded(const struct strtab *t, const char *key, size_t len)
{
    /* FNV-1a from a per-table start. Its multiplies carry a bit of the
     * seed only upwards, so the low bits that pick a cell would hardly see
     * the seed's high half (the clock's nanoseconds): a full avalanche
     * (MurmurHash3's finaliser) lets every bit of the seed move every
     * bucket. */
    uint64_t h = 1469598103934665603ull ^ t->seed;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static struct strtab_cell *probe(struct strtab_cell *cells, size_t cap, const char *key,
                                 size_t len, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    for (;;) {
        struct strtab_cell *c = &cells[i];
        if (!c->key || (c->hash == h && c->len == len && memcmp(c->key, key, len) == 0))
            return c;
        i = (i + 1) & (cap - 1);
    }
}

static int grow(struct strtab *t)
{
    size_t cap = t->cap * 2;
    struct strtab_cell *cells = calloc(cap, sizeof *cells);
    if (!cells)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        struct strtab_cell *c = &t->cells[i];
        if (c->key)
            *probe(cells, cap, c->key, c->len, c->hash) = *c;
    }
    free(t->cells);
    t->cells = cells;
    t->cap = cap;
    return 0;
}

void *strtab_get(struct strtab *t, const char *key, size_t len, int make)
{
    uint64_t h = seeded(t, key, len);
    struct strtab_cell *c = probe(t->cells, t->cap, key, len, h);
    if (c->key || !make)
        return c->key ? c->value : NULL;
    if ((t->used + 1) * 2 > t->cap) {
        if (grow(t) != 0)
            return NULL;
        c = probe(t->cells, t->cap, key, len, h);
    }
    /* the record, then its key */
    char *block = calloc(1, t->value_size + len + 1);
    if (!block)
        return NULL;
    memcpy(block + t->value_size, key, len);
    c->key = block + t->value_size;
    c->len = len;
    c->hash = h;
    c->value = block;
    t->used++;
    return block;
}

void strtab_each(const struct strtab *t, void (*fn)(void *arg, const char *key, size_t len,
                                                    void *value),
                 void *arg)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->cells[i].key)
            fn(arg, t->cells[i].key, t->cells[i].len, t->cells[i].value);
}
