/* url.c - see url.h. The rules are those lua/shoal/crawl.lua applied in
 * Lua before they moved here, byte for byte: the specs of both
 * (spec/lua/test_crawl.lua, spec/unit/base/test_url.c) hold them.
 *
 * Output goes through a bounded writer that stops at the buffer's end and
 * remembers it did; the path is written with its escapes fixed and then
 * its dot segments are removed in place, which only ever shortens it. */
#include "base/url.h"
#include "base/hex.h"
#include "base/numtext.h"

#include <idn2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct out {
    char *p;
    size_t cap, len;
    int full; /* a write did not fit: the result is URL_NOSPACE */
};

/* s may be NULL when n is 0 (an absent component) */
static void put(struct out *o, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (o->full || n > o->cap - o->len) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_char(struct out *o, char c)
{
    put(o, &c, 1);
}

static long finish(struct out *o)
{
    return o->full ? URL_NOSPACE : (long)o->len;
}

/* Byte classes, one table lookup each (links() asks them of every byte
 * of every link on a page). */
enum {
    C_ALPHA = 1,
    C_DIGIT = 2,
    C_UNRESERVED = 4, /* RFC 3986 2.3 */
    C_SCHEME = 8,     /* after a scheme's first letter: letters, digits, "+-." */
    C_ENCODE = 16,    /* a URL may not hold it as it is: controls, space, non-ASCII,
                       * "<>\"{}|\\^`" ("%" is apart: it may start an escape) */
    C_DELIM = 64,     /* ends the path: "?", "#" */
    C_HOST = 32,      /* in a host: RFC 3986 3.2.2's reg-name ("%" for its escapes),
                       * ":" of an IPv6 literal, raw UTF-8 for an IDN */
};
#define ALNUM (C_UNRESERVED | C_SCHEME | C_HOST)
/* clang-format off */
static const unsigned char cls[256] = {
    [0 ... 0x20] = C_ENCODE,
    ['a' ... 'z'] = C_ALPHA | ALNUM,
    ['A' ... 'Z'] = C_ALPHA | ALNUM,
    ['0' ... '9'] = C_DIGIT | ALNUM,
    ['-'] = C_UNRESERVED | C_SCHEME | C_HOST,
    ['.'] = C_UNRESERVED | C_SCHEME | C_HOST,
    ['_'] = C_UNRESERVED | C_HOST,
    ['~'] = C_UNRESERVED | C_HOST,
    ['+'] = C_SCHEME | C_HOST,
    ['!'] = C_HOST, ['$'] = C_HOST, ['&'] = C_HOST, ['\''] = C_HOST, ['('] = C_HOST,
    [')'] = C_HOST, ['*'] = C_HOST, [','] = C_HOST, [';'] = C_HOST, ['='] = C_HOST,
    ['%'] = C_HOST, [':'] = C_HOST, ['?'] = C_DELIM, ['#'] = C_DELIM,
    ['"'] = C_ENCODE, ['<'] = C_ENCODE, ['>'] = C_ENCODE, ['\\'] = C_ENCODE,
    ['^'] = C_ENCODE, ['`'] = C_ENCODE, ['{'] = C_ENCODE, ['|'] = C_ENCODE,
    ['}'] = C_ENCODE,
    [0x7f] = C_ENCODE,
    [0x80 ... 0xff] = C_ENCODE | C_HOST,
};
/* clang-format on */
#undef ALNUM

static int is(int c, int class)
{
    return cls[(unsigned char)c] & class;
}

static int to_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static void err_set(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err_set(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, URL_ERR_MAX, fmt, ap);
    va_end(ap);
}

/* A URL in an error message, cut short as "'first 117 bytes...'": pages
 * hold URLs of any length. Up to 122 bytes. */
static const char *quoted(char *buf, size_t bufsize, const char *s, size_t n)
{
    if (n > 120)
        snprintf(buf, bufsize, "'%.117s...'", s);
    else
        snprintf(buf, bufsize, "'%.*s'", (int)n, s);
    return buf;
}

void url_split(const char *s, size_t n, struct url_split *u)
{
    memset(u, 0, sizeof *u);
    size_t i = 0;
    if (n > 0 && is(s[0], C_ALPHA)) {
        size_t j = 1;
        while (j < n && is(s[j], C_SCHEME))
            j++;
        if (j < n && s[j] == ':') {
            u->scheme = (struct url_part){s, j};
            i = j + 1;
        }
    }
    /* byte by byte: on strings this short, memchr's set-up costs more */
    size_t j = i;
    while (j < n && !is(s[j], C_DELIM))
        j++;
    size_t end = j;
    if (j < n && s[j] == '?') {
        size_t qs = ++j;
        while (j < n && s[j] != '#')
            j++;
        u->query = (struct url_part){s + qs, j - qs};
    }
    if (j < n)
        u->fragment = (struct url_part){s + j + 1, n - j - 1};
    if (end - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t a_end = i + 2;
        while (a_end < end && s[a_end] != '/')
            a_end++;
        u->authority = (struct url_part){s + i + 2, a_end - i - 2};
        i = a_end;
    }
    u->path = (struct url_part){s + i, end - i};
}

/* RFC 3986 5.2.4 on p[0..len), in place (the output never passes the
 * input), rule by rule; returns the new length. The output is a run of
 * segments, each "/x" but maybe the first, so dropping the last one (rule
 * C) is cutting at the last "/". */
/* Whether p may hold a dot segment: most paths have none. */
static int may_have_dots(const char *p, size_t len)
{
    if (len == 0)
        return 0;
    if (p[0] == '.')
        return 1;
    for (size_t k = 0; k + 1 < len; k++)
        if (p[k] == '/' && p[k + 1] == '.')
            return 1;
    return 0;
}

static size_t remove_dots(char *p, size_t len)
{
    if (!may_have_dots(p, len))
        return len;
    size_t i = 0, o = 0;
#define AT(k) ((k) < len ? p[k] : -1)
    while (i < len) {
        int b1 = p[i], b2 = AT(i + 1), b3 = AT(i + 2);
        if (b1 == '.' && b2 == '.' && b3 == '/') { /* A: "../" */
            i += 3;
        } else if (b1 == '.' && b2 == '/') { /* A: "./" */
            i += 2;
        } else if (b1 == '/' && b2 == '.' && (b3 == '/' || i + 2 == len)) { /* B */
            if (b3 == '/') {
                i += 2;
            } else {
                p[o++] = '/';
                i = len;
            }
        } else if (b1 == '/' && b2 == '.' && b3 == '.' &&
                   (i + 3 == len || p[i + 3] == '/')) { /* C: "/../", "/.." */
            while (o > 0 && p[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            if (i + 3 == len)
                p[o++] = '/';
            i += 3;
        } else if (b1 == '.' && (i + 1 == len || (b2 == '.' && i + 2 == len))) { /* D */
            i = len;
        } else { /* E: the first segment, with its "/", moves to the output */
            size_t e = i + 1;
            while (e < len && p[e] != '/')
                e++;
            memmove(p + o, p + i, e - i);
            o += e - i;
            i = e;
        }
    }
#undef AT
    return o;
}

/* s with its percent-encoding made canonical (RFC 3986 6.2.2.2): escapes
 * of unreserved characters decoded, the others in upper-case hex, a "%"
 * that starts no escape and the bytes of must_encode encoded. */
static int put_escaped(struct out *o, const char *s, size_t n)
{
    int dot = 0; /* a "%2E" became "." */
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0; /* bytes before i that go out as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '%' && !is(c, C_ENCODE)) {
            run++;
            continue;
        }
        put(o, s + i - run, run);
        run = 0;
        if (c != '%') {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(o, e, 3);
            continue;
        }
        int h1 = i + 1 < n ? hex_digit((unsigned char)s[i + 1]) : -1;
        int h2 = h1 >= 0 && i + 2 < n ? hex_digit((unsigned char)s[i + 2]) : -1;
        if (h2 < 0) { /* a lone "%": its own escape, then the digit it had, if any */
            put(o, "%25", 3);
            continue;
        }
        int v = h1 * 16 + h2;
        if (is(v, C_UNRESERVED)) {
            dot |= v == '.';
            put_char(o, (char)v);
        } else {
            char e[3] = {'%', hex[h1], hex[h2]};
            put(o, e, 3);
        }
        i += 2;
    }
    put(o, s + n - run, run);
    return dot;
}

/* A path, canonical: escapes fixed, then dot segments removed. clean: s
 * has none already, so only those an escape made can be left. */
static void put_path(struct out *o, const char *s, size_t n, int clean)
{
    size_t start = o->len;
    int dot = put_escaped(o, s, n);
    if (!o->full && (dot || !clean))
        o->len = start + remove_dots(o->p + start, o->len - start);
}

int url_parse_authority(const char *a, size_t n, struct url_authority_parts *ap, char *err)
{
    char q[128];
    memset(ap, 0, sizeof *ap);
    ap->port = -1;
    const char *hp = a; /* host and port: after the last "@", as browsers read it */
    for (size_t i = n; i > 0; i--) {
        if (a[i - 1] == '@') {
            ap->userinfo = (struct url_part){a, i - 1};
            hp = a + i;
            break;
        }
    }
    size_t hn = n - (size_t)(hp - a);
    const char *port = NULL; /* the digits after ":", if there is one */
    size_t pn = 0;
    if (hn > 0 && hp[0] == '[') {
        size_t j = 1;
        while (j < hn && (hex_digit((unsigned char)hp[j]) >= 0 || hp[j] == ':' || hp[j] == '.'))
            j++;
        if (j == 1 || j == hn || hp[j] != ']') {
            err_set(err, "bad IPv6 literal in %s", quoted(q, sizeof q, a, n));
            return URL_ERROR;
        }
        ap->host = (struct url_part){hp + 1, j - 1};
        ap->ipv6 = 1;
        if (j + 1 < hn) {
            if (hp[j + 1] != ':')
                goto bad_port;
            port = hp + j + 2;
            pn = hn - j - 2;
        }
    } else {
        const char *colon = memchr(hp, ':', hn);
        size_t h_end = colon ? (size_t)(colon - hp) : hn;
        ap->host = (struct url_part){hp, h_end};
        if (colon) {
            port = colon + 1;
            pn = hn - h_end - 1;
        }
    }
    long v = 0;
    for (size_t i = 0; i < pn; i++) {
        if (!is(port[i], C_DIGIT))
            goto bad_port;
        if (v <= 65535)
            v = v * 10 + (port[i] - '0');
    }
    for (size_t i = 0; i < ap->host.n; i++) {
        if (!is(ap->host.p[i], C_HOST)) {
            err_set(err, "bad character in host %s", quoted(q, sizeof q, ap->host.p, ap->host.n));
            return URL_ERROR;
        }
    }
    if (pn > 0) {
        if (v > 65535) {
            err_set(err, "port out of range in %s", quoted(q, sizeof q, a, n));
            return URL_ERROR;
        }
        ap->port = v;
    }
    return 0;
bad_port:
    err_set(err, "bad port in %s", quoted(q, sizeof q, a, n));
    return URL_ERROR;
}

/* A host is an IDN when it has a non-ASCII byte, raw or escaped. */
static int is_idn(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80)
            return 1;
        if (c == '%' && i + 2 < n && hex_digit((unsigned char)s[i + 1]) >= 8 &&
            hex_digit((unsigned char)s[i + 2]) >= 0)
            return 1;
    }
    return 0;
}

