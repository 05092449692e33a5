/* test_redis_url.c - the shared queue's address (redis_url_parse): the
 * defaults, each part, %XX in the user, password, host and prefix, a '@'
 * in a password, IPv6 hosts in brackets, and each malformed URL refused
 * with what is wrong, never showing the password. */
#include "core/redis_url.h"
#include "check.h"

#include <string.h>

static struct redis_url u;
static char err[512];

static int ok(const char *url)
{
    int rc = redis_url_parse(url, &u, err, sizeof err) == 0;
    if (!rc)
        fprintf(stderr, "refused %s: %s\n", url, err);
    return rc;
}

static int refused(const char *url, const char *says)
{
    int rc = redis_url_parse(url, &u, err, sizeof err) < 0;
    if (!rc) {
        redis_url_free(&u);
        return 0;
    }
    if (!strstr(err, says))
        fprintf(stderr, "%s: '%s' does not say '%s'\n", url, err, says);
    return strstr(err, says) != NULL && !strstr(err, "s3cret");
}

static void test_defaults(void)
{
    CHECK(ok("redis://"));
    CHECK_STR(u.host, "127.0.0.1");
    CHECK_EQ_INT(u.port, 6379);
    CHECK_EQ_INT(u.db, 0);
    CHECK_STR(u.prefix, "shoal");
    CHECK(u.user == NULL && u.pass == NULL);
    redis_url_free(&u);
}

static void test_parts(void)
{
    CHECK(ok("redis://alice:s3cret@cache.local:6380/2?prefix=shop"));
    CHECK_STR(u.user, "alice");
    CHECK_STR(u.pass, "s3cret");
    CHECK_STR(u.host, "cache.local");
    CHECK_EQ_INT(u.port, 6380);
    CHECK_EQ_INT(u.db, 2);
    CHECK_STR(u.prefix, "shop");
    redis_url_free(&u);

    CHECK(ok("redis://s3cret@h")); /* a password alone */
    CHECK(u.user == NULL);
    CHECK_STR(u.pass, "s3cret");
    CHECK_STR(u.host, "h");
    redis_url_free(&u);

    CHECK(ok("redis://:p%40ss%2Fw@h/?prefix=a%3Ab")); /* an empty user: the password alone */
    CHECK(u.user == NULL);
    CHECK_STR(u.pass, "p@ss/w");
    CHECK_STR(u.prefix, "a:b");
    redis_url_free(&u);

    CHECK(ok("redis://bob:p@ss@h:1")); /* the last '@' ends the password */
    CHECK_STR(u.pass, "p@ss");
    CHECK_STR(u.host, "h");
    CHECK_EQ_INT(u.port, 1);
    redis_url_free(&u);

    CHECK(ok("redis://[::1]:7000/5"));
    CHECK_STR(u.host, "::1");
    CHECK_EQ_INT(u.port, 7000);
    CHECK_EQ_INT(u.db, 5);
    redis_url_free(&u);

    CHECK(ok("redis://[fe80::1%25eth0]"));
    CHECK_STR(u.host, "fe80::1%eth0");
    CHECK_EQ_INT(u.port, 6379);
    redis_url_free(&u);

    CHECK(ok("redis://h?prefix=a&prefix=b")); /* the last one counts */
    CHECK_STR(u.prefix, "b");
    redis_url_free(&u);
}

static void test_refused(void)
{
    CHECK(refused("redis:localhost", "redis://"));
    CHECK(refused("http://h", "redis://"));
    CHECK(refused("redis:s3cret@h", "redis://"));
    CHECK(refused("redis://h:99999/0", "port"));
    CHECK(refused("redis://h:0", "port"));
    CHECK(refused("redis://h:", "port"));
    CHECK(refused("redis://h:12x", "port"));
    CHECK(refused("redis://u:s3cret@h:-1", "port"));
    CHECK(refused("redis://h/x", "database"));
    CHECK(refused("redis://h/1/2", "database"));
    CHECK(refused("redis://h/-1", "database"));
    CHECK(refused("redis://h/ 1", "database"));
    CHECK(refused("redis://[::1", "']'"));
    CHECK(refused("redis://[]:1", "']'"));
    CHECK(refused("redis://[::1]x", "':port'"));
    CHECK(refused("redis://s3cret@h/0?pfx=1", "pfx"));
    CHECK(refused("redis://h/0?prefix=", "empty prefix"));
    CHECK(refused("redis://u:s3cret@h/0?prefix=", "u:***@h"));
    CHECK(refused("redis://%00", "%00"));
    CHECK(refused("redis://u:s3cret%00@h", "%00"));
    CHECK(refused("redis://h?prefix=a%00", "%00"));
}

int main(void)
{
    test_defaults();
    test_parts();
    test_refused();
    return check_done();
}
