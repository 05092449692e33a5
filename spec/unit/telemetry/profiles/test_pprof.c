/* test_pprof.c - a window of CPU samples as pprof's tools read it: the
 * encoded profile decodes (protobuf-c, from proto/profile.proto) to the
 * sample types, period, window, functions, locations, stacks (leaf
 * first), values and labels the window had, with a string table that
 * starts with "" and repeats nothing; a bad frame index encodes nothing;
 * a window of 2000 stacks encodes in a few milliseconds; --profile-dir
 * files land under their UTC name, atomically, without overwriting.
 *
 * Also a helper for spec/integration/test_pprof_tools.sh, which checks the
 * same profile with `go tool pprof` and a Pyroscope receiver:
 *   test_pprof OUT.pb.gz           writes the demo window's profile
 *   test_pprof --push URL [NAME]   pushes it through pyroscope.c, prints
 *                                  the counts, exits 0 when it was accepted */
#include "check.h"
#include "telemetry/metrics/metrics.h"
#include "telemetry/profiles/pprof.h"
#include "profile.pb-c.h"
#include "telemetry/profiles/pyroscope.h"
#include "tel_registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

typedef Shoal__Pprof__Profile pb_profile;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ the demo window
 *
 * Three functions, four stacks; 105 samples of 10 ms: 1.05 s in all,
 * curl_multi_perform 0.30 s flat, the Lua handler 0.70 s, worker_main
 * 0.05 s flat and 1.05 s cumulative. */

static const struct prof_func demo_funcs[] = {
    {"handle examples/crawl.lua:42", "examples/crawl.lua", 42},
    {"worker_main", "engine/core/worker.c", 310},
    {"curl_multi_perform", "/usr/lib/x86_64-linux-gnu/libcurl.so.4", 0},
};
static const uint32_t stack_curl[] = {2, 1}, stack_lua[] = {0, 1}, stack_main[] = {1};
#define MS10 10000000ll
static const struct prof_sample demo_samples[] = {
    {stack_curl, 2, 30, 30 * MS10, 1, "worker", 0},
    {stack_lua, 2, 50, 50 * MS10, 1, "worker", 0x00c0ffee12345678ull},
    {stack_lua, 2, 20, 20 * MS10, 2, "worker", 0},
    {stack_main, 1, 5, 5 * MS10, -1, "main", 0},
};
#define DEMO_START 1700000000250000000ull /* 2023-11-14T22:13:20.25Z */

static struct prof_profile demo(void)
{
    struct prof_profile p = {
        .start_ns = DEMO_START,
        .end_ns = DEMO_START + 10000000000ull,
        .period_ns = MS10,
        .funcs = demo_funcs,
        .nfuncs = 3,
        .samples = demo_samples,
        .nsamples = 4,
    };
    return p;
}

/* ------------------------------------------------------------ decoding */

static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + 15) != Z_OK)
        return NULL;
    size_t cap = len * 4 + 256;
    uint8_t *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    int rc;
    do {
        if (cap - z.total_out < 256)
            out = realloc(out, cap *= 2);
        z.next_out = out + z.total_out;
        z.avail_out = (uInt)(cap - z.total_out);
        rc = inflate(&z, Z_NO_FLUSH);
    } while (rc == Z_OK);
    *outlen = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static pb_profile *decode(const uint8_t *gz, size_t len)
{
    size_t n;
    uint8_t *raw = gunzip(gz, len, &n);
    if (!raw)
        return NULL;
    pb_profile *p = shoal__pprof__profile__unpack(NULL, n, raw);
    free(raw);
    return p;
}

static const char *str(const pb_profile *p, int64_t i)
{
    return i >= 0 && (size_t)i < p->n_string_table ? p->string_table[i] : "(out of range)";
}

/* the label of sample s under key, or NULL */
static const Shoal__Pprof__Label *label(const pb_profile *p, const Shoal__Pprof__Sample *s,
                                        const char *key)
{
    for (size_t i = 0; i < s->n_label; i++)
        if (strcmp(str(p, s->label[i]->key), key) == 0)
            return s->label[i];
    return NULL;
}

/* ------------------------------------------------------------ the tests */

