/* test_queue_redis.c - the Redis queue backend (core/queue_redis.c) against
 * a real redis-server this test starts on a free port: the contract every
 * backend keeps (queue_contract.h), then what only a shared store does:
 * two queues on one prefix share jobs, keys and per-group limits; a process
 * holds no more leases than it runs jobs at once; a host's slots pass
 * from job to job through reserve leases, within the limit, and come back
 * right when their process dies; a dead
 * process's lease comes back after its TTL; roles; the producer's
 * position; items kept with their ack and drained to a file once; Redis
 * killed and restarted with results held and replayed; AUTH and ACL users;
 * a prefix holding a run of another layout refused at open.
 *
 * A "process" here is a queue with an instance id of its own; a dead one
 * is a forked child that leaves with _exit, so nothing of it says goodbye. */
#include "check.h"
#include "queue_contract.h"

#include "base/clock.h"
#include "core/queue_redis.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REDIS_SERVER "/usr/bin/redis-server"

struct server {
    pid_t pid;
    int port;
    char dir[64];
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static redisContext *connect_to(int port, const char *pass)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    if (pass) {
        redisReply *r = redisCommand(c, "AUTH %s", pass);
        if (r)
            freeReplyObject(r);
    }
    return c;
}

/* Starts redis-server on s->port in s->dir with extra "--name value"
 * arguments; waits (up to 10 s) until it answers PING. 0 or -1. */
static int server_start(struct server *s, const char *const *extra)
{
    const char *argv[32];
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    int n = 0;
    argv[n++] = REDIS_SERVER;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--dir";
    argv[n++] = s->dir;
    argv[n++] = "--save";
    argv[n++] = "";
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execv(REDIS_SERVER, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    double deadline = clock_now() + 10;
    while (clock_now() < deadline) {
        redisContext *c = connect_to(s->port, NULL);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            /* NOAUTH also says it is up */
            int up = r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR);
            if (r)
                freeReplyObject(r);
            redisFree(c);
            if (up)
                return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        pause_ms(20);
    }
    return -1;
}

