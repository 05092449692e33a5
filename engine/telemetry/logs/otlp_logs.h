/* otlp_logs.h - OTLP logs (--otlp-logs): log records as
 * ExportLogsServiceRequest, over the traces' transports.
 *
 * The logger's writer thread hands each record over; the sink copies it
 * into a bounded queue (OTEL_BLRP_MAX_QUEUE_SIZE records; full: drop and
 * count) and returns without I/O. A thread of its own batches
 * (OTEL_BLRP_MAX_EXPORT_BATCH_SIZE, OTEL_BLRP_SCHEDULE_DELAY), encodes with
 * protobuf-c (severity number and text, body, attributes, trace_id,
 * span_id, the resource of the traces), sends over OTLP/HTTP (POST
 * /v1/logs) or gRPC (LogsService/Export) with otlp_send, retries what may
 * succeed later, and at shutdown flushes within OTEL_BLRP_EXPORT_TIMEOUT.
 * Counted in shoal_telemetry_*_total{signal="logs_otlp"}. */
#ifndef SHOAL_OTLP_LOGS_H
#define SHOAL_OTLP_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/logs/logger.h"
#include "telemetry/send/otel.h"

struct registry;
struct otlp_logs;

/* cfg->logs_on must be set (otel_logs_config_load). Starts the thread.
 * NULL with a message on failure. m may be NULL (tests). */
struct otlp_logs *otlp_logs_new(const struct otel_config *cfg, struct registry *m, char *err,
                                size_t errlen);
/* Copies rec into the queue. Writer thread only; never blocks on I/O. */
void otlp_logs_add(struct otlp_logs *x, const struct log_record *rec);
/* Flushes what was accepted (within the export timeout), stops, frees.
 * NULL is a no-op. */
void otlp_logs_shutdown(struct otlp_logs *x);
/* The two above as a log sink, for logger_add_sink (the export timeout
 * bounds the flush, not the logger's). */
extern const struct log_sink_ops otlp_logs_sink_ops;

/* Packs recs[0..n-1] into one ExportLogsServiceRequest for res. 0 with a
 * malloc'd *out of *len bytes, or -1 on OOM. Pure.
 * One ResourceLogs (res's attributes) with one ScopeLogs (res->scope_name,
 * scope_version). Each record: its time, observed time = its time (the
 * sink uses the time it took the record in), severity number and text from
 * its level, the message as a string body, its fields as typed attributes
 * plus worker.id when worker >= 0, and trace_id, span_id and flags 1 only
 * with has_ids. Strings come out valid UTF-8 (bad bytes and NULs become
 * U+FFFD), the message and string values cut at LOG_MAX_VALUE bytes with
 * "..." as in the log file. */
int otlp_encode_logs(const struct otel_resource *res, const struct log_record *const *recs,
                     size_t n, uint8_t **out, size_t *len);
/* The answer is read by otlp_parse_export_response (otlp.h). */

#endif
