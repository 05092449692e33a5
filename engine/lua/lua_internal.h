/* lua_internal.h - what lua_state.c and lua_api.c share about a state.
 * Included only by the files of engine/lua/: the rest of the engine sees lua_job.h. */
#ifndef SHOAL_LUA_INTERNAL_H
#define SHOAL_LUA_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>

#include "lua/lua_host.h"
#include "lua/lua_job.h"

struct lj_slot {
    lua_State *co; /* NULL when the slot has no coroutine */
    int ref;       /* registry reference keeping co alive */
    char *error;   /* last failure message, malloc'd */
    int final;     /* that failure is not to be retried (a usage error, shoal.retry(false)) */
    int io;        /* the coroutine yielded for I/O it asked of the host (lj_yield_io) */
};

struct lj {
    lua_State *L;
    struct lj_config cfg; /* cfg.host_ops and cfg.host: the host (lua_host.h) */
    struct lj_slot *slots;
    int nslots;
    int ref_job_loop, ref_producer, ref_finisher, ref_initializer, ref_load, ref_check,
        ref_options, ref_job_labels, ref_dashboard, ref_usage;
    struct pool *pool; /* where the counting allocator gets its blocks */
    size_t mem_used, mem_cap;
    int enforce;  /* the cap applies: job code is running */
    int mem_hit;  /* the cap was passed since the last call into Lua began */
    int mem_over; /* over the cap now: the hook raises the cap's error */
    size_t mem_after_hit; /* live heap after the collection that followed */
    unsigned cap_hits;    /* calls into Lua that went over the cap */
    int gc_pause, gc_stepmul; /* the collector's pace, restored after mem_over */
    int cur_slot; /* slot being resumed, -1 otherwise */
    volatile int hook_armed;
    int stopped;         /* the hook stopped produce() as the run ends (lj_take_stopped) */
    int coroutines;      /* slots holding a coroutine */
    /* the garbage collector: stopped, and stepped by the worker between
     * resumes; a resume that allocates past assist_at restarts it */
    int gc_manual;
    int gc_assisted; /* since lj_gc_take_assist */
    size_t gc_assist_at;
    /* custom metric label values from the last lj_job_labels */
    char label_buf[2048];
    const char *label_vals[8];
    size_t label_lens[8];
    int nlabel_vals;
};

/* The light userdata job_loop yields first, so a job that finished can be
 * told from a user's own coroutine.yield. */
extern char lj_done_mark;

/* Yields slot's coroutine for the I/O it just asked of the host: the
 * resume then returns LJ_WAIT. Written `return lj_yield_io(...)`. */
int lj_yield_io(lj *s, lua_State *L, int slot);

/* The host's ops and its pointer (lua_host.h); host is NULL in `shoal check`. */
#define HOST(s) ((s)->cfg.host_ops)
#define HOST_ARG(s) ((s)->cfg.host)

/* The state a core.* primitive belongs to (its upvalue). */
static inline lj *state_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* The slot of the coroutine L if it is the one the host is resuming (a
 * job's, the producer's, done()'s), else -1 (init(), the script's top
 * level, a coroutine the script made itself). */
static inline int running_slot(lua_State *L, lj *s)
{
    int slot = s->cur_slot;
    return s->cfg.host && slot >= 0 && s->slots[slot].co == L ? slot : -1;
}

/* running_slot, or a Lua error naming what cannot be called from here. */
static inline int slot_of(lua_State *L, lj *s, const char *what)
{
    int slot = running_slot(L, s);
    if (slot < 0)
        return luaL_error(L,
                          "%s can only be called from handle(), produce() or done() "
                          "(not from init(), the script's top level, or a coroutine "
                          "the script created)",
                          what);
    return slot;
}

/* The core table's primitives, one list per API area (lua_api.c: sleep,
 * now, job, job_url, load_embedded). */
extern const luaL_Reg lj_api_http[];  /* lua_http.c */
extern const luaL_Reg lj_api_queue[]; /* lua_queue.c: push */
extern const luaL_Reg lj_api_log[];   /* lua_log.c */
extern const luaL_Reg lj_api_trace[]; /* lua_trace.c */
extern const luaL_Reg lj_api_items[]; /* lua_items.c: emit */

/* Pushes the module shoal.url (lua_url.c: base/url.c for crawl.lua), the
 * loader lua_state.c puts in package.preload; a lua_CFunction. */
int lj_open_url(lua_State *L);
/* Sets the C modules every state preloads (cjson, shoal.url, shoal.html_core,
 * shoal.sitemap_core, shoal.shell_io) into the package.preload table on top
 * of L's stack: shoal's states, and the spec runner's. */
void lj_preload_c(lua_State *L);
/* shoal.shell_io: line editing for `shoal shell` (lua_shell.c) */
int lj_open_shell(lua_State *L);
/* shoal.sitemap_core: sitemaps for crawl.sitemap (lua_sitemap.c) */
int lj_open_sitemap(lua_State *L);
/* Pushes the module shoal.html_core (lua_html.c: libxml2 for html.lua),
 * preloaded the same way. */
int lj_open_html(lua_State *L);

/* Raises a mistake in how the script called shoal (a bad argument): at
 * the script's own line, and final for the attempt (not retried). Never
 * returns; written `return lj_usage_error(...)` as luaL_error is. */
int lj_usage_error(lua_State *L, const char *fmt, ...);

/* Builds the `core` table of C functions (lua_api.c) and leaves it on L. */
void lj_api_push_core(lj *s, lua_State *L);
/* Adds shoal.metrics' primitives to the core table on top of L. */
void lj_api_push_metrics(lj *s, lua_State *L);

#endif
