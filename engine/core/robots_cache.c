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

#include "base/numtext.h"
#include "base/strtab.h"
#include "base/url.h"
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

int robots_origin(const char *url, char origin[ROBOTS_ORIGIN_MAX], const char **path,
                  size_t *path_len)
{
    struct url_split u;
    url_split(url, strlen(url), &u);
    int https;
    if (u.scheme.n == 4 && strncasecmp(u.scheme.p, "http", 4) == 0)
        https = 0;
    else if (u.scheme.n == 5 && strncasecmp(u.scheme.p, "https", 5) == 0)
        https = 1;
    else
        return -1;
    struct url_authority_parts ap;
    char err[URL_ERR_MAX], host[256];
    if (!u.authority.p || url_parse_authority(u.authority.p, u.authority.n, &ap, err) != 0)
        return -1;
    long hn = url_host(&ap, host, sizeof host, err);
    if (hn <= 0)
        return -1;
    /* "scheme://host:port", by hand: snprintf cost more than the rest of
     * a request's check (1.7k instructions of 3.2k, callgrind) */
    long port = ap.port >= 0 ? ap.port : https ? 443 : 80;
    if (hn > 253 || port > 65535)
        return -1;
    char *o = origin;
    memcpy(o, https ? "https://" : "http://", https ? 8 : 7);
    o += https ? 8 : 7;
    if (ap.ipv6)
        *o++ = '[';
    memcpy(o, host, (size_t)hn);
    o += hn;
    if (ap.ipv6)
        *o++ = ']';
    *o++ = ':';
    o += numtext_u64(o, (uint64_t)port);
    *o = 0;
    /* the path and its query, as written: robots_allowed makes both sides
     * canonical */
    const char *p = u.path.p ? u.path.p : url;
    const char *end = u.query.p ? u.query.p + u.query.n : p + u.path.n;
    if (u.path.n == 0) {
        *path = "/";
        *path_len = 1; /* "http://h?q": the query of an empty path is not matched */
    } else {
        *path = p;
        *path_len = (size_t)(end - p);
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
    return robots_cache_disallows_at(c, origin, path, plen);
}

int robots_cache_disallows_at(struct robots_cache *c, const char *origin, const char *path,
                              size_t plen)
{
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