static void test_encode(void)
{
    struct prof_profile d = demo();
    uint8_t *gz = NULL;
    size_t len = 0;
    CHECK_EQ_INT(pprof_encode(&d, &gz, &len), 0);
    CHECK(len > 2 && gz[0] == 0x1f && gz[1] == 0x8b);
    pb_profile *p = decode(gz, len);
    CHECK(p != NULL);
    if (!p) {
        free(gz);
        return;
    }
    CHECK(p->n_string_table > 0 && strcmp(p->string_table[0], "") == 0);
    int dups = 0;
    for (size_t i = 0; i < p->n_string_table; i++)
        for (size_t j = i + 1; j < p->n_string_table; j++)
            dups += strcmp(p->string_table[i], p->string_table[j]) == 0;
    CHECK_EQ_INT(dups, 0);

    CHECK_EQ_INT(p->n_sample_type, 2);
    if (p->n_sample_type == 2) {
        CHECK_STR(str(p, p->sample_type[0]->type), "samples");
        CHECK_STR(str(p, p->sample_type[0]->unit), "count");
        CHECK_STR(str(p, p->sample_type[1]->type), "cpu");
        CHECK_STR(str(p, p->sample_type[1]->unit), "nanoseconds");
    }
    CHECK(p->period_type != NULL);
    if (p->period_type) {
        CHECK_STR(str(p, p->period_type->type), "cpu");
        CHECK_STR(str(p, p->period_type->unit), "nanoseconds");
    }
    CHECK_EQ_INT(p->period, MS10);
    CHECK_EQ_INT(p->time_nanos, (int64_t)DEMO_START);
    CHECK_EQ_INT(p->duration_nanos, 10000000000ll);
    /* one mapping, marked symbolised, so tools neither invent one nor
     * try to symbolise */
    CHECK_EQ_INT(p->n_mapping, 1);
    if (p->n_mapping == 1) {
        CHECK_EQ_INT(p->mapping[0]->id, 1);
        CHECK_STR(str(p, p->mapping[0]->filename), "shoal");
        CHECK(p->mapping[0]->has_functions);
    }

    CHECK_EQ_INT(p->n_function, 3);
    CHECK_EQ_INT(p->n_location, 3);
    for (size_t i = 0; i < 3 && i < p->n_function && i < p->n_location; i++) {
        const Shoal__Pprof__Function *f = p->function[i];
        CHECK_EQ_INT(f->id, i + 1);
        CHECK_STR(str(p, f->name), demo_funcs[i].name);
        CHECK_STR(str(p, f->system_name), demo_funcs[i].name);
        CHECK_STR(str(p, f->filename), demo_funcs[i].filename);
        CHECK_EQ_INT(f->start_line, demo_funcs[i].line);
        const Shoal__Pprof__Location *l = p->location[i];
        CHECK_EQ_INT(l->id, i + 1);
        CHECK_EQ_INT(l->mapping_id, 1);
        CHECK_EQ_INT(l->n_line, 1);
        if (l->n_line == 1) {
            CHECK_EQ_INT(l->line[0]->function_id, i + 1);
            CHECK_EQ_INT(l->line[0]->line, demo_funcs[i].line);
        }
    }

    CHECK_EQ_INT(p->n_sample, 4);
    for (size_t i = 0; i < 4 && i < p->n_sample; i++) {
        const Shoal__Pprof__Sample *s = p->sample[i];
        const struct prof_sample *x = &demo_samples[i];
        CHECK_EQ_INT(s->n_location_id, x->nframes);
        for (int k = 0; k < x->nframes && (size_t)k < s->n_location_id; k++)
            CHECK_EQ_INT(s->location_id[k], x->frames[k] + 1); /* leaf first, as given */
        CHECK_EQ_INT(s->n_value, 2);
        if (s->n_value == 2) {
            CHECK_EQ_INT(s->value[0], x->count);
            CHECK_EQ_INT(s->value[1], x->cpu_ns);
        }
        const Shoal__Pprof__Label *w = label(p, s, "worker"), *t = label(p, s, "thread"),
                                  *id = label(p, s, "profile_id");
        if (x->worker >= 0) {
            CHECK(w != NULL);
            if (w) {
                /* a string: Pyroscope turns string labels into series labels */
                char want[16];
                snprintf(want, sizeof want, "%d", x->worker);
                CHECK_STR(str(p, w->str), want);
                CHECK_EQ_INT(w->num, 0);
            }
        } else {
            CHECK(w == NULL);
        }
        CHECK(t != NULL);
        if (t)
            CHECK_STR(str(p, t->str), x->thread);
        CHECK_EQ_INT(id != NULL, x->span_id != 0);
        CHECK_EQ_INT(s->n_label, (x->worker >= 0) + 1 + (x->span_id != 0));
    }
    if (p->n_sample > 1) {
        const Shoal__Pprof__Label *id = label(p, p->sample[1], "profile_id");
        if (id)
            CHECK_STR(str(p, id->str), "00c0ffee12345678");
    }
    shoal__pprof__profile__free_unpacked(p, NULL);
    free(gz);
}

