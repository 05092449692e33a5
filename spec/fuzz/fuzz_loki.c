/* fuzz_loki.c - fuzz target for the Loki push body (loki_batch_*).
 *
 * The input is read as a service name and a run of records (level, time,
 * ids or not, line bytes; one kind of record repeats its bytes past
 * LOKI_MAX_LINE). The body must be one JSON document of exactly Loki's
 * shape, read here by a strict reader of its own: {"streams":[...]} with
 * one stream per level present, in level order, labelled exactly
 * service_name (the name, invalid bytes as U+FFFD), service_instance_id
 * when an instance is given (the name again, for names of odd length) and
 * level; each entry
 * [digits, line] or [digits, line, {"trace_id": 32 hex, "span_id": 16
 * hex}]; the entries of a level in the order added, each with its record's
 * time and ids, and its line whole (written byte for byte as logtext_json
 * writes it) or cut on a character boundary ending in "..." with at most
 * LOKI_MAX_LINE bytes of JSON. Any breach aborts. */
#include "telemetry/logs/loki.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "base/logtext.h"
#include "base/strbuf.h"

#define MAXREC 64

struct rec {
    struct log_record r;
    const char *line;
    size_t len;
};

/* ------------------------------------------------------------ the reader */

struct cur {
    const unsigned char *s;
    size_t n, i;
};

static void lit(struct cur *c, const char *t)
{
    size_t k = strlen(t);
    must(c->n - c->i >= k && memcmp(c->s + c->i, t, k) == 0);
    c->i += k;
}

/* A JSON string (RFC 8259, no leniency), decoded into out (room for as
 * many bytes as the text has). Sets *raw to its length in the body. */
static size_t str(struct cur *c, unsigned char *out, size_t *raw)
{
    long k = json_string(c->s + c->i, c->n - c->i, out, raw);
    must(k >= 0);
    c->i += *raw;
    return (size_t)k;
}

static void hex_is(struct cur *c, const uint8_t *id, size_t n, unsigned char *tmp)
{
    static const char hex[] = "0123456789abcdef";
    size_t raw, k = str(c, tmp, &raw);
    must(k == 2 * n && raw == 2 * n + 2);
    for (size_t i = 0; i < n; i++)
        must(tmp[2 * i] == hex[id[i] >> 4] && tmp[2 * i + 1] == hex[id[i] & 15]);
}

static void entry_is(struct cur *c, const struct rec *e, unsigned char *tmp, unsigned char *want,
                     char *at)
{
    size_t raw;
    lit(c, "[");
    size_t k = str(c, tmp, &raw);
    must(k > 0 && k <= 20 && (k == 1 || tmp[0] != '0'));
    uint64_t t = 0;
    for (size_t i = 0; i < k; i++) {
        must(tmp[i] >= '0' && tmp[i] <= '9');
        t = t * 10 + (uint64_t)(tmp[i] - '0');
    }
    must(t == e->r.time_ns);
    lit(c, ",");
    k = str(c, tmp, &raw);
    must(raw <= LOKI_MAX_LINE);
    size_t wlen = utf8_as_read((const unsigned char *)e->line, e->len, want, at);
    if (k != wlen || memcmp(tmp, want, k) != 0) {
        /* cut: a prefix on a character boundary, then ... */
        must(k >= 3 && memcmp(tmp + k - 3, "...", 3) == 0);
        size_t p = k - 3;
        must(p < wlen && memcmp(tmp, want, p) == 0 && at[p]);
        must(raw > LOKI_MAX_LINE - 16); /* cut only for want of room */
    } else {
        /* whole: byte for byte what logtext_json makes of it */
        size_t cap = e->len * 6 + 8;
        char *j = malloc(cap);
        must(j != NULL);
        size_t jn = logtext_json(j, cap, e->line, e->len);
        must(jn == raw && memcmp(j, c->s + c->i - raw, raw) == 0);
        free(j);
    }
    if (e->r.has_ids) {
        lit(c, ",{\"trace_id\":");
        hex_is(c, e->r.trace_id, 16, tmp);
        lit(c, ",\"span_id\":");
        hex_is(c, e->r.span_id, 8, tmp);
        lit(c, "}");
    }
    lit(c, "]");
}

/* ------------------------------------------------------------ the target */

