/* scope.h - which url jobs a crawl accepts: --max-depth, --max-pages,
 * --allowed-domains, --include, --exclude.
 *
 * Asked by every push of a job with a url field (lua_host.c), whichever
 * script pushes it, so a crawl cannot wander off because a script forgot a
 * check. A job out of scope is dropped, never queued, and counted by its
 * reason. Depth is the number of pushes between a job and the one
 * produce() pushed (0): the engine carries it in the queue with each job.
 *
 * Thread safety: read-only after scope_new but for the page count, an
 * atomic; any worker may call. */
#ifndef SHOAL_SCOPE_H
#define SHOAL_SCOPE_H

#include <stdatomic.h>
#include <stddef.h>

#include "core/config.h"

enum scope_reason {
    SCOPE_OK,
    SCOPE_DEPTH,     /* deeper than --max-depth */
    SCOPE_DOMAIN,    /* host outside --allowed-domains */
    SCOPE_INCLUDE,   /* does not match --include */
    SCOPE_EXCLUDE,   /* matches --exclude */
    SCOPE_MAX_PAGES, /* --max-pages url jobs were accepted already */
    SCOPE_ROBOTS,    /* robots.txt, already read, disallows it (lua_host.c asks) */
    SCOPE_NREASONS
};

struct scope;

/* NULL with a message in err on a bad regex, an --allowed-domains entry
 * that is no host name (or a list of none), or out of memory. Always made,
 * even with nothing to check (scope_check is then a few compares).
 * --allowed-domains may name IDN hosts (compared as A-labels) and IPv6
 * literals in brackets. */
struct scope *scope_new(const struct config *cfg, char *err, size_t errlen);
void scope_free(struct scope *s);

/* Is a job with this url at this depth in scope? SCOPE_OK claims one of
 * --max-pages: give it back with scope_unclaim if the push then fails
 * (a duplicate key). */
enum scope_reason scope_check(struct scope *s, const char *url, size_t len, int depth);
void scope_unclaim(struct scope *s);

/* -1 with the compiler's reason (naming flag) if text is no POSIX extended
 * regex: --include and --exclude are checked when parsed. */
int scope_regex_check(const char *text, const char *flag, char *err, size_t errlen);

/* "depth", "domain", ...: the reason's label value. */
const char *scope_reason_name(enum scope_reason r);

/* 1 when the host (as polite_group writes it, without the port) is one of
 * the domains or under one ("a.example.com" is under "example.com"; an IP
 * address is under nothing); domains is comma-separated. */
int scope_domain_allowed(const char *domains, const char *host, size_t len);

#endif
