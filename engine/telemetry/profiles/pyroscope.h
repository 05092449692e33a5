/* pyroscope.h - pushing profiles to Pyroscope's /ingest (--pyroscope URL).
 *
 * The profiler thread submits each window's encoded pprof; a sender thread
 * of its own POSTs it as the Pyroscope clients do (name=<service>{labels},
 * from/until in Unix seconds, the pprof body), retrying a failed push a
 * little while the next windows wait in a small bounded queue: past it a
 * window is dropped and counted. Counted in
 * shoal_telemetry_{exported,dropped,failed}_total{signal="profiles"}; the
 * first trouble is logged once. A backend that is down costs nothing but
 * the counted drops. */
#ifndef SHOAL_PYROSCOPE_H
#define SHOAL_PYROSCOPE_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/profiles/profiler.h"

struct registry;

struct pyroscope_config {
    const char *url;      /* http(s)://host:port, e.g. http://localhost:4040 */
    const char *service;  /* the application name and service_name label */
    const char *instance; /* the service_instance_id label (this process), or NULL */
    long timeout_ms;      /* per request; 0: 10 s */
};

struct pyroscope;

/* NULL with a message naming --pyroscope on a bad URL, or on OOM. m may be
 * NULL (tests). */
struct pyroscope *pyroscope_new(const struct pyroscope_config *c, struct registry *m, char *err,
                                size_t errlen);
/* Takes ownership of gz (a gzip'd pprof from pprof_encode, malloc'd) for
 * the window [from_ns, until_ns) in Unix ns. Never blocks on I/O. */
void pyroscope_submit(struct pyroscope *p, uint8_t *gz, size_t len, uint64_t from_ns,
                      uint64_t until_ns);
/* Sends what is queued within timeout_ms, stops, frees. NULL is a no-op. */
void pyroscope_shutdown(struct pyroscope *p, long timeout_ms);
/* The two above as the profiler's sink. */
extern const struct profile_sink_ops pyroscope_sink_ops;

#endif
