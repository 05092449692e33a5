/* jobpack.h - a job as one string, for a store that keeps it whole (the
 * Redis queue's P:jd values, after their 16 hex digits of sequence):
 *
 *   "attempt,priority,depth,group length,data length;" group data ctx
 *
 * Decimal numbers (priority and depth may be negative), then the bytes
 * back to back; what follows the data is the ctx. The store's Lua packs
 * a retried job the same way (jpack in queue_redis_scripts.c). */
#ifndef SHOAL_JOBPACK_H
#define SHOAL_JOBPACK_H

#include <stddef.h>

struct jobpack_fields {
    int attempt, priority, depth;
    const char *group, *data, *ctx; /* into the packed string when read */
    size_t group_len, len, ctx_len;
};

/* A packed job: p points into buf when it fits, else to the heap. */
struct jobpack {
    char *p;
    size_t len;
    char buf[1024];
};

/* Packs f into j; -1 (nothing to free) if out of memory. */
int jobpack_make(struct jobpack *j, const struct jobpack_fields *f);
/* Frees what jobpack_make took; nothing on a zeroed or freed jobpack. */
void jobpack_free(struct jobpack *j);

/* Reads a packed job of n bytes into f, whose pointers go into s; -1 if s
 * is not one. An empty string is the empty job (attempt 1, nothing else),
 * what a store answers for a job it no longer has. */
int jobpack_read(const char *s, size_t n, struct jobpack_fields *f);

#endif
