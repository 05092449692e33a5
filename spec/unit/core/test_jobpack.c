/* test_jobpack.c - a job packed as one string for the Redis queue's store
 * (jobpack_make, jobpack_read): fields back as they went in, negative
 * priority and depth, bytes of any value in group, data and ctx, a job
 * too big for the inline buffer, the empty string as the empty job, and
 * strings that are not a packed job refused. */
#include "core/jobpack.h"
#include "check.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static void test_round_trip(void)
{
    const char ctx[] = {0, 1, ';', ',', (char)0xff};
    struct jobpack_fields f = {.attempt = 3,
                               .priority = -7,
                               .depth = -2,
                               .group = "a,b;c",
                               .group_len = 5,
                               .data = "x;1,2",
                               .len = 5,
                               .ctx = ctx,
                               .ctx_len = sizeof ctx};
    struct jobpack j;
    CHECK(jobpack_make(&j, &f) == 0);
    CHECK(j.p == j.buf);
    CHECK(j.len == strlen("3,-7,-2,5,5;") + 5 + 5 + sizeof ctx);
    CHECK(memcmp(j.p, "3,-7,-2,5,5;a,b;cx;1,2", 22) == 0);
    struct jobpack_fields g;
    CHECK(jobpack_read(j.p, j.len, &g) == 0);
    CHECK_EQ_INT(g.attempt, 3);
    CHECK_EQ_INT(g.priority, -7);
    CHECK_EQ_INT(g.depth, -2);
    CHECK(g.group_len == 5 && memcmp(g.group, "a,b;c", 5) == 0);
    CHECK(g.len == 5 && memcmp(g.data, "x;1,2", 5) == 0);
    CHECK(g.ctx_len == sizeof ctx && memcmp(g.ctx, ctx, sizeof ctx) == 0);
    jobpack_free(&j);

    f = (struct jobpack_fields){.attempt = 1, .priority = INT_MIN, .depth = INT_MAX};
    CHECK(jobpack_make(&j, &f) == 0);
    CHECK(jobpack_read(j.p, j.len, &g) == 0);
    CHECK_EQ_INT(g.priority, INT_MIN);
    CHECK_EQ_INT(g.depth, INT_MAX);
    CHECK(g.len == 0 && g.group_len == 0 && g.ctx_len == 0);
    jobpack_free(&j);
}

static void test_big(void)
{
    size_t n = 100000;
    char *data = malloc(n);
    CHECK(data != NULL);
    if (!data)
        return;
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 7);
    struct jobpack_fields f = {.attempt = 1, .data = data, .len = n};
    struct jobpack j;
    CHECK(jobpack_make(&j, &f) == 0);
    CHECK(j.p != j.buf);
    struct jobpack_fields g;
    CHECK(jobpack_read(j.p, j.len, &g) == 0);
    CHECK(g.len == n && memcmp(g.data, data, n) == 0);
    jobpack_free(&j);
    free(data);
}

static void test_empty_is_empty_job(void)
{
    struct jobpack_fields g;
    CHECK(jobpack_read("", 0, &g) == 0);
    CHECK_EQ_INT(g.attempt, 1);
    CHECK(g.len == 0 && g.group_len == 0 && g.ctx_len == 0 && g.data && g.group);
}

static int bad(const char *s)
{
    struct jobpack_fields g;
    return jobpack_read(s, strlen(s), &g) < 0;
}

static void test_refused(void)
{
    CHECK(bad("garbage"));
    CHECK(bad("1,0,0,3,0;ab"));        /* the group runs past the end */
    CHECK(bad("1,0,0,0,4;abc"));       /* so does the data */
    CHECK(bad("0,0,0,0,0;"));          /* attempts count from 1 */
    CHECK(bad("1,0,0,-1,0;"));         /* lengths are not negative */
    CHECK(bad("1,0,0,0,0"));           /* no ';' */
    CHECK(bad("1,,0,0,0;"));           /* an empty number */
    CHECK(bad("1,2147483648,0,0,0;")); /* past an int */
    CHECK(bad("1,0,0,99999999999999999999,0;"));
    CHECK(!bad("1,0,0,0,0;"));
}

int main(void)
{
    test_round_trip();
    test_big();
    test_empty_is_empty_job();
    test_refused();
    return check_done();
}
