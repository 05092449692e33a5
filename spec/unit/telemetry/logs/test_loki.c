/* test_loki.c - the Loki sink as Loki and the writer thread see it: the
 * exact push body (streams per level, escaping, structured metadata), the
 * request (path, gzip, content type), batches sealed by size and by time,
 * 429/503 retried (Retry-After honoured) and 400 not, every line accounted
 * for (exported, dropped or failed), a writer that never waits on a Loki
 * that is down, and a shutdown that keeps its deadline. */
#include "check.h"
#include "fake_http.h"
#include "telemetry/logs/logger.h"
#include "telemetry/logs/loki.h"
#include "telemetry/metrics/metrics.h"
#include "tel_registry.h"
#include "base/strbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static struct log_record rec(enum log_level lv, uint64_t ns, int ids)
{
    struct log_record r;
    memset(&r, 0, sizeof r);
    r.level = lv;
    r.time_ns = ns;
    r.has_ids = ids;
    for (int i = 0; i < 16; i++)
        r.trace_id[i] = (uint8_t)i;
    for (int i = 0; i < 8; i++)
        r.span_id[i] = (uint8_t)(0xa0 + i);
    return r;
}

/* ------------------------------------------------------------ what Loki got */

static char *gunzip(const unsigned char *in, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return NULL;
    size_t cap = len * 8 + 1024, o = 0;
    char *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    int rc;
    do {
        if (cap - o < 1024) {
            cap *= 2;
            out = realloc(out, cap);
        }
        z.next_out = (Bytef *)out + o;
        z.avail_out = (uInt)(cap - o - 1);
        rc = inflate(&z, Z_NO_FLUSH);
        o = z.total_out;
    } while (rc == Z_OK);
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    out[o] = 0;
    return out;
}

/* The i-th request's body, gunzipped (malloc'd), or NULL if it is not
 * gzip. */
static char *body_of(struct fake *f, int i)
{
    pthread_mutex_lock(&f->lock);
    char *text = gunzip(f->r[i].body, f->r[i].len);
    pthread_mutex_unlock(&f->lock);
    return text;
}

/* ------------------------------------------------------------ counts */

static struct tel_registry *M;

static double count(struct metric_family *f)
{
    const char *sig[1] = {"logs_loki"};
    return metric_value(metrics_series(f, sig, NULL, 1));
}

struct counts {
    double exported, dropped, failed;
};

static struct counts snap(void)
{
    struct counts c = {count(M->tel_exported), count(M->tel_dropped), count(M->tel_failed)};
    return c;
}

static struct counts since(struct counts a)
{
    struct counts b = snap();
    struct counts d = {b.exported - a.exported, b.dropped - a.dropped, b.failed - a.failed};
    return d;
}

static struct loki *sink(const char *url, long wait_ms, size_t batch, size_t pending)
{
    struct loki_config c = {.url = url,
                            .service = "svc",
                            .instance = "box-42",
                            .batch_wait_ms = wait_ms,
                            .batch_bytes = batch,
                            .max_pending = pending,
                            .timeout_ms = 2000};
    char err[256] = "";
    struct loki *l = loki_new(&c, M->reg, err, sizeof err);
    if (!l)
        fprintf(stderr, "loki_new(%s): %s\n", url, err);
    return l;
}

static void add_line(struct loki *l, enum log_level lv, int i)
{
    char line[128];
    int n = snprintf(line, sizeof line, "level=INFO msg=\"job done\" job.id=%d pad=%040d", i, 0);
    struct log_record r = rec(lv, 1700000000000000000ull + (uint64_t)i, i % 2);
    loki_add(l, &r, line, (size_t)n);
}

/* ------------------------------------------------------------ the tests */

