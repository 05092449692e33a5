/* The numbers the Redis queue sends its scripts must read back exactly:
 * numtext writes what snprintf would ("%lld", "%a"), only faster. */
#include "check.h"
#include "base/numtext.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

static char got[NUMTEXT_MAX + 1];

static const char *i64(int64_t v)
{
    got[numtext_i64(got, v)] = 0;
    return got;
}

static const char *real(double x)
{
    got[numtext_real(got, x)] = 0;
    return got;
}

static uint64_t rng = 88172645463325252u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(void)
{
    CHECK_STR(i64(0), "0");
    CHECK_STR(i64(7), "7");
    CHECK_STR(i64(-42), "-42");
    CHECK_STR(i64(INT64_MAX), "9223372036854775807");
    CHECK_STR(i64(INT64_MIN), "-9223372036854775808");
    got[numtext_u64(got, UINT64_MAX)] = 0;
    CHECK_STR(got, "18446744073709551615");

    /* whole numbers below 2^53 in decimal, as Lua prints them */
    CHECK_STR(real(0.0), "0");
    CHECK_STR(real(3.0), "3");
    CHECK_STR(real(-1024.0), "-1024");
    CHECK_STR(real(9007199254740991.0), "9007199254740991");
    /* the rest as "%a" */
    CHECK_STR(real(0.5), "0x1p-1");
    CHECK_STR(real(1.5), "0x1.8p+0");
    CHECK_STR(real(-0.1), "-0x1.999999999999ap-4");
    CHECK_STR(real(0x1p53), "0x1p+53");
    CHECK_STR(real(DBL_MAX), "0x1.fffffffffffffp+1023");
    CHECK_STR(real(DBL_MIN), "0x1p-1022");
    CHECK_STR(real(DBL_TRUE_MIN), "0x0.0000000000001p-1022");
    CHECK_STR(real(INFINITY), "inf");
    CHECK_STR(real(-INFINITY), "-inf");

    /* random bit patterns and a monotonic clock's values: the same text
     * as snprintf, and strtod reads back the same double */
    int same = 1, back = 1, ints = 1;
    char want[64];
    for (int i = 0; i < 200000; i++) {
        double x;
        uint64_t b = next();
        if (i % 2) {
            memcpy(&x, &b, sizeof x);
        } else {
            x = (double)(b % 100000000) / 1024.0 + (double)(b >> 40) * 1e-9;
        }
        if (isnan(x))
            continue;
        real(x);
        if (fabs(x) < 0x1p53 && x == (double)(int64_t)x)
            snprintf(want, sizeof want, "%" PRId64, (int64_t)x);
        else
            snprintf(want, sizeof want, "%a", x);
        same &= strcmp(got, want) == 0;
        back &= strtod(got, NULL) == x || (x == 0 && strtod(got, NULL) == 0);
        int64_t v = (int64_t)b;
        snprintf(want, sizeof want, "%" PRId64, v);
        ints &= strcmp(i64(v), want) == 0;
        if (!same || !back || !ints) {
            fprintf(stderr, "first difference at %d: %a\n", i, x);
            break;
        }
    }
    CHECK(same);
    CHECK(back);
    CHECK(ints);
    return check_done();
}
