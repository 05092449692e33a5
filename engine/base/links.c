/* links.c - the link scanner, decoder and helpers of links.h. Stateless:
 * any thread may call any of it. */
#define _GNU_SOURCE /* memmem */
#include "base/links.h"

#include <stdint.h>
#include <string.h>

#include "base/entities.h"

/* Byte classes for the loops that run per byte: HTML5's whitespace, and
 * the bytes that end a tag name, an attribute name or an unquoted value. */
enum { C_SPACE = 1, C_NAME_END = 2, C_ATTR_END = 4, C_VALUE_END = 8 };
static const unsigned char cls[256] = {
    ['\t'] = 15,
    ['\n'] = 15,
    ['\f'] = 15,
    ['\r'] = 15,
    [' '] = 15,
    ['/'] = C_NAME_END | C_ATTR_END,
    ['>'] = C_NAME_END | C_ATTR_END | C_VALUE_END,
    ['='] = C_ATTR_END,
};

static bool is_space(unsigned char c)
{
    return cls[c] & C_SPACE;
}

static bool is_alpha(unsigned char c)
{
    return (unsigned char)((c | 0x20) - 'a') < 26;
}

static bool is_alnum(unsigned char c)
{
    return is_alpha(c) || (unsigned char)(c - '0') < 10;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

/* True when s[0..n) is word (lower case), in any case. */
static bool same_word(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    for (; i < n && word[i]; i++)
        if (lower((unsigned char)s[i]) != (unsigned char)word[i])
            return false;
    return i == n && !word[i];
}

/* True when the list s[0..n) (split at whitespace and, if commas, at
 * commas) holds word, in any case. */
static bool has_token(const char *s, size_t n, const char *word, bool commas)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_space((unsigned char)s[i]) || (commas && s[i] == ',')))
            i++;
        size_t start = i;
        while (i < n && !is_space((unsigned char)s[i]) && !(commas && s[i] == ','))
            i++;
        if (i > start && same_word(s + start, i - start, word))
            return true;
    }
    return false;
}

static const char *const kind_names[LINK_KINDS] = {
    [LINK_A] = "a",         [LINK_AREA] = "area",       [LINK_IFRAME] = "iframe",
    [LINK_FRAME] = "frame", [LINK_REFRESH] = "refresh", [LINK_LINK] = "link",
    [LINK_IMG] = "img",
};

const char *links_kind_name(enum link_kind k)
{
    return (unsigned)k < LINK_KINDS ? kind_names[k] : "";
}

int links_kind_of(const char *name, size_t n)
{
    for (int k = 0; k < LINK_KINDS; k++)
        if (strlen(kind_names[k]) == n && memcmp(kind_names[k], name, n) == 0)
            return k;
    return -1;
}

/* ------------------------------------------------------------ the scan */

/* The elements whose attributes matter, and the raw-text ones whose bodies
 * hold no tags (a "<a href>" inside <script> or <textarea> is text). */
enum elem {
    E_OTHER,
    E_A,
    E_AREA,
    E_IFRAME,
    E_FRAME,
    E_META,
    E_LINK,
    E_IMG,
    E_SOURCE,
    E_BASE,
    E_RAWTEXT, /* script, style, textarea, title, xmp, noembed, noframes */
    E_PLAINTEXT,
};

/* Called for every tag of every page: one comparison or two by length,
 * most tags (li, p, div, span, td) rejected on it. */
static enum elem elem_of(const char *s, size_t n)
{
    switch (n) {
    case 1:
        return lower((unsigned char)s[0]) == 'a' ? E_A : E_OTHER;
    case 3:
        return same_word(s, 3, "img") ? E_IMG : same_word(s, 3, "xmp") ? E_RAWTEXT : E_OTHER;
    case 4:
        switch (lower((unsigned char)s[0])) {
        case 'a':
            return same_word(s, 4, "area") ? E_AREA : E_OTHER;
        case 'b':
            return same_word(s, 4, "base") ? E_BASE : E_OTHER;
        case 'l':
            return same_word(s, 4, "link") ? E_LINK : E_OTHER;
        case 'm':
            return same_word(s, 4, "meta") ? E_META : E_OTHER;
        }
        return E_OTHER;
    case 5:
        return same_word(s, 5, "frame")                               ? E_FRAME
               : same_word(s, 5, "style") || same_word(s, 5, "title") ? E_RAWTEXT
                                                                      : E_OTHER;
    case 6:
        return same_word(s, 6, "iframe")   ? E_IFRAME
               : same_word(s, 6, "source") ? E_SOURCE
               : same_word(s, 6, "script") ? E_RAWTEXT
                                           : E_OTHER;
    case 7:
        return same_word(s, 7, "noembed") ? E_RAWTEXT : E_OTHER;
    case 8:
        return same_word(s, 8, "textarea") || same_word(s, 8, "noframes") ? E_RAWTEXT : E_OTHER;
    case 9:
        return same_word(s, 9, "plaintext") ? E_PLAINTEXT : E_OTHER;
    }
    return E_OTHER;
}

