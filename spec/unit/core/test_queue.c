/* test_queue.c - the job queue as workers and the producer rely on it:
 * order, dedup, backpressure, delays, retries, takeover of a worker's leases,
 * drain and close, wakeups, and a threaded run where every accepted job must
 * be acked exactly once. Time is passed in, so single-threaded cases use a
 * fake clock; the threaded case uses the real one with a deadline. */
#include "check.h"
#include "core/dedup.h"
#include "core/queue.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void count_call(void *arg)
{
    (*(int *)arg)++;
}

static queue *new_queue(size_t capacity, int workers)
{
    struct queue_config cfg = {.capacity = capacity, .workers = workers};
    queue *q = queue_open("memory", &cfg, NULL, 0);
    CHECK(q != NULL);
    return q;
}

/* Registers a counter per slot; calls[i] counts notifies of worker i. */
static void count_notifies(queue *q, int *calls, int slots)
{
    for (int i = 0; i < slots; i++) {
        calls[i] = 0;
        queue_set_notify(q, i, count_call, &calls[i]);
    }
}

static int push_str(queue *q, const char *s, const struct queue_push_opts *o, double now,
                    uint64_t *id)
{
    return queue_push(q, s, strlen(s), o, now, id);
}

static int push_key(queue *q, const char *key, double now)
{
    struct queue_push_opts o = {.key = key, .key_len = strlen(key)};
    return push_str(q, key, &o, now, NULL);
}

static struct queue_stats stats(queue *q)
{
    struct queue_stats s;
    queue_get_stats(q, &s);
    return s;
}

static void test_config(void)
{
    struct queue_config zero_cap = {.capacity = 0, .workers = 2};
    struct queue_config neg_workers = {.capacity = 10, .workers = -1};
    char err[128];
    CHECK(queue_open("memory", NULL, err, sizeof err) == NULL);
    CHECK(queue_open("memory", &zero_cap, err, sizeof err) == NULL);
    CHECK(strstr(err, "capacity") != NULL);
    CHECK(queue_open("memory", &neg_workers, NULL, 0) == NULL);
    queue_free(NULL);

    /* The spec picks the backend; a wrong one says which and what there is. */
    struct queue_config ok = {.capacity = 10, .workers = 1};
    CHECK(queue_open("nosuch://127.0.0.1:1/0", &ok, err, sizeof err) == NULL);
    CHECK(strstr(err, "unknown queue backend 'nosuch://127.0.0.1:1/0'") != NULL);
    CHECK(strstr(err, "'memory'") != NULL);
    CHECK(strstr(err, "'redis://'") != NULL);
    CHECK(queue_open("memory:/tmp/x", &ok, err, sizeof err) == NULL);
    CHECK(strstr(err, "memory:/tmp/x") != NULL);
    CHECK(queue_open("memoryx", &ok, err, sizeof err) == NULL);
    const char *same[] = {"memory", "", NULL};
    for (size_t i = 0; i < 3; i++) {
        queue *q = queue_open(same[i], &ok, err, sizeof err);
        CHECK(q != NULL);
        queue_free(q);
    }
}

static void test_fifo(void)
{
    queue *q = new_queue(100, 1);
    char buf[16];
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        snprintf(buf, sizeof buf, "job%d", i);
        CHECK_EQ_INT(push_str(q, buf, NULL, 0, &ids[i]), QUEUE_OK);
    }
    strcpy(buf, "XXXX"); /* the queue holds its own copy */
    CHECK_EQ_INT(ids[0], 1);
    CHECK_EQ_INT(ids[2], 3);

    struct queue_lease l;
    const char *want[] = {"job0", "job1", "job2"};
    uint64_t last_lease = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
        CHECK_EQ_INT(l.len, 4);
        CHECK(memcmp(l.data, want[i], 4) == 0);
        CHECK(l.data[l.len] == '\0');
        CHECK_EQ_INT(l.job_id, ids[i]);
        CHECK_EQ_INT(l.attempt, 1);
        CHECK(l.lease != 0 && l.lease != last_lease);
        last_lease = l.lease;
        CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    }
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 0);

    /* Empty jobs are jobs too. */
    CHECK_EQ_INT(queue_push(q, NULL, 0, NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(l.len, 0);
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    CHECK_EQ_INT(queue_push(q, NULL, 5, NULL, 0, NULL), QUEUE_ERR);
    queue_free(q);
}

static void test_priority(void)
{
    queue *q = new_queue(100, 1);
    struct {
        const char *data;
        int priority;
    } jobs[] = {{"x", 0}, {"y", 5}, {"z", 5}, {"w", -1}, {"v", 0}};
    for (size_t i = 0; i < 5; i++) {
        struct queue_push_opts o = {.priority = jobs[i].priority};
        CHECK_EQ_INT(push_str(q, jobs[i].data, &o, 0, NULL), QUEUE_OK);
    }
    const char *order = "yzxvw";
    struct queue_lease l;
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
        CHECK(l.data[0] == order[i]);
    }
    queue_free(q); /* frees the leases too (ASan would see a leak) */
}

