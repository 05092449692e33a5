/* test_robots_cache.c - the run's robots.txt per origin as workers rely on
 * it: the first ask fetches and the others wait; 2xx rules answer, 4xx
 * allows all, 5xx or no answer makes the origin unavailable with a retry
 * 10 s later doubling to an hour; rules are refetched after a day while
 * the old ones answer; abandon lets the next ask fetch; disallows never
 * fetches; the generation moves at each store and abandon; many threads
 * asking at once get one FETCH. And robots_origin's split of a URL. */
#include "check.h"
#include "core/robots_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum robots_verdict ask(struct robots_cache *c, const char *url, double now)
{
    double until = -1;
    char why[96] = "";
    return robots_cache_check(c, url, now, &until, why, sizeof why);
}

static double store(struct robots_cache *c, const char *origin, long status, const char *body,
                    double now)
{
    return robots_cache_store(c, origin, status, NULL, body, body ? strlen(body) : 0, now);
}

/* robots_origin's origin and path of url, or "-" when it fails. */
static const char *origin_of(const char *url, char *path_out, size_t cap)
{
    static char origin[ROBOTS_ORIGIN_MAX];
    const char *path = NULL;
    size_t plen = 0;
    if (robots_origin(url, origin, &path, &plen) != 0) {
        snprintf(path_out, cap, "-");
        return "-";
    }
    snprintf(path_out, cap, "%.*s", (int)plen, path);
    return origin;
}

static void test_origin(void)
{
    char path[512];
    CHECK_STR(origin_of("http://Example.COM/a/b?q=1#frag", path, sizeof path),
              "http://example.com:80");
    CHECK_STR(path, "/a/b?q=1"); /* the fragment is no part of it */
    CHECK_STR(origin_of("HTTPS://example.com", path, sizeof path), "https://example.com:443");
    CHECK_STR(path, "/"); /* no path */
    CHECK_STR(origin_of("http://example.com?q", path, sizeof path), "http://example.com:80");
    CHECK_STR(path, "/");
    CHECK_STR(origin_of("http://example.com:8080/x", path, sizeof path), "http://example.com:8080");
    CHECK_STR(path, "/x");
    CHECK_STR(origin_of("https://example.com:443/", path, sizeof path), "https://example.com:443");
    CHECK_STR(origin_of("http://example.com:443/", path, sizeof path), "http://example.com:443");
    /* userinfo is no part of the origin */
    CHECK_STR(origin_of("http://user:pw@example.com/p", path, sizeof path),
              "http://example.com:80");
    CHECK_STR(path, "/p");
    CHECK_STR(origin_of("http://good.example@evil.example/", path, sizeof path),
              "http://evil.example:80");
    /* IPv6 literals keep their brackets, in lower case */
    CHECK_STR(origin_of("http://[::1]:8080/a", path, sizeof path), "http://[::1]:8080");
    CHECK_STR(origin_of("https://[2001:DB8::1]/", path, sizeof path), "https://[2001:db8::1]:443");
    /* IDN hosts as A-labels, raw or escaped */
    CHECK_STR(origin_of("http://b\xc3\xbc"
                        "cher.example/",
                        path, sizeof path),
              "http://xn--bcher-kva.example:80");
    CHECK_STR(origin_of("http://b%C3%BCcher.example/", path, sizeof path),
              "http://xn--bcher-kva.example:80");
    CHECK_STR(origin_of("http://127.0.0.1:1/", path, sizeof path), "http://127.0.0.1:1");
    /* what it refuses: other schemes, relative URLs, no host, bad ports */
    CHECK_STR(origin_of("ftp://example.com/", path, sizeof path), "-");
    CHECK_STR(origin_of("//example.com/", path, sizeof path), "-");
    CHECK_STR(origin_of("/just/a/path", path, sizeof path), "-");
    CHECK_STR(origin_of("", path, sizeof path), "-");
    CHECK_STR(origin_of("http://", path, sizeof path), "-");
    CHECK_STR(origin_of("http:///x", path, sizeof path), "-");
    CHECK_STR(origin_of("http://:80/x", path, sizeof path), "-");
    CHECK_STR(origin_of("http://h:99999/", path, sizeof path), "-");
    CHECK_STR(origin_of("http://h:8x/", path, sizeof path), "-");
    CHECK_STR(origin_of("http://[::1/", path, sizeof path), "-");
    CHECK_STR(origin_of("http://a b/", path, sizeof path), "-");
    /* a host of 253 bytes (a DNS name's longest) fits with the longest
     * scheme and port; one of 300 is refused, never cut */
    char url[700], host[301];
    memset(host, 'a', 253);
    host[253] = 0;
    snprintf(url, sizeof url, "https://%s:65535/x", host);
    char want[ROBOTS_ORIGIN_MAX + 64];
    snprintf(want, sizeof want, "https://%s:65535", host);
    CHECK_STR(origin_of(url, path, sizeof path), want);
    memset(host, 'a', 300);
    host[300] = 0;
    snprintf(url, sizeof url, "https://%s/x", host);
    CHECK_STR(origin_of(url, path, sizeof path), "-");
}