/* The attributes the scan reads; the first of each name wins, as in HTML5. */
enum attr { A_HREF, A_SRC, A_SRCSET, A_REL, A_HTTP_EQUIV, A_NAME, A_CONTENT, A_COUNT };

struct tag {
    const char *v[A_COUNT]; /* NULL: absent */
    size_t n[A_COUNT];
};

static int attr_of(const char *s, size_t n)
{
    static const char *const names[A_COUNT] = {"href",       "src",  "srcset", "rel",
                                               "http-equiv", "name", "content"};
    if (n < 3 || n > 10)
        return -1;
    for (int a = 0; a < A_COUNT; a++)
        if (same_word(s, n, names[a]))
            return a;
    return -1;
}

/* Reads the attributes of a tag from p (just past its name) to its ">",
 * into t when t is not NULL. Returns the byte past the ">", or NULL when
 * the page ends first (HTML5 drops such a tag, and nothing follows it). */
static const char *read_attrs(const char *p, const char *end, struct tag *t)
{
    for (;;) {
        while (p < end && (is_space((unsigned char)*p) || *p == '/'))
            p++;
        if (p == end)
            return NULL;
        if (*p == '>')
            return p + 1;
        const char *name = p++; /* a first "=" belongs to the name */
        while (p < end && !(cls[(unsigned char)*p] & C_ATTR_END))
            p++;
        size_t name_n = (size_t)(p - name);
        while (p < end && is_space((unsigned char)*p))
            p++;
        const char *v = p;
        size_t vn = 0;
        if (p < end && *p == '=') {
            p++;
            while (p < end && is_space((unsigned char)*p))
                p++;
            if (p == end)
                return NULL;
            if (*p == '"' || *p == '\'') {
                const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
                if (!q)
                    return NULL;
                v = p + 1;
                vn = (size_t)(q - v);
                p = q + 1;
            } else {
                v = p;
                while (p < end && !(cls[(unsigned char)*p] & C_VALUE_END))
                    p++;
                vn = (size_t)(p - v);
            }
        }
        int a = t ? attr_of(name, name_n) : -1;
        if (a >= 0 && !t->v[a]) {
            t->v[a] = v;
            t->n[a] = vn;
        }
    }
}

/* The byte past the end tag of the raw-text element name[0..nn) (lower
 * case) whose body starts at p, or NULL when the page ends first. */
static const char *rawtext_end(const char *p, const char *end, const char *name, size_t nn)
{
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || (size_t)(end - lt) < nn + 3)
            return NULL;
        p = lt + 1;
        if (*p != '/')
            continue;
        const char *q = p + 1;
        size_t i = 0;
        while (i < nn && lower((unsigned char)q[i]) == (unsigned char)name[i])
            i++;
        if (i < nn)
            continue;
        unsigned char after = (unsigned char)q[nn];
        if (is_space(after) || after == '/' || after == '>')
            return read_attrs(q + nn, end, NULL);
    }
    return NULL;
}

/* The byte past the comment whose "<!--" ends at p, or NULL. "<!-->" and
 * "<!--->" are whole comments; "--!>" ends one too. */
static const char *comment_end(const char *p, const char *end)
{
    if (p < end && *p == '>')
        return p + 1;
    if (end - p >= 2 && p[0] == '-' && p[1] == '>')
        return p + 2;
    while (p < end) {
        const char *d = memchr(p, '-', (size_t)(end - p));
        if (!d || end - d < 3)
            return NULL;
        if (d[1] == '-') {
            if (d[2] == '>')
                return d + 3;
            if (d[2] == '!' && end - d >= 4 && d[3] == '>')
                return d + 4;
        }
        p = d + 1;
    }
    return NULL;
}

