/* test_queue_groups.c - the per-group scheduler as a crawl sees it: a
 * simulated crawl of ten hosts on a fake clock (limits, gaps, one slow host
 * that must not hold up the others, every job once), a threaded run where
 * groups fill up and free under real workers (for the sanitizers: no job
 * lost or done twice, no group over its limit), what a host's entry costs,
 * and a micro-benchmark of take + ack with and without groups, printed for
 * the record. The rules every backend keeps are in queue_contract.h. */
#include "check.h"
#include "core/queue.h"

#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void count_group(void *arg, const struct queue_group_info *g)
{
    (void)g;
    (*(int *)arg)++;
}

/* A bad politeness setting is refused at open, naming the setting and the
 * value; the tune and pause calls refuse what they cannot apply. */
static void test_config(void)
{
    char err[160];
    struct queue_config limit = {.capacity = 1, .group_limit = -1};
    CHECK(queue_open("memory", &limit, err, sizeof err) == NULL);
    CHECK(strstr(err, "per-group limit") && strstr(err, "-1"));
    struct queue_config delay = {.capacity = 1, .group_delay = -0.5};
    CHECK(queue_open("memory", &delay, err, sizeof err) == NULL);
    CHECK(strstr(err, "per-group delay") && strstr(err, "-0.5"));
    delay.group_delay = NAN;
    CHECK(queue_open("memory", &delay, err, sizeof err) == NULL);
    CHECK(strstr(err, "per-group delay") != NULL);
    struct queue_config jitter = {.capacity = 1, .group_jitter = 1.5};
    CHECK(queue_open("memory", &jitter, err, sizeof err) == NULL);
    CHECK(strstr(err, "jitter") && strstr(err, "1.5"));

    struct queue_config ok = {.capacity = 1, .group_limit = 3, .group_delay = 1, .group_jitter = 1};
    queue *q = queue_open("memory", &ok, err, sizeof err);
    CHECK(q != NULL);
    if (!q)
        return;
    char big[QUEUE_GROUP_MAX + 1];
    memset(big, 'h', sizeof big);
    CHECK_EQ_INT(queue_group_tune(q, big, sizeof big, 1, 1), -1);
    CHECK_EQ_INT(queue_group_tune(q, big, QUEUE_GROUP_MAX, 1, 1), 0);
    CHECK_EQ_INT(queue_group_tune(q, "h", 1, INFINITY, 1), -1);
    CHECK_EQ_INT(queue_group_pause(q, "h", 1, NAN), -1);
    CHECK_EQ_INT(queue_group_pause(q, big, sizeof big, 1), -1);
    int groups = 0;
    queue_each_group(q, count_group, &groups);
    CHECK_EQ_INT(groups, 1); /* the refused calls made none */
    queue_each_group(q, NULL, NULL);
    queue_free(q);
}

/* The simulated crawl. Jobs are "GROUP/INDEX"; each has a fixed service
 * time (how long its fetch takes), so the run is the same every time. The
 * slow group's jobs are pushed first, so a queue that waited at its head
 * for the slow group would stall everyone. */
#define SIM_GROUPS 10
#define SIM_PER_GROUP 100
#define SIM_JOBS (SIM_GROUPS * SIM_PER_GROUP)
#define SIM_LIMIT 2
#define SIM_DELAY 0.1
#define SIM_JITTER 0.5
#define SIM_SLOW_DELAY 5.0
#define SIM_SLOTS 64 /* more than all groups' limits together: they never compete */

struct sim_job {
    double service;
    int group, taken, acked;
};

struct sim_running {
    uint64_t lease;
    int job;
    double end;
};

static uint64_t sim_rng = 42;

static double sim_uniform(double lo, double hi)
{
    sim_rng ^= sim_rng << 13;
    sim_rng ^= sim_rng >> 7;
    sim_rng ^= sim_rng << 17;
    return lo + (hi - lo) * (double)(sim_rng >> 11) * 0x1.0p-53;
}

/* When a group alone would finish if every gap were the longest the jitter
 * allows: starts as early as the gap and the limit let them, in order. No
 * schedule with shorter gaps finishes later, so the queue must beat it. */
