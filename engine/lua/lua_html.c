/* lua_html.c - the module `shoal.html_core`: libxml2's HTML parser and
 * XPath engine for Lua, which lua/shoal/html.lua wraps into shoal.html
 * (scripts use that; this module's names are html.lua's to choose).
 * Registered in package.preload of every state (lua_state.c); it keeps no
 * state of its own, so any thread's Lua may call it on its own documents.
 *
 *   parse(body [, url])     -> document (never nil: an empty body is an empty document)
 *   select(target, xpath)   -> array of nodes and strings, or a number, string or boolean
 *                              | nil, err (the expression does not compile or evaluate)
 *   text(target), html(target), tag(node), attr(node, name), attrs(node), url(target)
 *   free(document)           -> frees the tree now; its nodes raise from then on
 *   css_xpath(selector, axis) -> xpath | nil, err      (base/css.c)
 *   document, node           : the two metatables, for html.lua to give methods
 *
 * A target is a document or a node. A document is a userdata whose __gc
 * frees the xmlDoc; every node is a userdata whose environment is its
 * document's, a table holding the document, so the document outlives each
 * node the script still holds. Nodes have no __gc: they own nothing; each
 * use checks that free() has not taken their tree.
 *
 * The body is parsed with RECOVER (broken markup is the norm), no error
 * output, and no network; its size is bounded by the caller (--max-body)
 * and by libxml2's int lengths here. HUGE lifts libxml2's depth limit of
 * 256 elements (past it the parser drops the rest of the page, deeper or
 * not), as parsel (Scrapy's selectors) does: libxml2's parser, serialiser
 * and XPath walk trees without recursion, so deep nesting costs heap, not
 * C stack (spec/lua/test_html.lua parses 100,000 nested divs). */
#include "lua/lua_internal.h"

#include <libxml/HTMLparser.h>
#include <libxml/HTMLtree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "base/css.h"

#define DOC_META "shoal.html.document"
#define NODE_META "shoal.html.node"

#define PARSE_OPTIONS                                                                              \
    (HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |           \
     HTML_PARSE_COMPACT | XML_PARSE_HUGE)

struct hdoc {
    xmlDocPtr doc;
};

struct hnode {
    xmlNodePtr node;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* One parser context per thread, reset for each page: its dictionary of
 * names and its buffers are reused instead of made and freed per parse. */
/* Trees this thread holds (parsed, not yet freed), to pace the collector. */
static __thread long tl_live;

static pthread_key_t ctxt_key;

static void free_ctxt(void *ctxt)
{
    htmlFreeParserCtxt(ctxt);
}

/* And one XPath context per thread: making one registers every XPath
 * function anew (about 22k instructions, more than a small query). */
static pthread_key_t xpath_key;

static void free_xpath(void *ctx)
{
    xmlXPathFreeContext(ctx);
}

static void init_libxml(void)
{
    xmlInitParser();
    pthread_key_create(&ctxt_key, free_ctxt);
    pthread_key_create(&xpath_key, free_xpath);
}

static xmlXPathContextPtr xpath_context(xmlDocPtr doc)
{
    xmlXPathContextPtr ctx = pthread_getspecific(xpath_key);
    if (!ctx) {
        if (!(ctx = xmlXPathNewContext(doc)))
            return NULL;
        pthread_setspecific(xpath_key, ctx);
    }
    ctx->doc = doc;
    ctx->contextSize = -1;
    ctx->proximityPosition = -1;
    return ctx;
}

static htmlDocPtr read_html(const char *body, int n, const char *url)
{
    htmlParserCtxtPtr ctxt = pthread_getspecific(ctxt_key);
    if (!ctxt) {
        if (!(ctxt = htmlNewParserCtxt()))
            return NULL;
        pthread_setspecific(ctxt_key, ctxt);
    }
    return htmlCtxtReadMemory(ctxt, body, n, url, NULL, PARSE_OPTIONS);
}

static void quiet(void *ctx, const char *msg, ...) {}

/* The node a target at idx stands for: a document's document node, or a
 * node's own. Raises when idx is neither. */
static xmlNodePtr target(lua_State *L, int idx)
{
    void *p = lua_touserdata(L, idx);
    if (p && lua_getmetatable(L, idx)) {
        luaL_getmetatable(L, DOC_META);
        int is_doc = lua_rawequal(L, -1, -2);
        luaL_getmetatable(L, NODE_META);
        int is_node = lua_rawequal(L, -1, -3);
        lua_pop(L, 3);
        if (is_doc) {
            if (!((struct hdoc *)p)->doc)
                luaL_error(L, "shoal.html: this document was freed (doc:free())");
            return (xmlNodePtr)((struct hdoc *)p)->doc;
        }
        if (is_node) {
            lua_getfenv(L, idx);
            lua_rawgeti(L, -1, 1);
            struct hdoc *d = lua_touserdata(L, -1);
            lua_pop(L, 2);
            if (!d || !d->doc)
                luaL_error(L, "shoal.html: this node's document was freed (doc:free())");
            return ((struct hnode *)p)->node;
        }
    }
    luaL_typerror(L, idx, "shoal.html document or node");
    return NULL;
}

static xmlNodePtr element(lua_State *L, int idx)
{
    luaL_checkudata(L, idx, NODE_META);
    return target(L, idx);
}

/* A node of the document whose environment table is at env. */
static void push_node(lua_State *L, xmlNodePtr node, int env)
{
    struct hnode *h = lua_newuserdata(L, sizeof *h);
    h->node = node;
    luaL_getmetatable(L, NODE_META);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, env);
    lua_setfenv(L, -2);
}

