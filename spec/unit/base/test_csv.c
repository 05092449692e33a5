/* test_csv.c - reading a CSV record back (csv_read_record), as shoal does
 * with an existing output file's header: bare and quoted fields, commas,
 * quotes and line ends inside quotes, LF and CRLF, a record not whole yet
 * (0, nothing allocated), text that is not CSV (-1), too many fields, and
 * what csv_record writes reading back the same. */
#include "base/csv.h"
#include "base/strbuf.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

#define MAX 8

static char *f[MAX];
static size_t lens[MAX], used;

static int rd(const char *s)
{
    used = 0;
    return csv_read_record(s, strlen(s), MAX, f, lens, &used);
}

static void drop(int n)
{
    for (int i = 0; i < n; i++)
        free(f[i]);
}

static void test_fields(void)
{
    int n = rd("bytes,depth,url\n1,2,3\n");
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_STR(f[0], "bytes");
        CHECK_STR(f[2], "url");
        CHECK_EQ_INT((int)used, 16); /* the header and its LF, not the next record */
        drop(n);
    }
    n = rd("\"a, b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\nnext");
    CHECK_EQ_INT(n, 4);
    if (n == 4) {
        CHECK_STR(f[0], "a, b");
        CHECK_STR(f[1], "say \"hi\"");
        CHECK_STR(f[2], "two\nlines");
        CHECK_EQ_INT((int)lens[3], 0);
        CHECK_EQ_INT((int)used, (int)strlen("\"a, b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n"));
        drop(n);
    }
}

static void test_not_whole(void)
{
    CHECK_EQ_INT(rd(""), 0);
    CHECK_EQ_INT(rd("a,b"), 0);      /* no line end yet */
    CHECK_EQ_INT(rd("a,\"b\nc"), 0); /* inside quotes */
    CHECK_EQ_INT(rd("a,\"b\""), 0);  /* a closing quote, or the first of a pair? */
    CHECK_EQ_INT(rd("a,b\r"), 0);    /* CRLF cut in two */
}

static void test_not_csv(void)
{
    CHECK_EQ_INT(rd("a,\"b\"c\n"), -1);          /* text after a closing quote */
    CHECK_EQ_INT(rd("a\"b,c\n"), -1);            /* a quote in a bare field */
    CHECK_EQ_INT(rd("a\rb\n"), -1);              /* a bare CR */
    CHECK_EQ_INT(rd("1,2,3,4,5,6,7,8,9\n"), -1); /* more than MAX fields */
}

static void test_round_trip(void)
{
    const char *in[] = {"", "plain", "comma,", "quote\"", "cr\r", "lf\n", "\"\"", "x"};
    size_t inl[8];
    for (int i = 0; i < 8; i++)
        inl[i] = strlen(in[i]);
    struct strbuf b = {0};
    csv_record(&b, 8, in, inl);
    int n = csv_read_record(b.p, b.len, MAX, f, lens, &used);
    CHECK_EQ_INT(n, 8);
    CHECK_EQ_INT((int)used, (int)b.len);
    for (int i = 0; i < n && n == 8; i++)
        CHECK(lens[i] == inl[i] && memcmp(f[i], in[i], inl[i]) == 0);
    drop(n > 0 ? n : 0);
    free(b.p);
}

int main(void)
{
    test_fields();
    test_not_whole();
    test_not_csv();
    test_round_trip();
    return check_done();
}
