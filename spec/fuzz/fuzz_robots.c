/* fuzz_robots.c - fuzz target for the robots.txt reader (core/robots.c).
 *
 * A robots.txt comes from any site a crawl reaches. The input's first line
 * is a URL path, its second a pattern, and the whole input also a robots
 * file. For every input: no crash and no read past the input (exact-size
 * copies, for ASan); /robots.txt is always allowed; asking twice gives the
 * same answer; canonical percent-encoding is idempotent and never longer
 * than 3 octets per octet; and the matcher agrees with a plain recursive
 * one written here apart from the engine's. Any breach aborts. */
#include "core/robots.h"

#include "fuzz_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The reference: `*` any run, a final `$` the end, otherwise a prefix. */
static int ref(const char *p, size_t pn, const char *s, size_t sn, int depth)
{
    if (depth > 64)
        return -1; /* too deep for the reference: no verdict */
    if (pn == 1 && p[0] == '$')
        return sn == 0;
    if (pn == 0)
        return 1;
    if (p[0] == '*') {
        for (size_t k = 0; k <= sn; k++) {
            int r = ref(p + 1, pn - 1, s + k, sn - k, depth + 1);
            if (r != 0)
                return r;
        }
        return 0;
    }
    return sn > 0 && p[0] == s[0] && ref(p + 1, pn - 1, s + 1, sn - 1, depth);
}

static char *line(const uint8_t *data, size_t size, size_t *at, size_t *len)
{
    size_t i = *at;
    while (i < size && data[i] != '\n')
        i++;
    *len = i - *at;
    char *out = malloc(*len ? *len : 1);
    if (out)
        memcpy(out, data + *at, *len);
    *at = i < size ? i + 1 : size;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t at = 0, plen, qlen;
    char *path = line(data, size, &at, &plen);
    char *pat = line(data, size, &at, &qlen);
    char *body = malloc(size ? size : 1);
    char *c1 = malloc(3 * plen + 1), *c2 = malloc(9 * plen + 1), *cq = malloc(3 * qlen + 1);
    if (!path || !pat || !body || !c1 || !c2 || !cq)
        goto out;
    memcpy(body, data, size);

    size_t n1 = robots_canonical(path, plen, c1);
    must(n1 <= 3 * plen && strlen(c1) == n1);
    size_t n2 = robots_canonical(c1, n1, c2);
    must(n2 == n1 && memcmp(c1, c2, n1) == 0);

    size_t nq = robots_canonical(pat, qlen, cq);
    if (nq <= 24 && n1 <= 48 && memchr(cq, 0, nq) == NULL && memchr(c1, 0, n1) == NULL) {
        int want = ref(cq, nq, c1, n1, 0);
        if (want >= 0)
            must(robots_match(cq, nq, c1, n1) == want);
    }

    struct robots *r = robots_parse(body, size, "shoal");
    if (r) {
        int a = robots_allowed(r, path, plen);
        must(a == 0 || a == 1);
        must(robots_allowed(r, path, plen) == a);
        must(robots_allowed(r, "/robots.txt", 11) == 1);
        double d = robots_crawl_delay(r);
        must(d == -1 || (d >= 0 && d <= 86400));
        for (int i = 0; i < robots_nsitemaps(r); i++)
            must(robots_sitemap(r, i) != NULL);
        robots_free(r);
    }
out:
    free(path);
    free(pat);
    free(body);
    free(c1);
    free(c2);
    free(cq);
    return 0;
}
