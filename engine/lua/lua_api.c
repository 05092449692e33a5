/* lua_api.c - the C primitives behind the `shoal` module (shoal.runtime
 * wraps them), gathered into its `core` table: sleep, now, job, job_url and
 * load_embedded here; http, push, log, trace and emit in lua_http.c,
 * lua_queue.c, lua_log.c, lua_trace.c and lua_items.c.
 *
 * Every primitive runs on the state's worker thread, inside a resume of
 * a job, producer or done coroutine, and reaches the engine only through
 * the state's host (lua_host.h). Those that wait (http, sleep, a producer's
 * push into a full queue) hand the request to the host and yield; the host
 * resumes the coroutine with the outcome. Misuse raises a Lua error
 * (luaL_error); failures at run time return nil, message. */
#include "lua/lua_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/embedded.h"
#include "lua/lua_host.h"
#include "telemetry/logs/logger.h"

char lj_done_mark;

int lj_yield_io(lj *s, lua_State *L, int slot)
{
    s->slots[slot].io = 1;
    return lua_yield(L, 0);
}

static int l_sleep(lua_State *L)
{
    lj *s = state_of(L);
    int slot = slot_of(L, s, "shoal.sleep");
    HOST(s)->sleep_start(HOST_ARG(s), slot, luaL_checknumber(L, 1));
    return lj_yield_io(s, L, slot);
}

/* job() -> id, attempt of the job whose coroutine is running, or nothing. */
static int l_job(lua_State *L)
{
    lj *s = state_of(L);
    int slot = running_slot(L, s);
    uint64_t id;
    int attempt, depth;
    if (slot < 0 || HOST(s)->job(HOST_ARG(s), slot, &id, &attempt, &depth) != 0)
        return 0;
    lua_pushnumber(L, (lua_Number)id);
    lua_pushinteger(L, attempt);
    lua_pushinteger(L, depth);
    return 3;
}

static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    return 1;
}

/* job_url(url): the running job's url, for its log line and its span. */
static int l_job_url(lua_State *L)
{
    lj *s = state_of(L);
    size_t len;
    const char *url = luaL_checklstring(L, 1, &len);
    int slot = running_slot(L, s);
    if (slot >= 0)
        HOST(s)->job_url(HOST_ARG(s), slot, url, len);
    return 0;
}

/* load_embedded(path) -> the compiled chunk of a file built into the
 * binary (the demo's examples/crawl.lua), or nil, message. */
static int l_load_embedded(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    for (const struct embedded_module *m = embedded_modules; m->name; m++) {
        if (strcmp(m->path, path) != 0)
            continue;
        char chunk[300];
        snprintf(chunk, sizeof chunk, "@%s", m->path);
        if (luaL_loadbuffer(L, m->data, m->len, chunk) != 0) {
            lua_pushnil(L);
            lua_insert(L, -2);
            return 2;
        }
        return 1;
    }
    lua_pushnil(L);
    lua_pushfstring(L, "no built-in file %s", path);
    return 2;
}

void lj_api_push_core(lj *s, lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"sleep", l_sleep},
        {"now", l_now},
        {"load_embedded", l_load_embedded},
        {"job", l_job},
        {"job_url", l_job_url},
        {NULL, NULL},
    };
    /* one list per API area, each in its own file */
    const luaL_Reg *const areas[] = {fns,          lj_api_http, lj_api_queue, lj_api_log,
                                     lj_api_trace, lj_api_items};
    lua_newtable(L);
    for (size_t a = 0; a < sizeof areas / sizeof areas[0]; a++) {
        for (const luaL_Reg *f = areas[a]; f->name; f++) {
            lua_pushlightuserdata(L, s);
            lua_pushcclosure(L, f->func, 1);
            lua_setfield(L, -2, f->name);
        }
    }
    lua_pushboolean(L, s->cfg.tracing);
    lua_setfield(L, -2, "tracing");
    lua_pushboolean(L, s->cfg.host ? HOST(s)->log_wants(HOST_ARG(s), LOG_DEBUG) : 0);
    lua_setfield(L, -2, "log_debug");
    lua_pushinteger(L, s->cfg.worker_id);
    lua_setfield(L, -2, "worker_id");
    lua_pushlightuserdata(L, &lj_done_mark);
    lua_setfield(L, -2, "done_mark");
    lua_createtable(L, s->cfg.nargs, 0);
    for (int i = 0; i < s->cfg.nargs; i++) {
        lua_pushstring(L, s->cfg.args[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "args");
    if (s->cfg.listen && *s->cfg.listen && strcmp(s->cfg.listen, "off") != 0) {
        lua_pushfstring(L, "http://%s", s->cfg.listen);
        lua_setfield(L, -2, "listen_url");
    }
    lj_api_push_metrics(s, L);
}
