/* test_links.c - base/links.c: the references the scan reports for every
 * kind (a, area, iframe, frame, meta refresh, link with its rel, img src
 * and srcset), the first <base href>, nofollow from rel and from <meta
 * name=robots>; what it skips (comments in their HTML5 forms, CDATA,
 * script, style and the other raw-text bodies, end tags, attributes in
 * other tags); tags and quotes never closed; decoding with HTML5's named
 * table (the attribute rule for names without ";"), numeric references
 * and their replacements; cleaning an href; refresh contents and srcsets;
 * huge values; and a 100 MB page scanned with no allocation in time
 * linear in its size. */
#include "base/links.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What a scan reports, one "kind[!][*]=value" per reference ("!" for
 * nofollow, "*" for a srcset), joined by spaces; base is "base=", robots
 * nofollow "robots". */
struct collect {
    char out[4096];
    size_t n;
    int stop_after; /* 0: never stop */
    int count;
};

static int collect(void *ud, const struct link_ref *r)
{
    struct collect *c = ud;
    const char *k = r->kind == LINK_BASE              ? "base"
                    : r->kind == LINK_ROBOTS_NOFOLLOW ? "robots"
                                                      : links_kind_name(r->kind);
    int w = snprintf(c->out + c->n, sizeof c->out - c->n, "%s%s%s%s%s%.*s%s%.*s", c->n ? " " : "",
                     k, r->flags & LINK_NOFOLLOW ? "!" : "", r->flags & LINK_SRCSET ? "*" : "",
                     r->kind == LINK_ROBOTS_NOFOLLOW ? "" : "=", (int)r->n, r->v,
                     r->rel ? "/rel=" : "", (int)r->rel_n, r->rel ? r->rel : "");
    if (w > 0 && (size_t)w < sizeof c->out - c->n)
        c->n += (size_t)w;
    c->count++;
    return c->stop_after && c->count >= c->stop_after;
}

static const char *scan(const char *html)
{
    static struct collect c;
    memset(&c, 0, sizeof c);
    /* an exact-size copy, so ASan sees a read past the page */
    size_t n = strlen(html);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, html, n);
    links_scan(copy, n, collect, &c);
    free(copy);
    return c.out;
}

static const char *decode(const char *v)
{
    static char out[1024];
    size_t n = strlen(v);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, v, n);
    size_t len = links_decode(copy, n, out);
    CHECK(len <= links_decode_size(n));
    out[len] = 0;
    free(copy);
    return out;
}

static const char *clean(const char *v)
{
    static char out[256];
    snprintf(out, sizeof out, "%s", v);
    out[links_clean(out, strlen(out))] = 0;
    return out;
}

static const char *refresh(const char *v)
{
    static char out[256];
    size_t off, len;
    if (!links_refresh_url(v, strlen(v), &off, &len))
        return "(none)";
    snprintf(out, sizeof out, "%.*s", (int)len, v + off);
    return out;
}

static const char *srcset(const char *v)
{
    static char out[256];
    size_t pos = 0, off, len, o = 0, n = strlen(v);
    out[0] = 0;
    while (links_srcset_next(v, n, &pos, &off, &len))
        o += (size_t)snprintf(out + o, sizeof out - o, "%s%.*s", o ? " " : "", (int)len, v + off);
    return out;
}

static void test_kinds(void)
{
    CHECK_STR(scan("<a href=/a><AREA HREF='/ar'><iframe src=/if></iframe><frame src=/f>"),
              "a=/a area=/ar iframe=/if frame=/f");
    CHECK_STR(scan("<meta http-equiv=\"Refresh\" content=\"0; url=/r\">"), "refresh=0; url=/r");
    CHECK_STR(scan("<meta content='5' http-equiv=refresh>"), "refresh=5");
    CHECK_STR(scan("<meta http-equiv=refresh><meta name=description content=x>"), "");
    CHECK_STR(scan("<link rel=\"next stylesheet\" href=/n.css><link href=/x>"),
              "link=/n.css/rel=next stylesheet link=/x");
    CHECK_STR(scan("<img src=/i.png srcset=\"/a 1x, /b 2x\"><picture><source srcset=/s.webp>"),
              "img=/i.png img*=/a 1x, /b 2x img*=/s.webp");
    CHECK_STR(scan("<source src=/video.mp4><img alt=x>"), "");
    CHECK_STR(scan("<base target=_top><base href=/b1><base href=/b2><a href=x>"), "base=/b1 a=x");
    CHECK_STR(scan("<abbr href=/no><aside href=/no><address href=/no><iframes src=/no>"), "");
    CHECK_STR(scan("<a>no href</a><a href>empty</a>"), "a=");
}

