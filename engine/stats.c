/* stats.c - the per-worker error table and merging of worker figures.
 *
 * Errors are grouped by their first line with digits kept, so "HTTP 500"
 * and "HTTP 404" stay apart; past STATS_ERRORS distinct messages the rest are
 * counted as "other", keeping memory fixed. */
#include "stats.h"
#include "logtext.h"

#include <string.h>

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
    for (int i = 0; i < STATS_ERRORS; i++) {
        struct stats_error *e = &s->errors[i];
        if (e->count == 0) {
            memcpy(e->text, key, n + 1);
            logtext_redact(e->url, sizeof e->url, url ? url : "", url ? url_len : 0);
            e->count = 1;
            return;
        }
        if (strcmp(e->text, key) == 0) {
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
            if (strcmp(into->errors[j].text, e->text) == 0)
                break;
        if (j == STATS_ERRORS) {
            into->errors_other += e->count;
        } else {
            if (!into->errors[j].count) {
                memcpy(into->errors[j].text, e->text, sizeof e->text);
                memcpy(into->errors[j].url, e->url, sizeof e->url);
            }
            into->errors[j].count += e->count;
        }
    }
    into->errors_other += from->errors_other;
}
