/* metrics.c - the metric registry and its exposition (see metrics.h).
 *
 * Cells. Every series owns a run of 8-byte cells at the same index in each
 * shard's arena (counter and gauge: 1, histogram: one
 * per bucket, +Inf included, then the sum). A thread adds to its own
 * shard's cells, so workers never write the same cache line; render sums
 * the shards. A gauge is summed the same way, so in-flight counts can go
 * up on one worker and down on another without sharing a line; setting
 * one stores into shard 0 and zeroes the rest (set is for one writer).
 * Arenas grow by whole chunks whose pointers are published with a release
 * store before any series that uses them, and never move.
 *
 * Locks, taken in this order: registry.lock (declarations), family.lock (the
 * family's hash table and list tail, taken by metrics_series on a miss in
 * the calling thread's cache), the overflow family's lock, cell_lock (cell
 * allocation). Lists (families, series) are appended under
 * their lock and published by a release store of the new node; render
 * walks them with acquire loads and takes no lock. Exemplars: a seqlock per
 * bucket; a writer that finds it taken skips (an exemplar is a sample). */
#include "telemetry/metrics/metrics.h"

#include "base/hash.h"
#include "base/strbuf.h"
#include "base/utf8.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_CELLS 8192
#define MAX_CHUNKS 4096
#define MAX_COLLECTORS 8
#define MAX_VALUE_BYTES 1024
#define CACHE_SIZE 1024 /* per thread, direct-mapped */
#define OVERFLOW_VALUE "__overflow__"

typedef _Atomic uint64_t cell;

struct shard {
    _Atomic(cell *) chunks[MAX_CHUNKS];
};

struct exemplar {
    _Atomic uint32_t seq; /* odd while being written */
    _Atomic uint64_t value, ts;
    _Atomic uint64_t id[4]; /* 32 hex digits */
};

struct metric_series {
    struct metric_family *fam;
    struct metric_series *_Atomic next; /* family list, creation order */
    struct metric_series *hnext;        /* hash chain, under fam->lock */
    uint64_t hash;
    uint32_t cell;
    uint32_t keylen;
    char *key;    /* the values, each as a 4-byte length and its bytes */
    char *labels; /* rendered name="value" pairs, escaped; "" if none */
    struct exemplar *ex;
};

struct metric_family {
    struct registry *reg;
    enum metric_type type;
    enum metric_owner owner;
    char *name, *help;
    int nlabels;
    char *labels[METRIC_MAX_LABELS];
    int nbuckets;
    double buckets[METRIC_MAX_BUCKETS];
    int ncells;
    pthread_mutex_t lock;
    struct metric_series **table; /* under lock */
    size_t tcap, nseries;
    struct metric_series *_Atomic head;
    struct metric_series *tail;
    struct metric_series *overflow;
    struct metric_series *overflow_count; /* in shoal_metrics_overflow_total */
    int warned;
    struct metric_family *_Atomic next;
};

struct registry {
    pthread_mutex_t lock;      /* declarations, the family list */
    pthread_mutex_t cell_lock; /* next_cell and the arenas' chunks */
    uint64_t gen;
    int nshards, max_series;
    struct shard *shards;
    uint32_t next_cell;
    struct metric_family *_Atomic head;
    struct metric_family *tail;
    struct metric_family *overflow_fam;
    metrics_warn_fn warn;
    void *warn_arg;
    struct {
        metrics_collector fn;
        void *arg;
    } coll[MAX_COLLECTORS];
    _Atomic int ncoll;
};

const double metrics_default_buckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                          0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                          0.5,     1,      2.5,     5,      10,    30,
                                          60};
const int metrics_default_nbuckets =
    (int)(sizeof metrics_default_buckets / sizeof metrics_default_buckets[0]);

static _Atomic uint64_t registry_gen;
static __thread int tl_shard;

struct cache_entry {
    uint64_t gen, hash;
    struct metric_series *s;
};
static __thread struct cache_entry tl_cache[CACHE_SIZE];

/* ------------------------------------------------------------ cells */

static inline double bits_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}
static inline uint64_t double_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static inline cell *cellp(const struct registry *r, int shard, uint32_t c)
{
    cell *chunk = atomic_load_explicit(&r->shards[shard].chunks[c / CHUNK_CELLS],
                                       memory_order_acquire);
    return chunk + c % CHUNK_CELLS;
}

static inline int my_shard(const struct registry *r)
{
    return tl_shard < r->nshards ? tl_shard : tl_shard % r->nshards;
}

