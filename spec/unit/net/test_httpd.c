/* test_httpd.c - the engine's HTTP server as a client sees it: real sockets
 * on 127.0.0.1, real requests through libcurl.
 *
 * Covers the --listen forms and their errors, /healthz, 404/405/500, prefix
 * routing, keep-alive, delayed responses that hold no thread (hundreds at
 * once finish in about one delay), and stopping with responses still
 * parked. The demo site it serves is app/test_demo_site.c's. */
#include "check.h"
#include "http_get.h"
#include "net/httpd.h"

#include <curl/curl.h>
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SLOW_MS = 200, CONCURRENT = 200 };

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int echo(void *arg, const struct httpd_request *req, struct httpd_response *resp)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s|%s|%s|%s|%s", (const char *)arg, req->method,
                     req->path, req->query, req->accept);
    resp->body = strdup(buf);
    if (!resp->body)
        return -1;
    resp->len = (size_t)n;
    resp->status = 201;
    resp->content_type = "application/x-echo";
    return 0;
}

static int failing(void *arg, const struct httpd_request *req, struct httpd_response *resp)
{
    resp->body = strdup("half-built");
    return -1;
}

static int slow(void *arg, const struct httpd_request *req, struct httpd_response *resp)
{
    resp->body = strdup("late\n");
    if (!resp->body)
        return -1;
    resp->len = 5;
    resp->delay_ms = *(unsigned *)arg;
    return 0;
}