static void push_xml_string(lua_State *L, xmlChar *s)
{
    if (s)
        lua_pushstring(L, (const char *)s);
    else
        lua_pushliteral(L, "");
    xmlFree(s);
}

static int l_parse(lua_State *L)
{
    size_t n;
    const char *body = luaL_checklstring(L, 1, &n);
    const char *url = luaL_optstring(L, 2, NULL);
    if (n > INT_MAX) {
        lua_pushnil(L);
        lua_pushfstring(L, "body of %f bytes: libxml2 parses at most %d", (double)n, INT_MAX);
        return 2;
    }
    pthread_once(&init_once, init_libxml);
    /* the userdata first, so its __gc frees the tree if what follows raises */
    struct hdoc *h = lua_newuserdata(L, sizeof *h);
    h->doc = NULL;
    luaL_getmetatable(L, DOC_META);
    lua_setmetatable(L, -2);
    if (n > 0)
        h->doc = read_html(body, (int)n, url);
    if (!h->doc) {
        /* nothing to parse (libxml2 answers NULL for no markup at all) */
        h->doc = htmlNewDocNoDtD(NULL, NULL);
        if (!h->doc)
            return luaL_error(L, "shoal.html: out of memory parsing a body of %d bytes", (int)n);
        if (url)
            h->doc->URL = xmlStrdup((const xmlChar *)url);
    }
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 1);
    lua_setfenv(L, -2);
    /* The collector sees a small userdata, not the tree (a few times the
     * body) libxml2 holds for it: step it as if the tree were Lua's, so a
     * crawl parsing page after page frees old documents at the pace it
     * makes new ones. Not while few trees are alive (a script that calls
     * doc:free() keeps none): the step cost more than a small parse. */
    if (++tl_live > 8)
        lua_gc(L, LUA_GCSTEP, (int)(n / 512) + 1);
    return 1;
}

/* Frees the tree now rather than when the collector finds the document;
 * its nodes raise from then on. */
static int l_free(lua_State *L)
{
    struct hdoc *h = luaL_checkudata(L, 1, DOC_META);
    if (h->doc) {
        xmlFreeDoc(h->doc);
        tl_live--;
    }
    h->doc = NULL;
    return 0;
}

struct xpath_error {
    int code; /* an xmlXPathError, or -1 when none was reported */
    int at;   /* byte offset into the expression */
};

/* libxml2 reports a context's XPath errors by code, without text */
static void on_xpath_error(void *data, xmlErrorPtr e)
{
    struct xpath_error *x = data;
    if (x->code >= 0 || !e)
        return;
    x->code = e->code - XML_XPATH_EXPRESSION_OK;
    x->at = e->int1;
}