static void test_empty(void)
{
    struct prof_profile d = {.start_ns = 5, .end_ns = 5, .period_ns = MS10};
    uint8_t *gz = NULL;
    size_t len = 0;
    CHECK_EQ_INT(pprof_encode(&d, &gz, &len), 0);
    pb_profile *p = gz ? decode(gz, len) : NULL;
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_INT(p->n_sample, 0);
        CHECK_EQ_INT(p->n_sample_type, 2);
        CHECK(p->n_string_table > 0 && strcmp(p->string_table[0], "") == 0);
        shoal__pprof__profile__free_unpacked(p, NULL);
    }
    free(gz);
}

static void test_bad_frame(void)
{
    static const uint32_t bad[] = {0, 3};
    struct prof_sample s = {bad, 2, 1, MS10, 0, "worker", 0};
    struct prof_profile d = demo();
    d.samples = &s;
    d.nsamples = 1;
    uint8_t *gz = (uint8_t *)"x";
    size_t len = 1;
    CHECK_EQ_INT(pprof_encode(&d, &gz, &len), -1);
    CHECK(gz == NULL);
    CHECK_EQ_INT(len, 0);
}

/* A busy 10 s window: 2000 distinct stacks 24 deep over 600 functions,
 * 8 workers, one span in four. The encoder runs on the profiler thread
 * once per window; it should cost milliseconds, not a good part of one
 * core. */
static void test_big(void)
{
    enum { NF = 600, NS = 2000, DEPTH = 24 };
    struct prof_func *f = calloc(NF, sizeof *f);
    typedef char name_buf[48];
    name_buf *names = calloc(NF, sizeof *names);
    uint32_t *frames = calloc((size_t)NS * DEPTH, sizeof *frames);
    struct prof_sample *s = calloc(NS, sizeof *s);
    for (int i = 0; i < NF; i++) {
        snprintf(names[i], sizeof names[i], "function_%d lib/module%d.lua:%d", i, i % 40, i);
        f[i] = (struct prof_func){names[i], i % 2 ? "lib/module.lua" : "engine/core/worker.c", i};
    }
    int64_t total = 0;
    uint32_t seed = 12345;
    for (int i = 0; i < NS; i++) {
        for (int k = 0; k < DEPTH; k++) {
            seed = seed * 1103515245u + 12345u;
            frames[i * DEPTH + k] = (seed >> 8) % NF;
        }
        struct prof_sample x = {.frames = &frames[i * DEPTH], .nframes = DEPTH};
        x.count = 1 + i % 7;
        x.cpu_ns = x.count * MS10;
        x.worker = i % 8;
        x.thread = "worker";
        x.span_id = i % 4 ? 0 : 0x1000u + (uint64_t)i;
        s[i] = x;
        total += 1 + i % 7;
    }
    struct prof_profile d = {DEMO_START, DEMO_START + 10000000000ull, MS10, f, NF, s, NS};
    double best = 1e9;
    size_t len = 0;
    uint8_t *gz = NULL;
    for (int round = 0; round < 5; round++) {
        free(gz);
        double t0 = mono();
        CHECK_EQ_INT(pprof_encode(&d, &gz, &len), 0);
        double t = mono() - t0;
        best = t < best ? t : best;
    }
    printf("# pprof_encode: %d stacks x %d frames, %d functions: %.2f ms, %zu bytes gzip'd\n", NS,
           DEPTH, NF, best * 1e3, len);
    CHECK(best < 0.25); /* ~5 ms in a plain build; sanitizers slow it several times */
    pb_profile *p = gz ? decode(gz, len) : NULL;
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_INT(p->n_sample, NS);
        CHECK_EQ_INT(p->n_function, NF);
        int64_t sum = 0;
        for (size_t i = 0; i < p->n_sample; i++)
            sum += p->sample[i]->value[0];
        CHECK_EQ_INT(sum, total);
        /* 600 names, 2 files, 500 span ids, 8 worker ids and the fixed names */
        CHECK(p->n_string_table < NF + 2 + NS / 4 + 8 + 16);
        shoal__pprof__profile__free_unpacked(p, NULL);
    }
    free(gz);
    free(s);
    free(frames);
    free(names);
    free(f);
}

static int file_equals(const char *path, const uint8_t *want, size_t len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    uint8_t *got = malloc(len + 1);
    size_t n = fread(got, 1, len + 1, fp);
    fclose(fp);
    int same = n == len && memcmp(got, want, len) == 0;
    free(got);
    return same;
}

