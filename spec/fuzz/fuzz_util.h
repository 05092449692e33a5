/* fuzz_util.h - what the fuzz targets share: must() (a breach aborts, which
 * libFuzzer and the CTest replay both report), a hex digit reader, and
 * oracles written apart from the engine's so a shared mistake cannot hide:
 * a UTF-8 validator and encoder, what a JSON reader should make of any
 * bytes, and a strict reader of JSON strings. */
#ifndef SHOAL_FUZZ_UTIL_H
#define SHOAL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline void must(int cond)
{
    if (!cond)
        abort();
}

/* The value of a hex digit (either case), or -1. */
static inline int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of the UTF-8 sequence at s (at most n bytes), or 0 if it is not a
 * well-formed one (RFC 3629: no overlongs, surrogates or values past
 * U+10FFFF). */
static inline size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Whether n bytes at s are all well-formed UTF-8. */
static inline int is_utf8(const void *s, size_t n)
{
    const unsigned char *p = s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* Writes code point cp as UTF-8 at o (room for 4). Returns its length. */
static inline size_t utf8_put(unsigned char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* in as a JSON reader should get it back from an escaper: each byte that
 * is not part of well-formed UTF-8 as U+FFFD. Marks in at[] the offsets of
 * the result where a character starts (and its end). out and at have room
 * for 3 * len + 1. Returns the length of the result. */
static inline size_t utf8_as_read(const unsigned char *in, size_t len, unsigned char *out, char *at)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq(in + i, len - i);
        at[o] = 1;
        if (k) {
            memcpy(out + o, in + i, k);
            o += k;
            i += k;
        } else {
            o += utf8_put(out + o, 0xfffd);
            i++;
        }
    }
    at[o] = 1;
    return o;
}

/* The 4 hex digits at s as a number, or -1. */
static inline long hex4(const unsigned char *s)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s[k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Strict RFC 8259 reader of the JSON string that starts s[0, n): decodes
 * its inside to UTF-8 in out (room for n bytes) and sets *used to the
 * bytes it takes, quotes included. Returns the decoded length, or -1 if s
 * does not start with one valid JSON string. */
static inline long json_string(const unsigned char *s, size_t n, unsigned char *out, size_t *used)
{
    if (n < 1 || s[0] != '"')
        return -1;
    size_t o = 0, i = 1;
    for (;;) {
        if (i >= n)
            return -1;
        unsigned char c = s[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            size_t k = utf8_seq(s + i, n - i);
            if (!k)
                return -1;
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        if (i + 1 >= n)
            return -1;
        const char *simple = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *p = s[i + 1] ? strchr(simple, s[i + 1]) : NULL;
        if (p) {
            out[o++] = (unsigned char)to[p - simple];
            i += 2;
            continue;
        }
        if (s[i + 1] != 'u' || n - i < 6)
            return -1;
        long cp = hex4(s + i + 2);
        i += 6;
        if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff))
            return -1;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            /* a high surrogate: its low half must follow */
            if (n - i < 6 || s[i] != '\\' || s[i + 1] != 'u')
                return -1;
            long lo = hex4(s + i + 2);
            if (lo < 0xdc00 || lo > 0xdfff)
                return -1;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
        }
        o += utf8_put(out + o, (uint32_t)cp);
    }
    *used = i + 1;
    return (long)o;
}

#endif
