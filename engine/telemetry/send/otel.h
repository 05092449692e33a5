/* otel.h - the OpenTelemetry settings shoal honours, read once at start.
 *
 * The standard variables (OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*, OTEL_BLRP_*, OTEL_METRIC_EXPORT_*,
 * OTEL_TRACES_SAMPLER*, OTEL_{TRACES,LOGS,METRICS}_EXPORTER) with the
 * signal-specific ones winning over the general ones, and shoal's flags
 * (--otlp-endpoint, --service, --no-propagate, --otlp-logs,
 * --otlp-metrics) over both. A bad value is a
 * usage error that names the variable. Main thread; the result is
 * read-only afterwards. */
#ifndef SHOAL_OTEL_H
#define SHOAL_OTEL_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/send/attrs.h"

enum otlp_protocol { OTLP_HTTP_PROTOBUF, OTLP_GRPC };

#define OTEL_MAX_HEADERS 32

/* The trace sampler that OTEL_TRACES_SAMPLER and its _ARG name (trace.c
 * decides with it: trace_sampler_decide). */
enum trace_sampler_kind {
    TRACE_SAMPLER_ALWAYS_ON,
    TRACE_SAMPLER_ALWAYS_OFF,
    TRACE_SAMPLER_RATIO,
    TRACE_SAMPLER_PARENT_ON,  /* parentbased_always_on: the default */
    TRACE_SAMPLER_PARENT_OFF, /* parentbased_always_off */
    TRACE_SAMPLER_PARENT_RATIO,
};

struct trace_sampler {
    enum trace_sampler_kind kind;
    double ratio;
    uint64_t bound; /* a trace is sampled when its id's low 63 bits are below this */
};

/* From OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (either may be NULL:
 * the default, parentbased_always_on; a ratio defaults to 1.0). 0, or -1
 * with a message naming the variable and its accepted values. */
int trace_sampler_parse(struct trace_sampler *s, const char *name, const char *arg, char *err,
                  size_t errlen);

struct otlp_target {
    char url[1024]; /* full URL: for HTTP the signal's path included */
    enum otlp_protocol protocol;
    char *headers[OTEL_MAX_HEADERS]; /* "Name: value", malloc'd */
    int nheaders;
    long timeout_ms;
    int gzip;
};

struct otel_config {
    int traces_on; /* an endpoint is set and OTEL_TRACES_EXPORTER is not none */
    struct otlp_target traces;
    struct trace_sampler sampler;
    int propagate; /* inject traceparent into outgoing requests */
    long bsp_delay_ms, bsp_queue, bsp_batch, bsp_timeout_ms;
    struct otel_resource resource;
    /* --otlp-endpoint as given to otel_config_load (NULL if not given),
     * kept for otel_logs_config_load: borrowed, so the caller's string must
     * outlive the loading */
    const char *endpoint_flag;
    /* logs (--otlp-logs): OTEL_EXPORTER_OTLP_LOGS_* over the general ones,
     * OTEL_BLRP_* for the batch */
    int logs_on;
    struct otlp_target logs;
    long blrp_delay_ms, blrp_queue, blrp_batch, blrp_timeout_ms;
    /* metrics (--otlp-metrics or OTEL_METRICS_EXPORTER=otlp):
     * OTEL_EXPORTER_OTLP_METRICS_* over the general ones; an export every
     * OTEL_METRIC_EXPORT_INTERVAL and one at exit, each within
     * OTEL_METRIC_EXPORT_TIMEOUT */
    int metrics_on;
    struct otlp_target metrics;
    long metric_interval_ms, metric_timeout_ms;
};

/* Where a value comes from, for the environment of a test: getenv by
 * default. */
typedef const char *(*otel_getenv_fn)(const char *name);

/* Reads the settings. endpoint_flag, service_flag: --otlp-endpoint and
 * --service (NULL if not given); script: the script's path, whose base
 * name is the default service name. 0, or -1 with a message in err. */
int otel_config_load(struct otel_config *c, otel_getenv_fn env, const char *endpoint_flag,
                     const char *service_flag, int no_propagate, const char *script, char *err,
                     size_t errlen);
void otel_config_free(struct otel_config *c);

/* After otel_config_load: settles this process's instance id, the
 * resource's service.instance.id, which names the process in a shared
 * run, in its logs and in every backend: flag (--instance) when given,
 * else the one OTEL_RESOURCE_ATTRIBUTES set, else HOST-PID. Returns it
 * (owned by c, valid while c is), or NULL when out of memory. */
const char *otel_config_instance(struct otel_config *c, const char *flag);

/* After otel_config_load: the logs target, when flag_on (--otlp-logs) is
 * set and OTEL_LOGS_EXPORTER is not none; an endpoint must then be set (a
 * clear error otherwise). The endpoint rules are the traces' (the flag,
 * then OTEL_EXPORTER_OTLP_LOGS_ENDPOINT as is, then the general one plus
 * /v1/logs or LogsService/Export), as are protocol, headers, timeout and
 * compression with LOGS in the variables' names; OTEL_BLRP_* set the batch
 * (defaults 1000 ms delay, 2048 queued, 512 a batch, 30000 ms at
 * shutdown). env NULL: getenv. 0, or -1 with a message in err; either way
 * logs_on tells whether logs go out, and on -1 the logs target holds
 * nothing to free (the rest of c is as it was). */
int otel_logs_config_load(struct otel_config *c, otel_getenv_fn env, int flag_on, char *err,
                          size_t errlen);

/* After otel_config_load: the metrics target. On when flag_on
 * (--otlp-metrics) or OTEL_METRICS_EXPORTER=otlp, off with
 * OTEL_METRICS_EXPORTER=none whatever the flag. The endpoint rules are the
 * traces' with METRICS in the variables' names and /v1/metrics or
 * MetricsService/Export as the path; OTEL_METRICS_EXPORTER=otlp without any
 * endpoint means the local collector (localhost:4318 or 4317), the flag
 * alone needs one (a clear error). OTEL_METRIC_EXPORT_INTERVAL (default
 * 60000 ms, at least 1) and OTEL_METRIC_EXPORT_TIMEOUT (30000 ms);
 * OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE may only say
 * cumulative (delta and lowmemory are refused: shoal sends cumulative
 * sums). env NULL: getenv. 0, or -1 with a message in err, as for
 * otel_logs_config_load. */
int otel_metrics_config_load(struct otel_config *c, otel_getenv_fn env, int flag_on, char *err,
                             size_t errlen);

/* Parses a "key=value,key2=value2" list (OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_EXPORTER_OTLP_HEADERS): keys and values trimmed of blanks and
 * percent-decoded. Calls fn for each pair (NUL-terminated copies); an item
 * without '=' or with an empty key is an error. 0, or -1 with a message
 * that names var. */
int otel_parse_pairs(const char *list, const char *var,
                     int (*fn)(const char *key, const char *value, void *arg), void *arg,
                     char *err, size_t errlen);

#endif