static void server_kill(struct server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static int server_new(struct server *s, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/shoal-redis-XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    s->port = free_port();
    return s->port > 0 ? server_start(s, extra) : -1;
}

static void server_gone(struct server *s)
{
    server_kill(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s->dir);
}

static struct server srv;

static queue *open_url(const char *url, const char *instance, double ttl, int workers)
{
    struct queue_config cfg = {
        .capacity = 1000, .workers = workers, .instance = instance, .lease_ttl = ttl};
    char err[512];
    queue *q = queue_open(url, &cfg, err, sizeof err);
    if (!q)
        fprintf(stderr, "queue_open(%s): %s\n", url, err);
    return q;
}

static void url_of(char *buf, size_t len, const char *prefix)
{
    snprintf(buf, len, "redis://127.0.0.1:%d/0?prefix=%s", srv.port, prefix);
}

/* Each contract queue on a prefix of its own: an empty queue. */
static queue *contract_open(void *arg, const struct queue_config *cfg)
{
    static int n;
    char url[128], prefix[32], err[512];
    snprintf(prefix, sizeof prefix, "contract%d", ++n);
    url_of(url, sizeof url, prefix);
    (void)arg;
    queue *q = queue_open(url, cfg, err, sizeof err);
    if (!q)
        fprintf(stderr, "queue_open(%s): %s\n", url, err);
    return q;
}

static int push_job(queue *q, const char *data, const char *key, const char *group, int producer)
{
    struct queue_push_opts o = {.key = key,
                                .key_len = key ? strlen(key) : 0,
                                .group = group,
                                .group_len = group ? strlen(group) : 0,
                                .from_producer = producer};
    return queue_push(q, data, strlen(data), &o, clock_now(), NULL);
}

static int take_is(queue *q, const char *want, struct queue_lease *l)
{
    if (queue_take(q, 1, clock_now(), l) != 1)
        return 0;
    return l->len == strlen(want) && memcmp(l->data, want, l->len) == 0;
}

/* The background thread notifies too: count with an atomic. */
static void count_atomic(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Two processes on one prefix: one store of jobs, keys and limits. */
static void test_shared(void)
{
    char url[128];
    url_of(url, sizeof url, "shared");
    atomic_int calls = 0;
    queue *a = open_url(url, "a", 0, 1), *b = open_url(url, "b", 0, 1);
    CHECK(a && b);
    if (!a || !b)
        goto out;
    queue_set_notify(b, 1, count_atomic, &calls);
    /* a worker's push is answered before it reaches the store: one on a
     * key another process pushed is dropped there, and counted as a dup;
     * from then on this process answers QUEUE_DUP itself */
    CHECK_EQ_INT(push_job(a, "j1", "k1", NULL, 0), QUEUE_OK);
    queue_sync(a, 0);
    CHECK_EQ_INT(push_job(b, "j1 again", "k1", NULL, 0), QUEUE_OK);
    struct queue_lease l;
    CHECK(take_is(b, "j1", &l));
    CHECK_EQ_INT(push_job(b, "j1 once more", "k1", NULL, 0), QUEUE_DUP);
    CHECK_EQ_INT(queue_take(a, 1, clock_now(), &l), 0);
    CHECK_EQ_INT(queue_ack(a, l.lease), -1); /* b's lease, not a's */
    CHECK_EQ_INT(queue_ack(b, l.lease), 0);
    struct queue_stats s;
    queue_sync(b, 0);
    queue_get_stats(a, &s);
    CHECK(s.pushed == 1 && s.dup == 2 && s.acked == 1 && s.keys == 1 && s.store_down == 0);

    /* a per-group limit of 1 holds across both */
    CHECK_EQ_INT(queue_group_tune(a, "h", 1, -1, 1), 0);
    CHECK_EQ_INT(push_job(a, "h1", NULL, "h", 0), QUEUE_OK);
    CHECK_EQ_INT(push_job(b, "h2", NULL, "h", 0), QUEUE_OK);
    struct queue_lease h1, h2;
    CHECK(take_is(a, "h1", &h1));
    CHECK_EQ_INT(queue_take(b, 1, clock_now(), &h2), 0);
    CHECK_EQ_INT(queue_ack(a, h1.lease), 0);
    queue_sync(a, 0); /* else the ack reaches the store within a few ms */
    CHECK(take_is(b, "h2", &h2));
    CHECK_EQ_INT(queue_ack(b, h2.lease), 0);

    /* a hungry worker of b hears of a's push (the background poll) */
    int before = atomic_load(&calls);
    CHECK_EQ_INT(queue_take(b, 1, clock_now(), &l), 0);
    CHECK_EQ_INT(push_job(a, "later", NULL, NULL, 0), QUEUE_OK);
    double deadline = clock_now() + 10;
    while (atomic_load(&calls) == before && clock_now() < deadline)
        pause_ms(10);
    CHECK(atomic_load(&calls) > before);
    CHECK(take_is(b, "later", &l));
    CHECK_EQ_INT(queue_ack(b, l.lease), 0);
out:
    queue_free(a);
    queue_free(b);
}

/* A child process takes a job and dies without a word: after its TTL the
 * job goes to the parent, same id, same attempt; its producer role too. */
static void test_dead_process(void)
{
    char url[128];
    url_of(url, sizeof url, "dead");
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        queue *q = open_url(url, "child", 1, 1);
        struct queue_lease l;
        uint64_t id = 0;
        if (q && push_job(q, "orphan", NULL, NULL, 0) == QUEUE_OK && queue_claim(q, "producer") &&
            queue_take(q, 1, clock_now(), &l) == 1)
            id = l.job_id;
        if (write(fds[1], &id, sizeof id) != (ssize_t)sizeof id)
            _exit(1);
        _exit(0); /* no queue_free: its lease and role stay behind */
    }
    close(fds[1]);
    uint64_t id = 0;
    CHECK(read(fds[0], &id, sizeof id) == (ssize_t)sizeof id);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    CHECK(id != 0);
    queue *q = open_url(url, "parent", 1, 1);
    if (!q)
        return;
    struct queue_lease l;
    CHECK_EQ_INT(queue_take(q, 1, clock_now(), &l), 0); /* still the child's */
    CHECK_EQ_INT(queue_claim(q, "producer"), 0);
    int got = 0;
    double deadline = clock_now() + 15;
    while (!got && clock_now() < deadline) {
        got = queue_take(q, 1, clock_now(), &l);
        if (!got)
            pause_ms(50);
    }
    CHECK(got);
    if (got) {
        CHECK_EQ_INT(l.job_id, id);
        CHECK_EQ_INT(l.attempt, 1);
        CHECK(l.len == 6 && memcmp(l.data, "orphan", 6) == 0);
        CHECK_EQ_INT(queue_ack(q, l.lease), 0);
    }
    int role = 0;
    while (!role && clock_now() < deadline) {
        role = queue_claim(q, "producer");
        if (!role)
            pause_ms(50);
    }
    CHECK(role);
    queue_free(q);
}

/* Roles: one holder at a time; the producer's ends with producer_done for
 * everyone; a done role held by a process that left cleanly stays taken. */
static void test_roles(void)
{
    char url[128];
    url_of(url, sizeof url, "roles");
    queue *a = open_url(url, "a", 0, 1), *b = open_url(url, "b", 0, 1);
    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_EQ_INT(queue_claim(a, "producer"), 1);
    CHECK_EQ_INT(queue_claim(b, "producer"), 0);
    CHECK_EQ_INT(queue_claim(a, "producer"), 1);
    CHECK_EQ_INT(queue_drained(b), 0);
    queue_producer_done(a);
    CHECK_EQ_INT(queue_claim(a, "producer"), 0);
    CHECK_EQ_INT(queue_claim(b, "producer"), 0);
    CHECK_EQ_INT(queue_drained(b), 1); /* global: nothing queued anywhere */
    CHECK_EQ_INT(queue_claim(b, "done"), 1);
    CHECK_EQ_INT(queue_claim(a, "done"), 0);
    queue_free(b);
    b = NULL;
    CHECK_EQ_INT(queue_claim(a, "done"), 0);
    queue *c = open_url(url, "c", 0, 1);
    CHECK(c && queue_claim(c, "done") == 0);
    queue_free(c);
out:
    queue_free(a);
    queue_free(b);
}

/* A producer that runs again (or in place of a dead one) gets QUEUE_DUP for
 * as many pushes as the producers before it had answered. */
static void test_producer_position(void)
{
    char url[128];
    url_of(url, sizeof url, "position");
    queue *a = open_url(url, "a", 0, 1);
    if (!a)
        return;
    CHECK_EQ_INT(push_job(a, "p1", NULL, NULL, 1), QUEUE_OK);
    CHECK_EQ_INT(push_job(a, "p2", "k", NULL, 1), QUEUE_OK);
    CHECK_EQ_INT(push_job(a, "p3", "k", NULL, 1), QUEUE_DUP); /* by key: counts too */
    queue_free(a);
    queue *b = open_url(url, "b", 0, 1);
    if (!b)
        return;
    CHECK_EQ_INT(push_job(b, "p1", NULL, NULL, 1), QUEUE_DUP);
    CHECK_EQ_INT(push_job(b, "p2", "k", NULL, 1), QUEUE_DUP);
    CHECK_EQ_INT(push_job(b, "p3", "k", NULL, 1), QUEUE_DUP);
    CHECK_EQ_INT(push_job(b, "p4", NULL, NULL, 1), QUEUE_OK);
    CHECK_EQ_INT(push_job(b, "w", NULL, NULL, 0), QUEUE_OK); /* a worker's: not counted */
    struct queue_stats s;
    queue_get_stats(b, &s);
    CHECK_EQ_INT(s.pushed, 4);
    queue_free(b);
}

/* A number the store holds: the answer to command fmt with the prefix in
 * it (an integer or a number in a string), or -1. */
static long long store_number(const char *fmt, const char *prefix)
{
    redisContext *c = connect_to(srv.port, NULL);
    if (!c)
        return -1;
    redisReply *r = redisCommand(c, fmt, prefix);
    long long n = !r                               ? -1
                  : r->type == REDIS_REPLY_INTEGER ? r->integer
                  : r->type == REDIS_REPLY_STRING  ? atoll(r->str)
                                                   : -1;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return n;
}

static long long stream_len(const char *prefix)
{
    return store_number("XLEN %s:items", prefix);
}

/* The leases a process holds, its stock's included, as the store counts
 * them: P:n leased. */
static long long leased_in(const char *prefix)
{
    return store_number("HGET %s:n leased", prefix);
}

/* Takes one lease for worker 1, waiting (up to 10 s) for the stock when a
 * take says "hungry". 1 or 0. */
static int take_waiting(queue *q, atomic_int *calls, struct queue_lease *l)
{
    double deadline = clock_now() + 10;
    while (clock_now() < deadline) {
        int before = atomic_load(calls);
        if (queue_take(q, 1, clock_now(), l) == 1)
            return 1;
        while (atomic_load(calls) == before && clock_now() < deadline)
            pause_ms(2);
    }
    return 0;
}

/* With many jobs ready, a process takes leases ahead of its workers (the
 * stock), but never more in all than it runs at once (in_flight_max): a
 * lease held ahead holds a slot of its group that another process could
 * use. The same process without the bound does take more (the control). */
static void test_in_flight_max(void)
{
    static const int bounds[2] = {2, 0};
    for (int b = 0; b < 2; b++) {
        char url[128], prefix[32], err[512];
        snprintf(prefix, sizeof prefix, "ahead%d", b);
        url_of(url, sizeof url, prefix);
        struct queue_config cfg = {
            .capacity = 1000, .workers = 1, .instance = "ahead", .in_flight_max = bounds[b]};
        queue *q = queue_open(url, &cfg, err, sizeof err);
        CHECK(q != NULL);
        if (!q)
            continue;
        atomic_int calls = 0;
        queue_set_notify(q, 1, count_atomic, &calls);
        for (int i = 0; i < 300; i++)
            CHECK_EQ_INT(push_job(q, "j", NULL, NULL, 0), QUEUE_OK);
        queue_sync(q, 0);
        struct queue_lease l1, l2;
        CHECK(take_waiting(q, &calls, &l1));
        CHECK(take_waiting(q, &calls, &l2));
        pause_ms(300); /* the background thread's refill, if it wants one, is done */
        queue_sync(q, 0);
        long long held = leased_in(prefix);
        if (bounds[b])
            CHECK_EQ_INT((int)held, 2);
        else
            CHECK(held > 2);
        queue_free(q);
    }
}

/* The reserve leases a process holds (taken without a slot of their
 * group), as the store marks them: lease values that start with "r". */
static long long reserve_in(const char *prefix, const char *instance)
{
    redisContext *c = connect_to(srv.port, NULL);
    if (!c)
        return -1;
    redisReply *r = redisCommand(c, "HVALS %s:l:%s", prefix, instance);
    long long n = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        n += r->element[i]->str && r->element[i]->str[0] == 'r';
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return n;
}

static long long group_slots(const char *prefix)
{
    return store_number("HGET %s:g:h f", prefix);
}

#define RESERVE_JOBS 200

static queue *reserve_open(const char *prefix, const char *instance, double ttl)
{
    char url[128], err[512];
    url_of(url, sizeof url, prefix);
    struct queue_config cfg = {
        .capacity = 1000, .workers = 1, .instance = instance, .lease_ttl = ttl, .in_flight_max = 4};
    queue *q = queue_open(url, &cfg, err, sizeof err);
    if (!q)
        fprintf(stderr, "queue_open(%s): %s\n", url, err);
    else if (queue_group_tune(q, "h", 1, -1, 4) != 0)
        fprintf(stderr, "queue_group_tune failed\n");
    return q;
}

static void push_group_jobs(queue *q, int n)
{
    char data[32];
    for (int i = 0; i < n; i++) {
        snprintf(data, sizeof data, "j%d", i);
        CHECK_EQ_INT(push_job(q, data, NULL, "h", 0), QUEUE_OK);
    }
    queue_sync(q, 0);
}

/* A host's slots pass from a job that ends to the next without a call: a
 * process holds reserve leases of the group (taken without a slot), and
 * an ack hands its slot to one. Through a run of a group limited to 4:
 * the store's count of slots stays within the limit and covers every job
 * running, the reserve is used, and every job is done once. */
static void test_reserve(void)
{
    queue *q = reserve_open("reserve", "res", 0);
    CHECK(q != NULL);
    if (!q)
        return;
    atomic_int calls = 0;
    queue_set_notify(q, 1, count_atomic, &calls);
    push_group_jobs(q, RESERVE_JOBS);
    static int done[RESERVE_JOBS];
    struct queue_lease run[4];
    int nrun = 0, acked = 0, twice = 0, over = 0, uncovered = 0;
    long long most_reserve = 0;
    double deadline = clock_now() + 60;
    while (acked < RESERVE_JOBS && clock_now() < deadline) {
        int before = atomic_load(&calls);
        while (nrun < 4 && queue_take(q, 1, clock_now(), &run[nrun]) == 1)
            nrun++;
        if (nrun == 0) {
            while (atomic_load(&calls) == before && clock_now() < deadline)
                pause_ms(2);
            continue;
        }
        int i = atoi((const char *)run[0].data + 1);
        if (i >= 0 && i < RESERVE_JOBS)
            twice += done[i]++ > 0;
        CHECK_EQ_INT(queue_ack(q, run[0].lease), 0);
        acked++;
        memmove(run, run + 1, (size_t)--nrun * sizeof *run);
        if (acked % 10 == 0) {
            queue_sync(q, 0);
            long long f = group_slots("reserve");
            over += f > 4;
            uncovered += nrun > f;
            long long r = reserve_in("reserve", "res");
            if (r > most_reserve)
                most_reserve = r;
        }
    }
    CHECK_EQ_INT(acked, RESERVE_JOBS);
    CHECK_EQ_INT(twice, 0);
    CHECK_EQ_INT(over, 0);
    CHECK_EQ_INT(uncovered, 0);
    CHECK(most_reserve > 0);
    queue_sync(q, 0);
    CHECK_EQ_INT(group_slots("reserve"), 0);
    CHECK_EQ_INT(leased_in("reserve"), 0);
    queue_free(q);
}

/* A process that dies holding slotted and reserve leases: after its TTL
 * they all go back to the ready jobs, and the group's slots count only
 * the slotted ones back (never below zero). */
static void test_reserve_dead(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        long long held[2] = {0, 0};
        queue *q = reserve_open("rdead", "rchild", 1);
        if (q) {
            atomic_int calls = 0;
            queue_set_notify(q, 1, count_atomic, &calls);
            push_group_jobs(q, RESERVE_JOBS);
            struct queue_lease l[4];
            int n = 0;
            while (n < 4 && take_waiting(q, &calls, &l[n]))
                n++;
            if (n == 4) { /* two end: their batch asks for the reserve */
                queue_ack(q, l[0].lease);
                queue_ack(q, l[1].lease);
                queue_sync(q, 0);
            }
            held[0] = 4 - 2;
            held[1] = 0;
        }
        if (write(fds[1], held, sizeof held) != (ssize_t)sizeof held)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    long long held[2];
    CHECK(read(fds[0], held, sizeof held) == (ssize_t)sizeof held);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    long long r = reserve_in("rdead", "rchild"), f = group_slots("rdead");
    CHECK(r > 0);
    CHECK(f >= held[0] && f <= 4);
    queue *q = reserve_open("rdead", "rparent", 1);
    CHECK(q != NULL);
    if (!q)
        return;
    double deadline = clock_now() + 15;
    while (leased_in("rdead") > 0 && clock_now() < deadline)
        pause_ms(50);
    CHECK_EQ_INT(leased_in("rdead"), 0);
    CHECK_EQ_INT(group_slots("rdead"), 0);
    CHECK_EQ_INT(store_number("HGET %s:n ready", "rdead"), RESERVE_JOBS - 2);
    CHECK_EQ_INT(store_number("ZCARD %s:r:h", "rdead"), RESERVE_JOBS - 2);
    queue_free(q);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    *len = buf ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    return buf;
}

/* Items reach the stream with their ack, and only if it holds; the
 * drainer copies them to a file once, across its own restarts. */
static void test_items(void)
{
    char url[128], path[128];
    url_of(url, sizeof url, "items");
    snprintf(path, sizeof path, "%s/items.jsonl", srv.dir);
    queue *q = open_url(url, "a", 0, 2);
    if (!q)
        return;
    CHECK_EQ_INT(queue_items_durable(q), 1);
    CHECK_EQ_INT(push_job(q, "a", NULL, NULL, 0), QUEUE_OK);
    CHECK_EQ_INT(push_job(q, "b", NULL, NULL, 0), QUEUE_OK);
    struct queue_lease la, lb;
    CHECK(take_is(q, "a", &la));
    CHECK(queue_take(q, 2, clock_now(), &lb) == 1);
    CHECK_EQ_INT(queue_ack_items(q, la.lease, "{\"a\":1}\n", 8), 0);
    CHECK_EQ_INT(queue_ack_items(q, la.lease, "{\"a\":1}\n", 8), -1);
    CHECK_EQ_INT(queue_release_worker(q, 2, 0), 1);
    CHECK_EQ_INT(queue_ack_items(q, lb.lease, "{\"b\":0}\n", 8), -1); /* released */
    queue_sync(q, 0); /* acks reach the store in batches */
    CHECK_EQ_INT(stream_len("items"), 1);
    CHECK_EQ_INT(queue_items(q, "{\"init\":1}\n", 11), 0);
    queue_sync(q, 0);
    CHECK_EQ_INT(stream_len("items"), 2);

    char err[256];
    CHECK_EQ_INT(queue_redis_drain(url, path, 0, err, sizeof err), 19);
    CHECK_EQ_INT(queue_redis_drain(url, path, 0, err, sizeof err), 0); /* nothing new */
    /* what a crash between a write and its record leaves is cut away */
    FILE *f = fopen(path, "ab");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"torn\":", f);
        fclose(f);
    }
    CHECK(take_is(q, "b", &lb));
    CHECK_EQ_INT(queue_ack_items(q, lb.lease, "{\"b\":1}\n", 8), 0);
    queue_sync(q, 0);
    CHECK_EQ_INT(queue_redis_drain(url, path, 0, err, sizeof err), 8);
    size_t len = 0;
    char *text = slurp(path, &len);
    CHECK(text && strcmp(text, "{\"a\":1}\n{\"init\":1}\n{\"b\":1}\n") == 0);
    free(text);
    /* follow stops once the run is drained */
    queue_producer_done(q);
    CHECK_EQ_INT(queue_redis_drain(url, path, 1, err, sizeof err), 0);
    CHECK(queue_redis_drain("redis://127.0.0.1:1/0", path, 0, err, sizeof err) < 0);
    CHECK(strstr(err, "127.0.0.1:1") != NULL);
    queue_free(q);
}

