/* strbuf.h - a growable text buffer for documents built in memory (the
 * /metrics exposition, the JSON summary).
 *
 * Appends never fail loudly: out of memory sets oom, later appends do
 * nothing, and the owner checks oom once at the end. While !oom the text is
 * NUL-terminated. Start from {0}; free p when done. Owned by one thread. */
#ifndef SHOAL_STRBUF_H
#define SHOAL_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *p;
    size_t len, cap;
    int oom;
};

/* Room for more bytes and a NUL after len; 0, or -1 (oom set). */
int strbuf_reserve(struct strbuf *b, size_t more);
void strbuf_add(struct strbuf *b, const char *s, size_t n);
void strbuf_str(struct strbuf *b, const char *s);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
