/* robots.h - robots.txt as RFC 9309 reads it: parsed once per host, then
 * asked about each URL before it is fetched.
 *
 * robots_parse keeps only what concerns one crawler: the rules of every
 * group whose user-agent line names its product token (case-insensitive),
 * merged, or else those of the "*" groups, or else none (all allowed). A
 * URL's path (with its query) is allowed when no rule matches it; else the
 * most specific match decides (the pattern with the most octets), and an
 * allow wins a tie. Patterns match from the start of the path, `*` matches
 * any run of octets, and a final `$` anchors at the path's end. Both sides
 * are compared with percent-encoding made canonical first: %XX of an
 * unreserved character decoded, other %xx upper-cased, octets outside
 * ASCII encoded. /robots.txt itself is always allowed. Crawl-delay (not in
 * the RFC, but widely written) comes from the chosen groups; Sitemap lines
 * are the file's, wherever they stand. Only the first ROBOTS_MAX_BYTES of
 * a file are read (the RFC asks for at least 500 KiB).
 *
 * Pure: no I/O, no locks. A parsed robots is read-only: any thread may ask
 * it. */
#ifndef SHOAL_ROBOTS_H
#define SHOAL_ROBOTS_H

#include <stddef.h>

#define ROBOTS_MAX_BYTES (512u * 1024u)

struct robots;

/* agent: the crawler's product token ("shoal"), or a full User-Agent
 * header value, whose token (up to the first character outside letters,
 * '_' and '-') is used. NULL only when out of memory. */
struct robots *robots_parse(const char *body, size_t len, const char *agent);
/* What RFC 9309 says to assume when the file cannot be had: an answer of
 * 4xx allows everything; 5xx or no answer at all disallows everything
 * until a later fetch succeeds. NULL only when out of memory. */
struct robots *robots_allow_all(void);
struct robots *robots_disallow_all(void);
void robots_free(struct robots *r);

/* 1 when path (len bytes, from the '/' after the host: "/a/b?q=1") may be
 * fetched, 0 when a rule disallows it. */
int robots_allowed(const struct robots *r, const char *path, size_t len);
/* The Crawl-delay of the chosen groups, in seconds; -1 when none is given. */
double robots_crawl_delay(const struct robots *r);
/* The file's Sitemap URLs, in order. */
int robots_nsitemaps(const struct robots *r);
const char *robots_sitemap(const struct robots *r, int i);

/* The matching itself, for the tests: 1 when pattern (canonical, with `*`
 * and an optional final `$`) matches path (canonical) from its start. */
int robots_match(const char *pattern, size_t plen, const char *path, size_t len);
/* The canonical percent-encoding of s into out (at most 3 * n + 1 bytes,
 * NUL-terminated); returns its length. */
size_t robots_canonical(const char *s, size_t n, char *out);

#endif
