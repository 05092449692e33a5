/* sampler.c - C stack samples on each thread's own CPU time (see sampler.h;
 * the names for the addresses are in symbols.c).
 *
 * A joined thread owns a slot in a fixed table: a ring of samples
 * allocated when it joins, and a POSIX timer on its CPU clock that sends
 * SAMPLE_SIGNAL to that thread alone. The handler runs on the sampled
 * thread and is the ring's only producer; the profiler thread, in
 * sampler_drain, is its only consumer. They share `head` (the handler
 * stores it with release once a sample is written) and `tail` (the
 * consumer stores it with release once samples are copied out); each
 * loads the other's with acquire. Nothing in the handler locks, allocates
 * or calls stdio.
 *
 * The marks the handler reads (span, in Lua, the LuaJIT kick) and the
 * thread's slot are initial-exec thread-locals of the main executable:
 * reading them never allocates, so it is safe in a handler. Only the
 * thread itself writes them.
 *
 * Slots are claimed with a compare-and-swap on their state and never
 * freed while the process runs: a ring is kept for the slot's next
 * thread, so no handler can ever touch freed memory. A slot whose thread
 * has left is taken again only once it is drained and every other slot
 * has been used, so sampler_thread_info keeps naming a departed thread's
 * samples for as long as possible. */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include "telemetry/profiles/sampler.h"
#include "base/thread.h"

#include <errno.h>
#include <link.h>
#include <libunwind.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

/* glibc before 2.41 does not name the SIGEV_THREAD_ID target field */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define SAMPLE_SIGNAL (SIGRTMIN + 4)
#define MAX_SLOTS 256
#define DEFAULT_RING 1024 /* 10 s of one thread's CPU at 100 Hz */
/* frames above the interrupted one: walk, the handler, the signal
 * trampoline, and a sanitizer's wrappers when there are any */
#define HANDLER_FRAMES 16

enum { SLOT_FREE, SLOT_CLAIMED, SLOT_LIVE, SLOT_LEFT };

struct sample_slot {
    _Atomic int state;
    _Atomic int armed; /* the timer exists: whoever clears this deletes it */
    timer_t timer;
    pid_t tid;
    int worker;
    char name[32];
    struct sampler_sample *ring;
    uint64_t cap; /* a power of two */
    _Atomic uint64_t lost;
    _Alignas(64) _Atomic uint64_t head; /* the handler's */
    _Alignas(64) _Atomic uint64_t tail; /* the consumer's */
};

static struct sample_slot slots[MAX_SLOTS];
static _Atomic int inited;
static _Atomic int64_t period_ns = 10000000;
static _Atomic uint64_t ring_size = DEFAULT_RING;
static struct sigaction old_action;
static int next_drain; /* profiler thread only */
static pid_t process_id;

#define TLS __thread __attribute__((tls_model("initial-exec")))
static TLS struct sample_slot *tl_slot;
static TLS _Atomic uint64_t tl_span;
static TLS _Atomic int tl_in_lua;
static TLS _Atomic int tl_kick;

/* The executable segments of the loaded objects, read in normal context
 * (dl_iterate_phdr is not for signal handlers) when the sampler starts and
 * when a thread joins, and only read by the handler. A pc outside them is
 * machine code LuaJIT made: it has no unwind information, and walking
 * from it would follow garbage, so the walk stops there. */
#define MAX_RANGES 512
static struct {
    uintptr_t lo, hi;
} ranges[MAX_RANGES];
static _Atomic int nranges;
static pthread_mutex_t ranges_lock = PTHREAD_MUTEX_INITIALIZER;

static int add_ranges(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size, (void)arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        int n = atomic_load_explicit(&nranges, memory_order_relaxed), known = 0;
        for (int k = 0; k < n && !known; k++)
            known = ranges[k].lo == lo && ranges[k].hi == hi;
        if (!known && n < MAX_RANGES) {
            ranges[n].lo = lo;
            ranges[n].hi = hi;
            atomic_store_explicit(&nranges, n + 1, memory_order_release);
        }
    }
    return 0;
}

