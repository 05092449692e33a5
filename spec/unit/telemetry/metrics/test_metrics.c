/* test_metrics.c - the metric registry as exporters and scripts rely on it:
 * the declaration rules and the message a script author reads when one is
 * broken, histogram bucketing, the exact bytes of both exposition formats,
 * value formatting, content negotiation, the per-family series cap, exact
 * sums when eight threads share three shards while a scraper renders, label
 * value limits, and a registry replaced in the same thread (the per-thread
 * series cache must not hand back a series of the freed one). */
#include "check.h"
#include "telemetry/metrics/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRACE_A "0123456789abcdef0123456789abcdef"
#define TRACE_B "fedcba9876543210fedcba9876543210"
#define FFFD "\xef\xbf\xbd"

/* A render as a NUL-terminated string (the registry promises a length, not
 * a terminator); NULL if it failed. Caller frees. */
static char *render_raw(struct registry *r, enum metrics_format fmt)
{
    size_t len = 0;
    char *p = metrics_render(r, fmt, &len);
    char *s = p ? malloc(len + 1) : NULL;
    if (s) {
        memcpy(s, p, len);
        s[len] = 0;
    }
    free(p);
    return s;
}

/* The same, for the main thread: a failed render is a failed check and reads
 * as empty. */
static char *render(struct registry *r, enum metrics_format fmt)
{
    char *s = render_raw(r, fmt);
    CHECK(s != NULL);
    return s ? s : calloc(1, 1);
}

/* The value on the line that starts with `series` and a space; NAN if no
 * line does. */
static double sample_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; *line;) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') return strtod(line + n + 1, NULL);
        const char *nl = strchr(line, '\n');
        if (!nl) break;
        line = nl + 1;
    }
    return NAN;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/* Whether every sample line names a different series (name and labels):
 * Prometheus keeps one of two samples that share a series and drops the
 * other. */
static int series_distinct(const char *text)
{
    const char *lines[256];
    size_t lens[256];
    int n = 0;
    for (const char *line = text; *line && n < 256;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (line[0] != '#') {
            const char *sp = memchr(line, '}', len);
            if (!sp) sp = memchr(line, ' ', len);
            lens[n] = sp ? (size_t)(sp - line) : len;
            lines[n++] = line;
        }
        if (!nl) break;
        line = nl + 1;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (lens[i] == lens[j] && memcmp(lines[i], lines[j], lens[i]) == 0) {
                fprintf(stderr, "duplicate series: %.*s\n", (int)lens[i], lines[i]);
                return 0;
            }
    return 1;
}

/* Declares, expecting a refusal whose message holds `word`. 1 if so. */
static int rejects(struct registry *r, enum metric_owner owner, enum metric_type type,
                   const char *name, const char *const *labels, int nlabels, const double *buckets,
                   int nbuckets, const char *word)
{
    char err[512] = "";
    struct metric_family *f = metrics_declare(r, owner, type, name, "help", labels, nlabels,
                                              buckets, nbuckets, err, sizeof err);
    if (f) {
        fprintf(stderr, "declaring '%s' should have failed\n", name);
        return 0;
    }
    if (!strstr(err, word)) {
        fprintf(stderr, "declaring '%s': message \"%s\" does not mention \"%s\"\n", name, err,
                word);
        return 0;
    }
    return 1;
}

static struct metric_family *declare(struct registry *r, enum metric_type type, const char *name,
                                     const char *help, const char *const *labels, int nlabels,
                                     const double *buckets, int nbuckets)
{
    char err[512] = "";
    struct metric_family *f = metrics_declare(r, METRIC_ENGINE, type, name, help, labels, nlabels,
                                              buckets, nbuckets, err, sizeof err);
    if (!f) fprintf(stderr, "declaring '%s' failed: %s\n", name, err);
    CHECK(f != NULL);
    return f;
}

static struct metric_series *series1(struct metric_family *f, const char *value)
{
    const char *v[1] = {value};
    return metrics_series(f, v, NULL, 1);
}

struct declare_job {
    struct registry *r;
    struct metric_family *f;
    atomic_int done;
};

static void *declare_unlabelled(void *p)
{
    struct declare_job *j = p;
    char err[256];
    j->f = metrics_declare(j->r, METRIC_ENGINE, METRIC_GAUGE, "up", "", NULL, 0, NULL, 0, err,
                           sizeof err);
    atomic_store(&j->done, 1);
    return NULL;
}

/* A family without labels gets its one series at declaration. Every other
 * case here declares one, so if that does not return, stop and say so
 * rather than hang until CTest's timeout. */
static int test_declare_returns(void)
{
    static struct declare_job j;
    j.r = registry_new(1, 0);
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, declare_unlabelled, &j), 0);
    for (int i = 0; i < 500 && !atomic_load(&j.done); i++)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    if (!atomic_load(&j.done)) {
        fprintf(stderr,
                "%s:%d: metrics_declare of a family without labels has not returned "
                "after 5 s (deadlock?)\n",
                __FILE__, __LINE__);
        check_failed++;
        return 0;
    }
    pthread_join(t, NULL);
    CHECK(j.f != NULL);
    registry_free(j.r);
    return 1;
}

