/* producer.c - worker 0's states: produce() runs in slot 0 until it
 * returns, fails or the run stops it (0 producing -> 1 produced); when the
 * run asks (finish_producer), done(stats) runs in slot 1 within
 * --hook-timeout (2 done() running -> 3 finished), and the worker leaves.
 * A push into a full queue waits in OP_ROOM until the queue has room. */
#include "core/producer.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "core/polite.h"
#include "core/run.h"

#define PRODUCE_SLOT 0

static int do_push_retry(struct worker *w, struct slot *s, const void *arg)
{
    (void)arg;
    return lj_resume_push_retry(w->lua, s->idx);
}
static int do_produce(struct worker *w, struct slot *s, const void *arg)
{
    (void)arg;
    return lj_produce_start(w->lua, s->idx);
}
static int do_done(struct worker *w, struct slot *s, const void *arg)
{
    return lj_done_start(w->lua, s->idx, arg);
}

/* shoal try: the one job is pushed instead of running produce(), and
 * done() does not run. */
static void try_start(struct worker *w)
{
    struct run *r = w->run;
    const char *job = r->cfg->try_job;
    struct queue_push_opts o = {.from_producer = 1};
    char group[POLITE_GROUP_MAX];
    const char *target = r->cfg->try_target;
    if (target[0] != '{') {
        /* keyed by its URL, as a crawl would: a link back to it is a duplicate */
        o.key = target;
        o.key_len = strlen(target);
        if ((o.group_len = polite_group(target, group)))
            o.group = group;
    }
    if (queue_push(r->q, job, strlen(job), &o, clock_now(), NULL) != QUEUE_OK)
        snprintf(r->producer_error, sizeof r->producer_error, "could not queue the job %s", job);
    queue_producer_done(r->q);
    w->producer_state = 3;
}

void producer_start(struct worker *w)
{
    if (w->run->cfg->try_job) {
        try_start(w);
        return;
    }
    if (!queue_claim(w->run->q, "producer")) {
        /* a resumed run whose produce() had returned, or a shared run whose
         * producer is another process */
        worker_log_event(w, LOG_INFO, "produce() is not run: its jobs are already queued", NULL,
                         NULL);
        w->producer_state = 1;
        return;
    }
    struct slot *s = worker_slot_take(w);
    s->kind = SLOT_PRODUCE;
    worker_after_resume(w, s, worker_enter_lua(w, s, do_produce, NULL));
}

void producer_finished(struct worker *w, struct slot *s, int status)
{
    struct run *r = w->run;
    if (status == LJ_WAIT) {
        worker_timer_set(w, s);
        return;
    }
    if (atomic_load(&w->abandoned))
        return; /* wedged: the main thread has given up on this thread */
    if (s->kind == SLOT_PRODUCE) {
        if (status == LJ_FAIL && lj_take_stopped(w->lua)) {
            worker_log_event(w, LOG_INFO, "produce() stopped: the run is ending", NULL, NULL);
        } else if (status == LJ_FAIL) {
            snprintf(r->producer_error, sizeof r->producer_error, "produce() failed: %s",
                     lj_error(w->lua, s->idx));
            run_stop(r, "producer-failed");
        }
        queue_producer_done(r->q);
        w->producer_state = 1;
    } else {
        if (status == LJ_FAIL)
            snprintf(r->producer_error, sizeof r->producer_error, "done() failed: %s",
                     lj_error(w->lua, s->idx));
        w->producer_state = 3;
    }
    worker_slot_put(w, s);
}

void producer_step(struct worker *w)
{
    struct run *r = w->run;
    if (w->producer_state == 0 && atomic_load(&r->stopping)) {
        /* Ctrl-C or --max-jobs while producing: leave produce() where it is */
        struct slot *s = &w->slots[PRODUCE_SLOT];
        if (s->busy) {
            worker_cancel_io(w, s);
            lj_abandon(w->lua, s->idx);
            worker_slot_put(w, s);
        }
        queue_producer_done(r->q);
        w->producer_state = 1;
    }
    if (w->producer_state == 0) {
        struct slot *s = &w->slots[PRODUCE_SLOT];
        if (s->busy && s->op == OP_ROOM) {
            s->op = OP_NONE;
            worker_after_resume(w, s, worker_enter_lua(w, s, do_push_retry, NULL));
        }
    }
    if (w->producer_state == 1 && atomic_load(&r->finish_producer) &&
        !queue_claim(r->q, "done")) {
        /* stopped before the end of a kept run, or another process ends a
         * shared one: done() runs there and then */
        worker_log_event(w, LOG_INFO, "done() is not run: the run is not over", NULL, NULL);
        w->producer_state = 3;
    }
    if (w->producer_state == 1 && atomic_load(&r->finish_producer)) {
        w->producer_state = 2;
        struct slot *s = worker_slot_take(w);
        s->kind = SLOT_DONE;
        s->deadline = clock_now() + r->cfg->hook_timeout;
        worker_after_resume(w, s, worker_enter_lua(w, s, do_done, r->stats_json));
    }
}

void producer_done_late(struct worker *w, struct slot *s)
{
    worker_cancel_io(w, s);
    lj_abandon(w->lua, s->idx);
    snprintf(w->run->producer_error, sizeof w->run->producer_error,
             "done() did not finish within its %gs budget (--hook-timeout)",
             w->run->cfg->hook_timeout);
    w->producer_state = 3;
    worker_slot_put(w, s);
}

int producer_finished_all(const struct worker *w)
{
    return w->producer_state == 3;
}