static void refresh_ranges(void)
{
    pthread_mutex_lock(&ranges_lock);
    dl_iterate_phdr(add_ranges, NULL);
    pthread_mutex_unlock(&ranges_lock);
}

static int known_pc(uintptr_t pc)
{
    int n = atomic_load_explicit(&nranges, memory_order_acquire);
    for (int k = 0; k < n; k++)
        if (pc >= ranges[k].lo && pc < ranges[k].hi)
            return 1;
    return 0;
}

/* Walks the interrupted thread's stack from the context the kernel saved:
 * out[0] is the interrupted pc itself, the rest return addresses (what
 * libunwind's unw_step reports). Stops after a frame in code with no
 * object (LuaJIT's traces): its own pc is kept, nothing past it. */
static int walk_cursor(unw_cursor_t *c, void **out, int max)
{
    unw_word_t ip;
    int n = 0;
    do {
        if (unw_get_reg(c, UNW_REG_IP, &ip) != 0 || ip == 0)
            break;
        out[n++] = (void *)ip;
        if (!known_pc(ip))
            break;
    } while (n < max && unw_step(c) > 0);
    return n;
}

static int walk_from(ucontext_t *uc, void **out, int max)
{
    unw_cursor_t c;
    if (max <= 0 || unw_init_local2(&c, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) != 0)
        return 0;
    return walk_cursor(&c, out, max);
}

static void take_sample(struct sample_slot *s, ucontext_t *uc)
{
    uint64_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&s->tail, memory_order_acquire);
    if (head - tail >= s->cap) {
        atomic_fetch_add_explicit(&s->lost, 1, memory_order_relaxed);
        return;
    }
    struct sampler_sample *out = &s->ring[head & (s->cap - 1)];
    out->span_id = atomic_load_explicit(&tl_span, memory_order_relaxed);
    out->thread = (int32_t)(s - slots);
    out->in_lua = (uint8_t)atomic_load_explicit(&tl_in_lua, memory_order_relaxed);
    int depth = walk_from(uc, out->pcs, SAMPLER_DEPTH);
    if (depth == 0) {
        out->pcs[0] = (void *)uc->uc_mcontext.gregs[REG_RIP];
        depth = 1;
    }
    out->depth = (uint8_t)depth;
    atomic_store_explicit(&s->head, head + 1, memory_order_release);
}

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    int saved = errno;
    struct sample_slot *s = tl_slot;
    /* a stale timer of a slot this thread left, or someone's sigqueue */
    if (s && si->si_code == SI_TIMER && si->si_value.sival_int == (int)(s - slots)) {
        take_sample(s, ctx);
        if (atomic_load_explicit(&tl_kick, memory_order_relaxed) &&
            atomic_load_explicit(&tl_in_lua, memory_order_relaxed))
            syscall(SYS_tgkill, process_id, s->tid, SIGPROF);
    }
    errno = saved;
}

