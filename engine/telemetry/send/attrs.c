/* attrs.c - building attributes (see attrs.h). Arrays grow by doubling,
 * from storage the owner may give inline (a_inline: a span's block). */
#include "telemetry/send/attrs.h"

#include "base/utf8.h"

#include <stdlib.h>
#include <string.h>

#define GROW_MIN 8

char *attrs_text_dup(struct attrs *a, const char *s, size_t len, unsigned char *owned)
{
    int ascii = utf8_ascii_prefix(s, len) == len; /* the usual case: one pass */
    size_t size = ascii ? len : utf8_clean_size(s, len);
    char *out;
    if (a->text && a->text_used + size + 1 <= a->text_cap) {
        out = a->text + a->text_used;
        a->text_used += (unsigned)(size + 1);
        *owned = 0;
    } else {
        out = malloc(size + 1);
        *owned = 1;
        if (!out)
            return NULL;
    }
    if (ascii)
        memcpy(out, s, len);
    out[ascii ? len : utf8_clean(out, s, len)] = 0;
    return out;
}

/* A new attribute slot with key copied, or NULL (nothing added) on OOM. The
 * caller fills type and value, then counts it with a->n++. */
static struct attr *attr_slot(struct attrs *a, const char *key)
{
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : GROW_MIN;
        struct attr *na = a->a_inline ? malloc((size_t)cap * sizeof *na)
                                      : realloc(a->a, (size_t)cap * sizeof *na);
        if (!na)
            return NULL;
        if (a->a_inline && a->n)
            memcpy(na, a->a, (size_t)a->n * sizeof *na);
        a->a = na;
        a->cap = cap;
        a->a_inline = 0;
    }
    struct attr *t = &a->a[a->n];
    t->value_owned = 0;
    t->key_static = a->literal_keys != 0;
    if (a->literal_keys) {
        t->key = (char *)key;
        t->key_owned = 0;
    } else {
        t->key = attrs_text_dup(a, key, strlen(key), &t->key_owned);
    }
    return t->key ? t : NULL;
}

int attrs_str(struct attrs *a, const char *key, const char *value, size_t len)
{
    struct attr *t = attr_slot(a, key);
    if (!t)
        return -1;
    t->type = ATTR_STRING;
    t->v.s = attrs_text_dup(a, value, len, &t->value_owned);
    if (!t->v.s) {
        if (t->key_owned)
            free(t->key);
        return -1;
    }
    a->n++;
    return 0;
}

int attrs_int(struct attrs *a, const char *key, int64_t value)
{
    struct attr *t = attr_slot(a, key);
    if (!t)
        return -1;
    t->type = ATTR_INT;
    t->v.i = value;
    a->n++;
    return 0;
}

int attrs_double(struct attrs *a, const char *key, double value)
{
    struct attr *t = attr_slot(a, key);
    if (!t)
        return -1;
    t->type = ATTR_DOUBLE;
    t->v.d = value;
    a->n++;
    return 0;
}

int attrs_bool(struct attrs *a, const char *key, int value)
{
    struct attr *t = attr_slot(a, key);
    if (!t)
        return -1;
    t->type = ATTR_BOOL;
    t->v.b = value != 0;
    a->n++;
    return 0;
}

void attrs_clear(struct attrs *a)
{
    for (int i = 0; i < a->n; i++) {
        if (a->a[i].key_owned)
            free(a->a[i].key);
        if (a->a[i].type == ATTR_STRING && a->a[i].value_owned)
            free(a->a[i].v.s);
    }
    if (!a->a_inline)
        free(a->a);
    a->a = NULL;
    a->n = a->cap = 0;
    a->a_inline = 0;
    a->text = NULL; /* the span's text area dies with the span */
    a->text_cap = a->text_used = 0;
}

