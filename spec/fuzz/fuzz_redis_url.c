/* fuzz_redis_url.c - fuzz target for redis_url_parse, which reads the
 * --queue and `shoal items` URL a user types.
 *
 * Any bytes (a NUL ends the string): the parser must not crash, over-read
 * or leak (ASan). What it accepts has a host, a prefix that is not empty,
 * a port in 1..65535 and a database in 0..1000000; written again with
 * every byte of its parts %-encoded (and the password with it, or the
 * user and the password), it parses back to the same parts. What it
 * refuses says why, and never shows a password it was given. */
#include "core/redis_url.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

/* s with every byte as %XX, appended to out at *n (out big enough). */
static void enc(char *out, size_t *n, const char *s)
{
    for (; *s; s++)
        *n += (size_t)sprintf(out + *n, "%%%02X", (unsigned char)*s);
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    must(in != NULL);
    memcpy(in, data, size);
    in[size] = '\0';
    struct redis_url u;
    char err[512];
    if (redis_url_parse(in, &u, err, sizeof err) < 0) {
        must(err[0] != '\0');
        free(in);
        return 0;
    }
    must(u.host && u.prefix && u.prefix[0]);
    must(u.port >= 1 && u.port <= 65535 && u.db >= 0 && u.db <= 1000000);
    size_t cap = 3 * (strlen(in) + 16) + 64, n = 0;
    char *again = malloc(cap);
    must(again != NULL);
    n += (size_t)sprintf(again, "redis://");
    if (u.user) {
        enc(again, &n, u.user);
        again[n++] = ':';
    }
    if (u.pass) {
        enc(again, &n, u.pass);
        again[n++] = '@';
    }
    enc(again, &n, u.host);
    n += (size_t)sprintf(again + n, ":%d/%d?prefix=", u.port, u.db);
    enc(again, &n, u.prefix);
    again[n] = '\0';
    must(n < cap);
    struct redis_url v;
    must(redis_url_parse(again, &v, err, sizeof err) == 0);
    /* a user with no password is not a form the URL has: the parser reads
     * "user@" as a password alone */
    must(same(u.host, v.host) && same(u.prefix, v.prefix) && u.port == v.port && u.db == v.db);
    must(same(u.pass, v.pass) && (same(u.user, v.user) || (u.user && !u.user[0])));
    redis_url_free(&v);
    redis_url_free(&u);
    free(again);
    free(in);
    return 0;
}