static void test_body(void)
{
    struct loki_batch *b = loki_batch_new();
    struct log_record r1 = rec(LOG_INFO, 1700000000123456789ull, 1);
    struct log_record r2 = rec(LOG_WARN, 5, 0);
    struct log_record r3 = rec(LOG_INFO, 1700000000123456790ull, 0);
    struct log_record r4 = rec(LOG_DEBUG, 0, 0);
    struct log_record r5 = rec(LOG_ERROR, 7, 1);
    const char l1[] = "msg=\"say \\\"hi\\\"\"\tend\n\xff \xc3\xa9";
    CHECK(loki_batch_add(b, &r1, l1, sizeof l1 - 1) > 0);
    const char l2[] = "warn \"q\" \\ back"; /* printable ASCII: the quick path */
    CHECK(loki_batch_add(b, &r2, l2, sizeof l2 - 1) > 0);
    CHECK(loki_batch_add(b, &r3, "", 0) > 0); /* an empty line is still an entry */
    CHECK(loki_batch_add(b, &r4, "d", 1) > 0);
    CHECK_EQ_INT(loki_batch_lines(b), 4);
    struct strbuf out = {0};
    CHECK_EQ_INT(loki_batch_body(b, "svc \"x\"", NULL, &out), 0);
    const char *want =
        "{\"streams\":["
        "{\"stream\":{\"service_name\":\"svc \\\"x\\\"\",\"level\":\"debug\"},"
        "\"values\":[[\"0\",\"d\"]]},"
        "{\"stream\":{\"service_name\":\"svc \\\"x\\\"\",\"level\":\"info\"},\"values\":["
        "[\"1700000000123456789\",\"msg=\\\"say \\\\\\\"hi\\\\\\\"\\\"\\tend\\n\\ufffd \xc3\xa9\","
        "{\"trace_id\":\"000102030405060708090a0b0c0d0e0f\",\"span_id\":\"a0a1a2a3a4a5a6a7\"}],"
        "[\"1700000000123456790\",\"\"]]},"
        "{\"stream\":{\"service_name\":\"svc \\\"x\\\"\",\"level\":\"warn\"},"
        "\"values\":[[\"5\",\"warn \\\"q\\\" \\\\ back\"]]}"
        "]}";
    CHECK_STR(out.p, want);
    /* bytes counts what the entries add to the body: all of it but the
     * wrapping of the three streams */
    size_t wrap = strlen("{\"streams\":[]}") + 2 /* commas between streams */;
    const char *lvs[] = {"debug", "info", "warn"};
    for (int i = 0; i < 3; i++)
        wrap += strlen("{\"stream\":{\"service_name\":\"svc \\\"x\\\"\",\"level\":\"") +
                strlen(lvs[i]) + strlen("\"},\"values\":[]}");
    CHECK_EQ_INT(loki_batch_bytes(b) + wrap, out.len);

    /* cleared, it starts again; error is the last stream; the process's
     * id is a label of every stream, escaped as the service is */
    loki_batch_clear(b);
    CHECK_EQ_INT(loki_batch_lines(b), 0);
    out.len = 0;
    loki_batch_add(b, &r5, "e", 1);
    CHECK_EQ_INT(loki_batch_body(b, "s", "box \"1\"", &out), 0);
    CHECK_STR(out.p, "{\"streams\":[{\"stream\":{\"service_name\":\"s\","
                     "\"service_instance_id\":\"box \\\"1\\\"\",\"level\":\"error\"},"
                     "\"values\":[[\"7\",\"e\",{\"trace_id\":\"000102030405060708090a0b0c0d0e0f\","
                     "\"span_id\":\"a0a1a2a3a4a5a6a7\"}]]}]}");

    /* a line past Loki's limit is cut, and stays one valid string */
    loki_batch_clear(b);
    size_t big = 400000;
    char *huge = malloc(big);
    memset(huge, '"', big); /* each escapes to two bytes */
    size_t n = loki_batch_add(b, &r3, huge, big);
    out.len = 0;
    loki_batch_body(b, "s", NULL, &out);
    const char *v = strstr(out.p, "\"values\":[[\"1700000000123456790\",\"");
    CHECK(v != NULL);
    const char *line = v ? strchr(v + 11, ',') + 1 : NULL;
    size_t jlen = line ? strlen(line) - strlen("]]}]}") : 0;
    CHECK(jlen <= LOKI_MAX_LINE);
    CHECK(jlen > LOKI_MAX_LINE - 16);
    CHECK(line && strncmp(line + jlen - 4, "...\"", 4) == 0);
    CHECK(line && line[jlen - 5] == '"' && line[jlen - 6] == '\\');
    CHECK(n < LOKI_MAX_LINE + 64);
    free(huge);
    free(out.p);
    loki_batch_free(b);
    loki_batch_free(NULL);
}

