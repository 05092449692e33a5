/* pool.h - a size-class allocator for one Lua state.
 *
 * Lua states allocate and free small objects (tables, strings, closures) at
 * a high rate; serving them from per-size free lists carved out of large
 * slabs is several times cheaper than malloc/free. Blocks of up to
 * POOL_MAX_SMALL bytes come from the pool, larger ones from malloc. Freed
 * small blocks are kept for reuse until pool_free; the state's memory cap is
 * counted separately, on the sizes Lua asks for.
 *
 * A pool belongs to one state, so to one thread at a time: no locking. */
#ifndef SHOAL_POOL_H
#define SHOAL_POOL_H

#include <stddef.h>

#define POOL_MAX_SMALL 512

typedef struct pool pool;

/* Returns NULL on out of memory. */
pool *pool_new(void);
/* Frees every slab and the pool; blocks from malloc must have been freed. */
void pool_free(pool *p);

/* The lua_Alloc contract: nsize 0 frees ptr (of osize) and returns NULL;
 * otherwise returns a block of nsize holding the first min(osize, nsize)
 * bytes of ptr, or NULL (ptr untouched) when out of memory. osize must be
 * the size the block was allocated with. */
void *pool_realloc(pool *p, void *ptr, size_t osize, size_t nsize);

/* Bytes held in slabs (live and free small blocks). */
size_t pool_slab_bytes(const pool *p);

#endif
