/* stats.h - what a run counts, per worker, and the merged totals.
 *
 * Each worker owns one struct stats and is its only writer. Counters are
 * relaxed atomics so the main thread can read them for the live progress
 * line without a lock; the histogram and the error table are read only after
 * the worker has stopped (or been abandoned as wedged). */
#ifndef SHOAL_STATS_H
#define SHOAL_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/hist.h"

#define STATS_ERRORS 32
#define STATS_ERROR_LEN 160
#define STATS_URL_LEN 256

typedef _Atomic uint64_t counter;

/* Single writer: a plain load + store, no locked instruction. */
static inline void counter_add(counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline uint64_t counter_get(counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

struct stats_error {
    char pattern[STATS_ERROR_LEN]; /* what groups: stats_error_pattern of the first line */
    char text[STATS_ERROR_LEN];    /* the first line of its first sight, the example */
    char url[STATS_URL_LEN]; /* the job url of its first sight, redacted; "" if none */
    uint64_t count;
};

#define STATS_SCOPE_REASONS 7 /* core/scope.h's enum scope_reason */

struct stats {
    counter jobs_ok;        /* attempts that returned */
    counter jobs_failed;    /* jobs that failed their last allowed attempt */
    counter jobs_disallowed; /* jobs ended by robots.txt: a request it disallows */
    counter out_of_scope[STATS_SCOPE_REASONS]; /* url pushes dropped, by scope_reason */
    counter attempts_failed;
    counter retries;        /* attempts scheduled again */
    counter timeouts;       /* attempts stopped at --timeout: I/O, CPU budget, wedged */
    counter started;        /* attempts started */
    counter inflight;       /* gauge, written by its worker */
    counter http_requests;
    counter http_errors;    /* transport failures: no status */
    counter bytes_in;
    counter status[6];      /* 1xx .. 5xx at [1..5]; [0] other */
    counter status_code[600];
    struct hist latency;    /* job attempt wall time, µs */
    struct stats_error errors[STATS_ERRORS];
    uint64_t errors_other;
};

/* Counts a failure message under the pattern of its first line (below);
 * the first message of each pattern is kept as its example with url
 * (url_len bytes, may be NULL), the failed job's, redacted, so the summary
 * can say which input failed. Worker thread. */
void stats_error(struct stats *s, const char *msg, const char *url, size_t url_len);

/* Writes into out (outlen bytes) what failures are grouped by: msg (len
 * bytes) with each URL (scheme://... up to white space or a quote, less a
 * trailing . , ; : or parenthesis) as <url> and each number (digits, 0x
 * hex, 1.5, 127.0.0.1) as <n>, so "GET http://h/p3: HTTP 404 after 12 ms"
 * and the same failure of another page read alike. Two numbers that tell
 * failures apart stay: an HTTP status (after "HTTP " or "status ") and a
 * script's line (after ".lua:"). Cut to fit between UTF-8 characters,
 * always NUL-terminated. Returns the length written (0 when outlen is 0).
 * Any thread. */
size_t stats_error_pattern(char *out, size_t outlen, const char *msg, size_t len);

/* Adds from into into (the main thread, workers stopped). */
void stats_merge(struct stats *into, struct stats *from);

#endif