static void test_names(void)
{
    char err[256];
    const char *good_names[] = {"a", "_x", "ns:sub", "A9:b_c", "__internal"};
    for (size_t i = 0; i < sizeof good_names / sizeof *good_names; i++)
        CHECK_EQ_INT(metrics_check_name(good_names[i], err, sizeof err), 0);
    const char *bad_names[] = {"", "9a", "a-b", "a b", "caf\xc3\xa9", "a.b", "a\nb"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        err[0] = 0;
        CHECK_EQ_INT(metrics_check_name(bad_names[i], err, sizeof err), -1);
        CHECK(err[0] != 0);
    }
    CHECK_EQ_INT(metrics_check_name(NULL, err, sizeof err), -1);

    const char *good_labels[] = {"a", "_x", "status_code", "A9", "lee", "quantiles"};
    for (size_t i = 0; i < sizeof good_labels / sizeof *good_labels; i++)
        CHECK_EQ_INT(metrics_check_label(good_labels[i], err, sizeof err), 0);
    const char *bad_labels[] = {"", "9a", "a:b", "a-b", "le", "quantile", "__x", "__"};
    for (size_t i = 0; i < sizeof bad_labels / sizeof *bad_labels; i++) {
        err[0] = 0;
        CHECK_EQ_INT(metrics_check_label(bad_labels[i], err, sizeof err), -1);
        CHECK(err[0] != 0);
    }
    CHECK_EQ_INT(metrics_check_label("le", err, sizeof err), -1);
    CHECK(strstr(err, "reserved") != NULL);
    CHECK_EQ_INT(metrics_check_label("__name", err, sizeof err), -1);
    CHECK(strstr(err, "reserved") != NULL);
}

static void test_declare(void)
{
    struct registry *r = registry_new(1, 0);
    char err[512];
    const char *kind[] = {"kind"}, *code[] = {"code"}, *kind_code[] = {"kind", "code"};

    struct metric_family *jobs =
        declare(r, METRIC_COUNTER, "jobs_total", "Jobs.", kind, 1, NULL, 0);
    CHECK(metrics_find(r, "jobs_total") == jobs);
    CHECK(metrics_find(r, "jobs") == NULL);
    CHECK(metrics_family_type(jobs) == METRIC_COUNTER);
    CHECK_EQ_INT(metrics_family_nlabels(jobs), 1);
    CHECK_STR(metrics_family_label(jobs, 0), "kind");
    CHECK(metrics_family_label(jobs, 1) == NULL);
    CHECK(declare(r, METRIC_COUNTER, "ns:sub_total", "", NULL, 0, NULL, 0) != NULL);

    /* the same declaration again, from anywhere, is the same family (help may differ) */
    CHECK(declare(r, METRIC_COUNTER, "jobs_total", "Other words.", kind, 1, NULL, 0) == jobs);
    struct metric_family *h = declare(r, METRIC_HISTOGRAM, "wait_seconds", "", NULL, 0, NULL, 0);
    CHECK(declare(r, METRIC_HISTOGRAM, "wait_seconds", "", NULL, 0, NULL, 0) == h);
    CHECK(declare(r, METRIC_HISTOGRAM, "wait_seconds", "", NULL, 0, metrics_default_buckets,
                  metrics_default_nbuckets) == h);
    struct metric_family *s = NULL;
    s = metrics_declare(r, METRIC_SCRIPT, METRIC_GAUGE, "pages", "", kind, 1, NULL, 0, err,
                        sizeof err);
    CHECK(s != NULL);
    CHECK(metrics_declare(r, METRIC_SCRIPT, METRIC_GAUGE, "pages", "", kind, 1, NULL, 0, err,
                          sizeof err) == s);

    /* names and suffixes */
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_COUNTER, "jobs_done", NULL, 0, NULL, 0, "_total"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "queue_total", NULL, 0, NULL, 0, "_total"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "size_total", NULL, 0, NULL, 0, "_total"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "x_bucket", NULL, 0, NULL, 0, "_bucket"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "x_count", NULL, 0, NULL, 0, "_count"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "x_sum", NULL, 0, NULL, 0, "_sum"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "9lives", NULL, 0, NULL, 0, "9lives"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "a-b", NULL, 0, NULL, 0, "a-b"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "", NULL, 0, NULL, 0, "empty"));
    char longname[260];
    memset(longname, 'n', 250);
    longname[250] = 0;
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, longname, NULL, 0, NULL, 0, "longer"));
    /* OpenMetrics names a counter family without _total: it must leave a name */
    CHECK(metrics_declare(r, METRIC_SCRIPT, METRIC_COUNTER, "_total", "", NULL, 0, NULL, 0, err,
                          sizeof err) == NULL);

    /* label names */
    const char *le[] = {"le"}, *quantile[] = {"quantile"}, *dunder[] = {"__x"}, *dash[] = {"a-b"},
               *twice[] = {"kind", "code", "kind"}, *empty[] = {""};
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "g1", le, 1, NULL, 0, "reserved"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "g1", quantile, 1, NULL, 0, "reserved"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "g1", le, 1, NULL, 0, "reserved"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "g1", dunder, 1, NULL, 0, "reserved"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "g1", dash, 1, NULL, 0, "a-b"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "g1", empty, 1, NULL, 0, "empty"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "g1", twice, 3, NULL, 0, "twice"));
    const char *many[METRIC_MAX_LABELS + 1];
    char names[METRIC_MAX_LABELS + 1][8];
    for (int i = 0; i <= METRIC_MAX_LABELS; i++) {
        snprintf(names[i], sizeof names[i], "l%d", i);
        many[i] = names[i];
    }
    CHECK(declare(r, METRIC_GAUGE, "wide", "", many, METRIC_MAX_LABELS, NULL, 0) != NULL);
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "wider", many, METRIC_MAX_LABELS + 1, NULL, 0,
                  "at most"));
    CHECK(metrics_find(r, "g1") == NULL); /* nothing refused was kept */

    /* a name declared differently: the message says what differs */
    CHECK(declare(r, METRIC_GAUGE, "g", "", kind, 1, NULL, 0) != NULL);
    CHECK(rejects(r, METRIC_ENGINE, METRIC_HISTOGRAM, "g", kind, 1, NULL, 0, "type"));
    CHECK(rejects(r, METRIC_ENGINE, METRIC_GAUGE, "g", code, 1, NULL, 0, "label names"));
    CHECK(rejects(r, METRIC_ENGINE, METRIC_GAUGE, "g", kind_code, 2, NULL, 0, "label names"));
    CHECK(rejects(r, METRIC_ENGINE, METRIC_GAUGE, "g", NULL, 0, NULL, 0, "label names"));
    const double b12[] = {1, 2}, b13[] = {1, 3}, b123[] = {1, 2, 3};
    CHECK(declare(r, METRIC_HISTOGRAM, "h", "", NULL, 0, b12, 2) != NULL);
    CHECK(rejects(r, METRIC_ENGINE, METRIC_HISTOGRAM, "h", NULL, 0, b13, 2, "buckets"));
    CHECK(rejects(r, METRIC_ENGINE, METRIC_HISTOGRAM, "h", NULL, 0, b123, 3, "buckets"));
    CHECK(rejects(r, METRIC_ENGINE, METRIC_HISTOGRAM, "h", NULL, 0, NULL, 0, "buckets"));

    /* a script may not take over the engine's names, even declaring them alike */
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_COUNTER, "jobs_total", kind, 1, NULL, 0, "engine"));
    const char *metric[] = {"metric"};
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_COUNTER, "shoal_metrics_overflow_total", metric, 1, NULL,
                  0, "engine"));

    /* two families whose sample names would meet */
    CHECK(declare(r, METRIC_HISTOGRAM, "x", "", NULL, 0, NULL, 0) != NULL);
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "x_count", NULL, 0, NULL, 0, "'x'"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "x_bucket", NULL, 0, NULL, 0, "'x'"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_COUNTER, "x_sum_total", NULL, 0, NULL, 0, "'x'"));
    CHECK(declare(r, METRIC_GAUGE, "x_counts", "", NULL, 0, NULL, 0) != NULL); /* no clash */
    CHECK(declare(r, METRIC_GAUGE, "y_sum", "", NULL, 0, NULL, 0) != NULL);
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "y", NULL, 0, NULL, 0, "'y_sum'"));
    CHECK(declare(r, METRIC_COUNTER, "foo_total", "", NULL, 0, NULL, 0) != NULL);
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_GAUGE, "foo", NULL, 0, NULL, 0, "'foo_total'"));
    CHECK(declare(r, METRIC_GAUGE, "bar", "", NULL, 0, NULL, 0) != NULL);
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_COUNTER, "bar_total", NULL, 0, NULL, 0, "'bar'"));
    CHECK(rejects(r, METRIC_ENGINE, METRIC_HISTOGRAM, "bar", NULL, 0, NULL, 0, "type"));

    /* buckets */
    const double same[] = {1, 1}, down[] = {2, 1}, inf[] = {1, INFINITY}, ninf[] = {-INFINITY, 0},
                 nan[] = {NAN}, zeros[] = {-0.0, 0.0};
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "b1", NULL, 0, same, 2, "increasing"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "b1", NULL, 0, down, 2, "increasing"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "b1", NULL, 0, inf, 2, "finite"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "b1", NULL, 0, ninf, 2, "finite"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "b1", NULL, 0, nan, 1, "finite"));
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "b1", NULL, 0, zeros, 2, "increasing"));
    double lots[METRIC_MAX_BUCKETS + 1];
    for (int i = 0; i <= METRIC_MAX_BUCKETS; i++)
        lots[i] = i + 1;
    CHECK(declare(r, METRIC_HISTOGRAM, "b64", "", NULL, 0, lots, METRIC_MAX_BUCKETS) != NULL);
    CHECK(rejects(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "b65", NULL, 0, lots, METRIC_MAX_BUCKETS + 1,
                  "at most"));
    /* a negative count is bad input, not "no buckets": taken, it would size the
     * family's cells and exemplars from it */
    CHECK(metrics_declare(r, METRIC_SCRIPT, METRIC_HISTOGRAM, "b_neg", "", NULL, 0, b12, -1, err,
                          sizeof err) == NULL);
    registry_free(r);
}

