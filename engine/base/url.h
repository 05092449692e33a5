/* url.h - URLs as a crawl needs them: split (RFC 3986 appendix B),
 * resolve a reference against a base (section 5.2), and the canonical form
 * of an http(s) URL that a crawl deduplicates on, with two options (sort
 * the query, strip tracking parameters); the authority a URL is grouped by
 * (politeness is per host and port); its path and query (what robots.txt
 * rules match). Hosts with non-ASCII bytes become their IDNA A-labels
 * (punycode) through libidn2.
 *
 * Pure functions, any thread. Results go into the caller's buffer: each
 * function returns the length it wrote (no NUL is added), URL_ERROR with a
 * message in err (URL_ERR_MAX bytes, NUL-terminated, naming the URL), or
 * URL_NOSPACE when out was too small, in which case out holds nothing
 * useful; a buffer of the matching _size() bytes never is. Nothing is
 * allocated on the way a crawl's links take, with two exceptions: libidn2
 * allocates for a host that is not ASCII, and the query options take heap
 * for a query of over 2 KiB or 64 parameters (failing with URL_ERROR,
 * "out of memory", if there is none). */
#ifndef SHOAL_URL_H
#define SHOAL_URL_H

#include <stddef.h>

#define URL_ERROR (-1)
#define URL_NOSPACE (-2)
#define URL_ERR_MAX 256

/* url_normalize's flags */
enum {
    URL_SORT_QUERY = 1,     /* query parameters in order of name (a stable sort) */
    URL_STRIP_TRACKING = 2, /* drop utm_* and the click ids of url.c's list */
};

/* One component of a URL: p is NULL when the component is absent, which
 * differs from empty ("http://a/?" has an empty query, "http://a/" none). */
struct url_part {
    const char *p;
    size_t n;
};

/* The five components of RFC 3986 appendix B, pointing into the string
 * split. path is never absent (n may be 0). A scheme is only recognised
 * when it is well-formed (a letter, then letters, digits, "+", "-", ".");
 * otherwise the whole reference is relative. */
struct url_split {
    struct url_part scheme, authority, path, query, fragment;
};

void url_split(const char *s, size_t n, struct url_split *u);

/* The target of reference ref read against base (RFC 3986 section 5.2.2,
 * strict: a reference with a scheme is absolute), dot segments removed,
 * the reference's fragment kept; nothing else is changed (see
 * url_normalize). base may be NULL: then only a reference with a scheme
 * resolves. Fails when base (if given) has no scheme, or when there is no
 * base and ref has none either. */
long url_resolve(const char *base, size_t bn, const char *ref, size_t rn, char *out, size_t cap,
                 char *err);
size_t url_resolve_size(size_t bn, size_t rn);

/* The canonical form of an absolute http(s) URL: scheme and host in lower
 * case, a non-ASCII host as its A-label, the default port dropped, an
 * empty path made "/", dot segments removed, escapes of unreserved
 * characters decoded and the others in upper-case hex, bytes a URL may
 * not hold (controls, space, non-ASCII, "<>\"{}|\\^`", a "%" that starts
 * no escape) encoded, the fragment dropped; flags (URL_SORT_QUERY,
 * URL_STRIP_TRACKING) rework the query. Idempotent. Fails on another
 * scheme, a relative URL, no host, a bad port or host. */
long url_normalize(const char *s, size_t n, unsigned flags, char *out, size_t cap, char *err);
size_t url_normalize_size(size_t n);

/* url_normalize(url_resolve(base, ref)) in one step, as a crawl reads the
 * links of a page (base may be NULL as for url_resolve). It uses the end
 * of out as scratch: give it url_link_size() bytes; with fewer it may
 * return URL_NOSPACE even for a result that would have fit. */
long url_link(const char *base, size_t bn, const char *ref, size_t rn, unsigned flags, char *out,
              size_t cap, char *err);
size_t url_link_size(size_t bn, size_t rn);

/* A base URL read once for the many links of a page: url_link_from then
 * splits only the reference, and a link on the base's origin takes its
 * canonical origin as it is. s is not copied: it must outlive b. A base
 * that is NULL or has no scheme counts as none. */
#define URL_ORIGIN_MAX 512
struct url_base {
    const char *s; /* NULL: no base */
    size_t n;
    struct url_split split;
    size_t origin_n; /* 0: none (not http(s), a bad host, too long): the long way */
    char origin[URL_ORIGIN_MAX];
};
void url_base_init(struct url_base *b, const char *s, size_t n);
/* url_link against b; out as for url_link, url_link_size(b->n, rn) bytes. */
long url_link_from(const struct url_base *b, const char *ref, size_t rn, unsigned flags, char *out,
                   size_t cap, char *err);

/* The key a crawl groups a URL's jobs by: its host as url_normalize writes
 * it, plus ":port" when the URL names a port that is not its scheme's
 * default ("example.com", "127.0.0.1:8080", "[::1]:8443"). Any scheme
 * with an authority; fails when there is no host. */
long url_authority(const char *s, size_t n, char *out, size_t cap, char *err);
size_t url_authority_size(size_t n);

/* The parts of an authority, as url_split gave it. host is the host as
 * written (without an IPv6 literal's brackets); port is -1 when absent
 * (or empty); userinfo is absent when there is no "@". */
struct url_authority_parts {
    struct url_part userinfo, host;
    long port;
    int ipv6;
};
/* 0, or URL_ERROR with a message in err. */
int url_parse_authority(const char *a, size_t n, struct url_authority_parts *ap, char *err);
/* The host of ap in canonical form (lower case; A-label when it is not
 * ASCII; an IPv6 literal without brackets), into out as above. */
long url_host(const struct url_authority_parts *ap, char *out, size_t cap, char *err);
size_t url_host_size(const struct url_authority_parts *ap);

/* The path and query of s ("/" for an empty path), canonical as in
 * url_normalize without flags: what a robots.txt rule is matched against.
 * s may be any reference; only its path and query are read. */
long url_path_query(const char *s, size_t n, char *out, size_t cap);
size_t url_path_query_size(size_t n);

#endif
