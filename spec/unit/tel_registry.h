/* tel_registry.h - for telemetry's unit tests: a metric registry with the
 * telemetry families (shoal_telemetry_{exported,dropped,failed}_total)
 * declared, as the run declares them, so a test passes reg to a sender or
 * a writer and reads the counts back from the three families. Header-only.
 * NULL on failure. */
#ifndef SHOAL_SPEC_TEL_REGISTRY_H
#define SHOAL_SPEC_TEL_REGISTRY_H

#include <stdio.h>
#include <stdlib.h>

#include "telemetry/metrics/metrics.h"

struct tel_registry {
    struct registry *reg;
    struct metric_family *tel_exported, *tel_dropped, *tel_failed;
};

static inline void tel_registry_free(struct tel_registry *m)
{
    if (!m)
        return;
    registry_free(m->reg);
    free(m);
}

static inline struct tel_registry *tel_registry_new(int nshards, int max_series)
{
    struct tel_registry *m = calloc(1, sizeof *m);
    char err[256];
    struct metric_family *f[3];
    if (!m || !(m->reg = registry_new(nshards, max_series)) ||
        metrics_telemetry_families(m->reg, f, err, sizeof err) != 0) {
        fprintf(stderr, "tel_registry_new: %s\n", m && m->reg ? err : "out of memory");
        tel_registry_free(m);
        return NULL;
    }
    m->tel_exported = f[0];
    m->tel_dropped = f[1];
    m->tel_failed = f[2];
    return m;
}

#endif
