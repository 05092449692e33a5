/* test_polite.c - what answers do to a group in the real in-memory queue,
 * observed through queue_take, queue_next_due and queue_each_group on a
 * fake clock: 429 and 503 pause for Retry-After (cut to an hour) or 1 s
 * doubling to 60 s; five requests in a row with no answer pause 1 s
 * doubling; --autothrottle moves the delay halfway towards latency /
 * target, never under that target, --delay or the Crawl-delay, never over
 * 60 s (but for a longer Crawl-delay), and an error never shortens it;
 * Crawl-delay raises the delay and holds the group for one delay after the
 * fetch; an unavailable robots.txt holds it until its retry. And
 * polite_group, the key of a URL's group. */
#include "check.h"
#include "core/polite.h"
#include "core/queue.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static queue *new_queue(double delay)
{
    struct queue_config cfg = {.capacity = 1000, .workers = 1, .group_delay = delay, .seed = 1};
    queue *q = queue_open("memory", &cfg, NULL, 0);
    CHECK(q != NULL);
    return q;
}

static void push(queue *q, const char *group, double now)
{
    struct queue_push_opts o = {.group = group, .group_len = strlen(group)};
    CHECK_EQ_INT(queue_push(q, "{}", 2, &o, now, NULL), QUEUE_OK);
}

/* Takes one job at now and acks it at once: 1 if there was one. */
static int take(queue *q, double now)
{
    struct queue_lease l;
    if (!queue_take(q, 1, now, &l))
        return 0;
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    return 1;
}

struct find {
    const char *name;
    struct queue_group_info info;
    int found;
};

static void find_group(void *arg, const struct queue_group_info *g)
{
    struct find *f = arg;
    if (strcmp(g->name, f->name) == 0) {
        f->info = *g;
        f->found = 1;
    }
}

/* The group's current delay in the queue, or -1 if it has none. */
static double delay_of(queue *q, const char *group)
{
    struct find f = {.name = group};
    queue_each_group(q, find_group, &f);
    return f.found ? f.info.delay : -1;
}

static int near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

/* With a job of group waiting at now: none can start before at, one can
 * then. */
static void held_until(queue *q, const char *group, double now, double at)
{
    push(q, group, now);
    CHECK(!take(q, now));
    CHECK(!take(q, at - 0.001));
    CHECK(near(queue_next_due(q), at));
    CHECK(take(q, at));
}

static const char *group_of(const char *url)
{
    static char out[POLITE_GROUP_MAX];
    memset(out, 'X', sizeof out);
    size_t n = polite_group(url, out);
    if (n == 0)
        return "-";
    CHECK(n < POLITE_GROUP_MAX && out[n] == 0); /* written as a C string */
    return out;
}

