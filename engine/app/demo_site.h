/* demo_site.h - a deterministic synthetic site for `shoal demo` and tests.
 *
 * Pages link to each other; a few are slow, some links lead to 404s and
 * some pages answer 500. The same build always serves the same site, so tests
 * know exactly what a full crawl must find. Handlers are pure functions of
 * the path: safe on any thread. */
#ifndef SHOAL_DEMO_SITE_H
#define SHOAL_DEMO_SITE_H

#include "net/httpd.h"

struct demo_site_facts {
    int pages;        /* distinct 200 pages reachable from /demo/ (index included) */
    int not_found;    /* distinct reachable URLs that answer 404 */
    int errors;       /* distinct reachable URLs that answer 500 */
    int slow;         /* reachable 200 pages that answer after a delay */
    unsigned slow_ms; /* that delay */
};

/* Registers the site under /demo/ on h. Returns 0 or -1. */
int demo_site_register(httpd *h);

/* What a complete crawl from /demo/ must find. */
void demo_site_facts(struct demo_site_facts *out);

#endif