static void test_dedup(void)
{
    queue *q = new_queue(100, 1);
    CHECK_EQ_INT(push_key(q, "https://a/", 0), QUEUE_OK);
    CHECK_EQ_INT(push_key(q, "https://a/", 0), QUEUE_DUP);
    CHECK_EQ_INT(push_key(q, "https://b/", 0), QUEUE_OK);
    /* key_len counts, not the NUL */
    struct queue_push_opts o = {.key = "https://a/x", .key_len = 10};
    CHECK_EQ_INT(push_str(q, "j", &o, 0, NULL), QUEUE_DUP);
    /* no key: never a dup */
    CHECK_EQ_INT(push_str(q, "same", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(push_str(q, "same", NULL, 0, NULL), QUEUE_OK);
    struct queue_stats s = stats(q);
    CHECK_EQ_INT(s.pushed, 4);
    CHECK_EQ_INT(s.dup, 2);
    CHECK_EQ_INT(s.keys, 2);
    CHECK_EQ_INT(s.ready, 4);

    /* A key stays seen after its job is done. */
    struct queue_lease l;
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    CHECK_EQ_INT(push_key(q, "https://a/", 0), QUEUE_DUP);
    queue_free(q);
}

/* The set itself: equal keys hash equal, the seed matters, and every length
 * and byte position reaches the hash. */
static void test_dedup_set(void)
{
    dedup *a = dedup_new(1), *b = dedup_new(1), *c = dedup_new(2);
    CHECK(a && b && c);
    CHECK(dedup_hash(a, "key", 3) == dedup_hash(b, "key", 3));
    CHECK(dedup_hash(a, "key", 3) != dedup_hash(c, "key", 3));
    CHECK(dedup_hash(a, NULL, 0) != 0);

    /* Keys of every length 0..63 and keys differing in one byte at each
     * position: all distinct. */
    char key[64];
    memset(key, 'a', sizeof key);
    int added = 0;
    for (size_t len = 0; len < sizeof key; len++)
        added += dedup_add(a, dedup_hash(a, key, len));
    for (size_t pos = 0; pos < sizeof key; pos++) {
        key[pos] = 'b';
        added += dedup_add(a, dedup_hash(a, key, sizeof key));
        key[pos] = 'a';
    }
    CHECK_EQ_INT(added, 128);
    CHECK_EQ_INT(dedup_add(a, dedup_hash(a, key, 10)), 0);

    /* Through several doublings, earlier keys stay seen at every step, also
     * while they are still being copied to the bigger table. */
    int fresh = 0, seen = 0, has_new = 0, has_old = 0;
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        has_new += dedup_has(c, dedup_hash(c, key, (size_t)n));
        fresh += dedup_add(c, dedup_hash(c, key, (size_t)n)) == 1;
        n = snprintf(key, sizeof key, "k%d", i / 2);
        has_old += dedup_has(c, dedup_hash(c, key, (size_t)n));
        seen += dedup_add(c, dedup_hash(c, key, (size_t)n)) == 0;
        n = snprintf(key, sizeof key, "k%d", i / 7 * 3);
        seen += dedup_add(c, dedup_hash(c, key, (size_t)n)) == 0;
    }
    CHECK_EQ_INT(fresh, 100000);
    CHECK_EQ_INT(seen, 200000);
    /* dedup_has: a key not added is not held; one added is, mid-copy too */
    CHECK_EQ_INT(has_new, 0);
    CHECK_EQ_INT(has_old, 100000);
    CHECK_EQ_INT(dedup_count(c), 100000);
    /* 0 is the empty marker; it is stored as 1 */
    CHECK_EQ_INT(dedup_add(b, 0), 1);
    CHECK_EQ_INT(dedup_add(b, 1), 0);
    dedup_free(a);
    dedup_free(b);
    dedup_free(c);
    dedup_free(NULL);
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* A million distinct keys are all accepted, then all refused; what they cost
 * is reported from the set itself and from malloc's own accounting. */
static void test_million_keys(void)
{
    enum { N = 1000000 };
    char key[48];

    dedup *d = dedup_new(7);
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "https://example.com/page/%d", i);
        dedup_add(d, dedup_hash(d, key, (size_t)n));
    }
    CHECK_EQ_INT(dedup_count(d), N); /* no 64-bit collisions among them */
    double per_key = (double)dedup_bytes(d) / N;
    printf("dedup: %d keys in %zu bytes, %.1f bytes/key\n", N, dedup_bytes(d), per_key);
    CHECK(per_key < 20);
    dedup_free(d);

    queue *q = new_queue(10, 1);
    size_t before = heap_in_use();
    int ok = 0, dup = 0;
    struct queue_lease l;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "https://example.com/page/%d", i);
        ok += push_key(q, key, 0) == QUEUE_OK;
        /* Keep jobs from piling up so the memory left is the keys'. */
        if (queue_take(q, 1, 0, &l))
            queue_ack(q, l.lease);
    }
    size_t after = heap_in_use();
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "https://example.com/page/%d", i);
        dup += push_key(q, key, 0) == QUEUE_DUP;
    }
    CHECK_EQ_INT(ok, N);
    CHECK_EQ_INT(dup, N);
    struct queue_stats s = stats(q);
    CHECK_EQ_INT(s.keys, N);
    CHECK_EQ_INT(s.pushed, N);
    CHECK_EQ_INT(s.dup, N);
    CHECK_EQ_INT(s.acked, N);
    /* Sanitizer runtimes replace malloc and report nothing here. */
    if (after > before) {
        printf("queue: %zu keys, heap grew %zu bytes, %.1f bytes/key\n", s.keys, after - before,
               (double)(after - before) / N);
        CHECK((after - before) / N < 24);
    }
    queue_free(q);
}

