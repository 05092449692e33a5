/* demo_site.c - the synthetic site served under /demo/ for `shoal demo` and
 * the crawl tests.
 *
 * /demo/ is an index; /demo/p/N.html for N in 1..DEMO_PAGES are pages. What a
 * page is (fine, slow, or broken with a 500) and which pages it links to are
 * hashes of N, so the site has no state and is the same on every run. Each
 * page links to its successor (skipping broken pages), which makes every
 * fine page reachable from the index, and to a handful of hashed targets,
 * some past DEMO_PAGES (404). Links are written in mixed forms (absolute
 * path, relative, ../, ./, dot segments, fragments) so a crawler has to
 * normalise; there are no query strings, so one resource has one URL.
 *
 * demo_site_facts walks the same link generator the handler renders from,
 * which is why its numbers cannot drift from what is served.
 *
 * Threads: everything here is a pure function of its arguments; the handler
 * runs on libmicrohttpd's thread, the facts on whichever thread asks. */
#include "app/demo_site.h"
#include "base/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    DEMO_PAGES = 1000,
    DEMO_MISSING = 100, /* link targets DEMO_PAGES+1 .. DEMO_PAGES+DEMO_MISSING: 404 */
    DEMO_SLOW_MS = 150,
    MAX_LINKS = 12,
    HREF_MAX = 40,
    PAGE_CAP = 4096, /* a rendered page is about 1.5 KB */
    URL_MAX = 256,
};

static const char prefix[] = "/demo/";
static const char html_type[] = "text/html; charset=utf-8";

enum kind { K_MISSING, K_INDEX, K_PAGE, K_SLOW, K_ERROR };

struct link {
    int target;
    char href[HREF_MAX];
};

/* A 32-bit integer mixer (good avalanche, no state): all of the site's
 * "randomness" comes from here. */
static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static uint32_t hash2(int n, uint32_t salt)
{
    return mix((uint32_t)n * 0x9e3779b9U ^ mix(salt + 0x632be5abU));
}

static enum kind kind_of(int n)
{
    if (n == 0)
        return K_INDEX;
    if (n < 1 || n > DEMO_PAGES)
        return K_MISSING;
    uint32_t r = hash2(n, 1) % 100;
    return r < 2 ? K_ERROR : r < 4 ? K_SLOW : K_PAGE;
}

/* The next page after n that answers 200, or 0 after the last. */
static int next_ok(int n)
{
    for (int m = n + 1; m <= DEMO_PAGES; m++)
        if (kind_of(m) != K_ERROR)
            return m;
    return 0;
}

/* Which resource path names: 0 the index, N a page number (possibly out of
 * range), -1 nothing. Page numbers must be canonical ("7", not "007"), so no
 * two paths name one page. */
static int page_of(const char *path)
{
    if (strncmp(path, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *p = path + sizeof prefix - 1;
    if (*p == '\0')
        return 0;
    if (p[0] != 'p' || p[1] != '/' || p[2] < '1' || p[2] > '9')
        return -1;
    p += 2;
    int n = 0, digits = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (++digits > 6)
            return -1;
        n = n * 10 + (*p - '0');
    }
    return strcmp(p, ".html") == 0 ? n : -1;
}

static void add_link(struct link *l, int *count, int target, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l[*count].href, HREF_MAX, fmt, ap);
    va_end(ap);
    l[*count].target = target;
    (*count)++;
}

/* The links of page n (0 = the index), hrefs relative to that page's URL.
 * Both the renderer and demo_site_facts read them from here. */
