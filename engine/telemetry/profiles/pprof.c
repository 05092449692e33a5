/* pprof.c - a window of CPU samples as a gzip'd pprof profile, and the
 * --profile-dir files (see pprof.h).
 *
 * The encoder builds protobuf-c structs (proto/profile.proto) that point
 * at the window's own strings, packs them once and gzips the bytes. Every
 * struct of one profile comes from a handful of arrays sized up front from
 * the window's counts, so a window of a few thousand stacks costs under
 * twenty mallocs and two passes over the frames, and a failure leaves
 * nothing behind. Strings are interned in a small open-addressing table,
 * so a thread name or a span id shared by many stacks is stored once.
 *
 * Ids: function i of the window is Function i+1 and Location i+1 (one
 * Line each). Every Location is in the one Mapping, "shoal", marked as
 * symbolised already: without a mapping go tool pprof invents one and
 * complains on every run that it has no file name, and has_functions
 * keeps it from trying to symbolise addresses that are not there.
 *
 * Any thread; nothing is shared. */
#define _GNU_SOURCE /* renameat2 */
#include "telemetry/profiles/pprof.h"
#include "base/hex.h"
#include "base/hash.h"

#include "telemetry/send/otlp_send.h"
#include "profile.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef Shoal__Pprof__Profile pb_profile;
typedef Shoal__Pprof__ValueType pb_vtype;
typedef Shoal__Pprof__Sample pb_sample;
typedef Shoal__Pprof__Label pb_label;
typedef Shoal__Pprof__Location pb_location;
typedef Shoal__Pprof__Line pb_line;
typedef Shoal__Pprof__Function pb_function;
typedef Shoal__Pprof__Mapping pb_mapping;

/* ------------------------------------------------------------ strings */

struct strtab {
    const char **v; /* the string table: v[0] = "" */
    size_t n;
    uint32_t *slot; /* index + 1 into v, 0 = free */
    size_t mask;    /* slots - 1, a power of two minus one */
};

static uint64_t hash(const char *s)
{
    return fnv1a(s, strlen(s));
}

/* Room for at most max strings (the empty one included). */
static int strtab_init(struct strtab *t, size_t max)
{
    size_t slots = 16;
    while (slots < 2 * max)
        slots *= 2;
    t->v = malloc(max * sizeof *t->v);
    t->slot = calloc(slots, sizeof *t->slot);
    t->mask = slots - 1;
    t->n = 0;
    if (!t->v || !t->slot)
        return -1;
    t->v[t->n++] = "";
    return 0;
}

/* The index of s, added when new. s must outlive the table. The caller
 * sized the table for every string it may add, so this cannot fail. */
static int64_t intern(struct strtab *t, const char *s)
{
    if (!s || !*s)
        return 0;
    for (size_t i = hash(s) & t->mask;; i = (i + 1) & t->mask) {
        uint32_t k = t->slot[i];
        if (!k) {
            t->v[t->n] = s;
            t->slot[i] = (uint32_t)++t->n;
            return (int64_t)(t->n - 1);
        }
        if (strcmp(t->v[k - 1], s) == 0)
            return (int64_t)(k - 1);
    }
}

