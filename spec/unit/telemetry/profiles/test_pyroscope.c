/* test_pyroscope.c - the Pyroscope push as Pyroscope and the profiler
 * thread see it: the request the Go client makes (POST /ingest, name with
 * the service_name label, from/until in Unix seconds, spyName, no format,
 * a multipart form whose "profile" part is the profile byte for byte),
 * the URL and service name rules, 503 and 429 retried (Retry-After
 * honoured) and 400 not, a bounded queue whose overflow is dropped and
 * counted, a submit that never waits, a shutdown that sends what is queued
 * yet keeps its deadline when the backend is down or hangs, every window
 * counted once (exported, dropped or failed) and each kind of trouble
 * logged once with the URL's password hidden. */
#include "check.h"
#include "fake_http.h"
#include "telemetry/metrics/metrics.h"
#include "telemetry/profiles/pyroscope.h"
#include "tel_registry.h"

#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ reading a request */

/* The decoded value of query parameter key in target ("" when absent,
 * "(none)" when not there at all). */
static void param(const char *target, const char *key, char *out, size_t outlen)
{
    snprintf(out, outlen, "(none)");
    const char *q = strchr(target, '?');
    size_t k = strlen(key);
    for (const char *p = q; p && *p; p = strchr(p + 1, '&')) {
        if (strncmp(p + 1, key, k) == 0 && p[1 + k] == '=') {
            const char *v = p + 2 + k;
            int n = (int)strcspn(v, "&");
            char *dec = curl_easy_unescape(NULL, v, n, NULL);
            snprintf(out, outlen, "%s", dec ? dec : "");
            curl_free(dec);
            return;
        }
    }
}