static int page_links(int n, struct link *l)
{
    int count = 0;
    int next = next_ok(n);

    if (n == 0) {
        /* The index sits one level up, so its relative forms differ. */
        add_link(l, &count, next, "p/%d.html", next);
        for (int i = 0; i < 7; i++) {
            uint32_t r = hash2(0, 100 + (uint32_t)i);
            int t = 1 + (int)((r >> 8) % DEMO_PAGES);
            if (r % 3 == 0)
                add_link(l, &count, t, "./p/%d.html", t);
            else if (r % 3 == 1)
                add_link(l, &count, t, "/demo/p/%d.html#top", t);
            else
                add_link(l, &count, t, "p/%d.html", t);
        }
        return count;
    }

    add_link(l, &count, 0, "../");
    if (next)
        add_link(l, &count, next, "%d.html", next);
    int k = 5 + (int)(hash2(n, 2) % 4);
    for (int i = 0; i < k; i++) {
        uint32_t r = hash2(n, 10 + (uint32_t)i);
        int t = r % 12 == 0 ? DEMO_PAGES + 1 + (int)((r >> 8) % DEMO_MISSING)
                            : 1 + (int)((r >> 8) % DEMO_PAGES);
        switch ((r >> 4) % 6) {
        case 0:
            add_link(l, &count, t, "/demo/p/%d.html", t);
            break;
        case 1:
            add_link(l, &count, t, "%d.html", t);
            break;
        case 2:
            add_link(l, &count, t, "../p/%d.html", t);
            break;
        case 3:
            add_link(l, &count, t, "./%d.html#top", t);
            break;
        case 4:
            add_link(l, &count, t, "/demo/p/%d.html#s%d", t, i);
            break;
        default:
            add_link(l, &count, t, "../p/../p/%d.html", t);
            break;
        }
    }
    add_link(l, &count, n, "#top");
    return count;
}

static const char *const words[] = {
    "shoal", "worker", "queue",  "crawl",  "fetch",  "metric", "trace", "span",
    "log",   "pool",   "job",    "retry",  "signal", "latency", "link", "page",
};

static void render_page(int n, struct strbuf *b)
{
    struct link links[MAX_LINKS];
    int count = page_links(n, links);
    char title[32];

    if (n == 0)
        snprintf(title, sizeof title, "Demo site");
    else
        snprintf(title, sizeof title, "Demo page %d", n);
    strbuf_printf(b,
                  "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
                  "<title>%s</title></head>\n<body id=\"top\">\n<h1>%s</h1>\n<p>",
                  title, title);
    for (int i = 0; i < 100; i++) {
        uint32_t r = hash2(n, 1000 + (uint32_t)i);
        if (i)
            strbuf_add(b, " ", 1);
        strbuf_str(b, words[r % (sizeof words / sizeof words[0])]);
    }
    strbuf_str(b, ".</p>\n<ul>\n");
    for (int i = 0; i < count; i++) {
        const struct link *l = &links[i];
        if (l->target == 0)
            strbuf_printf(b, "<li><a href=\"%s\">home</a></li>\n", l->href);
        else if (l->href[0] == '#')
            strbuf_printf(b, "<li><a href=\"%s\">top</a></li>\n", l->href);
        else
            strbuf_printf(b, "<li><a href=\"%s\">page %d</a></li>\n", l->href, l->target);
    }
    strbuf_str(b, "</ul>\n</body>\n</html>\n");
}

static int demo_handle(void *arg, const struct httpd_request *req, struct httpd_response *resp)
{
    struct strbuf b = {0};
    strbuf_reserve(&b, PAGE_CAP);
    resp->content_type = html_type;
    if (strcmp(req->path, "/demo/facts.json") == 0) {
        /* what a complete crawl must find, for tests and curious users; no
         * page links here, so a crawl never counts it */
        struct demo_site_facts f;
        demo_site_facts(&f);
        strbuf_printf(&b,
                      "{\"pages\":%d,\"not_found\":%d,\"errors\":%d,\"slow\":%d,"
                      "\"slow_ms\":%u}\n",
                      f.pages, f.not_found, f.errors, f.slow, f.slow_ms);
        resp->content_type = "application/json";
    } else {
        int n = page_of(req->path);
        switch (n < 0 ? K_MISSING : kind_of(n)) {
        case K_MISSING:
            resp->status = 404;
            strbuf_str(&b, "<!doctype html>\n<title>Not found</title>\n"
                           "<p>No such demo page.</p>\n");
            break;
        case K_ERROR:
            resp->status = 500;
            strbuf_str(&b, "<!doctype html>\n<title>Error</title>\n<p>This demo page always "
                           "fails.</p>\n");
            break;
        case K_SLOW:
            resp->delay_ms = DEMO_SLOW_MS;
            /* fall through */
        case K_INDEX:
        case K_PAGE:
            render_page(n, &b);
            break;
        }
    }
    if (b.oom) {
        free(b.p);
        return -1;
    }
    resp->body = b.p;
    resp->len = b.len;
    return 0;
}

int demo_site_register(httpd *h)
{
    return httpd_route(h, prefix, demo_handle, NULL);
}