static void test_first_fetches(void)
{
    struct robots_cache *c = robots_cache_new("shoal/1.0 (+http://x)");
    CHECK(c != NULL);
    unsigned g0 = robots_cache_gen(c);
    CHECK_EQ_INT(ask(c, "http://a.example/page", 100), ROBOTS_FETCH);
    /* everyone else on that origin waits; another origin is its own */
    CHECK_EQ_INT(ask(c, "http://a.example/other", 100), ROBOTS_WAIT);
    CHECK_EQ_INT(ask(c, "http://A.EXAMPLE:80/x", 100), ROBOTS_WAIT);
    CHECK_EQ_INT(ask(c, "https://a.example/page", 100), ROBOTS_FETCH);
    CHECK_EQ_INT(ask(c, "http://a.example:8080/page", 100), ROBOTS_FETCH);
    /* nothing known yet: pushes are not held back */
    CHECK_EQ_INT(robots_cache_disallows(c, "http://a.example/private/x"), 0);

    double d = store(c, "http://a.example:80", 200,
                     "User-agent: *\nDisallow: /private/\nCrawl-delay: 2.5\n", 101);
    CHECK(d == 2.5);
    CHECK(robots_cache_gen(c) != g0);
    CHECK_EQ_INT(ask(c, "http://a.example/page", 101), ROBOTS_ALLOW);
    CHECK_EQ_INT(ask(c, "http://a.example/private/x", 101), ROBOTS_DISALLOW);
    CHECK_EQ_INT(ask(c, "http://a.example/robots.txt", 101), ROBOTS_ALLOW);
    CHECK_EQ_INT(robots_cache_disallows(c, "http://a.example/private/x"), 1);
    CHECK_EQ_INT(robots_cache_disallows(c, "http://a.example/public"), 0);
    CHECK_EQ_INT(robots_cache_disallows(c, "https://a.example/private/x"), 0); /* not read */
    /* a URL it cannot split is allowed: curl will say what is wrong */
    CHECK_EQ_INT(ask(c, "not a url", 101), ROBOTS_ALLOW);
    CHECK_EQ_INT(robots_cache_disallows(c, "mailto:x@a.example"), 0);

    /* the agent's product token picks its group */
    CHECK(store(c, "https://a.example:443", 200,
                "User-agent: shoal\nDisallow: /\n\nUser-agent: *\nAllow: /\n", 102) < 0);
    CHECK_EQ_INT(ask(c, "https://a.example/x", 102), ROBOTS_DISALLOW);
    robots_cache_free(c);
}

static void test_4xx_allows_all(void)
{
    struct robots_cache *c = robots_cache_new(NULL);
    long statuses[] = {404, 403, 401, 410, 399, 301};
    for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++) {
        char url[64], origin[64];
        snprintf(url, sizeof url, "http://h%zu.example/private", i);
        snprintf(origin, sizeof origin, "http://h%zu.example:80", i);
        CHECK_EQ_INT(ask(c, url, 0), ROBOTS_FETCH);
        /* the body of a 404 page is no robots.txt */
        CHECK(store(c, origin, statuses[i], "User-agent: *\nDisallow: /\nCrawl-delay: 9\n", 0) < 0);
        CHECK_EQ_INT(ask(c, url, 1), ROBOTS_ALLOW);
        CHECK_EQ_INT(robots_cache_disallows(c, url), 0);
    }
    robots_cache_free(c);
}

