/* fuzz_links.c - fuzz target for base/links.c: every page a crawl fetches
 * goes through its scan.
 *
 * The input is the page, scanned from an exact-size copy so ASan sees a
 * read past it. Every reference must be a slice of the page, of a kind the
 * header names, with a rel only on <link>; the first <base> at most once;
 * a scan told to stop after k references reports exactly the first k.
 * Each value is then decoded into a buffer of exactly links_decode_size():
 * a value without "&" decodes to itself, valid UTF-8 stays valid, and
 * decoding never lengthens a value past the bound. The decoded value,
 * cleaned, has no space or control at either end and no tab or newline
 * inside, and cleaning is idempotent; refresh and srcset URLs lie inside
 * their value and are not empty (a srcset URL holds no whitespace). The
 * whole input is also decoded, cleaned, and read as a refresh and a
 * srcset, as if it were one value. Any breach aborts. */
#include "base/links.h"

#include "fuzz_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seen {
    const char *page;
    size_t n;
    size_t count, stop_after;
    int bases;
    struct link_ref first[8];
};

static bool space_or_control(unsigned char c)
{
    return c <= ' ' || c == 0x7f;
}

static void check_value(const char *v, size_t n, enum link_kind kind, unsigned flags)
{
    char *out = malloc(links_decode_size(n));
    must(out != NULL);
    size_t len = links_decode(v, n, out);
    must(len <= links_decode_size(n));
    if (!memchr(v, '&', n))
        must(len == n && memcmp(out, v, n) == 0);
    if (is_utf8(v, n))
        must(is_utf8(out, len));

    size_t off, ul;
    if (kind == LINK_REFRESH && links_refresh_url(out, len, &off, &ul))
        must(ul > 0 && off + ul <= len);
    if (flags & LINK_SRCSET) {
        size_t pos = 0, last = 0;
        while (links_srcset_next(out, len, &pos, &off, &ul)) {
            must(ul > 0 && off >= last && off + ul <= len && pos <= len);
            for (size_t i = off; i < off + ul; i++)
                must(out[i] != ' ' && out[i] != '\t' && out[i] != '\n');
            last = off + ul;
        }
    }

    size_t cn = links_clean(out, len);
    must(cn <= len);
    if (cn) {
        must(!space_or_control((unsigned char)out[0]) && out[0] != '#');
        must(!space_or_control((unsigned char)out[cn - 1]));
        must(!memchr(out, '\t', cn) && !memchr(out, '\n', cn) && !memchr(out, '\r', cn));
        must(links_clean(out, cn) == cn);
    }
    free(out);
}

static int on_ref(void *ud, const struct link_ref *r)
{
    struct seen *s = ud;
    must(r->v >= s->page && r->n <= s->n && r->v + r->n <= s->page + s->n);
    must(r->kind <= LINK_ROBOTS_NOFOLLOW);
    must(!r->rel || r->kind == LINK_LINK);
    if (r->rel)
        must(r->rel >= s->page && r->rel + r->rel_n <= s->page + s->n);
    must(!(r->flags & LINK_SRCSET) || r->kind == LINK_IMG);
    if (r->kind == LINK_BASE)
        must(++s->bases == 1);
    if (s->count < 8)
        s->first[s->count] = *r;
    s->count++;
    if (!s->stop_after)
        check_value(r->v, r->n, r->kind, r->flags);
    return s->stop_after && s->count >= s->stop_after;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *page = malloc(size ? size : 1);
    must(page != NULL);
    memcpy(page, data, size);

    struct seen all = {.page = page, .n = size};
    links_scan(page, size, on_ref, &all);

    for (size_t k = 1; k <= 3 && k <= all.count; k++) {
        struct seen some = {.page = page, .n = size, .stop_after = k};
        links_scan(page, size, on_ref, &some);
        must(some.count == k);
        for (size_t i = 0; i < k && i < 8; i++)
            must(memcmp(&some.first[i], &all.first[i], sizeof all.first[i]) == 0);
    }

    check_value(page, size, LINK_REFRESH, 0);
    check_value(page, size, LINK_IMG, LINK_SRCSET);
    free(page);
    return 0;
}