/* Longest IDN host handed to libidn2: DNS names stop at 253 bytes, and
 * each of their characters takes at most 4 bytes of UTF-8. */
#define IDN_MAX 1024

/* The A-label form of an IDN host, UTS #46 as browsers apply it:
 * nontransitional first ("faß.de" stays apart from "fass.de"), then
 * transitional for names only the older rules take. */
static void put_idn(struct out *o, const char *s, size_t n, char *err, int *failed)
{
    char q[128], name[IDN_MAX];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && hex_digit((unsigned char)s[i + 1]) >= 0 &&
            hex_digit((unsigned char)s[i + 2]) >= 0) {
            c = hex_digit((unsigned char)s[i + 1]) * 16 + hex_digit((unsigned char)s[i + 2]);
            i += 2;
        }
        if (c == 0 || len + 1 >= sizeof name) {
            err_set(err, "bad internationalised host %s: %s (fix the link, or skip it)",
                    quoted(q, sizeof q, s, n), c == 0 ? "an escaped NUL" : "too long");
            *failed = 1;
            return;
        }
        name[len++] = (char)c;
    }
    name[len] = 0;
    char *ascii = NULL;
    int rc = idn2_to_ascii_8z(name, &ascii, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK &&
        idn2_to_ascii_8z(name, &ascii, IDN2_NFC_INPUT | IDN2_TRANSITIONAL) == IDN2_OK)
        rc = IDN2_OK;
    if (rc != IDN2_OK) {
        err_set(err, "bad internationalised host %s: %s (IDNA, UTS #46)", quoted(q, sizeof q, s, n),
                idn2_strerror(rc));
        *failed = 1;
        return;
    }
    size_t an = strlen(ascii);
    for (size_t i = 0; i < an; i++) {
        /* what the name decoded to must still be a host: "%2F" is no label */
        if (!is(ascii[i], C_HOST) || ascii[i] == '%' || ascii[i] == ':' ||
            (unsigned char)ascii[i] >= 0x80) {
            err_set(err, "bad character in host %s (once decoded)", quoted(q, sizeof q, s, n));
            *failed = 1;
            break;
        }
        ascii[i] = (char)to_lower((unsigned char)ascii[i]);
    }
    if (!*failed && an == 0) {
        err_set(err, "no host");
        *failed = 1;
    }
    if (!*failed)
        put(o, ascii, an);
    idn2_free(ascii);
}