static uint64_t take(const uint8_t **p, const uint8_t *end, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n && *p < end; k++)
        v = v << 8 | *(*p)++;
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[4] = {"debug", "info", "warn", "error"};
    const uint8_t *p = data, *end = data + size;
    size_t slen = (size_t)take(&p, end, 1) % 24;
    if (slen > (size_t)(end - p))
        slen = (size_t)(end - p);
    char service[32];
    memcpy(service, p, slen);
    service[slen] = 0; /* a NUL inside ends it, as it would for a C string */
    slen = strlen(service);
    p += (size_t)(end - p) < slen ? (size_t)(end - p) : slen;

    struct rec *recs = calloc(MAXREC, sizeof *recs);
    char *big = NULL;
    int n = 0;
    while (p < end && n < MAXREC) {
        struct rec *e = &recs[n++];
        uint8_t h = (uint8_t)take(&p, end, 1);
        e->r.level = (enum log_level)(h & 3);
        e->r.has_ids = (h & 4) != 0;
        e->r.time_ns = take(&p, end, (h >> 3 & 7) + 1);
        if (e->r.has_ids) {
            for (int i = 0; i < 16; i++)
                e->r.trace_id[i] = (uint8_t)take(&p, end, 1);
            for (int i = 0; i < 8; i++)
                e->r.span_id[i] = (uint8_t)take(&p, end, 1);
        }
        size_t len = (size_t)take(&p, end, 1);
        if (len > (size_t)(end - p))
            len = (size_t)(end - p);
        if (h >> 6 == 3 && !big && len) {
            /* the bytes again and again, well past what Loki takes */
            size_t blen = LOKI_MAX_LINE + 4096;
            big = malloc(blen);
            must(big != NULL);
            for (size_t i = 0; i < blen; i++)
                big[i] = (char)p[i % len];
            e->line = big;
            e->len = blen;
        } else {
            e->line = (const char *)p;
            e->len = len;
        }
        p += len;
    }

    struct loki_batch *b = loki_batch_new();
    must(b != NULL);
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        size_t k = loki_batch_add(b, &recs[i].r, recs[i].line, recs[i].len);
        must(k > 0);
        bytes += k;
    }
    must(loki_batch_lines(b) == (size_t)n && loki_batch_bytes(b) == bytes);
    struct strbuf body = {0};
    const char *instance = slen % 2 ? service : NULL;
    must(loki_batch_body(b, service, instance, &body) == 0);

    size_t room = slen * 3 + 1;
    for (int i = 0; i < n; i++)
        if (recs[i].len * 3 + 1 > room)
            room = recs[i].len * 3 + 1;
    unsigned char *tmp = malloc(body.len + 1), *want = malloc(room);
    char *at = malloc(room);
    must(tmp && want && at);
    struct cur c = {(const unsigned char *)body.p, body.len, 0};
    lit(&c, "{\"streams\":[");
    int first = 1, seen = 0;
    for (int lv = 0; lv < 4; lv++) {
        int any = 0;
        for (int i = 0; i < n; i++)
            any |= (int)recs[i].r.level == lv;
        if (!any)
            continue;
        if (!first)
            lit(&c, ",");
        first = 0;
        size_t raw;
        lit(&c, "{\"stream\":{\"service_name\":");
        size_t k = str(&c, tmp, &raw);
        size_t wlen = utf8_as_read((const unsigned char *)service, slen, want, at);
        must(k == wlen && memcmp(tmp, want, k) == 0);
        if (instance && *instance) {
            lit(&c, ",\"service_instance_id\":");
            k = str(&c, tmp, &raw);
            must(k == wlen && memcmp(tmp, want, k) == 0);
        }
        lit(&c, ",\"level\":");
        k = str(&c, tmp, &raw);
        must(k == strlen(names[lv]) && memcmp(tmp, names[lv], k) == 0);
        lit(&c, "},\"values\":[");
        int comma = 0;
        for (int i = 0; i < n; i++) {
            if ((int)recs[i].r.level != lv)
                continue;
            if (comma)
                lit(&c, ",");
            comma = 1;
            entry_is(&c, &recs[i], tmp, want, at);
            seen++;
        }
        lit(&c, "]}");
    }
    lit(&c, "]}");
    must(c.i == c.n && seen == n);
    must(body.p[body.len] == 0);

    /* cleared, the batch is as new */
    loki_batch_clear(b);
    must(loki_batch_lines(b) == 0 && loki_batch_bytes(b) == 0);

    free(tmp);
    free(want);
    free(at);
    free(body.p);
    loki_batch_free(b);
    free(big);
    free(recs);
    return 0;
}
