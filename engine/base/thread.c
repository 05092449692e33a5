/* thread.c - see thread.h. The hooks are read by every thread as it starts
 * and ends, and written by the main thread around the threads' lives. */
#define _GNU_SOURCE /* pthread_setname_np */
#include "base/thread.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic(thread_enter_fn) enter_hook;
static _Atomic(thread_exit_fn) exit_hook;

void thread_set_hooks(thread_enter_fn enter, thread_exit_fn exit)
{
    atomic_store(&enter_hook, enter);
    atomic_store(&exit_hook, exit);
}

int thread_enter(const char *name, int worker)
{
    thread_enter_fn fn = atomic_load(&enter_hook);
    return fn ? fn(name, worker) : -1;
}

void thread_exit(void)
{
    thread_exit_fn fn = atomic_load(&exit_hook);
    if (fn)
        fn();
}

void thread_background(void)
{
    /* Linux keeps a nice value per thread: PRIO_PROCESS with a thread id
     * changes only that thread */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int now = getpriority(PRIO_PROCESS, (id_t)tid);
    if (now != -1 || errno == 0)
        setpriority(PRIO_PROCESS, (id_t)tid, now + 5);
}

void thread_name(const char *fmt, ...)
{
    char name[16]; /* the kernel keeps 15 characters and the NUL */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    pthread_setname_np(pthread_self(), name);
}

struct start {
    const char *name;
    int background;
    void *(*fn)(void *);
    void *arg;
};

static void *trampoline(void *arg)
{
    struct start st = *(struct start *)arg;
    free(arg);
    thread_name("%s", st.name);
    thread_enter(st.name, -1); /* a no-op unless profiling */
    if (st.background)
        thread_background();
    void *r = st.fn(st.arg);
    thread_exit();
    return r;
}

int thread_start(pthread_t *t, const char *name, int background, void *(*fn)(void *), void *arg)
{
    struct start *st = malloc(sizeof *st);
    if (!st)
        return ENOMEM;
    *st = (struct start){name, background, fn, arg};
    int rc = pthread_create(t, NULL, trampoline, st);
    if (rc != 0)
        free(st);
    return rc;
}

int thread_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0)
        return rc;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

void thread_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *lock, double until)
{
    if (!isfinite(until)) {
        pthread_cond_wait(c, lock);
        return;
    }
    struct timespec ts;
    ts.tv_sec = (time_t)until;
    ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(c, lock, &ts);
}
