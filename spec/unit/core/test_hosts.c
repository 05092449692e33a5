/* test_hosts.c - per-host rows from the real in-memory queue: each row's
 * figures (started, in flight, waiting, delay, pause), the busiest first,
 * the rest summed into __other__, the group count; for /metrics a sticky
 * named set that promotes the busiest hosts, holds at most HOSTS_NAMED,
 * never names a host that has started nothing, and keeps within the rows
 * it is given. */
#include "check.h"
#include "core/hosts.h"
#include "core/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static queue *new_queue(void)
{
    struct queue_config cfg = {.capacity = 100000, .workers = 1, .seed = 1};
    queue *q = queue_open("memory", &cfg, NULL, 0);
    CHECK(q != NULL);
    return q;
}

/* Pushes `started` jobs of group at now, starts them and acks all but
 * `inflight`; then pushes `waiting` jobs due in a year (waiting, and
 * never taken by a later call). */
static void host(queue *q, const char *group, int started, int inflight, int waiting, double now)
{
    struct queue_push_opts o = {.group = group, .group_len = strlen(group)};
    for (int i = 0; i < started; i++)
        CHECK_EQ_INT(queue_push(q, "{}", 2, &o, now, NULL), QUEUE_OK);
    for (int i = 0; i < started; i++) {
        struct queue_lease l;
        CHECK(queue_take(q, 1, now, &l));
        CHECK_STR(l.group, group);
        if (i >= inflight)
            CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    }
    o.delay = 365 * 86400.0;
    for (int i = 0; i < waiting; i++)
        CHECK_EQ_INT(queue_push(q, "{}", 2, &o, now, NULL), QUEUE_OK);
}