static void test_parse(void)
{
    char host[64], err[256];
    int port;

    CHECK_EQ_INT(httpd_parse_listen("127.0.0.1:8080", host, sizeof host, &port, err, sizeof err),
                 0);
    CHECK_STR(host, "127.0.0.1");
    CHECK_EQ_INT(port, 8080);
    CHECK_EQ_INT(httpd_parse_listen("[::1]:0", host, sizeof host, &port, err, sizeof err), 0);
    CHECK_STR(host, "::1");
    CHECK_EQ_INT(port, 0);
    CHECK_EQ_INT(httpd_parse_listen("localhost:65535", host, sizeof host, &port, err, sizeof err),
                 0);
    CHECK_STR(host, "localhost");
    CHECK_EQ_INT(port, 65535);
    CHECK_EQ_INT(httpd_parse_listen("off", host, sizeof host, &port, err, sizeof err), 0);
    CHECK_EQ_INT(port, -1);
    CHECK_STR(host, "");

    static const struct {
        const char *in, *says;
    } bad[] = {
        {"", "empty"},
        {"127.0.0.1", "missing :PORT"},
        {"8080", "missing host"},
        {":8080", "missing host"},
        {"127.0.0.1:", "0 to 65535"},
        {"127.0.0.1:65536", "0 to 65535"},
        {"127.0.0.1:-1", "0 to 65535"},
        {"127.0.0.1:80x", "0 to 65535"},
        {"::1:8080", "brackets"},
        {"[::1]", "missing :PORT"},
        {"[::1:8080", "missing ']'"},
        {"[127.0.0.1]:80", "not an IPv6"},
        {"bad host:80", "character"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = httpd_parse_listen(bad[i].in, host, sizeof host, &port, err, sizeof err);
        CHECK_EQ_INT(rc, -1);
        CHECK_EQ_INT(port, -1);
        CHECK(strstr(err, "--listen") != NULL);
        if (!strstr(err, bad[i].says)) {
            fprintf(stderr, "for \"%s\" expected \"%s\" in: %s\n", bad[i].in, bad[i].says, err);
            CHECK(0);
        }
    }

    /* Tiny buffers truncate, never overflow. */
    char small[8];
    CHECK_EQ_INT(httpd_parse_listen("nope", host, sizeof host, &port, small, sizeof small), -1);
    CHECK(strlen(small) < sizeof small);
    CHECK_EQ_INT(httpd_parse_listen("a-long-host-name:1", small, sizeof small, &port, err,
                                    sizeof err),
                 -1);
}

static void test_start_errors(void)
{
    httpd *h = (httpd *)1, *h2 = (httpd *)1;
    char err[256];
    int fds = open_fds();

    CHECK_EQ_INT(httpd_start("off", &h, err, sizeof err), 0);
    CHECK(h == NULL);
    httpd_stop(NULL);

    CHECK_EQ_INT(httpd_start("127.0.0.1:0", &h, err, sizeof err), 0);
    CHECK(h != NULL);
    if (!h)
        return;
    CHECK(httpd_port(h) > 0);
    CHECK_STR(httpd_host(h), "127.0.0.1");

    char taken[64];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", httpd_port(h));
    CHECK_EQ_INT(httpd_start(taken, &h2, err, sizeof err), -1);
    CHECK(h2 == NULL);
    CHECK(strstr(err, "already in use") != NULL);
    CHECK(strstr(err, "--listen") != NULL);
    CHECK(strstr(err, taken) != NULL);
    CHECK(strstr(err, "127.0.0.1:0") != NULL);
    printf("port in use: %s\n", err);
    httpd_stop(h);
    /* Neither the failed start nor start/stop leaves a socket behind. */
    CHECK_EQ_INT(open_fds(), fds);

    /* 192.0.2.0/24 is TEST-NET-1: never an address of this machine. */
    CHECK_EQ_INT(httpd_start("192.0.2.1:0", &h2, err, sizeof err), -1);
    CHECK(strstr(err, "not available") != NULL);
    CHECK(strstr(err, "--listen 192.0.2.1:0") != NULL);
    printf("foreign address: %s\n", err);

    CHECK_EQ_INT(httpd_start("127.0.0.1:http", &h2, err, sizeof err), -1);
    CHECK(strstr(err, "--listen") != NULL);
    printf("bad port: %s\n", err);

    /* IPv6 loopback where the machine has it; the host stays URL-ready. */
    if (httpd_start("[::1]:0", &h2, err, sizeof err) == 0) {
        CHECK_STR(httpd_host(h2), "[::1]");
        CURL *e = curl_easy_init();
        struct body b = {0};
        char url[128];
        url_of(url, sizeof url, h2, "/healthz");
        CHECK_EQ_INT(fetch(e, url, NULL, &b), 200);
        free(b.p);
        curl_easy_cleanup(e);
        httpd_stop(h2);
    } else {
        printf("skipping IPv6: %s\n", err);
    }
}

static void test_routes(void)
{
    httpd *h;
    char err[256], url[256];
    struct body b = {0};

    if (httpd_start("127.0.0.1:0", &h, err, sizeof err) != 0) {
        fprintf(stderr, "start: %s\n", err);
        CHECK(0);
        return;
    }
    CHECK_EQ_INT(httpd_route(h, "/api/", echo, "short"), 0);
    CHECK_EQ_INT(httpd_route(h, "/api/long/", echo, "long"), 0);
    CHECK_EQ_INT(httpd_route(h, "/broken", failing, NULL), 0);

    CURL *e = curl_easy_init();
    url_of(url, sizeof url, h, "/healthz");
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 200);
    CHECK_STR(b.p, "ok\n");
    char *type = NULL;
    curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &type);
    CHECK(type && strncmp(type, "text/plain", 10) == 0);

    /* The second request rides the first one's connection. */
    long connects = -1;
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 200);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    CHECK_EQ_INT(connects, 0);

    CHECK_EQ_INT(fetch(e, url, "HEAD", &b), 200);
    CHECK_EQ_INT(b.len, 0);
    curl_off_t cl = -1;
    curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    CHECK_EQ_INT(cl, 3);

    CHECK_EQ_INT(fetch(e, url, "POST", &b), 405);
    CHECK_EQ_INT(fetch(e, url, "DELETE", &b), 405);

    url_of(url, sizeof url, h, "/nowhere");
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 404);
    url_of(url, sizeof url, h, "/healthz/extra");
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 404);
    url_of(url, sizeof url, h, "/api");
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 404);

    struct curl_slist *hdr = curl_slist_append(NULL, "Accept: text/x-test");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
    url_of(url, sizeof url, h, "/api/x?a=1&b=%20y");
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 201);
    CHECK_STR(b.p, "short|GET|/api/x|a=1&b=%20y|text/x-test");
    curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &type);
    CHECK(type && strcmp(type, "application/x-echo") == 0);
    url_of(url, sizeof url, h, "/api/long/y");
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 201);
    CHECK_STR(b.p, "long|GET|/api/long/y||text/x-test");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdr);

    url_of(url, sizeof url, h, "/broken/z");
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 500);

    free(b.p);
    curl_easy_cleanup(e);
    httpd_stop(h);
}

