/* numtext.c - see numtext.h. */
#include "base/numtext.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

size_t numtext_u64(char *out, uint64_t v)
{
    char t[20];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = t[n - 1 - i];
    return n;
}

size_t numtext_i64(char *out, int64_t v)
{
    if (v >= 0)
        return numtext_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + numtext_u64(out + 1, 0 - (uint64_t)v); /* INT64_MIN too */
}

size_t numtext_real(char *out, double x)
{
    if (fabs(x) < 0x1p53 && x == (double)(int64_t)x)
        return numtext_i64(out, (int64_t)x);
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int exp = (int)((bits >> 52) & 0x7ff);
    uint64_t frac = bits & ((UINT64_C(1) << 52) - 1);
    if (exp == 0 || exp == 0x7ff) /* subnormal, infinite, NaN: rare enough */
        return (size_t)snprintf(out, NUMTEXT_MAX, "%a", x);
    char *p = out;
    if (bits >> 63)
        *p++ = '-';
    memcpy(p, "0x1", 3);
    p += 3;
    if (frac) {
        *p++ = '.';
        for (int shift = 48; frac; shift -= 4) {
            *p++ = "0123456789abcdef"[(frac >> shift) & 0xf];
            frac &= (UINT64_C(1) << shift) - 1;
        }
    }
    *p++ = 'p';
    int e = exp - 1023;
    *p++ = e < 0 ? '-' : '+';
    p += numtext_u64(p, (uint64_t)(e < 0 ? -e : e));
    return (size_t)(p - out);
}
