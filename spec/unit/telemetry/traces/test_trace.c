/* test_trace.c - trace ids, W3C traceparent, and the OTEL_TRACES_SAMPLER
 * decisions a user configures. */
#include "check.h"
#include "telemetry/traces/trace.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static void test_ids(void)
{
    /* 100,000 ids: none all zero, none repeated among neighbours */
    uint8_t prev[16] = {0};
    int zero = 0, same = 0;
    for (int i = 0; i < 100000; i++) {
        uint8_t t[16], s[8];
        trace_new_trace_id(t);
        trace_new_span_id(s);
        static const uint8_t z[16];
        zero += !memcmp(t, z, 16) || !memcmp(s, z, 8);
        same += !memcmp(t, prev, 16);
        memcpy(prev, t, 16);
    }
    CHECK_EQ_INT(zero, 0);
    CHECK_EQ_INT(same, 0);
    char hex[33];
    uint8_t b[2] = {0x0f, 0xa0};
    trace_hex(b, 2, hex);
    CHECK_STR(hex, "0fa0");
}

static void *other_thread(void *arg)
{
    trace_new_trace_id(arg);
    return NULL;
}

static void test_threads_differ(void)
{
    /* each thread seeds its own generator: two threads never start alike */
    uint8_t a[16], b[16];
    pthread_t t1, t2;
    pthread_create(&t1, NULL, other_thread, a);
    pthread_join(t1, NULL);
    pthread_create(&t2, NULL, other_thread, b);
    pthread_join(t2, NULL);
    CHECK(memcmp(a, b, 16) != 0);
}

static void test_parse(void)
{
    struct trace_ctx c;
    CHECK_EQ_INT(trace_parse_traceparent(good, strlen(good), &c), 0);
    CHECK_EQ_INT(c.valid, 1);
    CHECK_EQ_INT(c.flags, 1);
    CHECK_EQ_INT(c.trace_id[0], 0x4b);
    CHECK_EQ_INT(c.span_id[7], 0xb7);
    char out[TRACEPARENT_LEN + 1];
    trace_format_traceparent(&c, out);
    CHECK_STR(out, good);

    static const char *bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",        /* no flags */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     /* zero span */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",   /* v00 + more */
        "00-4bf92f3577b34da6a3ce929d0e0e4736x00f067aa0ba902b7-01",     /* separator */
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* version hex */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z",     /* flags hex */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",    /* future, no dash */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = trace_parse_traceparent(bad[i], strlen(bad[i]), &c);
        if (r != -1)
            fprintf(stderr, "accepted: '%s'\n", bad[i]);
        CHECK_EQ_INT(r, -1);
        CHECK_EQ_INT(c.valid, 0);
    }
    /* a later version may carry more fields; blanks around are fine */
    const char *future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-ever";
    CHECK_EQ_INT(trace_parse_traceparent(future, strlen(future), &c), 0);
    CHECK_EQ_INT(c.flags, 0);
    const char *padded = " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t";
    CHECK_EQ_INT(trace_parse_traceparent(padded, strlen(padded), &c), 0);
    /* a length that stops short of the NUL is honoured */
    CHECK_EQ_INT(trace_parse_traceparent(good, 54, &c), -1);
}

static void test_sampler(void)
{
    struct trace_sampler s;
    char err[256];
    struct trace_ctx sampled = {.valid = 1, .flags = 1}, unsampled = {.valid = 1, .flags = 0};
    uint8_t id[16] = {1};

    CHECK_EQ_INT(trace_sampler_parse(&s, NULL, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(s.kind, TRACE_SAMPLER_PARENT_ON); /* the default */
    CHECK_EQ_INT(trace_sampler_decide(&s, id, NULL), 1);
    CHECK_EQ_INT(trace_sampler_decide(&s, id, &unsampled), 0);
    CHECK_EQ_INT(trace_sampler_decide(&s, id, &sampled), 1);

    CHECK_EQ_INT(trace_sampler_parse(&s, "always_off", NULL, err, sizeof err), 0);
    CHECK_EQ_INT(trace_sampler_decide(&s, id, &sampled), 0);
    CHECK_EQ_INT(trace_sampler_parse(&s, "ALWAYS_ON", NULL, err, sizeof err), 0);
    CHECK_EQ_INT(trace_sampler_decide(&s, id, &unsampled), 1);
    CHECK_EQ_INT(trace_sampler_parse(&s, "parentbased_always_off", NULL, err, sizeof err), 0);
    CHECK_EQ_INT(trace_sampler_decide(&s, id, NULL), 0);
    CHECK_EQ_INT(trace_sampler_decide(&s, id, &sampled), 1);

    /* traceidratio 0.25 keeps about a quarter of random traces, and
     * decides the same way for the same id every time */
    CHECK_EQ_INT(trace_sampler_parse(&s, "traceidratio", "0.25", err, sizeof err), 0);
    int kept = 0, n = 200000;
    for (int i = 0; i < n; i++) {
        uint8_t t[16];
        trace_new_trace_id(t);
        int d = trace_sampler_decide(&s, t, &unsampled); /* the parent is ignored */
        kept += d;
        CHECK(trace_sampler_decide(&s, t, NULL) == d);
    }
    CHECK(kept > n / 4 - n / 50 && kept < n / 4 + n / 50);
    CHECK_EQ_INT(trace_sampler_parse(&s, "traceidratio", "0", err, sizeof err), 0);
    CHECK_EQ_INT(trace_sampler_decide(&s, id, NULL), 0);
    CHECK_EQ_INT(trace_sampler_parse(&s, "parentbased_traceidratio", "0", err, sizeof err), 0);
    CHECK_EQ_INT(trace_sampler_decide(&s, id, &sampled), 1);
    CHECK_EQ_INT(trace_sampler_parse(&s, "traceidratio", NULL, err, sizeof err), 0);
    CHECK_EQ_INT(trace_sampler_decide(&s, id, NULL), 1); /* ratio defaults to 1 */

    CHECK_EQ_INT(trace_sampler_parse(&s, "sometimes", NULL, err, sizeof err), -1);
    CHECK(strstr(err, "OTEL_TRACES_SAMPLER=sometimes") && strstr(err, "traceidratio"));
    CHECK_EQ_INT(trace_sampler_parse(&s, "traceidratio", "1.5", err, sizeof err), -1);
    CHECK(strstr(err, "OTEL_TRACES_SAMPLER_ARG=1.5") != NULL);
    CHECK_EQ_INT(trace_sampler_parse(&s, "traceidratio", "half", err, sizeof err), -1);
}

static void test_tracestate(void)
{
    CHECK_EQ_INT(trace_state_ok("vendor=abc,other=x1", 19), 1);
    CHECK_EQ_INT(trace_state_ok("", 0), 0);
    CHECK_EQ_INT(trace_state_ok("a=b\r\nx: y", 10), 0); /* no header injection */
    char big[600];
    memset(big, 'a', sizeof big);
    CHECK_EQ_INT(trace_state_ok(big, 512), 1);
    CHECK_EQ_INT(trace_state_ok(big, 513), 0);
}

int main(void)
{
    test_ids();
    test_threads_differ();
    test_parse();
    test_sampler();
    test_tracestate();
    return check_done();
}
