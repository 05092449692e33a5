/* otlp_metrics.h - OTLP metrics (--otlp-metrics, OTEL_METRICS_EXPORTER=otlp):
 * the whole registry as one ExportMetricsServiceRequest every
 * OTEL_METRIC_EXPORT_INTERVAL and once more when the run is over, so a run
 * of any length lands in a collector (or Prometheus' OTLP receiver) with
 * its final figures.
 *
 * Each family becomes one Metric named as on /metrics, its help the
 * description: a counter a monotonic Sum, a gauge a Gauge, a histogram a
 * Histogram with the family's bounds and per-bucket counts, its exemplars
 * carrying their trace_id. Each series is one data point whose attributes
 * are its labels. Temporality is cumulative: every point starts at the
 * exporter's start (the run's) and holds the total up to the export.
 *
 * A thread of its own (an otlp_batcher, as for spans and log records)
 * walks the registry, encodes and sends over OTLP/HTTP (POST /v1/metrics)
 * or gRPC (MetricsService/Export); a collector that is away is warned about
 * once and costs the run nothing. Data points are counted in
 * shoal_telemetry_*_total{signal="metrics"}. */
#ifndef SHOAL_OTLP_METRICS_H
#define SHOAL_OTLP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/send/otel.h"

struct registry;
struct otlp_metrics;

/* cfg->metrics_on must be set (otel_metrics_config_load). Exports m's
 * registry from now on (the start time of every point). NULL with a message
 * on failure. cfg and m must outlive it. */
struct otlp_metrics *otlp_metrics_new(const struct otel_config *cfg, struct registry *m,
                                      char *err, size_t errlen);
/* The final export (within OTEL_METRIC_EXPORT_TIMEOUT; one try when the
 * collector was already away), then stops and frees. Call it once the
 * figures are final. NULL is a no-op. */
void otlp_metrics_shutdown(struct otlp_metrics *x);

/* Packs every series of reg (running its collectors first) into one
 * ExportMetricsServiceRequest for res: one ResourceMetrics, one
 * ScopeMetrics (res->scope_name/scope_version), the Metrics as above, each
 * point from start_ns to now_ns (Unix nanoseconds). 0 with a malloc'd *out
 * of *len bytes and the number of data points in *npoints (a registry with
 * no series gives a request with none), or -1 on OOM with *out NULL. */
int otlp_encode_metrics(const struct otel_resource *res, struct registry *reg, uint64_t start_ns,
                        uint64_t now_ns, uint8_t **out, size_t *len, size_t *npoints);
/* The answer is read by otlp_parse_export_response (otlp.h). */

#endif
