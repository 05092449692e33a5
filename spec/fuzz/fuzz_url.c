/* fuzz_url.c - fuzz target for base/url.c: URLs come from every page a
 * crawl reads.
 *
 * The input is a base URL, a newline, and a reference (without a newline
 * it is the reference, against a fixed base). Every call gets exact-size
 * copies and buffers of exactly the _size() each function asks for, so
 * ASan sees a read or write past either. For each of the four option sets:
 * a canonical URL is http(s), has no byte a URL may not hold, and
 * normalises to itself (idempotence); a reference without scheme or
 * authority, resolved against a base that normalises, normalises too;
 * url_link agrees with url_normalize(url_resolve()); the authority of a
 * canonical URL is the text between its "//" (and userinfo) and its path,
 * and its path and query are what follows. Any breach aborts. */
#include "base/url.h"

#include "fuzz_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err[URL_ERR_MAX];

static char *copy(const char *s, size_t n)
{
    char *c = malloc(n ? n : 1);
    must(c != NULL);
    memcpy(c, s, n);
    return c;
}

/* url_normalize into a malloc'd buffer of exactly url_normalize_size();
 * NULL when it fails (never for want of room). */
static char *normalize(const char *s, size_t n, unsigned flags, size_t *len)
{
    char *in = copy(s, n);
    size_t cap = url_normalize_size(n);
    char *out = malloc(cap);
    must(out != NULL);
    long r = url_normalize(in, n, flags, out, cap, err);
    free(in);
    must(r != URL_NOSPACE);
    if (r < 0) {
        must(err[0] != 0 && strlen(err) < URL_ERR_MAX);
        free(out);
        return NULL;
    }
    *len = (size_t)r;
    return out;
}

static void check_canonical(const char *u, size_t n, unsigned flags)
{
    must((n > 7 && memcmp(u, "http://", 7) == 0) || (n > 8 && memcmp(u, "https://", 8) == 0));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        must(c > 0x20 && c < 0x7f && c != '#' && !strchr("\"<>\\^`{|}", c));
    }
    size_t n2;
    char *again = normalize(u, n, flags, &n2);
    must(again != NULL && n2 == n && memcmp(again, u, n) == 0);
    free(again);

    /* authority and path_query are the two halves of a canonical URL */
    const char *host = u + (u[4] == 's' ? 8 : 7);
    const char *path = memchr(host, '/', n - (size_t)(host - u));
    must(path != NULL);
    const char *a = host; /* past the last "@" before the path: userinfo may hold "@" */
    for (const char *p = host; p < path; p++)
        if (*p == '@')
            a = p + 1;
    size_t an = (size_t)(path - a), cap = url_authority_size(n);
    char *out = malloc(cap);
    must(out != NULL);
    long r = url_authority(u, n, out, cap, err);
    must(r == (long)an && memcmp(out, a, an) == 0);
    free(out);
    if (flags == 0) {
        size_t pn = n - (size_t)(path - u);
        cap = url_path_query_size(n);
        out = malloc(cap);
        must(out != NULL);
        r = url_path_query(u, n, out, cap);
        must(r == (long)pn && memcmp(out, path, pn) == 0);
        free(out);
    }
}

static void run(const char *base, size_t bn, const char *ref, size_t rn, unsigned flags)
{
    size_t nb, nr;
    char *nbase = normalize(base, bn, flags, &nb);
    char *nref = normalize(ref, rn, flags, &nr);
    if (nbase)
        check_canonical(nbase, nb, flags);
    if (nref)
        check_canonical(nref, nr, flags);

    char *b = copy(base, bn), *r = copy(ref, rn);
    size_t cap = url_resolve_size(bn, rn);
    char *abs = malloc(cap);
    must(abs != NULL);
    long an = url_resolve(b, bn, r, rn, abs, cap, err);
    must(an != URL_NOSPACE);
    size_t wn = 0;
    char *want = an >= 0 ? normalize(abs, (size_t)an, flags, &wn) : NULL;
    if (want)
        check_canonical(want, wn, flags);
    struct url_split rs;
    url_split(r, rn, &rs);
    if (nbase && !rs.scheme.p && !rs.authority.p)
        must(want != NULL); /* a relative reference on a good base resolves to a good URL */

    cap = url_link_size(bn, rn);
    char *have = malloc(cap);
    must(have != NULL);
    long hn = url_link(b, bn, r, rn, flags, have, cap, err);
    must(hn != URL_NOSPACE);
    must(want ? (hn == (long)wn && memcmp(have, want, wn) == 0) : hn < 0);

    free(have);
    free(want);
    free(abs);
    free(b);
    free(r);
    free(nbase);
    free(nref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *nl = memchr(in, '\n', size);
    static const char fixed[] = "http://example.com/dir/page.html?q=1";
    for (unsigned flags = 0; flags < 4; flags++) {
        if (nl)
            run(in, (size_t)(nl - in), nl + 1, size - (size_t)(nl - in) - 1, flags);
        else
            run(fixed, sizeof fixed - 1, in, size, flags);
    }
    return 0;
}