static void test_urls(void)
{
    const char *bad[] = {"ftp://h/x", "localhost:3100",    "http://",
                         "",          "http://h:3100/a b", "/loki/api/v1/push"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct loki_config c = {.url = bad[i], .service = "s"};
        char err[256] = "";
        struct loki *l = loki_new(&c, M->reg, err, sizeof err);
        CHECK(l == NULL);
        CHECK(strstr(err, "--loki") != NULL);
        loki_shutdown(l, 0);
    }
    struct loki_config c = {.url = NULL, .service = "s"};
    char err[256] = "";
    CHECK(loki_new(&c, M->reg, err, sizeof err) == NULL);

    /* no path, "/" and a path of one's own; HTTPS accepted as such */
    struct fake *f = fake_start(204, NULL, NULL, 0);
    char url[3][96];
    snprintf(url[0], sizeof url[0], "http://127.0.0.1:%d", f->port);
    snprintf(url[1], sizeof url[1], "HTTP://127.0.0.1:%d/", f->port);
    snprintf(url[2], sizeof url[2], "http://127.0.0.1:%d/tenant/a/push?x=1", f->port);
    for (int i = 0; i < 3; i++) {
        struct loki *l = sink(url[i], 10, 0, 0);
        CHECK(l != NULL);
        add_line(l, LOG_INFO, i);
        loki_shutdown(l, 2000);
    }
    CHECK_EQ_INT(fake_count(f), 3);
    CHECK_STR(f->r[0].target, "/loki/api/v1/push");
    CHECK_STR(f->r[1].target, "/loki/api/v1/push");
    CHECK_STR(f->r[2].target, "/tenant/a/push?x=1");
    CHECK_STR(f->r[0].ctype, "application/json");
    CHECK_STR(f->r[0].cenc, "gzip");
    fake_stop(f);
    struct loki_config h = {.url = "https://loki.example:443", .service = "s"};
    struct loki *l = loki_new(&h, NULL, err, sizeof err);
    CHECK(l != NULL); /* m may be NULL; nothing added, nothing sent */
    loki_shutdown(l, 100);
}

/* What arrives is what loki_batch_body makes of the same records, and the
 * open batch goes out after batch_wait_ms without a shutdown. */