/* Writes the canonical host of ap; 0, or URL_ERROR. */
static int put_host(struct out *o, const struct url_authority_parts *ap, char *err)
{
    const char *h = ap->host.p;
    size_t n = ap->host.n;
    if (!ap->ipv6 && is_idn(h, n)) {
        int failed = 0;
        put_idn(o, h, n, err, &failed);
        return failed ? URL_ERROR : 0;
    }
    if (n > o->cap - o->len || o->full) {
        o->full = 1;
        return 0;
    }
    char *d = o->p + o->len;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)to_lower((unsigned char)h[i]);
    o->len += n;
    return 0;
}

long url_host(const struct url_authority_parts *ap, char *out, size_t cap, char *err)
{
    struct out o = {out, cap, 0, 0};
    if (put_host(&o, ap, err) != 0)
        return URL_ERROR;
    return finish(&o);
}

size_t url_host_size(const struct url_authority_parts *ap)
{
    return ap->host.n + 256;
}

/* The scheme's default port: http 80, https 443, otherwise -1. */
static long default_port(struct url_part scheme)
{
    if (scheme.n == 4 && strncasecmp(scheme.p, "http", 4) == 0)
        return 80;
    if (scheme.n == 5 && strncasecmp(scheme.p, "https", 5) == 0)
        return 443;
    return -1;
}

