/* polite.c - pauses and delays of groups from what hosts answer (polite.h). */
#include "core/polite.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strtab.h"
#include "core/robots_cache.h"

struct group_state {
    int fails;       /* failed answers in a row */
    int busy;        /* 429/503 answers in a row */
    double floor;    /* the least delay: --delay, or the Crawl-delay if longer */
    double throttle; /* autothrottle's delay; 0 until its first answer */
};

struct polite {
    struct polite_config cfg;
    queue *q;
    pthread_mutex_t mu;
    struct strtab groups; /* -> struct group_state */
};

struct polite *polite_new(const struct polite_config *cfg, queue *q)
{
    struct polite *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (strtab_init(&p->groups, sizeof(struct group_state)) != 0) {
        free(p);
        return NULL;
    }
    p->cfg = *cfg;
    p->q = q;
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void polite_free(struct polite *p)
{
    if (!p)
        return;
    strtab_free(&p->groups, NULL);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

size_t polite_group_of_origin(const char *origin, char out[POLITE_GROUP_MAX])
{
    int https = origin[4] == 's';
    const char *host = origin + (https ? 8 : 7);
    size_t n = strlen(host);
    const char *def = https ? ":443" : ":80";
    size_t dlen = strlen(def);
    if (n > dlen && strcmp(host + n - dlen, def) == 0)
        n -= dlen;
    if (n > QUEUE_GROUP_MAX) /* a 256th byte would fit out, not the queue */
        return 0;
    memcpy(out, host, n);
    out[n] = 0;
    return n;
}

size_t polite_group(const char *url, char out[POLITE_GROUP_MAX])
{
    char origin[ROBOTS_ORIGIN_MAX];
    const char *path;
    size_t plen;
    if (robots_origin(url, origin, &path, &plen) != 0)
        return 0;
    return polite_group_of_origin(origin, out);
}

/* group's state, new ones with the run's floor; under the lock. */
static struct group_state *state_of(struct polite *p, const char *group, size_t len)
{
    struct group_state *g = strtab_get(&p->groups, group, len, 1);
    if (g && g->floor == 0)
        g->floor = p->cfg.delay;
    return g;
}

/* 1 s, 2 s, 4 s ... for the n-th bad answer in a row, at most the cap. */
static double doubling(int n)
{
    double t = 1;
    for (int i = 1; i < n && t < POLITE_MAX_PAUSE; i++)
        t *= 2;
    return t < POLITE_MAX_PAUSE ? t : POLITE_MAX_PAUSE;
}

/* The autothrottle step: halfway towards latency / target, at least that
 * target, at most 60 s, never under the floor (which may be longer); an
 * error answer never shortens it. */
static double throttle_step(const struct polite *p, const struct group_state *g, int good,
                            double elapsed)
{
    double cur = g->throttle > 0 ? g->throttle : (g->floor > 1 ? g->floor : 1);
    double target = elapsed / p->cfg.target;
    double next = (cur + target) / 2;
    if (next < target)
        next = target;
    if (next > POLITE_MAX_PAUSE)
        next = POLITE_MAX_PAUSE;
    if (next < g->floor)
        next = g->floor; /* after the cap: a Crawl-delay over a minute holds */
    if (!good && next < cur)
        next = cur;
    return next;
}

double polite_answer(struct polite *p, const char *group, size_t len, const char *url,
                     long status, double retry_after, double elapsed, double now)
{
    char own[POLITE_GROUP_MAX];
    if (len == 0) {
        len = polite_group(url, own);
        group = own;
        if (len == 0)
            return 0;
    }
    int busy = status == 429 || status == 503;
    int failed = status == 0; /* a 500 is a page's trouble; no answer, the host's */
    double pause = 0, delay = -1;
    pthread_mutex_lock(&p->mu);
    struct group_state *g = state_of(p, group, len);
    if (g) {
        g->busy = busy ? g->busy + 1 : 0;
        g->fails = failed ? g->fails + 1 : 0;
        if (busy)
            pause = retry_after > 0 ? retry_after : doubling(g->busy);
        else if (g->fails >= POLITE_FAILS)
            pause = doubling(g->fails - POLITE_FAILS + 1);
        if (pause > POLITE_RETRY_AFTER_MAX)
            pause = POLITE_RETRY_AFTER_MAX;
        if (p->cfg.autothrottle && status != 0) {
            double next = throttle_step(p, g, status >= 200 && status < 300, elapsed);
            if (next != g->throttle)
                delay = g->throttle = next;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (pause > 0)
        queue_group_pause(p->q, group, len, now + pause);
    if (delay >= 0)
        queue_group_tune(p->q, group, len, delay, -1);
    return pause;
}

void polite_robots_fetched(struct polite *p, const char *origin, double crawl_delay, double now)
{
    if (crawl_delay <= p->cfg.delay)
        return;
    char group[POLITE_GROUP_MAX];
    size_t len = polite_group_of_origin(origin, group);
    if (len == 0)
        return;
    double delay = crawl_delay;
    pthread_mutex_lock(&p->mu);
    struct group_state *g = state_of(p, group, len);
    if (g) {
        g->floor = crawl_delay;
        if (g->throttle > delay)
            delay = g->throttle;
        else if (g->throttle)
            g->throttle = delay;
    }
    pthread_mutex_unlock(&p->mu);
    queue_group_tune(p->q, group, len, delay, -1);
    /* the request that waited for the file goes out now: the next start
     * of its host is a delay after it */
    queue_group_pause(p->q, group, len, now + delay);
}

void polite_robots_unavailable(struct polite *p, const char *url, double until)
{
    char group[POLITE_GROUP_MAX];
    size_t len = polite_group(url, group);
    if (len)
        queue_group_pause(p->q, group, len, until);
}
