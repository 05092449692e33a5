/* polite.h - what the engine does with what hosts answer: the pauses and
 * delays of their groups in the queue (core/queue.h).
 *
 * A job's group is its politeness unit: by default its url's host and port
 * (polite_group). The queue enforces each group's limits at take; this
 * module sets them from the answers:
 *
 * - 429 Too Many Requests or 503 Service Unavailable: the group pauses for
 *   the answer's Retry-After (seconds or an HTTP date), or, without one,
 *   for 1 s doubling with each such answer in a row (at most 60 s).
 * - Failing repeatedly (no answer at all: refused, reset, timed out;
 *   POLITE_FAILS in a row): the group pauses likewise, 1 s doubling, until
 *   an answer comes again. A 500 is one page's trouble, not the host's.
 * - robots.txt's Crawl-delay raises the group's delay (never lowers it
 *   under --delay); a robots.txt that cannot be had pauses the group until
 *   it is asked for again.
 * - --autothrottle: after each answer the group's delay moves halfway
 *   towards latency / target (the idea of Scrapy's AutoThrottle), never
 *   under --delay or the Crawl-delay, never over 60 s unless the
 *   Crawl-delay is longer, and an error answer never shortens it.
 *
 * The state per group (answers in a row, the autothrottle delay) is this
 * process's; the pauses and delays it sets live in the queue's backend,
 * so a shared backend holds them for every process. Thread safety: one
 * mutex around a table of groups; any worker thread may call. */
#ifndef SHOAL_POLITE_H
#define SHOAL_POLITE_H

#include <stddef.h>

#include "core/queue.h"

#define POLITE_FAILS 5          /* requests in a row with no answer that pause a group */
#define POLITE_MAX_PAUSE 60.0   /* longest pause it chooses itself (Retry-After may be longer) */
#define POLITE_RETRY_AFTER_MAX 3600.0 /* a longer Retry-After is cut to this */
#define POLITE_GROUP_MAX (QUEUE_GROUP_MAX + 1) /* a group and its NUL */

struct polite;

struct polite_config {
    double delay;        /* --delay: the least gap of every group */
    int autothrottle;    /* --autothrottle */
    double target;       /* --autothrottle-target */
};

/* NULL when out of memory. */
struct polite *polite_new(const struct polite_config *cfg, queue *q);
void polite_free(struct polite *p);

/* The default group of a url: its host, lower case, with ":port" when the
 * port is not the scheme's default ("example.com", "127.0.0.1:8080"),
 * NUL-terminated. Returns its length, or 0 if url is no absolute http(s)
 * URL or its group would be longer than QUEUE_GROUP_MAX. */
size_t polite_group(const char *url, char out[POLITE_GROUP_MAX]);
/* The same from the origin robots_origin split off a URL ("http://h:80"):
 * for a caller that has split it already. */
size_t polite_group_of_origin(const char *origin, char out[POLITE_GROUP_MAX]);

/* An answer to a request of a job in group (len 0: the group of url):
 * status (0: none came), Retry-After in seconds (0: none), the request's
 * seconds. Returns the pause it set, in seconds (0: none). */
double polite_answer(struct polite *p, const char *group, size_t len, const char *url,
                     long status, double retry_after, double elapsed, double now);

/* robots.txt of origin ("http://h:80") came in with this Crawl-delay (-1:
 * none): the host's delay and a pause of one delay from now. */
void polite_robots_fetched(struct polite *p, const char *origin, double crawl_delay, double now);
/* robots.txt of url's origin could not be had: its group waits until. */
void polite_robots_unavailable(struct polite *p, const char *url, double until);

#endif
