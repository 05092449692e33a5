/* fuzz_csv_read.c - fuzz target for the CSV reader (csv_read_record), which
 * reads an existing output file's header.
 *
 * Any bytes: the reader must not crash, over-read or leak (ASan), must
 * take no more than it was given, and what it reads must be what it would
 * write: the fields it returns, written again with csv_record, read back
 * into the same fields, taking exactly the bytes written. A record cut
 * short anywhere before its line end reads as "not whole yet" (0), never
 * as a record. Any breach aborts, which libFuzzer and the CTest replay
 * both report. */
#include "base/csv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "base/strbuf.h"

#define MAX_FIELDS 64

static void free_fields(char **f, int n)
{
    for (int i = 0; i < n; i++)
        free(f[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char *f[MAX_FIELDS];
    size_t lens[MAX_FIELDS], used = 0;
    int n = csv_read_record(s, size, MAX_FIELDS, f, lens, &used);
    must(n >= -1 && n <= MAX_FIELDS);
    if (n <= 0)
        return 0;
    must(used > 0 && used <= size && (s[used - 1] == '\n'));
    /* a cut before the line end is not a record yet */
    size_t cut = used - 1;
    if (cut > 0 && s[cut - 1] == '\r')
        cut--;
    char *g[MAX_FIELDS];
    size_t glens[MAX_FIELDS], gused = 0;
    int m = csv_read_record(s, cut, MAX_FIELDS, g, glens, &gused);
    must(m <= 0);
    /* written again, it reads back the same */
    struct strbuf b = {0};
    csv_record(&b, n, (const char *const *)f, lens);
    must(!b.oom);
    m = csv_read_record(b.p, b.len, MAX_FIELDS, g, glens, &gused);
    must(m == n && gused == b.len);
    for (int i = 0; i < n; i++)
        must(glens[i] == lens[i] && memcmp(g[i], f[i], lens[i]) == 0);
    free_fields(g, m);
    free_fields(f, n);
    free(b.p);
    return 0;
}