/* The host (bracketed when IPv6) and a port that is not the default. */
static int put_host_port(struct out *o, const struct url_authority_parts *ap, long dflt, char *err)
{
    if (ap->ipv6)
        put_char(o, '[');
    if (put_host(o, ap, err) != 0)
        return URL_ERROR;
    if (ap->ipv6)
        put_char(o, ']');
    if (ap->port >= 0 && ap->port != dflt) {
        char port[NUMTEXT_MAX];
        put_char(o, ':');
        put(o, port, numtext_u64(port, (uint64_t)ap->port));
    }
    return 0;
}

/* A resolved target before it is written: scheme, authority, query and
 * fragment point into base or ref; its path is head, then "/" when slash,
 * then tail, with its dot segments to remove when dots. */
struct target {
    struct url_part scheme, authority, query, fragment, head, tail;
    int slash, dots;
};

/* RFC 3986 5.2.2: ref read against the base bp (split; NULL for none).
 * 0 or URL_ERROR. */
static int resolve_target(const struct url_split *bp, const char *ref, size_t rn, struct target *t,
                          char *err)
{
    char q[128];
    struct url_split b = {0}, r;
    url_split(ref, rn, &r);
    if (bp) {
        b = *bp;
    } else if (!r.scheme.p) {
        err_set(err, "%s is relative and there is no base URL", quoted(q, sizeof q, ref, rn));
        return URL_ERROR;
    }
    memset(t, 0, sizeof *t);
    t->scheme = r.scheme.p ? r.scheme : b.scheme;
    t->fragment = r.fragment;
    t->query = r.query;
    t->tail = r.path;
    t->dots = 1;
    if (r.scheme.p || r.authority.p) {
        t->authority = r.authority;
        return 0;
    }
    t->authority = b.authority;
    if (r.path.n == 0) {
        t->tail = b.path;
        t->dots = 0;
        if (!t->query.p)
            t->query = b.query;
    } else if (r.path.p[0] != '/') {
        if (b.authority.p && b.path.n == 0) {
            t->slash = 1;
        } else { /* the base's directory: up to its last "/" */
            size_t d = b.path.n;
            while (d > 0 && b.path.p[d - 1] != '/')
                d--;
            t->head = (struct url_part){b.path.p, d};
        }
    }
    return 0;
}

