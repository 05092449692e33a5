/* lua_trace.c - shoal.trace's primitives: the running job's span ids,
 * user spans and their attributes, all through the host (no-ops outside a
 * job or with tracing off). */
#include "lua/lua_internal.h"

#include <string.h>

/* trace_current() -> trace_id, span_id (hex) of the innermost open span of
 * the running job, or nothing when tracing is off. */
static int l_trace_current(lua_State *L)
{
    lj *s = state_of(L);
    int slot = running_slot(L, s);
    char t[33], sp[17];
    if (slot < 0 || HOST(s)->trace_current(HOST_ARG(s), slot, t, sp) != 0)
        return 0;
    lua_pushstring(L, t);
    lua_pushstring(L, sp);
    return 2;
}

/* span_begin(name) / span_end([error]) / span_attr(key, value): user spans
 * of the running job; they do nothing outside a job or with tracing off. */
static int l_span_begin(lua_State *L)
{
    lj *s = state_of(L);
    const char *name = luaL_checkstring(L, 1);
    int slot = running_slot(L, s);
    int ok = slot >= 0 && HOST(s)->trace_begin(HOST_ARG(s), slot, name) == 0;
    lua_pushboolean(L, ok);
    return 1;
}

static int l_span_end(lua_State *L)
{
    lj *s = state_of(L);
    const char *error = lua_isstring(L, 1) ? lua_tostring(L, 1) : NULL;
    int slot = running_slot(L, s);
    if (slot >= 0)
        HOST(s)->trace_end(HOST_ARG(s), slot, error);
    return 0;
}

static int l_span_attr(lua_State *L)
{
    lj *s = state_of(L);
    const char *key = luaL_checkstring(L, 1);
    size_t len = 0;
    const char *v = NULL;
    int t = lua_type(L, 2);
    if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        v = lua_tolstring(L, 2, &len);
    } else if (t == LUA_TBOOLEAN) {
        v = lua_toboolean(L, 2) ? "true" : "false";
        len = strlen(v);
    }
    int slot = running_slot(L, s);
    if (v && slot >= 0)
        HOST(s)->trace_attr(HOST_ARG(s), slot, key, v, len);
    return 0;
}

const luaL_Reg lj_api_trace[] = {
    {"trace_current", l_trace_current},
    {"span_begin", l_span_begin},
    {"span_end", l_span_end},
    {"span_attr", l_span_attr},
    {NULL, NULL},
};
