/* span.c - building spans: the allocation side of span.h.
 *
 * A span and everything it holds belong to one thread at a time (the worker
 * that builds it, then the exporter that frees it), so nothing here locks.
 *
 * Every string that goes into a span is copied as valid UTF-8: a byte that
 * does not start a well-formed sequence, and an embedded NUL, become U+FFFD.
 * OTLP strings must be UTF-8, and a receiver that checks (Go's protobuf
 * runtime does) rejects the whole request, so one odd byte in a URL from a
 * crawled page would otherwise lose every span of the batch.
 *
 * Arrays grow by doubling. struct span keeps no capacity for events and
 * links, so theirs is implied by the count: the next power of two, at least
 * GROW_MIN. */
#include "telemetry/traces/span.h"

#include "base/utf8.h"

#include <stdlib.h>
#include <string.h>

#define GROW_MIN 8

/* A NUL-terminated copy of s (len bytes) made valid UTF-8, or NULL on OOM. */
static char *utf8_dup(const char *s, size_t len)
{
    char *out = malloc(utf8_clean_size(s, len) + 1);
    if (out)
        out[utf8_clean(out, s, len)] = 0;
    return out;
}

static char *str_dup(const char *s)
{
    return utf8_dup(s, strlen(s));
}

/* The capacity an array of n elements, whose capacity is implied by n (see
 * the header), must grow to before taking one more; 0 if it has room. */
static size_t grow_to(int n)
{
    if (n == 0)
        return GROW_MIN;
    if (n >= GROW_MIN && (n & (n - 1)) == 0)
        return (size_t)n * 2;
    return 0;
}

#define INLINE_ATTRS 8
#define INLINE_TEXT 384

/* A span, its first attributes and its short strings in one allocation. */
struct span_block {
    struct span s;
    struct attr attrs[INLINE_ATTRS];
    char text[INLINE_TEXT];
};

struct span *span_new(const char *name, enum span_kind kind)
{
    /* only the span itself starts zeroed: the attribute slots and the text
     * area are written before they are read */
    struct span_block *b = malloc(sizeof *b);
    if (!b)
        return NULL;
    struct span *s = &b->s;
    memset(s, 0, sizeof *s);
    s->attrs.a = b->attrs;
    s->attrs.cap = INLINE_ATTRS;
    s->attrs.a_inline = 1;
    s->attrs.text = b->text;
    s->attrs.text_cap = INLINE_TEXT;
    if (!name)
        name = "";
    s->name = attrs_text_dup(&s->attrs, name, strlen(name), &s->name_owned);
    if (!s->name) {
        free(b);
        return NULL;
    }
    s->kind = kind;
    return s;
}

void span_free(struct span *s)
{
    if (!s)
        return;
    free(s->trace_state);
    if (s->name_owned)
        free(s->name);
    free(s->status_message);
    attrs_clear(&s->attrs);
    for (int i = 0; i < s->nevents; i++) {
        free(s->events[i].name);
        attrs_clear(&s->events[i].attrs);
    }
    free(s->events);
    free(s->links);
    free(s);
}

/* The pointer returned stays valid until the next span_add_event on s, which
 * may move the array. */
struct span_event *span_add_event(struct span *s, const char *name, uint64_t time_ns)
{
    char *copy = str_dup(name ? name : "");
    if (!copy)
        return NULL;
    size_t cap = grow_to(s->nevents);
    if (cap) {
        struct span_event *ne = realloc(s->events, cap * sizeof *ne);
        if (!ne) {
            free(copy);
            return NULL;
        }
        s->events = ne;
    }
    struct span_event *e = &s->events[s->nevents++];
    memset(e, 0, sizeof *e);
    e->name = copy;
    e->time_ns = time_ns;
    return e;
}

int span_add_link(struct span *s, const uint8_t trace_id[16], const uint8_t span_id[8],
                  uint8_t flags)
{
    size_t cap = grow_to(s->nlinks);
    if (cap) {
        struct span_link *nl = realloc(s->links, cap * sizeof *nl);
        if (!nl)
            return -1;
        s->links = nl;
    }
    struct span_link *l = &s->links[s->nlinks++];
    memcpy(l->trace_id, trace_id, sizeof l->trace_id);
    memcpy(l->span_id, span_id, sizeof l->span_id);
    l->flags = flags;
    return 0;
}

/* On OOM the status is still set and the message left out: the error code
 * is what queries select on. */
void span_set_status(struct span *s, enum span_status st, const char *message)
{
    free(s->status_message);
    s->status_message = message ? str_dup(message) : NULL;
    s->status = st;
}