/* A span id as its 16 hex digits, as the span itself shows it. */
static void span_hex(char out[17], uint64_t v)
{
    uint8_t b[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
    hex_encode(b, 8, out);
}

/* ------------------------------------------------------------ encoding */

/* Every array one profile's structs come from. */
struct parts {
    struct strtab st;
    char (*hex)[17];
    char (*wid)[12]; /* the worker label's text, per sample */
    pb_sample *s;
    pb_sample **sp;
    uint64_t *loc_ids;
    int64_t *values;
    pb_label *l;
    pb_label **lp;
    pb_location *loc;
    pb_location **locp;
    pb_line *line;
    pb_line **linep;
    pb_function *fn;
    pb_function **fnp;
};

static void parts_free(struct parts *a)
{
    free(a->st.v);
    free(a->st.slot);
    free(a->hex);
    free(a->wid);
    free(a->s);
    free(a->sp);
    free(a->loc_ids);
    free(a->values);
    free(a->l);
    free(a->lp);
    free(a->loc);
    free(a->locp);
    free(a->line);
    free(a->linep);
    free(a->fn);
    free(a->fnp);
}

/* calloc(n, size) that is not NULL for n == 0, so NULL means OOM */
static void *array(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

int pprof_encode(const struct prof_profile *p, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    size_t ns = p->nsamples, nf = p->nfuncs, nframes = 0;
    for (size_t i = 0; i < ns; i++) {
        const struct prof_sample *x = &p->samples[i];
        for (int k = 0; k < x->nframes; k++)
            if (x->frames[k] >= nf)
                return -1; /* a bug in the caller: no profile is better than a wrong one */
        nframes += x->nframes > 0 ? (size_t)x->nframes : 0;
    }

    struct parts a;
    memset(&a, 0, sizeof a);
    int rc = -1;
    uint8_t *raw = NULL;
    /* nine fixed names, two per function, two per sample (thread, profile_id) */
    if (strtab_init(&a.st, 9 + 2 * nf + 3 * ns) != 0)
        goto done;
    a.hex = array(ns, sizeof *a.hex);
    a.wid = array(ns, sizeof *a.wid);
    a.s = array(ns, sizeof *a.s);
    a.sp = array(ns, sizeof *a.sp);
    a.loc_ids = array(nframes, sizeof *a.loc_ids);
    a.values = array(2 * ns, sizeof *a.values);
    a.l = array(3 * ns, sizeof *a.l);
    a.lp = array(3 * ns, sizeof *a.lp);
    a.loc = array(nf, sizeof *a.loc);
    a.locp = array(nf, sizeof *a.locp);
    a.line = array(nf, sizeof *a.line);
    a.linep = array(nf, sizeof *a.linep);
    a.fn = array(nf, sizeof *a.fn);
    a.fnp = array(nf, sizeof *a.fnp);
    if (!a.hex || !a.wid || !a.s || !a.sp || !a.loc_ids || !a.values || !a.l || !a.lp || !a.loc ||
        !a.locp || !a.line || !a.linep || !a.fn || !a.fnp)
        goto done;

    struct strtab *st = &a.st;
    pb_vtype samples = SHOAL__PPROF__VALUE_TYPE__INIT, cpu = SHOAL__PPROF__VALUE_TYPE__INIT;
    samples.type = intern(st, "samples");
    samples.unit = intern(st, "count");
    cpu.type = intern(st, "cpu");
    cpu.unit = intern(st, "nanoseconds");
    pb_vtype *types[2] = {&samples, &cpu};
    pb_mapping map = SHOAL__PPROF__MAPPING__INIT, *maps[1] = {&map};
    map.id = 1;
    map.filename = intern(st, "shoal");
    map.has_functions = map.has_filenames = map.has_line_numbers = 1;
    int64_t k_worker = intern(st, "worker"), k_thread = intern(st, "thread"),
            k_profile = intern(st, "profile_id");

    for (size_t i = 0; i < nf; i++) {
        const struct prof_func *f = &p->funcs[i];
        pb_function *fn = &a.fn[i];
        *fn = (pb_function)SHOAL__PPROF__FUNCTION__INIT;
        fn->id = i + 1;
        fn->name = fn->system_name = intern(st, f->name);
        fn->filename = intern(st, f->filename);
        fn->start_line = f->line;
        a.fnp[i] = fn;

        pb_line *ln = &a.line[i];
        *ln = (pb_line)SHOAL__PPROF__LINE__INIT;
        ln->function_id = i + 1;
        ln->line = f->line;
        a.linep[i] = ln;

        pb_location *loc = &a.loc[i];
        *loc = (pb_location)SHOAL__PPROF__LOCATION__INIT;
        loc->id = i + 1;
        loc->mapping_id = 1;
        loc->n_line = 1;
        loc->line = &a.linep[i];
        a.locp[i] = loc;
    }

    uint64_t *ids = a.loc_ids;
    size_t nl = 0;
    for (size_t i = 0; i < ns; i++) {
        const struct prof_sample *x = &p->samples[i];
        pb_sample *s = &a.s[i];
        *s = (pb_sample)SHOAL__PPROF__SAMPLE__INIT;
        s->location_id = ids;
        for (int k = 0; k < x->nframes; k++)
            ids[s->n_location_id++] = (uint64_t)x->frames[k] + 1;
        ids += s->n_location_id;
        s->value = &a.values[2 * i];
        s->value[0] = x->count;
        s->value[1] = x->cpu_ns;
        s->n_value = 2;
        s->label = &a.lp[nl];
        if (x->worker >= 0) {
            pb_label *l = &a.l[nl];
            *l = (pb_label)SHOAL__PPROF__LABEL__INIT;
            /* a string, not a number: Pyroscope makes string labels series
             * labels, so a flame graph can be cut by worker */
            snprintf(a.wid[i], sizeof a.wid[i], "%d", x->worker);
            l->key = k_worker;
            l->str = intern(st, a.wid[i]);
            a.lp[nl++] = l;
            s->n_label++;
        }
        if (x->thread && x->thread[0]) {
            pb_label *l = &a.l[nl];
            *l = (pb_label)SHOAL__PPROF__LABEL__INIT;
            l->key = k_thread;
            l->str = intern(st, x->thread);
            a.lp[nl++] = l;
            s->n_label++;
        }
        if (x->span_id) {
            pb_label *l = &a.l[nl];
            *l = (pb_label)SHOAL__PPROF__LABEL__INIT;
            span_hex(a.hex[i], x->span_id);
            l->key = k_profile;
            l->str = intern(st, a.hex[i]);
            a.lp[nl++] = l;
            s->n_label++;
        }
        a.sp[i] = s;
    }

    pb_profile prof = SHOAL__PPROF__PROFILE__INIT;
    prof.n_sample_type = 2;
    prof.sample_type = types;
    prof.n_sample = ns;
    prof.sample = a.sp;
    prof.n_mapping = 1;
    prof.mapping = maps;
    prof.n_location = nf;
    prof.location = a.locp;
    prof.n_function = nf;
    prof.function = a.fnp;
    /* protobuf-c only reads the table; its type lacks the const */
    prof.n_string_table = st->n;
    prof.string_table = (char **)st->v;
    prof.time_nanos = (int64_t)p->start_ns;
    prof.duration_nanos = p->end_ns > p->start_ns ? (int64_t)(p->end_ns - p->start_ns) : 0;
    prof.period_type = &cpu;
    prof.period = p->period_ns;

    size_t rawlen = shoal__pprof__profile__get_packed_size(&prof);
    raw = malloc(rawlen ? rawlen : 1);
    if (!raw)
        goto done;
    shoal__pprof__profile__pack(&prof, raw);
    *out = otlp_gzip(raw, rawlen, len);
    rc = *out ? 0 : -1;
done:
    free(raw);
    parts_free(&a);
    return rc;
}

/* ------------------------------------------------------------ files */

/* mkdir -p: 0, or -1 with errno set. */
static int mkdirs(const char *dir)
{
    char *path = strdup(dir);
    if (!path)
        return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            free(path);
            return -1;
        }
        *p = '/';
    }
    int rc = mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
    free(path);
    struct stat sb;
    if (rc == 0 && stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Renames tmp to path unless path exists: 0, 1 when it exists, -1 with
 * errno. RENAME_NOREPLACE makes the check and the rename one step; a file
 * system without it gets the check just before. */
static int place(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EEXIST)
        return 1;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -1;
    if (access(path, F_OK) == 0)
        return 1;
    return rename(tmp, path) == 0 ? 0 : -1;
}

int pprof_write_dir(const char *dir, uint64_t start_ns, const uint8_t *gz, size_t len, char *err,
                    size_t errlen)
{
    size_t dlen = strlen(dir);
    char *tmp = malloc(dlen + 64), *path = malloc(dlen + 64);
    int fd = -1, rc = -1;
    if (!tmp || !path) {
        snprintf(err, errlen, "--profile-dir %s: out of memory", dir);
        goto done;
    }
    if (mkdirs(dir) != 0) {
        snprintf(err, errlen, "--profile-dir: cannot create %s: %s", dir, strerror(errno));
        goto done;
    }
    snprintf(tmp, dlen + 64, "%s/.cpu-XXXXXX.tmp", dir);
    fd = mkstemps(tmp, 4);
    if (fd < 0) {
        snprintf(err, errlen, "--profile-dir: cannot write in %s: %s", dir, strerror(errno));
        goto done;
    }
    fchmod(fd, 0644); /* mkstemps makes it 0600; a profile is no secret of the run */
    if (write_all(fd, gz, len) != 0 || close(fd) != 0) {
        snprintf(err, errlen, "--profile-dir: cannot write %s: %s", tmp, strerror(errno));
        fd = -1;
        unlink(tmp);
        goto done;
    }
    fd = -1;

    time_t secs = (time_t)(start_ns / 1000000000u);
    struct tm tm;
    char stamp[32];
    gmtime_r(&secs, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    for (int n = 1; n <= 1000; n++) {
        if (n == 1)
            snprintf(path, dlen + 64, "%s/cpu-%s.pb.gz", dir, stamp);
        else
            snprintf(path, dlen + 64, "%s/cpu-%s-%d.pb.gz", dir, stamp, n);
        int r = place(tmp, path);
        if (r == 0) {
            rc = 0;
            goto done;
        }
        if (r < 0) {
            snprintf(err, errlen, "--profile-dir: cannot rename %s to %s: %s", tmp, path,
                     strerror(errno));
            unlink(tmp);
            goto done;
        }
    }
    snprintf(err, errlen, "--profile-dir: %s/cpu-%s*.pb.gz: too many files of that name", dir,
             stamp);
    unlink(tmp);
done:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(tmp);
    free(path);
    return rc;
}
