/* css.c - CSS selectors to XPath 1.0 (css.h), in one pass: each compound
 * selector becomes one location step, its simple selectors predicates on it,
 * and each combinator the axis to the next step. Names and values reach the
 * XPath only as string literals or checked NCNames, so no selector can
 * inject XPath. */
#include "base/css.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/strbuf.h"
#include "base/utf8.h"

/* :not() inside :not() this deep is a mistake, not a selector */
#define NOT_DEPTH_MAX 8
/* an+b: larger numbers than this select nothing a page has */
#define NTH_MAX 100000000L

struct parser {
    const char *s;
    size_t n, i;
    char *err;
    int failed;
    int depth;
};

/* One compound selector: its element name (empty for *) and the
 * predicates of its other simple selectors, joined with "and". */
struct compound {
    struct strbuf tag;
    struct strbuf cond;
};

static int fail(struct parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, size_t at, const char *fmt, ...)
{
    if (p->failed)
        return -1;
    p->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    /* the column always fits: a long name quoted in the message is cut */
    size_t room = CSS_ERR_MAX - 32;
    int n = vsnprintf(p->err, room, fmt, ap);
    va_end(ap);
    size_t used = n < 0 ? 0 : (size_t)n < room ? (size_t)n : room - 1;
    snprintf(p->err + used, CSS_ERR_MAX - used, " at column %zu", at + 1);
    return -1;
}

static int peek(const struct parser *p, size_t ahead)
{
    return p->i + ahead < p->n ? (unsigned char)p->s[p->i + ahead] : -1;
}

static int is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static int skip_ws(struct parser *p)
{
    size_t from = p->i;
    while (is_ws(peek(p, 0)))
        p->i++;
    return p->i > from;
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int name_start(int c)
{
    return is_alpha(c) || c == '_' || c >= 0x80 || c == '\\';
}

static int name_char(int c)
{
    return name_start(c) || is_digit(c) || c == '-';
}

static void add_utf8(struct strbuf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    /* what XML (and so libxml2's XPath literals) cannot hold becomes U+FFFD */
    if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
        cp = 0xfffd;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    strbuf_add(b, u, n);
}

static int hex_digit(int c)
{
    return is_digit(c)              ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                    : -1;
}

/* A backslash escape at p->i (the backslash): up to six hex digits and one
 * whitespace after them, or the next character as itself. */
static int escape(struct parser *p, struct strbuf *into)
{
    size_t at = p->i++;
    int c = peek(p, 0);
    if (c < 0)
        return fail(p, at, "a backslash ends the selector");
    if (c == '\n' || c == '\r' || c == '\f')
        return fail(p, at, "a backslash before a line break escapes nothing");
    if (hex_digit(c) < 0) {
        strbuf_add(into, p->s + p->i, 1);
        p->i++;
        return 0;
    }
    unsigned long cp = 0;
    for (int k = 0; k < 6 && hex_digit(peek(p, 0)) >= 0; k++)
        cp = cp * 16 + (unsigned long)hex_digit(p->s[p->i++]);
    if (is_ws(peek(p, 0)))
        p->i++;
    add_utf8(into, cp);
    return 0;
}

/* An identifier at p->i into `into` (ASCII lowered when lower); 0, or -1
 * when there is none. */
static int ident(struct parser *p, struct strbuf *into, int lower, const char *what)
{
    size_t at = p->i;
    if (peek(p, 0) == '-')
        strbuf_add(into, p->s + p->i++, 1);
    if (peek(p, 0) == '-')
        strbuf_add(into, p->s + p->i++, 1);
    if (!name_start(peek(p, 0)) && !(into->len == 2 && p->i > at))
        return fail(p, at, "expected %s", what);
    while (name_char(peek(p, 0))) {
        if (peek(p, 0) == '\\') {
            if (escape(p, into) < 0)
                return -1;
            continue;
        }
        char c = p->s[p->i++];
        if (lower && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        strbuf_add(into, &c, 1);
    }
    return 0;
}

/* A quoted string at p->i (the quote) into `into`, without its quotes. */
static int quoted(struct parser *p, struct strbuf *into)
{
    size_t at = p->i;
    int q = p->s[p->i++];
    for (;;) {
        int c = peek(p, 0);
        if (c < 0)
            return fail(p, at, "unterminated string");
        if (c == q) {
            p->i++;
            return 0;
        }
        if (c == '\n' || c == '\r' || c == '\f')
            return fail(p, p->i, "a line break inside a string (escape it as \\a)");
        if (c == '\\') {
            int next = peek(p, 1);
            if (next == '\n' || next == '\r' || next == '\f') {
                p->i += 2; /* a continued line */
                continue;
            }
            if (escape(p, into) < 0)
                return -1;
            continue;
        }
        strbuf_add(into, p->s + p->i++, 1);
    }
}

/* s as an XPath 1.0 string literal: XPath has no escapes, so a string
 * holding both quotes is spliced with concat(). */
static void literal(struct strbuf *out, const char *s, size_t n)
{
    if (!memchr(s, '\'', n)) {
        strbuf_str(out, "'");
        strbuf_add(out, s, n);
        strbuf_str(out, "'");
        return;
    }
    if (!memchr(s, '"', n)) {
        strbuf_str(out, "\"");
        strbuf_add(out, s, n);
        strbuf_str(out, "\"");
        return;
    }
    strbuf_str(out, "concat('");
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '\'')
            strbuf_str(out, "', \"'\", '");
        else
            strbuf_add(out, s + k, 1);
    }
    strbuf_str(out, "')");
}