static void test_backpressure(void)
{
    int calls[3];
    queue *q = new_queue(10, 2);
    count_notifies(q, calls, 3);
    struct queue_push_opts prod = {.from_producer = 1};
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(push_str(q, "p", &prod, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(push_str(q, "p", &prod, 0, NULL), QUEUE_FULL);
    /* A refused key is not marked seen: the producer pushes it again later. */
    struct queue_push_opts prod_key = {.from_producer = 1, .key = "k", .key_len = 1};
    CHECK_EQ_INT(push_str(q, "p", &prod_key, 0, NULL), QUEUE_FULL);
    CHECK_EQ_INT(stats(q).keys, 0);
    /* Workers' discoveries are never refused. */
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(push_str(q, "w", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(stats(q).ready, 15);
    CHECK_EQ_INT(stats(q).pushed, 15);

    /* Notified once, at the take that leaves fewer than capacity / 2 waiting. */
    struct queue_lease l;
    for (int left = 14; left >= 0; left--) {
        CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
        CHECK_EQ_INT(queue_ack(q, l.lease), 0);
        CHECK_EQ_INT(calls[0], left < 5 ? 1 : 0);
    }
    CHECK_EQ_INT(push_str(q, "p", &prod_key, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(calls[1] + calls[2], 0);

    /* Delayed jobs count toward capacity too. */
    struct queue_push_opts prod_later = {.from_producer = 1, .delay = 30};
    for (int i = 0; i < 9; i++)
        CHECK_EQ_INT(push_str(q, "p", &prod_later, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(push_str(q, "p", &prod, 0, NULL), QUEUE_FULL);
    queue_free(q);

    /* A producer that was never refused is never woken. */
    q = new_queue(4, 1);
    count_notifies(q, calls, 2);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(push_str(q, "p", &prod, 0, NULL), QUEUE_OK);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(calls[0], 0);
    queue_free(q);

    /* capacity 1: "below half" means empty, and it still wakes. */
    q = new_queue(1, 1);
    count_notifies(q, calls, 2);
    CHECK_EQ_INT(push_str(q, "p", &prod, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(push_str(q, "p", &prod, 0, NULL), QUEUE_FULL);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(calls[0], 1);
    queue_free(q);
}

static void test_delayed(void)
{
    int calls[2];
    queue *q = new_queue(100, 1);
    count_notifies(q, calls, 2);
    struct queue_lease l;
    CHECK_EQ_INT(queue_take(q, 1, 100, &l), 0); /* worker 1 is hungry */
    CHECK(queue_next_due(q) == 0);

    struct queue_push_opts in5 = {.delay = 5}, in2 = {.delay = 2};
    uint64_t a, b;
    CHECK_EQ_INT(push_str(q, "a", &in5, 100, &a), QUEUE_OK);
    CHECK_EQ_INT(push_str(q, "b", &in2, 100, &b), QUEUE_OK);
    CHECK_EQ_INT(calls[1], 0); /* delayed jobs wake nobody */
    CHECK(queue_next_due(q) == 102);
    CHECK_EQ_INT(stats(q).delayed, 2);

    CHECK_EQ_INT(queue_take(q, 1, 101.999, &l), 0);
    CHECK_EQ_INT(queue_take(q, 1, 102, &l), 1);
    CHECK_EQ_INT(l.job_id, b);
    CHECK(queue_next_due(q) == 105);
    CHECK_EQ_INT(queue_take(q, 1, 104.999, &l), 0);
    CHECK_EQ_INT(queue_take(q, 1, 105, &l), 1);
    CHECK_EQ_INT(l.job_id, a);
    CHECK(queue_next_due(q) == 0);
    CHECK_EQ_INT(stats(q).delayed, 0);

    /* A due job competes by priority with jobs already ready. */
    struct queue_push_opts urgent_later = {.delay = 1, .priority = 9};
    CHECK_EQ_INT(push_str(q, "low", NULL, 200, NULL), QUEUE_OK);
    CHECK_EQ_INT(push_str(q, "urgent", &urgent_later, 200, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_take(q, 1, 201, &l), 1);
    CHECK_STR(l.data, "urgent");
    queue_free(q);
}

static void test_retry(void)
{
    queue *q = new_queue(100, 2);
    struct queue_lease l, l2;
    uint64_t id;
    CHECK_EQ_INT(push_str(q, "job", NULL, 10, &id), QUEUE_OK);
    CHECK_EQ_INT(queue_take(q, 1, 10, &l), 1);
    CHECK_EQ_INT(queue_retry(q, l.lease, 2, 10), 0);
    struct queue_stats s = stats(q);
    CHECK_EQ_INT(s.delayed, 1);
    CHECK_EQ_INT(s.leased, 0);
    CHECK_EQ_INT(s.retried, 1);
    CHECK_EQ_INT(s.pushed, 1); /* a retry is not a new job */

    CHECK_EQ_INT(queue_take(q, 2, 11.9, &l2), 0);
    CHECK_EQ_INT(queue_take(q, 2, 12, &l2), 1);
    CHECK_EQ_INT(l2.job_id, id);
    CHECK_EQ_INT(l2.attempt, 2);
    CHECK(l2.lease != l.lease);
    CHECK_STR(l2.data, "job");

    /* The first worker's lease is stale: nothing it does counts. */
    CHECK_EQ_INT(queue_retry(q, l.lease, 0, 12), -1);
    CHECK_EQ_INT(queue_ack(q, l.lease), -1);
    CHECK_EQ_INT(queue_ack(q, 0), -1);
    CHECK_EQ_INT(queue_ack(q, 987654321), -1);
    s = stats(q);
    CHECK_EQ_INT(s.retried, 1);
    CHECK_EQ_INT(s.acked, 0);
    CHECK_EQ_INT(s.leased, 1);

    /* A retry with no delay is ready at once, behind jobs already waiting. */
    CHECK_EQ_INT(push_str(q, "other", NULL, 12, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_retry(q, l2.lease, 0, 12), 0);
    CHECK_EQ_INT(queue_take(q, 1, 12, &l), 1);
    CHECK_STR(l.data, "other");
    CHECK_EQ_INT(queue_take(q, 1, 12, &l2), 1);
    CHECK_EQ_INT(l2.attempt, 3);
    CHECK_EQ_INT(queue_ack(q, l2.lease), 0);
    CHECK_EQ_INT(queue_ack(q, l2.lease), -1); /* acked twice: the second is ignored */
    s = stats(q);
    CHECK_EQ_INT(s.acked, 1);
    CHECK_EQ_INT(s.retried, 2);
    queue_free(q);
}

static void test_release_worker(void)
{
    int calls[3];
    queue *q = new_queue(100, 2);
    count_notifies(q, calls, 3);
    struct queue_lease held[3], l;
    for (int i = 0; i < 4; i++) {
        char buf[4] = {(char)('a' + i), 0};
        CHECK_EQ_INT(push_str(q, buf, NULL, 0, NULL), QUEUE_OK);
    }
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(queue_take(q, 1, 0, &held[i]), 1);
    CHECK_EQ_INT(queue_take(q, 2, 0, &l), 1); /* "d", worker 2's */
    /* "e" is newer than a-d; delayed so that worker 2 can be hungry meanwhile */
    struct queue_push_opts in1 = {.delay = 1};
    CHECK_EQ_INT(push_str(q, "e", &in1, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_take(q, 2, 0, &l), 0); /* worker 2 is hungry */
    CHECK_EQ_INT(queue_take(q, 2, 0, &l), 0); /* still once in line */

    /* Worker 1 is wedged on "b": everything else it holds goes back. */
    CHECK_EQ_INT(queue_release_worker(q, 1, held[1].lease), 2);
    CHECK_EQ_INT(calls[2], 1);
    CHECK_EQ_INT(calls[1], 0);
    struct queue_stats s = stats(q);
    CHECK_EQ_INT(s.ready, 2);
    CHECK_EQ_INT(s.leased, 2);
    CHECK_EQ_INT(queue_ack(q, held[0].lease), -1);
    CHECK_EQ_INT(queue_retry(q, held[2].lease, 0, 0), -1);
    CHECK_EQ_INT(queue_ack(q, held[1].lease), 0);

    /* Taken over in their old places, ahead of "e" pushed after them; same
     * ids, same attempt. */
    CHECK_EQ_INT(queue_take(q, 2, 1, &l), 1);
    CHECK_EQ_INT(l.job_id, held[0].job_id);
    CHECK_EQ_INT(l.attempt, 1);
    CHECK_STR(l.data, "a");
    CHECK_EQ_INT(queue_take(q, 2, 1, &l), 1);
    CHECK_EQ_INT(l.job_id, held[2].job_id);
    CHECK_EQ_INT(queue_take(q, 2, 1, &l), 1);
    CHECK_STR(l.data, "e");

    /* Nothing left to release; a worker that holds nothing releases nothing. */
    CHECK_EQ_INT(queue_release_worker(q, 1, 0), 0);
    CHECK_EQ_INT(queue_release_worker(q, 2, 0), 4);
    CHECK_EQ_INT(queue_release_worker(q, 99, 0), 0);
    CHECK_EQ_INT(stats(q).leased, 0);
    CHECK_EQ_INT(stats(q).ready, 4);
    queue_free(q);
}

static void test_drained(void)
{
    int calls[3];
    queue *q = new_queue(100, 2);
    count_notifies(q, calls, 3);
    struct queue_lease a, b;
    CHECK_EQ_INT(push_str(q, "a", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(push_str(q, "b", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_take(q, 1, 0, &a), 1);
    CHECK_EQ_INT(queue_take(q, 2, 0, &b), 1);
    CHECK_EQ_INT(queue_ack(q, a.lease), 0);
    CHECK_EQ_INT(queue_drained(q), 0); /* producer not done */
    queue_producer_done(q);
    CHECK_EQ_INT(queue_drained(q), 0); /* b still leased */
    CHECK_EQ_INT(calls[0] + calls[1] + calls[2], 0);

    /* A retry keeps it undrained, even delayed. */
    CHECK_EQ_INT(queue_retry(q, b.lease, 5, 0), 0);
    CHECK_EQ_INT(queue_drained(q), 0);
    CHECK_EQ_INT(queue_take(q, 2, 5, &b), 1);
    CHECK_EQ_INT(queue_drained(q), 0);
    CHECK_EQ_INT(calls[0] + calls[1] + calls[2], 0);

    /* Workers may still discover jobs after the producer is done. */
    struct queue_lease c;
    CHECK_EQ_INT(push_str(q, "c", NULL, 5, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_ack(q, b.lease), 0);
    CHECK_EQ_INT(queue_drained(q), 0);
    CHECK_EQ_INT(queue_take(q, 1, 5, &c), 1);
    CHECK_EQ_INT(queue_ack(q, c.lease), 0);
    CHECK_EQ_INT(queue_drained(q), 1);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(calls[i], 1); /* everyone, the producer included, once */
    /* Once per drain: asking again, or the producer saying it twice, wakes nobody. */
    CHECK_EQ_INT(queue_drained(q), 1);
    queue_producer_done(q);
    CHECK_EQ_INT(queue_ack(q, c.lease), -1);
    CHECK_EQ_INT(calls[0], 1);
    CHECK_EQ_INT(calls[1], 1);
    queue_free(q);

    /* Done with nothing pushed: drained at once. */
    q = new_queue(100, 2);
    count_notifies(q, calls, 3);
    queue_producer_done(q);
    CHECK_EQ_INT(queue_drained(q), 1);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(calls[i], 1);
    queue_free(q);
}

static void test_close(void)
{
    int calls[3];
    queue *q = new_queue(100, 2);
    count_notifies(q, calls, 3);
    struct queue_lease l, l2;
    CHECK_EQ_INT(push_str(q, "a", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(push_str(q, "b", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l2), 1);
    CHECK_EQ_INT(push_str(q, "c", NULL, 0, NULL), QUEUE_OK);

    queue_close(q); /* l2 is never acked: queue_free still frees it */
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(calls[i], 1);
    CHECK_EQ_INT(push_key(q, "k", 0), QUEUE_CLOSED);
    CHECK_EQ_INT(stats(q).keys, 0);
    CHECK_EQ_INT(queue_take(q, 2, 0, &l2), 0); /* "c" is ready but not handed out */
    CHECK_EQ_INT(stats(q).ready, 1);

    /* In-flight jobs still finish and are counted. */
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    CHECK_EQ_INT(stats(q).acked, 1);
    queue_free(q);

    q = new_queue(100, 2);
    count_notifies(q, calls, 3);
    CHECK_EQ_INT(push_str(q, "a", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(queue_take(q, 2, 0, &l2), 0); /* worker 2 hungry */
    queue_close(q);
    CHECK_EQ_INT(queue_retry(q, l.lease, 0, 0), 0);
    struct queue_stats s = stats(q);
    CHECK_EQ_INT(s.retried, 1);
    CHECK_EQ_INT(s.leased, 0);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 0); /* recorded, not re-run */
    CHECK_EQ_INT(calls[2], 1);                /* the close, not the retry */
    queue_close(q);                           /* twice: no second round of wakeups */
    CHECK_EQ_INT(calls[0], 1);
    queue_free(q);
}

static void test_hungry(void)
{
    int calls[4];
    queue *q = new_queue(100, 3);
    count_notifies(q, calls, 4);
    struct queue_lease l;

    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 0);
    CHECK_EQ_INT(push_str(q, "a", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(calls[1], 1);
    CHECK_EQ_INT(push_str(q, "b", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(calls[1], 1); /* woken once, not per push */
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);

    /* One push, one worker: the one that has waited longest. A worker that
     * asks twice keeps its place and is not woken twice. */
    CHECK_EQ_INT(queue_take(q, 2, 0, &l), 0);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 0);
    CHECK_EQ_INT(queue_take(q, 2, 0, &l), 0);
    CHECK_EQ_INT(push_str(q, "c", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(calls[2], 1);
    CHECK_EQ_INT(calls[1], 1);
    CHECK_EQ_INT(push_str(q, "d", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(calls[1], 2);
    CHECK_EQ_INT(calls[2], 1);
    CHECK_EQ_INT(push_str(q, "e", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(calls[1] + calls[2] + calls[3], 3);
    CHECK_EQ_INT(calls[0], 0);

    /* A retry that is ready at once wakes a hungry worker; a delayed one does not. */
    struct queue_lease held[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(queue_take(q, 1, 0, &held[i]), 1);
    CHECK_EQ_INT(queue_take(q, 3, 0, &l), 0);
    CHECK_EQ_INT(queue_retry(q, held[0].lease, 1, 0), 0);
    CHECK_EQ_INT(calls[3], 0);
    CHECK_EQ_INT(queue_retry(q, held[1].lease, 0, 0), 0);
    CHECK_EQ_INT(calls[3], 1);

    /* A worker that finds work on its own is no longer hungry. */
    CHECK_EQ_INT(queue_take(q, 3, 0, &l), 1);
    CHECK_EQ_INT(queue_take(q, 2, 0, &l), 0);
    CHECK_EQ_INT(queue_take(q, 2, 1, &l), 1); /* the delayed retry, due now */
    CHECK_EQ_INT(push_str(q, "f", NULL, 1, NULL), QUEUE_OK);
    CHECK_EQ_INT(calls[2], 1);
    queue_free(q);
}

/* A notify that calls back into the queue must not deadlock: callbacks run
 * outside the lock. */
struct reentrant {
    queue *q;
    int calls;
    struct queue_stats seen;
};

static void reenter(void *arg)
{
    struct reentrant *r = arg;
    r->calls++;
    queue_get_stats(r->q, &r->seen);
}

static void test_notify_outside_lock(void)
{
    queue *q = new_queue(100, 1);
    struct reentrant r = {q, 0, {0}};
    queue_set_notify(q, 0, reenter, &r);
    queue_set_notify(q, 1, reenter, &r);
    struct queue_lease l;
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 0);
    CHECK_EQ_INT(push_str(q, "a", NULL, 0, NULL), QUEUE_OK);
    CHECK_EQ_INT(r.calls, 1);
    CHECK_EQ_INT(r.seen.ready, 1);
    CHECK_EQ_INT(queue_take(q, 1, 0, &l), 1);
    queue_producer_done(q);
    CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    CHECK_EQ_INT(r.calls, 3);
    queue_close(q);
    CHECK_EQ_INT(r.calls, 5);
    queue_free(q);
}

/* The threaded run. Thread 0 is the producer (backpressure applies), threads
 * 1-3 push like workers discovering links. One key in five is shared by all
 * four, so three of every four pushes of it must be dups. Workers retry some
 * jobs, and now and then grab a second job and hand it back through
 * release_worker. Every wait is on a notify, bounded by the deadline only as
 * a failure: a lost wakeup shows as a timeout, not as a slow pass. */
#define PUSHERS 4
#define WORKERS 4
#define PER_PUSHER 50000
#define TOTAL (PUSHERS * PER_PUSHER)
#define SHARED_EVERY 5
#define CAPACITY 1000

struct waiter {
    pthread_mutex_t m;
    pthread_cond_t c;
    int signaled;
};

struct stress {
    queue *q;
    double deadline;
    atomic_int timed_out;
    struct waiter w[WORKERS + 1];
    /* Workers start once the producer has been refused, so backpressure is
     * exercised however fast the machine's workers are. */
    pthread_mutex_t go_lock;
    pthread_cond_t go_cond;
    int go;
    atomic_int *acks; /* acks[job_id]: times acked */
    atomic_long accepted, dups, retries, releases, stale_ok, bad_data, full;
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void waiter_init(struct waiter *w)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->m, NULL);
    pthread_cond_init(&w->c, &a);
    pthread_condattr_destroy(&a);
    w->signaled = 0;
}

static void waiter_notify(void *arg)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->m);
    w->signaled = 1;
    pthread_cond_signal(&w->c);
    pthread_mutex_unlock(&w->m);
}

/* Waits for a notify or until `until` (monotonic seconds). A notify that came
 * before the wait is not lost. */
static void waiter_wait(struct waiter *w, double until)
{
    struct timespec ts;
    ts.tv_sec = (time_t)until;
    ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
    pthread_mutex_lock(&w->m);
    while (!w->signaled && pthread_cond_timedwait(&w->c, &w->m, &ts) == 0)
        ;
    w->signaled = 0;
    pthread_mutex_unlock(&w->m);
}

static void start_workers(struct stress *st)
{
    pthread_mutex_lock(&st->go_lock);
    st->go = 1;
    pthread_cond_broadcast(&st->go_cond);
    pthread_mutex_unlock(&st->go_lock);
}

static void give_up(struct stress *st)
{
    if (!atomic_exchange(&st->timed_out, 1))
        fprintf(stderr, "stress: deadline passed, closing the queue\n");
    queue_close(st->q);
    start_workers(st);
}

struct pusher_arg {
    struct stress *st;
    int id;
};

static void *pusher(void *arg)
{
    struct pusher_arg *pa = arg;
    struct stress *st = pa->st;
    char key[32], data[32];
    for (int i = 0; i < PER_PUSHER; i++) {
        int kn = i % SHARED_EVERY == 0 ? snprintf(key, sizeof key, "shared-%d", i)
                                       : snprintf(key, sizeof key, "t%d-%d", pa->id, i);
        int dn = snprintf(data, sizeof data, "job %d %d", pa->id, i);
        struct queue_push_opts o = {
            .key = key, .key_len = (size_t)kn, .from_producer = pa->id == 0};
        int r;
        while ((r = queue_push(st->q, data, (size_t)dn, &o, mono(), NULL)) == QUEUE_FULL) {
            atomic_fetch_add(&st->full, 1);
            start_workers(st);
            if (mono() > st->deadline) {
                give_up(st);
                return NULL;
            }
            waiter_wait(&st->w[0], st->deadline);
        }
        if (r == QUEUE_OK)
            atomic_fetch_add(&st->accepted, 1);
        else if (r == QUEUE_DUP)
            atomic_fetch_add(&st->dups, 1);
        else
            return NULL; /* closed after a timeout */
    }
    return NULL;
}

static int data_ok(const struct queue_lease *l)
{
    int t, i, n = 0;
    return l->data[l->len] == '\0' && sscanf(l->data, "job %d %d%n", &t, &i, &n) == 2 &&
           (size_t)n == l->len && t >= 0 && t < PUSHERS && i >= 0 && i < PER_PUSHER;
}

static void finish(struct stress *st, const struct queue_lease *l)
{
    if (queue_ack(st->q, l->lease) == 0 && l->job_id >= 1 && l->job_id <= TOTAL)
        atomic_fetch_add(&st->acks[l->job_id], 1);
}

static void handle(struct stress *st, int self, const struct queue_lease *l)
{
    if (!data_ok(l))
        atomic_fetch_add(&st->bad_data, 1);
    if (l->job_id % 7 == 0 && l->attempt < 3) {
        /* first retry at once, the second after 2 ms */
        if (queue_retry(st->q, l->lease, l->attempt == 1 ? 0 : 0.002, mono()) == 0)
            atomic_fetch_add(&st->retries, 1);
        return;
    }
    struct queue_lease extra;
    if (l->job_id % 101 == 0 && queue_take(st->q, self, mono(), &extra)) {
        if (queue_release_worker(st->q, self, l->lease) == 1)
            atomic_fetch_add(&st->releases, 1);
        if (queue_ack(st->q, extra.lease) == 0)
            atomic_fetch_add(&st->stale_ok, 1); /* must stay 0 */
    }
    finish(st, l);
}

struct worker_arg {
    struct stress *st;
    int id;
};

static void *worker(void *arg)
{
    struct worker_arg *wa = arg;
    struct stress *st = wa->st;
    struct queue_lease l;
    pthread_mutex_lock(&st->go_lock);
    while (!st->go)
        pthread_cond_wait(&st->go_cond, &st->go_lock);
    pthread_mutex_unlock(&st->go_lock);
    while (!atomic_load(&st->timed_out)) {
        if (mono() > st->deadline) {
            give_up(st);
            break;
        }
        if (queue_take(st->q, wa->id, mono(), &l)) {
            handle(st, wa->id, &l);
            continue;
        }
        if (queue_drained(st->q))
            break;
        double due = queue_next_due(st->q);
        waiter_wait(&st->w[wa->id], due > 0 && due < st->deadline ? due : st->deadline);
    }
    return NULL;
}

static void test_threads(void)
{
    static struct stress st;
    st.q = new_queue(CAPACITY, WORKERS);
    st.deadline = mono() + 90;
    st.acks = calloc(TOTAL + 1, sizeof *st.acks);
    CHECK(st.acks != NULL);
    pthread_mutex_init(&st.go_lock, NULL);
    pthread_cond_init(&st.go_cond, NULL);
    for (int i = 0; i <= WORKERS; i++) {
        waiter_init(&st.w[i]);
        queue_set_notify(st.q, i, waiter_notify, &st.w[i]);
    }

    pthread_t wt[WORKERS], pt[PUSHERS];
    struct worker_arg wa[WORKERS];
    struct pusher_arg pa[PUSHERS];
    double t0 = mono();
    for (int i = 0; i < WORKERS; i++) {
        wa[i] = (struct worker_arg){&st, i + 1};
        pthread_create(&wt[i], NULL, worker, &wa[i]);
    }
    for (int i = 0; i < PUSHERS; i++) {
        pa[i] = (struct pusher_arg){&st, i};
        pthread_create(&pt[i], NULL, pusher, &pa[i]);
    }
    for (int i = 0; i < PUSHERS; i++)
        pthread_join(pt[i], NULL);
    start_workers(&st); /* if the producer was never refused, let the run end */
    queue_producer_done(st.q);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(wt[i], NULL);
    double took = mono() - t0;

    CHECK(!atomic_load(&st.timed_out));
    struct queue_stats s = stats(st.q);
    long shared_keys = PER_PUSHER / SHARED_EVERY;
    CHECK_EQ_INT(atomic_load(&st.accepted), TOTAL - (PUSHERS - 1) * shared_keys);
    CHECK_EQ_INT(atomic_load(&st.dups), (PUSHERS - 1) * shared_keys);
    CHECK_EQ_INT(s.pushed, atomic_load(&st.accepted));
    CHECK_EQ_INT(s.dup, atomic_load(&st.dups));
    CHECK_EQ_INT(s.acked, s.pushed);
    CHECK_EQ_INT(s.retried, atomic_load(&st.retries));
    CHECK_EQ_INT(s.ready + s.delayed + s.leased, 0);
    CHECK_EQ_INT(s.keys, s.pushed);
    CHECK_EQ_INT(atomic_load(&st.stale_ok), 0);
    CHECK_EQ_INT(atomic_load(&st.bad_data), 0);
    CHECK(queue_drained(st.q));

    long once = 0, wrong = 0;
    for (uint64_t id = 1; id <= TOTAL; id++) {
        int n = atomic_load(&st.acks[id]);
        if (id <= s.pushed)
            n == 1 ? once++ : wrong++;
        else
            wrong += n != 0;
    }
    CHECK_EQ_INT(once, (long)s.pushed);
    CHECK_EQ_INT(wrong, 0);
    /* The run must have exercised what it claims to. */
    CHECK(atomic_load(&st.retries) > 0);
    CHECK(atomic_load(&st.releases) > 0);
    CHECK(atomic_load(&st.full) > 0);
    printf("threads: %llu jobs, %ld retries, %ld releases, %ld producer waits in %.2fs\n",
           (unsigned long long)s.pushed, atomic_load(&st.retries), atomic_load(&st.releases),
           atomic_load(&st.full), took);

    queue_free(st.q);
    free(st.acks);
}

int main(void)
{
    test_config();
    test_fifo();
    test_priority();
    test_dedup();
    test_dedup_set();
    test_million_keys();
    test_backpressure();
    test_delayed();
    test_retry();
    test_release_worker();
    test_drained();
    test_close();
    test_hungry();
    test_notify_outside_lock();
    test_threads();
    return check_done();
}
