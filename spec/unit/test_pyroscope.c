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
#include "metrics.h"
#include "pyroscope.h"
#include "runmetrics.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ a fake Pyroscope
 *
 * One thread, one request per connection (it answers Connection: close).
 * The i-th request gets status[i] (200 past the script), with Retry-After
 * when retry_after[i] is set; each request's target, Content-Type, body
 * and arrival time are kept. */

#define MAXREQ 32

struct req {
    char target[512];
    char ctype[160];
    uint8_t *body;
    size_t len;
    double at;
};

struct fake {
    int fd, port;
    pthread_t thread;
    int status[8], retry_after[8], nscript;
    pthread_mutex_t lock;
    int n; /* under lock, as is r */
    struct req r[MAXREQ];
};

static void header_value(const char *head, const char *name, char *out, size_t outlen)
{
    out[0] = 0;
    size_t n = strlen(name);
    for (const char *p = head; (p = strstr(p, "\r\n")); p += 2) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ')
                v++;
            snprintf(out, outlen, "%.*s", (int)strcspn(v, "\r\n"), v);
            return;
        }
    }
}

static void serve_one(struct fake *f, int c)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap), *end = NULL;
    while (!end) {
        if (len + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(c, buf + len, cap - len - 1);
        if (r <= 0)
            goto out;
        len += (size_t)r;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head = (size_t)(end - buf) + 4;
    char cl[32];
    end[2] = 0; /* the headers end with their last CRLF, for header_value */
    header_value(buf, "Content-Length", cl, sizeof cl);
    size_t want = head + (size_t)atol(cl);
    while (len < want) {
        if (want + 1 > cap)
            buf = realloc(buf, cap = want + 1);
        ssize_t r = read(c, buf + len, want - len);
        if (r <= 0)
            goto out;
        len += (size_t)r;
    }
    pthread_mutex_lock(&f->lock);
    int i = f->n < MAXREQ ? f->n : MAXREQ - 1;
    f->n++;
    struct req *q = &f->r[i];
    sscanf(buf, "POST %511s", q->target);
    header_value(buf, "Content-Type", q->ctype, sizeof q->ctype);
    free(q->body);
    q->len = want - head;
    q->body = malloc(q->len + 1);
    memcpy(q->body, buf + head, q->len);
    q->at = mono();
    int status = i < f->nscript ? f->status[i] : 200;
    int ra = i < f->nscript ? f->retry_after[i] : 0;
    pthread_mutex_unlock(&f->lock);
    char reply[256];
    const char *text = status == 200 ? "" : "not now\n";
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n", status,
                     strlen(text));
    if (ra)
        n += snprintf(reply + n, sizeof reply - (size_t)n, "Retry-After: %d\r\n", ra);
    n += snprintf(reply + n, sizeof reply - (size_t)n, "\r\n%s", text);
    ssize_t w = write(c, reply, (size_t)n);
    (void)w;
out:
    free(buf);
    close(c);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    for (;;) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            break; /* shut down */
        serve_one(f, c);
    }
    return NULL;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    listen(fd, 64);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return fd;
}

static struct fake *fake_start(const int *status, const int *retry_after, int n)
{
    struct fake *f = calloc(1, sizeof *f);
    f->fd = listen_any(&f->port);
    for (int i = 0; i < n; i++) {
        f->status[i] = status[i];
        f->retry_after[i] = retry_after ? retry_after[i] : 0;
    }
    f->nscript = n;
    pthread_mutex_init(&f->lock, NULL);
    pthread_create(&f->thread, NULL, fake_main, f);
    return f;
}

static int fake_count(struct fake *f)
{
    pthread_mutex_lock(&f->lock);
    int n = f->n;
    pthread_mutex_unlock(&f->lock);
    return n;
}

static int wait_requests(struct fake *f, int n, double secs)
{
    double until = mono() + secs;
    while (fake_count(f) < n && mono() < until)
        sleep_ms(5);
    return fake_count(f) >= n;
}

