/* loki.h - pushing log lines to Loki's JSON push API (--loki URL).
 *
 * The logger's writer thread hands each record with its formatted line;
 * the sink copies it into the open batch (streams keyed by the labels
 * service_name, service_instance_id (this process's id: one value per
 * process) and level; timestamps as nanosecond strings; trace_id and
 * span_id as structured metadata) and returns without I/O. A thread of its
 * own seals a batch when it reaches the size bound or has waited the batch
 * delay, gzips it, POSTs it to /loki/api/v1/push and retries 429/5xx with
 * backoff. Past a bound of pending bytes new lines are dropped and counted
 * (shoal_telemetry_dropped_total{signal="logs_loki"}); lines Loki accepted
 * are counted as exported, lines refused or failed after every retry as
 * failed. The first trouble is logged once.
 *
 * Sizes (batch_bytes, max_pending) count the entries' JSON, before gzip.
 * A batch is retried for at most LOKI_RETRY_FOR seconds after its first
 * line (so the lines behind it wait a bounded time), and at shutdown until
 * its deadline; a Loki that does not answer at all (refused, unreachable)
 * gets one more try per batch at shutdown, not a wait. Credentials in the
 * URL (https://user:key@host) go out as basic auth. */
#ifndef SHOAL_LOKI_H
#define SHOAL_LOKI_H

#include <stddef.h>

#include "telemetry/logs/logger.h"

struct registry;

#define LOKI_RETRY_FOR 60.0 /* seconds a batch is retried during the run */

struct loki_config {
    const char *url;      /* http(s)://host:port[/path]; no path: /loki/api/v1/push */
    const char *service;  /* the service_name label */
    const char *instance; /* the service_instance_id label, or NULL */
    long batch_wait_ms;   /* 0: 1000 */
    size_t batch_bytes;   /* 0: 1 MiB of lines */
    size_t max_pending;   /* 0: 16 MiB of lines waiting (sealed or open) */
    long timeout_ms;      /* per request; 0: 10 s */
};

struct loki;

/* Checks the URL, starts the sender thread. NULL with a message on
 * failure (a bad URL names --loki). m may be NULL (tests). */
struct loki *loki_new(const struct loki_config *c, struct registry *m, char *err,
                      size_t errlen);
/* Takes one record (line: its formatted text, len bytes, no newline).
 * Writer thread only; never blocks on I/O (a mutex held by the sender only
 * to move a batch). Past max_pending the line is dropped and counted. */
void loki_add(struct loki *l, const struct log_record *rec, const char *line, size_t len);
/* Sends what is pending (retrying within timeout_ms), stops, frees. NULL
 * is a no-op. */
void loki_shutdown(struct loki *l, long timeout_ms);
/* The two above as a log sink, for logger_add_sink. */
extern const struct log_sink_ops loki_sink_ops;

/* ------------------------------------------------------------ the body
 *
 * Formatting apart from sending, so tests and the fuzz target check the
 * bytes without a network. A batch keeps one stream per level (service_name
 * is the same for all); each entry is ["<ns>", <line as a JSON string>]
 * plus {"trace_id": ..., "span_id": ...} when rec->has_ids. A line is
 * escaped with logtext_json and cut (ending in "...") to at most
 * LOKI_MAX_LINE bytes of JSON, below Loki's default max_line_size (256KB),
 * so no entry is refused for its length. Service names and instance ids
 * longer than ~1000 bytes are cut the same way. A batch belongs to one
 * thread at a time. */
#define LOKI_MAX_LINE 256000

struct strbuf;
struct loki_batch;

/* NULL on OOM. */
struct loki_batch *loki_batch_new(void);
/* Appends rec's entry. Returns the bytes it added, 0 when out of memory
 * (the batch is then spoiled: loki_batch_body fails). */
size_t loki_batch_add(struct loki_batch *b, const struct log_record *rec, const char *line,
                      size_t len);
size_t loki_batch_lines(const struct loki_batch *b);
size_t loki_batch_bytes(const struct loki_batch *b);
/* Appends the push request to out: {"streams":[{"stream":{"service_name":
 * <service>[,"service_instance_id":<instance>],"level":"debug|info|warn|error"},
 * "values":[...]}, ...]}, the streams in level order, none empty (instance
 * NULL or empty: no such label). 0, or -1 if out of memory (now or while
 * adding). */
int loki_batch_body(const struct loki_batch *b, const char *service, const char *instance,
                    struct strbuf *out);
/* Empties b, keeping its memory for the next batch. */
void loki_batch_clear(struct loki_batch *b);
void loki_batch_free(struct loki_batch *b);

#endif