static double sim_bound(const struct sim_job *jobs, int group, double gap)
{
    double ends[SIM_LIMIT] = {0}, last = -1e9, finish = 0;
    int n = 0;
    for (int i = 0; i < SIM_JOBS; i++) {
        if (jobs[i].group != group)
            continue;
        double start = n ? last + gap : 0;
        if (n >= SIM_LIMIT) { /* wait for the earliest of the two to end */
            int k = ends[0] <= ends[1] ? 0 : 1;
            if (ends[k] > start)
                start = ends[k];
            ends[k] = start + jobs[i].service;
        } else {
            ends[n] = start + jobs[i].service;
        }
        last = start;
        if (last + jobs[i].service > finish)
            finish = last + jobs[i].service;
        n++;
    }
    return finish;
}

static void test_simulated_crawl(void)
{
    struct queue_config cfg = {.capacity = SIM_JOBS,
                               .workers = 1,
                               .group_limit = SIM_LIMIT,
                               .group_delay = SIM_DELAY,
                               .group_jitter = SIM_JITTER,
                               .seed = 7};
    queue *q = queue_open("memory", &cfg, NULL, 0);
    CHECK(q != NULL);
    if (!q)
        return;
    CHECK_EQ_INT(queue_group_tune(q, "host0", 5, SIM_SLOW_DELAY, -1), 0);

    static struct sim_job jobs[SIM_JOBS];
    char name[16], data[32];
    for (int i = 0; i < SIM_JOBS; i++) {
        /* the slow host's hundred first, then the others interleaved */
        int g = i < SIM_PER_GROUP ? 0 : 1 + (i - SIM_PER_GROUP) % (SIM_GROUPS - 1);
        jobs[i] = (struct sim_job){sim_uniform(0.02, 0.4), g, 0, 0};
        int nlen = snprintf(name, sizeof name, "host%d", g);
        int dlen = snprintf(data, sizeof data, "%d", i);
        struct queue_push_opts o = {.group = name, .group_len = (size_t)nlen, .depth = g};
        CHECK_EQ_INT(queue_push(q, data, (size_t)dlen, &o, 0, NULL), QUEUE_OK);
    }

    struct sim_running run[SIM_SLOTS];
    int nrun = 0, done = 0, over_limit = 0, short_gaps = 0, bad_lease = 0, stuck = 0;
    int inflight[SIM_GROUPS] = {0}, started[SIM_GROUPS] = {0};
    double last_start[SIM_GROUPS], finish[SIM_GROUPS] = {0}, min_gap[SIM_GROUPS];
    for (int g = 0; g < SIM_GROUPS; g++)
        min_gap[g] = 1e9;
    double t = 0;
    while (done < SIM_JOBS && !stuck) {
        struct queue_lease l;
        while (nrun < SIM_SLOTS && queue_take(q, 1, t, &l) == 1) {
            int job = atoi(l.data), g = jobs[job].group;
            if (l.depth != g || strncmp(l.group, "host", 4) != 0 || atoi(l.group + 4) != g)
                bad_lease++;
            jobs[job].taken++;
            if (++inflight[g] > SIM_LIMIT)
                over_limit++;
            if (started[g]++ > 0 && t - last_start[g] < min_gap[g])
                min_gap[g] = t - last_start[g];
            last_start[g] = t;
            run[nrun++] = (struct sim_running){l.lease, job, t + jobs[job].service};
        }
        /* the next event: a fetch ending, or the queue's next due time */
        double next = queue_next_due(q);
        for (int i = 0; i < nrun; i++)
            if (next == 0 || run[i].end < next)
                next = run[i].end;
        if (next <= t) {
            stuck = 1; /* nothing running, nothing due, jobs left: lost */
            break;
        }
        t = next;
        for (int i = 0; i < nrun;) {
            if (run[i].end > t) {
                i++;
                continue;
            }
            int job = run[i].job, g = jobs[job].group;
            CHECK_EQ_INT(queue_ack(q, run[i].lease), 0);
            jobs[job].acked++;
            inflight[g]--;
            if (++done, started[g] == SIM_PER_GROUP && inflight[g] == 0)
                finish[g] = t;
            run[i] = run[--nrun];
        }
    }
    CHECK_EQ_INT(stuck, 0);
    CHECK_EQ_INT(done, SIM_JOBS);
    CHECK_EQ_INT(over_limit, 0);
    CHECK_EQ_INT(bad_lease, 0);
    int once = 0;
    for (int i = 0; i < SIM_JOBS; i++)
        once += jobs[i].taken == 1 && jobs[i].acked == 1;
    CHECK_EQ_INT(once, SIM_JOBS);

    /* gaps: never under delay x (1 - jitter), the slow host's included */
    for (int g = 0; g < SIM_GROUPS; g++) {
        double delay = g == 0 ? SIM_SLOW_DELAY : SIM_DELAY;
        if (min_gap[g] < delay * (1 - SIM_JITTER) - 1e-9)
            short_gaps++;
    }
    CHECK_EQ_INT(short_gaps, 0);

    /* the nine fast hosts finish as if the slow one were not there */
    double fast_worst = 0, fast_bound = 0;
    for (int g = 1; g < SIM_GROUPS; g++) {
        double bound = sim_bound(jobs, g, SIM_DELAY * (1 + SIM_JITTER));
        CHECK(finish[g] <= bound + 1e-9);
        if (finish[g] > fast_worst)
            fast_worst = finish[g];
        if (bound > fast_bound)
            fast_bound = bound;
    }
    /* and the slow one keeps its pace: 99 gaps of at least 2.5 s */
    CHECK(finish[0] >= 99 * SIM_SLOW_DELAY * (1 - SIM_JITTER));
    CHECK(finish[0] > 10 * fast_worst);
    printf("simulated crawl: fast hosts done by %.2f s (bound %.2f s), slow host at %.1f s; "
           "shortest gaps %.3f s (fast, >= %.3f) and %.2f s (slow, >= %.2f)\n",
           fast_worst, fast_bound, finish[0], min_gap[1], SIM_DELAY * (1 - SIM_JITTER), min_gap[0],
           SIM_SLOW_DELAY * (1 - SIM_JITTER));

    struct queue_stats s;
    queue_get_stats(q, &s);
    CHECK(s.ready == 0 && s.delayed == 0 && s.leased == 0);
    CHECK_EQ_INT(s.acked, SIM_JOBS);
    queue_free(q);
}

