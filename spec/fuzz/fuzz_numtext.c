/* fuzz_numtext.c - fuzz target for numtext, which writes the numbers the
 * Redis queue's scripts read back with tonumber.
 *
 * Any 8 bytes as a double and as an integer: the text fits NUMTEXT_MAX,
 * is what snprintf writes ("%a", or "%lld" for a whole number below 2^53),
 * and strtod reads the same value back. */
#include "base/numtext.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t b;
    memcpy(&b, data, sizeof b);
    char got[NUMTEXT_MAX + 1], want[64];

    size_t n = numtext_i64(got, (int64_t)b);
    must(n <= NUMTEXT_MAX);
    got[n] = 0;
    snprintf(want, sizeof want, "%" PRId64, (int64_t)b);
    must(strcmp(got, want) == 0);

    double x;
    memcpy(&x, &b, sizeof x);
    if (isnan(x))
        return 0;
    n = numtext_real(got, x);
    must(n <= NUMTEXT_MAX);
    got[n] = 0;
    if (fabs(x) < 0x1p53 && x == (double)(int64_t)x)
        snprintf(want, sizeof want, "%" PRId64, (int64_t)x);
    else
        snprintf(want, sizeof want, "%a", x);
    must(strcmp(got, want) == 0);
    must(strtod(got, NULL) == x);
    return 0;
}
