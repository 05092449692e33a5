/* otel.h - the OpenTelemetry settings shoal honours, read once at start.
 *
 * The standard variables (OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*, OTEL_TRACES_SAMPLER*) with the
 * signal-specific ones winning over the general ones, and shoal's flags
 * (--otlp-endpoint, --service, --no-propagate) over both. A bad value is a
 * usage error that names the variable. Main thread; the result is
 * read-only afterwards. */
#ifndef SHOAL_OTEL_H
#define SHOAL_OTEL_H

#include <stddef.h>

#include "span.h"
#include "trace.h"

enum otlp_protocol { OTLP_HTTP_PROTOBUF, OTLP_GRPC };

#define OTEL_MAX_HEADERS 32

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
    struct sampler sampler;
    int propagate; /* inject traceparent into outgoing requests */
    long bsp_delay_ms, bsp_queue, bsp_batch, bsp_timeout_ms;
    struct otel_resource resource;
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

/* Parses a "key=value,key2=value2" list (OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_EXPORTER_OTLP_HEADERS): keys and values trimmed of blanks and
 * percent-decoded. Calls fn for each pair (NUL-terminated copies); an item
 * without '=' or with an empty key is an error. 0, or -1 with a message
 * that names var. */
int otel_parse_pairs(const char *list, const char *var,
                     int (*fn)(const char *key, const char *value, void *arg), void *arg,
                     char *err, size_t errlen);

#endif
