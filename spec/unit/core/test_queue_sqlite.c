/* test_queue_sqlite.c - the durable queue (queue_sqlite.c): the contract
 * every backend keeps, then what only a durable one promises: a state
 * closed, or left by a process that died without closing it, opens with
 * its jobs, keys, attempts, groups and items file as they were; a second
 * process is refused; a damaged or foreign database is a clear error. */
#include "check.h"
#include "queue_contract.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "core/queue_sqlite.h"

static char root[] = "/tmp/shoal-test-sqlite-XXXXXX";
static int ndirs;

static void new_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s/s%d", root, ndirs++);
}

static queue *open_dir(const char *dir, const struct queue_config *cfg, char *err, size_t errlen)
{
    char spec[512];
    snprintf(spec, sizeof spec, "sqlite:%s", dir);
    return queue_open(spec, cfg, err, errlen);
}

static queue *open_fresh(void *arg, const struct queue_config *cfg)
{
    (void)arg;
    char dir[256], err[1024];
    new_dir(dir, sizeof dir);
    queue *q = open_dir(dir, cfg, err, sizeof err);
    if (!q)
        fprintf(stderr, "open %s: %s\n", dir, err);
    return q;
}

/* ------------------------------------------------------------ an items file */

struct file_sink {
    char path[256];
    int fd;
};

static long long sink_write(void *arg, const char *b, size_t n)
{
    struct file_sink *f = arg;
    if (write(f->fd, b, n) != (ssize_t)n)
        return -1;
    return lseek(f->fd, 0, SEEK_END);
}

static long long sink_size(void *arg)
{
    return lseek(((struct file_sink *)arg)->fd, 0, SEEK_END);
}

static int sink_cut(void *arg, long long size)
{
    return ftruncate(((struct file_sink *)arg)->fd, size);
}

static void sink_open(struct file_sink *f, const char *dir)
{
    snprintf(f->path, sizeof f->path, "%s.items", dir);
    f->fd = open(f->path, O_RDWR | O_CREAT | O_APPEND, 0644);
}

static void attach(queue *q, struct file_sink *f)
{
    struct queue_items_sink s = {sink_write, sink_size, sink_cut, NULL, f, 0};
    queue_set_items_sink(q, &s);
}

static size_t file_text(const char *path, char *out, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n = fp ? fread(out, 1, cap - 1, fp) : 0;
    out[n] = '\0';
    if (fp)
        fclose(fp);
    return n;
}

/* ------------------------------------------------------------ resume */

static const struct queue_config cfg2 = {.capacity = 100, .workers = 2, .group_limit = 2};

static void push_named(queue *q, const char *data, const char *key, const char *group, double delay,
                       double now)
{
    struct queue_push_opts o = {.key = key,
                                .key_len = key ? strlen(key) : 0,
                                .group = group,
                                .group_len = group ? strlen(group) : 0,
                                .delay = delay,
                                .depth = 3};
    CHECK_EQ_INT(queue_push(q, data, strlen(data), &o, now, NULL), QUEUE_OK);
}

static void test_resume_after_close(void)
{
    char dir[256], err[1024];
    new_dir(dir, sizeof dir);
    struct file_sink f;
    sink_open(&f, dir);
    queue *q = open_dir(dir, &cfg2, err, sizeof err);
    CHECK(q != NULL);
    if (!q)
        return;
    struct queue_stats st;
    CHECK_EQ_INT(queue_resumed(q, &st), 0);
    attach(q, &f);
    double T = clock_now();
    push_named(q, "a", "ka", "h1", 0, T);
    push_named(q, "b", "kb", "h1", 0, T);
    push_named(q, "c", "kc", "h2", 0, T);
    push_named(q, "later", NULL, NULL, 3600, T);
    CHECK_EQ_INT(queue_group_tune(q, "h2", 2, 2.5, 1), 0);
    struct queue_lease la, lb;
    CHECK_EQ_INT(queue_take(q, 1, T, &la), 1);
    CHECK_EQ_INT(queue_take(q, 1, T, &lb), 1);
    CHECK_STR(la.data, "a");
    CHECK_EQ_INT(queue_ack_items(q, la.lease, "{\"page\":\"a\"}\n", 13), 0);
    CHECK_EQ_INT(queue_retry(q, lb.lease, 0, T), 0);
    CHECK_EQ_INT(queue_items(q, "{\"from\":\"init\"}\n", 16), 0);
    queue_free(q);

    char text[256];
    file_text(f.path, text, sizeof text);
    CHECK_STR(text, "{\"page\":\"a\"}\n{\"from\":\"init\"}\n");

    q = open_dir(dir, &cfg2, err, sizeof err);
    CHECK(q != NULL);
    if (!q)
        return;
    CHECK_EQ_INT(queue_resumed(q, &st), 1);
    CHECK_EQ_INT(st.acked, 1);
    CHECK_EQ_INT(st.retried, 1);
    CHECK_EQ_INT(st.ready, 2); /* b (retried) and c */
    CHECK_EQ_INT(st.delayed, 1);
    attach(q, &f);
    /* the keys are still seen; a job without a key is new */
    struct queue_push_opts dup = {.key = "ka", .key_len = 2};
    CHECK_EQ_INT(queue_push(q, "a2", 2, &dup, T, NULL), QUEUE_DUP);
    queue_get_stats(q, &st);
    CHECK_EQ_INT(st.ready, 2);
    CHECK_EQ_INT(st.delayed, 1);
    /* c was pushed before b's retry: c first, then b on its second attempt */
    struct queue_lease l1, l2;
    CHECK_EQ_INT(queue_take(q, 1, clock_now(), &l1), 1);
    CHECK_STR(l1.data, "c");
    CHECK_EQ_INT(l1.depth, 3);
    CHECK_STR(l1.group, "h2");
    CHECK_EQ_INT(queue_take(q, 1, clock_now(), &l2), 1);
    CHECK_STR(l2.data, "b");
    CHECK_EQ_INT(l2.attempt, 2);
    CHECK_EQ_INT(l2.job_id, lb.job_id);
    queue_ack(q, l1.lease);
    queue_ack(q, l2.lease);
    queue_free(q);
    close(f.fd);
}

