/* fuzz_html.c - fuzz target for shoal.html's entry points (lua/lua_html.c):
 * any body a server sends is parsed, and every element of the result can be
 * read. The input is parsed with a base URL, then the first 64 elements (in
 * document order) have their text, HTML, tag and attributes read, and a
 * few XPath queries run, in a bare Lua state with shoal.html_core. Nothing
 * may crash, leak or raise; the document is freed explicitly and again by
 * the collector (a freed document must be safe to collect). */
#include "lua/lua_internal.h"

#include "fuzz_util.h"

#include <stdint.h>

static const char script[] =
    "local core, body = ...\n"
    "local doc = core.parse(body, 'http://example.com/a/b.html')\n"
    "local nodes = assert(core.select(doc, '//*'))\n"
    "for i = 1, math.min(#nodes, 64) do\n"
    "  local n = nodes[i]\n"
    "  if type(n) == 'userdata' then\n"
    "    assert(type(core.text(n)) == 'string')\n"
    "    assert(type(core.html(n)) == 'string')\n"
    "    core.tag(n); core.attrs(n); core.attr(n, 'href')\n"
    "  end\n"
    "end\n"
    "assert(core.select(doc, '//a/@href'))\n"
    "assert(core.select(doc, 'count(//p)'))\n"
    "assert(core.select(doc, 'string(//title)'))\n"
    "assert(type(core.html(doc)) == 'string')\n"
    "core.free(doc)\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = luaL_newstate();
    must(L != NULL);
    luaL_openlibs(L);
    must(luaL_loadbuffer(L, script, sizeof script - 1, "=fuzz_html") == 0);
    lua_pushcfunction(L, lj_open_html);
    must(lua_pcall(L, 0, 1, 0) == 0);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 2, 0, 0) != 0) {
        fprintf(stderr, "fuzz_html: %s\n", lua_tostring(L, -1));
        must(0);
    }
    lua_close(L);
    return 0;
}
