/* robots.c - see robots.h. A file is read line by line once: a group is
 * one or more user-agent lines and the rules after them; the rules of the
 * groups that name our token, and of the "*" groups, are kept apart, and
 * the end of the file decides which set stands. Rules are stored with
 * their patterns in canonical form, so asking is a scan of a short list. */
#include "core/robots.h"
#include "base/hex.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct rule {
    char *pattern; /* canonical; may end in '$' */
    size_t len;
    int allow;
};

struct ruleset {
    struct rule *rules;
    int n, cap;
    double delay; /* -1: none */
    int seen;     /* a group named this set's agent(s) */
};

struct robots {
    struct ruleset rules; /* the chosen set */
    int allow_all, disallow_all;
    char **sitemaps;
    int nsitemaps;
};

static int unreserved(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

size_t robots_canonical(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
            int v = hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]);
            if (v < 0x80 && unreserved(v)) {
                out[o++] = (char)v;
            } else {
                out[o++] = '%';
                out[o++] = hex[v >> 4];
                out[o++] = hex[v & 15];
            }
            i += 2;
        } else if (c >= 0x80 || c <= 0x20 || c == 0x7f) {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
    return o;
}

/* Wildcard matching without recursion: on a mismatch, go back to the last
 * `*` and let it take one more octet. A pattern without a final `$` only
 * needs to match a prefix, as if it ended in `*`. */
int robots_match(const char *p, size_t plen, const char *s, size_t len)
{
    int anchored = plen > 0 && p[plen - 1] == '$';
    if (anchored)
        plen--;
    size_t i = 0, j = 0, star = (size_t)-1, mark = 0;
    while (j < len) {
        if (i < plen && p[i] == '*') {
            star = i++;
            mark = j;
        } else if (i < plen && p[i] == s[j]) {
            i++;
            j++;
        } else if (i == plen && !anchored) {
            return 1; /* the whole pattern matched a prefix */
        } else if (star != (size_t)-1) {
            i = star + 1;
            j = ++mark;
        } else {
            return 0;
        }
    }
    while (i < plen && p[i] == '*')
        i++;
    return i == plen;
}

static int add_rule(struct ruleset *rs, const char *value, size_t n, int allow)
{
    if (rs->n == rs->cap) {
        int cap = rs->cap ? rs->cap * 2 : 16;
        struct rule *r = realloc(rs->rules, (size_t)cap * sizeof *r);
        if (!r)
            return -1;
        rs->rules = r;
        rs->cap = cap;
    }
    char *pat = malloc(3 * n + 1);
    if (!pat)
        return -1;
    size_t len = robots_canonical(value, n, pat);
    rs->rules[rs->n++] = (struct rule){pat, len, allow};
    return 0;
}

static void free_set(struct ruleset *rs)
{
    for (int i = 0; i < rs->n; i++)
        free(rs->rules[i].pattern);
    free(rs->rules);
    memset(rs, 0, sizeof *rs);
    rs->delay = -1;
}

/* The product token: letters, '_' and '-' from the start ("shoal/0.1" -> "shoal"). */
static size_t token_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (isalpha((unsigned char)s[i]) || s[i] == '_' || s[i] == '-'))
        i++;
    return i;
}

static int key_is(const char *k, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(k, want, n) == 0;
}

static struct robots *new_robots(void)
{
    struct robots *r = calloc(1, sizeof *r);
    if (r)
        r->rules.delay = -1;
    return r;
}

