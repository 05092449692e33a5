/* lua_profile.c - LuaJIT's sampling profiler on one worker's state, for the
 * Lua frames of CPU profiles (the host's profile_sample, lua_host.h).
 *
 * LuaJIT's profiler is process-global: one state at a time, and starting or
 * stopping it flushes that state's compiled traces. So it runs only on the
 * worker whose turn it is, started and stopped on that worker's own thread
 * between resumes. Its own timer is set so long it never matters: the
 * sampler (sampler.c) raises SIGPROF on this thread when one of its
 * samples lands inside Lua, and LuaJIT answers at the next instruction
 * boundary with the callback below, which reads the script's stack there. */
#include "lua/lua_internal.h"

#include <luajit.h>

/* "handle examples/crawl.lua:42;inner examples/crawl.lua:7;...", innermost
 * first: 'p' keeps a chunk's path, 'f' the function's name, then its file
 * and current line. */
#define LUA_STACK_FMT "pf l;"

static void on_sample(void *data, lua_State *L, int samples, int vmstate)
{
    lj *s = data;
    size_t len = 0;
    if (!s->cfg.host_ops || !s->cfg.host_ops->profile_sample)
        return;
    const char *stack = luaJIT_profile_dumpstack(L, LUA_STACK_FMT, LJ_PROFILE_DEPTH, &len);
    s->cfg.host_ops->profile_sample(s->cfg.worker_id, stack ? stack : "", stack ? len : 0, samples,
                                    vmstate);
}

int lj_profile_start(lj *s)
{
    /* an interval of 1000 s: LuaJIT's timer itself stays out of the way */
    luaJIT_profile_start(s->L, "i1000000", on_sample, s);
    return 0;
}

void lj_profile_stop(lj *s)
{
    luaJIT_profile_stop(s->L);
}
