/* metrics.h - the metric registry: families of series, sharded cells, and
 * their exposition as Prometheus text 0.0.4 or OpenMetrics 1.0.
 *
 * A family is declared once (name, help, type, label names, buckets); the
 * same declaration again returns the same family, a different one fails.
 * A series is one set of label values; past the family's cap, new label
 * sets fold into one overflow series (every label "__overflow__").
 *
 * Threads: every function may be called from any thread. Updates take no
 * lock: they write to the calling thread's shard (its own arena of cells,
 * summed at render time) with atomic adds; a gauge's set is meant for one
 * writer (a collector, or the worker that owns the series). Finding a
 * series goes through a per-thread cache and takes the family's lock only
 * on a miss. Declarations take the registry
 * lock; rendering walks append-only lists and takes no lock a worker waits
 * on. Series and families live until registry_free. */
#ifndef SHOAL_METRICS_H
#define SHOAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRIC_MAX_LABELS 16
#define METRIC_MAX_BUCKETS 64
#define METRIC_DEFAULT_MAX_SERIES 2000

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* Who declared a family: a script may not redeclare the engine's names. */
enum metric_owner { METRIC_ENGINE, METRIC_SCRIPT };

struct registry;
struct metric_family;
struct metric_series;

/* warn(arg, message) is called once per family that first overflows its cap. */
typedef void (*metrics_warn_fn)(void *arg, const char *message);
/* Called at the start of every render, e.g. to refresh process gauges. */
typedef void (*metrics_collector)(void *arg);

/* nshards: how many cell arenas (one per worker is ideal; threads share by
 * their shard number modulo this). max_series: per family. NULL on OOM. */
struct registry *registry_new(int nshards, int max_series);
void registry_free(struct registry *r);
void registry_on_warn(struct registry *r, metrics_warn_fn fn, void *arg);
/* Adds a collector; 0, or -1 when the table (8) is full. */
int registry_add_collector(struct registry *r, metrics_collector fn, void *arg);

/* The calling thread's shard. Threads that never call this use shard 0. */
void metrics_thread_shard(int shard);

/* Validation, shared with `shoal check`: 0, or -1 and why in err. */
int metrics_check_name(const char *name, char *err, size_t errlen);
int metrics_check_label(const char *label, char *err, size_t errlen);

/* Declares a family, or returns the one already declared under that name
 * when type, labels and buckets match. Counters' names must end in _total.
 * buckets: strictly increasing, finite, without +Inf (implied); NULL with
 * nbuckets 0 gives the defaults of metrics_default_buckets. NULL and a
 * message in err on any mismatch or bad input. */
struct metric_family *metrics_declare(struct registry *r, enum metric_owner owner,
                                      enum metric_type type, const char *name, const char *help,
                                      const char *const *labels, int nlabels,
                                      const double *buckets, int nbuckets, char *err,
                                      size_t errlen);
/* The engine's counts of telemetry items by signal ("traces", "logs",
 * "profiles", "metrics"): shoal_telemetry_{exported,dropped,failed}_total.
 * metrics_telemetry_families declares the three families (or finds them,
 * declared before) into f[0..2] in that order: 0, or -1 with err filled.
 * metrics_telemetry_counts gives one signal's three series, declaring the
 * families when need be; a NULL registry (tests) or a failure leaves them
 * NULL, which metric_add ignores. Any thread. */
struct telemetry_counts {
    struct metric_series *exported, *dropped, *failed;
};
int metrics_telemetry_families(struct registry *r, struct metric_family *f[3], char *err,
                               size_t errlen);
struct telemetry_counts metrics_telemetry_counts(struct registry *r, const char *signal);
/* Looks a declared family up by name; NULL if none. */
struct metric_family *metrics_find(struct registry *r, const char *name);
/* Calls fn for every family, in declaration order. */
void metrics_each(struct registry *r, void (*fn)(const struct metric_family *f, void *arg),
                  void *arg);
