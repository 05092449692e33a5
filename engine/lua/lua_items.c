/* lua_items.c - shoal.emit's primitives: items (a JSON text or a CSV
 * record) to the host's items writer, its format and CSV columns. */
#include "lua/lua_internal.h"

#include <string.h>

/* emit(json) or emit(nil, cells [, extra_key]): one item, already encoded
 * by runtime.lua (a JSON text, or a CSV record's cells in column order;
 * extra_key: a key of the item outside the CSV columns). -> true; false,
 * "dropped" | "not saved (no --output)"; or nil, why for an item too large
 * (the wrapper raises that at the script's line). No-op in `shoal check`.
 * May wait a bounded time for the writer (items.h). */
static int l_emit(lua_State *L)
{
    lj *s = state_of(L);
    if (!s->cfg.host) {
        lua_pushboolean(L, 1);
        return 1;
    }
    enum lj_emit_status st;
    size_t len = 0;
    if (lua_istable(L, 2)) {
        const char *cells[LJ_ITEMS_MAX_COLUMNS];
        size_t lens[LJ_ITEMS_MAX_COLUMNS];
        int n = (int)lua_objlen(L, 2);
        if (n > LJ_ITEMS_MAX_COLUMNS)
            n = LJ_ITEMS_MAX_COLUMNS;
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, 2, i + 1);
            cells[i] = lua_tolstring(L, -1, &lens[i]); /* the table keeps it alive */
            lua_pop(L, 1);
            if (!cells[i]) {
                cells[i] = "";
                lens[i] = 0;
            }
            len += lens[i];
        }
        size_t klen = 0;
        const char *key = lua_type(L, 3) == LUA_TSTRING ? lua_tolstring(L, 3, &klen) : NULL;
        st = HOST(s)->emit_csv(HOST_ARG(s), n, cells, lens, key, klen);
    } else {
        const char *json = luaL_checklstring(L, 1, &len);
        st = HOST(s)->emit(HOST_ARG(s), json, len);
    }
    switch (st) {
    case LJ_EMIT_OK:
        lua_pushboolean(L, 1);
        return 1;
    case LJ_EMIT_DROPPED:
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "dropped");
        return 2;
    case LJ_EMIT_DISCARDED:
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "not saved (no --output)");
        return 2;
    default:
        lua_pushnil(L);
        lua_pushfstring(L,
                        "the item is too large (%d MiB encoded; at most %d MiB): save large "
                        "bodies to files of their own and emit their names",
                        (int)(len >> 20), (int)(HOST(s)->emit_max_bytes(HOST_ARG(s)) >> 20));
        return 2;
    }
}

/* items_format() -> "jsonl", "csv", "none" (no --output), or nil in
 * `shoal check`. */
static int l_items_format(lua_State *L)
{
    lj *s = state_of(L);
    if (!s->cfg.host)
        return 0;
    enum lj_items_format f = HOST(s)->items_format(HOST_ARG(s));
    lua_pushstring(L, f == LJ_ITEMS_CSV ? "csv" : f == LJ_ITEMS_JSONL ? "jsonl" : "none");
    return 1;
}

/* items_columns(names) -> the run's CSV columns: names (a list of strings)
 * if this is the first call of the run, else those of the first call; or
 * nil, why (the wrapper raises it at the script's line). */
static int l_items_columns(lua_State *L)
{
    lj *s = state_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!s->cfg.host)
        return 0;
    int n = HOST(s)->items_columns(HOST_ARG(s), 0, NULL, NULL);
    if (n == 0) {
        const char *names[LJ_ITEMS_MAX_COLUMNS];
        size_t lens[LJ_ITEMS_MAX_COLUMNS];
        n = (int)lua_objlen(L, 1);
        if (n > LJ_ITEMS_MAX_COLUMNS) {
            lua_pushnil(L);
            lua_pushfstring(L, "a CSV item has at most %d keys, this one %d", LJ_ITEMS_MAX_COLUMNS,
                            n);
            return 2;
        }
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, 1, i + 1);
            names[i] = lua_tolstring(L, -1, &lens[i]);
            lua_pop(L, 1);
            if (!names[i])
                return luaL_argerror(L, 1, "a list of strings");
        }
        n = HOST(s)->items_columns(HOST_ARG(s), n, names, lens);
        if (n < 0) {
            lua_pushnil(L);
            lua_pushliteral(L, "out of memory");
            return 2;
        }
    }
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const char *name;
        size_t len;
        HOST(s)->items_column(HOST_ARG(s), i, &name, &len);
        lua_pushlstring(L, name, len);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

const luaL_Reg lj_api_items[] = {
    {"emit", l_emit},
    {"items_format", l_items_format},
    {"items_columns", l_items_columns},
    {NULL, NULL},
};
