/* tracer.h - the trace pipeline: workers hand it finished spans, which are
 * encoded on the spot; one exporter thread batches and sends them.
 *
 * A batch span processor as OpenTelemetry defines it: each worker has its
 * own bounded queue (OTEL_BSP_MAX_QUEUE_SIZE spans, a short mutex of its
 * own), so a worker never waits on the exporter or on another worker; a
 * full queue drops the span and counts it. The exporter sends whenever a
 * batch (OTEL_BSP_MAX_EXPORT_BATCH_SIZE) is ready or the schedule delay
 * passes, retries what the collector may take later (backoff, Retry-After),
 * and at shutdown flushes everything accepted within OTEL_BSP_EXPORT_TIMEOUT.
 * Outcomes land in shoal_telemetry_{exported,dropped,failed}_total
 * {signal="traces"}; the first failure is logged once. */
#ifndef SHOAL_TRACER_H
#define SHOAL_TRACER_H

#include "telemetry/send/otel.h"
#include "telemetry/traces/span.h"

struct tracer;
struct registry;

/* nqueues: one per thread that submits (workers and the producer).
 * Starts the exporter thread. NULL with a message in err. */
struct tracer *tracer_new(const struct otel_config *cfg, int nqueues, struct registry *m,
                          char *err, size_t errlen);
/* Hands n finished spans over: encodes them into the queue (one lock for
 * all) and frees them (the tracer owns them from here). Never blocks on
 * I/O. queue: the caller's own (its worker id, modulo nqueues). */
void tracer_submit_many(struct tracer *t, int queue, struct span *const *spans, size_t n);
/* Flushes what was accepted (within the export timeout), stops the thread,
 * frees. NULL is a no-op. Main thread. */
void tracer_shutdown(struct tracer *t);

#endif
