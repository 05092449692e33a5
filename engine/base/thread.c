/* thread.c - see thread.h. The hooks are read by every thread as it starts
 * and ends, and written by the main thread around the threads' lives. */
#include "base/thread.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic(thread_enter_fn) on_enter;
static _Atomic(thread_exit_fn) on_exit;

void thread_set_hooks(thread_enter_fn enter, thread_exit_fn exit)
{
    atomic_store(&on_enter, enter);
    atomic_store(&on_exit, exit);
}

int thread_enter(const char *name, int worker)
{
    thread_enter_fn fn = atomic_load(&on_enter);
    return fn ? fn(name, worker) : -1;
}

void thread_exit(void)
{
    thread_exit_fn fn = atomic_load(&on_exit);
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
