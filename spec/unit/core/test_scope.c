/* test_scope.c - which url pushes a crawl accepts: --max-depth,
 * --allowed-domains (subdomains included; ports, userinfo, case, IPv6
 * literals and IDN hosts), --include and --exclude as POSIX extended
 * regexes, --max-pages claimed by each accepted push and given back by
 * scope_unclaim, also from many threads at once; and the errors a user
 * sees for a bad pattern or domain. */
#include "check.h"
#include "core/config.h"
#include "core/scope.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct scope *make(struct config *cfg)
{
    char err[512] = "";
    struct scope *s = scope_new(cfg, err, sizeof err);
    if (!s)
        fprintf(stderr, "scope_new: %s\n", err);
    CHECK(s != NULL);
    return s;
}

static enum scope_reason check(struct scope *s, const char *url, int depth)
{
    return scope_check(s, url, strlen(url), depth);
}

/* scope_new's error for cfg, "" when it makes one. */
static const char *error_of(struct config *cfg)
{
    static char err[512];
    err[0] = 0;
    struct scope *s = scope_new(cfg, err, sizeof err);
    scope_free(s);
    return s ? "" : err;
}

static void test_nothing_to_check(void)
{
    struct config cfg = {.max_depth = -1};
    struct scope *s = make(&cfg);
    CHECK_EQ_INT(check(s, "http://anything.example/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://anything.example/", 1000000), SCOPE_OK);
    CHECK_EQ_INT(check(s, "not even a url", 5), SCOPE_OK);
    CHECK_EQ_INT(check(s, "", 0), SCOPE_OK);
    scope_unclaim(s); /* no --max-pages: nothing to give back */
    scope_free(s);
    scope_free(NULL);
    /* empty strings are "not given" */
    cfg = (struct config){.max_depth = -1, .allowed_domains = "", .include = "", .exclude = ""};
    s = make(&cfg);
    CHECK_EQ_INT(check(s, "http://x.example/", 0), SCOPE_OK);
    scope_free(s);
}

