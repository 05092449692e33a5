/* pool.c - size classes of 16 bytes up to POOL_MAX_SMALL, each with a free
 * list threaded through its free blocks; new blocks are cut from 64 KiB
 * slabs. A block's class is known from the size the caller passes back, so
 * blocks carry no header. */
#include "base/pool.h"

#include <stdlib.h>
#include <string.h>

#define GRAIN 16
#define CLASSES (POOL_MAX_SMALL / GRAIN)
#define SLAB (64 * 1024)

struct slab {
    struct slab *next;
    /* blocks follow, GRAIN-aligned */
};

struct pool {
    void *free[CLASSES];
    char *cur, *end; /* the unused tail of the newest slab */
    struct slab *slabs;
    size_t slab_bytes;
};

static size_t class_of(size_t n)
{
    return (n + GRAIN - 1) / GRAIN - 1;
}

pool *pool_new(void)
{
    return calloc(1, sizeof(pool));
}

void pool_free(pool *p)
{
    if (!p)
        return;
    for (struct slab *s = p->slabs, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    free(p);
}

static void *small_alloc(pool *p, size_t c)
{
    void *b = p->free[c];
    if (b) {
        p->free[c] = *(void **)b;
        return b;
    }
    size_t size = (c + 1) * GRAIN;
    if ((size_t)(p->end - p->cur) < size) {
        struct slab *s = malloc(SLAB);
        if (!s)
            return NULL;
        s->next = p->slabs;
        p->slabs = s;
        p->slab_bytes += SLAB;
        p->cur = (char *)s + GRAIN; /* header padded to keep blocks aligned */
        p->end = (char *)s + SLAB;
    }
    b = p->cur;
    p->cur += size;
    return b;
}

static void small_release(pool *p, void *b, size_t c)
{
    *(void **)b = p->free[c];
    p->free[c] = b;
}

void *pool_realloc(pool *p, void *ptr, size_t osize, size_t nsize)
{
    int was_small = ptr && osize <= POOL_MAX_SMALL;
    if (nsize == 0) {
        if (was_small)
            small_release(p, ptr, class_of(osize));
        else
            free(ptr);
        return NULL;
    }
    if (nsize <= POOL_MAX_SMALL) {
        size_t c = class_of(nsize);
        if (was_small && class_of(osize) == c)
            return ptr;
        void *b = small_alloc(p, c);
        if (!b)
            return NULL;
        if (ptr) {
            memcpy(b, ptr, osize < nsize ? osize : nsize);
            if (was_small)
                small_release(p, ptr, class_of(osize));
            else
                free(ptr);
        }
        return b;
    }
    if (!ptr || !was_small)
        return realloc(ptr, nsize);
    void *b = malloc(nsize);
    if (!b)
        return NULL;
    memcpy(b, ptr, osize);
    small_release(p, ptr, class_of(osize));
    return b;
}

size_t pool_slab_bytes(const pool *p)
{
    return p->slab_bytes;
}
