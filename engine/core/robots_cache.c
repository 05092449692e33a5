/* robots_cache.c - the run's robots.txt files by origin (robots_cache.h).
 *
 * A table of origins (base/strtab.h). An entry is never removed: a crawl
 * meets each origin once, and a few hundred bytes per host are cheap. */
#include "core/robots_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/strtab.h"
#include "core/robots.h"

struct entry {
    struct robots *rules; /* NULL until the first answer, and while unavailable */
    int fetching;         /* one request is fetching it now */
    int unavailable;      /* the last fetch got a 5xx or nothing */
    int failures;         /* such fetches in a row */
    char why[96];         /* what the last of them got */
    double until;         /* rules: refetch after; unavailable: retry after */
};

struct robots_cache {
    pthread_mutex_t mu;
    struct strtab origins; /* -> struct entry */
    char *agent;
    _Atomic unsigned gen;
};

struct robots_cache *robots_cache_new(const char *agent)
{
    struct robots_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->agent = strdup(agent ? agent : "shoal");
    if (!c->agent || strtab_init(&c->origins, sizeof(struct entry)) != 0) {
        free(c->agent);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void drop_entry(void *value)
{
    robots_free(((struct entry *)value)->rules);
}

void robots_cache_free(struct robots_cache *c)
{
    if (!c)
        return;
    strtab_free(&c->origins, drop_entry);
    free(c->agent);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* A reg-name of RFC 3986, or an IP literal: [hex digits, ':' and '.']. */
static int host_ok(const char *h, size_t n)
{
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (!strchr("0123456789abcdefABCDEF:.", h[i]))
                return 0;
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (!(ch >= 0x80 || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || strchr("-._~%!$&'()*+,;=", ch)))
            return 0;
    }
    return 1;
}

int robots_origin(const char *url, char origin[ROBOTS_ORIGIN_MAX], const char **path,
                  size_t *path_len)
{
    int https;
    if (strncasecmp(url, "http://", 7) == 0)
        https = 0;
    else if (strncasecmp(url, "https://", 8) == 0)
        https = 1;
    else
        return -1;
    const char *a = url + (https ? 8 : 7);
    size_t alen = strcspn(a, "/?#");
    const char *rest = a + alen;
    /* userinfo is no part of the origin */
    for (size_t i = alen; i > 0; i--) {
        if (a[i - 1] == '@') {
            alen -= i;
            a += i;
            break;
        }
    }
    /* host, and the port after the last ':' outside an IPv6 literal */
    size_t hlen = alen;
    const char *port = NULL;
    const char *close = memchr(a, ']', alen);
    const char *colon = NULL;
    for (size_t i = close ? (size_t)(close - a) : 0; i < alen; i++)
        if (a[i] == ':')
            colon = a + i;
    if (colon) {
        hlen = (size_t)(colon - a);
        port = colon + 1;
    }
    size_t plen = port ? alen - hlen - 1 : 0;
    if (hlen == 0 || hlen > 253 || plen > 5 || !host_ok(a, hlen))
        return -1;
    for (size_t i = 0; i < plen; i++)
        if (port[i] < '0' || port[i] > '9')
            return -1;
    char *o = origin;
    memcpy(o, https ? "https://" : "http://", https ? 8 : 7);
    o += https ? 8 : 7;
    for (size_t i = 0; i < hlen; i++) {
        char ch = a[i];
        *o++ = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    *o++ = ':';
    if (plen) {
        memcpy(o, port, plen);
        o += plen;
    } else {
        const char *def = https ? "443" : "80";
        memcpy(o, def, strlen(def));
        o += strlen(def);
    }
    *o = 0;
    size_t rlen = strcspn(rest, "#");
    if (rlen == 0 || rest[0] != '/') {
        /* "http://h?q": the path is empty, so "/" (with the query) */
        *path = rlen ? rest : "/";
        *path_len = rlen ? rlen : 1;
    } else {
        *path = rest;
        *path_len = rlen;
    }
    return 0;
}

static struct entry *find(struct robots_cache *c, const char *origin, int make)
{
    return strtab_get(&c->origins, origin, strlen(origin), make);
}

enum robots_verdict robots_cache_check(struct robots_cache *c, const char *url, double now,
                                       double *until, char *why, size_t whylen)
{
    char origin[ROBOTS_ORIGIN_MAX];
    const char *path;
    size_t plen;
    if (robots_origin(url, origin, &path, &plen) != 0)
        return ROBOTS_ALLOW;
    enum robots_verdict v;
    pthread_mutex_lock(&c->mu);
    struct entry *e = find(c, origin, 1);
    if (!e) {
        v = ROBOTS_ALLOW; /* out of memory: the request itself will likely fail too */
    } else if (e->fetching) {
        v = e->rules ? (robots_allowed(e->rules, path, plen) ? ROBOTS_ALLOW : ROBOTS_DISALLOW)
                     : ROBOTS_WAIT;
    } else if (e->unavailable && now < e->until) {
        *until = e->until;
        snprintf(why, whylen, "%s", e->why);
        v = ROBOTS_UNAVAILABLE;
    } else if (!e->rules || now >= e->until) {
        e->fetching = 1; /* the old rules, if any, answer while it is fetched */
        v = ROBOTS_FETCH;
    } else {
        v = robots_allowed(e->rules, path, plen) ? ROBOTS_ALLOW : ROBOTS_DISALLOW;
    }
    pthread_mutex_unlock(&c->mu);
    return v;
}

int robots_cache_disallows(struct robots_cache *c, const char *url)
{
    char origin[ROBOTS_ORIGIN_MAX];
    const char *path;
    size_t plen;
    if (robots_origin(url, origin, &path, &plen) != 0)
        return 0;
    pthread_mutex_lock(&c->mu);
    struct entry *e = find(c, origin, 0);
    int no = e && e->rules && !robots_allowed(e->rules, path, plen);
    pthread_mutex_unlock(&c->mu);
    return no;
}

double robots_cache_store(struct robots_cache *c, const char *origin, long status,
                          const char *error, const char *body, size_t len, double now)
{
    struct robots *r = NULL;
    int down = status == 0 || status >= 500;
    if (status >= 200 && status < 300)
        r = robots_parse(body, len, c->agent);
    else if (!down)
        r = robots_allow_all(); /* 4xx, or still redirected after the hops allowed */
    double delay = r ? robots_crawl_delay(r) : -1;
    pthread_mutex_lock(&c->mu);
    struct entry *e = find(c, origin, 1);
    if (e) {
        e->fetching = 0;
        if (r || !down) {
            robots_free(e->rules);
            e->rules = r;
            r = NULL;
            e->unavailable = 0;
            e->failures = 0;
            e->until = now + ROBOTS_TTL;
        } else {
            /* RFC 9309 2.3.1.4: disallow everything until it answers */
            robots_free(e->rules);
            e->rules = NULL;
            e->unavailable = 1;
            if (status)
                snprintf(e->why, sizeof e->why, "HTTP %ld", status);
            else
                snprintf(e->why, sizeof e->why, "%s", error ? error : "no answer");
            double wait = ROBOTS_RETRY_MIN;
            for (int i = 0; i < e->failures && wait < ROBOTS_RETRY_MAX; i++)
                wait *= 2;
            e->failures++;
            e->until = now + (wait < ROBOTS_RETRY_MAX ? wait : ROBOTS_RETRY_MAX);
        }
    }
    pthread_mutex_unlock(&c->mu);
    robots_free(r);
    atomic_fetch_add(&c->gen, 1);
    return delay;
}

void robots_cache_abandon(struct robots_cache *c, const char *origin)
{
    pthread_mutex_lock(&c->mu);
    struct entry *e = find(c, origin, 0);
    if (e)
        e->fetching = 0;
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_add(&c->gen, 1);
}

unsigned robots_cache_gen(const struct robots_cache *c)
{
    return atomic_load_explicit(&c->gen, memory_order_acquire);
}
