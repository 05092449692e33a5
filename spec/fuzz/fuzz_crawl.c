/* fuzz_crawl.c - fuzz target for the Lua crawl helpers (lua/shoal/crawl.lua).
 *
 * links() runs on every page a crawl fetches, so its input is whoever wrote
 * the page. The input is split at its last NUL byte into a page and a base
 * URL (without a NUL the whole input is the page, with a fixed base), and
 * the page and base are run through links, resolve, normalize, parse and
 * same_host. None may raise; links() must not report an internal error
 * either (it catches its own and returns it as a second value), and
 * links_ex() with every kind must give the same URLs as links() with every
 * kind, in records of a kind and a nofollow flag (a rel only on <link>),
 * which hold every link of the default kinds. Every link
 * must be an http(s) URL without whitespace, control bytes or "#" that
 * normalize() leaves as it is and that is on its own host; normalize() must
 * answer such a URL too, and be idempotent. And links(), with its fast path
 * for plain hrefs, must agree with the slow one: from a canonical base, a
 * page whose only link is the input gives normalize(resolve(base, input)),
 * when the input is something a page could hold verbatim (no quote,
 * whitespace, control byte, entity or backslash, not fragment-only).
 *
 * One Lua state serves every input, as in a worker, so the module's caches
 * carry over between inputs; the module is read from the source tree so a
 * change to crawl.lua needs no rebuild (its C half, shoal.url, is linked
 * in and preloaded as shoal's states do). The checks are Lua, run protected:
 * a breach is an error whose message is printed before abort(), which
 * libFuzzer and the CTest replay both report.
 *
 * LuaJIT is not instrumented, so libFuzzer would see no coverage inside the
 * module: a line hook feeds it the Lua line-to-line edges instead, through
 * libFuzzer's extra counters (an ordinary array when it is not linked in). */
#include "lua/lua_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char checker[] =
    "local crawl = ...\n"
    "local function q(s) return string.format('%q', tostring(s)) end\n"
    "local function fail(msg) error(msg, 0) end\n"
    "local function call(name, ...)\n"
    "  local ok, a, b = pcall(crawl[name], ...)\n"
    "  if not ok then fail(name .. ' raised: ' .. tostring(a)) end\n"
    "  return a, b\n"
    "end\n"
    "local function check_url(what, u)\n"
    "  if type(u) ~= 'string' then fail(what .. ' gave a ' .. type(u)) end\n"
    "  if not (u:find('^http://') or u:find('^https://')) then\n"
    "    fail(what .. ' gave a URL that is not http(s): ' .. q(u))\n"
    "  end\n"
    "  if u:find('[%s%c#]') then\n"
    "    fail(what .. ' gave a URL with whitespace, a control byte or #: ' .. q(u))\n"
    "  end\n"
    "end\n"
    "local function check_normalize(x)\n"
    "  local n, err = call('normalize', x)\n"
    "  if n == nil then\n"
    "    if type(err) ~= 'string' then fail('normalize(' .. q(x) .. ') gave no message') end\n"
    "    return\n"
    "  end\n"
    "  check_url('normalize(' .. q(x) .. ')', n)\n"
    "  local n2 = call('normalize', n)\n"
    "  if n2 ~= n then\n"
    "    fail('normalize is not idempotent: ' .. q(x) .. ' -> ' .. q(n) .. ' -> ' .. q(n2))\n"
    "  end\n"
    "end\n"
    "local function check_parse(x)\n"
    "  local t, err = call('parse', x)\n"
    "  if t == nil then\n"
    "    if type(err) ~= 'string' then fail('parse(' .. q(x) .. ') failed with no message') end\n"
    "  elseif type(t) ~= 'table' or type(t.scheme) ~= 'string' or type(t.path) ~= 'string' then\n"
    "    fail('parse(' .. q(x) .. ') gave no scheme or path')\n"
    "  end\n"
    "end\n"
    "local function check_links(html, base)\n"
    "  local out, err = call('links', html, base)\n"
    "  if type(out) ~= 'table' then fail('links gave a ' .. type(out)) end\n"
    "  if err ~= nil then fail('links hit an internal error: ' .. tostring(err)) end\n"
    "  for i = 1, #out do\n"
    "    local u = out[i]\n"
    "    check_url('links', u)\n"
    "    local n = call('normalize', u)\n"
    "    if n ~= u then fail('a link is not normalised: ' .. q(u) .. ' -> ' .. q(n)) end\n"
    "    if call('same_host', u, u) ~= true then fail('a link has no host: ' .. q(u)) end\n"
    "  end\n"
    "  local all = { kinds = { 'a', 'area', 'iframe', 'frame', 'refresh', 'link', 'img' } }\n"
    "  local every = call('links', html, base, all)\n"
    "  local ex, xerr = call('links_ex', html, base, all)\n"
    "  if xerr ~= nil or #ex ~= #every then fail('links_ex and links disagree in number') end\n"
    "  for i = 1, #ex do\n"
    "    local r = ex[i]\n"
    "    if r.url ~= every[i] or type(r.kind) ~= 'string' or type(r.nofollow) ~= 'boolean' then\n"
    "      fail('links_ex record ' .. i .. ' is not links() ' .. q(every[i]))\n"
    "    end\n"
    "    if r.rel ~= nil and r.kind ~= 'link' then fail('rel on a ' .. r.kind) end\n"
    "  end\n"
    "  local found = {}\n"
    "  for i = 1, #every do found[every[i]] = true end\n"
    "  for i = 1, #out do\n"
    "    if not found[out[i]] then fail('only the default kinds found ' .. q(out[i])) end\n"
    "  end\n"
    "end\n"
    "local function check_agree(x, base)\n"
    "  if x == '' or x:find('^#') or x:find('[%s%c\"&\\\\]') then return end\n"
    "  if call('normalize', base) ~= base then return end\n"
    "  local r = call('resolve', base, x)\n"
    "  local want = r and call('normalize', r)\n"
    "  local out = call('links', '<a href=\"' .. x .. '\">', base)\n"
    "  if out[1] ~= want or #out > 1 then\n"
    "    fail('links and normalize(resolve()) disagree on ' .. q(x) .. ' from ' .. q(base)\n"
    "      .. ': ' .. q(out[1]) .. ' vs ' .. q(want))\n"
    "  end\n"
    "end\n"
    "return function(html, base)\n"
    "  check_links(html, base)\n"
    "  check_agree(html, base)\n"
    "  check_links(html, nil)\n"
    "  local r, err = call('resolve', base, html)\n"
    "  if r == nil then\n"
    "    if type(err) ~= 'string' then fail('resolve failed with no message') end\n"
    "  elseif type(r) ~= 'string' then\n"
    "    fail('resolve gave a ' .. type(r))\n"
    "  else\n"
    "    check_normalize(r)\n"
    "  end\n"
    "  check_normalize(html)\n"
    "  check_normalize(base)\n"
    "  check_parse(html)\n"
    "  check_parse(base)\n"
    "  local ab, ba = call('same_host', html, base), call('same_host', base, html)\n"
    "  if type(ab) ~= 'boolean' or ab ~= ba then fail('same_host is not a symmetric boolean') end\n"
    "end\n";