/* entries of dir whose name starts with prefix */
static int count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_write_dir(void)
{
    char root[] = "/tmp/shoal-pprof-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char dir[128], path[256], err[512];
    snprintf(dir, sizeof dir, "%s/profiles/cpu", root); /* made, parents too */
    const uint8_t a[] = "first", b[] = "second", c[] = "third";
    err[0] = 0;
    CHECK_EQ_INT(pprof_write_dir(dir, DEMO_START, a, sizeof a, err, sizeof err), 0);
    CHECK_STR(err, "");
    snprintf(path, sizeof path, "%s/cpu-20231114T221320Z.pb.gz", dir);
    CHECK(file_equals(path, a, sizeof a));
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0444) == 0444);

    /* the same second again: a new name, the first file untouched */
    CHECK_EQ_INT(pprof_write_dir(dir, DEMO_START + 500000000u, b, sizeof b, err, sizeof err), 0);
    CHECK_EQ_INT(pprof_write_dir(dir, DEMO_START, c, sizeof c, err, sizeof err), 0);
    CHECK(file_equals(path, a, sizeof a));
    snprintf(path, sizeof path, "%s/cpu-20231114T221320Z-2.pb.gz", dir);
    CHECK(file_equals(path, b, sizeof b));
    snprintf(path, sizeof path, "%s/cpu-20231114T221320Z-3.pb.gz", dir);
    CHECK(file_equals(path, c, sizeof c));
    CHECK_EQ_INT(count_prefix(dir, "cpu-"), 3);
    CHECK_EQ_INT(count_prefix(dir, ".cpu-"), 0); /* no temp file left behind */

    /* a directory that cannot be made: -1, and the message names it */
    char blocked[160];
    snprintf(blocked, sizeof blocked, "%s/file", root);
    FILE *fp = fopen(blocked, "w");
    if (fp)
        fclose(fp);
    snprintf(dir, sizeof dir, "%s/file/sub", root);
    err[0] = 0;
    CHECK_EQ_INT(pprof_write_dir(dir, DEMO_START, a, sizeof a, err, sizeof err), -1);
    CHECK(strstr(err, "--profile-dir") != NULL);
    CHECK(strstr(err, dir) != NULL);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
}

/* ------------------------------------------------------------ helper modes */

static int write_demo(const char *out)
{
    struct prof_profile d = demo();
    uint8_t *gz;
    size_t len;
    if (pprof_encode(&d, &gz, &len) != 0) {
        fprintf(stderr, "test_pprof: cannot encode\n");
        return 1;
    }
    FILE *fp = fopen(out, "wb");
    int ok = fp && fwrite(gz, 1, len, fp) == len;
    if (fp && fclose(fp) != 0)
        ok = 0;
    free(gz);
    if (!ok) {
        perror(out);
        return 1;
    }
    return 0;
}

static double series(struct metric_family *f)
{
    const char *sig[1] = {"profiles"};
    return metric_value(metrics_series(f, sig, NULL, 1));
}

static int push_demo(const char *url, const char *service)
{
    char err[512];
    struct tel_registry *m = tel_registry_new(1, 100);
    if (!m) {
        fprintf(stderr, "test_pprof: %s\n", err);
        return 1;
    }
    struct pyroscope_config c = {.url = url, .service = service, .timeout_ms = 5000};
    struct pyroscope *p = pyroscope_new(&c, m->reg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "test_pprof: %s\n", err);
        tel_registry_free(m);
        return 1;
    }
    struct prof_profile d = demo();
    uint8_t *gz;
    size_t len;
    if (pprof_encode(&d, &gz, &len) == 0)
        pyroscope_submit(p, gz, len, d.start_ns, d.end_ns);
    pyroscope_shutdown(p, 20000);
    double ex = series(m->tel_exported), fa = series(m->tel_failed), dr = series(m->tel_dropped);
    printf("exported=%.0f failed=%.0f dropped=%.0f\n", ex, fa, dr);
    tel_registry_free(m);
    return ex == 1 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--push") == 0)
        return push_demo(argv[2], argc >= 4 ? argv[3] : "shoal-test");
    if (argc == 2 && argv[1][0] != '-')
        return write_demo(argv[1]);
    if (argc != 1) {
        fprintf(stderr, "usage: test_pprof [OUT.pb.gz | --push URL [SERVICE]]\n");
        return 2;
    }
    test_encode();
    test_empty();
    test_bad_frame();
    test_big();
    test_write_dir();
    return check_done();
}
