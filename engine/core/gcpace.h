/* gcpace.h - the pace of a Lua state's garbage collector, set by its worker
 * between resumes (gcpace.c): LuaJIT's own collector is stopped, and each
 * step is timed and counted. On the worker's thread; core only. */
#ifndef SHOAL_GCPACE_H
#define SHOAL_GCPACE_H

#include <stddef.h>

#include "lua/lua_job.h"

struct metric_series;

struct gcpace {
    size_t mem_soft;     /* above this much Lua memory, collect between jobs */
    size_t mem_after_gc; /* what the last such collection left */
    int in_cycle;
    size_t last;     /* heap at the last step */
    size_t start_at; /* start the next cycle once the heap reaches this */
    unsigned tick;
    /* the worker's series: shoal_lua_memory_bytes, _gc_step_seconds,
     * _gc_cycles_total, _gc_assists_total, shoal_lua_coroutines */
    struct metric_series *memory, *seconds, *cycles, *assists, *coroutines;
};

/* A state starts under the pacer: its collector manual, the first cycle
 * once its heap has doubled; the gauges published. */
void gcpace_start(struct gcpace *g, lj *lua);
/* Before a resume: a full collection when the state is near its memory cap. */
void gcpace_collect_if_full(struct gcpace *g, lj *lua);
/* After a resume: a timed step of collection when it is due. */
void gcpace_between(struct gcpace *g, lj *lua);
/* The memory and coroutine gauges, now. */
void gcpace_publish(const struct gcpace *g, lj *lua);

#endif