int sampler_init(int hz, char *err, size_t errlen)
{
    /* every engine thread joins through base/thread.h; the hooks stay set,
     * since sampler_thread_exit is safe after shutdown */
    thread_set_hooks(sampler_thread_enter, sampler_thread_exit);
    if (hz < 1 || hz > 10000) {
        snprintf(err, errlen, "profile frequency %d Hz is out of range (1 to 10000)", hz);
        return -1;
    }
    if (atomic_load(&inited)) {
        snprintf(err, errlen, "the sampler is already running");
        return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_RESTART | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    /* a kick is answered once this handler has returned, not inside it */
    sigaddset(&sa.sa_mask, SIGPROF);
    struct sigaction old;
    if (sigaction(SAMPLE_SIGNAL, NULL, &old) != 0) {
        snprintf(err, errlen, "cannot read the disposition of SIGRTMIN+4: %s", strerror(errno));
        return -1;
    }
    if ((old.sa_flags & SA_SIGINFO) || (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)) {
        snprintf(err, errlen,
                 "signal SIGRTMIN+4, which the CPU profiler uses, already has a handler "
                 "(another library in the process?)");
        return -1;
    }
    /* libunwind's one-time set-up, and the objects' ranges, outside any
     * handler */
    refresh_ranges();
    void *buf[8];
    sampler_backtrace(buf, 8);
    if (sigaction(SAMPLE_SIGNAL, &sa, &old_action) != 0) {
        snprintf(err, errlen, "cannot install the profiling signal handler: %s", strerror(errno));
        return -1;
    }
    process_id = getpid();
    atomic_store(&period_ns, (int64_t)(1000000000 / hz));
    /* slots left by threads of an earlier run are free again */
    for (int i = 0; i < MAX_SLOTS; i++) {
        int st = SLOT_LEFT;
        atomic_compare_exchange_strong(&slots[i].state, &st, SLOT_FREE);
        if (atomic_load(&slots[i].state) == SLOT_FREE)
            atomic_store(&slots[i].tail, atomic_load(&slots[i].head));
    }
    next_drain = 0;
    atomic_store(&inited, 1);
    refresh_ranges();
    return 0;
}

int64_t sampler_period_ns(void)
{
    return atomic_load_explicit(&period_ns, memory_order_relaxed);
}

void sampler_set_ring_size(size_t samples)
{
    uint64_t cap = 1;
    while (cap < samples && cap < (1u << 20))
        cap <<= 1;
    atomic_store(&ring_size, cap);
}

/* A never-used slot first; else one left behind and drained. */
static struct sample_slot *claim_slot(void)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < MAX_SLOTS; i++) {
            struct sample_slot *s = &slots[i];
            int want = pass == 0 ? SLOT_FREE : SLOT_LEFT;
            int st = atomic_load_explicit(&s->state, memory_order_acquire);
            if (st != want)
                continue;
            if (want == SLOT_LEFT && atomic_load_explicit(&s->head, memory_order_relaxed) !=
                                         atomic_load_explicit(&s->tail, memory_order_acquire))
                continue;
            if (atomic_compare_exchange_strong(&s->state, &st, SLOT_CLAIMED))
                return s;
        }
    }
    return NULL;
}

int sampler_thread_enter(const char *name, int worker)
{
    if (!atomic_load(&inited) || tl_slot)
        return -1;
    refresh_ranges(); /* a library loaded since is known before it is sampled */
    struct sample_slot *s = claim_slot();
    if (!s)
        return -1;
    uint64_t cap = atomic_load(&ring_size);
    if (!s->ring || s->cap != cap) {
        /* no handler points here: the slot has no thread */
        struct sampler_sample *ring = calloc(cap, sizeof *ring);
        if (!ring)
            goto fail;
        free(s->ring);
        s->ring = ring;
        s->cap = cap;
    }
    snprintf(s->name, sizeof s->name, "%s", name ? name : "");
    s->worker = worker;
    s->tid = gettid();
    /* the first walk on a thread sets up libunwind's per-thread cache
     * (mmap, pthread_once): here rather than in the handler */
    void *buf[8];
    sampler_backtrace(buf, 8);

    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_notify_thread_id = s->tid;
    sev.sigev_signo = SAMPLE_SIGNAL;
    sev.sigev_value.sival_int = (int)(s - slots);
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &s->timer) != 0)
        goto fail;
    atomic_store(&s->armed, 1);
    atomic_store_explicit(&s->state, SLOT_LIVE, memory_order_release);
    tl_slot = s;
    atomic_signal_fence(memory_order_seq_cst);

    int64_t ns = sampler_period_ns();
    struct itimerspec its;
    its.it_interval.tv_sec = ns / 1000000000;
    its.it_interval.tv_nsec = ns % 1000000000;
    its.it_value = its.it_interval;
    if (timer_settime(s->timer, 0, &its, NULL) != 0) {
        sampler_thread_exit();
        return -1;
    }
    return 0;
