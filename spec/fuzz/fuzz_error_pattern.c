/* fuzz_error_pattern.c - fuzz target for stats_error_pattern, the scanner
 * that masks URLs and numbers in failure messages so the summary groups
 * one kind of failure as one entry.
 *
 * For any bytes and several buffer sizes: no write past outlen, the answer
 * is NUL-terminated at the returned length, shorter than outlen, and a
 * prefix of the answer an ample buffer gets (a cut only shortens); UTF-8
 * in gives UTF-8 out; masking twice changes nothing (the masks themselves
 * hold no URL or number, and a kept number keeps its context); and no
 * "://" is left with a scheme before it, so no URL survives. Any breach
 * aborts. */
#include "core/stats.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

#define GUARD 16

static size_t masked(const char *in, size_t len, char *out, size_t outlen)
{
    memset(out, 'G', outlen + GUARD);
    size_t n = stats_error_pattern(out, outlen, in, len);
    for (size_t i = 0; i < GUARD; i++)
        must(out[outlen + i] == 'G');
    if (outlen)
        must(n < outlen && out[n] == 0);
    else
        must(n == 0);
    return n;
}

static int scheme_char(unsigned char c)
{
    return isalnum(c) || c == '+' || c == '-' || c == '.';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t big = size * 3 + 1; /* "<n>" for a 1-byte number is the most growth */
    char *full = malloc(big + GUARD), *again = malloc(big + GUARD), *cut = malloc(big + GUARD);
    must(full && again && cut);
    size_t n = masked(in, size, full, big);
    if (is_utf8(in, size))
        must(is_utf8(full, n));
    for (size_t i = 0; i + 3 <= n; i++)
        if (memcmp(full + i, "://", 3) == 0)
            must(i == 0 || !scheme_char((unsigned char)full[i - 1]));
    must(masked(full, n, again, big) == n && memcmp(again, full, n) == 0);
    const size_t sizes[] = {0, 1, 2, 5, 8, STATS_ERROR_LEN};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0] && sizes[k] <= big; k++) {
        size_t c = masked(in, size, cut, sizes[k]);
        must(c <= n && memcmp(cut, full, c) == 0);
        if (is_utf8(in, size))
            must(is_utf8(cut, c));
    }
    free(full);
    free(again);
    free(cut);
    return 0;
}
