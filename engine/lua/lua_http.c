/* lua_http.c - shoal.http's primitive: the request goes to the host,
 * and the coroutine waits for its outcome (lj_resume_http). */
#include "lua/lua_internal.h"

#include <string.h>

static int l_http(lua_State *L)
{
    lj *s = state_of(L);
    int slot = slot_of(L, s, "shoal.http");
    struct lj_http_request req = {0};
    req.method = luaL_checkstring(L, 1);
    req.url = luaL_checkstring(L, 2);
    const char *hdrs[64];
    if (lua_istable(L, 3)) {
        int n = (int)lua_objlen(L, 3);
        if (n > 64)
            return lj_usage_error(L, "shoal.http: at most 64 request headers");
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, 3, i + 1);
            hdrs[i] = lua_tostring(L, -1);
            lua_pop(L, 1); /* the table still holds the string */
            if (!hdrs[i] || strpbrk(hdrs[i], "\r\n"))
                return lj_usage_error(
                    L, "shoal.http: header %d has a line break or is not a string", i + 1);
        }
        req.headers = hdrs;
        req.nheaders = n;
    }
    if (lua_isstring(L, 4))
        req.body = lua_tolstring(L, 4, &req.body_len);
    req.timeout = luaL_optnumber(L, 5, 0);
    req.follow = lua_toboolean(L, 6);
    req.insecure = lua_toboolean(L, 7);
    req.compressed = lua_toboolean(L, 8);
    if (lua_type(L, 9) == LUA_TSTRING)
        req.session = lua_tolstring(L, 9, &req.session_len);
    if (lua_type(L, 10) == LUA_TSTRING)
        req.proxy = lua_tostring(L, 10);
    if (strpbrk(req.url, " \r\n\t"))
        return lj_usage_error(
            L, "shoal.http: url has white space in it: '%s' (encode spaces as %%20)", req.url);
    char err[512];
    int rc = HOST(s)->http_start(HOST_ARG(s), slot, &req, err, sizeof err);
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        if (rc == -2) {
            lua_pushliteral(L, "disallowed"); /* runtime.lua ends the job */
            return 3;
        }
        return 2;
    }
    /* rc 1: resumed with (nil, "again") once robots.txt is in */
    return lj_yield_io(s, L, slot);
}

const luaL_Reg lj_api_http[] = {
    {"http", l_http},
    {NULL, NULL},
};