static void test_group(void)
{
    CHECK_STR(group_of("http://Example.COM/a?b#c"), "example.com");
    CHECK_STR(group_of("http://example.com"), "example.com"); /* no path */
    CHECK_STR(group_of("http://example.com?q"), "example.com");
    CHECK_STR(group_of("http://example.com:80/"), "example.com");
    CHECK_STR(group_of("https://example.com:443/"), "example.com");
    CHECK_STR(group_of("https://example.com:80/"), "example.com:80");
    CHECK_STR(group_of("http://example.com:8080/"), "example.com:8080");
    CHECK_STR(group_of("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
    CHECK_STR(group_of("http://user:pw@example.com:81/"), "example.com:81");
    CHECK_STR(group_of("http://[::1]:8443/"), "[::1]:8443");
    CHECK_STR(group_of("http://[2001:DB8::1]/"), "[2001:db8::1]");
    CHECK_STR(group_of("http://b\xc3\xbc"
                       "cher.example/"),
              "xn--bcher-kva.example");
    CHECK_STR(group_of("http://b%c3%bccher.example/"), "xn--bcher-kva.example");
    /* no absolute http(s) URL, no group */
    CHECK_STR(group_of(""), "-");
    CHECK_STR(group_of("/a/b"), "-");
    CHECK_STR(group_of("//example.com/"), "-");
    CHECK_STR(group_of("ftp://example.com/"), "-");
    CHECK_STR(group_of("mailto:someone@example.com"), "-");
    CHECK_STR(group_of("http:///x"), "-");
    CHECK_STR(group_of("http://h:70000/"), "-");
    CHECK_STR(group_of("http://[::1/"), "-");

    /* a group is at most QUEUE_GROUP_MAX bytes: 255 is one, 256 none */
    char url[400], host[300];
    memset(host, 'a', 250);
    host[250] = 0;
    snprintf(url, sizeof url, "http://%s:8080/", host);
    char g[POLITE_GROUP_MAX];
    size_t n = polite_group(url, g);
    CHECK_EQ_INT(n, 255);
    queue *q = new_queue(0);
    CHECK_EQ_INT(queue_group_pause(q, g, n, 1), 0);
    queue_free(q);
    snprintf(url, sizeof url, "http://%s:18080/", host);
    CHECK_EQ_INT(polite_group(url, g), 0);
    memset(host, 'a', 299);
    host[299] = 0;
    snprintf(url, sizeof url, "http://%s/", host);
    CHECK_EQ_INT(polite_group(url, g), 0);
}

static void test_busy(void)
{
    queue *q = new_queue(0);
    struct polite_config cfg = {.delay = 0, .target = 1};
    struct polite *p = polite_new(&cfg, q);
    CHECK(p != NULL);
    const char *url = "http://busy.example/x";
    double now = 100;
    /* no Retry-After: 1 s doubling, at most a minute, 429 and 503 alike */
    double want[] = {1, 2, 4, 8, 16, 32, 60, 60};
    for (int i = 0; i < 8; i++) {
        double pause = polite_answer(p, NULL, 0, url, i & 1 ? 503 : 429, 0, 0.1, now);
        CHECK(near(pause, want[i]));
        held_until(q, "busy.example", now, now + want[i]);
        now += want[i];
    }
    /* an answer that is not busy ends the run: the next 429 is 1 s again */
    CHECK(near(polite_answer(p, NULL, 0, url, 200, 0, 0.1, now), 0));
    CHECK(near(polite_answer(p, NULL, 0, url, 429, 0, 0.1, now), 1));
    CHECK(near(polite_answer(p, NULL, 0, url, 500, 0, 0.1, now), 0)); /* not busy */
    CHECK(near(polite_answer(p, NULL, 0, url, 429, 0, 0.1, now), 1));
    now += 1;
    /* Retry-After, as given; 0 is "none" (curl's), so 1 s doubling */
    CHECK(near(polite_answer(p, NULL, 0, url, 429, 30, 0.1, now), 30));
    held_until(q, "busy.example", now, now + 30);
    now += 30;
    CHECK(near(polite_answer(p, NULL, 0, url, 503, 0, 0.1, now), 4)); /* third in a row */
    now += 4;
    CHECK(near(polite_answer(p, NULL, 0, url, 200, 0, 0.1, now), 0));
    CHECK(near(polite_answer(p, NULL, 0, url, 429, 0, 0.1, now), 1));
    now += 1;
    /* ten hours are cut to one */
    CHECK(near(polite_answer(p, NULL, 0, url, 429, 36000, 0.1, now), 3600));
    held_until(q, "busy.example", now, now + 3600);
    now += 3600;
    /* a Retry-After over a minute is honoured up to the hour */
    CHECK(near(polite_answer(p, NULL, 0, url, 503, 300, 0.1, now), 300));
    now += 300;
    /* other statuses pause nothing, and other groups are untouched */
    long calm[] = {200, 301, 404, 500, 502, 504};
    for (size_t i = 0; i < sizeof calm / sizeof *calm; i++)
        CHECK(near(polite_answer(p, NULL, 0, url, calm[i], 0, 0.1, now), 0));
    polite_answer(p, NULL, 0, url, 429, 0, 0.1, now);
    push(q, "calm.example", now);
    CHECK(take(q, now));
    /* a group the script named is the one paused, not the url's host */
    CHECK(near(polite_answer(p, "mine", 4, url, 429, 7, 0.1, now), 7));
    held_until(q, "mine", now, now + 7);
    /* no group at all: nothing to pause */
    CHECK(near(polite_answer(p, NULL, 0, "ftp://busy.example/", 429, 7, 0.1, now), 0));
    CHECK(near(polite_answer(p, NULL, 0, "", 429, 7, 0.1, now), 0));
    polite_free(p);
    polite_free(NULL);
    queue_free(q);
}

static void test_no_answer(void)
{
    queue *q = new_queue(0);
    struct polite_config cfg = {.target = 1};
    struct polite *p = polite_new(&cfg, q);
    const char *url = "http://[::1]:9/x", *g = "[::1]:9";
    double now = 10;
    for (int i = 1; i < POLITE_FAILS; i++)
        CHECK(near(polite_answer(p, NULL, 0, url, 0, 0, 30, now), 0));
    push(q, g, now);
    CHECK(take(q, now)); /* four in a row: not paused */
    double want[] = {1, 2, 4, 8, 16, 32, 60, 60};
    for (int i = 0; i < 8; i++) {
        CHECK(near(polite_answer(p, NULL, 0, url, 0, 0, 30, now), want[i]));
        held_until(q, g, now, now + want[i]);
        now += want[i];
    }
    /* any answer, a 500 too, ends the run */
    polite_answer(p, NULL, 0, url, 500, 0, 0.1, now);
    for (int i = 1; i < POLITE_FAILS; i++)
        CHECK(near(polite_answer(p, NULL, 0, url, 0, 0, 30, now), 0));
    CHECK(near(polite_answer(p, NULL, 0, url, 0, 0, 30, now), 1));
    /* a 429 is an answer too: it pauses as busy, and the fails start over */
    for (int i = 1; i < POLITE_FAILS; i++)
        polite_answer(p, NULL, 0, url, 0, 0, 30, now);
    CHECK(near(polite_answer(p, NULL, 0, url, 429, 0, 0.1, now), 1));
    CHECK(near(polite_answer(p, NULL, 0, url, 0, 0, 30, now), 0));
    polite_free(p);
    queue_free(q);
}

static void test_autothrottle(void)
{
    queue *q = new_queue(0);
    struct polite_config cfg = {.delay = 0, .autothrottle = 1, .target = 1};
    struct polite *p = polite_new(&cfg, q);
    const char *url = "http://slow.example/", *g = "slow.example";
    double now = 0;
    /* from 1 s halfway towards latency / target */
    polite_answer(p, NULL, 0, url, 200, 0, 0.2, now);
    CHECK(near(delay_of(q, g), 0.6));
    polite_answer(p, NULL, 0, url, 200, 0, 0.2, now);
    CHECK(near(delay_of(q, g), 0.4));
    /* never under latency / target: a slower answer raises it at once */
    polite_answer(p, NULL, 0, url, 200, 0, 4, now);
    CHECK(near(delay_of(q, g), 4));
    /* an error answer never shortens it, but may lengthen it */
    polite_answer(p, NULL, 0, url, 404, 0, 0.1, now);
    CHECK(near(delay_of(q, g), 4));
    polite_answer(p, NULL, 0, url, 500, 0, 6, now);
    CHECK(near(delay_of(q, g), 6));
    /* no answer teaches nothing of latency */
    polite_answer(p, NULL, 0, url, 0, 0, 0.001, now);
    CHECK(near(delay_of(q, g), 6));
    polite_answer(p, NULL, 0, url, 200, 0, 0.1, now);
    CHECK(near(delay_of(q, g), 3.05));
    /* at most a minute */
    polite_answer(p, NULL, 0, url, 200, 0, 1000, now);
    CHECK(near(delay_of(q, g), 60));
    /* the delay the queue keeps between starts */
    push(q, g, now);
    push(q, g, now);
    CHECK(take(q, now));
    CHECK(!take(q, now + 59.9));
    CHECK(take(q, now + 60));
    polite_free(p);
    queue_free(q);

    /* target 4 in flight: latency / 4; --delay is the floor */
    q = new_queue(1.5);
    cfg = (struct polite_config){.delay = 1.5, .autothrottle = 1, .target = 4};
    p = polite_new(&cfg, q);
    polite_answer(p, NULL, 0, url, 200, 0, 20, now);
    CHECK(near(delay_of(q, g), 5)); /* max(1.5, 20 / 4, (1.5 + 5) / 2) */
    for (int i = 0; i < 60; i++)
        polite_answer(p, NULL, 0, url, 200, 0, 0.01, now);
    CHECK(near(delay_of(q, g), 1.5));
    polite_free(p);
    queue_free(q);
}

static void test_crawl_delay(void)
{
    queue *q = new_queue(1);
    struct polite_config cfg = {.delay = 1, .target = 1};
    struct polite *p = polite_new(&cfg, q);
    double now = 50;
    /* a Crawl-delay no longer than --delay changes nothing */
    polite_robots_fetched(p, "http://a.example:80", 1, now);
    polite_robots_fetched(p, "http://a.example:80", -1, now);
    CHECK(delay_of(q, "a.example") < 0); /* not even made */
    /* a longer one is the group's delay, the first start a delay away */
    polite_robots_fetched(p, "http://a.example:80", 3, now);
    CHECK(near(delay_of(q, "a.example"), 3));
    held_until(q, "a.example", now, now + 3);
    push(q, "a.example", now + 3);
    CHECK(!take(q, now + 5.9));
    CHECK(take(q, now + 6));
    /* the origin's port decides the group, as polite_group writes it */
    polite_robots_fetched(p, "https://a.example:443", 2, now);
    CHECK(near(delay_of(q, "a.example"), 2));
    polite_robots_fetched(p, "http://a.example:8080", 4, now);
    CHECK(near(delay_of(q, "a.example:8080"), 4));
    polite_robots_fetched(p, "http://[::1]:8080", 5, now);
    CHECK(near(delay_of(q, "[::1]:8080"), 5));
    polite_free(p);
    queue_free(q);
}

/* Crawl-delay is the floor autothrottle keeps to, a long one included:
 * robots.txt asks it of every crawler, whatever the latency. */
static void test_crawl_delay_autothrottle(void)
{
    queue *q = new_queue(0);
    struct polite_config cfg = {.delay = 0, .autothrottle = 1, .target = 1};
    struct polite *p = polite_new(&cfg, q);
    const char *url = "http://cd.example/", *g = "cd.example";
    double now = 0;
    polite_answer(p, NULL, 0, url, 200, 0, 0.2, now);
    CHECK(near(delay_of(q, g), 0.6));
    polite_robots_fetched(p, "http://cd.example:80", 5, now);
    CHECK(near(delay_of(q, g), 5));
    for (int i = 0; i < 10; i++)
        polite_answer(p, NULL, 0, url, 200, 0, 0.01, now);
    CHECK(near(delay_of(q, g), 5));
    /* a throttle already longer than the Crawl-delay stays */
    polite_answer(p, NULL, 0, url, 200, 0, 30, now);
    CHECK(near(delay_of(q, g), 30));
    polite_robots_fetched(p, "http://cd.example:80", 10, now);
    CHECK(near(delay_of(q, g), 30));
    for (int i = 0; i < 60; i++)
        polite_answer(p, NULL, 0, url, 200, 0, 0.01, now);
    CHECK(near(delay_of(q, g), 10));

    /* over autothrottle's minute: the Crawl-delay still holds */
    polite_robots_fetched(p, "http://long.example:80", 120, now);
    CHECK(near(delay_of(q, "long.example"), 120));
    polite_answer(p, NULL, 0, "http://long.example/a", 200, 0, 0.1, now);
    CHECK(near(delay_of(q, "long.example"), 120));
    polite_answer(p, NULL, 0, "http://long.example/a", 200, 0, 500, now);
    CHECK(near(delay_of(q, "long.example"), 120));
    polite_free(p);
    queue_free(q);
}

static void test_robots_unavailable(void)
{
    queue *q = new_queue(0);
    struct polite_config cfg = {.target = 1};
    struct polite *p = polite_new(&cfg, q);
    polite_robots_unavailable(p, "https://down.example:8443/a", 40);
    held_until(q, "down.example:8443", 30, 40);
    /* an earlier time changes nothing: a later pause wins */
    polite_robots_unavailable(p, "https://down.example:8443/a", 100);
    polite_robots_unavailable(p, "https://down.example:8443/a", 60);
    held_until(q, "down.example:8443", 40, 100);
    polite_robots_unavailable(p, "not a url", 1000); /* no group, nothing */
    polite_free(p);
    queue_free(q);
}

int main(void)
{
    test_group();
    test_busy();
    test_no_answer();
    test_autothrottle();
    test_crawl_delay();
    test_crawl_delay_autothrottle();
    test_robots_unavailable();
    return check_done();
}
