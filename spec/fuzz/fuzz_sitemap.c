/* fuzz_sitemap.c - fuzz target for shoal.sitemap_core (lua/lua_sitemap.c):
 * the sitemaps a crawl reads come from any server. The input goes to
 * parse() and to gunzip() (and what gunzip returns to parse()) in a bare
 * Lua state: each either answers or returns nil and a message; an entry
 * always has a string loc; nothing may crash, leak or raise. */
#include "lua/lua_internal.h"

#include "fuzz_util.h"

#include <stdint.h>

static void check_parse(lua_State *L)
{
    /* stack: parse's results */
    if (lua_isnil(L, -2)) {
        must(lua_type(L, -1) == LUA_TSTRING);
        return;
    }
    must(lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1));
    for (int i = 1;; i++) {
        lua_rawgeti(L, -1, i);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            break;
        }
        lua_getfield(L, -1, "loc");
        must(lua_type(L, -1) == LUA_TSTRING);
        lua_pop(L, 2);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = luaL_newstate();
    must(L != NULL);
    lua_pushcfunction(L, lj_open_sitemap);
    must(lua_pcall(L, 0, 1, 0) == 0);
    int mod = lua_gettop(L);

    lua_getfield(L, mod, "parse");
    lua_pushlstring(L, (const char *)data, size);
    must(lua_pcall(L, 1, 2, 0) == 0);
    check_parse(L);
    lua_settop(L, mod);

    lua_getfield(L, mod, "gunzip");
    lua_pushlstring(L, (const char *)data, size);
    lua_pushnumber(L, 1 << 20);
    must(lua_pcall(L, 2, 2, 0) == 0);
    if (lua_type(L, -2) == LUA_TSTRING) {
        size_t n;
        const char *out = lua_tolstring(L, -2, &n);
        lua_getfield(L, mod, "parse");
        lua_pushlstring(L, out, n);
        must(lua_pcall(L, 1, 2, 0) == 0);
        check_parse(L);
    } else {
        must(lua_isnil(L, -2) && lua_type(L, -1) == LUA_TSTRING);
    }
    lua_close(L);
    return 0;
}
