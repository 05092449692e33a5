/* The Lua boundary both ways, as the workers use it: lua_job.h (scripts
 * that load or do not, with file:line; jobs that succeed, fail with a
 * traceback, blow the memory cap, or run away past their deadline;
 * coroutines reused between attempts) and lua_host.h, through a fake host:
 * its watchdog view stops the runaway, and a job's shoal.sleep and
 * shoal.job reach it. Nothing of the engine's core is linked in use. */
#include "check.h"
#include "lua/lua_host.h"
#include "lua/lua_job.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/shoal-lj-XXXXXX";

/* The fake host: the watchdog's view of this thread (what the hook reads),
 * and a record of the I/O asked of it. */
static struct lj_watch watching;
static int slept_slot = -1;
static double slept_for;

static int fake_watch(struct lj_watch *out)
{
    *out = watching;
    return 0;
}

static void watch_handle(int64_t deadline_ns)
{
    watching = (struct lj_watch){.deadline_ns = deadline_ns, .handle = 1, .entry = "handle()",
                                 .flag = "--timeout", .budget = 0.2};
}

static void fake_sleep(void *host, int slot, double seconds)
{
    (void)host;
    slept_slot = slot;
    slept_for = seconds;
}

static int fake_job(void *host, int slot, uint64_t *id, int *attempt, int *depth)
{
    (void)host;
    *id = 40 + (uint64_t)slot;
    *attempt = 3;
    *depth = 0;
    return 0;
}

static int fake_log_wants(void *host, int level)
{
    (void)host;
    (void)level;
    return 0;
}

static enum lj_items_format fake_items_format(void *host)
{
    (void)host;
    return LJ_ITEMS_NONE;
}

static const struct lj_host fake_host = {
    .items_format = fake_items_format,
    .sleep_start = fake_sleep,
    .log_wants = fake_log_wants,
    .job = fake_job,
    .watch = fake_watch,
};
static int fake_host_data; /* a host pointer: the state may do I/O */

