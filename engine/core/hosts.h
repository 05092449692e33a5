/* hosts.h - per-host figures for /metrics and the summary, read from the
 * queue's groups (a job's group is its url's host unless the script names
 * another).
 *
 * A crawl may meet a million hosts; a metric may not have a million
 * series. So the figures name at most HOSTS_NAMED hosts and sum the rest
 * into one row, "__other__". For /metrics the named set is sticky: a host
 * that was among the busiest at some scrape keeps its series (a counter
 * does not jump between series), up to HOSTS_NAMED of them. */
#ifndef SHOAL_HOSTS_H
#define SHOAL_HOSTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/queue.h"

#define HOSTS_TOP 10   /* rows of the summary */
#define HOSTS_NAMED 20 /* hosts with series of their own in /metrics */
#define HOSTS_OTHER "__other__"

struct host_row {
    char name[QUEUE_GROUP_MAX + 1];
    uint64_t started; /* jobs started, ever */
    size_t inflight, waiting; /* now: running; ready or delayed */
    double delay;     /* its gap between starts now (Crawl-delay, autothrottle) */
    double paused;    /* seconds until it may start again (a 429's pause), 0 if open */
};

/* The named hosts, kept between calls by the caller. A host is named once
 * it has started a job: one that has not yet could hold a series for the
 * run that a busy host coming later needs. A named host past the rows
 * hosts_collect is given counts in __other__. */
struct hosts_named {
    char names[HOSTS_NAMED][QUEUE_GROUP_MAX + 1];
    int n;
};

/* Fills rows[0 .. return) with the named hosts (promoting the busiest ones
 * not yet named while there is room) and *other
 * with the sum of the rest; *ngroups is how many groups there are. With
 * named NULL, rows are simply the busiest max hosts, most started first. */
int hosts_collect(queue *q, double now, struct hosts_named *named, struct host_row *rows,
                  int max, struct host_row *other, size_t *ngroups);

#endif
