/* fuzz_utf8.h - the fuzz targets' own UTF-8 validator: an oracle written
 * apart from the engine's, so a shared mistake cannot hide. */
#ifndef SHOAL_FUZZ_UTF8_H
#define SHOAL_FUZZ_UTF8_H

#include <stddef.h>
#include <stdint.h>

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

#endif