static void group_delay(void *arg, const struct queue_group_info *g)
{
    if (!strcmp(g->name, "h2"))
        *(double *)arg = g->delay;
}

static void test_groups_kept(void)
{
    char dir[256], err[1024];
    new_dir(dir, sizeof dir);
    queue *q = open_dir(dir, &cfg2, err, sizeof err);
    CHECK(q != NULL);
    if (!q)
        return;
    CHECK_EQ_INT(queue_group_tune(q, "h2", 2, 2.5, 1), 0);
    queue_free(q);
    q = open_dir(dir, &cfg2, err, sizeof err);
    double delay = -1;
    queue_each_group(q, group_delay, &delay);
    CHECK(delay == 2.5);
    queue_free(q);
}

/* A child opens the state, does some work, waits past a commit and dies
 * without closing anything: what a kill -9 leaves. While it lives, a
 * second open is refused, naming its pid. */
static void test_resume_after_kill(void)
{
    char dir[256], err[1024];
    new_dir(dir, sizeof dir);
    int ready[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        queue *q = open_dir(dir, &cfg2, err, sizeof err);
        if (!q)
            _exit(2);
        for (int i = 0; i < 50; i++) {
            char job[32], key[32];
            snprintf(job, sizeof job, "job%d", i);
            snprintf(key, sizeof key, "key%d", i);
            struct queue_push_opts o = {.key = key, .key_len = strlen(key)};
            queue_push(q, job, strlen(job), &o, 1, NULL);
        }
        struct queue_lease l;
        for (int i = 0; i < 10 && queue_take(q, 1, 2, &l); i++)
            if (i < 5)
                queue_ack(q, l.lease); /* 5 done, 5 in flight at the kill */
        usleep(300 * 1000); /* several commits */
        if (write(ready[1], "x", 1) != 1)
            _exit(3);
        char c;
        if (read(go[0], &c, 1) < 0)
            _exit(4);
        kill(getpid(), SIGKILL);
        _exit(5);
    }
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    queue *q = open_dir(dir, &cfg2, err, sizeof err);
    CHECK(q == NULL);
    char want[64];
    snprintf(want, sizeof want, "pid %d", (int)pid);
    CHECK(strstr(err, want) != NULL);
    CHECK(strstr(err, "in use by another shoal") != NULL);
    CHECK(write(go[1], "x", 1) == 1);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    q = open_dir(dir, &cfg2, err, sizeof err);
    CHECK(q != NULL);
    if (!q)
        return;
    struct queue_stats st;
    CHECK_EQ_INT(queue_resumed(q, &st), 1);
    CHECK_EQ_INT(st.acked, 5);
    CHECK_EQ_INT(st.leased, 5);
    queue_get_stats(q, &st);
    CHECK_EQ_INT(st.ready, 45); /* the 5 in flight are ready again */
    CHECK_EQ_INT(st.keys, 50);
    struct queue_lease l;
    CHECK_EQ_INT(queue_take(q, 1, 3, &l), 1);
    CHECK_STR(l.data, "job5"); /* the first not done, in its old place */
    CHECK_EQ_INT(l.attempt, 1);
    queue_free(q);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
}

/* A producer run again skips what it pushed before; one that finished is
 * not run again. */