#define EDGES (1 << 16)

__attribute__((section("__libfuzzer_extra_counters"), used)) static uint8_t lua_edges[EDGES];

/* Counts the step from the previous line run to this one, told apart by
 * chunk (its interned source name) and line. */
static void line_hook(lua_State *L, lua_Debug *ar)
{
    static uintptr_t prev;
    if (!lua_getinfo(L, "S", ar))
        return;
    uintptr_t here = ((uintptr_t)ar->source >> 4) * 2654435761u + (uintptr_t)ar->currentline;
    uintptr_t edge = (here ^ prev) % EDGES;
    if (lua_edges[edge] < 255)
        lua_edges[edge]++;
    prev = here >> 1;
}

/* Leaves the checker function in the registry; runs protected. */
static int setup(lua_State *L)
{
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, SHOAL_SOURCE_DIR "/lua/?.lua");
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload"); /* the C half of shoal.crawl, as in shoal's states */
    lua_pushcfunction(L, lj_open_url);
    lua_setfield(L, -2, "shoal.url");
    lua_pop(L, 2);
    lua_getglobal(L, "require");
    lua_pushstring(L, "shoal.crawl");
    lua_call(L, 1, 1);
    if (luaL_loadbuffer(L, checker, sizeof checker - 1, "=fuzz_crawl") != 0)
        return lua_error(L);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.check");
    return 0;
}

static lua_State *shared;

static void close_state(void)
{
    lua_close(shared);
}

static lua_State *state(void)
{
    if (!shared) {
        shared = luaL_newstate();
        if (!shared)
            abort();
        if (lua_cpcall(shared, setup, NULL) != 0) {
            fprintf(stderr, "fuzz_crawl: cannot load shoal.crawl: %s\n",
                    lua_tostring(shared, -1));
            abort();
        }
        atexit(close_state);
        lua_sethook(shared, line_hook, LUA_MASKLINE, 0);
    }
    return shared;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    lua_State *L = state();
    const char *in = (const char *)data, *nul = NULL;
    for (size_t i = size; i > 0 && !nul; i--)
        if (in[i - 1] == '\0')
            nul = in + i - 1;

    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.check");
    if (nul) {
        lua_pushlstring(L, in, (size_t)(nul - in));
        lua_pushlstring(L, nul + 1, size - (size_t)(nul - in) - 1);
    } else {
        lua_pushlstring(L, in, size);
        lua_pushliteral(L, "http://example.com/dir/page.html?q=1");
    }
    if (lua_pcall(L, 2, 0, 0) != 0) {
        fprintf(stderr, "fuzz_crawl: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (++runs % 1000 == 0)
        lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
