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
 * than sending takes.
 *
 * thread_start is how the engine's background threads begin: it names the
 * thread and runs fn between thread_enter and thread_exit, lowered by thread_background when
 * asked. Their waits use a condition on CLOCK_MONOTONIC, the clock of
 * clock_now(), made by thread_cond_init and waited on with
 * thread_cond_wait_until, so a change of the wall clock never stretches or
 * cuts a wait. */
#ifndef SHOAL_THREAD_H
#define SHOAL_THREAD_H

#include <pthread.h>

typedef int (*thread_enter_fn)(const char *name, int worker);
typedef void (*thread_exit_fn)(void);

/* Set once, before the threads they concern start; NULLs remove them. */
void thread_set_hooks(thread_enter_fn enter, thread_exit_fn exit);
/* The hook's result (0: the thread is sampled), or -1 without hooks. */
int thread_enter(const char *name, int worker);
void thread_exit(void);
void thread_background(void);
/* Names the calling thread as `top -H`, `ps -L`, perf and gdb show it:
 * printf-style, cut to the kernel's 15 characters. */
void thread_name(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Starts fn(arg) on a new thread named name (a string that outlives it)
 * in *t. 0, or the error number of the failure (nothing started). */
int thread_start(pthread_t *t, const char *name, int background, void *(*fn)(void *), void *arg);
/* A condition whose timed waits count on CLOCK_MONOTONIC. 0 or an error
 * number, as pthread_cond_init. */
int thread_cond_init(pthread_cond_t *c);
/* Waits on c (lock held) until woken or until `until`, in clock_now()
 * seconds (INFINITY: no limit). Spurious wake-ups return too: loop on the
 * condition. */
void thread_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *lock, double until);

#endif
