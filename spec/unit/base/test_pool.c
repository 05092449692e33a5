/* The Lua states' allocator: blocks keep their bytes across size changes,
 * small blocks are reused, and big ones pass through to malloc. */
#include "check.h"
#include "base/pool.h"

#include <stdint.h>
#include <stdlib.h>

int main(void)
{
    pool *p = pool_new();
    CHECK(p != NULL);

    /* new blocks are distinct, aligned, writable */
    char *a = pool_realloc(p, NULL, 0, 24);
    char *b = pool_realloc(p, NULL, 0, 24);
    CHECK(a && b && a != b);
    CHECK(((uintptr_t)a % 16) == 0 && ((uintptr_t)b % 16) == 0);
    memset(a, 'a', 24);
    memset(b, 'b', 24);

    /* growing within the class keeps the block; across classes keeps bytes */
    CHECK(pool_realloc(p, a, 24, 30) == a);
    char *a2 = pool_realloc(p, a, 30, 100);
    CHECK(a2 != NULL);
    int same = 1;
    for (int i = 0; i < 24; i++)
        same &= a2[i] == 'a';
    CHECK(same);

    /* a freed block is handed out again for its class */
    CHECK(pool_realloc(p, b, 24, 0) == NULL);
    CHECK(pool_realloc(p, NULL, 0, 17) == b);

    /* small -> big -> small keeps the bytes */
    char *big = pool_realloc(p, a2, 100, 10000);
    CHECK(big != NULL);
    same = 1;
    for (int i = 0; i < 24; i++)
        same &= big[i] == 'a';
    CHECK(same);
    big[9999] = 'z';
    char *big2 = pool_realloc(p, big, 10000, 20000);
    CHECK(big2 && big2[9999] == 'z' && big2[0] == 'a');
    char *back = pool_realloc(p, big2, 20000, 64);
    CHECK(back && back[0] == 'a' && back[23] == 'a');

    /* many blocks of every class: no overlap (each keeps its own pattern) */
    enum { N = 20000 };
    static char *blk[N];
    static size_t len[N];
    for (int i = 0; i < N; i++) {
        len[i] = 1 + (size_t)(i * 7919) % POOL_MAX_SMALL;
        blk[i] = pool_realloc(p, NULL, 0, len[i]);
        memset(blk[i], i & 0xff, len[i]);
    }
    int intact = 1;
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < len[i]; j++)
            intact &= (unsigned char)blk[i][j] == (i & 0xff);
    CHECK(intact);
    size_t slabs = pool_slab_bytes(p);
    for (int i = 0; i < N; i++)
        pool_realloc(p, blk[i], len[i], 0);
    /* the same again reuses the freed blocks: no new slab */
    for (int i = 0; i < N; i++)
        blk[i] = pool_realloc(p, NULL, 0, len[i]);
    CHECK_EQ_INT(pool_slab_bytes(p), slabs);

    pool_realloc(p, back, 64, 0);
    pool_free(p);
    pool_free(NULL);
    return check_done();
}