static void test_nofollow(void)
{
    CHECK_STR(scan("<a rel=nofollow href=/1><a rel=\"external NOFOLLOW\" href=/2>"
                   "<a rel=nofollowing href=/3><a rel=\"no follow\" href=/4>"),
              "a!=/1 a!=/2 a=/3 a=/4");
    CHECK_STR(scan("<area rel=nofollow href=/m><link rel='nofollow next' href=/l>"),
              "area!=/m link!=/l/rel=nofollow next");
    CHECK_STR(scan("<meta name=ROBOTS content=\"noindex,nofollow\">"), "robots");
    CHECK_STR(scan("<meta name=robots content=none><meta name=robots content=noindex>"), "robots");
    CHECK_STR(scan("<meta name=googlebot content=nofollow>"), "");
}

static void test_skipped(void)
{
    CHECK_STR(scan("<!-- <a href=/c1> --><a href=/1>"), "a=/1");
    CHECK_STR(scan("<!--><a href=/2><!---><a href=/3>"), "a=/2 a=/3");
    CHECK_STR(scan("<!-- x --!><a href=/4>"), "a=/4");
    CHECK_STR(scan("<!-- - -- <a href=/no> --><a href=/5>"), "a=/5");
    CHECK_STR(scan("<![CDATA[<a href=/no>]]><a href=/6>"), "a=/6");
    CHECK_STR(scan("<!DOCTYPE html><?xml x?><a href=/7>"), "a=/7");
    CHECK_STR(scan("<script>'<a href=/no>'</scripts></script ><a href=/8>"), "a=/8");
    CHECK_STR(scan("<STYLE>a{b:'<a href=/no>'}</Style><a href=/9>"), "a=/9");
    CHECK_STR(scan("<textarea><a href=/no></textarea><title><a href=/no></title><a href=/10>"),
              "a=/10");
    CHECK_STR(scan("<iframe src=/if><a href=/no></iframe><a href=/11>"), "iframe=/if a=/11");
    CHECK_STR(scan("</a href='>'><a href=/12></>"), "a=/12");
    CHECK_STR(scan("</ bogus <a href=/no>><a href=/13>"), "a=/13");
    CHECK_STR(scan("<p title='<a href=/no>' data-x=\"<a href=/no2>\"><a href=/14>"), "a=/14");
    CHECK_STR(scan("<a data-href=/no xhref=/no2 href=/yes href=/second>"), "a=/yes");
    CHECK_STR(scan("x < y <3 <a href=/15>"), "a=/15");
    CHECK_STR(scan("<plaintext><a href=/no>"), "");
}

static void test_unterminated(void)
{
    CHECK_STR(scan("<a href=/ok><a href=\"/never"), "a=/ok");
    CHECK_STR(scan("<a href=/ok><a href=/eof"), "a=/ok");
    CHECK_STR(scan("<a href=/ok><a href="), "a=/ok");
    CHECK_STR(scan("<a href=/ok><!-- no end <a href=/no>"), "a=/ok");
    CHECK_STR(scan("<a href=/ok><script><a href=/no>"), "a=/ok");
    CHECK_STR(scan("<a href=/ok><script></scrip"), "a=/ok");
    CHECK_STR(scan("<a href=/ok><![CDATA[ <a href=/no>"), "a=/ok");
    CHECK_STR(scan("<a href=/ok><!doctype"), "a=/ok");
    CHECK_STR(scan("<a href=\"/broken>y</a><a href=\">"), "a=/broken>y</a><a href=");
    CHECK_STR(scan("<"), "");
    CHECK_STR(scan("<a"), "");
    CHECK_STR(scan(""), "");

    struct collect c = {.stop_after = 2};
    const char *p = "<a href=1><a href=2><a href=3>";
    links_scan(p, strlen(p), collect, &c);
    CHECK_STR(c.out, "a=1 a=2");
}

