/* The items writer as a user relies on it: records from several threads,
 * through rings small enough to wrap thousands of times, all land whole,
 * once and in each thread's order; CSV gets its header first (not again
 * when appending to a file that has one); items larger than a ring pass
 * whole and in order, and one over ITEMS_MAX_BYTES is refused; without a
 * file items are only counted; and an output whose reader stopped makes
 * emitters wait, then drop and count, within a bound, with every item
 * accounted for at the end. */
#include "check.h"
#include "base/clock.h"
#include "core/items.h"
#include "core/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define THREADS 3
#define PER_THREAD 20000

static char dir[] = "/tmp/shoal-items-XXXXXX";

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (p)
        p[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return p;
}

struct emitter {
    struct items *it;
    int id;
    int not_ok;
};

/* Item i of thread id: {"t":id,"i":i,"pad":"xx..."} with a length that
 * varies from 1 to 1500 bytes of padding, so records wrap the ring at
 * every offset. */
static size_t item_text(char *out, int id, int i)
{
    int pad = 1 + (i * 7919) % 1500;
    int n = sprintf(out, "{\"t\":%d,\"i\":%d,\"pad\":\"", id, i);
    memset(out + n, 'x', (size_t)pad);
    n += pad;
    n += sprintf(out + n, "\"}");
    return (size_t)n;
}

static void *emit_many(void *arg)
{
    struct emitter *e = arg;
    char buf[1600];
    for (int i = 0; i < PER_THREAD; i++)
        if (items_emit(e->it, e->id, buf, item_text(buf, e->id, i)) != ITEMS_OK)
            e->not_ok++;
    return NULL;
}

static void test_threads_wrap_and_order(void)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/many.jsonl", dir);
    struct items_config c = {.path = path, .nworkers = THREADS, .ring_bytes = 4096};
    struct items *it = items_new(&c, NULL, err, sizeof err);
    CHECK(it != NULL);
    if (!it)
        return;
    CHECK_EQ_INT(items_format(it), ITEMS_JSONL);
    pthread_t th[THREADS];
    struct emitter e[THREADS];
    for (int k = 0; k < THREADS; k++) {
        e[k] = (struct emitter){it, k + 1, 0};
        pthread_create(&th[k], NULL, emit_many, &e[k]);
    }
    for (int k = 0; k < THREADS; k++) {
        pthread_join(th[k], NULL);
        CHECK_EQ_INT(e[k].not_ok, 0); /* a slow writer is waited for, not dropped */
    }
    items_finish(it, 5000);
    struct items_counts n;
    items_counts(it, &n);
    CHECK_EQ_INT(n.written, THREADS * PER_THREAD);
    CHECK_EQ_INT(n.dropped + n.failed + n.discarded, 0);
    items_shutdown(it, 0);

    size_t len;
    char *data = slurp(path, &len);
    CHECK(data != NULL);
    if (!data)
        return;
    int next[THREADS + 1] = {0}, bad = 0, lines = 0;
    char want[1600];
    for (char *p = data, *nl; p < data + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(data + len - p));
        if (!nl) {
            bad++; /* a torn last record */
            break;
        }
        int t = -1, i = -1;
        *nl = 0; /* sscanf would read to the end of the whole file each time */
        sscanf(p, "{\"t\":%d,\"i\":%d,", &t, &i);
        if (t < 1 || t > THREADS || i != next[t]) {
            bad++;
            break;
        }
        size_t wl = item_text(want, t, i);
        if (wl != (size_t)(nl - p) || memcmp(want, p, wl) != 0) { /* p ends at nl now */
            bad++;
            break;
        }
        next[t]++;
        lines++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(lines, THREADS * PER_THREAD);
    free(data);
}

static void test_csv_header_and_append(void)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/rows.csv", dir);
    for (int round = 0; round < 2; round++) {
        struct items_config c = {.path = path, .nworkers = 1, .append = round == 1};
        struct items *it = items_new(&c, NULL, err, sizeof err);
        CHECK(it != NULL);
        if (!it)
            return;
        CHECK_EQ_INT(items_format(it), ITEMS_CSV);
        const char *cols[] = {"name", "n"}, *other[] = {"zzz"};
        size_t lens[] = {4, 1}, olen[] = {3};
        CHECK_EQ_INT(items_set_columns(it, 2, cols, lens), 0);
        CHECK_EQ_INT(items_set_columns(it, 1, other, olen), 0); /* the first call wins */
        CHECK_EQ_INT(items_columns(it), 2);
        const char *name;
        size_t nlen;
        items_column(it, 1, &name, &nlen);
        CHECK(nlen == 1 && !memcmp(name, "n", 1));
        const char *cells[] = {"a, \"b\"", "1"};
        size_t cl[] = {6, 1};
        CHECK_EQ_INT(items_emit_csv(it, 0, 2, cells, cl), ITEMS_OK);
        items_shutdown(it, 5000);
    }
    size_t len;
    char *data = slurp(path, &len);
    CHECK_STR(data, "name,n\n\"a, \"\"b\"\"\",1\n\"a, \"\"b\"\"\",1\n");
    free(data);
}