/* Threads: four workers over five groups of limit 1. A worker holds up
 * to three leases (so groups fill up and other workers go hungry), acks
 * them, and when it finds nothing waits for its notify (an ack that frees a
 * group, or the drain). The wakeup itself is pinned down by the contract's
 * "group wake"; here the other workers would cover for a lost one, so the
 * deadline only bounds a hang. */
#define THR_WORKERS 4
#define THR_GROUPS 5
#define THR_JOBS 40000
#define THR_HOLD 3

struct thr_waiter {
    pthread_mutex_t m;
    pthread_cond_t c;
    int signaled;
};

struct thr_run {
    queue *q;
    double deadline;
    atomic_int timed_out, over_limit, done, waits;
    atomic_int inflight[THR_GROUPS];
    atomic_uchar *acked; /* by job id */
    struct thr_waiter w[THR_WORKERS + 1];
};

static void thr_notify(void *arg)
{
    struct thr_waiter *w = arg;
    pthread_mutex_lock(&w->m);
    w->signaled = 1;
    pthread_cond_signal(&w->c);
    pthread_mutex_unlock(&w->m);
}

/* Waits for a notify, or until `until` (next_due, 0 = none) or the
 * deadline. Returns 0 once past the deadline. */
static int thr_wait(struct thr_run *r, struct thr_waiter *w, double until)
{
    if (until == 0 || until > r->deadline)
        until = r->deadline;
    struct timespec ts = {(time_t)until, (long)((until - (time_t)until) * 1e9)};
    pthread_mutex_lock(&w->m);
    while (!w->signaled && mono() < until)
        pthread_cond_timedwait(&w->c, &w->m, &ts);
    w->signaled = 0;
    pthread_mutex_unlock(&w->m);
    return mono() < r->deadline;
}

struct thr_arg {
    struct thr_run *r;
    int id;
};