static const char *xpath_problem(int code)
{
    static const struct {
        int code;
        const char *what;
    } problems[] = {
        {XPATH_NUMBER_ERROR, "a malformed number"},
        {XPATH_UNFINISHED_LITERAL_ERROR, "an unterminated string"},
        {XPATH_START_LITERAL_ERROR, "expected a string"},
        {XPATH_VARIABLE_REF_ERROR, "a malformed variable reference"},
        {XPATH_UNDEF_VARIABLE_ERROR, "an undefined variable (none are defined)"},
        {XPATH_INVALID_PREDICATE_ERROR, "an invalid predicate ([...])"},
        {XPATH_EXPR_ERROR, "an invalid expression"},
        {XPATH_UNCLOSED_ERROR, "something left unclosed"},
        {XPATH_UNKNOWN_FUNC_ERROR, "an unknown function (XPath 1.0 has no others)"},
        {XPATH_INVALID_OPERAND, "an operand of the wrong type"},
        {XPATH_INVALID_TYPE, "a value of the wrong type"},
        {XPATH_INVALID_ARITY, "a function called with the wrong number of arguments"},
        {XPATH_MEMORY_ERROR, "out of memory"},
        {XPATH_UNDEF_PREFIX_ERROR, "an undefined namespace prefix"},
        {XPATH_ENCODING_ERROR, "a byte that is not UTF-8"},
        {XPATH_INVALID_CHAR_ERROR, "an invalid character"},
        {XPATH_STACK_ERROR, "too deeply nested"},
        {XPATH_OP_LIMIT_EXCEEDED, "too much work"},
        {XPATH_RECURSION_LIMIT_EXCEEDED, "too deeply nested"},
    };
    for (size_t k = 0; k < sizeof problems / sizeof problems[0]; k++)
        if (problems[k].code == code)
            return problems[k].what;
    return "an invalid expression";
}

/* One member of a node-set: elements (and the document) as nodes,
 * attributes, text and comments as their text. */
static void push_member(lua_State *L, xmlNodePtr n, int env)
{
    switch (n->type) {
    case XML_ELEMENT_NODE:
    case XML_DOCUMENT_NODE:
    case XML_HTML_DOCUMENT_NODE:
        push_node(L, n, env);
        break;
    case XML_NAMESPACE_DECL: {
        xmlNsPtr ns = (xmlNsPtr)n;
        lua_pushstring(L, ns->href ? (const char *)ns->href : "");
        break;
    }
    default:
        push_xml_string(L, xmlNodeGetContent(n));
        break;
    }
}

static int l_select(lua_State *L)
{
    xmlNodePtr at = target(L, 1);
    const char *expr = luaL_checkstring(L, 2);
    lua_getfenv(L, 1);
    int env = lua_gettop(L);
    xmlXPathContextPtr ctx = xpath_context(at->doc);
    if (!ctx)
        return luaL_error(L, "shoal.html: out of memory (xpath context)");
    struct xpath_error err = {-1, 0};
    /* some evaluation errors are printed, not reported: a script's
     * mistake belongs in its error, not on shoal's stderr. The handler is
     * per thread in libxml2, so it is set on the thread that evaluates. */
    xmlSetGenericErrorFunc(NULL, quiet);
    ctx->node = at;
    ctx->error = on_xpath_error;
    ctx->userData = &err;
    xmlXPathObjectPtr r = xmlXPathEval((const xmlChar *)expr, ctx);
    ctx->doc = NULL; /* kept for the thread's next query, pointing at nothing */
    ctx->node = NULL;
    if (!r) {
        lua_pushnil(L);
        if (err.code >= 0)
            lua_pushfstring(L, "%s at column %d", xpath_problem(err.code), err.at + 1);
        else
            lua_pushliteral(L, "the expression does not evaluate");
        return 2;
    }
    switch (r->type) {
    case XPATH_NODESET: {
        int n = r->nodesetval ? r->nodesetval->nodeNr : 0;
        lua_createtable(L, n, 0);
        for (int i = 0; i < n; i++) {
            push_member(L, r->nodesetval->nodeTab[i], env);
            lua_rawseti(L, -2, i + 1);
        }
        break;
    }
    case XPATH_BOOLEAN:
        lua_pushboolean(L, r->boolval);
        break;
    case XPATH_NUMBER:
        lua_pushnumber(L, r->floatval);
        break;
    case XPATH_STRING:
        lua_pushstring(L, r->stringval ? (const char *)r->stringval : "");
        break;
    default:
        lua_pushnil(L);
        lua_pushstring(L, "the expression's result is neither nodes, string, number nor boolean");
        xmlXPathFreeObject(r);
        return 2;
    }
    xmlXPathFreeObject(r);
    return 1;
}