static void test_decode(void)
{
    CHECK_STR(decode("/e?a=1&amp;b=2&quot;&#39;&lt;&gt;&#65;&#x42;&#X43;&apos;"),
              "/e?a=1&b=2\"'<>ABC'");
    CHECK_STR(decode("&unknown;&amp;amp;"), "&unknown;&amp;");
    /* the whole table, first and last names, two code points, 32 bytes */
    CHECK_STR(decode("&AElig;&zwnj;&nLt;&CounterClockwiseContourIntegral;"),
              "\xc3\x86\xe2\x80\x8c\xe2\x89\xaa\xe2\x83\x92\xe2\x88\xb3");
    CHECK_STR(decode("&NotNestedGreaterGreater;&fjlig;"), "\xe2\xaa\xa2\xcc\xb8"
                                                          "fj");
    /* legacy names without ";": decoded, unless a letter, digit or "="
     * follows (the attribute rule, so queries keep their "&name=") */
    CHECK_STR(decode("&amp &lt/&copy.&not"), "& </\xc2\xa9.\xc2\xac");
    CHECK_STR(decode("?a=1&copy=2&not=3&ampx&notit;&notin;"),
              "?a=1&copy=2&not=3&ampx&notit;\xe2\x88\x89");
    CHECK_STR(decode("&AMP;&Amp;&amp;"), "&&Amp;&");
    CHECK_STR(decode("&zwj"), "&zwj"); /* only the legacy names may drop the ";" */
    CHECK_STR(decode("&;&#;&#x;&#xg;&&"), "&;&#;&#x;&#xg;&&");
    /* numeric: with or without ";", replacements as HTML5 says */
    CHECK_STR(decode("&#65&#x42x&#0;&#x0;"), "AB"
                                             "x\xef\xbf\xbd\xef\xbf\xbd");
    CHECK_STR(decode("&#xD800;&#xDFFF;&#x110000;&#99999999999999999999;"),
              "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    CHECK_STR(decode("&#x10FFFF;&#128;&#x9f;&#x81;"),
              "\xf4\x8f\xbf\xbf\xe2\x82\xac\xc5\xb8\xc2\x81");
    CHECK_STR(decode("&#x1F600;&#233;"), "\xf0\x9f\x98\x80\xc3\xa9");
    CHECK_STR(decode("&#0000000065;"), "A");
    /* a name longer than any in the table is not looked up */
    CHECK_STR(decode("&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;"),
              "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;");
}

static void test_clean(void)
{
    CHECK_STR(clean("  /trim \x01 "), "/trim");
    CHECK_STR(clean("/a\n/b\t/c\r"), "/a/b/c");
    CHECK_STR(clean("\\\\h\\p?q=\\#\\"), "//h/p?q=\\#\\");
    CHECK_STR(clean("#frag"), "");
    CHECK_STR(clean("  #frag"), "");
    CHECK_STR(clean(" \t\n "), "");
    CHECK_STR(clean("/x\x7f"), "/x");
}

