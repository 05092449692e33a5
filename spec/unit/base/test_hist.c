/* Latency percentiles must stay within the histogram's promised 1/16. */
#include "check.h"
#include "base/hist.h"

#include <stdlib.h>

static int within(uint64_t got, uint64_t want)
{
    double err = (double)got - (double)want;
    if (err < 0)
        err = -err;
    return err <= (double)want / 16.0 + 1;
}

int main(void)
{
    static struct hist h, a, b;
    CHECK_EQ_INT(hist_quantile(&h, 0.5), 0);

    for (uint64_t v = 1; v <= 100000; v++)
        hist_record(&h, v);
    CHECK(within(hist_quantile(&h, 0.5), 50000));
    CHECK(within(hist_quantile(&h, 0.9), 90000));
    CHECK(within(hist_quantile(&h, 0.99), 99000));
    CHECK_EQ_INT(hist_quantile(&h, 1.0), 100000);
    CHECK_EQ_INT(h.max_us, 100000);
    CHECK_EQ_INT(h.count, 100000);

    /* small values are exact */
    static struct hist s;
    for (int i = 0; i < 10; i++)
        hist_record(&s, (uint64_t)i);
    CHECK_EQ_INT(hist_quantile(&s, 0.5), 4);

    /* huge values do not overflow the bucket array */
    hist_record(&s, UINT64_MAX);
    CHECK_EQ_INT(hist_quantile(&s, 1.0), UINT64_MAX);

    /* merge equals recording everything into one */
    for (uint64_t v = 1; v <= 1000; v++)
        hist_record(v % 2 ? &a : &b, v * 37);
    hist_merge(&a, &b);
    CHECK_EQ_INT(a.count, 1000);
    CHECK(within(hist_quantile(&a, 0.5), 500 * 37));
    CHECK_EQ_INT(a.max_us, 1000 * 37);
    return check_done();
}
