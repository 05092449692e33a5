/* logtext.c - JSON string escaping and secret redaction (see logtext.h). */
#include "base/logtext.h"

#include <string.h>
#include <strings.h>

#include "base/utf8.h"

/* One unit of JSON output for the input at in[i]: sets esc and *n to the bytes
 * to write and returns how many input bytes they stand for. */
static size_t json_unit(const unsigned char *in, size_t avail, char esc[7], size_t *n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = in[0];
    if (c == '"' || c == '\\') {
        esc[0] = '\\';
        esc[1] = (char)c;
        *n = 2;
        return 1;
    }
    if (c == '\n' || c == '\r' || c == '\t') {
        esc[0] = '\\';
        esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        *n = 2;
        return 1;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        *n = 6;
        return 1;
    }
    int k = utf8_len(in, avail);
    if (k == 0) {
        memcpy(esc, "\\ufffd", 6);
        *n = 6;
        return 1;
    }
    memcpy(esc, in, (size_t)k);
    *n = (size_t)k;
    return (size_t)k;
}

size_t logtext_json(char *out, size_t outlen, const char *in, size_t len)
{
    if (outlen < 8) {
        if (outlen)
            out[0] = 0;
        return 0;
    }
    const unsigned char *u = (const unsigned char *)in;
    size_t o = 0, cut_at = 1, i = 0;
    out[o++] = '"';
    while (i < len) {
        char esc[7];
        size_t n, used = json_unit(u + i, len - i, esc, &n);
        if (o + n + 2 > outlen) /* closing quote and NUL no longer fit */
            break;
        memcpy(out + o, esc, n);
        o += n;
        i += used;
        /* the last place a cut could end: room left for ..." and NUL */
        if (o + 5 <= outlen)
            cut_at = o;
    }
    if (i < len) {
        o = cut_at;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = 0;
    return o;
}

static const char *const secret_names[] = {
    "password", "passwd", "pwd",           "token", "access_token", "api_key",
    "apikey",   "secret", "client_secret", "auth",  "key",
};

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

int logtext_secret_name(const char *s, size_t n)
{
    for (size_t k = 0; k < sizeof secret_names / sizeof secret_names[0]; k++)
        if (strlen(secret_names[k]) == n && strncasecmp(s, secret_names[k], n) == 0)
            return 1;
    return 0;
}

/* Where a parameter value ends. ; and , are not ends on purpose: a secret
 * that holds them is redacted whole rather than leaked in part. */
static int value_end(unsigned char c)
{
    return c <= ' ' || c == 0x7f || c == '&' || c == '#' || c == '"' || c == '\'' ||
           c == '<' || c == '>';
}

static int authority_end(unsigned char c)
{
    return c <= ' ' || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '"' ||
           c == '\'' || c == '<' || c == '>';
}

struct sink {
    char *out;
    size_t o, cap; /* cap = outlen - 1, room for the NUL */
    int full;
};

/* Appends whole characters of s (invalid bytes count as one each) until one
 * does not fit; after that the sink takes nothing more. */
static void put(struct sink *k, const char *s, size_t n)
{
    if (!k->full && k->o + n <= k->cap) { /* it all fits: no cut to place */
        memcpy(k->out + k->o, s, n);
        k->o += n;
        return;
    }
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n && !k->full;) {
        int w = utf8_len(u + i, n - i);
        size_t step = w ? (size_t)w : 1;
        if (k->o + step > k->cap) {
            k->full = 1;
            break;
        }
        memcpy(k->out + k->o, s + i, step);
        k->o += step;
        i += step;
    }
}

size_t logtext_redact(char *out, size_t outlen, const char *in, size_t len)
{
    if (outlen == 0)
        return 0;
    struct sink k = {out, 0, outlen - 1, 0};
    const unsigned char *u = (const unsigned char *)in;
    size_t from = 0, i = 0; /* in[from, i) is plain text not yet written */
    /* no userinfo and no parameter without an '@' or an '=': most URLs */
    if (!memchr(in, '@', len) && !memchr(in, '=', len))
        i = len;
    while (i < len && !k.full) {
        if (u[i] == ':' && i + 2 < len && u[i + 1] == '/' && u[i + 2] == '/') {
            size_t a = i + 3, e = a, at = 0;
            int has_at = 0;
            while (e < len && !authority_end(u[e])) {
                if (u[e] == '@') /* the last @ ends userinfo: covers a raw @ in a password */
                    at = e, has_at = 1;
                e++;
            }
            if (!has_at) {
                i = a;
                continue;
            }
            size_t colon = a;
            while (colon < at && u[colon] != ':')
                colon++;
            put(&k, in + from, (colon < at ? colon + 1 : a) - from);
            put(&k, "REDACTED", 8);
            from = i = at;
            continue;
        }
        if (u[i] == '=') {
            size_t s = i;
            while (s > 0 && name_char(u[s - 1]))
                s--;
            size_t e = i + 1;
            while (e < len && !value_end(u[e]))
                e++;
            if (e > i + 1 && logtext_secret_name(in + s, i - s)) {
                put(&k, in + from, i + 1 - from);
                put(&k, "REDACTED", 8);
                from = i = e;
                continue;
            }
        }
        i++;
    }
    if (!k.full)
        put(&k, in + from, len - from);
    out[k.o] = 0;
    return k.o;
}
