/* fuzz_logfmt.c - fuzz target for the logfmt value escaper (logfmt_value).
 *
 * A log line is only as trustworthy as its escaper: whatever the bytes, the
 * value written must be one token that cannot end the line or forge a key.
 * For each of several buffer sizes the target checks that the answer is
 * NUL-terminated with strlen equal to the return value and no write past
 * outlen; that it holds no control byte and is valid UTF-8; that a bare value is the input
 * itself and holds nothing that would need quotes; and that a quoted one
 * unescapes (JSON's escapes, which go-logfmt reads) to the input with each
 * byte that is not UTF-8 made U+FFFD, or, when cut (ending in ..."), to a
 * prefix of that which ends on a character boundary. Any breach
 * aborts, which libFuzzer and the CTest replay both report. */
#include "base/logfmt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

#define GUARD 16

/* Undoes the escapes of a quoted value's inside (s, n bytes) into out, which
 * has room for n bytes. Returns the length, or -1 if s is not something the
 * escaper could have written (a bare quote, a stray or unknown escape). */
static long unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return -1;
        if (c != '\\') {
            out[o++] = (char)c;
            continue;
        }
        if (++i == n)
            return -1;
        switch (s[i]) {
        case '"':
        case '\\':
            out[o++] = s[i];
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            /* only \u00NN is ever written, for control bytes */
            if (i + 4 >= n)
                return -1;
            int v = 0;
            for (int k = 1; k <= 4; k++) {
                int h = hexval((unsigned char)s[i + (size_t)k]);
                if (h < 0)
                    return -1;
                v = v * 16 + h;
            }
            if (v >= 0x80)
                return -1;
            out[o++] = (char)v;
            i += 4;
            break;
        }
        default:
            return -1;
        }
    }
    return (long)o;
}

/* True when the first n bytes of s end on a character boundary of s. */
static int utf8_boundary(const unsigned char *s, size_t len, size_t n)
{
    size_t i = 0;
    while (i < n)
        i += utf8_seq(s + i, len - i);
    return i == n;
}

/* Checks one call with an outlen-byte buffer: in (len bytes) is what the
 * escaper was given, want (wlen bytes) what a reader must get back, the
 * input with each byte that is not UTF-8 made U+FFFD. Returns 1 if the
 * value was written whole, 0 if it was cut. */
static int check_one(const char *in, size_t len, const char *want, size_t wlen, size_t outlen)
{
    char *out = malloc(outlen + GUARD), *plain = malloc(outlen);
    int whole = 1;
    if (!out || !plain)
        goto done;
    memset(out, 'G', outlen + GUARD);
    size_t n = logfmt_value(out, outlen, in, len);

    for (size_t i = 0; i < GUARD; i++)
        must(out[outlen + i] == 'G');
    must(n < outlen);
    must(memchr(out, '\0', outlen) == out + n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        must(c >= 0x20 && c != 0x7f);
    }
    must(is_utf8((const uint8_t *)out, n));

    if (n == 0 || out[0] != '"') {
        /* bare: the input as is, and nothing a logfmt reader would split on */
        must(n > 0 && n == len && memcmp(out, in, len) == 0);
        for (size_t i = 0; i < n; i++)
            must(out[i] != ' ' && out[i] != '"' && out[i] != '=' && out[i] != '\\');
        goto done;
    }

    must(n >= 2 && out[n - 1] == '"');
    const char *inner = out + 1;
    size_t inner_len = n - 2;
    long u = unescape(inner, inner_len, plain);
    int cut_marker = inner_len >= 3 && memcmp(inner + inner_len - 3, "...", 3) == 0;
    if (u >= 0 && (size_t)u == wlen && memcmp(plain, want, wlen) == 0)
        goto done; /* whole: it may still end in "..." if the input does */
    /* not whole, so it must be cut: a prefix of it, then ... */
    must(cut_marker);
    u = unescape(inner, inner_len - 3, plain);
    must(u >= 0 && (size_t)u < wlen && memcmp(plain, want, (size_t)u) == 0);
    must(utf8_boundary((const unsigned char *)want, wlen, (size_t)u));
    whole = 0;
done:
    free(out);
    free(plain);
    return whole;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t sizes[] = {8, 9, 10, 11, 12, 13, 14, 16, 17, 24, 32, 33, 64, 255, 4096};
    /* an exact copy, so a read past len is a heap overflow under ASan */
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    /* what a reader must get back: every byte that does not start a
     * well-formed sequence replaced by U+FFFD */
    char *want = malloc(size * 3 + 1);
    size_t wlen = 0;
    if (!want) {
        free(in);
        return 0;
    }
    for (size_t i = 0; i < size;) {
        size_t k = utf8_seq(data + i, size - i);
        if (k == 0) {
            memcpy(want + wlen, "\xef\xbf\xbd", 3);
            wlen += 3;
            i++;
        } else {
            memcpy(want + wlen, data + i, k);
            wlen += k;
            i += k;
        }
    }
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        check_one(in, size, want, wlen, sizes[k]);
    /* room for the worst case (every byte as \u00NN, quotes, ...): never cut */
    must(check_one(in, size, want, wlen, size * 6 + 8));
    free(want);
    free(in);
    return 0;
}
