/* redis_url.c - the shared queue's address (see redis_url.h). */
#include "core/redis_url.h"

#include "base/hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHAPE "redis://[user:pass@]host:port/db?prefix=NAME"

void redis_url_free(struct redis_url *u)
{
    free(u->host);
    free(u->user);
    free(u->pass);
    free(u->prefix);
    memset(u, 0, sizeof *u);
}

/* A copy of s[0..len) with %XX decoded; NULL on out of memory, and for
 * a %00 (a C string cannot hold it), with *nul set. */
static char *decoded(const char *s, size_t len, int *nul)
{
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
            *o = (char)(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
            if (*o++ == '\0') {
                *nul = 1;
                free(out);
                return NULL;
            }
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* fail's reason when decoded gave NULL */
#define WHY(nul) ((nul) ? "a NUL byte (%00)" : "out of memory")

/* A decimal number filling s[0..len) exactly, within lo..hi; -1 if not. */
static long number(const char *s, size_t len, long lo, long hi)
{
    if (len == 0 || len > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= lo && v <= hi ? v : -1;
}

/* url as an error may show it: a password in it as "***". */
static void shown(const char *url, char *out, size_t size)
{
    const char *p = url + 8, *end = p + strcspn(p, "/?"), *at = NULL;
    for (const char *s = p; s < end; s++)
        if (*s == '@')
            at = s;
    if (!at) {
        snprintf(out, size, "%s", url);
        return;
    }
    const char *colon = memchr(p, ':', (size_t)(at - p));
    int user = colon ? (int)(colon - p) : 0;
    snprintf(out, size, "redis://%.*s%s***%s", user, p, colon ? ":" : "", at);
}

static int fail(struct redis_url *u, char *err, size_t errlen, const char *what, const char *url)
{
    char show[512];
    shown(url, show, sizeof show);
    snprintf(err, errlen, "%s in '%s' (the shape is " SHAPE ")", what, show);
    redis_url_free(u);
    return -1;
}

int redis_url_parse(const char *url, struct redis_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    int nul = 0;
    if (strncmp(url, "redis://", 8) != 0) {
        const char *at = strrchr(url, '@'); /* what may be a password is not shown */
        snprintf(err, errlen, "the redis queue wants a URL: " SHAPE " (got '%s%s')",
                 at ? "***" : url, at ? at : "");
        return -1;
    }
    const char *p = url + 8;
    const char *end = p + strcspn(p, "/?"); /* the authority: [user:pass@]host[:port] */
    const char *at = NULL;
    for (const char *s = p; s < end; s++) /* the last '@': one in a password is kept */
        if (*s == '@')
            at = s;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p && !(u->user = decoded(p, (size_t)(colon - p), &nul)))
                return fail(u, err, errlen, WHY(nul), url);
            u->pass = decoded(colon + 1, (size_t)(at - colon - 1), &nul);
        } else {
            u->pass = decoded(p, (size_t)(at - p), &nul); /* a password alone */
        }
        if (!u->pass)
            return fail(u, err, errlen, WHY(nul), url);
        p = at + 1;
    }
    const char *host = p, *host_end, *port = NULL;
    if (*p == '[') { /* an IPv6 address */
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close || close == p + 1)
            return fail(u, err, errlen, "an IPv6 host needs its closing ']'", url);
        host = p + 1;
        host_end = close;
        if (close + 1 < end) {
            if (close[1] != ':')
                return fail(u, err, errlen, "after ']' comes ':port' or nothing", url);
            port = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        host_end = colon ? colon : end;
        port = colon ? colon + 1 : NULL;
    }
    u->host =
        host_end > host ? decoded(host, (size_t)(host_end - host), &nul) : strdup("127.0.0.1");
    if (!u->host)
        return fail(u, err, errlen, WHY(nul), url);
    if (port) {
        long n = number(port, (size_t)(end - port), 1, 65535);
        if (n < 0)
            return fail(u, err, errlen, "a bad port (1 to 65535)", url);
        u->port = (int)n;
    }
    p = end;
    if (*p == '/') {
        p++;
        size_t n = strcspn(p, "?");
        if (n > 0) {
            long db = number(p, n, 0, 1000000);
            if (db < 0)
                return fail(u, err, errlen, "a bad database number", url);
            u->db = (int)db;
        }
        p += n;
    }
    if (*p == '?') {
        p++;
        while (*p) {
            size_t n = strcspn(p, "&");
            if (n > 7 && strncmp(p, "prefix=", 7) == 0) {
                free(u->prefix);
                if (!(u->prefix = decoded(p + 7, n - 7, &nul)))
                    return fail(u, err, errlen, WHY(nul), url);
            } else if (n == 7 && strncmp(p, "prefix=", 7) == 0) {
                return fail(u, err, errlen, "an empty prefix", url);
            } else {
                char show[512];
                shown(url, show, sizeof show);
                snprintf(err, errlen,
                         "unknown parameter '%.*s' in '%s' (only prefix=NAME is known)", (int)n, p,
                         show);
                redis_url_free(u);
                return -1;
            }
            p += n + (p[n] == '&');
        }
    }
    if (!u->prefix && !(u->prefix = strdup("shoal")))
        return fail(u, err, errlen, "out of memory", url);
    return 0;
}
