/* test_url.c - base/url.c: RFC 3986's split and its section 5.4 reference
 * resolution examples; the canonical form a crawl deduplicates on (case,
 * default ports, dot segments, percent-encoding, the fragment, the
 * errors); the query options (a stable sort by name, tracking parameters
 * stripped); hosts that are not ASCII, raw or escaped, as A-labels; the
 * authority a crawl groups by; the path and query robots.txt reads; what
 * happens when the caller's buffer is too small; url_link agreeing with
 * url_normalize(url_resolve()) on generated references. */
#include "base/url.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char got[1 << 20];
static char err[URL_ERR_MAX];

/* Each helper answers the result as a string, or "ERR: message". */
static const char *answer(long n)
{
    if (n == URL_NOSPACE)
        return "NOSPACE";
    if (n < 0) {
        static char e[URL_ERR_MAX + 8];
        snprintf(e, sizeof e, "ERR: %s", err);
        return e;
    }
    got[n] = 0;
    return got;
}

static const char *norm(const char *s, unsigned flags)
{
    err[0] = 0;
    return answer(url_normalize(s, strlen(s), flags, got, sizeof got - 1, err));
}

static const char *resolve(const char *base, const char *ref)
{
    return answer(
        url_resolve(base, base ? strlen(base) : 0, ref, strlen(ref), got, sizeof got - 1, err));
}

static const char *authority(const char *s)
{
    return answer(url_authority(s, strlen(s), got, sizeof got - 1, err));
}

static const char *path_query(const char *s)
{
    return answer(url_path_query(s, strlen(s), got, sizeof got - 1));
}

static int is_error(const char *answer, const char *words)
{
    return strncmp(answer, "ERR: ", 5) == 0 && strstr(answer, words) != NULL;
}

static void test_split(void)
{
    const char *s = "http://u@h:1/p/q?x=1?y#f#g";
    struct url_split u;
    url_split(s, strlen(s), &u);
    CHECK(u.scheme.n == 4 && memcmp(u.scheme.p, "http", 4) == 0);
    CHECK(u.authority.n == 5 && memcmp(u.authority.p, "u@h:1", 5) == 0);
    CHECK(u.path.n == 4 && memcmp(u.path.p, "/p/q", 4) == 0);
    CHECK(u.query.n == 5 && memcmp(u.query.p, "x=1?y", 5) == 0);
    CHECK(u.fragment.n == 3 && memcmp(u.fragment.p, "f#g", 3) == 0);

    url_split("http://a", 8, &u);
    CHECK(u.path.p != NULL && u.path.n == 0);
    CHECK(u.query.p == NULL && u.fragment.p == NULL);
    url_split("http://a/?#", 11, &u);
    CHECK(u.query.p != NULL && u.query.n == 0); /* empty, not absent */
    CHECK(u.fragment.p != NULL && u.fragment.n == 0);
    url_split("/a:b", 4, &u);
    CHECK(u.scheme.p == NULL && u.path.n == 4); /* "/" before ":": no scheme */
    url_split("1a:b", 4, &u);
    CHECK(u.scheme.p == NULL); /* a scheme starts with a letter */
    url_split("a+b.c-d:x", 9, &u);
    CHECK(u.scheme.n == 7);
    url_split("//h", 3, &u);
    CHECK(u.scheme.p == NULL && u.authority.n == 1);
}