const char *metrics_family_name(const struct metric_family *f);
const char *metrics_family_help(const struct metric_family *f);
enum metric_owner metrics_family_owner(const struct metric_family *f);
enum metric_type metrics_family_type(const struct metric_family *f);
int metrics_family_nlabels(const struct metric_family *f);
const char *metrics_family_label(const struct metric_family *f, int i);

/* Durations from 50 µs to 60 s: local jobs and remote ones both resolve. */
extern const double metrics_default_buckets[];
extern const int metrics_default_nbuckets;

/* The series for these label values (nvalues must equal the family's label
 * count; a NULL value or lens NULL means strlen). Never fails once the
 * family exists: out of memory or over the cap, the overflow series. */
struct metric_series *metrics_series(struct metric_family *f, const char *const *values,
                                     const size_t *lens, int nvalues);

/* Counter: v >= 0 (negative is ignored). Gauge: adds v. */
void metric_add(struct metric_series *s, double v);
/* Gauge: sets. Counter: sets the value outright (for collectors that read a
 * total from elsewhere, e.g. process CPU time). */
void metric_set(struct metric_series *s, double v);
/* Histogram: counts v in its bucket and adds it to the sum. */
void metric_observe(struct metric_series *s, double v);
/* Same, and keeps trace_id (32 hex digits) as that bucket's exemplar, shown
 * in OpenMetrics. ts: Unix seconds of the observation. */
void metric_observe_exemplar(struct metric_series *s, double v, const char *trace_id, double ts);

/* Value of one series summed over shards (counter, gauge: the value;
 * histogram: the count). For tests and the summary. */
double metric_value(const struct metric_series *s);

enum metrics_format { METRICS_TEXT, METRICS_OPENMETRICS };
/* Content-Type for a format. */
const char *metrics_content_type(enum metrics_format fmt);
/* The format a scraper asks for in its Accept header (NULL = text). */
enum metrics_format metrics_negotiate(const char *accept);

/* Renders every family. Returns a malloc'd buffer (caller frees) and its
 * length in *len, or NULL on OOM. */
char *metrics_render(struct registry *r, enum metrics_format fmt, size_t *len);

/* A histogram family's bounds (without the implied +Inf): how many, and
 * the array. 0 and NULL for counters and gauges. */
int metrics_family_nbuckets(const struct metric_family *f);
const double *metrics_family_buckets(const struct metric_family *f);

/* One bucket's exemplar: the last observation kept with a trace id. */
struct metric_exemplar {
    int bucket;        /* index of the bucket; nbuckets for +Inf */
    double value, ts;  /* the observation, and when (Unix seconds) */
    char trace_id[33]; /* 32 lower-case hex digits */
};

/* One series as metrics_walk shows it, summed over the shards. Valid only
 * during the callback. */
struct metric_point {
    const struct metric_family *family;
    /* the label values, in the family's label order (metrics_family_label
     * names them): valid UTF-8 without NULs, not NUL-terminated */
    const char *values[METRIC_MAX_LABELS];
    size_t lens[METRIC_MAX_LABELS];
    double value; /* counter, gauge */
    /* histogram: observations per bucket (not cumulative; +Inf last, so
     * nbuckets + 1 of them), their number and their sum */
    uint64_t buckets[METRIC_MAX_BUCKETS + 1];
    uint64_t count;
    double sum;
    int nexemplars;
    struct metric_exemplar exemplars[METRIC_MAX_BUCKETS + 1];
};

/* Runs the collectors (as metrics_render does), then calls fn for every
 * series of every family, families in declaration order and series in
 * creation order. For exporters that format the registry their own way.
 * Any thread; takes no lock a worker waits on. Returns how many series fn
 * saw. */
size_t metrics_walk(struct registry *r, void (*fn)(const struct metric_point *p, void *arg),
                    void *arg);

/* Escaping, exported for the fuzz target. Writes at most cap bytes
 * including a NUL; returns the length the full result needs. */
size_t metrics_escape_label(char *out, size_t cap, const char *in, size_t n);
size_t metrics_format_value(char *out, size_t cap, double v);

#endif