static void *thr_worker(void *p)
{
    struct thr_arg *a = p;
    struct thr_run *r = a->r;
    struct queue_lease held[THR_HOLD];
    int n = 0;
    while (!queue_drained(r->q)) {
        struct queue_lease l;
        if (n < THR_HOLD && queue_take(r->q, a->id, mono(), &l) == 1) {
            int g = atoi(l.group + 1);
            if (atomic_fetch_add(&r->inflight[g], 1) + 1 > 1)
                atomic_fetch_add(&r->over_limit, 1);
            held[n++] = l;
            continue;
        }
        if (n == 0) {
            atomic_fetch_add(&r->waits, 1);
            if (!thr_wait(r, &r->w[a->id], queue_next_due(r->q))) {
                atomic_store(&r->timed_out, 1);
                break;
            }
            continue;
        }
        for (int i = 0; i < n; i++) {
            int g = atoi(held[i].group + 1);
            atomic_fetch_sub(&r->inflight[g], 1);
            atomic_fetch_add(&r->acked[held[i].job_id], 1);
            if (queue_ack(r->q, held[i].lease) == 0)
                atomic_fetch_add(&r->done, 1);
        }
        n = 0;
    }
    return NULL;
}

static void test_threads(void)
{
    struct queue_config cfg = {.capacity = THR_JOBS, .workers = THR_WORKERS, .group_limit = 1};
    struct thr_run r = {.q = queue_open("memory", &cfg, NULL, 0), .deadline = mono() + 60};
    CHECK(r.q != NULL);
    if (!r.q)
        return;
    r.acked = calloc(THR_JOBS + 1, sizeof *r.acked);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (int i = 0; i <= THR_WORKERS; i++) {
        pthread_mutex_init(&r.w[i].m, NULL);
        pthread_cond_init(&r.w[i].c, &ca);
        queue_set_notify(r.q, i, thr_notify, &r.w[i]);
    }
    pthread_condattr_destroy(&ca);
    char name[8];
    for (int i = 0; i < THR_JOBS; i++) {
        int len = snprintf(name, sizeof name, "g%d", i % THR_GROUPS);
        struct queue_push_opts o = {.group = name, .group_len = (size_t)len};
        CHECK_EQ_INT(queue_push(r.q, "j", 1, &o, mono(), NULL), QUEUE_OK);
    }
    queue_producer_done(r.q);

    pthread_t t[THR_WORKERS];
    struct thr_arg args[THR_WORKERS];
    double t0 = mono();
    for (int i = 0; i < THR_WORKERS; i++) {
        args[i] = (struct thr_arg){&r, i + 1};
        pthread_create(&t[i], NULL, thr_worker, &args[i]);
    }
    for (int i = 0; i < THR_WORKERS; i++)
        pthread_join(t[i], NULL);
    double took = mono() - t0;

    CHECK_EQ_INT(atomic_load(&r.timed_out), 0);
    CHECK_EQ_INT(atomic_load(&r.over_limit), 0);
    CHECK_EQ_INT(atomic_load(&r.done), THR_JOBS);
    int once = 0;
    for (int i = 1; i <= THR_JOBS; i++)
        once += r.acked[i] == 1;
    CHECK_EQ_INT(once, THR_JOBS);
    CHECK_EQ_INT(queue_drained(r.q), 1);
    printf("threads: %d jobs over %d groups of limit 1 by %d workers in %.2f s, %d waits "
           "for a notify\n",
           THR_JOBS, THR_GROUPS, THR_WORKERS, took, atomic_load(&r.waits));
    for (int i = 0; i <= THR_WORKERS; i++) {
        pthread_mutex_destroy(&r.w[i].m);
        pthread_cond_destroy(&r.w[i].c);
    }
    free(r.acked);
    queue_free(r.q);
}

/* take + ack pairs per second with 64 leases held, the way one worker with
 * 64 jobs in flight uses the queue: jobs of `groups` groups (0: the empty
 * group) of limit `limit`. */
#define BENCH_JOBS 200000
#define BENCH_HELD 64

