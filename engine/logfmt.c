/* logfmt.c - the logfmt value escaper (see logfmt.h). */
#include "logfmt.h"

#include <stdio.h>
#include <string.h>

static int needs_quotes(const char *in, size_t len)
{
    if (len == 0)
        return 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return 1;
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
    for (; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        char esc[5];
        size_t n;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            n = 4;
        } else {
            esc[0] = (char)c;
            n = 1;
        }
        if (o + n > room)
            break;
        memcpy(out + o, esc, n);
        o += n;
    }
    if (i < len) {
        /* cut: do not leave half of a UTF-8 sequence before the marker */
        while (o > 1 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
            o--;
        if (o > 1 && ((unsigned char)out[o - 1] & 0xc0) == 0xc0)
            o--;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = 0;
    return o;
}