static const char *find_str(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(end - p) < n)
        return NULL;
    return memmem(p, (size_t)(end - p), s, n);
}

static int emit(links_fn fn, void *ud, enum link_kind kind, unsigned flags, const char *v, size_t n)
{
    struct link_ref r = {.kind = kind, .flags = flags, .v = v, .n = n};
    return fn(ud, &r);
}

/* Reports what the tag t of element e holds; nonzero when fn says stop. */
static int report(enum elem e, const struct tag *t, bool *seen_base, links_fn fn, void *ud)
{
    unsigned nofollow =
        t->v[A_REL] && has_token(t->v[A_REL], t->n[A_REL], "nofollow", false) ? LINK_NOFOLLOW : 0;
    switch (e) {
    case E_A:
    case E_AREA:
        if (t->v[A_HREF])
            return emit(fn, ud, e == E_A ? LINK_A : LINK_AREA, nofollow, t->v[A_HREF],
                        t->n[A_HREF]);
        return 0;
    case E_IFRAME:
    case E_FRAME:
        if (t->v[A_SRC])
            return emit(fn, ud, e == E_IFRAME ? LINK_IFRAME : LINK_FRAME, 0, t->v[A_SRC],
                        t->n[A_SRC]);
        return 0;
    case E_LINK:
        if (t->v[A_HREF]) {
            struct link_ref r = {.kind = LINK_LINK,
                                 .flags = nofollow,
                                 .v = t->v[A_HREF],
                                 .n = t->n[A_HREF],
                                 .rel = t->v[A_REL],
                                 .rel_n = t->n[A_REL]};
            return fn(ud, &r);
        }
        return 0;
    case E_IMG:
    case E_SOURCE:
        if (e == E_IMG && t->v[A_SRC] && emit(fn, ud, LINK_IMG, 0, t->v[A_SRC], t->n[A_SRC]))
            return 1;
        if (t->v[A_SRCSET])
            return emit(fn, ud, LINK_IMG, LINK_SRCSET, t->v[A_SRCSET], t->n[A_SRCSET]);
        return 0;
    case E_BASE:
        if (t->v[A_HREF] && !*seen_base) {
            *seen_base = true;
            return emit(fn, ud, LINK_BASE, 0, t->v[A_HREF], t->n[A_HREF]);
        }
        return 0;
    case E_META:
        if (!t->v[A_CONTENT])
            return 0;
        if (t->v[A_HTTP_EQUIV] && same_word(t->v[A_HTTP_EQUIV], t->n[A_HTTP_EQUIV], "refresh"))
            return emit(fn, ud, LINK_REFRESH, 0, t->v[A_CONTENT], t->n[A_CONTENT]);
        if (t->v[A_NAME] && same_word(t->v[A_NAME], t->n[A_NAME], "robots") &&
            (has_token(t->v[A_CONTENT], t->n[A_CONTENT], "nofollow", true) ||
             has_token(t->v[A_CONTENT], t->n[A_CONTENT], "none", true)))
            return emit(fn, ud, LINK_ROBOTS_NOFOLLOW, 0, t->v[A_CONTENT], 0);
        return 0;
    default:
        return 0;
    }
}

void links_scan(const char *html, size_t n, links_fn fn, void *ud)
{
    const char *p = html, *end = html + n;
    bool seen_base = false;
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || end - lt < 2)
            return;
        p = lt + 1;
        unsigned char c = (unsigned char)*p;
        if (is_alpha(c)) {
            const char *name = p;
            while (p < end && !(cls[(unsigned char)*p] & C_NAME_END))
                p++;
            size_t nn = (size_t)(p - name);
            enum elem e = elem_of(name, nn);
            struct tag t;
            bool wanted = e != E_OTHER && e < E_RAWTEXT;
            if (wanted)
                memset(&t, 0, sizeof t);
            p = read_attrs(p, end, wanted ? &t : NULL);
            if (!p)
                return;
            if (e == E_PLAINTEXT)
                return;
            if (e == E_RAWTEXT || e == E_IFRAME) {
                char lname[10];
                for (size_t i = 0; i < nn; i++)
                    lname[i] = (char)lower((unsigned char)name[i]);
                if (e == E_IFRAME && report(e, &t, &seen_base, fn, ud))
                    return;
                p = rawtext_end(p, end, lname, nn);
                if (!p)
                    return;
                continue;
            }
            if (e != E_OTHER && report(e, &t, &seen_base, fn, ud))
                return;
        } else if (c == '/') {
            p++;
            if (p < end && is_alpha((unsigned char)*p)) {
                p = read_attrs(p, end, NULL); /* an end tag: its name reads as an attribute */
            } else if (p < end && *p == '>') {
                p++;
            } else {
                const char *gt = memchr(p, '>', (size_t)(end - p));
                p = gt ? gt + 1 : NULL;
            }
            if (!p)
                return;
        } else if (c == '!') {
            if (end - p >= 3 && p[1] == '-' && p[2] == '-') {
                p = comment_end(p + 3, end);
            } else if (end - p >= 8 && memcmp(p + 1, "[CDATA[", 7) == 0) {
                const char *e = find_str(p + 8, end, "]]>");
                p = e ? e + 3 : NULL;
            } else {
                const char *gt = memchr(p, '>', (size_t)(end - p));
                p = gt ? gt + 1 : NULL;
            }
            if (!p)
                return;
        } else if (c == '?') {
            const char *gt = memchr(p, '>', (size_t)(end - p));
            if (!gt)
                return;
            p = gt + 1;
        }
    }
}

