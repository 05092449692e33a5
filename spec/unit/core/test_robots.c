/* test_robots.c - robots.txt as RFC 9309 reads it: groups by product token
 * (case-insensitive, merged, "*" as the fallback), the most specific rule
 * wins and allow wins a tie, `*` and `$`, percent-encoding made canonical
 * on both sides, /robots.txt always allowed, Crawl-delay and Sitemap
 * lines, the allow-all and disallow-all answers for 4xx and 5xx. */
#include "check.h"
#include "core/robots.h"

#include <stdlib.h>
#include <string.h>

static int ok(const struct robots *r, const char *path)
{
    return robots_allowed(r, path, strlen(path));
}

static struct robots *parse(const char *text, const char *agent)
{
    struct robots *r = robots_parse(text, strlen(text), agent);
    CHECK(r != NULL);
    return r;
}

/* The example file of RFC 9309, section 5.1. */
static const char *rfc_example = "User-Agent: *\n"
                                 "Disallow: *.gif$\n"
                                 "Disallow: /example/\n"
                                 "Allow: /publications/\n"
                                 "\n"
                                 "User-Agent: foobot\n"
                                 "Disallow:/\n"
                                 "Allow:/example/page.html\n"
                                 "Allow:/example/allowed.gif\n"
                                 "\n"
                                 "User-Agent: barbot\n"
                                 "User-Agent: bazbot\n"
                                 "Disallow: /example/page.html\n"
                                 "\n"
                                 "User-Agent: quxbot\n"
                                 "\n"
                                 "EOF\n";

static void test_groups(void)
{
    struct robots *r = parse(rfc_example, "foobot");
    CHECK(ok(r, "/example/page.html"));
    CHECK(ok(r, "/example/allowed.gif"));
    CHECK(!ok(r, "/example/other.html"));
    CHECK(!ok(r, "/"));
    robots_free(r);

    /* a full User-Agent header: its product token, any case */
    r = parse(rfc_example, "FooBot/2.1 (+http://example.org)");
    CHECK(!ok(r, "/other"));
    robots_free(r);

    r = parse(rfc_example, "bazbot");
    CHECK(!ok(r, "/example/page.html"));
    CHECK(ok(r, "/example/other.html"));
    robots_free(r);

    /* a group with no rules allows everything, and the "*" group is not
     * used once a group names the crawler */
    r = parse(rfc_example, "quxbot");
    CHECK(ok(r, "/example/x.gif"));
    robots_free(r);

    r = parse(rfc_example, "shoal");
    CHECK(!ok(r, "/images/a.gif"));
    CHECK(ok(r, "/images/a.gif?size=2")); /* $ anchors at the end */
    CHECK(!ok(r, "/example/"));
    CHECK(ok(r, "/publications/"));
    CHECK(ok(r, "/other"));
    robots_free(r);

    /* groups naming the same crawler are merged */
    r = parse("user-agent: shoal\ndisallow: /a\n\nuser-agent: other\ndisallow: /b\n"
              "user-agent: SHOAL\ndisallow: /c\n",
              "shoal");
    CHECK(!ok(r, "/a"));
    CHECK(!ok(r, "/c"));
    CHECK(ok(r, "/b"));
    robots_free(r);

    /* rules before any user-agent line belong to no group */
    r = parse("disallow: /\nuser-agent: *\nallow: /x\n", "shoal");
    CHECK(ok(r, "/y"));
    robots_free(r);

    /* no group for us and no "*": everything allowed */
    r = parse("user-agent: other\ndisallow: /\n", "shoal");
    CHECK(ok(r, "/anything"));
    robots_free(r);
}

static void test_precedence(void)
{
    struct robots *r = parse("user-agent: *\nallow: /p\ndisallow: /\n", "shoal");
    CHECK(ok(r, "/page"));
    CHECK(!ok(r, "/other"));
    robots_free(r);

    r = parse("user-agent: *\nallow: /folder\ndisallow: /folder\n", "shoal");
    CHECK(ok(r, "/folder/page")); /* a tie: allow wins */
    robots_free(r);

    r = parse("user-agent: *\nallow: /page\ndisallow: /*.html\n", "shoal");
    CHECK(!ok(r, "/page.html")); /* the longer pattern */
    CHECK(ok(r, "/page"));
    robots_free(r);

    r = parse("user-agent: *\nallow: /$\ndisallow: /\n", "shoal");
    CHECK(ok(r, "/"));
    CHECK(!ok(r, "/page"));
    robots_free(r);

    /* an empty Disallow disallows nothing */
    r = parse("user-agent: *\ndisallow:\n", "shoal");
    CHECK(ok(r, "/x"));
    robots_free(r);

    /* /robots.txt itself is always allowed */
    r = parse("user-agent: *\ndisallow: /\n", "shoal");
    CHECK(ok(r, "/robots.txt"));
    CHECK(!ok(r, "/robots.txt.bak"));
    robots_free(r);
}

