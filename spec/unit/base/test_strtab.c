/* test_strtab.c - the string table behind origins, groups and hosts:
 * a key finds its record, make adds a zeroed one, records never move as
 * the table grows, keys are bytes (empty, NUL inside, huge), drop sees
 * every record once, and the seed, not the keys alone, decides where a
 * key lands. */
#include "base/strtab.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec {
    long n;
    char pad[40]; /* a record bigger than a pointer, not a multiple of 16 */
};

static void *get(struct strtab *t, const char *key, int make)
{
    return strtab_get(t, key, strlen(key), make);
}

static void test_get_make(void)
{
    struct strtab t;
    CHECK_EQ_INT(strtab_init(&t, sizeof(struct rec)), 0);
    CHECK(get(&t, "a", 0) == NULL);
    CHECK_EQ_INT(t.used, 0); /* asking does not add */
    struct rec *a = get(&t, "a", 1);
    CHECK(a != NULL);
    CHECK_EQ_INT(a->n, 0); /* a new record is zeroed */
    for (size_t i = 0; i < sizeof a->pad; i++)
        CHECK(a->pad[i] == 0);
    a->n = 7;
    CHECK(get(&t, "a", 0) == a);
    CHECK(get(&t, "a", 1) == a); /* make finds the one there */
    CHECK_EQ_INT(t.used, 1);
    /* keys are compared as bytes, case and length included */
    CHECK(get(&t, "A", 0) == NULL);
    CHECK(get(&t, "ab", 0) == NULL);
    CHECK(strtab_get(&t, "ab", 1, 0) == a);

    /* the empty key is a key like any other */
    struct rec *e = strtab_get(&t, "", 0, 1);
    CHECK(e != NULL && e != a);
    CHECK(strtab_get(&t, "", 0, 0) == e);
    /* a NUL inside a key is a byte of it */
    struct rec *z1 = strtab_get(&t, "x\0y", 3, 1), *z2 = strtab_get(&t, "x\0z", 3, 1);
    CHECK(z1 && z2 && z1 != z2);
    CHECK(strtab_get(&t, "x", 1, 0) == NULL);
    CHECK_EQ_INT(t.used, 4);
    strtab_free(&t, NULL);
    CHECK(t.cells == NULL);
    strtab_free(&t, NULL); /* twice is harmless */
}

static int dropped;
static void drop(void *value)
{
    struct rec *r = value;
    CHECK_EQ_INT(r->n, 1);
    r->n = 2; /* a second drop of the same record would fail the check above */
    dropped++;
}

struct seen {
    int count;
    long sum;
    int bad;
};

static void visit(void *arg, const char *key, size_t len, void *value)
{
    struct seen *s = arg;
    const struct rec *r = value;
    s->count++;
    s->sum += r->n;
    /* the key handed back is the record's, NUL-terminated */
    char want[32];
    snprintf(want, sizeof want, "key-%ld", r->n);
    if (len != strlen(want) || memcmp(key, want, len) != 0 || key[len] != 0)
        s->bad++;
}

/* Growth from 16 cells to 2^17: every record stays where it was made,
 * and each is found, visited and dropped exactly once. */
static void test_growth(void)
{
    enum { N = 50000 };
    struct strtab t;
    CHECK_EQ_INT(strtab_init(&t, sizeof(struct rec)), 0);
    struct rec **at = malloc(N * sizeof *at);
    char key[32];
    long want = 0;
    for (long i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key-%ld", i);
        at[i] = get(&t, key, 1);
        at[i]->n = i;
        want += i;
    }
    CHECK_EQ_INT(t.used, N);
    CHECK(t.cap >= 2 * (size_t)N); /* grown at half full */
    int moved = 0, lost = 0;
    for (long i = 0; i < N; i++) {
        snprintf(key, sizeof key, "key-%ld", i);
        struct rec *r = get(&t, key, 0);
        moved += r != at[i];
        lost += !r || r->n != i;
    }
    CHECK_EQ_INT(moved, 0);
    CHECK_EQ_INT(lost, 0);
    struct seen s = {0};
    strtab_each(&t, visit, &s);
    CHECK_EQ_INT(s.count, N);
    CHECK_EQ_INT(s.sum, want);
    CHECK_EQ_INT(s.bad, 0);
    for (long i = 0; i < N; i++)
        at[i]->n = 1;
    dropped = 0;
    strtab_free(&t, drop);
    CHECK_EQ_INT(dropped, N);
    free(at);
}

/* A key of a megabyte is copied whole: a key that differs in its last
 * byte is another key. */
static void test_huge_key(void)
{
    size_t n = 1 << 20;
    char *k = malloc(n);
    memset(k, 'h', n);
    struct strtab t;
    CHECK_EQ_INT(strtab_init(&t, sizeof(struct rec)), 0);
    struct rec *r = strtab_get(&t, k, n, 1);
    CHECK(r != NULL);
    k[n - 1] = 'i';
    CHECK(strtab_get(&t, k, n, 0) == NULL);
    k[n - 1] = 'h';
    CHECK(strtab_get(&t, k, n, 0) == r);
    memset(k, 0, n); /* the table holds its own copy */
    CHECK(strtab_get(&t, k, n, 0) == NULL);
    strtab_free(&t, NULL);
    free(k);
}

struct order {
    char keys[64][8];
    int n;
};

static void record(void *arg, const char *key, size_t len, void *value)
{
    (void)value;
    struct order *o = arg;
    if (o->n < 64 && len < 8)
        memcpy(o->keys[o->n++], key, len + 1);
}

/* The order of strtab_each is the order of the cells; 40 keys in 128
 * cells under seed. */
static void cells_order(uint64_t seed, struct order *o)
{
    struct strtab t;
    CHECK_EQ_INT(strtab_init(&t, 8), 0);
    t.seed = seed;
    char key[8];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "h%d", i);
        get(&t, key, 1);
    }
    memset(o, 0, sizeof *o);
    strtab_each(&t, record, o);
    CHECK_EQ_INT(o->n, 40);
    strtab_free(&t, NULL);
}

/* Keys a hostile page chooses must not land where they did in another
 * run: every bit of the seed moves the keys, not only its low ones. */
static void test_seed(void)
{
    struct strtab a, b;
    CHECK_EQ_INT(strtab_init(&a, 8), 0);
    CHECK_EQ_INT(strtab_init(&b, 8), 0);
    CHECK(a.seed != b.seed); /* two tables, two seeds */
    strtab_free(&a, NULL);
    strtab_free(&b, NULL);

    struct order base, other;
    cells_order(0x1234567890abcdefull, &base);
    int same = 0;
    for (int bit = 0; bit < 64; bit++) {
        cells_order(0x1234567890abcdefull ^ (1ull << bit), &other);
        if (memcmp(&base, &other, sizeof base) == 0) {
            fprintf(stderr, "seed bit %d does not move any of 40 keys\n", bit);
            same++;
        }
    }
    CHECK_EQ_INT(same, 0);
}

int main(void)
{
    test_get_make();
    test_growth();
    test_huge_key();
    test_seed();
    return check_done();
}