static const char *write_script(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static lj *load(const char *name, const char *text, size_t cap_mb, char *err, size_t errlen)
{
    struct lj_config c = {.worker_id = 1, .script = write_script(name, text), .slots = 4,
                          .timeout = 0.2, .mem_cap = cap_mb << 20, .host_ops = &fake_host};
    return lj_new(&c, err, errlen);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static lj *alarm_target;
static void on_alarm(int sig)
{
    (void)sig;
    lj_watchdog_signal(alarm_target);
}

int main(void)
{
    char err[4096];
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    /* a syntax error names the file and line */
    lj *s = load("broken.lua", "function handle(job)\n  local x = = 1\nend\n", 0, err,
                 sizeof err);
    CHECK(s == NULL);
    CHECK(strstr(err, "broken.lua:2:") != NULL);

    /* an error at load time, too, with its line */
    s = load("raises.lua", "local a = 1\nerror('no config')\n", 0, err, sizeof err);
    CHECK(s == NULL);
    CHECK(strstr(err, "raises.lua:2: no config") != NULL);

    /* no handle: loads, but check says what is missing */
    s = load("nohandle.lua", "x = 1\n", 0, err, sizeof err);
    CHECK(s != NULL);
    CHECK(lj_check(s, err, sizeof err) == -1);
    CHECK(strstr(err, "handle") != NULL);
    lj_free(s);

    /* bad options are named */
    s = load("badopt.lua", "options = { workers = 'two' }\nfunction handle() end\n", 0, err,
             sizeof err);
    CHECK(s != NULL && lj_check(s, err, sizeof err) == -1);
    CHECK(strstr(err, "options.workers") != NULL);
    lj_free(s);

    /* jobs: success, failure with file:line and traceback, reuse of the slot */
    s = load("jobs.lua",
             "count = 0\n"
             "function handle(job)\n"
             "  count = count + 1\n"
             "  if job.fail then error('bad job ' .. job.n) end\n"
             "  return true\n"
             "end\n",
             0, err, sizeof err);
    CHECK(s != NULL);
    if (s) {
        CHECK(lj_check(s, err, sizeof err) == 0);
        const char *ok = "{\"n\":1}", *bad = "{\"n\":2,\"fail\":true}";
        CHECK_EQ_INT(lj_job_start(s, 0, ok, strlen(ok), 1, 1), LJ_OK);
        CHECK_EQ_INT(lj_job_start(s, 0, bad, strlen(bad), 2, 1), LJ_FAIL);
        CHECK(strstr(lj_error(s, 0), "jobs.lua:4: bad job 2") != NULL);
        CHECK(strstr(lj_error(s, 0), "stack traceback") != NULL);
        /* the same slot runs the next job after a failure */
        CHECK_EQ_INT(lj_job_start(s, 0, ok, strlen(ok), 3, 1), LJ_OK);
        /* a job that is not JSON fails cleanly */
        CHECK_EQ_INT(lj_job_start(s, 1, "{nope", 5, 4, 1), LJ_FAIL);
        lj_free(s);
    }

    /* a coroutine.yield of the script's own is not mistaken for I/O */
    s = load("yields.lua", "function handle(job) coroutine.yield(1) end\n", 0, err, sizeof err);
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ_INT(lj_job_start(s, 0, "{}", 2, 1, 1), LJ_FAIL);
        CHECK(strstr(lj_error(s, 0), "yielded on its own") != NULL);
        CHECK_EQ_INT(lj_job_start(s, 0, "{}", 2, 2, 1), LJ_FAIL); /* slot still usable */
        lj_free(s);
    }

    /* the memory cap stops a bomb in that job only */
    s = load("bomb.lua",
             "function handle(job)\n"
             "  if job.bomb then local t = {} for i = 1, 1e8 do t[i] = {i} end end\n"
             "end\n",
             32, err, sizeof err);
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ_INT(lj_job_start(s, 0, "{\"bomb\":true}", 13, 1, 1), LJ_FAIL);
        CHECK(strstr(lj_error(s, 0), "memory cap of 32 MiB") != NULL);
        CHECK(strstr(lj_error(s, 0), "--memory") != NULL);
        lj_collect(s);
        CHECK(lj_mem_used(s) < (16u << 20));
        CHECK_EQ_INT(lj_job_start(s, 1, "{}", 2, 2, 1), LJ_OK);
        lj_free(s);
    }

    /* the watchdog hook stops a loop that calls into the runtime, with the
     * script's line, once its deadline has passed */
    s = load("spin.lua",
             "function handle(job)\n"
             "  local n = 0\n"
             "  while true do\n"
             "    n = n + #tostring(n)\n"
             "  end\n"
             "end\n",
             0, err, sizeof err);
    CHECK(s != NULL);
    if (s) {
        alarm_target = s;
        signal(SIGALRM, on_alarm);
        struct itimerval it = {.it_value = {0, 100000}};
        setitimer(ITIMER_REAL, &it, NULL);
        watch_handle(now_ns() + 50000000); /* 50 ms */
        int64_t t0 = now_ns();
        CHECK_EQ_INT(lj_job_start(s, 0, "{}", 2, 1, 1), LJ_FAIL);
        CHECK(now_ns() - t0 < 5000000000LL);
        CHECK(strstr(lj_error(s, 0), "spin.lua:4: job ran past") != NULL);
        CHECK(strstr(lj_error(s, 0), "time budget") != NULL);
        lj_watchdog_clear(s);
        watching.deadline_ns = 0;
        lj_free(s);
    }

    /* an armed hook does not hurt a job that is within its deadline */
    s = load("fine.lua", "function handle(job) local n = 0 for i = 1, 1000 do n = n + i end end\n",
             0, err, sizeof err);
    CHECK(s != NULL);
    if (s) {
        watch_handle(now_ns() + 60000000000LL);
        lj_watchdog_signal(s);
        CHECK_EQ_INT(lj_job_start(s, 0, "{}", 2, 1, 1), LJ_OK);
        watching.deadline_ns = 0;
        lj_free(s);
    }

    /* with a host, a job's shoal.sleep goes to it and the job waits until
     * resumed; shoal.job asks it for the job's id and attempt (the fake says 40 + slot, 3) */
    {
        struct lj_config c = {.worker_id = 1,
                              .script = write_script("io.lua",
                                                     "function handle(job)\n"
                                                     "  shoal.sleep(0.25)\n"
                                                     "  local j = shoal.job\n"
                                                     "  if j.id ~= 42 or j.attempt ~= 3 then\n"
                                                     "    error('job ' .. tostring(j.id))\n"
                                                     "  end\n"
                                                     "end\n"),
                              .slots = 4,
                              .timeout = 0.2,
                              .host_ops = &fake_host,
                              .host = &fake_host_data};
        s = lj_new(&c, err, sizeof err);
        CHECK(s != NULL);
        if (s) {
            CHECK_EQ_INT(lj_job_start(s, 2, "{}", 2, 42, 3), LJ_WAIT);
            CHECK_EQ_INT(slept_slot, 2);
            CHECK(slept_for == 0.25);
            CHECK_EQ_INT(lj_resume(s, 2), LJ_OK);
            lj_free(s);
        }
    }

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}
