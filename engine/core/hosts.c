/* hosts.c - per-host figures from the queue's groups (hosts.h). */
#include "core/hosts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pass {
    double now;
    const struct hosts_named *named;
    struct host_row *rows; /* named ones first, at their index */
    int nnamed;
    struct host_row top[HOSTS_NAMED]; /* the busiest not named, most started first */
    int ntop;
    struct host_row other;
    size_t ngroups;
};

static void fill(struct host_row *r, const struct queue_group_info *g, double now)
{
    size_t n = g->name_len < QUEUE_GROUP_MAX ? g->name_len : QUEUE_GROUP_MAX;
    memcpy(r->name, g->name, n);
    r->name[n] = 0;
    r->started = g->started;
    r->inflight = g->inflight;
    r->waiting = g->ready + g->delayed;
    r->delay = g->delay;
    double wait = g->next_start - now;
    r->paused = wait > g->delay ? wait : 0; /* longer than its gap: a pause */
}

static void add(struct host_row *into, const struct host_row *r)
{
    into->started += r->started;
    into->inflight += r->inflight;
    into->waiting += r->waiting;
}

/* Keeps p->top the busiest HOSTS_NAMED seen, most started first; what
 * falls off goes to other. */
static void offer(struct pass *p, const struct host_row *r)
{
    int i = p->ntop;
    if (i == HOSTS_NAMED) {
        if (r->started <= p->top[HOSTS_NAMED - 1].started) {
            add(&p->other, r);
            return;
        }
        add(&p->other, &p->top[HOSTS_NAMED - 1]);
        i--;
    } else {
        p->ntop++;
    }
    while (i > 0 && p->top[i - 1].started < r->started) {
        p->top[i] = p->top[i - 1];
        i--;
    }
    p->top[i] = *r;
}

static void visit(void *arg, const struct queue_group_info *g)
{
    struct pass *p = arg;
    p->ngroups++;
    struct host_row r;
    fill(&r, g, p->now);
    for (int i = 0; p->named && i < p->named->n; i++) {
        if (strcmp(p->named->names[i], r.name) == 0) {
            if (i < p->nnamed)
                p->rows[i] = r;
            else
                add(&p->other, &r); /* named, but past the caller's max rows */
            return;
        }
    }
    /* a host that started nothing is not named: a sticky series for it
     * could keep a busy host that comes later out */
    if (p->named && r.started == 0)
        add(&p->other, &r);
    else
        offer(p, &r);
}

int hosts_collect(queue *q, double now, struct hosts_named *named, struct host_row *rows,
                  int max, struct host_row *other, size_t *ngroups)
{
    struct pass *p = calloc(1, sizeof *p);
    if (!p) {
        memset(other, 0, sizeof *other);
        *ngroups = 0;
        return 0;
    }
    p->now = now;
    p->named = named;
    p->rows = rows;
    int n = named ? (named->n < max ? named->n : max) : 0;
    p->nnamed = n;
    for (int i = 0; i < n; i++) {
        memset(&rows[i], 0, sizeof rows[i]); /* a named host always has its row */
        snprintf(rows[i].name, sizeof rows[i].name, "%s", named->names[i]);
    }
    queue_each_group(q, visit, p);
    /* the busiest of the rest: promoted while there is room */
    int t = 0;
    for (; t < p->ntop && n < max && (!named || named->n < HOSTS_NAMED); t++) {
        rows[n++] = p->top[t];
        if (named)
            snprintf(named->names[named->n++], sizeof named->names[0], "%s", p->top[t].name);
    }
    for (; t < p->ntop; t++)
        add(&p->other, &p->top[t]);
    *other = p->other;
    snprintf(other->name, sizeof other->name, "%s", HOSTS_OTHER);
    *ngroups = p->ngroups;
    free(p);
    return n;
}