static void test_producer_position(void)
{
    char dir[256], err[1024];
    new_dir(dir, sizeof dir);
    queue *q = open_dir(dir, &cfg2, err, sizeof err);
    CHECK(q != NULL);
    if (!q)
        return;
    struct queue_push_opts p = {.from_producer = 1};
    CHECK_EQ_INT(queue_claim(q, "producer"), 1);
    CHECK_EQ_INT(queue_push(q, "s1", 2, &p, 1, NULL), QUEUE_OK);
    CHECK_EQ_INT(queue_push(q, "s2", 2, &p, 1, NULL), QUEUE_OK);
    queue_free(q);
    q = open_dir(dir, &cfg2, err, sizeof err);
    CHECK_EQ_INT(queue_claim(q, "producer"), 1);
    CHECK_EQ_INT(queue_push(q, "s1", 2, &p, 1, NULL), QUEUE_DUP);
    CHECK_EQ_INT(queue_push(q, "s2", 2, &p, 1, NULL), QUEUE_DUP);
    CHECK_EQ_INT(queue_push(q, "s3", 2, &p, 1, NULL), QUEUE_OK);
    struct queue_stats st;
    queue_get_stats(q, &st);
    CHECK_EQ_INT(st.ready, 3);
    queue_producer_done(q);
    queue_free(q);
    q = open_dir(dir, &cfg2, err, sizeof err);
    CHECK_EQ_INT(queue_claim(q, "producer"), 0);
    CHECK_EQ_INT(queue_drained(q), 0); /* three jobs wait */
    queue_free(q);
}

/* The items file: bytes written for changes never committed are cut off. */
static void test_items_cut_back(void)
{
    char dir[256], err[1024];
    new_dir(dir, sizeof dir);
    struct file_sink f;
    sink_open(&f, dir);
    queue *q = open_dir(dir, &cfg2, err, sizeof err);
    attach(q, &f);
    CHECK_EQ_INT(queue_items(q, "one\n", 4), 0);
    queue_free(q);
    CHECK(write(f.fd, "torn", 4) == 4);
    q = open_dir(dir, &cfg2, err, sizeof err);
    attach(q, &f);
    queue_free(q);
    char text[64];
    file_text(f.path, text, sizeof text);
    CHECK_STR(text, "one\n");
    close(f.fd);
}

static void write_file(const char *path, const char *bytes, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, bytes, n) == (ssize_t)n);
    close(fd);
}

static void test_damaged_states(void)
{
    char dir[256], path[300], err[1024];
    struct queue_config cfg = {.capacity = 10, .workers = 1};
    /* garbage where the database should be */
    new_dir(dir, sizeof dir);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/queue.db", dir);
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    write_file(path, junk, sizeof junk);
    queue *q = open_dir(dir, &cfg, err, sizeof err);
    CHECK(q == NULL);
    CHECK(strstr(err, "damaged or is not a shoal state") != NULL);

    /* a real state cut in half */
    new_dir(dir, sizeof dir);
    q = open_dir(dir, &cfg, err, sizeof err);
    for (int i = 0; i < 2000; i++) {
        char job[64];
        snprintf(job, sizeof job, "a job with some bytes in it, number %d", i);
        queue_push(q, job, strlen(job), NULL, 1, NULL);
    }
    queue_free(q);
    snprintf(path, sizeof path, "%s/queue.db", dir);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size > 8192);
    CHECK(truncate(path, sb.st_size / 2) == 0);
    q = open_dir(dir, &cfg, err, sizeof err);
    if (q) { /* SQLite may read what is left; what it reads must be jobs */
        struct queue_stats st;
        queue_get_stats(q, &st);
        CHECK(st.ready <= 2000);
        queue_free(q);
    } else {
        CHECK(strstr(err, "queue.db") != NULL);
    }

    /* a state of another format */
    new_dir(dir, sizeof dir);
    q = open_dir(dir, &cfg, err, sizeof err);
    queue_free(q);
    snprintf(path, sizeof path, "%s/queue.db", dir);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE meta SET v=99 WHERE k='format'", NULL, NULL, NULL) ==
          SQLITE_OK);
    sqlite3_close(db);
    q = open_dir(dir, &cfg, err, sizeof err);
    CHECK(q == NULL);
    CHECK(strstr(err, "format 99") != NULL);

    /* a directory that cannot be made */
    q = open_dir("/proc/shoal-cannot-be-here", &cfg, err, sizeof err);
    CHECK(q == NULL);
    CHECK(strstr(err, "/proc/shoal-cannot-be-here") != NULL);
}

int main(void)
{
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    struct contract c = {open_fresh, NULL, "sqlite"};
    queue_contract_run(&c);
    test_resume_after_close();
    test_groups_kept();
    test_resume_after_kill();
    test_producer_position();
    test_items_cut_back();
    test_damaged_states();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return check_done();
}
