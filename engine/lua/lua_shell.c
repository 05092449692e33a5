/* lua_shell.c - the module shoal.shell_io: line editing for `shoal shell`
 * (libedit, BSD-licensed, the readline interface): readline(prompt) ->
 * the line, or nil at end of input; add_history(line).
 *
 * readline blocks its thread while the user types: only `shoal shell`,
 * whose one worker has nothing else to do, loads this module. */
#include "lua/lua_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include <editline/readline.h>

static int l_readline(lua_State *L)
{
    const char *prompt = luaL_optstring(L, 1, "> ");
    fflush(stdout);
    char *line = readline(prompt);
    if (!line)
        return 0;
    lua_pushstring(L, line);
    free(line);
    return 1;
}

static int l_add_history(lua_State *L)
{
    add_history(luaL_checkstring(L, 1));
    return 0;
}

int lj_open_shell(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"readline", l_readline},
        {"add_history", l_add_history},
        {NULL, NULL},
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