/* Resolves href against the path base (RFC 3986 section 5.2, for the forms a
 * same-host crawl meets): drops the fragment, merges relative references with
 * base's directory and removes dot segments. Returns -1 if it does not fit
 * or is not a path on this host. */
static int resolve(const char *base, const char *href, char *out, size_t outlen)
{
    char merged[URL_MAX];
    size_t hlen = strcspn(href, "#");

    if (strcspn(href, ":/?#") < hlen && href[strcspn(href, ":/?#")] == ':')
        return -1; /* has a scheme: another host as far as we are concerned */
    if (hlen == 0) {
        if (snprintf(merged, sizeof merged, "%s", base) >= (int)sizeof merged)
            return -1;
    } else if (href[0] == '/') {
        if (hlen >= sizeof merged)
            return -1;
        memcpy(merged, href, hlen);
        merged[hlen] = '\0';
    } else {
        size_t dir = (size_t)(strrchr(base, '/') - base) + 1;
        if (dir + hlen >= sizeof merged)
            return -1;
        memcpy(merged, base, dir);
        memcpy(merged + dir, href, hlen);
        merged[dir + hlen] = '\0';
    }

    /* Segment stack over merged (which starts with '/'). */
    const char *seg[URL_MAX];
    size_t seglen[URL_MAX];
    int depth = 0, trailing = 0;
    for (const char *p = merged + 1;;) {
        size_t len = strcspn(p, "/");
        int last = p[len] == '\0';
        if (len == 1 && p[0] == '.') {
            trailing = last;
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (depth > 0)
                depth--;
            trailing = last;
        } else {
            seg[depth] = p;
            seglen[depth++] = len;
            trailing = 0;
        }
        if (last)
            break;
        p += len + 1;
    }
    size_t o = 0;
    for (int i = 0; i < depth; i++) {
        if (o + 1 + seglen[i] >= outlen)
            return -1;
        out[o++] = '/';
        memcpy(out + o, seg[i], seglen[i]);
        o += seglen[i];
    }
    if ((trailing || depth == 0) && o + 1 < outlen)
        out[o++] = '/';
    out[o] = '\0';
    return 0;
}

/* A set of URL strings with open addressing, sized for the whole site. */
enum { SEEN_CAP = 4096 };

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261U;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619U;
    return h;
}

/* Returns 1 if url was new (and adds it), 0 if seen, -1 if full. */
static int seen_add(char **seen, const char *url, char **stored)
{
    for (uint32_t i = str_hash(url) % SEEN_CAP, probes = 0; probes < SEEN_CAP / 2;
         i = (i + 1) % SEEN_CAP, probes++) {
        if (!seen[i]) {
            seen[i] = strdup(url);
            *stored = seen[i];
            return seen[i] ? 1 : -1;
        }
        if (strcmp(seen[i], url) == 0)
            return 0;
    }
    return -1;
}

void demo_site_facts(struct demo_site_facts *out)
{
    char **seen = calloc(SEEN_CAP, sizeof *seen);
    const char **queue = calloc(SEEN_CAP, sizeof *queue);
    struct demo_site_facts f = {0, 0, 0, 0, DEMO_SLOW_MS};
    size_t head = 0, tail = 0;
    char *stored;

    if (!seen || !queue || seen_add(seen, prefix, &stored) != 1)
        goto fail;
    queue[tail++] = stored;
    while (head < tail) {
        const char *url = queue[head++];
        int n = page_of(url);
        enum kind k = n < 0 ? K_MISSING : kind_of(n);
        if (k == K_MISSING) {
            f.not_found++;
            continue;
        }
        if (k == K_ERROR) {
            f.errors++;
            continue;
        }
        f.pages++;
        f.slow += k == K_SLOW;

        struct link links[MAX_LINKS];
        int count = page_links(n, links);
        for (int i = 0; i < count; i++) {
            char abs[URL_MAX];
            if (resolve(url, links[i].href, abs, sizeof abs) != 0)
                continue;
            int added = seen_add(seen, abs, &stored);
            if (added < 0)
                goto fail;
            if (added)
                queue[tail++] = stored;
        }
    }
    *out = f;
    goto done;

fail:
    /* Only when memory is short; counts no crawl can match. */
    *out = (struct demo_site_facts){-1, -1, -1, -1, DEMO_SLOW_MS};
done:
    if (seen)
        for (size_t i = 0; i < SEEN_CAP; i++)
            free(seen[i]);
    free(seen);
    free(queue);
}