fail:
    atomic_store_explicit(&s->state, SLOT_LEFT, memory_order_release);
    return -1;
}

void sampler_thread_exit(void)
{
    struct sample_slot *s = tl_slot;
    if (!s)
        return;
    /* from here a late signal finds no slot; a handler that already ran
     * on this thread has returned */
    tl_slot = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    if (atomic_exchange(&s->armed, 0))
        timer_delete(s->timer);
    atomic_store_explicit(&s->state, SLOT_LEFT, memory_order_release);
}

void sampler_set_span(uint64_t span_id)
{
    atomic_store_explicit(&tl_span, span_id, memory_order_relaxed);
}

void sampler_set_in_lua(int on)
{
    atomic_store_explicit(&tl_in_lua, on != 0, memory_order_relaxed);
}

void sampler_set_lua_kick(int on)
{
    atomic_store_explicit(&tl_kick, on != 0, memory_order_relaxed);
}

#define BACKTRACE_MAX 256

int sampler_backtrace(void **pcs, int max)
{
    if (max <= 0)
        return 0;
    /* libunwind's caches are the thread's own: a sample taken in the middle
     * of this walk would disturb them, so the signal waits (it is taken,
     * not lost, once unblocked) */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SAMPLE_SIGNAL);
    int blocked = tl_slot && pthread_sigmask(SIG_BLOCK, &block, &old) == 0;
    unw_context_t uc;
    unw_cursor_t c;
    int n = 0;
    /* from this function's caller: one step past this frame */
    if (unw_getcontext(&uc) == 0 && unw_init_local(&c, &uc) == 0 && unw_step(&c) > 0)
        n = walk_cursor(&c, pcs, max);
    if (blocked)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    return n;
}

size_t sampler_drain(struct sampler_sample *out, size_t max)
{
    size_t got = 0;
    int i = next_drain;
    for (int k = 0; k < MAX_SLOTS && got < max; k++, i = (i + 1) % MAX_SLOTS) {
        struct sample_slot *s = &slots[i];
        int st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st != SLOT_LIVE && st != SLOT_LEFT)
            continue;
        uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
        uint64_t head = atomic_load_explicit(&s->head, memory_order_acquire);
        if (head == tail)
            continue;
        while (tail != head && got < max) {
            const struct sampler_sample *in = &s->ring[tail & (s->cap - 1)];
            struct sampler_sample *o = &out[got++];
            o->span_id = in->span_id;
            o->thread = in->thread;
            o->in_lua = in->in_lua;
            o->depth = in->depth;
            memcpy(o->pcs, in->pcs, sizeof in->pcs[0] * in->depth);
            tail++;
        }
        atomic_store_explicit(&s->tail, tail, memory_order_release);
        /* cut short: this slot goes first next time */
        if (tail != head) {
            next_drain = i;
            return got;
        }
    }
    next_drain = i;
    return got;
}

void sampler_thread_info(int32_t thread, const char **name, int *worker)
{
    *name = "";
    *worker = -1;
    if (thread < 0 || thread >= MAX_SLOTS)
        return;
    struct sample_slot *s = &slots[thread];
    int st = atomic_load_explicit(&s->state, memory_order_acquire);
    if (st != SLOT_LIVE && st != SLOT_LEFT)
        return;
    *name = s->name;
    *worker = s->worker;
}

uint64_t sampler_lost(void)
{
    uint64_t n = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        n += atomic_load_explicit(&slots[i].lost, memory_order_relaxed);
    return n;
}

void sampler_shutdown(void)
{
    if (!atomic_exchange(&inited, 0))
        return;
    for (int i = 0; i < MAX_SLOTS; i++)
        if (atomic_exchange(&slots[i].armed, 0))
            timer_delete(slots[i].timer);
    /* a signal still queued must find a harmless disposition: the default
     * one for a real-time signal ends the process */
    struct sigaction sa = old_action;
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL)
        sa.sa_handler = SIG_IGN;
    sigaction(SAMPLE_SIGNAL, &sa, NULL);
}
