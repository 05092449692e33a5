/* sampler.h - CPU samples of C stacks, each thread on its own CPU time.
 *
 * Every thread that joins (sampler_thread_enter) gets a POSIX timer on its
 * own CPU clock (timer_create(CLOCK_THREAD_CPUTIME_ID) delivering a
 * real-time signal to that thread, SIGEV_THREAD_ID): a thread that waits
 * costs nothing and is never sampled. SIGPROF and ITIMER_PROF are left to
 * LuaJIT's own profiler. The signal handler only walks the stack
 * (libunwind, so frames of libraries built without frame pointers are
 * followed) into a buffer preallocated for that thread, with the thread's
 * current span id and whether it was inside a Lua resume; a full buffer
 * loses the sample and counts it. The profiler thread drains the buffers
 * and names the addresses (symbols_*). */
#ifndef SHOAL_SAMPLER_H
#define SHOAL_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#define SAMPLER_DEPTH 64

struct sampler_sample {
    uint64_t span_id; /* the thread's span when the signal came, 0 if none */
    int32_t thread;   /* the thread's slot: sampler_thread_info */
    uint8_t in_lua;   /* the thread was inside a Lua resume */
    uint8_t depth;
    /* leaf first: pcs[0] is the interrupted instruction itself, the
     * others are return addresses (so look pcs[0] up as pcs[0] + 1).
     * Inside LuaJIT: compiled traces have no unwind information, so a
     * sample there is pcs[0] alone (symbols: "??"); in the interpreter
     * the VM's frames ("[libluajit-5.1.so.2]") lead straight to the
     * caller of lua_resume, which jumps into the VM and leaves no frame
     * (lua_pcall and lua_cpcall do leave theirs), except from the VM's
     * helper routines, whose walks end in a bogus frame. */
    void *pcs[SAMPLER_DEPTH];
};

/* Installs the handler: hz samples per second of each joined thread's CPU
 * time. Main thread, before other threads exist. 0, or -1 with a message.
 * CPU-clock timers expire on the kernel's tick, so asking for more than
 * its HZ (often 250) gives fewer samples than hz, not more. */
int sampler_init(int hz, char *err, size_t errlen);
/* The nanoseconds of CPU time between two samples of one thread. */
int64_t sampler_period_ns(void);

/* The calling thread is sampled from now until sampler_thread_exit (call
 * it before the thread ends). name: "worker", "producer", "main", ...;
 * worker: its id, or -1. A no-op returning -1 when sampler_init was not
 * called, the thread already joined, or 256 threads are joined. */
int sampler_thread_enter(const char *name, int worker);
void sampler_thread_exit(void);
/* Samples each joining thread's buffer holds (rounded up to a power of
 * two; 1024 unless set: 10 s of one thread's CPU at 100 Hz). For threads
 * that join afterwards; tests make it small. */
void sampler_set_ring_size(size_t samples);

/* Marks the signal handler reads on the calling thread (cheap: a store). */
void sampler_set_span(uint64_t span_id);
void sampler_set_in_lua(int on);
/* On the thread whose Lua state is under LuaJIT's profiler: a sample that
 * lands inside Lua also raises SIGPROF on this thread, so LuaJIT records
 * the script's stack at that point (lua_profile.c). */
void sampler_set_lua_kick(int on);

/* The calling thread's own stack now (not from a signal): return
 * addresses, leaf first (pcs[0] is in the caller of sampler_backtrace),
 * at most max (up to 256) frames. Holds this thread's sampling signal back
 * while it walks (the sample is taken right after, not lost). */
int sampler_backtrace(void **pcs, int max);

/* Profiler thread: moves up to max samples out of every thread's buffer. */
size_t sampler_drain(struct sampler_sample *out, size_t max);
/* The name and worker id a thread slot joined with ("" and -1 for a slot
 * never joined). A slot is taken again by a new thread only once all 256
 * have been used, so the answer holds long after its samples drained. */
void sampler_thread_info(int32_t thread, const char **name, int *worker);
/* Samples lost to a full buffer so far. */
uint64_t sampler_lost(void);

/* Stops every timer and restores the signal's disposition (ignored, when
 * it was the default, which for a real-time signal would end the process
 * on a straggler). Main thread, after the sampled threads have exited (or
 * never again drained). Buffers are kept for a later sampler_init. */
void sampler_shutdown(void);

/* ------------------------------------------------------------ symbols */

/* Names for addresses in this process: the function (static ones too),
 * its source file and first line when debug information says, and the
 * object it is in. Profiler thread only; results are cached and live
 * until symbols_free. */
struct symbols;
struct symbols *symbols_new(void);
/* 0 with *name (never NULL: "[libc.so.6]", the object's file name in
 * brackets, when the function is unknown; "??" when no object holds pc,
 * as for LuaJIT's compiled traces), *file (the source file relative to
 * the source tree, "engine/core/worker.c", or an absolute path outside it; the
 * object's path when there is no debug information; "" when unknown) and
 * *line (the line the function is declared on; 0 if unknown). Every pc
 * inside one function gives the same three. pc is a return address:
 * looked up as pc - 1, inside the call. */
int symbols_lookup(struct symbols *s, uintptr_t pc, const char **name, const char **file,
                   int64_t *line);
/* The one copy of the text p[0..n) (NUL-terminated), which every name and
 * file symbols_lookup gives is too: equal texts are equal pointers. Lives
 * until symbols_free; NULL when out of memory. */
const char *symbols_intern(struct symbols *s, const char *p, size_t n);
void symbols_free(struct symbols *s);

#endif