struct robots *robots_parse(const char *body, size_t len, const char *agent)
{
    struct robots *r = new_robots();
    struct ruleset mine = {.delay = -1}, star = {.delay = -1};
    if (!r)
        return NULL;
    const char *tok = agent ? agent : "";
    size_t toklen = token_len(tok, strlen(tok));
    if (len > ROBOTS_MAX_BYTES)
        len = ROBOTS_MAX_BYTES;
    /* the group being read: does it name us, or "*"? */
    int in_agents = 0, for_me = 0, for_star = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && body[end] != '\n' && body[end] != '\r')
            end++;
        const char *line = body + pos;
        size_t n = end - pos;
        pos = end + 1;
        const char *hash = memchr(line, '#', n);
        if (hash)
            n = (size_t)(hash - line);
        const char *colon = memchr(line, ':', n);
        if (!colon)
            continue;
        const char *k = line, *v = colon + 1;
        size_t kn = (size_t)(colon - line), vn = n - kn - 1;
        while (kn && isspace((unsigned char)k[0]))
            k++, kn--;
        while (kn && isspace((unsigned char)k[kn - 1]))
            kn--;
        while (vn && isspace((unsigned char)v[0]))
            v++, vn--;
        while (vn && isspace((unsigned char)v[vn - 1]))
            vn--;
        if (key_is(k, kn, "user-agent")) {
            if (!in_agents)
                for_me = for_star = 0; /* a new group begins */
            in_agents = 1;
            size_t t = token_len(v, vn);
            if (vn >= 1 && v[0] == '*')
                for_star = 1;
            else if (t && toklen && t == toklen && strncasecmp(v, tok, t) == 0)
                for_me = 1;
            if (for_me)
                mine.seen = 1;
            if (for_star)
                star.seen = 1;
            continue;
        }
        if (key_is(k, kn, "sitemap")) {
            if (vn == 0)
                continue;
            char **s = realloc(r->sitemaps, (size_t)(r->nsitemaps + 1) * sizeof *s);
            if (!s || !(s[r->nsitemaps] = strndup(v, vn))) {
                if (s)
                    r->sitemaps = s;
                goto oom;
            }
            r->sitemaps = s;
            r->nsitemaps++;
            continue;
        }
        int allow = key_is(k, kn, "allow"), disallow = key_is(k, kn, "disallow");
        int delay = key_is(k, kn, "crawl-delay");
        if (!allow && !disallow && !delay)
            continue;
        in_agents = 0;
        if (!for_me && !for_star)
            continue; /* a rule outside any group, or of another crawler's */
        if (delay) {
            char buf[32];
            if (vn == 0 || vn >= sizeof buf)
                continue;
            memcpy(buf, v, vn);
            buf[vn] = 0;
            char *e;
            double d = strtod(buf, &e);
            if (e == buf || *e || !(d >= 0) || d > 86400)
                continue;
            if (for_me && mine.delay < 0)
                mine.delay = d;
            if (for_star && star.delay < 0)
                star.delay = d;
            continue;
        }
        if (vn == 0)
            continue; /* "Disallow:" with no path disallows nothing */
        if ((for_me && add_rule(&mine, v, vn, allow) != 0) ||
            (for_star && add_rule(&star, v, vn, allow) != 0))
            goto oom;
    }
    if (mine.seen) {
        r->rules = mine;
        free_set(&star);
    } else {
        r->rules = star;
        free_set(&mine);
    }
    return r;
oom:
    free_set(&mine);
    free_set(&star);
    robots_free(r);
    return NULL;
}

struct robots *robots_allow_all(void)
{
    struct robots *r = new_robots();
    if (r)
        r->allow_all = 1;
    return r;
}

struct robots *robots_disallow_all(void)
{
    struct robots *r = new_robots();
    if (r)
        r->disallow_all = 1;
    return r;
}

void robots_free(struct robots *r)
{
    if (!r)
        return;
    free_set(&r->rules);
    for (int i = 0; i < r->nsitemaps; i++)
        free(r->sitemaps[i]);
    free(r->sitemaps);
    free(r);
}

int robots_allowed(const struct robots *r, const char *path, size_t len)
{
    if (len >= 11 && memcmp(path, "/robots.txt", 11) == 0 &&
        (len == 11 || path[11] == '?' || path[11] == '#'))
        return 1;
    if (r->allow_all)
        return 1;
    if (r->disallow_all)
        return 0;
    if (r->rules.n == 0)
        return 1;
    char stack[1024];
    char *canon = 3 * len + 1 <= sizeof stack ? stack : malloc(3 * len + 1);
    if (!canon)
        return 0; /* out of memory: the careful answer */
    size_t clen = robots_canonical(path, len, canon);
    size_t best = 0;
    int found = 0, allow = 1;
    for (int i = 0; i < r->rules.n; i++) {
        const struct rule *ru = &r->rules.rules[i];
        if (found && (ru->len < best || (ru->len == best && !ru->allow)))
            continue; /* cannot beat the match in hand */
        if (!robots_match(ru->pattern, ru->len, canon, clen))
            continue;
        if (!found || ru->len > best || ru->allow) {
            found = 1;
            best = ru->len;
            allow = ru->allow;
        }
    }
    if (canon != stack)
        free(canon);
    return allow;
}

double robots_crawl_delay(const struct robots *r)
{
    return r->rules.delay;
}

int robots_nsitemaps(const struct robots *r)
{
    return r->nsitemaps;
}

const char *robots_sitemap(const struct robots *r, int i)
{
    return i >= 0 && i < r->nsitemaps ? r->sitemaps[i] : NULL;
}