static void test_unavailable(void)
{
    struct robots_cache *c = robots_cache_new("shoal");
    const char *url = "http://down.example/x", *origin = "http://down.example:80";
    double until = 0, now = 1000;
    char why[96];
    CHECK_EQ_INT(ask(c, url, now), ROBOTS_FETCH);
    CHECK(robots_cache_store(c, origin, 503, NULL, "Disallow:", 9, now) < 0);
    CHECK_EQ_INT(robots_cache_check(c, url, now, &until, why, sizeof why), ROBOTS_UNAVAILABLE);
    CHECK(until == now + 10);
    CHECK_STR(why, "HTTP 503");
    CHECK_EQ_INT(robots_cache_disallows(c, url), 0); /* no rules: pushes go on */
    CHECK_EQ_INT(ask(c, url, now + 9.99), ROBOTS_UNAVAILABLE);
    /* retries 10 s after, doubling: 10, 20, 40, ... up to the hour */
    double want = 10;
    for (int i = 0; i < 12; i++) {
        CHECK_EQ_INT(ask(c, url, now + want), ROBOTS_FETCH);
        CHECK_EQ_INT(ask(c, url, now + want), ROBOTS_WAIT); /* one retry at a time */
        now += want;
        robots_cache_store(c, origin, 0, "connection refused", NULL, 0, now);
        want = want * 2 < ROBOTS_RETRY_MAX ? want * 2 : ROBOTS_RETRY_MAX;
        until = 0;
        CHECK_EQ_INT(robots_cache_check(c, url, now, &until, why, sizeof why), ROBOTS_UNAVAILABLE);
        CHECK(until == now + want);
        CHECK_STR(why, "connection refused");
    }
    CHECK(want == 3600);
    /* a success ends it, and the next failure starts again at 10 s */
    CHECK_EQ_INT(ask(c, url, now + want), ROBOTS_FETCH);
    now += want;
    store(c, origin, 200, "User-agent: *\nDisallow: /x\n", now);
    CHECK_EQ_INT(ask(c, url, now), ROBOTS_DISALLOW);
    CHECK_EQ_INT(ask(c, url, now + ROBOTS_TTL), ROBOTS_FETCH);
    now += ROBOTS_TTL;
    robots_cache_store(c, origin, 500, NULL, NULL, 0, now);
    CHECK_EQ_INT(robots_cache_check(c, url, now, &until, why, sizeof why), ROBOTS_UNAVAILABLE);
    CHECK(until == now + 10);
    CHECK_STR(why, "HTTP 500");
    /* no answer and no error text */
    CHECK_EQ_INT(ask(c, url, now + 10), ROBOTS_FETCH);
    robots_cache_store(c, origin, 0, NULL, NULL, 0, now + 10);
    CHECK_EQ_INT(robots_cache_check(c, url, now + 10, &until, why, sizeof why), ROBOTS_UNAVAILABLE);
    CHECK_STR(why, "no answer");
    CHECK(until == now + 30);
    /* a why that does not fit is cut, NUL-terminated */
    char small[5];
    CHECK_EQ_INT(robots_cache_check(c, url, now + 10, &until, small, sizeof small),
                 ROBOTS_UNAVAILABLE);
    CHECK_STR(small, "no a");
    robots_cache_free(c);
}

