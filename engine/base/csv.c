/* csv.c - RFC 4180 fields and records (see csv.h). */
#include "base/csv.h"

#include <string.h>

#include "base/strbuf.h"

size_t csv_field(char *out, const char *s, size_t n)
{
    if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\n', n) && !memchr(s, '\r', n)) {
        memcpy(out, s, n);
        return n;
    }
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            out[o++] = '"';
        out[o++] = s[i];
    }
    out[o++] = '"';
    return o;
}

void csv_record(struct strbuf *b, int n, const char *const *fields, const size_t *lens)
{
    if (n == 1 && lens[0] == 0) {
        strbuf_add(b, "\"\"\n", 3);
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t room = csv_field_room(lens[i]) + 2;
        if (strbuf_reserve(b, room) != 0)
            return;
        if (i)
            b->p[b->len++] = ',';
        b->len += csv_field(b->p + b->len, fields[i], lens[i]);
    }
    strbuf_add(b, "\n", 1);
}