/* Redis killed with results in flight, then started again on its
 * append-only file: the results were held and are delivered, in order,
 * nothing lost; meanwhile nothing was taken and the stats said why. */
static void test_outage(void)
{
    struct server s;
    const char *const aof[] = {"--appendonly", "yes", "--appendfsync", "always", NULL};
    if (server_new(&s, aof) < 0) {
        CHECK(!"a second redis-server starts");
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0?prefix=out", s.port);
    queue *q = open_url(url, "a", 0, 1);
    if (!q) {
        server_gone(&s);
        return;
    }
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(push_job(q, "job", NULL, NULL, 0), QUEUE_OK);
    struct queue_lease l[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(queue_take(q, 1, clock_now(), &l[i]), 1);
    server_kill(&s);

    CHECK_EQ_INT(queue_ack_items(q, l[0].lease, "{\"x\":1}\n", 8), 0);
    CHECK_EQ_INT(queue_retry(q, l[1].lease, 0, clock_now()), 0);
    CHECK_EQ_INT(queue_ack(q, l[0].lease), -1); /* still known to be done */
    CHECK_EQ_INT(push_job(q, "found", "new-key", NULL, 0), QUEUE_OK);
    CHECK_EQ_INT(push_job(q, "produced", NULL, NULL, 1), QUEUE_FULL);
    struct queue_lease none;
    CHECK_EQ_INT(queue_take(q, 1, clock_now(), &none), 0);
    struct queue_stats st;
    queue_get_stats(q, &st);
    CHECK_EQ_INT(st.store_down, 1);
    CHECK_EQ_INT(st.held, 3);
    CHECK(queue_next_due(q) > clock_now());

    CHECK(server_start(&s, aof) == 0);
    double deadline = clock_now() + 20;
    do {
        pause_ms(50);
        queue_get_stats(q, &st);
    } while (st.store_down && clock_now() < deadline);
    CHECK_EQ_INT(st.store_down, 0);
    CHECK_EQ_INT(st.held, 0);
    CHECK_EQ_INT(st.acked, 1);
    CHECK_EQ_INT(st.retried, 1);
    CHECK_EQ_INT(st.pushed, 4);
    CHECK_EQ_INT(st.leased, 1);
    CHECK_EQ_INT(st.ready, 2);
    struct queue_lease a, b;
    CHECK(queue_take(q, 1, clock_now(), &a) == 1 && queue_take(q, 1, clock_now(), &b) == 1);
    CHECK(a.job_id == l[1].job_id && a.attempt == 2); /* the retry first: pushed before */
    CHECK(b.len == 5 && memcmp(b.data, "found", 5) == 0);
    CHECK_EQ_INT(queue_ack(q, l[2].lease), 0); /* a lease from before the outage */
    CHECK_EQ_INT(queue_ack(q, a.lease), 0);
    CHECK_EQ_INT(queue_ack(q, b.lease), 0);
    redisContext *c = connect_to(s.port, NULL);
    redisReply *r = c ? redisCommand(c, "XLEN out:items") : NULL;
    CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    queue_free(q);
    server_gone(&s);
}

/* requirepass and an ACL user: both log in from the URL; a wrong password
 * is a clear error at open. */
static void test_auth(void)
{
    struct server s;
    const char *const pass[] = {"--requirepass", "s3cret", NULL};
    if (server_new(&s, pass) < 0) {
        CHECK(!"a redis-server with a password starts");
        return;
    }
    char url[160];
    snprintf(url, sizeof url, "redis://:s3cret@127.0.0.1:%d/2?prefix=auth", s.port);
    queue *q = open_url(url, "a", 0, 1);
    CHECK(q != NULL);
    if (q) {
        CHECK_EQ_INT(push_job(q, "x", NULL, NULL, 0), QUEUE_OK);
        queue_free(q);
    }
    snprintf(url, sizeof url, "redis://:wrong@127.0.0.1:%d/0", s.port);
    struct queue_config cfg = {.capacity = 10, .workers = 1};
    char err[512] = "";
    CHECK(queue_open(url, &cfg, err, sizeof err) == NULL);
    CHECK(strstr(err, "AUTH") != NULL);

    redisContext *c = connect_to(s.port, "s3cret");
    redisReply *r = c ? redisCommand(c, "ACL SETUSER crawler on >p4ss ~shoal:* &* +@all") : NULL;
    CHECK(r && r->type == REDIS_REPLY_STATUS);
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    snprintf(url, sizeof url, "redis://crawler:p4ss@127.0.0.1:%d/0", s.port);
    q = open_url(url, "b", 0, 1);
    CHECK(q != NULL);
    if (q) {
        struct queue_lease l;
        CHECK_EQ_INT(push_job(q, "y", NULL, NULL, 0), QUEUE_OK);
        CHECK(take_is(q, "y", &l));
        CHECK_EQ_INT(queue_ack(q, l.lease), 0);
        queue_free(q);
    }
    snprintf(url, sizeof url, "redis://crawler:nope@127.0.0.1:%d/0", s.port);
    CHECK(queue_open(url, &cfg, err, sizeof err) == NULL);
    CHECK(strstr(err, "crawler") != NULL);
    server_gone(&s);
}

static void test_bad_urls(void)
{
    struct queue_config cfg = {.capacity = 10, .workers = 1};
    char err[512];
    CHECK(queue_open("redis:localhost", &cfg, err, sizeof err) == NULL);
    CHECK(strstr(err, "redis://") != NULL);
    CHECK(queue_open("redis://h:99999/0", &cfg, err, sizeof err) == NULL);
    CHECK(strstr(err, "port") != NULL);
    CHECK(queue_open("redis://h:1/0?pfx=x", &cfg, err, sizeof err) == NULL);
    CHECK(strstr(err, "pfx") != NULL);
}

/* A prefix holding a run another version of shoal laid out (P:n without
 * this version's layout) is refused at open with what to do, and left as
 * it was; the same prefix after that run is gone opens. */
static void test_other_layout(void)
{
    char url[128], err[512];
    url_of(url, sizeof url, "older");
    CHECK(store_number("HSET %s:n job 41", "older") == 1);
    struct queue_config cfg = {.capacity = 10, .workers = 1, .instance = "new"};
    CHECK(queue_open(url, &cfg, err, sizeof err) == NULL);
    CHECK(strstr(err, "another version of shoal") != NULL);
    CHECK(strstr(err, "prefix=") != NULL);
    CHECK(store_number("HGET %s:n job", "older") == 41);
    CHECK(store_number("HEXISTS %s:n layout", "older") == 0);
    CHECK(store_number("DEL %s:n", "older") == 1);
    queue *q = queue_open(url, &cfg, err, sizeof err);
    CHECK(q != NULL);
    if (q)
        queue_free(q);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (access(REDIS_SERVER, X_OK) != 0) {
        fprintf(stderr, "test_queue_redis needs %s: apt-get install redis-server\n", REDIS_SERVER);
        return 1;
    }
    if (server_new(&srv, NULL) < 0) {
        fprintf(stderr, "could not start %s\n", REDIS_SERVER);
        return 1;
    }
    struct contract c = {contract_open, NULL, "redis"};
    queue_contract_run(&c);
    test_bad_urls();
    test_other_layout();
    test_shared();
    test_in_flight_max();
    test_reserve();
    test_reserve_dead();
    test_dead_process();
    test_roles();
    test_producer_position();
    test_items();
    test_outage();
    test_auth();
    server_gone(&srv);
    return check_done();
}
