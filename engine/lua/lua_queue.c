/* lua_queue.c - shoal.push's primitive: a job for the host's queue; a
 * producer facing a full queue waits for room. */
#include "lua/lua_internal.h"

#include <stdint.h>
#include <string.h>

static int l_push(lua_State *L)
{
    lj *s = state_of(L);
    int slot = slot_of(L, s, "shoal.push");
    struct lj_push p = {0};
    p.data = luaL_checklstring(L, 1, &p.len);
    if (lua_isstring(L, 2))
        p.key = lua_tolstring(L, 2, &p.key_len);
    p.delay = luaL_optnumber(L, 3, 0);
    p.priority = (int)luaL_optinteger(L, 4, 0);
    /* a job with a traceparent field continues that trace (the host checks it) */
    if (lua_type(L, 5) == LUA_TSTRING)
        p.traceparent = lua_tolstring(L, 5, &p.traceparent_len);
    if (lua_type(L, 6) == LUA_TSTRING)
        p.tracestate = lua_tolstring(L, 6, &p.tracestate_len);
    if (lua_type(L, 7) == LUA_TSTRING)
        p.url = lua_tolstring(L, 7, &p.url_len);
    if (lua_type(L, 8) == LUA_TSTRING)
        p.group = lua_tolstring(L, 8, &p.group_len);
    p.depth = lua_type(L, 9) == LUA_TNUMBER ? (int)lua_tointeger(L, 9) : -1;
    uint64_t id = 0;
    const char *why = NULL;
    switch (HOST(s)->push(HOST_ARG(s), slot, &p, &id, &why)) {
    case LJ_PUSH_OK:
        lua_pushnumber(L, (lua_Number)id);
        return 1;
    case LJ_PUSH_DUP:
        lua_pushnil(L);
        lua_pushliteral(L, "duplicate");
        return 2;
    case LJ_PUSH_SCOPE:
        lua_pushnil(L);
        lua_pushfstring(L, "out of scope (%s)", why ? why : "?");
        return 2;
    case LJ_PUSH_FULL:
        /* the host wakes us when there is room; runtime.lua pushes again */
        return lj_yield_io(s, L, slot);
    case LJ_PUSH_CLOSED:
        if (s->cfg.worker_id == 0)
            return lj_yield_io(s, L, slot); /* the producer is parked: the run is stopping */
        lua_pushnil(L);
        lua_pushliteral(L, "stopping");
        return 2;
    default:
        return luaL_error(L, "shoal.push: out of memory");
    }
}

const luaL_Reg lj_api_queue[] = {
    {"push", l_push},
    {NULL, NULL},
};
