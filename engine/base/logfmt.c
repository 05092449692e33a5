/* logfmt.c - the logfmt value escaper (see logfmt.h). */
#include "base/logfmt.h"

#include <stdio.h>
#include <string.h>

#include "base/utf8.h"

static int needs_quotes(const char *in, size_t len)
{
    if (len == 0)
        return 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return 1;
        if (c >= 0x80) {
            int k = utf8_len((const unsigned char *)in + i, len - i);
            if (k == 0)
                return 1;
            i += (size_t)k - 1;
        }
    }
    return 0;
}

size_t logfmt_value(char *out, size_t outlen, const char *in, size_t len)
{
    if (outlen < 8) {
        if (outlen)
            out[0] = 0;
        return 0;
    }
    if (!needs_quotes(in, len) && len < outlen) {
        memcpy(out, in, len);
        out[len] = 0;
        return len;
    }
    size_t o = 0, room = outlen - 5; /* keep space for ..." and NUL */
    out[o++] = '"';
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        char esc[8];
        size_t n, used = 1;
        int k = c >= 0x80 ? utf8_len((const unsigned char *)in + i, len - i) : 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            /* \u00NN, as JSON writes it: go-logfmt (Loki's | logfmt,
             * Alloy, Promtail) reads it back; it knows no \xNN */
            snprintf(esc, sizeof esc, "\\u%04x", c);
            n = 6;
        } else if (k == 0) {
            memcpy(esc, "\xef\xbf\xbd", 3); /* not UTF-8: U+FFFD, the line stays valid */
            n = 3;
        } else {
            memcpy(esc, in + i, (size_t)k); /* a whole character, cut never inside */
            n = used = (size_t)k;
        }
        if (o + n > room)
            break;
        memcpy(out + o, esc, n);
        o += n;
        i += used;
    }
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = 0;
    return o;
}
