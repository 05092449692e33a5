/* scope.c - which url jobs a crawl accepts (scope.h). */
#include "core/scope.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

struct scope *scope_new(const struct config *cfg, char *err, size_t errlen)
{
    struct scope *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->max_depth = cfg->max_depth;
    s->max_pages = cfg->max_pages;
    if (cfg->allowed_domains && *cfg->allowed_domains) {
        /* lower case, spaces gone, a leading dot dropped: ".example.com" */
        s->domains = malloc(strlen(cfg->allowed_domains) + 1);
        if (!s->domains) {
            snprintf(err, errlen, "out of memory");
            scope_free(s);
            return NULL;
        }
        char *o = s->domains;
        int start = 1;
        for (const char *p = cfg->allowed_domains; *p; p++) {
            if (*p == ' ' || (*p == '.' && start))
                continue;
            *o++ = *p >= 'A' && *p <= 'Z' ? (char)(*p + 32) : *p;
            start = *p == ',';
        }
        *o = 0;
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
    for (const char *d = domains; *d;) {
        size_t n = strcspn(d, ",");
        if (n && n <= len && strncasecmp(host + len - n, d, n) == 0 &&
            (n == len || host[len - n - 1] == '.'))
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
        /* the host, without the port */
        const char *colon = n && group[0] != '[' ? memchr(group, ':', n) : NULL;
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