/* RFC 3986 section 5.4, every example. */
static void test_rfc_examples(void)
{
    static const char *const cases[][2] = {
        /* 5.4.1 normal */
        {"g:h", "g:h"},
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q#s"},
        {"g#s", "http://a/b/c/g#s"},
        {"g?y#s", "http://a/b/c/g?y#s"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y#s"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
        /* 5.4.2 abnormal */
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g?y/../x", "http://a/b/c/g?y/../x"},
        {"g#s/./x", "http://a/b/c/g#s/./x"},
        {"g#s/../x", "http://a/b/c/g#s/../x"},
        {"http:g", "http:g"}, /* strict */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *r = resolve("http://a/b/c/d;p?q", cases[i][0]);
        if (strcmp(r, cases[i][1]) != 0)
            fprintf(stderr, "  resolve %s: %s, want %s\n", cases[i][0], r, cases[i][1]);
        CHECK_STR(r, cases[i][1]);
    }
    /* 5.2.4's own examples of remove_dot_segments */
    CHECK_STR(resolve("http://x/", "http://y/a/b/c/./../../g"), "http://y/a/g");
    CHECK_STR(resolve("foo:", "mid/content=5/../6"), "foo:mid/6");
    CHECK_STR(resolve("http://a", "g"), "http://a/g");
    CHECK_STR(resolve("http://a/b?q#f", ""), "http://a/b?q");
    CHECK_STR(resolve("https://a/b/c", "HTTP://X/Y"), "HTTP://X/Y"); /* not normalised */
    CHECK_STR(resolve("http://a/b", "http:/.//evil.example/x"), "http:/.//evil.example/x");
    CHECK_STR(resolve(NULL, "http://a/./b"), "http://a/b");
    CHECK(is_error(resolve(NULL, "g"), "no base URL"));
    CHECK(is_error(resolve("/not/absolute", "g"), "base URL '/not/absolute' is not absolute"));
}

static void test_normalize(void)
{
    static const char *const cases[][2] = {
        {"HTTP://Example.COM:80/a/./b/../c?x=1#frag", "http://example.com/a/c?x=1"},
        {"http://example.com", "http://example.com/"},
        {"http://example.com?x", "http://example.com/?x"},
        {"https://example.com:443", "https://example.com/"},
        {"https://example.com:80/", "https://example.com:80/"},
        {"http://example.com:0080/", "http://example.com/"},
        {"http://example.com:/", "http://example.com/"},
        {"http://[::1]:80/x", "http://[::1]/x"},
        {"http://[FE80::1]:8080", "http://[fe80::1]:8080/"},
        {"http://U:P@Example.com/", "http://U:P@example.com/"},
        {"http://a/%7e%2fx%3a", "http://a/~%2Fx%3A"},
        {"http://a/%2E%2E/b", "http://a/b"},
        {"http://a/x%zz%", "http://a/x%25zz%25"},
        {"http://a/%4", "http://a/%254"},
        {"http://a/a b", "http://a/a%20b"},
        {"http://a/caf\xc3\xa9", "http://a/caf%C3%A9"},
        {"http://a/<>\"{}|\\^`", "http://a/%3C%3E%22%7B%7D%7C%5C%5E%60"},
        {"http://a/\x01\x7f", "http://a/%01%7F"},
        {"http://a/?", "http://a/?"},
        {"http://a/?b=2&a=1", "http://a/?b=2&a=1"}, /* no options: order kept */
        {"http://a/?x=/./y/../z", "http://a/?x=/./y/../z"},
        {"http://a/b/../../..", "http://a/"},
        {"http://a%41b/", "http://a%41b/"}, /* an ASCII host keeps its escapes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_STR(norm(cases[i][0], 0), cases[i][1]);
        char once[1024];
        snprintf(once, sizeof once, "%s", norm(cases[i][0], 0));
        CHECK_STR(norm(once, 0), once);
    }
    CHECK(is_error(norm("ftp://a/", 0), "not an http(s) URL"));
    CHECK(is_error(norm("/relative", 0), "not an absolute URL"));
    CHECK(is_error(norm("http:///x", 0), "no host"));
    CHECK(is_error(norm("http:g", 0), "no host"));
    CHECK(is_error(norm("http://a:65536/", 0), "port out of range in 'a:65536'"));
    CHECK(is_error(norm("http://a:8o/", 0), "bad port in 'a:8o'"));
    CHECK(is_error(norm("http://[::1/", 0), "bad IPv6 literal"));
    CHECK(is_error(norm("http://[zz::1]/", 0), "bad IPv6 literal"));
    CHECK(is_error(norm("http://a b/", 0), "bad character in host 'a b'"));
    /* a long URL is cut short in the message */
    char longhost[400];
    memset(longhost, 'a', sizeof longhost);
    snprintf(longhost, sizeof longhost, "http://%0300d<x/", 0);
    const char *e = norm(longhost, 0);
    CHECK(is_error(e, "bad character in host") && strstr(e, "...'") && strlen(e) < 200);
}

static void test_query_options(void)
{
    const unsigned S = URL_SORT_QUERY, T = URL_STRIP_TRACKING;
    CHECK_STR(norm("http://a/?b=2&a=1&c=3", S), "http://a/?a=1&b=2&c=3");
    /* stable: equal names keep their order, values are not compared */
    CHECK_STR(norm("http://a/?b=1&a=9&b=0&a=1&a", S), "http://a/?a=9&a=1&a&b=1&b=0");
    /* by name, byte for byte: "a" before "a_b" before "ab" before "b" */
    CHECK_STR(norm("http://a/?b&ab=1&a_b=2&a=3", S), "http://a/?a=3&a_b=2&ab=1&b");
    /* on the canonical text: "%61" is "a" */
    CHECK_STR(norm("http://a/?b=1&%61=2", S), "http://a/?a=2&b=1");
    CHECK_STR(norm("http://a/?", S), "http://a/?");
    CHECK_STR(norm("http://a/p", S), "http://a/p");

    CHECK_STR(norm("http://a/?id=7&utm_source=x&utm_medium=y&UTM_Campaign=z", T), "http://a/?id=7");
    const char *names[] = {"gclid",  "fbclid", "msclkid", "dclid", "yclid",
                           "mc_cid", "mc_eid", "_ga",     "_gl",   "igshid"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char u[128];
        snprintf(u, sizeof u, "http://a/?x=1&%s=abc&y=2", names[i]);
        CHECK_STR(norm(u, T), "http://a/?x=1&y=2");
    }
    /* near misses stay */
    CHECK_STR(norm("http://a/?utm=1&xutm_a=2&gclid2=3&utm", T),
              "http://a/?utm=1&xutm_a=2&gclid2=3&utm");
    /* every parameter stripped: the "?" goes too */
    CHECK_STR(norm("http://a/p?utm_source=x&fbclid=y", T), "http://a/p");
    CHECK_STR(norm("http://a/p?", T), "http://a/p?");
    /* escaped names are read canonical: "utm%5Fid" is "utm_id" */
    CHECK_STR(norm("http://a/?utm%5Fid=1&k=v", T), "http://a/?k=v");
    /* both, and idempotent */
    const char *both = norm("http://a/?z=1&utm_x=2&b=3&gclid=4&a=5#f", S | T);
    CHECK_STR(both, "http://a/?a=5&b=3&z=1");
    CHECK_STR(norm("http://a/?a=5&b=3&z=1", S | T), "http://a/?a=5&b=3&z=1");

    /* many parameters: past the stack arrays, still linear and right */
    static char big[200000];
    size_t o = (size_t)snprintf(big, sizeof big, "http://a/?");
    for (int i = 2999; i >= 0; i--)
        o += (size_t)snprintf(big + o, sizeof big - o, "p%04d=%d&utm_%d=x&", i, i, i);
    big[o - 1] = 0;
    const char *sorted = norm(big, S | T);
    CHECK(strncmp(sorted, "http://a/?p0000=0&p0001=1&p0002=2&", 34) == 0);
    CHECK(strstr(sorted, "utm_") == NULL);
    CHECK(strlen(sorted) > 3000 * 7);
}

static void test_idn(void)
{
    CHECK_STR(norm("http://b\xc3\xbc"
                   "cher.example/",
                   0),
              "http://xn--bcher-kva.example/");
    CHECK_STR(norm("http://B\xc3\x9c"
                   "CHER.Example/",
                   0),
              "http://xn--bcher-kva.example/");
    CHECK_STR(norm("http://b%C3%BCcher.example/", 0), "http://xn--bcher-kva.example/");
    CHECK_STR(norm("http://b%c3%bccher.example:8080/x", 0), "http://xn--bcher-kva.example:8080/x");
    CHECK_STR(norm("http://xn--bcher-kva.example/", 0), "http://xn--bcher-kva.example/");
    /* nontransitional, as browsers: "ß" is kept apart from "ss" */
    CHECK_STR(norm("http://fa\xc3\x9f.de/", 0), "http://xn--fa-hia.de/");
    /* what nontransitional refuses, transitional may take (bidi rules) */
    CHECK_STR(norm("http://\xd9\xa0\xd9\xa1.\xc3\xbc/", 0), "http://xn--8hbc.xn--tda/");
    /* invalid */
    CHECK(is_error(norm("http://\xff.example/", 0), "bad internationalised host"));
    CHECK(is_error(norm("http://-\xc3\xbc-.example/", 0), "bad internationalised host"));
    CHECK(is_error(norm("http://%C3%BC%00/", 0), "escaped NUL"));
    CHECK(is_error(norm("http://%C3%BC%2Fx/", 0), "bad"));
    CHECK(is_error(norm("http://%C3%BC%20x/", 0), "bad"));
    /* the user's and the authority's view agree */
    CHECK_STR(authority("https://b\xc3\xbc"
                        "cher.example:8443/x"),
              "xn--bcher-kva.example:8443");
}

static void test_authority_and_path(void)
{
    CHECK_STR(authority("http://Example.COM/x"), "example.com");
    CHECK_STR(authority("http://127.0.0.1:8080/"), "127.0.0.1:8080");
    CHECK_STR(authority("http://a:80/"), "a");
    CHECK_STR(authority("https://a:443/"), "a");
    CHECK_STR(authority("http://a:443/"), "a:443");
    CHECK_STR(authority("http://u:p@a:0081/"), "a:81");
    CHECK_STR(authority("http://[::1]:8443/"), "[::1]:8443");
    CHECK_STR(authority("ftp://f.example:21/"), "f.example:21"); /* no default known */
    CHECK(is_error(authority("mailto:x@y"), "no host in 'mailto:x@y'"));
    CHECK(is_error(authority("http:///x"), "no host"));
    CHECK(is_error(authority("http://a:x/"), "bad port"));

    CHECK_STR(path_query("http://a/b/../c?x=%7e&y"), "/c?x=~&y");
    CHECK_STR(path_query("http://a"), "/");
    CHECK_STR(path_query("http://a?q"), "/?q");
    CHECK_STR(path_query("http://a/x#f"), "/x");
    CHECK_STR(path_query("/a b/%2e/c"), "/a%20b/c");
}

/* Too small a buffer is URL_NOSPACE, never a partial answer; one byte
 * more than the result is enough, and so is _size() for any input. */
static void test_small_buffers(void)
{
    const char *u = "HTTP://Example.COM/a/./b?x=%7e";
    const char *want = "http://example.com/a/b?x=~";
    size_t wn = strlen(want);
    char buf[64];
    CHECK_EQ_INT(url_normalize(u, strlen(u), 0, buf, wn, err), (long)wn);
    CHECK(memcmp(buf, want, wn) == 0);
    for (size_t cap = 0; cap < wn; cap++)
        CHECK_EQ_INT(url_normalize(u, strlen(u), 0, buf, cap, err), URL_NOSPACE);
    CHECK_EQ_INT(url_resolve("http://a/b", 10, "c", 1, buf, 5, err), URL_NOSPACE);
    CHECK_EQ_INT(url_authority("http://abc:81/", 14, buf, 5, err), URL_NOSPACE);
    CHECK_EQ_INT(url_authority("http://abc:81/", 14, buf, 6, err), 6);
    CHECK_EQ_INT(url_path_query("http://a/bc", 11, buf, 2), URL_NOSPACE);
    /* an error is an error whatever the room */
    CHECK_EQ_INT(url_normalize("ftp://a/", 8, 0, buf, 0, err), URL_ERROR);

    /* the worst cases fit the _size() bounds */
    static char worst[3000];
    memcpy(worst, "http://\xc3\xbc.example/", 18);
    for (size_t i = 18; i < sizeof worst - 1; i++)
        worst[i] = (char)(i % 2 ? ' ' : '%');
    worst[sizeof worst - 1] = 0;
    size_t n = strlen(worst), cap = url_normalize_size(n);
    char *out = malloc(cap);
    CHECK(url_normalize(worst, n, URL_SORT_QUERY, out, cap, err) > (long)(2 * n));
    free(out);
    cap = url_link_size(10, n);
    out = malloc(cap);
    CHECK(url_link("http://a/b", 10, worst + 18, n - 18, 0, out, cap, err) > (long)n);
    free(out);
}

/* url_link must answer what url_normalize(url_resolve()) does, fast paths
 * included, on references made of the pieces that matter. */
static void test_link_agrees(void)
{
    static const char *const pieces[] = {
        "a",   "b",   "/",   "/", ".", "..", "./",       "../", "?",      "#",      "%",
        "%2F", "%41", "%2E", ":", "@", "=",  "\xc3\xa9", "//",  "x.html", "%2e%2E", "http:"};
    static const char *const bases[] = {"http://h.test/a/b?q",
                                        "http://h.test",
                                        "https://H.test:443/x/./y/%7e/",
                                        "http://h.test/a%2fb/c",
                                        "http://u@h.test:8080/d/e/f",
                                        "http://h.test/a/../b",
                                        "mailto:x@y",
                                        "http://a b/"};
    uint32_t seed = 12345;
    int mismatches = 0;
    for (int round = 0; round < 20000; round++) {
        char ref[256] = "";
        seed = seed * 1103515245 + 12345;
        int len = (int)(seed >> 16) % 8 + 1;
        for (int j = 0; j < len; j++) {
            seed = seed * 1103515245 + 12345;
            strcat(ref, pieces[(seed >> 16) % (sizeof pieces / sizeof pieces[0])]);
        }
        seed = seed * 1103515245 + 12345;
        const char *base = bases[(seed >> 16) % (sizeof bases / sizeof bases[0])];
        char abs[1024], want[4096], have[4096], e1[URL_ERR_MAX], e2[URL_ERR_MAX];
        long an = url_resolve(base, strlen(base), ref, strlen(ref), abs, sizeof abs, e1);
        long wn = an < 0 ? -1 : url_normalize(abs, (size_t)an, 0, want, sizeof want, e1);
        struct url_base b;
        url_base_init(&b, base, strlen(base));
        long hn = url_link_from(&b, ref, strlen(ref), 0, have, sizeof have, e2);
        int same = (wn < 0 && hn < 0) || (wn >= 0 && hn == wn && memcmp(want, have, wn) == 0);
        if (!same && ++mismatches <= 5)
            fprintf(stderr, "  link %s from %s: %.*s vs %.*s\n", ref, base, (int)(hn > 0 ? hn : 0),
                    have, (int)(wn > 0 ? wn : 0), want);
    }
    CHECK_EQ_INT(mismatches, 0);
}

int main(void)
{
    test_split();
    test_rfc_examples();
    test_normalize();
    test_query_options();
    test_idn();
    test_authority_and_path();
    test_small_buffers();
    test_link_agrees();
    return check_done();
}