static const struct host_row *row(const struct host_row *rows, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

static void test_rows(void)
{
    queue *q = new_queue();
    struct host_row rows[HOSTS_TOP], other;
    size_t ngroups = 99;
    /* nothing yet: no rows, an empty __other__ */
    CHECK_EQ_INT(hosts_collect(q, 0, NULL, rows, HOSTS_TOP, &other, &ngroups), 0);
    CHECK_EQ_INT(ngroups, 0);
    CHECK_STR(other.name, HOSTS_OTHER);
    CHECK_EQ_INT(other.started, 0);

    host(q, "a.example", 5, 2, 3, 10);
    host(q, "b.example:8080", 9, 0, 0, 10);
    host(q, "[::1]:81", 1, 1, 0, 10);
    /* the empty group (a job with no url) is no host */
    struct queue_push_opts none = {0};
    CHECK_EQ_INT(queue_push(q, "{}", 2, &none, 10, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_group_tune(q, "a.example", 9, 2.5, -1), 0);
    CHECK_EQ_INT(queue_group_pause(q, "b.example:8080", 14, 40), 0);

    int n = hosts_collect(q, 10, NULL, rows, HOSTS_TOP, &other, &ngroups);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(ngroups, 3);
    /* the busiest first */
    CHECK_STR(rows[0].name, "b.example:8080");
    CHECK_STR(rows[1].name, "a.example");
    CHECK_STR(rows[2].name, "[::1]:81");
    CHECK_EQ_INT(rows[1].started, 5);
    CHECK_EQ_INT(rows[1].inflight, 2);
    CHECK_EQ_INT(rows[1].waiting, 3);
    CHECK(rows[1].delay == 2.5);
    CHECK(rows[1].paused == 0);
    CHECK_EQ_INT(rows[0].inflight, 0);
    CHECK(rows[0].paused == 30); /* a pause: seconds until it may start again */
    CHECK(hosts_collect(q, 39, NULL, rows, HOSTS_TOP, &other, &ngroups) == 3 &&
          rows[0].paused == 1);
    CHECK_EQ_INT(other.started, 0);
    CHECK_EQ_INT(other.inflight, 0);
    /* fewer rows than hosts: the rest is __other__, summed */
    n = hosts_collect(q, 10, NULL, rows, 1, &other, &ngroups);
    CHECK_EQ_INT(n, 1);
    CHECK_STR(rows[0].name, "b.example:8080");
    CHECK_EQ_INT(other.started, 6);
    CHECK_EQ_INT(other.inflight, 3);
    CHECK_EQ_INT(other.waiting, 3);
    CHECK_EQ_INT(ngroups, 3);
    queue_free(q);
}

/* A gap between starts is no pause: the row says paused only when the
 * group waits longer than its delay. */
static void test_delay_is_no_pause(void)
{
    queue *q = new_queue();
    CHECK_EQ_INT(queue_group_tune(q, "d.example", 9, 5, -1), 0);
    host(q, "d.example", 1, 0, 1, 100);
    struct host_row rows[2], other;
    size_t ngroups;
    CHECK_EQ_INT(hosts_collect(q, 100, NULL, rows, 2, &other, &ngroups), 1);
    CHECK(rows[0].delay == 5);
    CHECK(rows[0].paused == 0);
    CHECK_EQ_INT(queue_group_pause(q, "d.example", 9, 160), 0);
    CHECK_EQ_INT(hosts_collect(q, 100, NULL, rows, 2, &other, &ngroups), 1);
    CHECK(rows[0].paused == 60);
    queue_free(q);
}

static void test_many_hosts(void)
{
    queue *q = new_queue();
    char name[64];
    long total = 0;
    for (int i = 1; i <= 300; i++) {
        snprintf(name, sizeof name, "h%d.example", i);
        host(q, name, i % 40 + 1, 0, 0, 0);
        total += i % 40 + 1;
    }
    struct host_row rows[HOSTS_TOP], other;
    size_t ngroups;
    int n = hosts_collect(q, 0, NULL, rows, HOSTS_TOP, &other, &ngroups);
    CHECK_EQ_INT(n, HOSTS_TOP);
    CHECK_EQ_INT(ngroups, 300);
    long sum = (long)other.started;
    for (int i = 0; i < n; i++) {
        CHECK_EQ_INT(rows[i].started, i < 7 ? 40 : 39); /* seven hosts started 40 */
        sum += (long)rows[i].started;
    }
    CHECK_EQ_INT(sum, total);
    queue_free(q);
}

static void test_named(void)
{
    queue *q = new_queue();
    struct hosts_named named = {0};
    struct host_row rows[HOSTS_NAMED], other;
    size_t ngroups;
    char name[64];
    /* hosts that started nothing are not named: they would hold series
     * the busy hosts that come later need */
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "idle%d.example", i);
        host(q, name, 0, 0, 2, 0);
    }
    int n = hosts_collect(q, 0, &named, rows, HOSTS_NAMED, &other, &ngroups);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(named.n, 0);
    CHECK_EQ_INT(ngroups, 30);
    CHECK_EQ_INT(other.waiting, 60);

    /* 25 busy hosts: the busiest are named, in that order, whether a call
     * promotes some of them or all it has room for */
    for (int i = 0; i < 25; i++) {
        snprintf(name, sizeof name, "busy%02d.example", i);
        host(q, name, 100 + i, 0, 0, 0);
    }
    n = hosts_collect(q, 0, &named, rows, HOSTS_NAMED, &other, &ngroups);
    CHECK(n >= HOSTS_TOP && n == named.n);
    CHECK_STR(rows[0].name, "busy24.example");
    CHECK_STR(rows[9].name, "busy15.example");
    n = hosts_collect(q, 0, &named, rows, HOSTS_NAMED, &other, &ngroups);
    CHECK_EQ_INT(n, HOSTS_NAMED);
    CHECK_EQ_INT(named.n, HOSTS_NAMED);
    CHECK_STR(rows[10].name, "busy14.example");
    CHECK_STR(rows[19].name, "busy05.example");
    /* full: the named keep their rows, the rest is __other__ */
    host(q, "late.example", 1000, 0, 0, 0);
    n = hosts_collect(q, 0, &named, rows, HOSTS_NAMED, &other, &ngroups);
    CHECK_EQ_INT(n, HOSTS_NAMED);
    CHECK(row(rows, n, "late.example") == NULL);
    CHECK_EQ_INT(other.started, 1000 + 100 + 101 + 102 + 103 + 104);
    CHECK_EQ_INT(other.waiting, 60);
    /* a named host keeps its row at its index, whatever it does now */
    CHECK_STR(rows[0].name, "busy24.example");
    CHECK_EQ_INT(rows[0].started, 124);
    queue_free(q);

    /* fewer rows than named hosts: no row past max is written, and the
     * figures of the named hosts without one go to __other__ */
    q = new_queue();
    struct hosts_named five = {0};
    for (int i = 0; i < 5; i++) {
        snprintf(five.names[i], sizeof five.names[i], "n%d.example", i);
        host(q, five.names[i], 10, 1, 0, 0);
    }
    five.n = 5;
    struct host_row *three = malloc(3 * sizeof *three); /* exactly 3: ASan sees a 4th */
    n = hosts_collect(q, 0, &five, three, 3, &other, &ngroups);
    CHECK_EQ_INT(n, 3);
    CHECK_STR(three[0].name, "n0.example");
    CHECK_EQ_INT(three[2].started, 10);
    CHECK_EQ_INT(other.started, 20);
    CHECK_EQ_INT(other.inflight, 2);
    CHECK_EQ_INT(five.n, 5);
    free(three);
    queue_free(q);
}

/* A group of 255 bytes (QUEUE_GROUP_MAX) is named whole. */
static void test_long_name(void)
{
    queue *q = new_queue();
    char name[QUEUE_GROUP_MAX + 1];
    memset(name, 'x', QUEUE_GROUP_MAX);
    name[QUEUE_GROUP_MAX] = 0;
    host(q, name, 2, 0, 0, 0);
    struct hosts_named named = {0};
    struct host_row rows[HOSTS_NAMED], other;
    size_t ngroups;
    CHECK_EQ_INT(hosts_collect(q, 0, &named, rows, HOSTS_NAMED, &other, &ngroups), 1);
    CHECK_STR(rows[0].name, name);
    CHECK_STR(named.names[0], name);
    CHECK_EQ_INT(hosts_collect(q, 0, &named, rows, HOSTS_NAMED, &other, &ngroups), 1);
    CHECK_EQ_INT(rows[0].started, 2); /* still found by its name */
    CHECK_EQ_INT(other.started, 0);
    queue_free(q);
}

int main(void)
{
    test_rows();
    test_delay_is_no_pause();
    test_many_hosts();
    test_named();
    test_long_name();
    return check_done();
}