/* ------------------------------------------------------------ decoding */

/* The entity named exactly s[0..n), or NULL. */
static const struct entity *entity_find(const char *s, size_t n)
{
    size_t lo = 0, hi = entity_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct entity *e = &entity_table[mid];
        size_t m = e->name_n < n ? e->name_n : n;
        int c = memcmp(e->name, s, m);
        if (c == 0)
            c = e->name_n < n ? -1 : e->name_n > n;
        if (c == 0)
            return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static size_t put_utf8(uint32_t c, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xc0 | c >> 6);
        o[1] = (unsigned char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xe0 | c >> 12);
        o[1] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | c >> 18);
    o[1] = (unsigned char)(0x80 | (c >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
    o[3] = (unsigned char)(0x80 | (c & 0x3f));
    return 4;
}

/* What HTML5 makes of a numeric reference to c 0x80-0x9f: the character
 * windows-1252 has there (0 where it has none, and c stays). */
static const uint16_t c1_1252[32] = {
    0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017d, 0,      0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
    0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178,
};

/* The numeric reference at s[0..n) (just past "&#"): its length, or 0
 * when there is none (no digits); its character in UTF-8 into out. */
static size_t numeric_ref(const char *s, size_t n, char *out, size_t *outn)
{
    size_t i = 0;
    bool hex = n > 0 && (s[0] == 'x' || s[0] == 'X');
    if (hex)
        i++;
    size_t digits = i;
    uint32_t c = 0;
    for (; i < n; i++) {
        unsigned char d = (unsigned char)s[i];
        int v;
        if (d >= '0' && d <= '9')
            v = d - '0';
        else if (hex && lower(d) >= 'a' && lower(d) <= 'f')
            v = lower(d) - 'a' + 10;
        else
            break;
        if (c <= 0x10ffff) /* past it, it is U+FFFD whatever follows */
            c = c * (hex ? 16 : 10) + (uint32_t)v;
    }
    if (i == digits)
        return 0;
    if (i < n && s[i] == ';')
        i++;
    if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        c = 0xfffd;
    else if (c >= 0x80 && c <= 0x9f && c1_1252[c - 0x80])
        c = c1_1252[c - 0x80];
    *outn = put_utf8(c, out);
    return i;
}

/* The named reference at s[0..n) (just past "&") as HTML5 reads it inside
 * an attribute value: its length, or 0 when it stays as written. */
static size_t named_ref(const char *s, size_t n, char *out, size_t *outn)
{
    size_t run = 0;
    while (run < n && run <= ENTITY_NAME_MAX && is_alnum((unsigned char)s[run]))
        run++;
    if (run == 0 || run > ENTITY_NAME_MAX)
        return 0;
    const struct entity *e = NULL;
    size_t len = 0;
    if (run < n && s[run] == ';') {
        e = entity_find(s, run + 1);
        len = run + 1;
    }
    if (!e) {
        /* Only the legacy names match without a ";", the longest that fits;
         * but in an attribute, one followed by a letter, a digit or "="
         * stays as written ("?a=1&copy=2" is a query, not a copyright). */
        if (run > ENTITY_LEGACY_MAX)
            return 0;
        if (run < n && s[run] == '=')
            return 0;
        e = entity_find(s, run);
        len = run;
    }
    if (!e)
        return 0;
    memcpy(out, e->value, e->value_n);
    *outn = e->value_n;
    return len;
}

size_t links_decode(const char *v, size_t n, char *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        const char *amp = memchr(v + i, '&', n - i);
        size_t upto = amp ? (size_t)(amp - v) : n;
        memcpy(out + o, v + i, upto - i);
        o += upto - i;
        if (!amp)
            break;
        i = upto + 1;
        size_t used, outn = 0;
        if (i < n && v[i] == '#') {
            used = numeric_ref(v + i + 1, n - i - 1, out + o, &outn);
            if (used)
                used++; /* the "#" */
        } else {
            used = named_ref(v + i, n - i, out + o, &outn);
        }
        if (used) {
            o += outn;
            i += used;
        } else {
            out[o++] = '&';
        }
    }
    return o;
}

