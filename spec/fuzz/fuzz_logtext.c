/* fuzz_logtext.c - fuzz target for the structured logger's text helpers.
 *
 * logtext_json: for several buffer sizes the answer must be NUL-terminated
 * at the returned length with no write past outlen, hold no raw control
 * byte, be exactly one JSON string a strict reader accepts, and decode to
 * the input with each invalid UTF-8 byte read as U+FFFD - whole, or when cut
 * (ending in ..."), a prefix of it on a character boundary.
 * logtext_redact: the same bounds, UTF-8 in gives UTF-8 out, text with no
 * '=' and no "://" comes back unchanged, and secrets planted in a URL
 * around the fuzz bytes never appear in the output. Any breach aborts. */
#include "base/logtext.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

#define GUARD 16

/* Returns 1 when the value was written whole, 0 when cut. */
static int check_json(const char *in, size_t len, size_t outlen, const unsigned char *want,
                      size_t want_len, const char *bound)
{
    unsigned char *out = malloc(outlen + GUARD), *dec = malloc(outlen + 1);
    int whole = 1;
    must(out && dec);
    memset(out, 'G', outlen + GUARD);
    size_t n = logtext_json((char *)out, outlen, in, len);
    for (size_t i = 0; i < GUARD; i++)
        must(out[outlen + i] == 'G');
    must(n < outlen && out[n] == 0);
    for (size_t i = 0; i < n; i++)
        must(out[i] >= 0x20 && out[i] != 0x7f);
    size_t used = 0;
    long d = json_string(out, n, dec, &used);
    must(d >= 0 && used == n); /* one string, and nothing else */
    if ((size_t)d != want_len || memcmp(dec, want, want_len) != 0) {
        must(d >= 3 && memcmp(dec + d - 3, "...", 3) == 0);
        size_t p = (size_t)d - 3;
        must(p < want_len && memcmp(dec, want, p) == 0 && bound[p]);
        whole = 0;
    }
    free(out);
    free(dec);
    return whole;
}

static void check_redact(const char *in, size_t len, size_t outlen, int in_utf8, int plain,
                         int secret_free)
{
    char *out = malloc(outlen + GUARD);
    must(out != NULL);
    memset(out, 'G', outlen + GUARD);
    size_t n = logtext_redact(out, outlen, in, len);
    for (size_t i = 0; i < GUARD; i++)
        must(out[outlen + i] == 'G');
    must(n < outlen && out[n] == 0);
    if (in_utf8)
        must(is_utf8((const unsigned char *)out, n));
    if (plain)
        must(n == (len < outlen ? len : n) && memcmp(out, in, n) == 0);
    if (secret_free)
        for (size_t i = 0; i + 6 <= n; i++)
            must(memcmp(out + i, "SECRET", 6) != 0);
    free(out);
}

static int has(const uint8_t *s, size_t n, const char *what)
{
    size_t w = strlen(what);
    for (size_t i = 0; i + w <= n; i++)
        if (memcmp(s + i, what, w) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t sizes[] = {8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 24, 33, 64, 255, 4096};
    static const char planted[] = "http://u:SECRETxyz@h/?token=SECRETabc";
    /* exact copies, so a read past len is a heap overflow under ASan */
    char *in = malloc(size ? size : 1);
    unsigned char *want = malloc(size * 3 + 1);
    char *bound = calloc(size * 3 + 1, 1);
    size_t mlen = size + sizeof planted - 1;
    char *mixed = malloc(mlen);
    must(in && want && bound && mixed);
    memcpy(in, data, size);

    size_t want_len = utf8_as_read(data, size, want, bound);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        check_json(in, size, sizes[k], want, want_len, bound);
    /* room for the worst case (every byte as \ufffd): never cut */
    must(check_json(in, size, size * 6 + 8, want, want_len, bound));

    int in_utf8 = is_utf8(data, size);
    int plain = !memchr(data, '=', size) && !has(data, size, "://");
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        check_redact(in, size, sizes[k], in_utf8, plain, 0);
    check_redact(in, size, size + 1, in_utf8, plain, 0);

    /* the fuzz bytes split around a URL carrying secrets */
    size_t half = size / 2;
    memcpy(mixed, data, half);
    memcpy(mixed + half, planted, sizeof planted - 1);
    memcpy(mixed + half + sizeof planted - 1, data + half, size - half);
    int secret_free = !has(data, size, "SECRET");
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        check_redact(mixed, mlen, sizes[k], 0, 0, secret_free);
    check_redact(mixed, mlen, mlen * 2 + 16, 0, 0, secret_free);

    free(in);
    free(want);
    free(bound);
    free(mixed);
    return 0;
}