/* t's path, dot segments removed when t says so. */
static void put_target_path(struct out *o, const struct target *t)
{
    size_t start = o->len;
    put(o, t->head.p, t->head.n);
    if (t->slash)
        put_char(o, '/');
    put(o, t->tail.p, t->tail.n);
    if (t->dots && !o->full)
        o->len = start + remove_dots(o->p + start, o->len - start);
}

/* base split into b, or URL_ERROR when it has no scheme. */
static int split_base(const char *base, size_t bn, struct url_split *b, char *err)
{
    char q[128];
    url_split(base, bn, b);
    if (b->scheme.p)
        return 0;
    err_set(err, "base URL %s is not absolute", quoted(q, sizeof q, base, bn));
    return URL_ERROR;
}

long url_resolve(const char *base, size_t bn, const char *ref, size_t rn, char *out, size_t cap,
                 char *err)
{
    struct target t;
    struct url_split b;
    if (base && split_base(base, bn, &b, err) != 0)
        return URL_ERROR;
    if (resolve_target(base ? &b : NULL, ref, rn, &t, err) != 0)
        return URL_ERROR;
    struct out o = {out, cap, 0, 0};
    put(&o, t.scheme.p, t.scheme.n);
    put(&o, "://", t.authority.p ? 3 : 1);
    put(&o, t.authority.p, t.authority.n);
    size_t path_start = o.len;
    put_target_path(&o, &t);
    /* Without an authority, a path that starts with "//" would read as one
     * ("http:/.//evil.example/x" must not become http://evil.example/x). */
    if (!t.authority.p && !o.full && o.len - path_start >= 2 && o.p[path_start] == '/' &&
        o.p[path_start + 1] == '/') {
        if (o.cap - o.len < 2) {
            o.full = 1;
        } else {
            memmove(o.p + path_start + 2, o.p + path_start, o.len - path_start);
            memcpy(o.p + path_start, "/.", 2);
            o.len += 2;
        }
    }
    if (t.query.p) {
        put_char(&o, '?');
        put(&o, t.query.p, t.query.n);
    }
    if (t.fragment.p) {
        put_char(&o, '#');
        put(&o, t.fragment.p, t.fragment.n);
    }
    return finish(&o);
}

size_t url_resolve_size(size_t bn, size_t rn)
{
    return bn + rn + 8;
}

/* Query parameters that identify a click or a campaign, not a page:
 * Google Analytics' campaign parameters (utm_*) and cross-domain linker
 * (_ga, _gl), Google Ads' and Display's click ids (gclid, dclid), Meta's
 * (fbclid; igshid, Instagram's share id), Microsoft Advertising's
 * (msclkid), Yandex's (yclid), Mailchimp's campaign and member ids
 * (mc_cid, mc_eid). They are the ones each platform documents, and the
 * core of what Firefox's and Brave's query stripping and the ClearURLs
 * rules remove. Names compare without regard to ASCII case. */
static const char *const tracking[] = {"gclid",  "fbclid", "msclkid", "dclid", "yclid",
                                       "mc_cid", "mc_eid", "_ga",     "_gl",   "igshid"};

static int tracking_name(const char *s, size_t n)
{
    if (n >= 4 && strncasecmp(s, "utm_", 4) == 0)
        return 1;
    for (size_t i = 0; i < sizeof tracking / sizeof tracking[0]; i++)
        if (strlen(tracking[i]) == n && strncasecmp(s, tracking[i], n) == 0)
            return 1;
    return 0;
}

struct param {
    const char *p;
    size_t n, name_n;
};

static int name_before(const struct param *a, const struct param *b)
{
    size_t n = a->name_n < b->name_n ? a->name_n : b->name_n;
    int c = memcmp(a->p, b->p, n);
    return c < 0 || (c == 0 && a->name_n < b->name_n);
}

