/* The summary's top errors group one kind of failure as one entry: URLs and
 * numbers that vary from job to job are masked, the numbers that tell
 * failures apart (an HTTP status, a script's line) are not, and each entry
 * keeps its first message and job url as the example. */
#include "check.h"
#include "core/stats.h"

#include <stdlib.h>

static const char *pattern(const char *msg)
{
    static char out[STATS_ERROR_LEN];
    stats_error_pattern(out, sizeof out, msg, strlen(msg));
    return out;
}

static void test_masks(void)
{
    CHECK_STR(pattern("crawl.lua:12: http://127.0.0.1:8080/missing3.html: HTTP 404"),
              "crawl.lua:12: <url>: HTTP 404");
    CHECK_STR(pattern("missing3.html: HTTP 404"), "missing<n>.html: HTTP 404");
    CHECK_STR(pattern("Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect"),
              "Failed to connect to <n> port <n> after <n> ms: Couldn't connect");
    CHECK_STR(pattern("Failed to connect to 127.0.0.1 port 1 after 2 ms: Couldn't connect"),
              pattern("Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect"));
    CHECK_STR(pattern("job timed out after 0.5s (--timeout)"),
              "job timed out after <n>s (--timeout)");
    CHECK_STR(pattern("error object at 0x7f3a9c0012e0"), "error object at <n>");
    CHECK_STR(pattern("url has white space in it: 'https://x.test/a b'"),
              "url has white space in it: '<url> b'");
    CHECK_STR(pattern("see (http://a/b), or https://c/d."), "see (<url>), or <url>.");
    CHECK_STR(pattern("unexpected status 503 from <url>"), "unexpected status 503 from <url>");
    CHECK_STR(pattern("x.lua:7: HTTP 500"), "x.lua:7: HTTP 500");
    CHECK_STR(pattern("no digits, no links"), "no digits, no links");
    CHECK_STR(pattern("notascheme://x"), "<url>"); /* any scheme */
    CHECK_STR(pattern("a1b22c333"), "a<n>b<n>c<n>");
    CHECK_STR(pattern(""), "");
}

static void test_cut(void)
{
    char out[8];
    CHECK_EQ_INT(stats_error_pattern(out, sizeof out, "abcdefghij", 10), 7);
    CHECK_STR(out, "abcdefg");
    /* é is two bytes: the cut never splits it */
    CHECK_EQ_INT(stats_error_pattern(out, sizeof out, "abcdef\xc3\xa9z", 9), 6);
    CHECK_STR(out, "abcdef");
    CHECK_EQ_INT(stats_error_pattern(out, 0, "abc", 3), 0);
    char one[1] = {'x'};
    CHECK_EQ_INT(stats_error_pattern(one, 1, "abc", 3), 0);
    CHECK_EQ_INT(one[0], 0);
}

static void test_grouping(void)
{
    struct stats *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    const char *u1 = "http://h/missing1.html", *u2 = "http://user:pw@h/missing2.html?token=t";
    stats_error(a, "missing1.html: HTTP 404\nstack traceback:", u1, strlen(u1));
    stats_error(a, "missing2.html: HTTP 404", u2, strlen(u2));
    stats_error(a, "missing3.html: HTTP 500", u1, strlen(u1));
    stats_error(b, "missing7.html: HTTP 404", u2, strlen(u2));
    stats_error(b, "wedged", NULL, 0);
    CHECK_EQ_INT(a->errors[0].count, 2);
    CHECK_STR(a->errors[0].text, "missing1.html: HTTP 404");
    CHECK_STR(a->errors[0].pattern, "missing<n>.html: HTTP 404");
    CHECK_STR(a->errors[0].url, u1);
    CHECK_EQ_INT(a->errors[1].count, 1); /* HTTP 500 is another kind */
    CHECK_STR(b->errors[0].url, "http://user:REDACTED@h/missing2.html?token=REDACTED");
    CHECK_STR(b->errors[1].url, "");
    stats_merge(a, b);
    CHECK_EQ_INT(a->errors[0].count, 3);
    CHECK_STR(a->errors[0].text, "missing1.html: HTTP 404"); /* the first example stays */
    CHECK_EQ_INT(a->errors[2].count, 1);
    CHECK_STR(a->errors[2].text, "wedged");
    free(a);
    free(b);
}

int main(void)
{
    test_masks();
    test_cut();
    test_grouping();
    return check_done();
}