static void literal_sb(struct strbuf *out, const struct strbuf *s)
{
    literal(out, s->len ? s->p : "", s->len);
}

/* Whether s may stand in XPath as a name test: ASCII NCNames only; any
 * other name is compared with name() instead. */
static int ncname(const struct strbuf *s)
{
    if (s->len == 0 || !(is_alpha((unsigned char)s->p[0]) || s->p[0] == '_'))
        return 0;
    for (size_t k = 1; k < s->len; k++) {
        int c = (unsigned char)s->p[k];
        if (!(is_alpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* Appends " and " before every predicate but the first. */
static struct strbuf *and_cond(struct compound *c)
{
    if (c->cond.len)
        strbuf_str(&c->cond, " and ");
    return &c->cond;
}

/* name = tag test, for :not() and the + combinator's self check */
static void tag_test(struct strbuf *out, const struct strbuf *tag)
{
    if (ncname(tag)) {
        strbuf_str(out, "self::");
        strbuf_add(out, tag->p, tag->len);
    } else {
        strbuf_str(out, "name() = ");
        literal_sb(out, tag);
    }
}

/* axis::tag (or axis::*[name() = 'tag']), the step to siblings of a type */
static void sibling_step(struct strbuf *out, const char *axis, const struct strbuf *tag)
{
    strbuf_str(out, axis);
    if (ncname(tag)) {
        strbuf_add(out, tag->p, tag->len);
    } else {
        strbuf_str(out, "*[name() = ");
        literal_sb(out, tag);
        strbuf_str(out, "]");
    }
}

static void attr_ref(struct strbuf *out, const struct strbuf *name)
{
    if (ncname(name)) {
        strbuf_str(out, "@");
        strbuf_add(out, name->p, name->len);
    } else {
        strbuf_str(out, "@*[name() = ");
        literal_sb(out, name);
        strbuf_str(out, "]");
    }
}

/* "@a and contains(concat(' ', normalize-space(@a), ' '), ' v ')": v is
 * one of the whitespace-separated words of @a. */
static void word_cond(struct strbuf *out, const struct strbuf *attr, const struct strbuf *v)
{
    attr_ref(out, attr);
    strbuf_str(out, " and contains(concat(' ', normalize-space(");
    attr_ref(out, attr);
    strbuf_str(out, "), ' '), ");
    struct strbuf w = {0};
    strbuf_str(&w, " ");
    strbuf_add(&w, v->p ? v->p : "", v->len);
    strbuf_str(&w, " ");
    literal_sb(out, &w);
    if (w.oom)
        out->oom = 1;
    free(w.p);
    strbuf_str(out, ")");
}

static int compound(struct parser *p, struct compound *c);

/* [attr], [attr=v], [attr~=v], [attr|=v], [attr^=v], [attr$=v], [attr*=v] */
static int attribute(struct parser *p, struct compound *c)
{
    p->i++;
    struct strbuf name = {0}, value = {0};
    int rc = -1;
    skip_ws(p);
    if (ident(p, &name, 1, "an attribute name after '['") < 0)
        goto done;
    if (peek(p, 0) == '|' && peek(p, 1) != '=') {
        fail(p, p->i, "namespaced attributes (ns|attr) are not supported");
        goto done;
    }
    skip_ws(p);
    char op = 0;
    int c0 = peek(p, 0);
    if (c0 == ']') {
        p->i++;
        attr_ref(and_cond(c), &name);
        rc = 0;
        goto done;
    }
    if (c0 == '=') {
        op = '=';
        p->i++;
    } else if ((c0 == '~' || c0 == '|' || c0 == '^' || c0 == '$' || c0 == '*') &&
               peek(p, 1) == '=') {
        op = (char)c0;
        p->i += 2;
    } else if (c0 == '!' && peek(p, 1) == '=') {
        fail(p, p->i, "[attr!=value] is jQuery's, not CSS: write :not([attr=value])");
        goto done;
    } else {
        fail(p, p->i, "expected ']' or an operator (=, ~=, |=, ^=, $=, *=) in [%.*s",
             (int)(name.len < 40 ? name.len : 40), name.p ? name.p : "");
        goto done;
    }
    skip_ws(p);
    int q = peek(p, 0);
    if (q == '"' || q == '\'') {
        if (quoted(p, &value) < 0)
            goto done;
    } else if (ident(p, &value, 0, "a value (a name or a quoted string)") < 0) {
        goto done;
    }
    skip_ws(p);
    if (is_alpha(peek(p, 0))) {
        fail(p, p->i, "attribute flags ([attr=v i]) are not supported");
        goto done;
    }
    if (peek(p, 0) != ']') {
        fail(p, p->i, "expected ']' to close '['");
        goto done;
    }
    p->i++;
    struct strbuf *o = and_cond(c);
    /* ~= ^= $= *= with an empty value match nothing (Selectors 4, 6.3) */
    int empty = value.len == 0;
    switch (op) {
    case '=':
        attr_ref(o, &name);
        strbuf_str(o, " = ");
        literal_sb(o, &value);
        break;
    case '~':
        if (empty || memchr(value.p, ' ', value.len) || memchr(value.p, '\t', value.len) ||
            memchr(value.p, '\n', value.len)) {
            strbuf_str(o, "false()");
            break;
        }
        word_cond(o, &name, &value);
        break;
    case '|':
        attr_ref(o, &name);
        strbuf_str(o, " and (");
        attr_ref(o, &name);
        strbuf_str(o, " = ");
        literal_sb(o, &value);
        strbuf_str(o, " or starts-with(");
        attr_ref(o, &name);
        strbuf_str(o, ", ");
        strbuf_add(&value, "-", 1);
        literal_sb(o, &value);
        strbuf_str(o, "))");
        break;
    case '^':
        if (empty) {
            strbuf_str(o, "false()");
            break;
        }
        attr_ref(o, &name);
        strbuf_str(o, " and starts-with(");
        attr_ref(o, &name);
        strbuf_str(o, ", ");
        literal_sb(o, &value);
        strbuf_str(o, ")");
        break;
    case '$':
        if (empty) {
            strbuf_str(o, "false()");
            break;
        }
        /* XPath 1.0 has no ends-with: compare the tail, counted in
         * characters by string-length() on both sides */
        attr_ref(o, &name);
        strbuf_str(o, " and substring(");
        attr_ref(o, &name);
        strbuf_str(o, ", string-length(");
        attr_ref(o, &name);
        strbuf_str(o, ") - string-length(");
        literal_sb(o, &value);
        strbuf_str(o, ") + 1) = ");
        literal_sb(o, &value);
        break;
    case '*':
        if (empty) {
            strbuf_str(o, "false()");
            break;
        }
        attr_ref(o, &name);
        strbuf_str(o, " and contains(");
        attr_ref(o, &name);
        strbuf_str(o, ", ");
        literal_sb(o, &value);
        strbuf_str(o, ")");
        break;
    }
    rc = 0;
done:
    if (name.oom || value.oom)
        c->cond.oom = 1;
    free(name.p);
    free(value.p);
    return rc;
}

/* an+b, odd, even, or b, up to the closing ')' (not consumed) */
static int nth_args(struct parser *p, long *a, long *b)
{
    size_t at = p->i;
    skip_ws(p);
    *a = 0;
    *b = 0;
    if (p->n - p->i >= 3 && strncasecmp(p->s + p->i, "odd", 3) == 0 && !name_char(peek(p, 3))) {
        p->i += 3;
        *a = 2;
        *b = 1;
        skip_ws(p);
        return 0;
    }
    if (p->n - p->i >= 4 && strncasecmp(p->s + p->i, "even", 4) == 0 && !name_char(peek(p, 4))) {
        p->i += 4;
        *a = 2;
        skip_ws(p);
        return 0;
    }
    long sign = 1, num = -1;
    if (peek(p, 0) == '+' || peek(p, 0) == '-')
        sign = p->s[p->i++] == '-' ? -1 : 1;
    if (is_digit(peek(p, 0))) {
        num = 0;
        while (is_digit(peek(p, 0))) {
            num = num * 10 + (p->s[p->i++] - '0');
            if (num > NTH_MAX)
                return fail(p, at, "a number in an+b larger than %ld", NTH_MAX);
        }
    }
    if (peek(p, 0) == 'n' || peek(p, 0) == 'N') {
        p->i++;
        *a = sign * (num < 0 ? 1 : num);
        skip_ws(p);
        int c = peek(p, 0);
        if (c == '+' || c == '-') {
            p->i++;
            long bs = c == '-' ? -1 : 1, bn = 0;
            skip_ws(p);
            if (!is_digit(peek(p, 0)))
                return fail(p, p->i, "expected a number after '%c' in an+b", c);
            while (is_digit(peek(p, 0))) {
                bn = bn * 10 + (p->s[p->i++] - '0');
                if (bn > NTH_MAX)
                    return fail(p, at, "a number in an+b larger than %ld", NTH_MAX);
            }
            *b = bs * bn;
        }
    } else if (num >= 0) {
        *b = sign * num;
    } else {
        return fail(p, at, "expected an+b, odd or even");
    }
    skip_ws(p);
    return 0;
}

/* The predicate for "position among counted siblings is an+b", where the
 * count expression cnt is the number of those siblings before the node
 * (its 0-based position s): p = s + 1 = an + b for some n >= 0. */
static void nth_cond(struct strbuf *o, const struct strbuf *cnt, long a, long b)
{
    long b0 = b - 1; /* s = an + b0 */
    if (a == 0 || (a < 0 && b0 < 0)) {
        /* one position, or none when a negative a starts below 1 */
        if (b0 < 0) {
            strbuf_str(o, "false()");
            return;
        }
        strbuf_add(o, cnt->p, cnt->len);
        strbuf_printf(o, " = %ld", b0);
        return;
    }
    long m = a < 0 ? -a : a;
    /* a > 0: s >= b0 (always so when b0 <= 0); a < 0: s <= b0 */
    int bound = a < 0 || b0 > 0;
    if (bound) {
        strbuf_add(o, cnt->p, cnt->len);
        strbuf_printf(o, " %s %ld", a < 0 ? "<=" : ">=", b0);
    }
    if (m > 1) {
        if (bound)
            strbuf_str(o, " and ");
        strbuf_add(o, cnt->p, cnt->len);
        strbuf_printf(o, " mod %ld = %ld", m, ((b0 % m) + m) % m);
    } else if (!bound) {
        strbuf_str(o, "true()");
    }
}

/* The count of the siblings an :nth-* pseudo-class counts: "preceding"
 * or "following", of any element or of the compound's type. */
static int sibling_count(struct parser *p, struct compound *c, struct strbuf *cnt, const char *dir,
                         int of_type, size_t at, const char *pseudo)
{
    strbuf_str(cnt, "count(");
    if (of_type) {
        if (c->tag.len == 0)
            return fail(p, at, ":%s needs a tag name before it (p:%s, not *:%s)", pseudo, pseudo,
                        pseudo);
        char axis[32];
        snprintf(axis, sizeof axis, "%s-sibling::", dir);
        sibling_step(cnt, axis, &c->tag);
    } else {
        strbuf_printf(cnt, "%s-sibling::*", dir);
    }
    strbuf_str(cnt, ")");
    return 0;
}

/* The predicate of one compound as a test on the context node, for
 * :not(): its tag as self::tag, then its own predicates. */
static void compound_test(struct strbuf *out, const struct compound *c)
{
    if (c->tag.len == 0 && c->cond.len == 0) {
        strbuf_str(out, "true()");
        return;
    }
    if (c->tag.len) {
        tag_test(out, &c->tag);
        if (c->cond.len)
            strbuf_str(out, " and ");
    }
    if (c->cond.len)
        strbuf_add(out, c->cond.p, c->cond.len);
}

static void compound_free(struct compound *c)
{
    free(c->tag.p);
    free(c->cond.p);
}

/* :not(compound, compound...) */
static int negation(struct parser *p, struct compound *c, size_t at)
{
    if (++p->depth > NOT_DEPTH_MAX)
        return fail(p, at, ":not() nested deeper than %d", NOT_DEPTH_MAX);
    struct strbuf any = {0};
    int rc = -1;
    for (;;) {
        skip_ws(p);
        struct compound inner = {{0}, {0}};
        if (compound(p, &inner) < 0) {
            compound_free(&inner);
            goto done;
        }
        if (any.len)
            strbuf_str(&any, " or ");
        strbuf_str(&any, "(");
        compound_test(&any, &inner);
        strbuf_str(&any, ")");
        if (inner.tag.oom || inner.cond.oom)
            any.oom = 1;
        compound_free(&inner);
        skip_ws(p);
        if (peek(p, 0) == ',') {
            p->i++;
            continue;
        }
        if (peek(p, 0) == ')')
            break;
        if (peek(p, 0) < 0)
            fail(p, at, "unclosed :not(");
        else
            fail(p, p->i,
                 "expected ',' or ')' in :not() (it takes compound selectors, "
                 "no combinators)");
        goto done;
    }
    p->i++;
    struct strbuf *o = and_cond(c);
    strbuf_str(o, "not(");
    strbuf_add(o, any.p, any.len);
    strbuf_str(o, ")");
    rc = 0;
done:
    if (any.oom)
        c->cond.oom = 1;
    free(any.p);
    p->depth--;
    return rc;
}

static int close_paren(struct parser *p, size_t at, const char *pseudo)
{
    skip_ws(p);
    if (peek(p, 0) != ')')
        return fail(p, p->i < p->n ? p->i : at, "expected ')' to close :%s(", pseudo);
    p->i++;
    return 0;
}

static int nth_pseudo(struct parser *p, struct compound *c, const char *name, size_t at)
{
    int last = strstr(name, "last") != NULL, of_type = strstr(name, "type") != NULL;
    long a, b;
    if (nth_args(p, &a, &b) < 0 || close_paren(p, at, name) < 0)
        return -1;
    struct strbuf cnt = {0};
    if (sibling_count(p, c, &cnt, last ? "following" : "preceding", of_type, at, name) < 0) {
        free(cnt.p);
        return -1;
    }
    nth_cond(and_cond(c), &cnt, a, b);
    if (cnt.oom)
        c->cond.oom = 1;
    free(cnt.p);
    return 0;
}

/* :first-child and the other pseudo-classes without arguments */
static int plain_pseudo(struct parser *p, struct compound *c, const char *name, size_t at)
{
    static const struct {
        const char *name;
        int first, last, of_type;
    } position[] = {
        {"first-child", 1, 0, 0},   {"last-child", 0, 1, 0},   {"only-child", 1, 1, 0},
        {"first-of-type", 1, 0, 1}, {"last-of-type", 0, 1, 1}, {"only-of-type", 1, 1, 1},
    };
    for (size_t k = 0; k < sizeof position / sizeof position[0]; k++) {
        if (strcmp(name, position[k].name) != 0)
            continue;
        struct strbuf cnt = {0};
        int rc = 0;
        if (position[k].first)
            rc = sibling_count(p, c, &cnt, "preceding", position[k].of_type, at, name);
        if (rc == 0 && position[k].first) {
            strbuf_add(and_cond(c), cnt.p, cnt.len);
            strbuf_str(&c->cond, " = 0");
        }
        cnt.len = 0;
        if (rc == 0 && position[k].last)
            rc = sibling_count(p, c, &cnt, "following", position[k].of_type, at, name);
        if (rc == 0 && position[k].last) {
            strbuf_add(and_cond(c), cnt.p, cnt.len);
            strbuf_str(&c->cond, " = 0");
        }
        if (cnt.oom)
            c->cond.oom = 1;
        free(cnt.p);
        return rc;
    }
    if (strcmp(name, "empty") == 0) {
        strbuf_str(and_cond(c), "not(*) and not(string-length())");
        return 0;
    }
    if (strcmp(name, "root") == 0) {
        strbuf_str(and_cond(c), "not(parent::*)");
        return 0;
    }
    return fail(p, at, "unsupported pseudo-class ':%s'", name);
}

static int pseudo(struct parser *p, struct compound *c)
{
    size_t at = p->i++;
    if (peek(p, 0) == ':')
        return fail(p, at, "pseudo-elements (::name) are not supported");
    struct strbuf name = {0};
    int rc = -1;
    if (ident(p, &name, 1, "a pseudo-class name after ':'") < 0)
        goto done;
    if (name.oom) {
        snprintf(p->err, CSS_ERR_MAX, "out of memory");
        p->failed = 1;
        goto done;
    }
    if (peek(p, 0) != '(') {
        rc = plain_pseudo(p, c, name.p, at);
        goto done;
    }
    p->i++;
    if (strcmp(name.p, "not") == 0) {
        rc = negation(p, c, at);
    } else if (strcmp(name.p, "nth-child") == 0 || strcmp(name.p, "nth-last-child") == 0 ||
               strcmp(name.p, "nth-of-type") == 0 || strcmp(name.p, "nth-last-of-type") == 0) {
        rc = nth_pseudo(p, c, name.p, at);
    } else if (strcmp(name.p, "contains") == 0) {
        struct strbuf text = {0};
        skip_ws(p);
        int q = peek(p, 0);
        if (q == '"' || q == '\'')
            rc = quoted(p, &text);
        else
            rc = ident(p, &text, 0, "a quoted string in :contains(");
        if (rc == 0)
            rc = close_paren(p, at, "contains");
        if (rc == 0) {
            strbuf_str(and_cond(c), "contains(string(.), ");
            literal_sb(&c->cond, &text);
            strbuf_str(&c->cond, ")");
        }
        if (text.oom)
            c->cond.oom = 1;
        free(text.p);
    } else {
        fail(p, at, "unsupported pseudo-class ':%s()'", name.p);
    }
done:
    free(name.p);
    return rc;
}

/* One compound selector: a type selector or *, then #id, .class, [attr]
 * and :pseudo in any number. At least one of them. */
static int compound(struct parser *p, struct compound *c)
{
    size_t at = p->i;
    int c0 = peek(p, 0);
    if (c0 == '*') {
        p->i++;
    } else if (name_start(c0) || (c0 == '-' && (name_start(peek(p, 1)) || peek(p, 1) == '-'))) {
        if (ident(p, &c->tag, 1, "a tag name") < 0)
            return -1;
    }
    if (peek(p, 0) == '|')
        return fail(p, p->i, "namespaces (ns|tag) are not supported");
    for (;;) {
        int ch = peek(p, 0);
        if (ch == '#') {
            p->i++;
            struct strbuf id = {0};
            int rc = ident(p, &id, 0, "a name after '#'");
            if (rc == 0) {
                strbuf_str(and_cond(c), "@id = ");
                literal_sb(&c->cond, &id);
            }
            free(id.p);
            if (rc < 0)
                return -1;
        } else if (ch == '.') {
            p->i++;
            struct strbuf cls = {0}, attr = {0};
            int rc = ident(p, &cls, 0, "a class name after '.'");
            if (rc == 0) {
                strbuf_str(&attr, "class");
                word_cond(and_cond(c), &attr, &cls);
            }
            free(cls.p);
            free(attr.p);
            if (rc < 0)
                return -1;
        } else if (ch == '[') {
            if (attribute(p, c) < 0)
                return -1;
        } else if (ch == ':') {
            if (pseudo(p, c) < 0)
                return -1;
        } else {
            break;
        }
    }
    if (p->i == at) {
        if (peek(p, 0) < 0)
            return fail(p, at,
                        "the selector ends where a tag, #id, .class, [attr] or "
                        ":pseudo should follow");
        return fail(p, at, "unexpected '%c': expected a tag, *, #id, .class, [attr] or :pseudo",
                    p->s[at]);
    }
    return 0;
}

/* The location step for c after "axis::" (or after "following-sibling::"
 * for +, which takes the first sibling element and then tests it). */
static void step(struct strbuf *out, const struct compound *c, int adjacent)
{
    if (adjacent) {
        strbuf_str(out, "*[1]");
        if (c->tag.len || c->cond.len) {
            strbuf_str(out, "[");
            compound_test(out, c);
            strbuf_str(out, "]");
        }
        return;
    }
    int named = ncname(&c->tag);
    if (named)
        strbuf_add(out, c->tag.p, c->tag.len);
    else
        strbuf_str(out, "*");
    if ((c->tag.len && !named) || c->cond.len) {
        strbuf_str(out, "[");
        if (c->tag.len && !named) {
            strbuf_str(out, "name() = ");
            literal_sb(out, &c->tag);
            if (c->cond.len)
                strbuf_str(out, " and ");
        }
        if (c->cond.len)
            strbuf_add(out, c->cond.p, c->cond.len);
        strbuf_str(out, "]");
    }
}

static int is_combinator(int c)
{
    return c == '>' || c == '+' || c == '~';
}

/* One complex selector: compounds joined by combinators, perhaps led by
 * one (relative to the context node). */
static int complex(struct parser *p, struct strbuf *out, const char *axis)
{
    int comb = 0;
    skip_ws(p);
    if (is_combinator(peek(p, 0))) {
        comb = p->s[p->i++];
        skip_ws(p);
    }
    for (int first = 1;; first = 0) {
        struct compound c = {{0}, {0}};
        if (compound(p, &c) < 0) {
            compound_free(&c);
            return -1;
        }
        if (first && !comb)
            strbuf_str(out, axis);
        else if (comb == ' ')
            strbuf_str(out, first ? "descendant::" : "/descendant::");
        else if (comb == '>')
            strbuf_str(out, first ? "child::" : "/");
        else
            strbuf_str(out, first ? "following-sibling::" : "/following-sibling::");
        step(out, &c, comb == '+');
        if (c.tag.oom || c.cond.oom)
            out->oom = 1;
        compound_free(&c);
        int ws = skip_ws(p);
        int ch = peek(p, 0);
        if (ch < 0 || ch == ',')
            return 0;
        if (is_combinator(ch)) {
            comb = ch;
            p->i++;
            skip_ws(p);
        } else if (ws) {
            comb = ' ';
        } else {
            return fail(p, p->i, "unexpected '%c'", ch);
        }
    }
}

char *css_to_xpath(const char *sel, size_t n, const char *axis, char *err)
{
    struct parser p = {.s = sel, .n = n, .err = err};
    struct strbuf out = {0};
    err[0] = 0;
    if (n > CSS_SELECTOR_MAX) {
        snprintf(err, CSS_ERR_MAX, "selector longer than %d bytes", CSS_SELECTOR_MAX);
        return NULL;
    }
    for (size_t k = 0; k < n;) {
        int len = utf8_len((const unsigned char *)sel + k, n - k);
        unsigned char c = (unsigned char)sel[k];
        if (c == 0) {
            fail(&p, k, "a NUL byte");
            return NULL;
        }
        if (len == 0) {
            fail(&p, k, "a byte that is not UTF-8");
            return NULL;
        }
        /* XPath literals take only XML's characters: none of C0 but
         * whitespace, no U+FFFE or U+FFFF */
        if ((c < 0x20 && !is_ws(c)) ||
            (len == 3 && c == 0xef && (unsigned char)sel[k + 1] == 0xbf &&
             (unsigned char)sel[k + 2] >= 0xbe)) {
            fail(&p, k, "a control character");
            return NULL;
        }
        k += (size_t)len;
    }
    for (;;) {
        skip_ws(&p);
        if (p.i >= p.n) {
            fail(&p, p.i, out.len ? "the selector ends after ','" : "empty selector");
            goto failed;
        }
        if (complex(&p, &out, axis) < 0)
            goto failed;
        if (p.i >= p.n)
            break;
        p.i++; /* the ',' complex stopped at */
        strbuf_str(&out, " | ");
    }
    if (out.oom) {
        snprintf(err, CSS_ERR_MAX, "out of memory");
        goto failed;
    }
    return out.p;
failed:
    free(out.p);
    return NULL;
}