/* A stable merge sort of ps by name; tmp has room for n. */
static void sort_params(struct param *ps, struct param *tmp, size_t n)
{
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = name_before(&ps[j], &ps[i]) ? ps[j++] : ps[i++];
            while (i < mid)
                tmp[k++] = ps[i++];
            while (j < hi)
                tmp[k++] = ps[j++];
        }
        memcpy(ps, tmp, n * sizeof *ps);
    }
}

/* The canonical query at o->p[start..o->len), reworked by flags. A query
 * left with no parameter after stripping loses its "?" too. */
static int rework_query(struct out *o, size_t start, unsigned flags, char *err)
{
    size_t qn = o->len - start;
    if (qn == 0 || o->full)
        return 0;
    enum { STACK = 64 };
    char text_stack[2048];
    struct param ps_stack[2 * STACK];
    size_t count = 1;
    for (size_t i = 0; i < qn; i++)
        count += o->p[start + i] == '&';
    char *text = qn <= sizeof text_stack ? text_stack : malloc(qn);
    struct param *ps = count <= STACK ? ps_stack : malloc(2 * count * sizeof *ps);
    if (!text || !ps) {
        if (text != text_stack)
            free(text);
        if (ps != ps_stack)
            free(ps);
        err_set(err, "out of memory reworking a query of %zu bytes", qn);
        return URL_ERROR;
    }
    memcpy(text, o->p + start, qn);
    size_t kept = 0, stripped = 0;
    for (size_t i = 0; i <= qn;) {
        const char *amp = memchr(text + i, '&', qn - i);
        size_t e = amp ? (size_t)(amp - text) : qn;
        const char *eq = memchr(text + i, '=', e - i);
        struct param p = {text + i, e - i, eq ? (size_t)(eq - (text + i)) : e - i};
        if ((flags & URL_STRIP_TRACKING) && tracking_name(p.p, p.name_n))
            stripped++;
        else
            ps[kept++] = p;
        i = e + 1;
    }
    if (flags & URL_SORT_QUERY)
        sort_params(ps, ps + count, kept);
    o->len = start;
    if (kept == 0 && stripped > 0)
        o->len--; /* the "?" */
    for (size_t k = 0; k < kept; k++) {
        if (k > 0)
            put_char(o, '&');
        put(o, ps[k].p, ps[k].n);
    }
    if (text != text_stack)
        free(text);
    if (ps != ps_stack)
        free(ps);
    return 0;
}

/* The canonical path ("/" when empty) and query of url_normalize. */
static int put_path_query(struct out *o, struct url_part path, int clean, struct url_part query,
                          unsigned flags, char *err)
{
    size_t path_start = o->len;
    put_path(o, path.p, path.n, clean);
    if (o->len == path_start)
        put_char(o, '/');
    if (query.p) {
        put_char(o, '?');
        size_t q_start = o->len;
        put_escaped(o, query.p, query.n);
        if (flags & (URL_SORT_QUERY | URL_STRIP_TRACKING))
            return rework_query(o, q_start, flags, err);
    }
    return 0;
}

static long normalize_split(const struct url_split *up, unsigned flags, char *out, size_t cap,
                            char *err)
{
    struct url_split u = *up;
    if (!u.scheme.p) {
        err_set(err, "not an absolute URL");
        return URL_ERROR;
    }
    long dflt = default_port(u.scheme);
    if (dflt < 0) {
        err_set(err, "not an http(s) URL");
        return URL_ERROR;
    }
    if (!u.authority.p) {
        err_set(err, "no host");
        return URL_ERROR;
    }
    struct url_authority_parts ap;
    if (url_parse_authority(u.authority.p, u.authority.n, &ap, err) != 0)
        return URL_ERROR;
    if (ap.host.n == 0) {
        err_set(err, "no host");
        return URL_ERROR;
    }
    struct out o = {out, cap, 0, 0};
    put(&o, dflt == 80 ? "http://" : "https://", dflt == 80 ? 7 : 8);
    if (ap.userinfo.p) {
        put_escaped(&o, ap.userinfo.p, ap.userinfo.n);
        put_char(&o, '@');
    }
    if (put_host_port(&o, &ap, dflt, err) != 0)
        return URL_ERROR;
    if (put_path_query(&o, u.path, 0, u.query, flags, err) != 0)
        return URL_ERROR;
    return finish(&o);
}

long url_normalize(const char *s, size_t n, unsigned flags, char *out, size_t cap, char *err)
{
    struct url_split u;
    url_split(s, n, &u);
    return normalize_split(&u, flags, out, cap, err);
}

