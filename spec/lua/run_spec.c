/* run_spec.c - runs a Lua spec (spec/lua/test_*.lua) as the luajit
 * interpreter would, in a state that also has what shoal's states preload
 * and plain luajit lacks: the C modules shoal.url that lua/shoal/crawl.lua
 * stands on and shoal.html_core under lua/shoal/html.lua, and cjson.
 *
 *   lua_spec SPEC.lua [ARGS...]      (arg[0] is SPEC.lua, arg[1].. ARGS)
 *
 * Exits 0 when the spec ran to its end, 1 when it raised (the message and
 * a traceback on stderr), or with the code the spec gave os.exit. */
#include "lua/lua_internal.h"

#include <stdio.h>

static int traceback(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SPEC.lua [ARGS...]\n", argv[0]);
        return 2;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "lua_spec: cannot create a Lua state (out of memory)\n");
        return 1;
    }
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lj_preload_c(L);
    lua_pop(L, 2);
    lua_createtable(L, argc, 1);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");
    lua_pushcfunction(L, traceback);
    int rc = luaL_loadfile(L, argv[1]);
    if (rc == 0)
        rc = lua_pcall(L, 0, 0, -2);
    if (rc != 0)
        fprintf(stderr, "lua_spec: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return rc == 0 ? 0 : 1;
}
