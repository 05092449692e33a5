/* lua_url.c - the module `shoal.url`: base/url.c for Lua, which
 * lua/shoal/crawl.lua wraps (scripts use shoal.crawl; this module's names
 * are crawl.lua's to choose). Registered in package.preload of every state
 * (lua_state.c), so the producer and every worker have it; it keeps no
 * state, so any thread's Lua may call it.
 *
 *   split(s)                 -> scheme, authority, path, query, fragment (nil when absent)
 *   parse(s)                 -> {scheme, host, port, userinfo, path, query, fragment} | nil, err
 *   resolve(base, ref)       -> url | nil, err      (base nil: only absolute refs resolve)
 *   normalize(s [, flags])   -> url | nil, err
 *   link(base, ref, flags)   -> normalize(resolve(base, ref), flags) | nil, err
 *   links(base, refs, n, flags) -> the distinct links of refs[1..n] that resolve, in
 *                               order; a base that is nil or not absolute counts as none
 *   authority(s), path_query(s)
 *   SORT_QUERY, STRIP_TRACKING: the flags, to add up
 *
 * Results up to a few KiB are built on the C stack; a longer one in a
 * userdata the collector takes back. Arguments are checked with luaL_check*:
 * crawl.lua has already named the caller's mistake. */
#include "lua/lua_internal.h"

#include <stdio.h>
#include <string.h>

#include "base/url.h"

#define STACK_MAX 4096

/* A buffer of need bytes: stack when it fits, else a userdata left on L. */
static char *room(lua_State *L, char *stack, size_t need)
{
    return need <= STACK_MAX ? stack : lua_newuserdata(L, need);
}

/* Pushes the result of a base/url.c call: the string, or nil and err. */
static int result(lua_State *L, long n, const char *out, const char *err)
{
    if (n >= 0) {
        lua_pushlstring(L, out, (size_t)n);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, n == URL_NOSPACE ? "URL too long (internal: buffer)" : err);
    return 2;
}

static void push_part(lua_State *L, struct url_part p)
{
    if (p.p)
        lua_pushlstring(L, p.p, p.n);
    else
        lua_pushnil(L);
}

static int l_split(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    struct url_split u;
    url_split(s, n, &u);
    push_part(L, u.scheme);
    push_part(L, u.authority);
    push_part(L, u.path);
    push_part(L, u.query);
    push_part(L, u.fragment);
    return 5;
}

static void set_part(lua_State *L, const char *name, struct url_part p)
{
    if (!p.p)
        return;
    lua_pushlstring(L, p.p, p.n);
    lua_setfield(L, -2, name);
}

