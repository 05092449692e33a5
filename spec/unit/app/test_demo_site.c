/* test_demo_site.c - the built-in demo site (shoal demo) as a crawler sees
 * it, served by the engine's HTTP server on 127.0.0.1: a full crawl of
 * /demo/ whose counts (pages, 404s, 500s, slow pages) must equal
 * demo_site_facts(), and paths that only look like pages are not pages. */
#include "app/demo_site.h"
#include "check.h"
#include "http_get.h"
#include "net/httpd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct crawl {
    char **urls;
    size_t len, cap;
};

static int crawl_add(struct crawl *c, const char *url)
{
    for (size_t i = 0; i < c->len; i++)
        if (strcmp(c->urls[i], url) == 0)
            return 0;
    if (c->len == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->urls = realloc(c->urls, c->cap * sizeof *c->urls);
    }
    c->urls[c->len++] = strdup(url);
    return 1;
}

static void test_demo_crawl(void)
{
    httpd *h;
    char err[256], start[256], origin[128];
    struct demo_site_facts want, got = {0, 0, 0, 0, 0};
    struct crawl c = {0};
    struct body b = {0};

    demo_site_facts(&want);
    printf("demo facts: pages=%d not_found=%d errors=%d slow=%d slow_ms=%u\n", want.pages,
           want.not_found, want.errors, want.slow, want.slow_ms);
    CHECK(want.pages > 900);
    CHECK(want.not_found > 0);
    CHECK(want.errors > 0);
    CHECK(want.slow > 0);

    if (httpd_start("127.0.0.1:0", &h, err, sizeof err) != 0) {
        fprintf(stderr, "start: %s\n", err);
        CHECK(0);
        return;
    }
    CHECK_EQ_INT(demo_site_register(h), 0);
    snprintf(origin, sizeof origin, "http://%s:%d/", httpd_host(h), httpd_port(h));
    url_of(start, sizeof start, h, "/demo/");
    crawl_add(&c, start);

    CURL *e = curl_easy_init();
    CURLU *u = curl_url();
    size_t bigger = 0, smaller = SIZE_MAX;
    for (size_t i = 0; i < c.len; i++) {
        char *page = strdup(c.urls[i]);
        double t0 = now_ms();
        long status = fetch(e, page, NULL, &b);
        double took = now_ms() - t0;
        if (status == 404)
            got.not_found++;
        else if (status == 500)
            got.errors++;
        if (status != 200) {
            CHECK(status == 404 || status == 500);
            free(page);
            continue;
        }
        got.pages++;
        if (took >= want.slow_ms)
            got.slow++;
        if (b.len > bigger)
            bigger = b.len;
        if (b.len < smaller)
            smaller = b.len;

        for (char *p = b.p; (p = strstr(p, "href=\"")) != NULL;) {
            p += 6;
            char *end = strchr(p, '"');
            if (!end)
                break;
            *end = '\0';
            /* The fragment goes before resolving: libcurl 7.88 resolves a
             * bare "#top" against the directory, not the page. An empty
             * reference is the page itself (RFC 3986, 5.2.2). */
            p[strcspn(p, "#")] = '\0';
            char *abs = NULL;
            if (curl_url_set(u, CURLUPART_URL, page, 0) == CURLUE_OK &&
                (!*p || curl_url_set(u, CURLUPART_URL, p, 0) == CURLUE_OK) &&
                curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK &&
                curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK &&
                strncmp(abs, origin, strlen(origin)) == 0)
                crawl_add(&c, abs);
            curl_free(abs);
            p = end + 1;
        }
        free(page);
    }
    printf("crawl: %zu URLs, pages %zu..%zu bytes\n", c.len, smaller, bigger);
    CHECK_EQ_INT(got.pages, want.pages);
    CHECK_EQ_INT(got.not_found, want.not_found);
    CHECK_EQ_INT(got.errors, want.errors);
    CHECK_EQ_INT(got.slow, want.slow);
    CHECK(smaller >= 1000 && bigger <= 2048);

    /* Paths that only look like pages are not pages. */
    char url[256];
    url_of(url, sizeof url, h, "/demo/p/007.html");
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 404);
    url_of(url, sizeof url, h, "/demo/p/0.html");
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 404);
    url_of(url, sizeof url, h, "/demo/p/1.htmlx");
    CHECK_EQ_INT(fetch(e, url, NULL, &b), 404);

    for (size_t i = 0; i < c.len; i++)
        free(c.urls[i]);
    free(c.urls);
    free(b.p);
    curl_url_cleanup(u);
    curl_easy_cleanup(e);
    httpd_stop(h);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_demo_crawl();
    curl_global_cleanup();
    return check_done();
}
