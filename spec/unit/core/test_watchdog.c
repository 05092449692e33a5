/* The watchdog's verdicts (watchdog.h), with the watcher's clock in the
 * test's hands: in time or outside script code is fine; late pokes the
 * owner with SIGUSR2 once per check; late for the grace within one entry is
 * stuck, a new entry starts the grace again; code with no time budget is
 * late only once told to stop. And a guard around code that returns in
 * time leaves nothing behind. */
#include "check.h"
#include "core/watchdog.h"

#include <signal.h>
#include <stdint.h>

static volatile sig_atomic_t pokes;

static void on_usr2(int sig)
{
    (void)sig;
    pokes++;
}

int main(void)
{
    struct sigaction sa = {.sa_handler = on_usr2};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);

    static struct wd_site site;
    wd_bind(&site);
    CHECK(wd_current() == &site);
    double t = wd_clock();

    /* outside script code, and in time */
    CHECK_EQ_INT(wd_check(&site, t + 100), WD_FINE);
    wd_begin(&site, WD_INIT, (int64_t)((t + 10) * 1e9), 10);
    CHECK_EQ_INT(wd_check(&site, t + 5), WD_FINE);
    CHECK_EQ_INT(pokes, 0);

    /* late: poked at each check until the grace is over, then stuck */
    CHECK_EQ_INT(wd_check(&site, t + 10.5), WD_LATE);
    CHECK_EQ_INT(pokes, 1);
    CHECK_EQ_INT(wd_check(&site, t + 10.5 + WD_GRACE - 0.1), WD_LATE);
    CHECK_EQ_INT(pokes, 2);
    CHECK_EQ_INT(wd_check(&site, t + 10.5 + WD_GRACE + 0.1), WD_STUCK);
    CHECK_EQ_INT(pokes, 2);

    /* the code returned and a new entry began late: its own grace */
    wd_end(&site);
    CHECK_EQ_INT(wd_check(&site, t + 20), WD_FINE);
    wd_begin(&site, WD_HANDLE, (int64_t)((t + 1) * 1e9), 1);
    CHECK_EQ_INT(wd_check(&site, t + 20), WD_LATE);
    CHECK_EQ_INT(wd_check(&site, t + 20 + WD_GRACE - 0.1), WD_LATE);
    wd_begin(&site, WD_HANDLE, (int64_t)((t + 1) * 1e9), 1); /* the next resume */
    CHECK_EQ_INT(wd_check(&site, t + 20 + WD_GRACE + 0.1), WD_LATE);
    wd_end(&site);

    /* no time budget: fine however long, until told to stop */
    wd_begin(&site, WD_PRODUCE, WD_NO_LIMIT, 0);
    CHECK_EQ_INT(wd_check(&site, t + 1e6), WD_FINE);
    atomic_store(&site.stop, 1);
    CHECK_EQ_INT(wd_check(&site, t + 1e6), WD_LATE);
    CHECK_EQ_INT(wd_check(&site, t + 1e6 + WD_GRACE + 0.1), WD_STUCK);
    /* stop is for code with no budget: done() after it keeps its own */
    wd_begin(&site, WD_DONE, (int64_t)((t + 1e6 + 10) * 1e9), 10);
    CHECK_EQ_INT(wd_check(&site, t + 1e6 + 5), WD_FINE);
    wd_end(&site);

    /* a deadline of 0 means no limit; wd_after(0) too */
    wd_begin(&site, WD_LOAD, 0, 0);
    CHECK_EQ_INT(atomic_load(&site.deadline_ns), WD_NO_LIMIT);
    wd_end(&site);
    CHECK_EQ_INT(wd_after(0), WD_NO_LIMIT);
    CHECK(wd_after(1) > (int64_t)(wd_clock() * 1e9));

    /* names and flags the messages use */
    CHECK_STR(wd_entry_name(WD_LOAD), "the script's top level");
    CHECK_STR(wd_entry_name(WD_INIT), "init()");
    CHECK_STR(wd_entry_name(WD_DONE), "done()");
    CHECK_STR(wd_entry_flag(WD_HANDLE), "--timeout");
    CHECK_STR(wd_entry_flag(WD_LABELS), "--timeout");
    CHECK_STR(wd_entry_flag(WD_INIT), "--hook-timeout");

    /* a guard around code that returns in time: the thread's own site is
     * back afterwards, and nothing was poked */
    int before = pokes;
    struct wd_guard *g = wd_guard_begin(WD_INIT, 10, "test.lua", 3, 130);
    CHECK(g != NULL);
    CHECK(wd_current() != &site);
    CHECK_EQ_INT(atomic_load(&wd_current()->entry), WD_INIT);
    wd_guard_end(g);
    CHECK(wd_current() == &site);
    CHECK_EQ_INT(pokes, before);
    return check_done();
}
