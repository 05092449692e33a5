/* summary.h - the end-of-run report: wrk-style text for people, JSON for
 * machines (--summary-json) and for the script's done(stats).
 *
 * Pure formatting of figures gathered by run.c; main thread only. */
#ifndef SHOAL_SUMMARY_H
#define SHOAL_SUMMARY_H

#include <stdio.h>

#include "core/hosts.h"
#include "core/stats.h"

struct summary {
    const char *script;
    const char *instance; /* this process's id (--instance), or NULL */
    int workers, concurrency;
    double elapsed;
    struct stats *totals;
    unsigned long long queued_left; /* jobs never run (Ctrl-C, --duration, --max-jobs) */
    unsigned long long dup_dropped;
    unsigned long long pushed;
    int wedged;
    int interrupted;
    const char *stop_reason; /* "drained", "interrupted", "duration", "max-jobs", ... */
    /* each telemetry pipeline that was on ("traces", "logs", "logs_loki",
     * "logs_otlp", "profiles"): items a backend (or the log file) took, dropped, failed */
    struct summary_signal {
        const char *name;
        unsigned long long exported, dropped, failed;
    } signals[5];
    int nsignals;
    /* shoal.emit's items (shown when --output was given or any was emitted) */
    const char *items_output; /* the file, "stdout", or NULL without --output */
    unsigned long long items_written, items_dropped, items_failed, items_discarded,
        items_extra_keys;
    /* per host (a job's group): the busiest, and the rest as one row */
    struct host_row hosts[HOSTS_TOP], hosts_other;
    int nhosts;
    size_t ngroups;
};

void summary_print(FILE *out, const struct summary *s);

/* Returns a malloc'd JSON object (caller frees), or NULL on OOM. */
char *summary_json(const struct summary *s);

/* Checks, before a run, that summary_write_json will be able to write
 * path: creates and removes its temp file, so nothing is left behind.
 * 0, or -1 with a message in err. */
int summary_check_path(const char *path, char *err, size_t errlen);

/* Writes the JSON to path (atomically: temp file + rename). 0, or -1 with
 * what failed in err (path unchanged, no temp file left). */
int summary_write_json(const char *path, const struct summary *s, char *err, size_t errlen);

#endif