static inline void cell_add_double(cell *c, double v)
{
    uint64_t old = atomic_load_explicit(c, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(c, &old, double_bits(bits_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* Reserves n cells in every shard; cell_lock held. UINT32_MAX if full. */
static uint32_t alloc_cells(struct registry *r, int n)
{
    uint32_t c = r->next_cell;
    if (c % CHUNK_CELLS + (uint32_t)n > CHUNK_CELLS)
        c = (c / CHUNK_CELLS + 1) * CHUNK_CELLS;
    uint32_t chunk = c / CHUNK_CELLS;
    if (chunk >= MAX_CHUNKS)
        return UINT32_MAX;
    if (!atomic_load_explicit(&r->shards[0].chunks[chunk], memory_order_relaxed)) {
        for (int s = 0; s < r->nshards; s++) {
            cell *p = calloc(CHUNK_CELLS, sizeof *p);
            if (!p)
                return UINT32_MAX; /* the chunks made so far are kept for next time */
            atomic_store_explicit(&r->shards[s].chunks[chunk], p, memory_order_release);
        }
    }
    r->next_cell = c + (uint32_t)n;
    return c;
}

/* ------------------------------------------------------------ text helpers */

static void put_value(struct strbuf *b, double v)
{
    char tmp[40];
    size_t n = metrics_format_value(tmp, sizeof tmp, v);
    strbuf_add(b, tmp, n);
}

/* Label values and help text: \\, \n and (for label values and OpenMetrics
 * help) \" escaped; bytes that are not valid UTF-8 become U+FFFD, so no
 * input breaks a line or a scrape. */
static size_t escape(char *out, size_t cap, const char *in, size_t n, int quote)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + n;
    size_t len = 0, written = 0;
    int full = 0;
    /* a piece goes in whole or, once one does not fit, nothing more does:
     * a cut result never ends in half an escape or half a character */
#define PUT(s, k)                                                                                  \
    do {                                                                                           \
        if (!full && len + (k) < cap) {                                                            \
            memcpy(out + len, (s), (k));                                                           \
            written = len + (k);                                                                   \
        } else {                                                                                   \
            full = 1;                                                                              \
        }                                                                                          \
        len += (k);                                                                                \
    } while (0)
    while (p < end) {
        unsigned char c = *p;
        if (c == '\\') {
            PUT("\\\\", 2);
            p++;
        } else if (c == '\n') {
            PUT("\\n", 2);
            p++;
        } else if (c == '"' && quote) {
            PUT("\\\"", 2);
            p++;
        } else {
            int k = utf8_len(p, (size_t)(end - p));
            if (k == 0 || c == 0) {
                PUT("\xef\xbf\xbd", 3);
                p++;
            } else {
                PUT(p, (size_t)k);
                p += k;
            }
        }
    }
#undef PUT
    if (cap)
        out[written] = 0;
    return len;
}

size_t metrics_escape_label(char *out, size_t cap, const char *in, size_t n)
{
    return escape(out, cap, in, n, 1);
}

static void put_escaped(struct strbuf *b, const char *s, size_t n, int quote)
{
    size_t need = escape(NULL, 0, s, n, quote);
    strbuf_reserve(b, need);
    if (b->oom)
        return;
    escape(b->p + b->len, need + 1, s, n, quote);
    b->len += need;
}

size_t metrics_format_value(char *out, size_t cap, double v)
{
    char tmp[40];
    if (isnan(v))
        snprintf(tmp, sizeof tmp, "NaN");
    else if (isinf(v))
        snprintf(tmp, sizeof tmp, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(tmp, sizeof tmp, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    else {
        /* the shortest form that reads back as the same double */
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(tmp, sizeof tmp, "%.*g", digits, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
    }
    size_t n = strlen(tmp);
    if (cap) {
        size_t k = n < cap ? n : cap - 1;
        memcpy(out, tmp, k);
        out[k] = 0;
    }
    return n;
}

/* ------------------------------------------------------------ names */

static int name_char(int c, int first, int colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
        return 1;
    return !first && c >= '0' && c <= '9';
}

int metrics_check_name(const char *name, char *err, size_t errlen)
{
    if (!name || !*name) {
        snprintf(err, errlen, "metric name is empty");
        return -1;
    }
    for (const char *p = name; *p; p++)
        if (!name_char((unsigned char)*p, p == name, 1)) {
            snprintf(err, errlen,
                     "bad metric name '%.100s': use letters, digits, '_' and ':', not starting "
                     "with a digit (e.g. pages_fetched_total)",
                     name);
            return -1;
        }
    if (strlen(name) > 200) {
        snprintf(err, errlen, "metric name '%.40s...' is longer than 200 characters", name);
        return -1;
    }
    return 0;
}

int metrics_check_label(const char *label, char *err, size_t errlen)
{
    if (!label || !*label) {
        snprintf(err, errlen, "label name is empty");
        return -1;
    }
    for (const char *p = label; *p; p++)
        if (!name_char((unsigned char)*p, p == label, 0)) {
            snprintf(err, errlen,
                     "bad label name '%.100s': use letters, digits and '_', not starting with "
                     "a digit",
                     label);
            return -1;
        }
    if (strncmp(label, "__", 2) == 0) {
        snprintf(err, errlen, "label name '%.100s' is reserved: names starting with '__' "
                              "belong to Prometheus", label);
        return -1;
    }
    if (strcmp(label, "le") == 0 || strcmp(label, "quantile") == 0) {
        snprintf(err, errlen, "label name '%s' is reserved for histogram and summary buckets",
                 label);
        return -1;
    }
    if (strlen(label) > 100) {
        snprintf(err, errlen, "label name '%.40s...' is longer than 100 characters", label);
        return -1;
    }
    return 0;
}

static const char *type_name(enum metric_type t)
{
    return t == METRIC_COUNTER ? "counter" : t == METRIC_GAUGE ? "gauge" : "histogram";
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* ------------------------------------------------------------ registry */

struct registry *registry_new(int nshards, int max_series)
{
    struct registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->nshards = nshards > 0 ? nshards : 1;
    r->max_series = max_series > 0 ? max_series : METRIC_DEFAULT_MAX_SERIES;
    r->gen = atomic_fetch_add(&registry_gen, 1) + 1;
    r->shards = calloc((size_t)r->nshards, sizeof *r->shards);
    if (!r->shards) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->cell_lock, NULL);
    char err[256];
    static const char *const metric_label[] = {"metric"};
    r->overflow_fam = metrics_declare(
        r, METRIC_ENGINE, METRIC_COUNTER, "shoal_metrics_overflow_total",
        "Updates folded into a metric's overflow series because it reached --max-series",
        metric_label, 1, NULL, 0, err, sizeof err);
    if (!r->overflow_fam) {
        registry_free(r);
        return NULL;
    }
    return r;
}

static void series_free(struct metric_series *s)
{
    free(s->key);
    free(s->labels);
    free(s->ex);
    free(s);
}

void registry_free(struct registry *r)
{
    if (!r)
        return;
    struct metric_family *f = atomic_load(&r->head);
    while (f) {
        struct metric_family *fn = atomic_load(&f->next);
        struct metric_series *s = atomic_load(&f->head);
        while (s) {
            struct metric_series *sn = atomic_load(&s->next);
            series_free(s);
            s = sn;
        }
        free(f->table);
        free(f->name);
        free(f->help);
        for (int i = 0; i < f->nlabels; i++)
            free(f->labels[i]);
        pthread_mutex_destroy(&f->lock);
        free(f);
        f = fn;
    }
    for (int s = 0; s < r->nshards; s++)
        for (int c = 0; c < MAX_CHUNKS; c++)
            free(atomic_load(&r->shards[s].chunks[c]));
    free(r->shards);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->cell_lock);
    free(r);
}

void registry_on_warn(struct registry *r, metrics_warn_fn fn, void *arg)
{
    pthread_mutex_lock(&r->lock);
    r->warn = fn;
    r->warn_arg = arg;
    pthread_mutex_unlock(&r->lock);
}

int registry_add_collector(struct registry *r, metrics_collector fn, void *arg)
{
    pthread_mutex_lock(&r->lock);
    int n = atomic_load(&r->ncoll);
    if (n == MAX_COLLECTORS) {
        pthread_mutex_unlock(&r->lock);
        return -1;
    }
    r->coll[n].fn = fn;
    r->coll[n].arg = arg;
    atomic_store_explicit(&r->ncoll, n + 1, memory_order_release);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

void metrics_thread_shard(int shard)
{
    tl_shard = shard < 0 ? 0 : shard;
}

static struct metric_family *find_locked(struct registry *r, const char *name)
{
    for (struct metric_family *f = atomic_load(&r->head); f; f = atomic_load(&f->next))
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

int metrics_telemetry_families(struct registry *r, struct metric_family *f[3], char *err,
                               size_t errlen)
{
    static const char *const signal[] = {"signal"};
    static const char *const names[3][2] = {
        {"shoal_telemetry_exported_total",
         "Telemetry items (spans, log lines, profiles) a backend accepted"},
        {"shoal_telemetry_dropped_total",
         "Telemetry items dropped before sending: a full buffer or a backend away too long"},
        {"shoal_telemetry_failed_total",
         "Telemetry items a backend refused or that failed after every retry"},
    };
    for (int i = 0; i < 3; i++)
        if (!(f[i] = metrics_declare(r, METRIC_ENGINE, METRIC_COUNTER, names[i][0], names[i][1],
                                     signal, 1, NULL, 0, err, errlen)))
            return -1;
    return 0;
}

struct telemetry_counts metrics_telemetry_counts(struct registry *r, const char *signal)
{
    struct telemetry_counts c = {0};
    struct metric_family *f[3];
    char err[256];
    if (!r || metrics_telemetry_families(r, f, err, sizeof err) != 0)
        return c;
    const char *sig[1] = {signal};
    c.exported = metrics_series(f[0], sig, NULL, 1);
    c.dropped = metrics_series(f[1], sig, NULL, 1);
    c.failed = metrics_series(f[2], sig, NULL, 1);
    return c;
}

struct metric_family *metrics_find(struct registry *r, const char *name)
{
    pthread_mutex_lock(&r->lock);
    struct metric_family *f = find_locked(r, name);
    pthread_mutex_unlock(&r->lock);
    return f;
}

void metrics_each(struct registry *r, void (*fn)(const struct metric_family *f, void *arg),
                  void *arg)
{
    for (struct metric_family *f = atomic_load_explicit(&r->head, memory_order_acquire); f;
         f = atomic_load_explicit(&f->next, memory_order_acquire))
        fn(f, arg);
}
const char *metrics_family_name(const struct metric_family *f)
{
    return f->name;
}
const char *metrics_family_help(const struct metric_family *f)
{
    return f->help;
}
enum metric_owner metrics_family_owner(const struct metric_family *f)
{
    return f->owner;
}
enum metric_type metrics_family_type(const struct metric_family *f)
{
    return f->type;
}
int metrics_family_nlabels(const struct metric_family *f)
{
    return f->nlabels;
}
const char *metrics_family_label(const struct metric_family *f, int i)
{
    return i >= 0 && i < f->nlabels ? f->labels[i] : NULL;
}

/* Why an existing family does not match a new declaration; NULL if it does. */
static const char *mismatch(const struct metric_family *f, enum metric_type type,
                            const char *const *labels, int nlabels, const double *buckets,
                            int nbuckets)
{
    if (f->type != type)
        return "type";
    if (f->nlabels != nlabels)
        return "label names";
    for (int i = 0; i < nlabels; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return "label names";
    if (type == METRIC_HISTOGRAM) {
        if (f->nbuckets != nbuckets)
            return "buckets";
        for (int i = 0; i < nbuckets; i++)
            if (f->buckets[i] != buckets[i])
                return "buckets";
    }
    return NULL;
}

static struct metric_series *series_new_locked(struct metric_family *f, uint64_t hash,
                                               const char *key, size_t keylen,
                                               const char *const *values, const size_t *lens);

/* Whether a family name matches `base` followed by one of the suffixes its
 * samples may carry. */
static int names_overlap(const char *a, enum metric_type ta, const char *b, enum metric_type tb)
{
    static const char *const hist[] = {"_bucket", "_sum", "_count", ""};
    size_t na = strlen(a);
    /* a family's names: the name itself, its OpenMetrics base for a counter,
     * name + suffixes for a histogram */
    char base_a[256];
    snprintf(base_a, sizeof base_a, "%.*s", (int)(ta == METRIC_COUNTER ? na - 6 : na), a);
    size_t nb = strlen(b);
    char base_b[256];
    snprintf(base_b, sizeof base_b, "%.*s", (int)(tb == METRIC_COUNTER ? nb - 6 : nb), b);
    if (strcmp(base_a, base_b) == 0)
        return 1;
    for (int i = 0; i < 3; i++) {
        char t[300];
        if (ta == METRIC_HISTOGRAM) {
            snprintf(t, sizeof t, "%s%s", a, hist[i]);
            if (strcmp(t, b) == 0 || strcmp(t, base_b) == 0)
                return 1;
        }
        if (tb == METRIC_HISTOGRAM) {
            snprintf(t, sizeof t, "%s%s", b, hist[i]);
            if (strcmp(t, a) == 0 || strcmp(t, base_a) == 0)
                return 1;
        }
    }
    return 0;
}

/* The name of a declared family whose series names a new family's would
 * overlap; NULL if none. Registry lock held. */
static const char *collision(struct registry *r, const char *name, enum metric_type type)
{
    for (struct metric_family *f = atomic_load(&r->head); f; f = atomic_load(&f->next))
        if (strcmp(f->name, name) != 0 && names_overlap(f->name, f->type, name, type))
            return f->name;
    return NULL;
}

struct metric_family *metrics_declare(struct registry *r, enum metric_owner owner,
                                      enum metric_type type, const char *name, const char *help,
                                      const char *const *labels, int nlabels,
                                      const double *buckets, int nbuckets, char *err,
                                      size_t errlen)
{
    if (metrics_check_name(name, err, errlen) != 0)
        return NULL;
    if (type == METRIC_COUNTER && (!ends_with(name, "_total") || strlen(name) == 6)) {
        snprintf(err, errlen, "counter '%.100s' must be named ..._total (e.g. '%.100s_total'), "
                              "as Prometheus and OpenMetrics expect", name, name);
        return NULL;
    }
    if (type != METRIC_COUNTER && ends_with(name, "_total")) {
        snprintf(err, errlen, "'%.100s': only counters may end in _total", name);
        return NULL;
    }
    if (type == METRIC_HISTOGRAM && (ends_with(name, "_bucket") || ends_with(name, "_sum") ||
                                     ends_with(name, "_count"))) {
        snprintf(err, errlen, "histogram '%.100s' may not end in _bucket, _sum or _count: "
                              "those are its series' suffixes", name);
        return NULL;
    }
    if (nlabels < 0 || nlabels > METRIC_MAX_LABELS) {
        snprintf(err, errlen, "'%.100s': at most %d label names", name, METRIC_MAX_LABELS);
        return NULL;
    }
    for (int i = 0; i < nlabels; i++) {
        if (metrics_check_label(labels[i], err, errlen) != 0)
            return NULL;
        for (int j = 0; j < i; j++)
            if (strcmp(labels[i], labels[j]) == 0) {
                snprintf(err, errlen, "'%.100s': label name '%.100s' given twice", name,
                         labels[i]);
                return NULL;
            }
    }
    if (type == METRIC_HISTOGRAM) {
        if (nbuckets < 0) {
            snprintf(err, errlen, "'%.100s': bucket count is negative", name);
            return NULL;
        }
        if (!buckets || nbuckets == 0) {
            buckets = metrics_default_buckets;
            nbuckets = metrics_default_nbuckets;
        }
        if (nbuckets > METRIC_MAX_BUCKETS) {
            snprintf(err, errlen, "'%.100s': at most %d buckets", name, METRIC_MAX_BUCKETS);
            return NULL;
        }
        for (int i = 0; i < nbuckets; i++) {
            if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
                snprintf(err, errlen,
                         "'%.100s': buckets must be finite numbers in increasing order "
                         "(+Inf is added for you)",
                         name);
                return NULL;
            }
        }
    } else {
        nbuckets = 0;
    }
    if (!help)
        help = "";

    pthread_mutex_lock(&r->lock);
    struct metric_family *f = find_locked(r, name);
    if (f) {
        const char *what = mismatch(f, type, labels, nlabels, buckets, nbuckets);
        if (f->owner == METRIC_ENGINE && owner == METRIC_SCRIPT)
            snprintf(err, errlen, "'%.100s' is one of the engine's own metrics: choose another "
                                  "name", name);
        else if (what)
            snprintf(err, errlen,
                     "'%.100s' was already declared as a %s with other %s: declare it the same "
                     "way everywhere, or use another name",
                     name, type_name(f->type), what);
        pthread_mutex_unlock(&r->lock);
        if ((f->owner == METRIC_ENGINE && owner == METRIC_SCRIPT) || what)
            return NULL;
        return f;
    }
    const char *clash = collision(r, name, type);
    if (clash) {
        snprintf(err, errlen, "'%.100s' would share series names with the metric '%.100s': "
                              "choose another name", name, clash);
        pthread_mutex_unlock(&r->lock);
        return NULL;
    }
    f = calloc(1, sizeof *f);
    if (!f)
        goto oom;
    f->reg = r;
    f->type = type;
    f->owner = owner;
    f->name = strdup(name);
    f->help = strdup(help);
    if (!f->name || !f->help)
        goto oom;
    f->nlabels = nlabels;
    for (int i = 0; i < nlabels; i++)
        if (!(f->labels[i] = strdup(labels[i])))
            goto oom;
    f->nbuckets = nbuckets;
    for (int i = 0; i < nbuckets; i++)
        f->buckets[i] = buckets[i];
    f->ncells = type == METRIC_HISTOGRAM ? nbuckets + 2 : 1;
    pthread_mutex_init(&f->lock, NULL);
    if (nlabels == 0) {
        /* the one series exists from the start, so it reads 0 before any update */
        pthread_mutex_lock(&f->lock);
        struct metric_series *s = series_new_locked(f, 0, "", 0, NULL, NULL);
        pthread_mutex_unlock(&f->lock);
        if (!s)
            goto oom;
    }
    if (r->tail)
        atomic_store_explicit(&r->tail->next, f, memory_order_release);
    else
        atomic_store_explicit(&r->head, f, memory_order_release);
    r->tail = f;
    pthread_mutex_unlock(&r->lock);
    return f;

oom:
    pthread_mutex_unlock(&r->lock);
    if (f) {
        free(f->name);
        free(f->help);
        for (int i = 0; i < f->nlabels; i++)
            free(f->labels[i]);
        free(f);
    }
    snprintf(err, errlen, "out of memory declaring '%.100s'", name);
    return NULL;
}

/* ------------------------------------------------------------ series */

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = fnv1a(p, n);
    return h ^ (h >> 29);
}

/* Renders name="value",... for a new series. */
static char *render_labels(const struct metric_family *f, const char *const *values,
                           const size_t *lens)
{
    struct strbuf b = {0};
    strbuf_reserve(&b, 16);
    if (b.oom)
        return NULL;
    b.p[0] = 0;
    for (int i = 0; i < f->nlabels; i++) {
        if (i)
            strbuf_add(&b, ",", 1);
        strbuf_str(&b, f->labels[i]);
        strbuf_add(&b, "=\"", 2);
        put_escaped(&b, values[i], lens[i], 1);
        strbuf_add(&b, "\"", 1);
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* Makes a series and appends it to the family's list; NULL (nothing
 * changed) on OOM or when the arenas are full. Family lock held (or the
 * family not yet published). */
static struct metric_series *series_make(struct metric_family *f, uint64_t hash,
                                         const char *key, size_t keylen,
                                         const char *const *values, const size_t *lens)
{
    struct registry *r = f->reg;
    struct metric_series *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fam = f;
    s->hash = hash;
    s->keylen = (uint32_t)keylen;
    s->key = malloc(keylen + 1);
    s->labels = render_labels(f, values, lens);
    if (f->type == METRIC_HISTOGRAM)
        s->ex = calloc((size_t)f->nbuckets + 1, sizeof *s->ex);
    if (!s->key || !s->labels || (f->type == METRIC_HISTOGRAM && !s->ex))
        goto fail;
    if (keylen)
        memcpy(s->key, key, keylen);
    pthread_mutex_lock(&r->cell_lock);
    uint32_t c = alloc_cells(r, f->ncells);
    pthread_mutex_unlock(&r->cell_lock);
    if (c == UINT32_MAX)
        goto fail;
    s->cell = c;
    if (f->tail)
        atomic_store_explicit(&f->tail->next, s, memory_order_release);
    else
        atomic_store_explicit(&f->head, s, memory_order_release);
    f->tail = s;
    return s;
fail:
    series_free(s);
    return NULL;
}

/* A new series, findable by its key. Family lock held (or the family not
 * yet published). */
static struct metric_series *series_new_locked(struct metric_family *f, uint64_t hash,
                                               const char *key, size_t keylen,
                                               const char *const *values, const size_t *lens)
{
    if (f->tcap == 0 || f->nseries * 2 >= f->tcap) {
        size_t cap = f->tcap ? f->tcap * 2 : 16;
        struct metric_series **t = calloc(cap, sizeof *t);
        if (!t)
            return NULL;
        for (size_t i = 0; i < f->tcap; i++)
            for (struct metric_series *s = f->table[i], *next; s; s = next) {
                next = s->hnext;
                s->hnext = t[s->hash & (cap - 1)];
                t[s->hash & (cap - 1)] = s;
            }
        free(f->table);
        f->table = t;
        f->tcap = cap;
    }
    struct metric_series *s = series_make(f, hash, key, keylen, values, lens);
    if (!s)
        return NULL;
    s->hnext = f->table[hash & (f->tcap - 1)];
    f->table[hash & (f->tcap - 1)] = s;
    f->nseries++;
    return s;
}

static struct metric_series *lookup_locked(struct metric_family *f, uint64_t hash,
                                           const char *key, size_t keylen)
{
    if (!f->tcap)
        return NULL;
    for (struct metric_series *s = f->table[hash & (f->tcap - 1)]; s; s = s->hnext)
        if (s->hash == hash && s->keylen == keylen && memcmp(s->key, key, keylen) == 0)
            return s;
    return NULL;
}

static struct metric_series *overflow_locked(struct metric_family *f)
{
    if (!f->overflow) {
        const char *vals[METRIC_MAX_LABELS];
        size_t lens[METRIC_MAX_LABELS];
        for (int i = 0; i < f->nlabels; i++) {
            vals[i] = OVERFLOW_VALUE;
            lens[i] = sizeof OVERFLOW_VALUE - 1;
        }
        /* kept out of the hash table: a label set spelling __overflow__ is
         * just another set */
        f->overflow = series_make(f, 0, "", 0, vals, lens);
    }
    return f->overflow;
}

/* A family past its cap: count the fold, warn once. */
static struct metric_series *fold(struct metric_family *f)
{
    struct registry *r = f->reg;
    struct metric_series *s = overflow_locked(f);
    int warn = !f->warned;
    f->warned = 1;
    if (f != r->overflow_fam && !f->overflow_count) {
        const char *v[1] = {f->name};
        f->overflow_count = metrics_series(r->overflow_fam, v, NULL, 1);
    }
    struct metric_series *count = f != r->overflow_fam ? f->overflow_count : NULL;
    pthread_mutex_unlock(&f->lock);
    metric_add(count, 1);
    if (warn) {
        pthread_mutex_lock(&r->lock);
        metrics_warn_fn fn = r->warn;
        void *arg = r->warn_arg;
        pthread_mutex_unlock(&r->lock);
        if (fn) {
            char msg[400];
            snprintf(msg, sizeof msg,
                     "metric %s reached %d series (--max-series): further label sets are "
                     "counted in one series whose labels read " OVERFLOW_VALUE,
                     f->name, r->max_series);
            fn(arg, msg);
        }
    }
    return s;
}

struct metric_series *metrics_series(struct metric_family *f, const char *const *values,
                                     const size_t *lens, int nvalues)
{
    if (f->nlabels == 0)
        return atomic_load_explicit(&f->head, memory_order_acquire);
    /* values are keyed as they will read: valid UTF-8 (U+FFFD for the
     * rest), so two byte strings that render alike are one series */
    char key[METRIC_MAX_LABELS * (4 + 3 * MAX_VALUE_BYTES)];
    const char *vals[METRIC_MAX_LABELS];
    size_t vlens[METRIC_MAX_LABELS];
    size_t keylen = 0;
    for (int i = 0; i < f->nlabels; i++) {
        const char *v = i < nvalues && values[i] ? values[i] : "";
        size_t n = i < nvalues && values[i] && lens ? lens[i] : strlen(v);
        if (n > MAX_VALUE_BYTES)
            n = MAX_VALUE_BYTES;
        char *out = key + keylen + 4;
        size_t o = utf8_clean(out, v, n); /* room: 3 bytes a byte at most */
        uint32_t n32 = (uint32_t)o;
        memcpy(key + keylen, &n32, 4);
        vals[i] = out;
        vlens[i] = o;
        keylen += 4 + o;
    }
    uint64_t hash = hash_bytes(key, keylen);

    struct registry *r = f->reg;
    struct cache_entry *ce =
        &tl_cache[(hash ^ ((uintptr_t)f >> 4) * 0x9e3779b97f4a7c15ull) % CACHE_SIZE];
    struct metric_series *cs = ce->s;
    if (ce->gen == r->gen && ce->hash == hash && cs && cs->fam == f && cs->keylen == keylen &&
        memcmp(cs->key, key, keylen) == 0)
        return cs;
    pthread_mutex_lock(&f->lock);
    struct metric_series *s = lookup_locked(f, hash, key, keylen);
    if (!s) {
        if ((int)f->nseries >= r->max_series)
            return fold(f); /* unlocks */
        s = series_new_locked(f, hash, key, keylen, vals, vlens);
        if (!s)
            return fold(f);
    }
    pthread_mutex_unlock(&f->lock);
    ce->gen = r->gen;
    ce->hash = hash;
    ce->s = s;
    return s;
}

/* ------------------------------------------------------------ updates */

void metric_add(struct metric_series *s, double v)
{
    if (!s)
        return;
    struct metric_family *f = s->fam;
    if (f->type == METRIC_COUNTER) {
        if (!(v >= 0))
            return;
        cell_add_double(cellp(f->reg, my_shard(f->reg), s->cell), v);
    } else if (f->type == METRIC_GAUGE) {
        cell_add_double(cellp(f->reg, my_shard(f->reg), s->cell), v);
    }
}

void metric_set(struct metric_series *s, double v)
{
    if (!s)
        return;
    struct metric_family *f = s->fam;
    if (f->type == METRIC_HISTOGRAM)
        return;
    atomic_store_explicit(cellp(f->reg, 0, s->cell), double_bits(v), memory_order_relaxed);
    for (int i = 1; i < f->reg->nshards; i++)
            atomic_store_explicit(cellp(f->reg, i, s->cell), 0, memory_order_relaxed);
}

static int bucket_of(const struct metric_family *f, double v)
{
    /* binary search: the first bound >= v; nbuckets (+Inf) if none */
    int lo = 0, hi = f->nbuckets;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v <= f->buckets[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int observe(struct metric_series *s, double v)
{
    struct metric_family *f = s->fam;
    if (f->type != METRIC_HISTOGRAM || isnan(v))
        return -1;
    int shard = my_shard(f->reg);
    int b = bucket_of(f, v);
    atomic_fetch_add_explicit(cellp(f->reg, shard, s->cell + (uint32_t)b), 1,
                              memory_order_relaxed);
    cell_add_double(cellp(f->reg, shard, s->cell + (uint32_t)f->nbuckets + 1), v);
    return b;
}

void metric_observe(struct metric_series *s, double v)
{
    if (s)
        observe(s, v);
}

void metric_observe_exemplar(struct metric_series *s, double v, const char *trace_id, double ts)
{
    if (!s)
        return;
    int b = observe(s, v);
    if (b < 0 || !trace_id || strlen(trace_id) != 32 ||
        strspn(trace_id, "0123456789abcdef") != 32)
        return;
    struct exemplar *e = &s->ex[b];
    uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
    if ((seq & 1) || !atomic_compare_exchange_strong_explicit(&e->seq, &seq, seq + 1,
                                                              memory_order_acquire,
                                                              memory_order_relaxed))
        return; /* another writer has it: this observation's exemplar is skipped */
    atomic_store_explicit(&e->value, double_bits(v), memory_order_relaxed);
    atomic_store_explicit(&e->ts, double_bits(ts), memory_order_relaxed);
    for (int i = 0; i < 4; i++) {
        uint64_t w;
        memcpy(&w, trace_id + 8 * i, 8);
        atomic_store_explicit(&e->id[i], w, memory_order_relaxed);
    }
    atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
}

/* Reads a bucket's exemplar; 0 if it has none or could not be read steadily. */
static int exemplar_read(struct exemplar *e, double *v, double *ts, char id[33])
{
    for (int tries = 0; tries < 8; tries++) {
        uint32_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (s1 == 0)
            return 0;
        if (s1 & 1)
            continue;
        /* acquire loads: the second read of seq cannot move before them */
        uint64_t vb = atomic_load_explicit(&e->value, memory_order_acquire);
        uint64_t tb = atomic_load_explicit(&e->ts, memory_order_acquire);
        uint64_t w[4];
        for (int i = 0; i < 4; i++)
            w[i] = atomic_load_explicit(&e->id[i], memory_order_acquire);
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s1)
            continue;
        *v = bits_double(vb);
        *ts = bits_double(tb);
        memcpy(id, w, 32);
        id[32] = 0;
        return 1;
    }
    return 0;
}

static double sum_cell(const struct registry *r, uint32_t c, int integer)
{
    double total = 0;
    for (int i = 0; i < r->nshards; i++) {
        uint64_t b = atomic_load_explicit(cellp(r, i, c), memory_order_relaxed);
        total += integer ? (double)b : bits_double(b);
    }
    return total;
}

double metric_value(const struct metric_series *s)
{
    if (!s)
        return 0;
    const struct metric_family *f = s->fam;
    const struct registry *r = f->reg;
    if (f->type != METRIC_HISTOGRAM)
        return sum_cell(r, s->cell, 0);
    double n = 0;
    for (int b = 0; b <= f->nbuckets; b++)
        n += sum_cell(r, s->cell + (uint32_t)b, 1);
    return n;
}

/* ------------------------------------------------------------ exposition */

const char *metrics_content_type(enum metrics_format fmt)
{
    return fmt == METRICS_OPENMETRICS ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                      : "text/plain; version=0.0.4; charset=utf-8";
}

enum metrics_format metrics_negotiate(const char *accept)
{
    return accept && strstr(accept, "application/openmetrics-text") ? METRICS_OPENMETRICS
                                                                     : METRICS_TEXT;
}

static void sample(struct strbuf *b, const char *name, const char *suffix, const char *labels,
                   const char *extra, double v)
{
    strbuf_str(b, name);
    strbuf_str(b, suffix);
    if (*labels || extra) {
        strbuf_add(b, "{", 1);
        strbuf_str(b, labels);
        if (extra) {
            if (*labels)
                strbuf_add(b, ",", 1);
            strbuf_str(b, extra);
        }
        strbuf_add(b, "}", 1);
    }
    strbuf_add(b, " ", 1);
    put_value(b, v);
}

static void render_family(struct strbuf *b, struct metric_family *f, int om)
{
    struct metric_series *s = atomic_load_explicit(&f->head, memory_order_acquire);
    if (!s)
        return;
    const struct registry *r = f->reg;
    /* OpenMetrics names a counter family without its _total */
    size_t base = strlen(f->name);
    if (om && f->type == METRIC_COUNTER)
        base -= 6;
    strbuf_add(b, "# HELP ", 7);
    strbuf_add(b, f->name, base);
    strbuf_add(b, " ", 1);
    put_escaped(b, f->help, strlen(f->help), om);
    strbuf_add(b, "\n# TYPE ", 8);
    strbuf_add(b, f->name, base);
    strbuf_add(b, " ", 1);
    strbuf_str(b, type_name(f->type));
    strbuf_add(b, "\n", 1);
    for (; s; s = atomic_load_explicit(&s->next, memory_order_acquire)) {
        if (f->type != METRIC_HISTOGRAM) {
            sample(b, f->name, "", s->labels, NULL, metric_value(s));
            strbuf_add(b, "\n", 1);
            continue;
        }
        double cum = 0;
        char le[64], num[40];
        for (int i = 0; i <= f->nbuckets; i++) {
            cum += sum_cell(r, s->cell + (uint32_t)i, 1);
            if (i < f->nbuckets)
                metrics_format_value(num, sizeof num, f->buckets[i]);
            snprintf(le, sizeof le, "le=\"%s\"", i < f->nbuckets ? num : "+Inf");
            sample(b, f->name, "_bucket", s->labels, le, cum);
            double ev, ets;
            char id[33];
            if (om && exemplar_read(&s->ex[i], &ev, &ets, id)) {
                strbuf_str(b, " # {trace_id=\"");
                strbuf_str(b, id);
                strbuf_str(b, "\"} ");
                put_value(b, ev);
                char t[40];
                snprintf(t, sizeof t, " %.3f", ets);
                strbuf_str(b, t);
            }
            strbuf_add(b, "\n", 1);
        }
        sample(b, f->name, "_sum", s->labels, NULL,
               sum_cell(r, s->cell + (uint32_t)f->nbuckets + 1, 0));
        strbuf_add(b, "\n", 1);
        sample(b, f->name, "_count", s->labels, NULL, cum);
        strbuf_add(b, "\n", 1);
    }
}

static void run_collectors(struct registry *r)
{
    int n = atomic_load_explicit(&r->ncoll, memory_order_acquire);
    for (int i = 0; i < n; i++)
        r->coll[i].fn(r->coll[i].arg);
}

char *metrics_render(struct registry *r, enum metrics_format fmt, size_t *len)
{
    run_collectors(r);
    struct strbuf b = {0};
    strbuf_reserve(&b, 64 * 1024);
    for (struct metric_family *f = atomic_load_explicit(&r->head, memory_order_acquire); f;
         f = atomic_load_explicit(&f->next, memory_order_acquire))
        render_family(&b, f, fmt == METRICS_OPENMETRICS);
    if (fmt == METRICS_OPENMETRICS)
        strbuf_str(&b, "# EOF\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ------------------------------------------------------------ walking */

int metrics_family_nbuckets(const struct metric_family *f)
{
    return f->type == METRIC_HISTOGRAM ? f->nbuckets : 0;
}

const double *metrics_family_buckets(const struct metric_family *f)
{
    return f->type == METRIC_HISTOGRAM ? f->buckets : NULL;
}

/* Fills p's label values from s's key: each a 4-byte length and its bytes;
 * the overflow series has no key, and every value reads __overflow__. */
static void point_labels(const struct metric_series *s, struct metric_point *p)
{
    const struct metric_family *f = s->fam;
    size_t at = 0;
    for (int i = 0; i < f->nlabels; i++) {
        uint32_t n = 0;
        if (s->keylen == 0 || at + 4 > s->keylen) {
            p->values[i] = OVERFLOW_VALUE;
            p->lens[i] = sizeof OVERFLOW_VALUE - 1;
            continue;
        }
        memcpy(&n, s->key + at, 4);
        p->values[i] = s->key + at + 4;
        p->lens[i] = n;
        at += 4 + n;
    }
}

size_t metrics_walk(struct registry *r, void (*fn)(const struct metric_point *p, void *arg),
                    void *arg)
{
    run_collectors(r);
    struct metric_point p;
    size_t seen = 0;
    for (struct metric_family *f = atomic_load_explicit(&r->head, memory_order_acquire); f;
         f = atomic_load_explicit(&f->next, memory_order_acquire)) {
        for (struct metric_series *s = atomic_load_explicit(&f->head, memory_order_acquire); s;
             s = atomic_load_explicit(&s->next, memory_order_acquire)) {
            p.family = f;
            point_labels(s, &p);
            p.value = 0;
            p.count = 0;
            p.sum = 0;
            p.nexemplars = 0;
            if (f->type != METRIC_HISTOGRAM) {
                p.value = metric_value(s);
            } else {
                for (int i = 0; i <= f->nbuckets; i++) {
                    p.buckets[i] = (uint64_t)sum_cell(r, s->cell + (uint32_t)i, 1);
                    p.count += p.buckets[i];
                    struct metric_exemplar *e = &p.exemplars[p.nexemplars];
                    if (exemplar_read(&s->ex[i], &e->value, &e->ts, e->trace_id)) {
                        e->bucket = i;
                        p.nexemplars++;
                    }
                }
                p.sum = sum_cell(r, s->cell + (uint32_t)f->nbuckets + 1, 0);
            }
            fn(&p, arg);
            seen++;
        }
    }
    return seen;
}