static const uint8_t *find(const uint8_t *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

/* The multipart form of r: how many parts it has, and the headers and
 * content of the first. 0 when it is not a well-formed form. */
static int first_part(const struct fake_req *r, char *headers, size_t hlen, const uint8_t **data,
                      size_t *dlen, int *nparts)
{
    const char *b = strstr(r->ctype, "boundary=");
    if (strncmp(r->ctype, "multipart/form-data;", 20) != 0 || !b)
        return 0;
    char delim[128];
    snprintf(delim, sizeof delim, "\r\n--%s", b + 9);
    /* the body starts with the delimiter without its CRLF */
    if (r->len < strlen(delim) || memcmp(r->body, delim + 2, strlen(delim) - 2) != 0)
        return 0;
    const uint8_t *p = r->body + strlen(delim) - 2, *end = r->body + r->len;
    int n = 0;
    *data = NULL;
    while (p + 2 <= end && memcmp(p, "\r\n", 2) == 0) { /* "--" instead ends the form */
        p += 2;
        const uint8_t *hend = find(p, (size_t)(end - p), "\r\n\r\n");
        if (!hend)
            return 0;
        const uint8_t *next = find(hend + 4, (size_t)(end - hend - 4), delim);
        if (!next)
            return 0;
        if (n++ == 0) {
            snprintf(headers, hlen, "%.*s", (int)(hend - p), (const char *)p);
            *data = hend + 4;
            *dlen = (size_t)(next - hend - 4);
        }
        p = next + strlen(delim);
    }
    *nparts = n;
    return p + 2 <= end && memcmp(p, "--", 2) == 0;
}

/* ------------------------------------------------------------ counts */

static struct tel_registry *M;

static double value(struct metric_family *f)
{
    const char *sig[1] = {"profiles"};
    return metric_value(metrics_series(f, sig, NULL, 1));
}

struct counts {
    double exported, dropped, failed;
};

static struct counts since(struct counts a)
{
    struct counts d = {value(M->tel_exported) - a.exported, value(M->tel_dropped) - a.dropped,
                       value(M->tel_failed) - a.failed};
    return d;
}

static struct counts snap(void)
{
    struct counts zero = {0, 0, 0};
    return since(zero);
}

static struct pyroscope *sender(const char *url, const char *service, const char *instance)
{
    struct pyroscope_config c = {
        .url = url, .service = service, .instance = instance, .timeout_ms = 2000};
    char err[256] = "";
    struct pyroscope *p = pyroscope_new(&c, M->reg, err, sizeof err);
    if (!p)
        fprintf(stderr, "pyroscope_new(%s): %s\n", url, err);
    return p;
}

/* A stand-in for a window's gzip'd pprof: every byte value, CR LF and
 * "--" included, so a form that mangled binary would show. */
#define BODY_LEN 700
static uint8_t *body(void)
{
    uint8_t *b = malloc(BODY_LEN);
    for (int i = 0; i < BODY_LEN; i++)
        b[i] = (uint8_t)(i * 7 + 3);
    memcpy(b + 100, "\r\n--boundary\r\n", 14);
    return b;
}

#define T0 1700000000250000000ull /* a window from here ... */
#define T1 1700000010250000000ull /* ... to here */

/* ------------------------------------------------------------ the tests */

static void test_request(void)
{
    struct fake *f = fake_start(200, NULL, NULL, 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    struct counts c0 = snap();
    struct pyroscope *p = sender(url, "shoal-test", NULL);
    CHECK(p != NULL);
    if (!p) {
        fake_stop(f);
        return;
    }
    pyroscope_submit(p, body(), BODY_LEN, T0, T1);
    CHECK(wait_requests(f, 1, 5));
    pyroscope_shutdown(p, 2000);
    struct counts d = since(c0);
    CHECK_EQ_INT(d.exported, 1);
    CHECK_EQ_INT(d.dropped + d.failed, 0);
    CHECK_EQ_INT(fake_count(f), 1);

    struct fake_req *r = &f->r[0];
    char v[256];
    CHECK(strncmp(r->target, "/ingest?", 8) == 0);
    param(r->target, "name", v, sizeof v);
    CHECK_STR(v, "shoal-test{service_name=shoal-test}");
    param(r->target, "from", v, sizeof v);
    CHECK_STR(v, "1700000000"); /* Unix seconds, rounded down ... */
    param(r->target, "until", v, sizeof v);
    CHECK_STR(v, "1700000011"); /* ... and up, so the window is covered */
    param(r->target, "spyName", v, sizeof v);
    CHECK_STR(v, "shoal");
    param(r->target, "format", v, sizeof v);
    CHECK_STR(v, "(none)"); /* with format=pprof, Pyroscope would not read the form */
    CHECK(strstr(r->target, "{") == NULL); /* encoded */

    char headers[512] = "";
    const uint8_t *data = NULL;
    size_t dlen = 0;
    int nparts = 0;
    CHECK(first_part(r, headers, sizeof headers, &data, &dlen, &nparts));
    CHECK_EQ_INT(nparts, 1);
    CHECK(strstr(headers, "name=\"profile\"") != NULL);
    CHECK(strstr(headers, "filename=\"profile.pprof\"") != NULL);
    uint8_t *want = body();
    CHECK_EQ_INT(dlen, BODY_LEN);
    CHECK(data && dlen == BODY_LEN && memcmp(data, want, BODY_LEN) == 0);
    free(want);
    fake_stop(f);
}

static void test_urls(void)
{
    struct fake *f = fake_start(200, NULL, NULL, 0);
    const char *paths[][2] = {
        {"/pyro/", "/pyro/ingest?"},
        {"/pyro/ingest", "/pyro/ingest?"},
        {"/", "/ingest?"},
    };
    for (int i = 0; i < 3; i++) {
        char url[96];
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, paths[i][0]);
        struct pyroscope *p =
            sender(url, i == 0 ? "my app{x},y=1" : NULL, i == 1 ? "box 1,a=b{}" : NULL);
        CHECK(p != NULL);
        if (!p)
            continue;
        pyroscope_submit(p, body(), BODY_LEN, T0, T1);
        pyroscope_shutdown(p, 2000);
        CHECK(wait_requests(f, i + 1, 1));
        CHECK(strncmp(f->r[i].target, paths[i][1], strlen(paths[i][1])) == 0);
        char v[256];
        param(f->r[i].target, "name", v, sizeof v);
        /* Pyroscope's name parser has no escapes: what it would misread
         * becomes _; no service at all is "shoal"; the process's id is the
         * service_instance_id label */
        CHECK_STR(v, i == 0   ? "my_app_x__y_1{service_name=my_app_x__y_1}"
                     : i == 1 ? "shoal{service_name=shoal,service_instance_id=box_1_a_b__}"
                              : "shoal{service_name=shoal}");
    }
    fake_stop(f);

    const char *bad[] = {NULL,
                         "",
                         "localhost:4040",
                         "ftp://127.0.0.1/",
                         "http://",
                         "http://127.0.0.1:4040/?tenant=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pyroscope_config c = {.url = bad[i], .service = "s"};
        char err[256] = "";
        struct pyroscope *p = pyroscope_new(&c, M->reg, err, sizeof err);
        CHECK(p == NULL);
        CHECK(strstr(err, "--pyroscope") != NULL);
        pyroscope_shutdown(p, 0);
    }
    pyroscope_submit(NULL, body(), BODY_LEN, T0, T1); /* frees, no crash */
}

static void test_retry(void)
{
    /* 503, 503, 200: sent on the third try, after backoff */
    int st1[] = {503, 503};
    struct fake *f = fake_start(200, st1, NULL, 2);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    struct counts c0 = snap();
    capture_begin();
    struct pyroscope *p = sender(url, "svc", NULL);
    pyroscope_submit(p, body(), BODY_LEN, T0, T1);
    CHECK(wait_requests(f, 3, 10));
    pyroscope_shutdown(p, 2000);
    char *text = capture_end();
    struct counts d = since(c0);
    CHECK_EQ_INT(d.exported, 1);
    CHECK_EQ_INT(d.failed + d.dropped, 0);
    CHECK_EQ_INT(fake_count(f), 3);
    CHECK(f->r[1].at - f->r[0].at >= 0.4);
    CHECK(f->r[2].at - f->r[1].at >= 0.9);
    CHECK_EQ_INT(count_of(text, "pyroscope push failed"), 1);
    CHECK(strstr(text, "503") != NULL);
    free(text);
    fake_stop(f);

    /* 429 with Retry-After: 1, then 200 */
    int st2[] = {429}, ra2[] = {1};
    f = fake_start(200, st2, ra2, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    c0 = snap();
    p = sender(url, "svc", NULL);
    pyroscope_submit(p, body(), BODY_LEN, T0, T1);
    CHECK(wait_requests(f, 2, 5));
    pyroscope_shutdown(p, 2000);
    d = since(c0);
    CHECK_EQ_INT(d.exported, 1);
    CHECK(f->r[1].at - f->r[0].at >= 0.9);
    fake_stop(f);

    /* 400: refused, not retried, counted failed */
    int st3[] = {400};
    f = fake_start(200, st3, NULL, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    c0 = snap();
    capture_begin();
    p = sender(url, "svc", NULL);
    pyroscope_submit(p, body(), BODY_LEN, T0, T1);
    CHECK(wait_requests(f, 1, 5));
    sleep_ms(700); /* a retry would have come by now */
    /* the next window goes out as usual */
    pyroscope_submit(p, body(), BODY_LEN, T0, T1);
    CHECK(wait_requests(f, 2, 5));
    pyroscope_shutdown(p, 2000);
    text = capture_end();
    d = since(c0);
    CHECK_EQ_INT(fake_count(f), 2);
    CHECK_EQ_INT(d.failed, 1);
    CHECK_EQ_INT(d.exported, 1);
    CHECK_EQ_INT(count_of(text, "pyroscope push failed"), 1);
    CHECK(strstr(text, "status=400") != NULL);
    free(text);
    fake_stop(f);
}

/* A backend that takes the connection and never answers: submit still
 * returns at once, the queue holds 4 windows behind the one in flight and
 * drops the rest, and shutdown ends at its deadline with all counted. */
static void test_hang_and_bound(void)
{
    int port;
    int fd = listen_any(&port); /* never accepted: the kernel holds the connection */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    struct counts c0 = snap();
    capture_begin();
    struct pyroscope *p = sender(url, "svc", NULL);
    pyroscope_submit(p, body(), BODY_LEN, T0, T1);
    sleep_ms(200); /* the sender took it: it is in flight */
    double t0 = mono();
    for (int i = 0; i < 6; i++)
        pyroscope_submit(p, body(), BODY_LEN, T0, T1);
    CHECK(mono() - t0 < 0.2); /* microseconds: no I/O on this path */
    struct counts d = since(c0);
    CHECK_EQ_INT(d.dropped, 2);
    t0 = mono();
    pyroscope_shutdown(p, 400);
    double took = mono() - t0;
    CHECK(took >= 0.35);
    CHECK(took < 0.9);
    char *text = capture_end();
    d = since(c0);
    CHECK_EQ_INT(d.exported, 0);
    CHECK_EQ_INT(d.failed, 1);  /* the one cut at the deadline */
    CHECK_EQ_INT(d.dropped, 6); /* 2 when full, 4 never sent */
    CHECK_EQ_INT(count_of(text, "pyroscope profiles dropped"), 1);
    free(text);
    close(fd);
}

/* Nothing listens: shutdown does not wait out the backoff, the password
 * in the URL is never shown. */
static void test_down(void)
{
    struct counts c0 = snap();
    capture_begin();
    struct pyroscope *p = sender("http://user:hunter2@127.0.0.1:1", "svc", NULL);
    for (int i = 0; i < 3; i++)
        pyroscope_submit(p, body(), BODY_LEN, T0, T1);
    sleep_ms(200);
    double t0 = mono();
    pyroscope_shutdown(p, 5000);
    CHECK(mono() - t0 < 1.0);
    char *text = capture_end();
    struct counts d = since(c0);
    CHECK_EQ_INT(d.exported, 0);
    CHECK_EQ_INT(d.dropped + d.failed, 3);
    CHECK_EQ_INT(count_of(text, "pyroscope push failed"), 1);
    CHECK(strstr(text, "user:REDACTED@127.0.0.1:1") != NULL);
    CHECK(strstr(text, "hunter2") == NULL);
    free(text);
}

/* What is queued at shutdown is still sent. */
static void test_flush(void)
{
    struct fake *f = fake_start(200, NULL, NULL, 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    struct counts c0 = snap();
    struct pyroscope *p = sender(url, "svc", NULL);
    for (int i = 0; i < 4; i++)
        pyroscope_submit(p, body(), BODY_LEN, T0 + (uint64_t)i * 10000000000ull,
                         T1 + (uint64_t)i * 10000000000ull);
    pyroscope_shutdown(p, 5000);
    struct counts d = since(c0);
    CHECK_EQ_INT(d.exported, 4);
    CHECK_EQ_INT(d.dropped + d.failed, 0);
    CHECK_EQ_INT(fake_count(f), 4);
    char v[32];
    param(f->r[3].target, "from", v, sizeof v);
    CHECK_STR(v, "1700000030"); /* in order */
    fake_stop(f);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    M = tel_registry_new(2, 100);
    CHECK(M != NULL);
    if (!M)
        return check_done();
    test_request();
    test_urls();
    test_retry();
    test_hang_and_bound();
    test_down();
    test_flush();
    tel_registry_free(M);
    curl_global_cleanup();
    return check_done();
}
