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
 *   page_links(html, base, flags, kinds [, ex]) -> the distinct links of a page
 *                               (base/links.c's scan, then link() on each), in
 *                               order: URLs, or with ex records {url, kind,
 *                               nofollow [, rel]}; kinds: a mask of 1 << LINK_x
 *   authority(s), path_query(s)
 *   SORT_QUERY, STRIP_TRACKING: the flags, to add up
 *   LINK_KINDS: {a = 1, area = 2, ...}, the bits of page_links' kinds
 *
 * Results up to a few KiB are built on the C stack; a longer one in a
 * userdata the collector takes back. Arguments are checked with luaL_check*:
 * crawl.lua has already named the caller's mistake. */
#include "lua/lua_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/links.h"
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

/* page_links(html, base, flags, kinds [, ex]) resolves each link as the scan
 * finds it, against the page URL until a <base href> says otherwise; a
 * <base> found after links (it still applies to them, as in a browser)
 * starts the scan again with the base known. So its memory is the result's
 * and a few buffers, whatever the page; its time at most two scans. */
struct page {
    lua_State *L;
    int out, seen; /* stack indexes: the result, url -> its index in out */
    int count;
    bool ex, robots_nofollow, base_known, restart;
    unsigned flags, kinds;
    const char *url; /* the page URL (NULL: none usable) */
    size_t un;
    struct url_base b;
    char *buf; /* decoded values: stack, or the userdata at BUF_SLOT */
    size_t cap;
};

enum { BUF_SLOT = 6, BASE_SLOT = 7, OUT_SLOT = 8, SEEN_SLOT = 9 };

/* The value v[0..n) decoded (and, when clean, cleaned as an href) in
 * p->buf, grown when too small; its length, 0 when it links nothing. */
static size_t page_value(struct page *p, const char *v, size_t n, bool clean)
{
    size_t need = links_decode_size(n);
    if (need > p->cap) {
        p->buf = lua_newuserdata(p->L, need);
        lua_replace(p->L, BUF_SLOT);
        p->cap = need;
    }
    size_t len = links_decode(v, n, p->buf);
    return clean ? links_clean(p->buf, len) : len;
}

/* Adds the link ref[0..rn) found by r to the result, unless it does not
 * resolve or is there already. A link there already loses its nofollow
 * when this one has none: a crawler may follow it. */
static void page_add(struct page *p, const struct link_ref *r, const char *ref, size_t rn)
{
    lua_State *L = p->L;
    bool nofollow = r->flags & LINK_NOFOLLOW;
    char stack[STACK_MAX], err[URL_ERR_MAX];
    size_t cap = url_link_size(p->b.n, rn);
    char *out = room(L, stack, cap);
    long len = url_link_from(&p->b, ref, rn, p->flags, out, cap, err);
    if (len < 0) {
        lua_settop(L, SEEN_SLOT);
        return;
    }
    lua_pushlstring(L, out, (size_t)len);
    lua_pushvalue(L, -1);
    lua_rawget(L, SEEN_SLOT);
    if (!lua_isnil(L, -1)) {
        if (p->ex && !nofollow) {
            lua_rawgeti(L, OUT_SLOT, (int)lua_tointeger(L, -1));
            lua_pushboolean(L, 0);
            lua_setfield(L, -2, "nofollow");
        }
        lua_settop(L, SEEN_SLOT);
        return;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushinteger(L, ++p->count);
    lua_rawset(L, SEEN_SLOT);
    if (p->ex) {
        lua_createtable(L, 0, 4);
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, "url");
        lua_pushstring(L, links_kind_name(r->kind));
        lua_setfield(L, -2, "kind");
        lua_pushboolean(L, nofollow);
        lua_setfield(L, -2, "nofollow");
        if (r->rel) {
            lua_pushlstring(L, r->rel, r->rel_n);
            lua_setfield(L, -2, "rel");
        }
    }
    lua_rawseti(L, OUT_SLOT, p->count);
    lua_settop(L, SEEN_SLOT);
}

static bool is_http(struct url_part scheme)
{
    return (scheme.n == 4 && strncasecmp(scheme.p, "http", 4) == 0) ||
           (scheme.n == 5 && strncasecmp(scheme.p, "https", 5) == 0);
}

/* The first <base href>: what it resolves to against the page URL becomes
 * the base when it is http(s) with a host (left at BASE_SLOT); true when
 * the base changed. */
static bool page_set_base(struct page *p, const struct link_ref *r)
{
    lua_State *L = p->L;
    size_t hn = page_value(p, r->v, r->n, true);
    if (hn == 0)
        return false;
    size_t rcap = url_resolve_size(p->un, hn);
    char *res = lua_newuserdata(L, rcap);
    char err[URL_ERR_MAX];
    long rn = url_resolve(p->url, p->un, p->buf, hn, res, rcap, err);
    struct url_split sp;
    if (rn >= 0)
        url_split(res, (size_t)rn, &sp);
    if (rn < 0 || !sp.authority.p || !is_http(sp.scheme)) {
        lua_pop(L, 1);
        return false;
    }
    lua_replace(L, BASE_SLOT);
    url_base_init(&p->b, res, (size_t)rn);
    return true;
}

static int page_ref(void *ud, const struct link_ref *r)
{
    struct page *p = ud;
    if (r->kind == LINK_BASE) {
        if (p->base_known)
            return 0;
        p->base_known = true;
        if (page_set_base(p, r) && p->count > 0) {
            p->restart = true;
            return 1;
        }
        return 0;
    }
    if (r->kind == LINK_ROBOTS_NOFOLLOW) {
        p->robots_nofollow = true;
        return 0;
    }
    if (!(p->kinds & 1u << r->kind))
        return 0;
    bool list = r->kind == LINK_REFRESH || (r->flags & LINK_SRCSET);
    size_t n = page_value(p, r->v, r->n, !list);
    size_t off, len;
    if (r->kind == LINK_REFRESH) {
        if (links_refresh_url(p->buf, n, &off, &len)) {
            len = links_clean(p->buf + off, len);
            if (len)
                page_add(p, r, p->buf + off, len);
        }
    } else if (r->flags & LINK_SRCSET) {
        size_t pos = 0;
        while (links_srcset_next(p->buf, n, &pos, &off, &len)) {
            char one[STACK_MAX]; /* cleaning must leave the list as it is */
            if (len > sizeof one)
                continue; /* an image URL of more than 4 KiB: not one to fetch */
            memcpy(one, p->buf + off, len);
            len = links_clean(one, len);
            if (len)
                page_add(p, r, one, len);
        }
    } else if (n) {
        page_add(p, r, p->buf, n);
    }
    return 0;
}

static int l_page_links(lua_State *L)
{
    size_t hn;
    const char *html = luaL_checklstring(L, 1, &hn);
    char stack[STACK_MAX];
    struct page p = {.L = L, .buf = stack, .cap = sizeof stack};
    if (lua_type(L, 2) == LUA_TSTRING) {
        p.url = lua_tolstring(L, 2, &p.un);
        struct url_split sp;
        url_split(p.url, p.un, &sp);
        if (!sp.scheme.p) {
            p.url = NULL;
            p.un = 0;
        }
    }
    p.flags = (unsigned)luaL_checkinteger(L, 3);
    p.kinds = (unsigned)luaL_checkinteger(L, 4);
    p.ex = lua_toboolean(L, 5);
    lua_settop(L, BASE_SLOT);
    url_base_init(&p.b, p.url, p.un);
    do {
        p.restart = false;
        p.count = 0;
        lua_settop(L, BASE_SLOT);
        /* sized for a typical page's links: growing a table rehashes it */
        lua_createtable(L, 32, 0); /* OUT_SLOT */
        lua_createtable(L, 0, 32); /* SEEN_SLOT */
        links_scan(html, hn, page_ref, &p);
    } while (p.restart);
    if (p.ex && p.robots_nofollow) {
        for (int i = 1; i <= p.count; i++) {
            lua_rawgeti(L, OUT_SLOT, i);
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "nofollow");
            lua_pop(L, 1);
        }
    }
    lua_settop(L, OUT_SLOT);
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
        {"page_links", l_page_links},
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
    lua_createtable(L, 0, LINK_KINDS);
    for (int k = 0; k < LINK_KINDS; k++) {
        lua_pushinteger(L, 1 << k);
        lua_setfield(L, -2, links_kind_name((enum link_kind)k));
    }
    lua_setfield(L, -2, "LINK_KINDS");
    return 1;
}
