/* fuzz_jobpack.c - fuzz target for jobpack_read, which reads the jobs the
 * Redis queue's store hands back (a store shared with other processes, so
 * its bytes are not trusted).
 *
 * Any bytes: the reader must not crash or over-read (ASan); what it reads
 * lies inside the input, in order, and covers it to the end; packed again
 * with jobpack_make and read back, the fields are the same. */
#include "core/jobpack.h"

#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"

static int inside(const char *p, size_t n, const char *s, size_t size)
{
    return n == 0 || (p >= s && p + n <= s + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct jobpack_fields f;
    if (jobpack_read(s, size, &f) < 0)
        return 0;
    must(f.attempt >= 1);
    if (size == 0)
        return 0;
    must(inside(f.group, f.group_len, s, size) && inside(f.data, f.len, s, size) &&
         inside(f.ctx, f.ctx_len, s, size));
    must(f.data == f.group + f.group_len && f.ctx == f.data + f.len &&
         f.ctx + f.ctx_len == s + size);
    struct jobpack j;
    must(jobpack_make(&j, &f) == 0);
    struct jobpack_fields g;
    must(jobpack_read(j.p, j.len, &g) == 0);
    must(g.attempt == f.attempt && g.priority == f.priority && g.depth == f.depth);
    must(g.group_len == f.group_len && memcmp(g.group, f.group, f.group_len) == 0);
    must(g.len == f.len && memcmp(g.data, f.data, f.len) == 0);
    must(g.ctx_len == f.ctx_len && memcmp(g.ctx, f.ctx, f.ctx_len) == 0);
    jobpack_free(&j);
    return 0;
}