static double bench(int groups, int limit)
{
    struct queue_config cfg = {.capacity = BENCH_JOBS, .workers = 1, .group_limit = limit};
    queue *q = queue_open("memory", &cfg, NULL, 0);
    CHECK(q != NULL);
    if (!q)
        return 0;
    char name[16];
    for (int i = 0; i < BENCH_JOBS; i++) {
        int len = groups ? snprintf(name, sizeof name, "host%d", i % groups) : 0;
        struct queue_push_opts o = {.group = groups ? name : NULL, .group_len = (size_t)len};
        CHECK_EQ_INT(queue_push(q, "https://example.com/", 20, &o, 0, NULL), QUEUE_OK);
    }
    uint64_t ring[BENCH_HELD] = {0};
    int pairs = 0, held = 0, head = 0;
    double t0 = mono();
    struct queue_lease l;
    for (;;) {
        if (held < BENCH_HELD && queue_take(q, 1, 0, &l) == 1) {
            ring[(head + held++) % BENCH_HELD] = l.lease;
            continue;
        }
        if (held == 0)
            break;
        queue_ack(q, ring[head]);
        head = (head + 1) % BENCH_HELD;
        held--;
        pairs++;
    }
    double took = mono() - t0;
    CHECK_EQ_INT(pairs, BENCH_JOBS);
    queue_free(q);
    return pairs / took;
}

static void test_bench(void)
{
    double none = bench(0, 0), one = bench(1, 64), many = bench(1000, 64), tight = bench(1000, 1);
    printf("take+ack per second, %d held: empty group %.2fM (%.0f ns), 1 group limit 64 "
           "%.2fM (%.0f ns), 1000 groups limit 64 %.2fM (%.0f ns), 1000 groups limit 1 "
           "%.2fM (%.0f ns)\n",
           BENCH_HELD, none / 1e6, 1e9 / none, one / 1e6, 1e9 / one, many / 1e6, 1e9 / many,
           tight / 1e6, 1e9 / tight);
    /* loose: only a change of complexity (a scan of the groups per take)
     * would come near it, even under the sanitizers */
    CHECK(one > 0 && 1e9 / one < 20000);
    CHECK(tight > 0 && 1e9 / tight < 20000);
}

/* The backend against a plain model of the rules, over random operations
 * at random times: the model scans every job for each take (the best ready
 * job of a group with room whose start has come), so it is slow and
 * obviously right; the backend must hand out the same job every time, agree
 * on next_due whenever a take finds nothing, and report the same counts.
 * No jitter here, so both compute the same gaps. */
#define MODEL_GROUPS 5 /* named ones; index MODEL_GROUPS is the empty group */
#define MODEL_JOBS 3000
#define MODEL_STEPS 16000

struct model_job {
    int group, priority, state; /* 0 none, 1 ready, 2 delayed, 3 leased, 4 done */
    uint64_t seq, lease;
    double due;
    int worker;
};

struct model_group {
    int inflight, limit, ready, delayed;
    uint64_t started;
    double delay, next_start;
};

struct model {
    struct model_job job[MODEL_JOBS + 1]; /* by job id */
    struct model_group group[MODEL_GROUPS + 1];
    int njobs;
    uint64_t seq;
};

static const char *model_name(int g, char *buf)
{
    if (g == MODEL_GROUPS)
        return "";
    snprintf(buf, 8, "m%d", g);
    return buf;
}

static int model_open(const struct model *m, int g, double now)
{
    const struct model_group *mg = &m->group[g];
    if (g == MODEL_GROUPS)
        return 1;
    return (mg->limit == 0 || mg->inflight < mg->limit) && mg->next_start <= now;
}

static void model_promote(struct model *m, double now)
{
    for (int i = 1; i <= m->njobs; i++) {
        struct model_job *j = &m->job[i];
        if (j->state == 2 && j->due <= now) {
            j->state = 1;
            m->group[j->group].delayed--;
            m->group[j->group].ready++;
        }
    }
}

/* The job id the model hands out at now, or 0. */
static int model_take(struct model *m, double now)
{
    model_promote(m, now);
    int best = 0;
    for (int i = 1; i <= m->njobs; i++) {
        struct model_job *j = &m->job[i];
        if (j->state != 1 || !model_open(m, j->group, now))
            continue;
        if (!best || j->priority > m->job[best].priority ||
            (j->priority == m->job[best].priority && j->seq < m->job[best].seq))
            best = i;
    }
    if (best) {
        struct model_group *g = &m->group[m->job[best].group];
        m->job[best].state = 3;
        g->ready--;
        g->inflight++;
        g->started++;
        if (m->job[best].group != MODEL_GROUPS && g->delay > 0)
            g->next_start = now + g->delay;
    }
    return best;
}