static void test_roundtrip_and_wait(void)
{
    struct fake *f = fake_start(204, NULL, NULL, 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    struct counts c0 = snap();
    struct loki *l = sink(url, 200, 0, 0);
    double t0 = mono();
    for (int i = 0; i < 5; i++)
        add_line(l, i == 2 ? LOG_ERROR : LOG_INFO, i);
    CHECK(wait_requests(f, 1, 3));
    double took = mono() - t0;
    CHECK(took >= 0.19);
    CHECK(took < 1.5);
    struct loki_batch *b = loki_batch_new();
    for (int i = 0; i < 5; i++) {
        char line[128];
        int n =
            snprintf(line, sizeof line, "level=INFO msg=\"job done\" job.id=%d pad=%040d", i, 0);
        struct log_record r = rec(i == 2 ? LOG_ERROR : LOG_INFO, 1700000000000000000ull + i, i % 2);
        loki_batch_add(b, &r, line, (size_t)n);
    }
    struct strbuf want = {0};
    loki_batch_body(b, "svc", "box-42", &want);
    char *got = body_of(f, 0);
    CHECK_STR(got, want.p);
    free(got);
    free(want.p);
    loki_batch_free(b);
    double until = mono() + 2; /* counted once the answer is read */
    while (since(c0).exported < 5 && mono() < until)
        sleep_ms(5);
    CHECK_EQ_INT(since(c0).exported, 5);
    loki_shutdown(l, 1000);
    CHECK_EQ_INT(fake_count(f), 1); /* nothing left to send */
    struct counts d = since(c0);
    CHECK_EQ_INT(d.exported, 5);
    CHECK_EQ_INT(d.dropped + d.failed, 0);
    fake_stop(f);
}

/* A batch is sealed when it reaches batch_bytes, long before batch_wait. */
static void test_seal_by_size(void)
{
    struct fake *f = fake_start(204, NULL, NULL, 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    struct counts c0 = snap();
    struct loki *l = sink(url, 60000, 2000, 0);
    for (int i = 0; i < 100; i++)
        add_line(l, LOG_INFO, i);
    /* 110 to 190 bytes an entry: six batches or more go out now, not in a
     * minute */
    double until = mono() + 5;
    while (since(c0).exported < 80 && mono() < until)
        sleep_ms(5);
    CHECK(since(c0).exported >= 80);
    CHECK(fake_count(f) >= 6);
    int n = fake_count(f);
    for (int i = 0; i < n && i < FAKE_MAXREQ; i++) {
        char *text = body_of(f, i);
        CHECK(text && strlen(text) < 2000 + 300);
        free(text);
    }
    loki_shutdown(l, 2000);
    struct counts d = since(c0);
    CHECK_EQ_INT(d.exported, 100);
    CHECK_EQ_INT(d.dropped + d.failed, 0);
    /* every line once, in order within its stream */
    int seen = 0, ordered = 1;
    long last = -1;
    for (int i = 0; i < fake_count(f); i++) {
        char *text = body_of(f, i);
        for (const char *p = text; p && (p = strstr(p, "job.id=")); p++) {
            long id = atol(p + 7);
            ordered &= id == last + 1;
            last = id;
            seen++;
        }
        free(text);
    }
    CHECK_EQ_INT(seen, 100);
    CHECK(ordered);
    fake_stop(f);
}

/* 503 then 429 (Retry-After: 1) then accepted: nothing lost, the wait
 * honoured; a 400 is not retried and its lines count as failed. */
static void test_retry(void)
{
    int status[] = {503, 429};
    int ra[] = {0, 1};
    struct fake *f = fake_start(204, status, ra, 2);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    struct counts c0 = snap();
    struct loki *l = sink(url, 50, 0, 0);
    for (int i = 0; i < 10; i++)
        add_line(l, LOG_INFO, i);
    CHECK(wait_requests(f, 3, 6));
    loki_shutdown(l, 2000);
    struct counts d = since(c0);
    CHECK_EQ_INT(d.exported, 10);
    CHECK_EQ_INT(d.dropped + d.failed, 0);
    CHECK_EQ_INT(fake_count(f), 3);
    CHECK(f->r[1].at - f->r[0].at >= 0.45); /* the backoff */
    CHECK(f->r[2].at - f->r[1].at >= 0.95); /* Retry-After: 1 */
    char *first = body_of(f, 0), *third = body_of(f, 2);
    CHECK(first && third && strcmp(first, third) == 0);
    free(first);
    free(third);
    fake_stop(f);

    int s400[] = {400};
    f = fake_start(204, s400, NULL, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    c0 = snap();
    capture_begin();
    l = sink(url, 50, 0, 0);
    for (int i = 0; i < 7; i++)
        add_line(l, LOG_INFO, i);
    CHECK(wait_requests(f, 1, 3));
    sleep_ms(300);
    for (int i = 0; i < 3; i++) /* the next batch goes through */
        add_line(l, LOG_INFO, i);
    loki_shutdown(l, 2000);
    d = since(c0);
    CHECK_EQ_INT(d.failed, 7);
    CHECK_EQ_INT(d.exported, 3);
    CHECK_EQ_INT(d.dropped, 0);
    CHECK_EQ_INT(fake_count(f), 2);
    /* said once, with the status and Loki's reason */
    char *text = capture_end();
    CHECK_EQ_INT(count_of(text, "loki push failed"), 1);
    CHECK(strstr(text, "HTTP 400: no thanks") != NULL);
    free(text);
    fake_stop(f);
}

/* Loki down: the writer never waits, memory stays within max_pending, and
 * every line is counted; shutdown does not wait for a Loki that refuses;
 * the warning keeps the URL's password to itself. */
static void test_down(void)
{
    struct counts c0 = snap();
    capture_begin();
    struct loki *l = sink("http://user:hunter2@127.0.0.1:1", 20, 1000, 8000);
    int n = 20000;
    double t0 = mono();
    for (int i = 0; i < n; i++)
        add_line(l, LOG_INFO, i);
    double took = mono() - t0;
    CHECK(took < 1.0); /* ~10 ms: no I/O on this path */
    struct counts d = since(c0);
    CHECK(d.dropped >= n - 8000 / 100);
    t0 = mono();
    loki_shutdown(l, 3000);
    CHECK(mono() - t0 < 1.0);
    d = since(c0);
    CHECK_EQ_INT(d.exported, 0);
    CHECK_EQ_INT(d.dropped + d.failed, n);
    /* said once each, without the URL's password */
    char *text = capture_end();
    CHECK_EQ_INT(count_of(text, "loki push failed"), 1);
    CHECK_EQ_INT(count_of(text, "loki lines dropped"), 1);
    CHECK(strstr(text, "user:REDACTED@127.0.0.1:1") != NULL);
    CHECK(strstr(text, "hunter2") == NULL);
    free(text);
}

/* A Loki that takes the request and never answers: shutdown still ends at
 * its deadline, the request cut, every line counted. */
static void test_hang(void)
{
    int port;
    int fd = listen_any(&port); /* never accepted: the kernel holds the connection */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    struct counts c0 = snap();
    struct loki *l = sink(url, 20, 0, 0);
    for (int i = 0; i < 50; i++)
        add_line(l, LOG_WARN, i);
    sleep_ms(100); /* the request is in flight: adding does not wait for it */
    double t0 = mono();
    for (int i = 50; i < 100; i++)
        add_line(l, LOG_WARN, i);
    CHECK(mono() - t0 < 0.1);
    t0 = mono();
    loki_shutdown(l, 400);
    double took = mono() - t0;
    CHECK(took >= 0.35);
    CHECK(took < 0.9);
    struct counts d = since(c0);
    CHECK_EQ_INT(d.exported, 0);
    CHECK_EQ_INT(d.dropped + d.failed, 100);
    close(fd);
}

int main(void)
{
    M = tel_registry_new(2, 100);
    CHECK(M != NULL);
    if (!M)
        return check_done();
    test_body();
    test_urls();
    test_roundtrip_and_wait();
    test_seal_by_size();
    test_retry();
    test_down();
    test_hang();

    tel_registry_free(M);
    return check_done();
}
