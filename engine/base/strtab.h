/* strtab.h - a table from strings to small records of one size.
 *
 * For the engine's tables keyed by names that come from outside (hosts,
 * origins, politeness groups): open addressing over a seeded hash, so keys
 * a hostile page lists cannot be made to pile into one probe run; grown
 * at half full. A record is allocated with its key and never moves, so a
 * pointer to it stays good until strtab_free. Records are never removed.
 *
 * Not thread-safe: the owner's lock guards a table. */
#ifndef SHOAL_STRTAB_H
#define SHOAL_STRTAB_H

#include <stddef.h>
#include <stdint.h>

struct strtab_cell {
    const char *key; /* NUL-terminated, inside the record's allocation; NULL: empty */
    size_t len;
    uint64_t hash;
    void *value;
};

struct strtab {
    struct strtab_cell *cells;
    size_t cap, used;
    size_t value_size;
    uint64_t seed;
};

/* 0, or -1 when out of memory. */
int strtab_init(struct strtab *t, size_t value_size);
/* Calls drop (if not NULL) on every record, then frees everything. */
void strtab_free(struct strtab *t, void (*drop)(void *value));

/* key's record, or NULL if absent; with make, a new zeroed record when
 * absent (NULL only when out of memory). */
void *strtab_get(struct strtab *t, const char *key, size_t len, int make);

/* Calls fn on every record, in no order. */
void strtab_each(const struct strtab *t, void (*fn)(void *arg, const char *key, size_t len,
                                                    void *value),
                 void *arg);

#endif