size_t url_normalize_size(size_t n)
{
    return 3 * n + 300;
}

void url_base_init(struct url_base *b, const char *s, size_t n)
{
    memset(b, 0, sizeof *b);
    if (!s)
        return;
    url_split(s, n, &b->split);
    if (!b->split.scheme.p)
        return;
    b->s = s;
    b->n = n;
    /* the origin: what url_normalize writes before the path */
    char err[URL_ERR_MAX];
    struct url_split o = {b->split.scheme, b->split.authority, {"", 0}, {0}, {0}};
    long on = normalize_split(&o, 0, b->origin, sizeof b->origin, err);
    if (on > 0)
        b->origin_n = (size_t)on - 1; /* without the path's "/" */
}

/* The resolved path is written at the end of out, where the canonical URL,
 * written from the start, cannot reach it when cap is url_link_size(): the
 * canonical form is made from the parts, not from a resolved string split
 * again, and a target on the base's origin takes the origin as it is. */
long url_link_from(const struct url_base *b, const char *ref, size_t rn, unsigned flags, char *out,
                   size_t cap, char *err)
{
    struct target t;
    if (resolve_target(b->s ? &b->split : NULL, ref, rn, &t, err) != 0)
        return URL_ERROR;
    /* the path without dot segments: the reference's own when it has none
     * (most links), else made in scratch at the end of out */
    struct url_part path = t.tail;
    size_t m = 0;
    if (t.head.n > 0 || t.slash || (t.dots && may_have_dots(t.tail.p, t.tail.n))) {
        m = t.head.n + (size_t)t.slash + t.tail.n;
        if (m > cap)
            return URL_NOSPACE;
        struct out scratch = {out + cap - m, m, 0, 0};
        put_target_path(&scratch, &t);
        path = (struct url_part){scratch.p, scratch.len};
    }
    if (b->origin_n > 0 && t.scheme.p == b->split.scheme.p &&
        t.authority.p == b->split.authority.p) {
        struct out o = {out, cap - m, 0, 0};
        put(&o, b->origin, b->origin_n);
        if (put_path_query(&o, path, t.dots, t.query, flags, err) != 0)
            return URL_ERROR;
        return finish(&o);
    }
    struct url_split u = {t.scheme, t.authority, path, t.query, {0}};
    return normalize_split(&u, flags, out, cap - m, err);
}

long url_link(const char *base, size_t bn, const char *ref, size_t rn, unsigned flags, char *out,
              size_t cap, char *err)
{
    struct url_base b;
    struct url_split bs;
    if (base && split_base(base, bn, &bs, err) != 0)
        return URL_ERROR;
    memset(&b, 0, sizeof b);
    if (base) {
        b.s = base;
        b.n = bn;
        b.split = bs;
    }
    return url_link_from(&b, ref, rn, flags, out, cap, err);
}

size_t url_link_size(size_t bn, size_t rn)
{
    return url_normalize_size(bn + rn + 8) + bn + rn + 8;
}

long url_authority(const char *s, size_t n, char *out, size_t cap, char *err)
{
    char q[128];
    struct url_split u;
    url_split(s, n, &u);
    struct url_authority_parts ap;
    if (u.authority.p && url_parse_authority(u.authority.p, u.authority.n, &ap, err) != 0)
        return URL_ERROR;
    if (!u.authority.p || ap.host.n == 0) {
        err_set(err, "no host in %s", quoted(q, sizeof q, s, n));
        return URL_ERROR;
    }
    struct out o = {out, cap, 0, 0};
    if (put_host_port(&o, &ap, default_port(u.scheme), err) != 0)
        return URL_ERROR;
    return finish(&o);
}

size_t url_authority_size(size_t n)
{
    return n + 300;
}

long url_path_query(const char *s, size_t n, char *out, size_t cap)
{
    struct url_split u;
    url_split(s, n, &u);
    struct out o = {out, cap, 0, 0};
    put_path(&o, u.path.p, u.path.n, 0);
    if (o.len == 0)
        put_char(&o, '/');
    if (u.query.p) {
        put_char(&o, '?');
        put_escaped(&o, u.query.p, u.query.n);
    }
    return finish(&o);
}

size_t url_path_query_size(size_t n)
{
    return 3 * n + 1;
}