/* next_due right after a take at now found nothing. */
static double model_due(const struct model *m)
{
    double due = 0;
    for (int i = 1; i <= m->njobs; i++)
        if (m->job[i].state == 2 && (due == 0 || m->job[i].due < due))
            due = m->job[i].due;
    for (int g = 0; g < MODEL_GROUPS; g++) {
        const struct model_group *mg = &m->group[g];
        if (mg->ready > 0 && (mg->limit == 0 || mg->inflight < mg->limit) &&
            (due == 0 || mg->next_start < due))
            due = mg->next_start;
    }
    return due;
}

struct model_check {
    const struct model *m;
    int mismatches, seen;
};

static void model_compare_group(void *arg, const struct queue_group_info *info)
{
    struct model_check *c = arg;
    int g = atoi(info->name + 1);
    const struct model_group *mg = &c->m->group[g];
    c->seen++;
    if ((int)info->inflight != mg->inflight || (int)info->ready != mg->ready ||
        (int)info->delayed != mg->delayed || info->started != mg->started ||
        info->limit != mg->limit || info->delay != mg->delay)
        c->mismatches++;
}

static void test_against_model(void)
{
    struct queue_config cfg = {
        .capacity = MODEL_JOBS, .workers = 2, .group_limit = 2, .group_delay = 0.2};
    queue *q = queue_open("memory", &cfg, NULL, 0);
    CHECK(q != NULL);
    static struct model m;
    memset(&m, 0, sizeof m);
    if (!q)
        return;
    for (int g = 0; g < MODEL_GROUPS; g++) {
        m.group[g].limit = 2;
        m.group[g].delay = 0.2;
    }
    sim_rng = 99;
    double now = 1;
    int wrong_take = 0, wrong_due = 0, wrong_op = 0, takes = 0, empty_takes = 0;
    char name[8];
    for (int step = 0; step < MODEL_STEPS; step++) {
        if (sim_uniform(0, 1) < 0.3)
            now += sim_uniform(0, 0.15);
        double r = sim_uniform(0, 1);
        int g = (int)sim_uniform(0, MODEL_GROUPS + 1);
        const char *gname = model_name(g, name);
        if (r < 0.25 && m.njobs < MODEL_JOBS) {
            int prio = (int)sim_uniform(0, 3);
            double delay = sim_uniform(0, 1) < 0.3 ? sim_uniform(0, 0.5) : 0;
            struct queue_push_opts o = {
                .priority = prio, .delay = delay, .group = gname, .group_len = strlen(gname)};
            uint64_t id = 0;
            if (queue_push(q, "m", 1, &o, now, &id) != QUEUE_OK || id != (uint64_t)m.njobs + 1) {
                wrong_op++;
                continue;
            }
            struct model_job *j = &m.job[++m.njobs];
            *j = (struct model_job){g, prio, delay > 0 ? 2 : 1, ++m.seq, 0, now + delay, 0};
            if (delay > 0)
                m.group[g].delayed++;
            else
                m.group[g].ready++;
        } else if (r < 0.6) {
            int worker = 1 + (int)sim_uniform(0, 2);
            struct queue_lease l;
            int got = queue_take(q, worker, now, &l) == 1 ? (int)l.job_id : 0;
            int want = model_take(&m, now);
            if (got != want)
                wrong_take++;
            if (got && got == want) {
                m.job[got].lease = l.lease;
                m.job[got].worker = worker;
                takes++;
            }
            if (!got && !want) {
                empty_takes++;
                if (queue_next_due(q) != model_due(&m))
                    wrong_due++;
            }
        } else if (r < 0.9) {
            /* finish a random leased job: ack, retry now, or retry later */
            int held[MODEL_JOBS], n = 0;
            for (int i = 1; i <= m.njobs; i++)
                if (m.job[i].state == 3)
                    held[n++] = i;
            if (!n)
                continue;
            struct model_job *j = &m.job[held[(int)sim_uniform(0, n)]];
            struct model_group *mg = &m.group[j->group];
            double how = sim_uniform(0, 1);
            mg->inflight--;
            if (how < 0.7) {
                wrong_op += queue_ack(q, j->lease) != 0;
                j->state = 4;
            } else {
                double delay = how < 0.85 ? 0 : sim_uniform(0, 0.5);
                wrong_op += queue_retry(q, j->lease, delay, now) != 0;
                j->seq = ++m.seq;
                j->state = delay > 0 ? 2 : 1;
                j->due = now + delay;
                if (delay > 0)
                    mg->delayed++;
                else
                    mg->ready++;
            }
        } else if (r < 0.93) {
            int worker = 1 + (int)sim_uniform(0, 2), n = 0;
            for (int i = 1; i <= m.njobs; i++) {
                if (m.job[i].state == 3 && m.job[i].worker == worker) {
                    m.job[i].state = 1; /* same seq: its old place */
                    m.group[m.job[i].group].inflight--;
                    m.group[m.job[i].group].ready++;
                    n++;
                }
            }
            wrong_op += queue_release_worker(q, worker, 0) != n;
        } else if (r < 0.97) {
            double delay = sim_uniform(0, 1) < 0.5 ? -1 : sim_uniform(0, 0.6);
            int limit = (int)sim_uniform(-1, 4);
            int rc = queue_group_tune(q, gname, strlen(gname), delay, limit);
            if (g == MODEL_GROUPS) {
                wrong_op += rc != -1;
                continue;
            }
            wrong_op += rc != 0;
            if (delay >= 0)
                m.group[g].delay = delay;
            if (limit >= 0)
                m.group[g].limit = limit;
        } else {
            double until = now + sim_uniform(-0.5, 1);
            int rc = queue_group_pause(q, gname, strlen(gname), until);
            if (g == MODEL_GROUPS) {
                wrong_op += rc != -1;
                continue;
            }
            wrong_op += rc != 0;
            if (until > m.group[g].next_start)
                m.group[g].next_start = until;
        }
    }
    struct model_check c = {&m, 0, 0};
    queue_each_group(q, model_compare_group, &c);
    CHECK_EQ_INT(wrong_take, 0);
    CHECK_EQ_INT(wrong_due, 0);
    CHECK_EQ_INT(wrong_op, 0);
    CHECK_EQ_INT(c.mismatches, 0);
    CHECK_EQ_INT(c.seen, MODEL_GROUPS);
    CHECK(takes > 1000 && empty_takes > 100); /* both paths were exercised */
    printf("model: %d steps, %d jobs, %d takes, %d takes that found nothing, all as the "
           "model says\n",
           MODEL_STEPS, m.njobs, takes, empty_takes);
    queue_free(q);
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* A crawl of many hosts keeps an entry per host for the run: what one
 * costs once its jobs are done (a host name of 20 bytes). */
static void test_group_memory(void)
{
    enum { N = 100000 };
    struct queue_config cfg = {.capacity = 10, .workers = 1, .group_limit = 8};
    queue *q = queue_open("memory", &cfg, NULL, 0);
    CHECK(q != NULL);
    if (!q)
        return;
    size_t before = heap_in_use();
    char name[32];
    struct queue_lease l;
    int done = 0;
    for (int i = 0; i < N; i++) {
        int len = snprintf(name, sizeof name, "www.host%06d.org", i);
        struct queue_push_opts o = {.group = name, .group_len = (size_t)len};
        CHECK_EQ_INT(queue_push(q, "j", 1, &o, 0, NULL), QUEUE_OK);
        if (queue_take(q, 1, 0, &l) == 1)
            done += queue_ack(q, l.lease) == 0;
    }
    size_t after = heap_in_use();
    CHECK_EQ_INT(done, N);
    int groups = 0;
    queue_each_group(q, count_group, &groups);
    CHECK_EQ_INT(groups, N);
    /* Sanitizer runtimes replace malloc and report nothing here. */
    if (after > before) {
        printf("groups: %d hosts kept in %zu bytes, %.0f bytes/host\n", N, after - before,
               (double)(after - before) / N);
        CHECK((after - before) / N < 300);
    }
    queue_free(q);
}

int main(void)
{
    test_config();
    test_simulated_crawl();
    test_against_model();
    test_group_memory();
    test_threads();
    test_bench();
    return check_done();
}