static void test_encoding(void)
{
    struct robots *r = parse("user-agent: *\ndisallow: /%7Ejoe/\ndisallow: /caf\xc3\xa9\n"
                             "disallow: /a%2fb\ndisallow: /q?x=1\n",
                             "shoal");
    CHECK(!ok(r, "/~joe/index.html"));  /* %7E is ~, unreserved */
    CHECK(!ok(r, "/%7ejoe/index.html")); /* hex case does not matter */
    CHECK(!ok(r, "/caf%C3%A9/menu"));    /* raw UTF-8 in the file, encoded in the URL */
    CHECK(!ok(r, "/a%2Fb"));             /* a reserved / stays encoded, hex upper-cased */
    CHECK(ok(r, "/a/b"));                /* and so is not the path /a/b */
    CHECK(!ok(r, "/q?x=1&y=2"));
    CHECK(ok(r, "/q?x=2"));
    robots_free(r);

    char out[64];
    CHECK_EQ_INT(robots_canonical("/%7e%2f%zz\xe2", 11, out), 11);
    CHECK_STR(out, "/~%2F%zz%E2");
}

static void test_match(void)
{
    const char *yes[][2] = {
        {"/", "/anything"}, {"/fish", "/fish.html"},      {"/*.php$", "/index.php"},
        {"/*.php", "/a.php?x"}, {"/fish*", "/fishheads"}, {"*", ""},
        {"/a*b*c", "/aXbYc"},   {"/a**b", "/ab"},         {"/a$", "/a"},
    };
    const char *no[][2] = {
        {"/fish", "/Fish.asp"}, {"/*.php$", "/a.php?x"}, {"/a$", "/ab"},
        {"/a*b*c", "/aXbY"},    {"/fish/", "/fish"},     {"/x", ""},
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CHECK(robots_match(yes[i][0], strlen(yes[i][0]), yes[i][1], strlen(yes[i][1])));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK(!robots_match(no[i][0], strlen(no[i][0]), no[i][1], strlen(no[i][1])));
}

static void test_extras(void)
{
    struct robots *r = parse("Sitemap: http://h/sitemap.xml\n"
                             "User-agent: *   # everyone\n"
                             "Crawl-delay: 2.5\n"
                             "Disallow: /private # not this\n"
                             "\r\n"
                             "User-agent: shoal\r\n"
                             "Crawl-delay: 7\r\n"
                             "Disallow: /slow\r\n"
                             "sitemap: http://h/news.xml\n",
                             "shoal");
    CHECK(robots_crawl_delay(r) == 7.0);
    CHECK(!ok(r, "/slow"));
    CHECK(ok(r, "/private")); /* the * group is not ours */
    CHECK_EQ_INT(robots_nsitemaps(r), 2);
    CHECK_STR(robots_sitemap(r, 0), "http://h/sitemap.xml");
    CHECK_STR(robots_sitemap(r, 1), "http://h/news.xml");
    CHECK(robots_sitemap(r, 2) == NULL);
    robots_free(r);

    r = parse("user-agent: *\ncrawl-delay: 2.5\ndisallow: /private\n", "shoal");
    CHECK(robots_crawl_delay(r) == 2.5);
    CHECK(!ok(r, "/private/x"));
    robots_free(r);

    r = parse("user-agent: *\ncrawl-delay: soon\n", "shoal");
    CHECK(robots_crawl_delay(r) == -1);
    robots_free(r);

    struct robots *a = robots_allow_all(), *d = robots_disallow_all();
    CHECK(ok(a, "/x"));
    CHECK(!ok(d, "/x"));
    CHECK(ok(d, "/robots.txt"));
    robots_free(a);
    robots_free(d);

    /* past ROBOTS_MAX_BYTES nothing more is read */
    size_t big = ROBOTS_MAX_BYTES + 100;
    char *text = malloc(big + 64);
    memset(text, '#', big);
    text[0] = '\n';
    strcpy(text + big, "\nuser-agent: *\ndisallow: /\n");
    r = robots_parse(text, strlen(text), "shoal");
    CHECK(ok(r, "/x"));
    robots_free(r);
    free(text);
}

int main(void)
{
    test_groups();
    test_precedence();
    test_encoding();
    test_match();
    test_extras();
    return check_done();
}
