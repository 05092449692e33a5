/* utf8.c - copying text made valid UTF-8 (see utf8.h). Pure; any thread. */
#include "base/utf8.h"

#include <stdint.h>
#include <string.h>

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* How many leading bytes are plain ASCII, NUL excluded: eight at a time
 * while no byte has its high bit set or is zero (the word trick: a byte
 * that is 0 turns 0x80 after subtracting 1 where it was clear). */
static size_t ascii_prefix(const unsigned char *p, size_t len)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t a = 0;
    for (; a + 8 <= len; a += 8) {
        uint64_t w;
        memcpy(&w, p + a, sizeof w);
        if ((w & highs) || ((w - ones) & ~w & highs))
            break;
    }
    while (a < len && p[a] && p[a] < 0x80)
        a++;
    return a;
}

size_t utf8_ascii_prefix(const char *s, size_t len)
{
    return ascii_prefix((const unsigned char *)s, len);
}

size_t utf8_clean_size(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = ascii_prefix(p, len), need = i;
    while (i < len) {
        int k = p[i] ? utf8_len(p + i, len - i) : 0;
        need += k ? (size_t)k : sizeof replacement - 1;
        i += k ? (size_t)k : 1;
    }
    return need;
}

size_t utf8_clean(char *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = ascii_prefix(p, len), o = i;
    memcpy(out, s, i);
    while (i < len) {
        int k = p[i] ? utf8_len(p + i, len - i) : 0;
        if (k) {
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(out + o, replacement, sizeof replacement - 1);
            o += sizeof replacement - 1;
            i++;
        }
    }
    return o;
}
