/* gcpace.c - the Lua collector runs between resumes, not inside them.
 *
 * Each step is timed (shoal_lua_gc_step_seconds), so GC cost shows like
 * Go's go_gc_duration_seconds. A cycle starts when the heap has doubled
 * since the last one ended (plus 1 MiB, so tiny heaps do not collect
 * constantly); during a cycle every 64 KiB allocated buys twice that much
 * collection work, which finishes a cycle well before the heap doubles
 * again. A resume that allocates far more than that turns LuaJIT's own
 * collector back on until it returns (an "assist", counted). */
#include "core/gcpace.h"

#include "base/clock.h"
#include "telemetry/metrics/metrics.h"

#define GC_STEP_BYTES (64u << 10)
#define GC_MIN_HEAP (1u << 20)

void gcpace_publish(const struct gcpace *g, lj *lua)
{
    metric_set(g->memory, (double)lj_mem_used(lua));
    metric_set(g->coroutines, (double)lj_coroutines(lua));
}

void gcpace_start(struct gcpace *g, lj *lua)
{
    size_t used = lj_mem_used(lua);
    g->in_cycle = 0;
    g->start_at = used * 2 + GC_MIN_HEAP;
    lj_gc_manual(lua, used * 2 + (32u << 20));
    gcpace_publish(g, lua);
}

/* Near the memory cap, garbage counts against the next job: collect it. Only
 * again once the heap has grown well past what the last collection left, so
 * a state whose live data sits above the threshold does not collect in a
 * loop. */
void gcpace_collect_if_full(struct gcpace *g, lj *lua)
{
    size_t used = lj_mem_used(lua);
    if (used <= g->mem_soft || used < g->mem_after_gc + g->mem_after_gc / 8 + (1u << 20))
        return;
    lj_collect(lua);
    g->mem_after_gc = lj_mem_used(lua);
}

void gcpace_between(struct gcpace *g, lj *lua)
{
    size_t used = lj_mem_used(lua);
    if (lj_gc_take_assist(lua))
        metric_add(g->assists, 1);
    if (!g->in_cycle) {
        if (used < g->start_at)
            goto out;
        g->in_cycle = 1;
        g->last = used > GC_STEP_BYTES ? used - GC_STEP_BYTES : 0;
    }
    if (used < g->last + GC_STEP_BYTES)
        goto out;
    size_t debt = used - g->last;
    double t0 = clock_now();
    int done = lj_gc_step(lua, (int)((debt * 2) >> 10));
    metric_observe(g->seconds, clock_now() - t0);
    used = lj_mem_used(lua);
    g->last = used;
    if (done) {
        g->in_cycle = 0;
        g->start_at = used * 2 > used + GC_MIN_HEAP ? used * 2 : used + GC_MIN_HEAP;
        metric_add(g->cycles, 1);
    }
    gcpace_publish(g, lua);
out:
    /* far past where the next step would come: let the collector in */
    lj_gc_manual(lua, (g->start_at > used ? g->start_at : used) * 2 + (32u << 20));
    if ((++g->tick & 255) == 0)
        gcpace_publish(g, lua);
}
