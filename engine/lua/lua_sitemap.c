/* lua_sitemap.c - the module shoal.sitemap_core: sitemaps (sitemaps.org
 * protocol) read with libxml2's streaming reader, and gzip'd ones inflated
 * with zlib, for crawl.sitemap (lua/shoal/crawl.lua).
 *
 *   parse(xml) -> kind ("urlset" or "sitemapindex"), {{loc=, lastmod=}, ...}
 *                 | nil, message
 *   gunzip(data [, max]) -> data | nil, message
 *
 * The reader keeps no tree, never loads external entities or DTDs (no
 * network, no entity expansion: a hostile sitemap cannot make it fetch or
 * balloon), and stops at max entries (the protocol's 50,000; more is an
 * error saying so). gunzip stops at max bytes out (default 50 MiB, the
 * protocol's cap on an uncompressed sitemap). */
#include "lua/lua_internal.h"

#include <libxml/xmlreader.h>
#include <string.h>
#include <zlib.h>

#define SITEMAP_MAX_ENTRIES 50000
#define SITEMAP_MAX_BYTES (50u << 20)

/* The element's local name, ignoring any namespace prefix. */
static int named(xmlTextReaderPtr r, const char *name)
{
    const xmlChar *n = xmlTextReaderConstLocalName(r);
    return n && strcmp((const char *)n, name) == 0;
}

static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx, (void)msg;
}

static int l_parse(lua_State *L)
{
    size_t len;
    const char *xml = luaL_checklstring(L, 1, &len);
    xmlSetGenericErrorFunc(NULL, quiet);
    xmlTextReaderPtr r = xmlReaderForMemory(xml, (int)(len > INT32_MAX ? INT32_MAX : len), NULL,
                                            NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
                                                      XML_PARSE_NOWARNING);
    if (!r) {
        lua_pushnil(L);
        lua_pushliteral(L, "not XML");
        return 2;
    }
    const char *kind = NULL;
    int n = 0, in_entry = 0, field = 0, rc, over = 0; /* field: 1 loc, 2 lastmod */
    lua_newtable(L);
    int list = lua_gettop(L);
    luaL_Buffer b;
    while ((rc = xmlTextReaderRead(r)) == 1) {
        int type = xmlTextReaderNodeType(r);
        if (field && type == XML_READER_TYPE_ELEMENT)
            continue; /* markup inside <loc>: its text counts, nothing else (the buffer is open) */
        if (type == XML_READER_TYPE_ELEMENT) {
            if (!kind) {
                kind = named(r, "urlset") ? "urlset" : named(r, "sitemapindex") ? "sitemapindex"
                                                                                : "";
                continue;
            }
            if (named(r, "url") || named(r, "sitemap")) {
                if (n == SITEMAP_MAX_ENTRIES) {
                    over = 1;
                    break;
                }
                in_entry = 1;
                lua_newtable(L);
            } else if (in_entry && (named(r, "loc") || named(r, "lastmod"))) {
                field = named(r, "loc") ? 1 : 2;
                luaL_buffinit(L, &b);
            }
        } else if (field && (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA)) {
            const xmlChar *v = xmlTextReaderConstValue(r);
            if (v)
                luaL_addstring(&b, (const char *)v);
        } else if (type == XML_READER_TYPE_END_ELEMENT) {
            if (field && (named(r, "loc") || named(r, "lastmod"))) {
                luaL_pushresult(&b);
                /* white space around a value is not part of it */
                const char *s = lua_tostring(L, -1);
                size_t sl = lua_objlen(L, -1), a = 0;
                while (a < sl && strchr(" \t\r\n", s[a]))
                    a++;
                while (sl > a && strchr(" \t\r\n", s[sl - 1]))
                    sl--;
                lua_pushlstring(L, s + a, sl - a);
                lua_setfield(L, -3, field == 1 ? "loc" : "lastmod");
                lua_pop(L, 1);
                field = 0;
            } else if (!field && in_entry && (named(r, "url") || named(r, "sitemap"))) {
                in_entry = 0;
                lua_getfield(L, -1, "loc");
                int has_loc = !lua_isnil(L, -1);
                lua_pop(L, 1);
                if (has_loc)
                    lua_rawseti(L, list, ++n);
                else
                    lua_pop(L, 1); /* an entry with no loc says nothing */
            }
        }
    }
    xmlFreeTextReader(r);
    if (over) {
        lua_pushnil(L);
        lua_pushfstring(L, "more than %d entries (the sitemap protocol's limit)",
                        SITEMAP_MAX_ENTRIES);
        return 2;
    }
    if (rc < 0 && n == 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "not well-formed XML");
        return 2;
    }
    if (!kind || !*kind) {
        lua_pushnil(L);
        lua_pushliteral(L, "not a sitemap (its root is neither <urlset> nor <sitemapindex>)");
        return 2;
    }
    lua_settop(L, list);
    lua_pushstring(L, kind);
    lua_insert(L, -2);
    return 2;
}

static int l_gunzip(lua_State *L)
{
    size_t len;
    const char *in = luaL_checklstring(L, 1, &len);
    size_t max = (size_t)luaL_optnumber(L, 2, SITEMAP_MAX_BYTES);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK) /* gzip or zlib, told by the header */
        return luaL_error(L, "out of memory");
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t total = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
        char *out = luaL_prepbuffer(&b);
        z.next_out = (Bytef *)out;
        z.avail_out = LUAL_BUFFERSIZE;
        rc = inflate(&z, Z_NO_FLUSH);
        size_t got = LUAL_BUFFERSIZE - z.avail_out;
        total += got;
        luaL_addsize(&b, got);
        if (total > max) {
            inflateEnd(&z);
            luaL_pushresult(&b);
            lua_pushnil(L);
            lua_pushfstring(L, "more than %d bytes once inflated", (int)max);
            return 2;
        }
        if (rc == Z_BUF_ERROR && z.avail_in == 0)
            break; /* cut short */
    }
    inflateEnd(&z);
    luaL_pushresult(&b);
    if (rc != Z_STREAM_END) {
        lua_pushnil(L);
        lua_pushliteral(L, "not gzip data, or cut short");
        return 2;
    }
    return 1;
}

int lj_open_sitemap(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"parse", l_parse},
        {"gunzip", l_gunzip},
        {NULL, NULL},
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