static void test_delays(void)
{
    httpd *h;
    char err[256], url[256];
    struct body b = {0};
    static unsigned delay = SLOW_MS;

    if (httpd_start("127.0.0.1:0", &h, err, sizeof err) != 0) {
        fprintf(stderr, "start: %s\n", err);
        CHECK(0);
        return;
    }
    CHECK_EQ_INT(httpd_route(h, "/slow", slow, &delay), 0);
    url_of(url, sizeof url, h, "/slow");

    CURL *e = curl_easy_init();
    double t0 = now_ms();
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 200);
    double took = now_ms() - t0;
    CHECK_STR(b.p, "late\n");
    CHECK(took >= SLOW_MS);
    /* A delayed answer leaves the connection usable. */
    long connects = -1;
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 200);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    CHECK_EQ_INT(connects, 0);
    free(b.p);
    curl_easy_cleanup(e);

    /* Many at once: each parks, none holds a thread, so together they take
     * about one delay. */
    CURLM *m = curl_multi_init();
    CURL *es[CONCURRENT];
    struct body bs[CONCURRENT];
    for (int i = 0; i < CONCURRENT; i++) {
        bs[i] = (struct body){NULL, 0};
        es[i] = curl_easy_init();
        curl_easy_setopt(es[i], CURLOPT_URL, url);
        curl_easy_setopt(es[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(es[i], CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(es[i], CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(es[i], CURLOPT_WRITEDATA, &bs[i]);
        curl_multi_add_handle(m, es[i]);
    }
    t0 = now_ms();
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    took = now_ms() - t0;
    int ok = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
        long status = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        ok += msg->msg == CURLMSG_DONE && msg->data.result == CURLE_OK && status == 200;
    }
    CHECK_EQ_INT(ok, CONCURRENT);
    CHECK(took >= SLOW_MS);
    CHECK(took < 20.0 * SLOW_MS);
    printf("%d delayed requests of %d ms took %.0f ms\n", CONCURRENT, SLOW_MS, took);
    for (int i = 0; i < CONCURRENT; i++) {
        curl_multi_remove_handle(m, es[i]);
        curl_easy_cleanup(es[i]);
        free(bs[i].p);
    }
    curl_multi_cleanup(m);
    httpd_stop(h);
}

/* Stopping with answers still parked must neither hang nor crash: the parked
 * connections are released first. */
static void test_stop_while_parked(void)
{
    httpd *h;
    char err[256], url[256];
    static unsigned delay = 30000;

    if (httpd_start("127.0.0.1:0", &h, err, sizeof err) != 0) {
        fprintf(stderr, "start: %s\n", err);
        CHECK(0);
        return;
    }
    CHECK_EQ_INT(httpd_route(h, "/slow", slow, &delay), 0);
    url_of(url, sizeof url, h, "/slow");

    CURLM *m = curl_multi_init();
    CURL *es[10];
    struct body bs[10];
    for (int i = 0; i < 10; i++) {
        bs[i] = (struct body){NULL, 0};
        es[i] = curl_easy_init();
        curl_easy_setopt(es[i], CURLOPT_URL, url);
        curl_easy_setopt(es[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(es[i], CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(es[i], CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(es[i], CURLOPT_WRITEDATA, &bs[i]);
        curl_multi_add_handle(m, es[i]);
    }
    int running = 1;
    double t0 = now_ms();
    while (now_ms() - t0 < 300) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    t0 = now_ms();
    httpd_stop(h);
    CHECK(now_ms() - t0 < 5000);
    while (running) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    CHECK(now_ms() - t0 < 5000);
    for (int i = 0; i < 10; i++) {
        curl_multi_remove_handle(m, es[i]);
        curl_easy_cleanup(es[i]);
        free(bs[i].p);
    }
    curl_multi_cleanup(m);
}

/* Crawl /demo/ the way a crawler would: follow every href on every 200 HTML
 * page, resolve it with libcurl's URL parser, drop the fragment, stay on this
 * host, fetch each distinct URL once. */
int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_parse();
    test_start_errors();
    test_routes();
    test_delays();
    test_stop_while_parked();
    curl_global_cleanup();
    return check_done();
}
