/* utf8.h - the one UTF-8 validity rule every escaper in shoal shares. */
#ifndef SHOAL_UTF8_H
#define SHOAL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at p (1-4) within avail bytes, or 0 if
 * it is not one: truncated, overlong forms, surrogates and code points past
 * U+10FFFF are invalid. For a NUL-terminated string avail may be SIZE_MAX:
 * the NUL fails the continuation test before the end is passed. */
static inline int utf8_len(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    int n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (n == 0 || c > 0xf4 || (size_t)n > avail)
        return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
        return 0;
    if (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
        return 0;
    return n;
}

/* s (len bytes) made valid UTF-8: every byte that does not start a
 * well-formed sequence, and every NUL, becomes U+FFFD (3 bytes). utf8_clean
 * writes it to out, which has utf8_clean_size(s, len) bytes of room, without
 * a NUL, and returns the bytes written. Plain ASCII is one pass and a copy. */
size_t utf8_clean_size(const char *s, size_t len);
/* How many leading bytes of s are plain ASCII (no NUL): when that is len,
 * s is its own clean copy. */
size_t utf8_ascii_prefix(const char *s, size_t len);
size_t utf8_clean(char *out, const char *s, size_t len);

#endif
