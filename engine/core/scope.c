/* scope.c - which url jobs a crawl accepts (scope.h). */
#include "core/scope.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/url.h"
#include "core/polite.h"
#include "core/stats.h"

_Static_assert(SCOPE_NREASONS == STATS_SCOPE_REASONS, "stats.h counts every scope reason");

struct scope {
    int max_depth;     /* -1: none */
    long max_pages;    /* 0: none */
    _Atomic long pages; /* url jobs accepted */
    char *domains;     /* lower case, comma-separated, or NULL */
    regex_t include, exclude;
    int has_include, has_exclude;
};

static int compile(regex_t *re, const char *text, const char *flag, char *err, size_t errlen)
{
    int rc = regcomp(re, text, REG_EXTENDED | REG_NOSUB);
    if (rc == 0)
        return 0;
    char why[160];
    regerror(rc, re, why, sizeof why);
    snprintf(err, errlen, "%s: '%s' is not a POSIX extended regex: %s", flag, text, why);
    return -1;
}

int scope_regex_check(const char *text, const char *flag, char *err, size_t errlen)
{
    regex_t re;
    if (compile(&re, text, flag, err, errlen) != 0)
        return -1;
    regfree(&re);
    return 0;
}

/* The --allowed-domains list as scope_check compares it: each host in
 * the form polite_group writes it (lower case, an IDN as its A-label, an
 * IPv6 literal in brackets), a leading dot and spaces dropped, joined by
 * commas. NULL with err on a name that is no host or a list of none. */
static char *domains_of(const char *list, char *err, size_t errlen)
{
    size_t cap = 1, len = 0;
    char *out = calloc(1, cap);
    for (const char *p = list; out && *p;) {
        size_t n = strcspn(p, ",");
        const char *d = p, *end = p + n;
        p = *end ? end + 1 : end;
        while (d < end && *d == ' ')
            d++;
        while (end > d && end[-1] == ' ')
            end--;
        if (d < end && *d == '.')
            d++;
        if (d == end)
            continue;
        struct url_authority_parts ap;
        char why[URL_ERR_MAX] = "";
        long hn = -1;
        /* no userinfo, and no port, not even an empty one ("host:") */
        if (url_parse_authority(d, (size_t)(end - d), &ap, why) == 0 && !ap.userinfo.p &&
            (ap.ipv6 ? end[-1] == ']' : !memchr(d, ':', (size_t)(end - d)))) {
            size_t need = len + url_host_size(&ap) + 3;
            char *o = need > cap ? realloc(out, need) : out;
            if (!o) {
                free(out);
                out = NULL;
                break;
            }
            out = o;
            cap = need > cap ? need : cap;
            if (len)
                out[len++] = ',';
            if (ap.ipv6)
                out[len++] = '[';
            hn = url_host(&ap, out + len, cap - len, why);
            if (hn > 0) {
                len += (size_t)hn;
                if (ap.ipv6)
                    out[len++] = ']';
                out[len] = 0;
                continue;
            }
        }
        snprintf(err, errlen,
                 "--allowed-domains: '%.*s' is not a host name%s%s (give host names, "
                 "comma-separated, without scheme, port or path)",
                 (int)(end - d), d, *why ? ": " : "", why);
        free(out);
        return NULL;
    }
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (len == 0) {
        snprintf(err, errlen,
                 "--allowed-domains: '%s' names no domain (give host names, "
                 "comma-separated)",
                 list);
        free(out);
        return NULL;
    }
    return out;
}

struct scope *scope_new(const struct config *cfg, char *err, size_t errlen)
{
    struct scope *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->max_depth = cfg->max_depth;
    s->max_pages = cfg->max_pages;
    if (cfg->allowed_domains && *cfg->allowed_domains &&
        !(s->domains = domains_of(cfg->allowed_domains, err, errlen))) {
        scope_free(s);
        return NULL;
    }
    if (cfg->include && *cfg->include) {
        if (compile(&s->include, cfg->include, "--include", err, errlen) != 0) {
            scope_free(s);
            return NULL;
        }
        s->has_include = 1;
    }
    if (cfg->exclude && *cfg->exclude) {
        if (compile(&s->exclude, cfg->exclude, "--exclude", err, errlen) != 0) {
            scope_free(s);
            return NULL;
        }
        s->has_exclude = 1;
    }
    return s;
}

void scope_free(struct scope *s)
{
    if (!s)
        return;
    if (s->has_include)
        regfree(&s->include);
    if (s->has_exclude)
        regfree(&s->exclude);
    free(s->domains);
    free(s);
}

int scope_domain_allowed(const char *domains, const char *host, size_t len)
{
    /* an IP address has no subdomains: "0.1" is not a domain of 10.0.0.1
     * (no top-level domain is all digits) */
    int ip = len > 0 && (host[0] == '[' || (host[len - 1] >= '0' && host[len - 1] <= '9'));
    for (const char *d = domains; *d;) {
        size_t n = strcspn(d, ",");
        if (n && n <= len && strncasecmp(host + len - n, d, n) == 0 &&
            (n == len || (!ip && host[len - n - 1] == '.')))
            return 1;
        d += n + (d[n] == ',');
    }
    return 0;
}

/* regexec wants a C string: url is one unless a caller cut it short. */
static int matches(const regex_t *re, const char *url, size_t len)
{
    if (url[len] == 0)
        return regexec(re, url, 0, NULL, 0) == 0;
    char *copy = strndup(url, len);
    int m = copy && regexec(re, copy, 0, NULL, 0) == 0;
    free(copy);
    return m;
}

enum scope_reason scope_check(struct scope *s, const char *url, size_t len, int depth)
{
    if (s->max_depth >= 0 && depth > s->max_depth)
        return SCOPE_DEPTH;
    if (s->domains) {
        char group[POLITE_GROUP_MAX];
        size_t n = polite_group(url, group);
        /* the host, without the port (after an IPv6 literal's "]") */
        const char *host_end = n && group[0] == '[' ? memchr(group, ']', n) : group;
        const char *colon = host_end ? memchr(host_end, ':', n - (size_t)(host_end - group)) : NULL;
        if (colon)
            n = (size_t)(colon - group);
        if (!n || !scope_domain_allowed(s->domains, group, n))
            return SCOPE_DOMAIN;
    }
    if (s->has_include && !matches(&s->include, url, len))
        return SCOPE_INCLUDE;
    if (s->has_exclude && matches(&s->exclude, url, len))
        return SCOPE_EXCLUDE;
    if (s->max_pages) {
        if (atomic_fetch_add(&s->pages, 1) >= s->max_pages) {
            atomic_fetch_sub(&s->pages, 1);
            return SCOPE_MAX_PAGES;
        }
    }
    return SCOPE_OK;
}

void scope_unclaim(struct scope *s)
{
    if (s->max_pages)
        atomic_fetch_sub(&s->pages, 1);
}

const char *scope_reason_name(enum scope_reason r)
{
    static const char *const names[SCOPE_NREASONS] = {
        "ok", "depth", "domain", "include", "exclude", "max-pages", "robots"};
    return r < SCOPE_NREASONS ? names[r] : "?";
}