static void test_depth(void)
{
    struct config cfg = {.max_depth = 2};
    struct scope *s = make(&cfg);
    CHECK_EQ_INT(check(s, "http://a.example/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://a.example/", 2), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://a.example/", 3), SCOPE_DEPTH);
    scope_free(s);
    cfg.max_depth = 0; /* only what produce() pushed */
    s = make(&cfg);
    CHECK_EQ_INT(check(s, "http://a.example/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://a.example/", 1), SCOPE_DEPTH);
    scope_free(s);
}

static void test_domains(void)
{
    struct config cfg = {.max_depth = -1,
                         .allowed_domains = " Example.COM, .other.example ,,[::1],"
                                            "b\xc3\xbc"
                                            "cher.example,127.0.0.1"};
    struct scope *s = make(&cfg);
    CHECK_EQ_INT(check(s, "http://example.com/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "https://EXAMPLE.com:8443/x", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://www.example.com/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://a.b.example.com", 0), SCOPE_OK); /* no path */
    CHECK_EQ_INT(check(s, "http://other.example/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://x.other.example:81/", 0), SCOPE_OK);
    /* a suffix that is no whole label is no subdomain */
    CHECK_EQ_INT(check(s, "http://notexample.com/", 0), SCOPE_DOMAIN);
    CHECK_EQ_INT(check(s, "http://example.com.evil.example/", 0), SCOPE_DOMAIN);
    CHECK_EQ_INT(check(s, "http://com/", 0), SCOPE_DOMAIN);
    /* userinfo is not the host */
    CHECK_EQ_INT(check(s, "http://example.com@evil.example/", 0), SCOPE_DOMAIN);
    CHECK_EQ_INT(check(s, "http://evil.example@example.com/", 0), SCOPE_OK);
    /* IPv6 literals, with a port or without */
    CHECK_EQ_INT(check(s, "http://[::1]/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://[::1]:8080/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://[::2]:8080/", 0), SCOPE_DOMAIN);
    /* an IDN domain, whichever way the URL writes its host */
    CHECK_EQ_INT(check(s,
                       "http://b\xc3\xbc"
                       "cher.example/",
                       0),
                 SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://shop.xn--bcher-kva.example/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://b%C3%BCcher.example:8000/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://bucher.example/", 0), SCOPE_DOMAIN);
    /* an IP address is itself, never a "subdomain" */
    CHECK_EQ_INT(check(s, "http://127.0.0.1:8080/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://10.127.0.0.1/", 0), SCOPE_DOMAIN);
    /* no http(s) host, no domain */
    CHECK_EQ_INT(check(s, "ftp://example.com/", 0), SCOPE_DOMAIN);
    CHECK_EQ_INT(check(s, "/relative", 0), SCOPE_DOMAIN);
    CHECK_EQ_INT(check(s, "", 0), SCOPE_DOMAIN);
    /* depth is checked first */
    scope_free(s);
    cfg.max_depth = 1;
    s = make(&cfg);
    CHECK_EQ_INT(check(s, "http://evil.example/", 2), SCOPE_DEPTH);
    scope_free(s);

    CHECK(scope_domain_allowed("example.com", "a.example.com", 13));
    CHECK(scope_domain_allowed("example.com", "EXAMPLE.COM", 11));
    CHECK(!scope_domain_allowed("example.com", "a.example.co", 12));
    CHECK(!scope_domain_allowed("0.0.1", "127.0.0.1", 9));
    CHECK(!scope_domain_allowed("", "example.com", 11));
    CHECK(!scope_domain_allowed("example.com", "", 0));
    /* the host's length counts, not its NUL */
    CHECK(scope_domain_allowed("example.com", "example.com:80", 11));

    /* a domain that is no host name says so, naming the flag */
    const char *bad[] = {"http://example.com",
                         "example.com:80",
                         "example.com/path",
                         "user@example.com",
                         "exa mple.com",
                         "[::1",
                         "::1",
                         "example.com:"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct config c = {.max_depth = -1, .allowed_domains = bad[i]};
        const char *e = error_of(&c);
        CHECK(strncmp(e, "--allowed-domains: '", 20) == 0);
        CHECK(strstr(e, "is not a host name") != NULL);
        if (!strstr(e, "is not a host name"))
            fprintf(stderr, "  for %s: %s\n", bad[i], e);
    }
    struct config none = {.max_depth = -1, .allowed_domains = " , ,"};
    CHECK(strstr(error_of(&none), "names no domain") != NULL);
    /* a very long list is taken whole */
    size_t n = 2000;
    char *list = malloc(n * 16);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(list + len, "%sd%zu.example", i ? "," : "", i);
    struct config big = {.max_depth = -1, .allowed_domains = list};
    s = make(&big);
    CHECK_EQ_INT(check(s, "http://www.d1999.example/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://d0.example/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://d2000.example/", 0), SCOPE_DOMAIN);
    scope_free(s);
    free(list);
}

static void test_patterns(void)
{
    struct config cfg = {.max_depth = -1,
                         .include = "^https?://[^/]+/(docs|blog)/",
                         .exclude = "\\.(pdf|zip)$|[?&]session="};
    struct scope *s = make(&cfg);
    CHECK_EQ_INT(check(s, "http://a.example/docs/x.html", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "https://a.example/blog/", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://a.example/shop/", 0), SCOPE_INCLUDE);
    CHECK_EQ_INT(check(s, "http://a.example/docs/a.pdf", 0), SCOPE_EXCLUDE);
    CHECK_EQ_INT(check(s, "http://a.example/docs/?a=1&session=2", 0), SCOPE_EXCLUDE);
    /* only len bytes are the url: a cut one is matched as cut */
    const char *u = "http://a.example/docs/a.pdf.html";
    CHECK_EQ_INT(scope_check(s, u, strlen(u), 0), SCOPE_OK);
    CHECK_EQ_INT(scope_check(s, u, strlen(u) - 5, 0), SCOPE_EXCLUDE);
    CHECK_EQ_INT(scope_check(s, u, 20, 0), SCOPE_INCLUDE);
    scope_free(s);

    /* a bad pattern names its flag and the pattern */
    struct config bad = {.max_depth = -1, .include = "(docs"};
    const char *e = error_of(&bad);
    CHECK(strncmp(e, "--include: '(docs' is not a POSIX extended regex: ", 50) == 0);
    bad = (struct config){.max_depth = -1, .include = "ok", .exclude = "a{2,1}"};
    e = error_of(&bad);
    CHECK(strncmp(e, "--exclude: 'a{2,1}' is not a POSIX extended regex", 49) == 0);
    char err[256];
    CHECK_EQ_INT(scope_regex_check("[a-", "--include", err, sizeof err), -1);
    CHECK(strncmp(err, "--include: '[a-'", 16) == 0);
    CHECK_EQ_INT(scope_regex_check("^/a(b|c)*$", "--include", err, sizeof err), 0);
}

static void test_max_pages(void)
{
    struct config cfg = {.max_depth = 3, .max_pages = 3, .exclude = "/no"};
    struct scope *s = make(&cfg);
    /* what another rule refuses claims nothing */
    CHECK_EQ_INT(check(s, "http://a.example/no", 0), SCOPE_EXCLUDE);
    CHECK_EQ_INT(check(s, "http://a.example/1", 9), SCOPE_DEPTH);
    CHECK_EQ_INT(check(s, "http://a.example/1", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://a.example/2", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://a.example/3", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://a.example/4", 0), SCOPE_MAX_PAGES);
    CHECK_EQ_INT(check(s, "http://a.example/4", 0), SCOPE_MAX_PAGES);
    /* a push that failed gives its page back, once per claim */
    scope_unclaim(s);
    CHECK_EQ_INT(check(s, "http://a.example/4", 0), SCOPE_OK);
    CHECK_EQ_INT(check(s, "http://a.example/5", 0), SCOPE_MAX_PAGES);
    scope_free(s);
}

struct claimer {
    struct scope *s;
    int ok;
};

static void *claim(void *arg)
{
    struct claimer *c = arg;
    for (int i = 0; i < 5000; i++) {
        if (check(c->s, "http://a.example/", 0) == SCOPE_OK) {
            c->ok++;
            if (i % 3 == 0) {
                scope_unclaim(c->s); /* as a duplicate push does */
                c->ok--;
            }
        }
    }
    return NULL;
}

/* Eight threads pushing at once accept exactly --max-pages. */
static void test_max_pages_threads(void)
{
    enum { T = 8 };
    struct config cfg = {.max_depth = -1, .max_pages = 1000};
    struct scope *s = make(&cfg);
    struct claimer c[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        c[i] = (struct claimer){.s = s};
        CHECK_EQ_INT(pthread_create(&th[i], NULL, claim, &c[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ok += c[i].ok;
    }
    CHECK_EQ_INT(ok, 1000);
    CHECK_EQ_INT(check(s, "http://a.example/", 0), SCOPE_MAX_PAGES);
    scope_free(s);
}

static void test_names(void)
{
    CHECK_STR(scope_reason_name(SCOPE_OK), "ok");
    CHECK_STR(scope_reason_name(SCOPE_DEPTH), "depth");
    CHECK_STR(scope_reason_name(SCOPE_DOMAIN), "domain");
    CHECK_STR(scope_reason_name(SCOPE_INCLUDE), "include");
    CHECK_STR(scope_reason_name(SCOPE_EXCLUDE), "exclude");
    CHECK_STR(scope_reason_name(SCOPE_MAX_PAGES), "max-pages");
    CHECK_STR(scope_reason_name(SCOPE_ROBOTS), "robots");
    CHECK_STR(scope_reason_name(SCOPE_NREASONS), "?");
}

int main(void)
{
    test_nothing_to_check();
    test_depth();
    test_domains();
    test_patterns();
    test_max_pages();
    test_max_pages_threads();
    test_names();
    return check_done();
}