static void test_histogram(void)
{
    struct registry *r = registry_new(2, 0);
    const double b[] = {1, 2, 5};
    struct metric_family *f =
        declare(r, METRIC_HISTOGRAM, "lat_seconds", "Latency.", NULL, 0, b, 3);
    struct metric_series *s = metrics_series(f, NULL, NULL, 0);
    CHECK(s != NULL);
    CHECK(metric_value(s) == 0);
    metric_observe(s, 0.5); /* below the first bound */
    metric_observe(s, 1);   /* on a bound: le is inclusive */
    metric_observe(s, -3);  /* negative: the first bucket */
    metric_observe(s, 2);   /* on the second */
    metric_observe(s, 2.0000001);
    metrics_thread_shard(1); /* the other shard: render sums them */
    metric_observe(s, 7);    /* past the last: +Inf */
    metric_observe(s, NAN);  /* ignored */
    metrics_thread_shard(0);
    metric_add(s, 10); /* not a histogram operation: ignored */
    metric_set(s, 10);
    CHECK(metric_value(s) == 6);
    char *t = render(r, METRICS_TEXT);
    CHECK_STR(t, "# HELP lat_seconds Latency.\n"
                 "# TYPE lat_seconds histogram\n"
                 "lat_seconds_bucket{le=\"1\"} 3\n"
                 "lat_seconds_bucket{le=\"2\"} 4\n"
                 "lat_seconds_bucket{le=\"5\"} 5\n"
                 "lat_seconds_bucket{le=\"+Inf\"} 6\n"
                 "lat_seconds_sum 9.5000001\n"
                 "lat_seconds_count 6\n");
    free(t);

    /* +Inf lands in +Inf and makes the sum infinite; the default buckets */
    struct metric_family *d = declare(r, METRIC_HISTOGRAM, "d_seconds", "", NULL, 0, NULL, 0);
    struct metric_series *ds = metrics_series(d, NULL, NULL, 0);
    metric_observe(ds, INFINITY);
    metric_observe(ds, 0.00005);
    metric_observe(ds, 60);
    t = render(r, METRICS_TEXT);
    CHECK(sample_value(t, "d_seconds_bucket{le=\"5e-05\"}") == 1);
    CHECK(sample_value(t, "d_seconds_bucket{le=\"30\"}") == 1);
    CHECK(sample_value(t, "d_seconds_bucket{le=\"60\"}") == 2);
    CHECK(sample_value(t, "d_seconds_bucket{le=\"+Inf\"}") == 3);
    CHECK(strstr(t, "\nd_seconds_sum +Inf\n") != NULL);
    CHECK(sample_value(t, "d_seconds_count") == 3);
    free(t);
    registry_free(r);
}