static int l_parse(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char err[URL_ERR_MAX];
    struct url_split u;
    url_split(s, n, &u);
    if (!u.scheme.p) {
        if (n > 120)
            snprintf(err, sizeof err, "no scheme in '%.117s...' (a relative URL?)", s);
        else
            snprintf(err, sizeof err, "no scheme in '%.*s' (a relative URL?)", (int)n, s);
        return result(L, URL_ERROR, NULL, err);
    }
    struct url_authority_parts ap;
    char stack[STACK_MAX];
    long hn = 0;
    char *host = NULL;
    if (u.authority.p) {
        if (url_parse_authority(u.authority.p, u.authority.n, &ap, err) != 0)
            return result(L, URL_ERROR, NULL, err);
        host = room(L, stack, url_host_size(&ap));
        hn = url_host(&ap, host, url_host_size(&ap), err);
        if (hn < 0)
            return result(L, hn, NULL, err);
    }
    char scheme_stack[STACK_MAX];
    char *scheme = room(L, scheme_stack, u.scheme.n);
    for (size_t i = 0; i < u.scheme.n; i++) {
        char c = u.scheme.p[i];
        scheme[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    lua_createtable(L, 0, 7);
    lua_pushlstring(L, scheme, u.scheme.n);
    lua_setfield(L, -2, "scheme");
    set_part(L, "path", u.path);
    set_part(L, "query", u.query);
    set_part(L, "fragment", u.fragment);
    if (host) {
        lua_pushlstring(L, host, (size_t)hn);
        lua_setfield(L, -2, "host");
        if (ap.port >= 0) {
            lua_pushinteger(L, ap.port);
            lua_setfield(L, -2, "port");
        }
        set_part(L, "userinfo", ap.userinfo);
    }
    return 1;
}

/* base at index i: its bytes, or NULL when it is nil. */
static const char *opt_base(lua_State *L, int i, size_t *n)
{
    return lua_isnoneornil(L, i) ? NULL : luaL_checklstring(L, i, n);
}

static int l_resolve(lua_State *L)
{
    size_t bn = 0, rn;
    const char *base = opt_base(L, 1, &bn);
    const char *ref = luaL_checklstring(L, 2, &rn);
    char stack[STACK_MAX], err[URL_ERR_MAX];
    size_t cap = url_resolve_size(bn, rn);
    char *out = room(L, stack, cap);
    return result(L, url_resolve(base, bn, ref, rn, out, cap, err), out, err);
}

static int l_normalize(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned flags = (unsigned)luaL_optinteger(L, 2, 0);
    char stack[STACK_MAX], err[URL_ERR_MAX];
    size_t cap = url_normalize_size(n);
    char *out = room(L, stack, cap);
    return result(L, url_normalize(s, n, flags, out, cap, err), out, err);
}

static int l_link(lua_State *L)
{
    size_t bn = 0, rn;
    const char *base = opt_base(L, 1, &bn);
    const char *ref = luaL_checklstring(L, 2, &rn);
    unsigned flags = (unsigned)luaL_optinteger(L, 3, 0);
    char stack[STACK_MAX], err[URL_ERR_MAX];
    size_t cap = url_link_size(bn, rn);
    char *out = room(L, stack, cap);
    return result(L, url_link(base, bn, ref, rn, flags, out, cap, err), out, err);
}

/* links(base, refs, n, flags) -> the distinct link(base, refs[i], flags)
 * of refs[1..n] that resolve, in order: one call per page, the base read
 * once. */
static int l_links(lua_State *L)
{
    size_t bn = 0;
    const char *base = opt_base(L, 1, &bn);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)luaL_checkinteger(L, 3);
    unsigned flags = (unsigned)luaL_optinteger(L, 4, 0);
    lua_settop(L, 4);
    struct url_base b;
    url_base_init(&b, base, bn);
    lua_createtable(L, n, 0); /* 5: the links */
    lua_createtable(L, 0, n); /* 6: those seen */
    char stack[STACK_MAX], err[URL_ERR_MAX];
    int count = 0;
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        size_t rn;
        const char *ref = lua_tolstring(L, -1, &rn);
        if (!ref || lua_type(L, -1) != LUA_TSTRING) {
            lua_settop(L, 6);
            continue;
        }
        size_t cap = url_link_size(b.n, rn);
        char *out = room(L, stack, cap);
        long len = url_link_from(&b, ref, rn, flags, out, cap, err);
        if (len >= 0) {
            lua_pushlstring(L, out, (size_t)len);
            lua_pushvalue(L, -1);
            lua_rawget(L, 6);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushvalue(L, -1);
                lua_pushboolean(L, 1);
                lua_rawset(L, 6);
                lua_rawseti(L, 5, ++count);
            }
        }
        lua_settop(L, 6);
    }
    lua_pop(L, 1);
    return 1;
}

static int l_authority(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char stack[STACK_MAX], err[URL_ERR_MAX];
    size_t cap = url_authority_size(n);
    char *out = room(L, stack, cap);
    return result(L, url_authority(s, n, out, cap, err), out, err);
}

static int l_path_query(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char stack[STACK_MAX];
    size_t cap = url_path_query_size(n);
    char *out = room(L, stack, cap);
    return result(L, url_path_query(s, n, out, cap), out, NULL);
}

int lj_open_url(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"split", l_split},
        {"parse", l_parse},
        {"resolve", l_resolve},
        {"normalize", l_normalize},
        {"link", l_link},
        {"links", l_links},
        {"authority", l_authority},
        {"path_query", l_path_query},
        {NULL, NULL},
    };
    lua_createtable(L, 0, 10);
    luaL_register(L, NULL, fns);
    lua_pushinteger(L, URL_SORT_QUERY);
    lua_setfield(L, -2, "SORT_QUERY");
    lua_pushinteger(L, URL_STRIP_TRACKING);
    lua_setfield(L, -2, "STRIP_TRACKING");
    return 1;
}
