/* fuzz_logline.c - fuzz target for whole log lines (log_format_logfmt and
 * log_format_json), the bytes a tailing agent ships to Loki.
 *
 * The input is cut at 0xfe bytes into a message and up to 31 key/value
 * pairs (a value may be a number, picked by its first byte), so keys and
 * values hold any bytes. Whatever they hold, each line must be exactly one
 * line (one '\n', at its end), valid UTF-8 without control bytes, and read
 * back into the same number of fields: the logfmt line by a logfmt reader
 * written here (key=bare or key="quoted with escapes"), the JSON line by a
 * JSON object reader written here. A value that could add, hide or split a
 * field, or end the line early, fails one of those. */
#include "telemetry/logs/logger.h"
#include "base/strbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

/* A logfmt line: key=value pairs separated by single spaces, values bare
 * (no space, quote, '=' or backslash) or quoted. Returns the number of
 * pairs, or -1 if the line is not one. */
static int logfmt_pairs(const char *s, size_t n)
{
    int pairs = 0;
    size_t i = 0;
    while (i < n) {
        size_t k = i;
        while (i < n && s[i] != '=' && s[i] != ' ' && s[i] != '"')
            i++;
        if (i == k || i == n || s[i] != '=')
            return -1;
        i++;
        if (i < n && s[i] == '"') {
            for (i++;; i++) {
                if (i >= n)
                    return -1;
                if (s[i] == '\\') {
                    i++;
                    continue;
                }
                if (s[i] == '"')
                    break;
            }
            i++;
        } else {
            size_t v = i;
            while (i < n && s[i] != ' ') {
                if (s[i] == '"' || s[i] == '=' || s[i] == '\\')
                    return -1;
                i++;
            }
            if (i == v)
                return -1;
        }
        pairs++;
        if (i < n) {
            if (s[i] != ' ' || i + 1 == n)
                return -1;
            i++;
        }
    }
    return pairs;
}

/* JSON, for the shapes log_format_json writes: an object of string keys
 * and string / number / true / false / null values. */
static int json_str(const char *s, size_t n, size_t *i)
{
    if (*i >= n || s[*i] != '"')
        return -1;
    for ((*i)++; *i < n; (*i)++) {
        unsigned char c = (unsigned char)s[*i];
        if (c < 0x20)
            return -1;
        if (c == '"') {
            (*i)++;
            return 0;
        }
        if (c == '\\') {
            (*i)++;
            if (*i >= n || !strchr("\"\\/bfnrtu", s[*i]))
                return -1;
            if (s[*i] == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (*i + (size_t)k >= n || hexval((unsigned char)s[*i + (size_t)k]) < 0)
                        return -1;
                *i += 4;
            }
        }
    }
    return -1;
}

static int json_scalar(const char *s, size_t n, size_t *i)
{
    if (*i < n && s[*i] == '"')
        return json_str(s, n, i);
    static const char *const words[] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        size_t l = strlen(words[w]);
        if (*i + l <= n && !memcmp(s + *i, words[w], l)) {
            *i += l;
            return 0;
        }
    }
    size_t st = *i;
    while (*i < n && strchr("0123456789+-.eE", s[*i]))
        (*i)++;
    return *i > st ? 0 : -1;
}

static int json_pairs(const char *s, size_t n)
{
    size_t i = 0;
    int pairs = 0;
    if (n < 2 || s[i++] != '{')
        return -1;
    while (i < n && s[i] != '}') {
        if (pairs && s[i++] != ',')
            return -1;
        if (json_str(s, n, &i) != 0 || i >= n || s[i++] != ':' || json_scalar(s, n, &i) != 0)
            return -1;
        pairs++;
    }
    return i + 1 == n && s[i] == '}' ? pairs : -1;
}

static void check_line(const struct strbuf *b, int want_pairs, int json)
{
    must(!b->oom && b->len > 0 && b->p[b->len - 1] == '\n');
    must(memchr(b->p, '\n', b->len) == b->p + b->len - 1);
    for (size_t i = 0; i + 1 < b->len; i++)
        must((unsigned char)b->p[i] >= 0x20 && b->p[i] != 0x7f);
    must(is_utf8(b->p, b->len));
    int got = json ? json_pairs(b->p, b->len - 1) : logfmt_pairs(b->p, b->len - 1);
    must(got == want_pairs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact copy, so a read past the end is caught by ASan */
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    const char *part[1 + 2 * LOG_MAX_FIELDS];
    size_t plen[1 + 2 * LOG_MAX_FIELDS];
    int np = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && np < 1 + 2 * LOG_MAX_FIELDS; i++) {
        if (i == size || (unsigned char)in[i] == 0xfe) {
            part[np] = in + start;
            plen[np++] = i - start;
            start = i + 1;
        }
    }
    struct log_record r;
    log_begin(&r, (enum log_level)(size % 4), NULL);
    r.msg = part[0];
    r.msg_len = plen[0];
    r.worker = size % 3 == 0 ? -1 : (int)(size % 7);
    r.has_ids = size % 2;
    memset(r.trace_id, 0xab, 16);
    memset(r.span_id, 0xcd, 8);
    for (int k = 1; k + 1 < np; k += 2) {
        struct log_field *f = &r.f[r.nfields++];
        f->key = part[k];
        f->key_len = plen[k];
        unsigned char sel = plen[k + 1] ? (unsigned char)part[k + 1][0] : 0;
        if (sel == 0xf0) {
            f->type = LOG_INT;
            f->i = (int64_t)(plen[k + 1] * 7919) - 100000;
        } else if (sel == 0xf1) {
            double vals[] = {0.0, 1e-12, 0.5, 1e300, -2.25, 0.0 / 0.0, 1.0 / 0.0};
            f->type = LOG_DBL;
            f->d = vals[plen[k + 1] % 7];
        } else if (sel == 0xf2) {
            f->type = LOG_BOOL;
            f->i = plen[k + 1] % 2;
        } else {
            f->type = LOG_STR;
            f->s = part[k + 1];
            f->len = plen[k + 1];
        }
    }
    int want = 3 + (r.worker >= 0) + r.nfields + (r.has_ids ? 2 : 0);
    struct strbuf b = {0};
    log_format_logfmt(&b, &r);
    check_line(&b, want, 0);
    b.len = 0;
    log_format_json(&b, &r);
    check_line(&b, want, 1);
    free(b.p);
    free(in);
    return 0;
}
