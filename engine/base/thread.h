/* thread.h - what every engine thread does as it starts and ends.
 *
 * A thread calls thread_enter(name, worker) first and thread_exit() before
 * it ends, so a CPU profiler, when one runs, samples it: the profiler
 * registers its hooks with thread_set_hooks before any thread starts (a
 * leaf cannot name the profiler). Without hooks both are no-ops.
 * thread_background() lowers the calling thread's priority (nice +5 over
 * the process's): the threads that only send telemetry can wait a few ms,
 * and a worker should not be preempted for them. At +5 such a thread still
 * gets about a third of a worker's share when every core is busy, far more
 * than sending takes. */
#ifndef SHOAL_THREAD_H
#define SHOAL_THREAD_H

typedef int (*thread_enter_fn)(const char *name, int worker);
typedef void (*thread_exit_fn)(void);

/* Set once, before the threads they concern start; NULLs remove them. */
void thread_set_hooks(thread_enter_fn enter, thread_exit_fn exit);
/* The hook's result (0: the thread is sampled), or -1 without hooks. */
int thread_enter(const char *name, int worker);
void thread_exit(void);
void thread_background(void);

#endif