static void test_updates(void)
{
    struct registry *r = registry_new(4, 0);
    struct metric_family *c = declare(r, METRIC_COUNTER, "c_total", "", NULL, 0, NULL, 0);
    struct metric_family *g = declare(r, METRIC_GAUGE, "g", "", NULL, 0, NULL, 0);
    struct metric_series *cs = metrics_series(c, NULL, NULL, 0),
                         *gs = metrics_series(g, NULL, NULL, 0);
    /* label-less series exist from the declaration, so they read 0 before any update */
    char *t = render(r, METRICS_TEXT);
    CHECK_STR(t, "# HELP c_total \n# TYPE c_total counter\nc_total 0\n"
                 "# HELP g \n# TYPE g gauge\ng 0\n");
    free(t);
    for (int shard = 0; shard < 6; shard++) {
        metrics_thread_shard(shard);
        metric_add(cs, 1.5);
        metric_add(gs, -2);
    }
    metric_add(cs, -1); /* a counter never goes down */
    metric_add(cs, NAN);
    metric_observe(cs, 1); /* not a counter operation */
    CHECK(metric_value(cs) == 9);
    CHECK(metric_value(gs) == -12);
    metric_set(gs, 0.25);
    CHECK(metric_value(gs) == 0.25);
    metric_set(cs, 100); /* a collector's total replaces every shard's */
    CHECK(metric_value(cs) == 100);
    metric_add(cs, 1);
    CHECK(metric_value(cs) == 101);
    metrics_thread_shard(0);
    metric_add(NULL, 1); /* no series, no crash */
    metric_observe(NULL, 1);
    CHECK(metric_value(NULL) == 0);
    t = render(r, METRICS_OPENMETRICS);
    CHECK_STR(t, "# HELP c \n# TYPE c counter\nc_total 101\n"
                 "# HELP g \n# TYPE g gauge\ng 0.25\n# EOF\n");
    free(t);
    registry_free(r);
}

static void test_render(void)
{
    struct registry *r = registry_new(2, 0);
    /* nothing to show: text is empty, OpenMetrics still ends */
    char *t = render(r, METRICS_TEXT);
    CHECK_STR(t, "");
    free(t);
    t = render(r, METRICS_OPENMETRICS);
    CHECK_STR(t, "# EOF\n");
    free(t);

    const char *kind[] = {"kind"}, *pool[] = {"pool"};
    struct metric_family *jobs = declare(r, METRIC_COUNTER, "jobs_total",
                                         "Jobs run, by \"kind\".\nSee \\docs.", kind, 1, NULL, 0);
    struct metric_family *temp =
        declare(r, METRIC_GAUGE, "temp_celsius", "Temp \xc3.", NULL, 0, NULL, 0);
    const double b[] = {0.5, 1};
    struct metric_family *wait =
        declare(r, METRIC_HISTOGRAM, "wait_seconds", "Wait.", pool, 1, b, 2);
    /* a labelled family with no series yet is left out, HELP and all */
    declare(r, METRIC_GAUGE, "unused", "No series yet.", kind, 1, NULL, 0);

    metric_add(series1(jobs, "a\"b\\c\nd"), 2);
    metric_add(series1(jobs, "ok"), 3);
    metric_add(series1(jobs, "a\"b\\c\nd"), 1.5);
    metric_set(metrics_series(temp, NULL, NULL, 0), 0.1);
    struct metric_series *w = series1(wait, "x\xffy");
    metric_observe_exemplar(w, 0.25, TRACE_A, 1700000000.5);
    metric_observe(w, 1);
    metric_observe_exemplar(w, 3, TRACE_B, 1700000001);
    metric_observe_exemplar(w, 0.75, "too short", 1700000002); /* counted, no exemplar */

    t = render(r, METRICS_TEXT);
    CHECK_STR(t, "# HELP jobs_total Jobs run, by \"kind\".\\nSee \\\\docs.\n"
                 "# TYPE jobs_total counter\n"
                 "jobs_total{kind=\"a\\\"b\\\\c\\nd\"} 3.5\n"
                 "jobs_total{kind=\"ok\"} 3\n"
                 "# HELP temp_celsius Temp " FFFD ".\n"
                 "# TYPE temp_celsius gauge\n"
                 "temp_celsius 0.1\n"
                 "# HELP wait_seconds Wait.\n"
                 "# TYPE wait_seconds histogram\n"
                 "wait_seconds_bucket{pool=\"x" FFFD "y\",le=\"0.5\"} 1\n"
                 "wait_seconds_bucket{pool=\"x" FFFD "y\",le=\"1\"} 3\n"
                 "wait_seconds_bucket{pool=\"x" FFFD "y\",le=\"+Inf\"} 4\n"
                 "wait_seconds_sum{pool=\"x" FFFD "y\"} 5\n"
                 "wait_seconds_count{pool=\"x" FFFD "y\"} 4\n");
    free(t);
    t = render(r, METRICS_OPENMETRICS);
    CHECK_STR(t, "# HELP jobs Jobs run, by \\\"kind\\\".\\nSee \\\\docs.\n"
                 "# TYPE jobs counter\n"
                 "jobs_total{kind=\"a\\\"b\\\\c\\nd\"} 3.5\n"
                 "jobs_total{kind=\"ok\"} 3\n"
                 "# HELP temp_celsius Temp " FFFD ".\n"
                 "# TYPE temp_celsius gauge\n"
                 "temp_celsius 0.1\n"
                 "# HELP wait_seconds Wait.\n"
                 "# TYPE wait_seconds histogram\n"
                 "wait_seconds_bucket{pool=\"x" FFFD "y\",le=\"0.5\"} 1 # {trace_id=\"" TRACE_A
                 "\"} 0.25 1700000000.500\n"
                 "wait_seconds_bucket{pool=\"x" FFFD "y\",le=\"1\"} 3\n"
                 "wait_seconds_bucket{pool=\"x" FFFD "y\",le=\"+Inf\"} 4 # {trace_id=\"" TRACE_B
                 "\"} 3 1700000001.000\n"
                 "wait_seconds_sum{pool=\"x" FFFD "y\"} 5\n"
                 "wait_seconds_count{pool=\"x" FFFD "y\"} 4\n"
                 "# EOF\n");
    free(t);

    /* a later exemplar in the same bucket replaces the earlier one */
    metric_observe_exemplar(w, 0.5, TRACE_B, 1700000003);
    t = render(r, METRICS_OPENMETRICS);
    CHECK(strstr(t, "le=\"0.5\"} 2 # {trace_id=\"" TRACE_B "\"} 0.5 1700000003.000\n") != NULL);
    CHECK(strstr(t, TRACE_A) == NULL);
    free(t);
    registry_free(r);
}