/* ------------------------------------------------------------ the URLs */

/* What a browser trims off an href: spaces and controls (and DEL, which
 * url.c would only escape). */
static bool trimmed(unsigned char c)
{
    return c <= ' ' || c == 0x7f;
}

/* What cleaning changes inside an href: 1 dropped, 2 "\\", 3 "?" or "#". */
static const unsigned char clean_cls[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['\\'] = 2, ['?'] = 3, ['#'] = 3};

size_t links_clean(char *s, size_t n)
{
    size_t a = 0;
    while (a < n && trimmed((unsigned char)s[a]))
        a++;
    while (n > a && trimmed((unsigned char)s[n - 1]))
        n--;
    if (a == n || s[a] == '#')
        return 0;
    /* most hrefs need nothing more up to their query, if not to their end */
    size_t i = a;
    while (i < n && !clean_cls[(unsigned char)s[i]])
        i++;
    if (a > 0)
        memmove(s, s + a, i - a);
    size_t o = i - a;
    bool in_path = true;
    for (; i < n; i++) { /* o <= i: the loop writes behind where it reads */
        char c = s[i];
        switch (clean_cls[(unsigned char)c]) {
        case 1:
            continue;
        case 2:
            if (in_path)
                c = '/';
            break;
        case 3:
            in_path = false;
            break;
        }
        s[o++] = c;
    }
    return o;
}

bool links_refresh_url(const char *s, size_t n, size_t *off, size_t *len)
{
    size_t i = 0;
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    size_t start = i;
    while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
        i++;
    if (i == start || i == n)
        return false; /* not a delay, or a delay alone: no URL */
    if (!is_space((unsigned char)s[i]) && s[i] != ';' && s[i] != ',')
        return false;
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    if (i < n && (s[i] == ';' || s[i] == ','))
        i++;
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    if (n - i >= 3 && same_word(s + i, 3, "url")) {
        size_t j = i + 3;
        while (j < n && is_space((unsigned char)s[j]))
            j++;
        if (j < n && s[j] == '=') {
            j++;
            while (j < n && is_space((unsigned char)s[j]))
                j++;
            i = j;
        }
    }
    size_t e = n;
    if (i < n && (s[i] == '"' || s[i] == '\'')) {
        const char *q = memchr(s + i + 1, s[i], n - i - 1);
        i++;
        if (q)
            e = (size_t)(q - s);
    }
    if (i >= e)
        return false;
    *off = i;
    *len = e - i;
    return true;
}

bool links_srcset_next(const char *s, size_t n, size_t *pos, size_t *off, size_t *len)
{
    size_t i = *pos;
    for (;;) {
        while (i < n && (is_space((unsigned char)s[i]) || s[i] == ','))
            i++;
        if (i >= n) {
            *pos = n;
            return false;
        }
        size_t start = i;
        while (i < n && !is_space((unsigned char)s[i]))
            i++;
        size_t e = i;
        bool ended = false; /* "a.png," has no descriptors */
        while (e > start && s[e - 1] == ',') {
            e--;
            ended = true;
        }
        if (!ended) {
            /* the descriptors, up to the comma outside parentheses */
            int depth = 0;
            while (i < n && (s[i] != ',' || depth > 0)) {
                if (s[i] == '(')
                    depth++;
                else if (s[i] == ')' && depth > 0)
                    depth--;
                i++;
            }
        }
        if (e > start) {
            *pos = i;
            *off = start;
            *len = e - start;
            return true;
        }
    }
}