static void test_refresh_srcset(void)
{
    CHECK_STR(refresh("0; url=/r"), "/r");
    CHECK_STR(refresh("0;URL='/q x'"), "/q x");
    CHECK_STR(refresh("  3.5 , url = \"/d\" tail"), "/d");
    CHECK_STR(refresh("0; /bare"), "/bare");
    CHECK_STR(refresh("0 url=/sp"), "/sp");
    CHECK_STR(refresh("0;url=\"/open"), "/open");
    CHECK_STR(refresh("0; urlx"), "urlx");
    CHECK_STR(refresh("5"), "(none)");
    CHECK_STR(refresh("0;"), "(none)");
    CHECK_STR(refresh("x; url=/no"), "(none)");
    CHECK_STR(refresh("0x; url=/no"), "(none)");
    CHECK_STR(refresh(""), "(none)");

    CHECK_STR(srcset("/a.png 1x, /b.png 2x"), "/a.png /b.png");
    /* a URL runs to whitespace: only its trailing commas end it */
    CHECK_STR(srcset("/a.png,/b.png,, /c.png,"), "/a.png,/b.png /c.png");
    CHECK_STR(srcset("  /a.png 100w (x, y), /b.png\n 2x"), "/a.png /b.png");
    CHECK_STR(srcset("data:image/png;base64,AAA 1x"), "data:image/png;base64,AAA");
    CHECK_STR(srcset(" , ,"), "");
}

static int keep_last(void *ud, const struct link_ref *r)
{
    *(struct link_ref *)ud = *r;
    return 0;
}

static int count_only(void *ud, const struct link_ref *r)
{
    (void)r;
    ++*(size_t *)ud;
    return 0;
}

static void test_huge_values(void)
{
    size_t n = 8u << 20;
    char *page = malloc(n + 64);
    memcpy(page, "<a href=\"", 9);
    memset(page + 9, 'x', n);
    memcpy(page + 9 + n, "\"><a href=/after>", 17);
    struct link_ref last = {0};
    size_t refs = 0;
    links_scan(page, n + 26, keep_last, &last);
    links_scan(page, n + 26, count_only, &refs);
    CHECK_EQ_INT(refs, 2);
    CHECK(last.n == 6 && memcmp(last.v, "/after", 6) == 0);

    /* a value of entities: decoding stays inside links_decode_size */
    for (size_t i = 0; i + 5 <= n; i += 5)
        memcpy(page + i, "&nLt;", 5);
    char *out = malloc(links_decode_size(n));
    size_t len = links_decode(page, n - n % 5, out);
    CHECK_EQ_INT(len, (n - n % 5) / 5 * 6);
    CHECK(len <= links_decode_size(n));
    free(out);
    free(page);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A page of size n made of the pattern, repeated; scanned, its time. */
static double scan_time(const char *pattern, size_t n, size_t *refs)
{
    size_t pn = strlen(pattern);
    char *page = malloc(n);
    for (size_t i = 0; i < n; i += pn)
        memcpy(page + i, pattern, n - i < pn ? n - i : pn);
    *refs = 0;
    double t = now();
    links_scan(page, n, count_only, refs);
    t = now() - t;
    free(page);
    return t;
}

/* 100 MB pages: the scanner allocates nothing (only the page is in
 * memory), and ten times the page takes about ten times as long, never a
 * hundred (loose bounds: a loaded machine, ASan). */
static void test_big_pages(void)
{
    static const char *const patterns[] = {
        "<p class=x><a href=\"/page/1.html\" rel=nofollow>one</a> text &amp; more</p>\n",
        "<a <a <a href=", /* one tag that never closes */
        "<!-- <!-- -",
        "<script></scrip</script x",
        "</a x='",
        "&amp;&#x41;<a href=&",
        "<a href='/x'>",
        "<meta http-equiv=refresh content='0; url=/x'><img srcset=x>",
    };
    const size_t big = 100u << 20, small = 10u << 20;
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        size_t refs_small, refs_big;
        double ts = scan_time(patterns[i], small, &refs_small);
        double tb = scan_time(patterns[i], big, &refs_big);
        CHECK(refs_big >= refs_small);
        if (!(tb < 30 * ts + 0.5))
            fprintf(stderr, "pattern %zu: %.3f s for 10 MB, %.3f s for 100 MB\n", i, ts, tb);
        CHECK(tb < 30 * ts + 0.5);
    }
    size_t refs;
    scan_time(patterns[0], big, &refs);
    CHECK(refs > 1000000);
}

int main(void)
{
    test_kinds();
    test_nofollow();
    test_skipped();
    test_unterminated();
    test_decode();
    test_clean();
    test_refresh_srcset();
    test_huge_values();
    test_big_pages();
    return check_done();
}