static void test_refresh_and_abandon(void)
{
    struct robots_cache *c = robots_cache_new("shoal");
    const char *origin = "http://r.example:80";
    CHECK_EQ_INT(ask(c, "http://r.example/", 0), ROBOTS_FETCH);
    unsigned g = robots_cache_gen(c);
    robots_cache_abandon(c, origin);
    CHECK(robots_cache_gen(c) != g);
    /* given up: the next ask fetches */
    CHECK_EQ_INT(ask(c, "http://r.example/", 1), ROBOTS_FETCH);
    store(c, origin, 200, "User-agent: *\nDisallow: /old\n", 1);
    CHECK_EQ_INT(ask(c, "http://r.example/old", 1 + ROBOTS_TTL - 0.5), ROBOTS_DISALLOW);
    /* a day on: refetched, the old rules answer meanwhile */
    CHECK_EQ_INT(ask(c, "http://r.example/old", 1 + ROBOTS_TTL), ROBOTS_FETCH);
    CHECK_EQ_INT(ask(c, "http://r.example/old", 1 + ROBOTS_TTL), ROBOTS_DISALLOW);
    CHECK_EQ_INT(ask(c, "http://r.example/new", 1 + ROBOTS_TTL), ROBOTS_ALLOW);
    /* abandoned with old rules: they still answer, and a fetch is due */
    robots_cache_abandon(c, origin);
    CHECK_EQ_INT(ask(c, "http://r.example/old", 2 + ROBOTS_TTL), ROBOTS_FETCH);
    store(c, origin, 200, "User-agent: *\nDisallow: /new\n", 2 + ROBOTS_TTL);
    CHECK_EQ_INT(ask(c, "http://r.example/old", 2 + ROBOTS_TTL), ROBOTS_ALLOW);
    CHECK_EQ_INT(ask(c, "http://r.example/new", 2 + ROBOTS_TTL), ROBOTS_DISALLOW);
    /* abandoning an origin never asked about changes nothing else */
    robots_cache_abandon(c, "http://never.example:80");
    CHECK_EQ_INT(ask(c, "http://never.example/", 3 + ROBOTS_TTL), ROBOTS_FETCH);
    /* a store nobody asked for is kept */
    store(c, "http://unasked.example:80", 200, "User-agent: *\nDisallow: /\n", 0);
    CHECK_EQ_INT(robots_cache_disallows(c, "http://unasked.example/a"), 1);
    CHECK_EQ_INT(ask(c, "http://unasked.example/a", 1), ROBOTS_DISALLOW);
    /* an empty 200 allows everything; of a huge one the first 512 KiB
     * count (robots.h) */
    store(c, "http://empty.example:80", 200, "", 0);
    CHECK_EQ_INT(ask(c, "http://empty.example/a", 1), ROBOTS_ALLOW);
    const char *rule = "User-agent: *\nDisallow: /deep\n";
    size_t n = 4 << 20;
    char *big = malloc(n + 64);
    memset(big, '\n', n);
    strcpy(big + 500 * 1024, rule);
    big[500 * 1024 + strlen(rule)] = '\n';
    robots_cache_store(c, "http://big.example:80", 200, NULL, big, n, 0);
    CHECK_EQ_INT(ask(c, "http://big.example/deep", 1), ROBOTS_DISALLOW);
    memset(big, '\n', n);
    strcpy(big + n - 64, rule);
    robots_cache_store(c, "http://big2.example:80", 200, NULL, big, strlen(big), 0);
    CHECK_EQ_INT(ask(c, "http://big2.example/deep", 1), ROBOTS_ALLOW);
    free(big);
    robots_cache_free(c);
    robots_cache_free(NULL);
}

struct hammer {
    struct robots_cache *c;
    pthread_barrier_t *start;
    int fetch, wait, other;
};

static void *hammer(void *arg)
{
    struct hammer *h = arg;
    pthread_barrier_wait(h->start); /* all ask at once */
    for (int i = 0; i < 2000; i++) {
        switch (ask(h->c, i & 1 ? "http://one.example/a" : "http://ONE.example:80/b?c", 5)) {
        case ROBOTS_FETCH:
            h->fetch++;
            break;
        case ROBOTS_WAIT:
            h->wait++;
            break;
        default:
            h->other++;
        }
    }
    return NULL;
}

static void test_threads(void)
{
    enum { T = 8 };
    struct robots_cache *c = robots_cache_new("shoal");
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, T);
    struct hammer h[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        h[i] = (struct hammer){.c = c, .start = &start};
        CHECK_EQ_INT(pthread_create(&th[i], NULL, hammer, &h[i]), 0);
    }
    int fetch = 0, wait = 0, other = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        fetch += h[i].fetch;
        wait += h[i].wait;
        other += h[i].other;
    }
    pthread_barrier_destroy(&start);
    CHECK_EQ_INT(fetch, 1);
    CHECK_EQ_INT(wait, T * 2000 - 1);
    CHECK_EQ_INT(other, 0);
    robots_cache_free(c);
}

int main(void)
{
    test_origin();
    test_first_fetches();
    test_4xx_allows_all();
    test_unavailable();
    test_refresh_and_abandon();
    test_threads();
    return check_done();
}
