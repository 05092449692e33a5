/* stats.c - the per-worker error table and merging of worker figures.
 *
 * Errors are grouped by their first line with URLs and numbers masked
 * (stats_error_pattern), so one failure of many pages or of varying
 * durations is one entry, while "HTTP 500" and "HTTP 404" stay apart; each
 * entry keeps its first message and job url as an example. Past
 * STATS_ERRORS distinct patterns the rest are counted as "other", keeping
 * memory fixed. */
#include "core/stats.h"
#include "base/logtext.h"

#include <ctype.h>
#include <strings.h>
#include <string.h>

struct pat {
    char *out;
    size_t cap, len; /* cap: room for text, the NUL excluded */
    int full;
};

static void put(struct pat *p, const char *s, size_t n)
{
    if (p->full)
        return;
    if (n > p->cap - p->len) {
        n = p->cap - p->len;
        p->full = 1;
    }
    memcpy(p->out + p->len, s, n);
    p->len += n;
}

static int scheme_char(unsigned char c)
{
    return isalnum(c) || c == '+' || c == '-' || c == '.';
}

/* The length of the URL at msg[i] (a run of scheme characters, then
 * "://"), or 0. Loose on purpose: whatever precedes "://" is masked with
 * it, so no URL's host or path can split a group. Each call may scan a run
 * again, but the pattern's fixed size bounds the calls. */
static size_t url_at(const char *msg, size_t len, size_t i)
{
    size_t j = i;
    while (j < len && scheme_char((unsigned char)msg[j]))
        j++;
    if (j == i || len - j < 3 || memcmp(msg + j, "://", 3) != 0)
        return 0;
    j += 3;
    while (j < len && msg[j] && !strchr(" \t\r\n\"'`<>", msg[j]))
        j++;
    while (j > i && msg[j - 1] && strchr(".,;:)", msg[j - 1]))
        j--;
    return j - i;
}

/* Whether a number written next tells failures apart, by what precedes it
 * in the pattern (not in msg: a context inside a masked URL is gone). */
static int kept_number(const struct pat *p)
{
    const char *o = p->out;
    size_t n = p->len;
    return (n >= 5 && strncmp(o + n - 5, "HTTP ", 5) == 0) ||
           (n >= 7 && strncasecmp(o + n - 7, "status ", 7) == 0) ||
           (n >= 5 && strncmp(o + n - 5, ".lua:", 5) == 0);
}

/* The length of the number at msg[i] (a digit). */
static size_t number_at(const char *msg, size_t len, size_t i)
{
    size_t j = i;
    if (msg[i] == '0' && i + 2 < len && (msg[i + 1] | 0x20) == 'x' &&
        isxdigit((unsigned char)msg[i + 2])) {
        for (j = i + 2; j < len && isxdigit((unsigned char)msg[j]);)
            j++;
        return j - i;
    }
    for (; j < len; j++) {
        unsigned char c = (unsigned char)msg[j];
        /* 1.5, 127.0.0.1 and 1,000 are one number each */
        int joins = (c == '.' || c == ',') && j + 1 < len && isdigit((unsigned char)msg[j + 1]);
        if (!isdigit(c) && !joins)
            break;
    }
    return j - i;
}

size_t stats_error_pattern(char *out, size_t outlen, const char *msg, size_t len)
{
    if (outlen == 0)
        return 0;
    struct pat p = {out, outlen - 1, 0, 0};
    for (size_t i = 0; i < len && !p.full;) {
        size_t n;
        if ((n = url_at(msg, len, i))) {
            put(&p, "<url>", 5);
        } else if (isdigit((unsigned char)msg[i])) {
            n = number_at(msg, len, i);
            for (size_t k = 1; k < n; k++) /* "5,0://": a URL begins inside */
                if (url_at(msg, len, i + k)) {
                    n = k;
                    break;
                }
            if (kept_number(&p))
                put(&p, msg + i, n);
            else
                put(&p, "<n>", 3);
        } else {
            n = 1;
            put(&p, msg + i, 1);
        }
        i += n;
    }
    if (p.full) { /* do not end in the middle of a UTF-8 character */
        size_t end = p.len;
        while (end > 0 && ((unsigned char)out[end - 1] & 0xc0) == 0x80)
            end--;
        if (end > 0 && (unsigned char)out[end - 1] >= 0xc0)
            p.len = end - 1;
    }
    out[p.len] = 0;
    return p.len;
}

void stats_error(struct stats *s, const char *msg, const char *url, size_t url_len)
{
    char key[STATS_ERROR_LEN];
    size_t n = 0;
    for (; msg && msg[n] && msg[n] != '\n' && n < sizeof key - 1; n++)
        key[n] = msg[n];
    if (msg && msg[n] && msg[n] != '\n') {
        /* cut: do not end in the middle of a UTF-8 character */
        size_t end = n;
        while (end > 0 && ((unsigned char)key[end - 1] & 0xc0) == 0x80)
            end--;
        if (end > 0 && (unsigned char)key[end - 1] >= 0xc0)
            n = end - 1;
    }
    key[n] = 0;
    size_t line = 0;
    while (msg && msg[line] && msg[line] != '\n')
        line++;
    char pattern[STATS_ERROR_LEN];
    stats_error_pattern(pattern, sizeof pattern, msg ? msg : "", line);
    for (int i = 0; i < STATS_ERRORS; i++) {
        struct stats_error *e = &s->errors[i];
        if (e->count == 0) {
            memcpy(e->pattern, pattern, sizeof pattern);
            memcpy(e->text, key, n + 1);
            logtext_redact(e->url, sizeof e->url, url ? url : "", url ? url_len : 0);
            e->count = 1;
            return;
        }
        if (strcmp(e->pattern, pattern) == 0) {
            e->count++;
            return;
        }
    }
    s->errors_other++;
}

void stats_merge(struct stats *into, struct stats *from)
{
#define ADD(f) counter_add(&into->f, counter_get(&from->f))
    ADD(jobs_ok);
    ADD(jobs_failed);
    ADD(jobs_disallowed);
    for (int i = 0; i < STATS_SCOPE_REASONS; i++)
        ADD(out_of_scope[i]);
    ADD(attempts_failed);
    ADD(retries);
    ADD(timeouts);
    ADD(started);
    ADD(inflight);
    ADD(http_requests);
    ADD(http_errors);
    ADD(bytes_in);
    for (int i = 0; i < 6; i++)
        ADD(status[i]);
    for (int i = 0; i < 600; i++)
        ADD(status_code[i]);
#undef ADD
    hist_merge(&into->latency, &from->latency);
    for (int i = 0; i < STATS_ERRORS && from->errors[i].count; i++) {
        const struct stats_error *e = &from->errors[i];
        int j = 0;
        for (; j < STATS_ERRORS && into->errors[j].count; j++)
            if (strcmp(into->errors[j].pattern, e->pattern) == 0)
                break;
        if (j == STATS_ERRORS) {
            into->errors_other += e->count;
        } else {
            if (!into->errors[j].count) { /* its example comes along */
                into->errors[j] = *e;
                into->errors[j].count = 0;
            }
            into->errors[j].count += e->count;
        }
    }
    into->errors_other += from->errors_other;
}