static int l_text(lua_State *L)
{
    push_xml_string(L, xmlNodeGetContent(target(L, 1)));
    return 1;
}

static int l_html(lua_State *L)
{
    xmlNodePtr n = target(L, 1);
    if (n->type == XML_HTML_DOCUMENT_NODE || n->type == XML_DOCUMENT_NODE) {
        xmlChar *mem = NULL;
        int size = 0;
        htmlDocDumpMemory((xmlDocPtr)n, &mem, &size);
        if (!mem)
            return luaL_error(L, "shoal.html: out of memory (serialising the document)");
        lua_pushlstring(L, (const char *)mem, (size_t)size);
        xmlFree(mem);
        return 1;
    }
    xmlOutputBufferPtr out = xmlAllocOutputBuffer(NULL);
    if (!out)
        return luaL_error(L, "shoal.html: out of memory (serialising a node)");
    /* format 0: the markup as parsed, no line breaks added */
    htmlNodeDumpFormatOutput(out, n->doc, n, NULL, 0);
    const xmlChar *p = xmlOutputBufferGetContent(out);
    if (out->error || !p) {
        xmlOutputBufferClose(out);
        return luaL_error(L, "shoal.html: out of memory (serialising a node)");
    }
    lua_pushlstring(L, (const char *)p, xmlOutputBufferGetSize(out));
    xmlOutputBufferClose(out);
    return 1;
}

static int l_tag(lua_State *L)
{
    xmlNodePtr n = element(L, 1);
    if (n->type == XML_ELEMENT_NODE && n->name)
        lua_pushstring(L, (const char *)n->name);
    else
        lua_pushnil(L);
    return 1;
}

static int l_attr(lua_State *L)
{
    xmlNodePtr n = element(L, 1);
    const char *name = luaL_checkstring(L, 2);
    if (n->type != XML_ELEMENT_NODE || !xmlHasProp(n, (const xmlChar *)name)) {
        lua_pushnil(L);
        return 1;
    }
    push_xml_string(L, xmlGetProp(n, (const xmlChar *)name));
    return 1;
}

static int l_attrs(lua_State *L)
{
    xmlNodePtr n = element(L, 1);
    lua_newtable(L);
    if (n->type != XML_ELEMENT_NODE)
        return 1;
    for (xmlAttrPtr a = n->properties; a; a = a->next) {
        if (!a->name)
            continue;
        push_xml_string(L, xmlNodeGetContent((xmlNodePtr)a));
        lua_setfield(L, -2, (const char *)a->name);
    }
    return 1;
}

/* The document's own URL, the one parse() was given, or nil. */
static int l_url(lua_State *L)
{
    xmlNodePtr n = target(L, 1);
    if (n->doc && n->doc->URL)
        lua_pushstring(L, (const char *)n->doc->URL);
    else
        lua_pushnil(L);
    return 1;
}

static int l_css_xpath(lua_State *L)
{
    size_t n;
    const char *sel = luaL_checklstring(L, 1, &n);
    const char *axis = luaL_checkstring(L, 2);
    char err[CSS_ERR_MAX];
    char *x = css_to_xpath(sel, n, axis, err);
    if (!x) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushstring(L, x);
    free(x);
    return 1;
}

int lj_open_html(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"parse", l_parse}, {"select", l_select}, {"text", l_text},
        {"html", l_html},   {"tag", l_tag},       {"attr", l_attr},
        {"attrs", l_attrs}, {"url", l_url},       {"css_xpath", l_css_xpath},
        {"free", l_free},   {NULL, NULL},
    };
    pthread_once(&init_once, init_libxml);
    lua_createtable(L, 0, 12);
    luaL_register(L, NULL, fns);
    luaL_newmetatable(L, DOC_META);
    lua_pushcfunction(L, l_free);
    lua_setfield(L, -2, "__gc");
    lua_setfield(L, -2, "document");
    luaL_newmetatable(L, NODE_META);
    lua_setfield(L, -2, "node");
    return 1;
}
