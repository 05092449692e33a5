/* attrs.h - OTLP attributes (key, typed value) as every signal carries
 * them: a span's and its events', a log record's, the resource's. The
 * OTLP encoders (otlp_common.h) point protobuf at them without copying.
 *
 * Every string that goes in is copied as valid UTF-8 (a byte that does
 * not start a well-formed sequence, and an embedded NUL, become U+FFFD):
 * OTLP strings must be UTF-8, and a receiver that checks rejects the whole
 * request. A set of attributes belongs to one thread at a time; nothing
 * here locks. */
#ifndef SHOAL_ATTRS_H
#define SHOAL_ATTRS_H

#include <stddef.h>
#include <stdint.h>

enum attr_type { ATTR_STRING, ATTR_INT, ATTR_DOUBLE, ATTR_BOOL };

struct attr {
    char *key;
    unsigned char key_owned, value_owned; /* malloc'd: freed with the attribute */
    unsigned char key_static; /* a string literal (literal_keys): its address
                                 names the key for as long as the process runs */
    enum attr_type type;
    union {
        char *s;
        int64_t i;
        double d;
        int b;
    } v;
};

struct attrs {
    struct attr *a;
    int n, cap;
    int literal_keys; /* while set, attrs_* take keys as string literals that
                         outlive the span: no copy (the engine's own keys) */
    /* a span's attributes start in storage inside the span's own block, and
     * its strings go to a text area there while they fit: one allocation
     * per span in the common case */
    unsigned char a_inline;
    char *text;
    unsigned text_cap, text_used;
};

/* Resource and scope of every export request, of every signal. */
struct otel_resource {
    struct attrs attrs; /* service.name, service.version, host.name, ... */
    const char *scope_name, *scope_version;
};

/* Appends an attribute (key and string value copied). 0, or -1 on OOM
 * (nothing added). */
int attrs_str(struct attrs *a, const char *key, const char *value, size_t len);
int attrs_int(struct attrs *a, const char *key, int64_t value);
int attrs_double(struct attrs *a, const char *key, double value);
int attrs_bool(struct attrs *a, const char *key, int value);
void attrs_clear(struct attrs *a);

/* A NUL-terminated UTF-8-clean copy of s (len bytes), in a's text area when
 * it fits (*owned = 0), else malloc'd (*owned = 1); NULL on OOM. For the
 * owner of the text area (a span's name). */
char *attrs_text_dup(struct attrs *a, const char *s, size_t len, unsigned char *owned);

#endif
