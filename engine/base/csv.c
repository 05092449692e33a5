/* csv.c - RFC 4180 fields and records (see csv.h). */
#include "base/csv.h"

#include <stdlib.h>
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

/* One field at s[*i] (n bytes in all) into out (room for n bytes); its
 * length, or -1 if it is not CSV, -2 if s ends inside it. */
static long read_field(const char *s, size_t n, size_t *i, char *out)
{
    size_t k = *i, o = 0;
    if (k < n && s[k] == '"') {
        for (k++;; k++) {
            if (k >= n)
                return -2;
            if (s[k] == '"') {
                if (k + 1 < n && s[k + 1] == '"') {
                    out[o++] = '"';
                    k++;
                    continue;
                }
                if (k + 1 >= n)
                    return -2; /* a closing quote, or the first of a pair */
                k++;
                break;
            }
            out[o++] = s[k];
        }
    } else {
        for (; k < n && s[k] != ',' && s[k] != '\n' && s[k] != '\r'; k++) {
            if (s[k] == '"')
                return -1;
            out[o++] = s[k];
        }
    }
    *i = k;
    return (long)o;
}

int csv_read_record(const char *s, size_t n, int max, char **fields, size_t *lens, size_t *used)
{
    char *buf = malloc(n + 1);
    int k = 0, rc = -1;
    size_t i = 0;
    if (!buf)
        return -1;
    for (;;) {
        long len = read_field(s, n, &i, buf);
        if (len < 0 || i >= n) {
            rc = len == -1 ? -1 : 0; /* not CSV, or no line end yet */
            break;
        }
        if (s[i] != ',' && s[i] != '\n' && s[i] != '\r')
            break; /* text after a closing quote */
        if (k >= max || !(fields[k] = malloc((size_t)len + 1)))
            break;
        memcpy(fields[k], buf, (size_t)len);
        fields[k][len] = 0;
        lens[k++] = (size_t)len;
        if (s[i] == ',') {
            i++;
            continue;
        }
        if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n')) {
            rc = i + 1 >= n ? 0 : -1; /* CRLF not whole yet, or a bare CR */
            break;
        }
        *used = i + (s[i] == '\r' ? 2 : 1);
        free(buf);
        return k;
    }
    while (k > 0)
        free(fields[--k]);
    free(buf);
    return rc;
}
