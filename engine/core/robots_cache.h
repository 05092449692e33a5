/* robots_cache.h - the run's robots.txt files, one per origin, shared by
 * every worker of the process.
 *
 * Before a request, a worker asks robots_cache_check about its URL. The
 * first to ask about an origin (scheme://host:port) is told to fetch its
 * robots.txt (ROBOTS_FETCH) and hands the answer to robots_cache_store;
 * whoever asks meanwhile waits (ROBOTS_WAIT) until the generation
 * (robots_cache_gen) moves, then asks again. What an answer means follows
 * RFC 9309: 2xx, the rules it holds (for the agent's group); 4xx (or more
 * redirects than allowed), everything allowed; 5xx or no answer,
 * everything disallowed until a later fetch succeeds: the cache says
 * ROBOTS_UNAVAILABLE until a retry time (10 s, doubling to an hour),
 * and the next ask after it fetches again. Rules are kept for a day, then
 * fetched again while the old ones keep answering.
 *
 * Thread safety: one mutex around a hash table of origins; matching a path
 * runs under it (robots_allowed is a short scan). */
#ifndef SHOAL_ROBOTS_CACHE_H
#define SHOAL_ROBOTS_CACHE_H

#include <stddef.h>

#define ROBOTS_TTL 86400.0     /* seconds a robots.txt is trusted */
#define ROBOTS_RETRY_MIN 10.0  /* first wait after a 5xx or no answer */
#define ROBOTS_RETRY_MAX 3600.0
#define ROBOTS_ORIGIN_MAX 300 /* "https://" + a host of 253 + ":65535" */

enum robots_verdict {
    ROBOTS_ALLOW,
    ROBOTS_DISALLOW,
    ROBOTS_FETCH,       /* fetch <origin>/robots.txt, then robots_cache_store */
    ROBOTS_WAIT,        /* another request is fetching it: ask again when the gen moves */
    ROBOTS_UNAVAILABLE, /* it could not be had; ask again after *until */
};

struct robots_cache;

/* agent: the User-Agent (its first word picks the robots.txt group). NULL
 * when out of memory. */
struct robots_cache *robots_cache_new(const char *agent);
void robots_cache_free(struct robots_cache *c);

/* Splits an absolute http(s) URL into its origin ("http://host:port", host
 * lower case, the port always written) and its path with query ("/" when
 * empty). Returns 0, or -1 if url is not an absolute http(s) URL with a
 * host base/url.h takes (IDN hosts become A-labels). */
int robots_origin(const char *url, char origin[ROBOTS_ORIGIN_MAX], const char **path,
                  size_t *path_len);

/* The verdict on url at now. ROBOTS_UNAVAILABLE sets *until (monotonic
 * seconds) and why (what the last fetch got). A URL robots_origin cannot
 * split is allowed (curl will say what is wrong with it). */
enum robots_verdict robots_cache_check(struct robots_cache *c, const char *url, double now,
                                       double *until, char *why, size_t whylen);

/* 1 when url's robots.txt has been read and disallows it; 0 when it
 * allows it or is not known yet (nothing is fetched). For pushes: a link
 * robots.txt rules out is never queued. */
int robots_cache_disallows(struct robots_cache *c, const char *url);
/* The same for a URL robots_origin has split already. */
int robots_cache_disallows_at(struct robots_cache *c, const char *origin, const char *path,
                              size_t plen);

/* The answer to the fetch ROBOTS_FETCH asked for: status (0: no answer,
 * error: why), the body. Returns the file's Crawl-delay in seconds, or -1
 * for none. */
double robots_cache_store(struct robots_cache *c, const char *origin, long status,
                          const char *error, const char *body, size_t len, double now);
/* The fetch was given up (its job timed out or the run stops): the next
 * ask fetches again. */
void robots_cache_abandon(struct robots_cache *c, const char *origin);

/* Moves at every store and abandon: waiters ask again when it does. */
unsigned robots_cache_gen(const struct robots_cache *c);

#endif