/* A trace id is written into the OpenMetrics line as it is: only 32 hex
 * digits may become an exemplar, or one observation forges lines. */
static void test_exemplar_id_checked(void)
{
    struct registry *r = registry_new(1, 0);
    const double b[] = {1};
    struct metric_family *f = declare(r, METRIC_HISTOGRAM, "e_seconds", "", NULL, 0, b, 1);
    struct metric_series *s = metrics_series(f, NULL, NULL, 0);
    metric_observe_exemplar(s, 0.5, "0123456789abcdef\"}\nforged_total 1", 1);
    metric_observe_exemplar(s, 5, "0123456789abcdef0123456789abcde\n", 1);
    char *t = render(r, METRICS_OPENMETRICS);
    CHECK_EQ_INT(count_lines(t), 7); /* HELP, TYPE, 2 buckets, sum, count, EOF */
    CHECK(strstr(t, "\nforged_total") == NULL);
    CHECK(sample_value(t, "e_seconds_count") == 2);
    free(t);
    registry_free(r);
}

static void test_format_value(void)
{
    struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {-0.0, "0"},
        {3, "3"},
        {-7, "-7"},
        {1e15, "1000000000000000"},
        {9007199254740991.0, "9007199254740991"},
        {0.1, "0.1"},
        {2.5, "2.5"},
        {-0.001, "-0.001"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3, "0.3333333333333333"},
        {1e300, "1e+300"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = metrics_format_value(out, sizeof out, cases[i].v);
        CHECK_STR(out, cases[i].text);
        CHECK_EQ_INT(n, strlen(cases[i].text));
    }
    /* the shortest text that reads back as the same double */
    const double odd[] = {123.456,
                          1e-7,
                          6.02214076e23,
                          2.2250738585072014e-308,
                          0.7,
                          1e21 + 1,
                          -1.7976931348623157e308,
                          4.35,
                          100.5,
                          9007199254740993.0};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        metrics_format_value(out, sizeof out, odd[i]);
        CHECK(strtod(out, NULL) == odd[i]);
        int shortest = 17;
        char tmp[64];
        for (int p = 17; p >= 1; p--) {
            snprintf(tmp, sizeof tmp, "%.*g", p, odd[i]);
            if (strtod(tmp, NULL) == odd[i]) shortest = p;
        }
        snprintf(tmp, sizeof tmp, "%.*g", shortest, odd[i]);
        if (strlen(out) > strlen(tmp))
            fprintf(stderr, "%.17g: \"%s\" is longer than \"%s\"\n", odd[i], out, tmp);
        CHECK(strlen(out) <= strlen(tmp));
    }
    /* a short buffer: cut, terminated, and the length the whole needs */
    memset(out, 'G', sizeof out);
    CHECK_EQ_INT(metrics_format_value(out, 4, 123456), 6);
    CHECK_STR(out, "123");
    CHECK(out[4] == 'G');
    CHECK_EQ_INT(metrics_format_value(NULL, 0, 0.1), 3);
}

static void test_escape_label(void)
{
    char out[64];
    const char in[] = "a\"b\\c\nd\xff";
    const char want[] = "a\\\"b\\\\c\\nd" FFFD;
    CHECK_EQ_INT(metrics_escape_label(out, sizeof out, in, sizeof in - 1), sizeof want - 1);
    CHECK_STR(out, want);
    /* n bytes, not up to a NUL: an embedded NUL is not text either */
    CHECK_EQ_INT(metrics_escape_label(out, sizeof out, "a\0b", 3), 5);
    CHECK_STR(out, "a" FFFD "b");
    CHECK_EQ_INT(metrics_escape_label(out, sizeof out, "\xe2\x82\xac\xe2\x82", 5), 9);
    CHECK_STR(out, "\xe2\x82\xac" FFFD FFFD);
    CHECK_EQ_INT(metrics_escape_label(NULL, 0, in, sizeof in - 1), sizeof want - 1);

    /* Cut short, what was written must be a prefix of the whole, whatever
     * the buffer held before: no stale byte may stand in for an escape. */
    for (size_t cap = 1; cap <= sizeof want; cap++) {
        memset(out, '"', sizeof out);
        size_t n = metrics_escape_label(out, cap, in, sizeof in - 1);
        CHECK_EQ_INT(n, sizeof want - 1);
        CHECK(out[cap] == '"'); /* nothing past cap */
        size_t got = strnlen(out, cap);
        CHECK(got < cap);
        if (got >= cap || memcmp(out, want, got) != 0) {
            fprintf(stderr, "cap %zu: \"%.*s\" is not a prefix of the escaped value\n", cap,
                    (int)(got < cap ? got : cap), out);
            CHECK(0);
        }
    }
}