static void fake_stop(struct fake *f)
{
    shutdown(f->fd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->fd);
    for (int i = 0; i < MAXREQ; i++)
        free(f->r[i].body);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

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
static int first_part(const struct req *r, char *headers, size_t hlen, const uint8_t **data,
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

/* ------------------------------------------------------------ logs and counts */

static FILE *cap_file;
static int cap_saved = -1;

/* With no logger, records go to stderr: capture_end gives back (malloc'd)
 * what was written since capture_begin, and echoes it. */
static void capture_begin(void)
{
    fflush(stderr);
    cap_file = tmpfile();
    cap_saved = dup(2);
    dup2(fileno(cap_file), 2);
}

static char *capture_end(void)
{
    fflush(stderr);
    dup2(cap_saved, 2);
    close(cap_saved);
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    ssize_t r;
    while (len < cap - 1 &&
           (r = pread(fileno(cap_file), text + len, cap - 1 - len, (off_t)len)) > 0)
        len += (size_t)r;
    text[len] = 0;
    fclose(cap_file);
    ssize_t w = write(2, text, len);
    (void)w;
    return text;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static struct runmetrics *M;

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

static struct pyroscope *sender(const char *url, const char *service)
{
    struct pyroscope_config c = {.url = url, .service = service, .timeout_ms = 2000};
    char err[256] = "";
    struct pyroscope *p = pyroscope_new(&c, M, err, sizeof err);
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
    struct fake *f = fake_start(NULL, NULL, 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    struct counts c0 = snap();
    struct pyroscope *p = sender(url, "shoal-test");
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

    struct req *r = &f->r[0];
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
    struct fake *f = fake_start(NULL, NULL, 0);
    const char *paths[][2] = {
        {"/pyro/", "/pyro/ingest?"},
        {"/pyro/ingest", "/pyro/ingest?"},
        {"/", "/ingest?"},
    };
    for (int i = 0; i < 3; i++) {
        char url[96];
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, paths[i][0]);
        struct pyroscope *p = sender(url, i == 0 ? "my app{x},y=1" : NULL);
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
         * becomes _; no service at all is "shoal" */
        CHECK_STR(v, i == 0 ? "my_app_x__y_1{service_name=my_app_x__y_1}"
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
        struct pyroscope *p = pyroscope_new(&c, M, err, sizeof err);
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
    struct fake *f = fake_start(st1, NULL, 2);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    struct counts c0 = snap();
    capture_begin();
    struct pyroscope *p = sender(url, "svc");
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
    f = fake_start(st2, ra2, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    c0 = snap();
    p = sender(url, "svc");
    pyroscope_submit(p, body(), BODY_LEN, T0, T1);
    CHECK(wait_requests(f, 2, 5));
    pyroscope_shutdown(p, 2000);
    d = since(c0);
    CHECK_EQ_INT(d.exported, 1);
    CHECK(f->r[1].at - f->r[0].at >= 0.9);
    fake_stop(f);

    /* 400: refused, not retried, counted failed */
    int st3[] = {400};
    f = fake_start(st3, NULL, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    c0 = snap();
    capture_begin();
    p = sender(url, "svc");
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
    struct pyroscope *p = sender(url, "svc");
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
    struct pyroscope *p = sender("http://user:hunter2@127.0.0.1:1", "svc");
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
    struct fake *f = fake_start(NULL, NULL, 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    struct counts c0 = snap();
    struct pyroscope *p = sender(url, "svc");
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
    char err[256];
    curl_global_init(CURL_GLOBAL_ALL);
    M = runmetrics_new(2, 100, 1, NULL, 0, err, sizeof err);
    CHECK(M != NULL);
    if (!M)
        return check_done();
    test_request();
    test_urls();
    test_retry();
    test_hang_and_bound();
    test_down();
    test_flush();
    runmetrics_free(M);
    curl_global_cleanup();
    return check_done();
}