static void test_too_big_and_no_output(void)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/big.jsonl", dir);
    struct items_config c = {.path = path, .nworkers = 1, .ring_bytes = 4096};
    struct items *it = items_new(&c, NULL, err, sizeof err);
    CHECK(it != NULL);
    if (!it)
        return;
    size_t max = items_max_bytes(it);
    char *big = malloc(max + 2);
    memset(big, 'x', max + 1);
    CHECK_EQ_INT(items_emit(it, 0, big, max + 1), ITEMS_TOO_BIG);
    /* larger than the 4 KiB ring, between small ones: all whole, in order */
    for (int i = 0; i < 50; i++) {
        size_t n = i % 5 == 4 ? 100000 + (size_t)i : 10;
        memset(big, 'a' + i % 26, n);
        CHECK_EQ_INT(items_emit(it, 0, big, n), ITEMS_OK);
    }
    CHECK_EQ_INT(items_emit(it, 0, big, max), ITEMS_OK);
    items_finish(it, 5000);
    struct items_counts n;
    items_counts(it, &n);
    CHECK_EQ_INT(n.written, 51);
    size_t len;
    char *data = slurp(path, &len);
    size_t at = 0;
    int same = data != NULL;
    for (int i = 0; same && i < 50; i++) {
        size_t k = i % 5 == 4 ? 100000 + (size_t)i : 10;
        for (size_t j = 0; same && j < k; j++)
            same = at + j < len && data[at + j] == 'a' + i % 26;
        same = same && data[at + k] == '\n';
        at += k + 1;
    }
    CHECK(same);
    CHECK_EQ_INT(len, at + max + 1);
    free(data);
    CHECK_EQ_INT(items_emit(it, 0, "{}", 2), ITEMS_DROPPED); /* after the output closed */
    items_counts(it, &n);
    CHECK_EQ_INT(n.dropped, 1);
    items_shutdown(it, 0);
    free(big);

    struct items_config none = {.nworkers = 1};
    it = items_new(&none, NULL, err, sizeof err);
    CHECK(it != NULL);
    if (!it)
        return;
    CHECK_EQ_INT(items_format(it), ITEMS_NONE);
    CHECK_EQ_INT(items_emit(it, 0, "{}", 2), ITEMS_DISCARDED);
    items_counts(it, &n);
    CHECK_EQ_INT(n.discarded, 1);
    items_shutdown(it, 0);
}

/* A FIFO whose reader never reads: the pipe and the ring fill, the
 * emitter waits for the writer, which sits in its write; past
 * ITEMS_STUCK_MS the emitter drops (and keeps dropping at once while the
 * writer stays stuck). Every item is written, dropped or failed. */
static void test_stuck_reader(void)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/fifo", dir);
    CHECK_EQ_INT(mkfifo(path, 0600), 0);
    int rd = open(path, O_RDONLY | O_NONBLOCK);
    CHECK(rd >= 0);
    struct items_config c = {.path = path, .nworkers = 1, .ring_bytes = 65536};
    struct items *it = items_new(&c, NULL, err, sizeof err);
    CHECK(it != NULL);
    if (!it) {
        close(rd);
        return;
    }
    char buf[1600];
    int ok = 0, dropped = 0, total = 2000;
    double t0 = clock_now(), first_drop = 0, slowest_after = 0;
    for (int i = 0; i < total; i++) {
        double t = clock_now();
        enum items_status st = items_emit(it, 0, buf, item_text(buf, 1, i));
        double took = clock_now() - t;
        if (st == ITEMS_OK) {
            ok++;
        } else {
            CHECK_EQ_INT(st, ITEMS_DROPPED);
            if (!dropped++)
                first_drop = clock_now() - t0;
            else if (took > slowest_after)
                slowest_after = took;
        }
    }
    CHECK(dropped > 0);
    /* waited for the writer first, about ITEMS_STUCK_MS; far less than ITEMS_WAIT_MS */
    CHECK(first_drop >= ITEMS_STUCK_MS / 1000.0 * 0.9);
    CHECK(first_drop < ITEMS_WAIT_MS / 1000.0);
    CHECK(slowest_after < 0.5); /* then no more waiting while it stays stuck */
    items_finish(it, 200);
    struct items_counts n;
    items_counts(it, &n);
    CHECK_EQ_INT(n.dropped, dropped);
    CHECK_EQ_INT(n.written + n.failed, ok);
    CHECK(n.failed > 0);
    items_shutdown(it, 0);
    close(rd);
}

static void test_unwritable(void)
{
    char path[160], err[512];
    snprintf(path, sizeof path, "%s/many.jsonl/below", dir); /* a file, not a directory */
    struct items_config c = {.path = path, .nworkers = 1};
    struct items *it = items_new(&c, NULL, err, sizeof err);
    CHECK(it == NULL);
    CHECK(strstr(err, "cannot open --output ") != NULL && strstr(err, "below") != NULL);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_threads_wrap_and_order();
    test_csv_header_and_append();
    test_too_big_and_no_output();
    test_stuck_reader();
    test_unwritable();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}