static void test_negotiate(void)
{
    const char *prometheus = "application/openmetrics-text;version=1.0.0,application/"
                             "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q="
                             "0.5,*/*;q=0.1";
    CHECK(metrics_negotiate(prometheus) == METRICS_OPENMETRICS);
    CHECK(metrics_negotiate(NULL) == METRICS_TEXT);
    CHECK(metrics_negotiate("text/plain") == METRICS_TEXT);
    CHECK(metrics_negotiate("text/plain;version=0.0.4") == METRICS_TEXT);
    CHECK(metrics_negotiate("*/*") == METRICS_TEXT);
    CHECK(metrics_negotiate("") == METRICS_TEXT);
    CHECK_STR(metrics_content_type(METRICS_TEXT), "text/plain; version=0.0.4; charset=utf-8");
    CHECK_STR(metrics_content_type(METRICS_OPENMETRICS),
              "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

struct warned {
    atomic_int calls;
    char last[512];
};

static void on_warn(void *arg, const char *message)
{
    struct warned *w = arg;
    atomic_fetch_add(&w->calls, 1);
    snprintf(w->last, sizeof w->last, "%s", message);
}

static void test_cap(void)
{
    struct registry *r = registry_new(2, 3);
    struct warned w = {0};
    registry_on_warn(r, on_warn, &w);
    const char *peer[] = {"peer"};
    struct metric_family *f =
        declare(r, METRIC_GAUGE, "conns", "Open connections.", peer, 1, NULL, 0);
    struct metric_series *a = series1(f, "a"), *b = series1(f, "b"), *c = series1(f, "c");
    CHECK(a && b && c && a != b && b != c && a != c);
    CHECK_EQ_INT(atomic_load(&w.calls), 0);
    struct metric_series *d = series1(f, "d"), *e = series1(f, "e");
    CHECK(d != NULL && d == e && d != a && d != b && d != c);
    CHECK_EQ_INT(atomic_load(&w.calls), 1);
    CHECK(strstr(w.last, "conns") != NULL);
    CHECK(series1(f, "a") == a); /* the first three keep their series */
    CHECK(series1(f, "c") == c);
    metric_add(a, 1);
    metric_add(d, 1);
    metric_add(e, 1);
    CHECK(metric_value(d) == 2);

    char *t = render(r, METRICS_TEXT);
    CHECK(sample_value(t, "conns{peer=\"a\"}") == 1);
    CHECK(sample_value(t, "conns{peer=\"b\"}") == 0);
    CHECK(sample_value(t, "conns{peer=\"__overflow__\"}") == 2);
    CHECK(strstr(t, "peer=\"d\"") == NULL && strstr(t, "peer=\"e\"") == NULL);
    CHECK(sample_value(t, "shoal_metrics_overflow_total{metric=\"conns\"}") == 2);
    free(t);

    /* more folds: counted, still one warning for the family */
    struct metric_series *f6 = series1(f, "f");
    CHECK(f6 == d);
    metric_add(f6, 1);
    CHECK_EQ_INT(atomic_load(&w.calls), 1);

    /* another family over the cap warns once more, about itself */
    const char *two[] = {"x", "y"};
    struct metric_family *h = declare(r, METRIC_HISTOGRAM, "req_seconds", "", two, 2, NULL, 0);
    for (int i = 0; i < 6; i++) {
        char v[8];
        snprintf(v, sizeof v, "%d", i);
        const char *vals[2] = {v, "same"};
        metric_observe(metrics_series(h, vals, NULL, 2), 0.1);
    }
    CHECK_EQ_INT(atomic_load(&w.calls), 2);
    CHECK(strstr(w.last, "req_seconds") != NULL);
    t = render(r, METRICS_OPENMETRICS);
    CHECK(sample_value(t, "conns{peer=\"__overflow__\"}") == 3);
    CHECK(sample_value(t, "shoal_metrics_overflow_total{metric=\"conns\"}") == 3);
    CHECK(sample_value(t, "shoal_metrics_overflow_total{metric=\"req_seconds\"}") == 3);
    CHECK(sample_value(t, "req_seconds_count{x=\"__overflow__\",y=\"__overflow__\"}") == 3);
    CHECK(sample_value(t, "req_seconds_count{x=\"0\",y=\"same\"}") == 1);
    CHECK(strstr(t, "# TYPE shoal_metrics_overflow counter\n") != NULL);
    free(t);
    registry_free(r);
}

static void test_labels(void)
{
    struct registry *r = registry_new(1, 0);
    const char *two[] = {"host", "path"};
    struct metric_family *f = declare(r, METRIC_COUNTER, "hits_total", "", two, 2, NULL, 0);

    /* lens: a slice of a longer buffer, binary bytes kept */
    const char *buf = "example.org/extra";
    const char *v1[2] = {buf, "/\x01\x7f"};
    size_t l1[2] = {11, 3};
    struct metric_series *s1 = metrics_series(f, v1, l1, 2);
    const char *v2[2] = {"example.org", "/\x01\x7f"};
    CHECK(metrics_series(f, v2, NULL, 2) == s1);
    metric_add(s1, 1);

    /* NULL is "" */
    const char *v3[2] = {NULL, "/"}, *v4[2] = {"", "/"};
    size_t l3[2] = {99, 1};
    struct metric_series *s3 = metrics_series(f, v3, NULL, 2);
    CHECK(metrics_series(f, v3, l3, 2) == s3);
    CHECK(metrics_series(f, v4, NULL, 2) == s3);
    CHECK(s3 != s1);
    metric_add(s3, 2);

    /* past 1024 bytes a value is cut: values that differ only beyond are one series */
    char *big = malloc(1500);
    memset(big, 'x', 1500);
    const char *v5[2] = {big, "/"};
    size_t l5[2] = {1500, 1};
    struct metric_series *s5 = metrics_series(f, v5, l5, 2);
    big[1200] = 'y';
    CHECK(metrics_series(f, v5, l5, 2) == s5);
    size_t l6[2] = {1024, 1};
    CHECK(metrics_series(f, v5, l6, 2) == s5);
    big[1023] = 'y';
    CHECK(metrics_series(f, v5, l5, 2) != s5);
    metric_add(s5, 4);

    char *t = render(r, METRICS_TEXT);
    CHECK(sample_value(t, "hits_total{host=\"example.org\",path=\"/\x01\x7f\"}") == 1);
    CHECK(sample_value(t, "hits_total{host=\"\",path=\"/\"}") == 2);
    char want[1100];
    memset(want, 'x', 1024);
    want[1024] = 0;
    char series[1200];
    snprintf(series, sizeof series, "hits_total{host=\"%s\",path=\"/\"}", want);
    CHECK(sample_value(t, series) == 4);
    free(t);
    free(big);
    registry_free(r);
}

/* Label values are made valid UTF-8 for the exposition; raw values that read
 * the same afterwards must not become two series under one name. */
static void test_sanitized_values_distinct(void)
{
    struct registry *r = registry_new(1, 0);
    const char *peer[] = {"peer"};
    struct metric_family *f = declare(r, METRIC_GAUGE, "peer_up", "", peer, 1, NULL, 0);
    metric_set(series1(f, "\xff"), 1);
    metric_set(series1(f, "\xfe"), 2);
    const char *v[1] = {"a\0"};
    size_t n[1] = {2};
    metric_set(metrics_series(f, v, n, 1), 3);
    metric_set(series1(f, "a\xc0"), 4);
    char *t = render(r, METRICS_TEXT);
    CHECK(series_distinct(t));
    free(t);
    registry_free(r);
}

static void test_registry_generation(void)
{
    /* malloc hands the same addresses back, so a cache keyed on pointers
     * alone would return the freed registry's series: a wrong value here,
     * a use after free under ASan */
    for (int round = 0; round < 20; round++) {
        struct registry *r = registry_new(1, 0);
        const char *k[] = {"k"};
        struct metric_family *f = declare(r, METRIC_COUNTER, "gen_total", "", k, 1, NULL, 0);
        struct metric_series *s = series1(f, "v");
        CHECK(metric_value(s) == 0);
        CHECK(series1(f, "v") == s);
        metric_add(s, round + 1);
        char *t = render(r, METRICS_TEXT);
        CHECK(sample_value(t, "gen_total{k=\"v\"}") == round + 1);
        free(t);
        registry_free(r);
    }
}

static int collected;
static void collect(void *arg)
{
    collected++;
    metric_set(arg, collected);
}

static void test_collectors(void)
{
    struct registry *r = registry_new(1, 0);
    struct metric_family *f = declare(r, METRIC_GAUGE, "renders", "", NULL, 0, NULL, 0);
    struct metric_series *s = metrics_series(f, NULL, NULL, 0);
    collected = 0;
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(registry_add_collector(r, collect, s), 0);
    CHECK_EQ_INT(registry_add_collector(r, collect, s), -1);
    char *t = render(r, METRICS_TEXT);
    CHECK(sample_value(t, "renders") == 8); /* refreshed before the render, not after */
    free(t);
    registry_free(r);
}

/* Eight workers on three shards, a scraper rendering all along. */
#define THREADS 8
#define ROUNDS 200000
#define KINDS 4 /* three shared label values and one of each worker's own */

static const char *const shared_kinds[] = {"get", "put", "del"};
static const double durations[] = {0.25, 0.75, 1.5, 4};
static const double dur_bounds[] = {0.5, 1, 2};

struct run {
    pthread_barrier_t start;
    struct registry *reg;
    struct metric_family *ops, *dur, *inflight;
    atomic_int running;
};

struct worker_arg {
    struct run *run;
    int id;
};

static const char *kind_of(int k, const char *own)
{
    return k % KINDS < 3 ? shared_kinds[k % KINDS] : own;
}

static void *worker(void *p)
{
    struct worker_arg *a = p;
    metrics_thread_shard(a->id);
    pthread_barrier_wait(&a->run->start);
    char own[8];
    snprintf(own, sizeof own, "t%d", a->id);
    for (int k = 0; k < ROUNDS; k++) {
        const char *v[1] = {kind_of(k, own)};
        metric_add(metrics_series(a->run->ops, v, NULL, 1), 1);
        metric_observe(metrics_series(a->run->dur, v, NULL, 1), durations[(k / KINDS) % 4]);
        metric_add(metrics_series(a->run->inflight, v, NULL, 1), 0.5);
    }
    atomic_fetch_sub(&a->run->running, 1);
    return NULL;
}

/* Renders until the workers are done. Returns how many renders broke a
 * promise: a counter going down or past its final total, or a histogram
 * whose _count is not its +Inf bucket. */
static void *scraper(void *p)
{
    struct run *run = p;
    double last = 0, final = (double)THREADS * ROUNDS / KINDS;
    intptr_t bad = 0;
    for (int i = 0; atomic_load(&run->running) > 0 || i < 2; i++) {
        char *t = render_raw(run->reg, i % 2 ? METRICS_OPENMETRICS : METRICS_TEXT);
        if (!t) {
            bad++;
            continue;
        }
        double v = sample_value(t, "ops_total{kind=\"get\"}");
        if (!isnan(v)) {
            bad += v < last || v > final;
            last = v;
        }
        double inf = sample_value(t, "dur_seconds_bucket{kind=\"put\",le=\"+Inf\"}");
        bad += !isnan(inf) && inf != sample_value(t, "dur_seconds_count{kind=\"put\"}");
        free(t);
    }
    return (void *)bad;
}

static void test_threads(void)
{
    struct run run = {.reg = registry_new(3, 0)};
    const char *kind[] = {"kind"};
    run.ops = declare(run.reg, METRIC_COUNTER, "ops_total", "", kind, 1, NULL, 0);
    run.dur = declare(run.reg, METRIC_HISTOGRAM, "dur_seconds", "", kind, 1, dur_bounds, 3);
    run.inflight = declare(run.reg, METRIC_GAUGE, "inflight", "", kind, 1, NULL, 0);
    atomic_store(&run.running, THREADS);
    pthread_barrier_init(&run.start, NULL, THREADS);
    pthread_t wt[THREADS], st;
    struct worker_arg wa[THREADS];
    CHECK_EQ_INT(pthread_create(&st, NULL, scraper, &run), 0);
    for (int i = 0; i < THREADS; i++) {
        wa[i] = (struct worker_arg){&run, i};
        CHECK_EQ_INT(pthread_create(&wt[i], NULL, worker, &wa[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(wt[i], NULL);
    void *bad;
    pthread_join(st, &bad);
    CHECK_EQ_INT((intptr_t)bad, 0);
    pthread_barrier_destroy(&run.start);

    /* what one worker did to each kind, counted plainly */
    double ops[KINDS] = {0}, sum[KINDS] = {0}, buckets[KINDS][4] = {{0}};
    for (int k = 0; k < ROUNDS; k++) {
        int j = k % KINDS;
        double d = durations[(k / KINDS) % 4];
        ops[j]++;
        sum[j] += d;
        for (int b = 0; b < 4; b++)
            buckets[j][b] += b == 3 || d <= dur_bounds[b];
    }
    char *t = render(run.reg, METRICS_TEXT);
    for (int j = 0; j < KINDS + THREADS - 1; j++) {
        char own[8], name[128];
        snprintf(own, sizeof own, "t%d", j - 3);
        const char *k = j < 3 ? shared_kinds[j] : own;
        int idx = j < 3 ? j : 3;
        double times = j < 3 ? THREADS : 1; /* a shared kind gets every worker's share */
        const char *v[1] = {k};
        CHECK(metric_value(metrics_series(run.ops, v, NULL, 1)) == times * ops[idx]);
        CHECK(metric_value(metrics_series(run.dur, v, NULL, 1)) == times * ops[idx]);
        CHECK(metric_value(metrics_series(run.inflight, v, NULL, 1)) == times * ops[idx] / 2);
        snprintf(name, sizeof name, "ops_total{kind=\"%s\"}", k);
        CHECK(sample_value(t, name) == times * ops[idx]);
        snprintf(name, sizeof name, "inflight{kind=\"%s\"}", k);
        CHECK(sample_value(t, name) == times * ops[idx] / 2);
        snprintf(name, sizeof name, "dur_seconds_sum{kind=\"%s\"}", k);
        CHECK(sample_value(t, name) == times * sum[idx]);
        snprintf(name, sizeof name, "dur_seconds_count{kind=\"%s\"}", k);
        CHECK(sample_value(t, name) == times * ops[idx]);
        const char *le[] = {"0.5", "1", "2", "+Inf"};
        for (int b = 0; b < 4; b++) {
            snprintf(name, sizeof name, "dur_seconds_bucket{kind=\"%s\",le=\"%s\"}", k, le[b]);
            CHECK(sample_value(t, name) == times * buckets[idx][b]);
        }
    }
    CHECK_EQ_INT(count_lines(t), 3 * 2 + 11 * (1 + 1 + 6));
    free(t);
    registry_free(run.reg);
}

/* Workers folding into one overflow series at once: every fold counted, one
 * warning. */
#define FOLDERS 4
#define FOLDS 500

struct fold_arg {
    pthread_barrier_t *start;
    struct metric_family *f;
    int id;
};

static void *folder(void *p)
{
    struct fold_arg *a = p;
    metrics_thread_shard(a->id);
    pthread_barrier_wait(a->start);
    for (int i = 0; i < FOLDS; i++) {
        char v[32];
        snprintf(v, sizeof v, "%d-%d", a->id, i);
        metric_add(series1(a->f, v), 1);
    }
    return NULL;
}

static void test_threads_overflow(void)
{
    struct registry *r = registry_new(2, 4);
    struct warned w = {0};
    registry_on_warn(r, on_warn, &w);
    const char *peer[] = {"peer"};
    struct metric_family *f = declare(r, METRIC_COUNTER, "peer_hits_total", "", peer, 1, NULL, 0);
    pthread_t t[FOLDERS];
    struct fold_arg a[FOLDERS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, FOLDERS);
    for (int i = 0; i < FOLDERS; i++) {
        a[i] = (struct fold_arg){&start, f, i};
        pthread_create(&t[i], NULL, folder, &a[i]);
    }
    for (int i = 0; i < FOLDERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    CHECK_EQ_INT(atomic_load(&w.calls), 1);
    char *text = render(r, METRICS_TEXT);
    CHECK(sample_value(text, "peer_hits_total{peer=\"__overflow__\"}") == FOLDERS * FOLDS - 4);
    CHECK(sample_value(text, "shoal_metrics_overflow_total{metric=\"peer_hits_total\"}") ==
          FOLDERS * FOLDS - 4);
    CHECK_EQ_INT(count_lines(text), 2 + 1 + 2 + 5);
    free(text);
    registry_free(r);
}

int main(void)
{
    if (!test_declare_returns()) return check_done();
    test_names();
    test_declare();
    test_histogram();
    test_updates();
    test_render();
    test_exemplar_id_checked();
    test_format_value();
    test_escape_label();
    test_negotiate();
    test_cap();
    test_labels();
    test_sanitized_values_distinct();
    test_registry_generation();
    test_collectors();
    test_threads();
    test_threads_overflow();
    return check_done();
}
