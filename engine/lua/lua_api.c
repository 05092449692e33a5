/* lua_api.c - the C primitives behind the `shoal` module (shoal.runtime
 * wraps them): http, sleep, push, now, log, emit.
 *
 * Every function here runs on the state's worker thread, inside a resume of
 * a job, producer or done coroutine, and reaches the engine only through
 * the state's host (lua_host.h). Those that wait (http, sleep, a producer's
 * push into a full queue) hand the request to the host and yield; the host
 * resumes the coroutine with the outcome. Misuse raises a Lua error
 * (luaL_error); failures at run time return nil, message. */
#include "lua/lua_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/embedded.h"
#include "lua/lua_host.h"
#include "telemetry/logs/logger.h"

char lj_done_mark;

/* The host's ops and its pointer; host is NULL in `shoal check`. */
#define HOST(s) ((s)->cfg.host_ops)
#define HOST_ARG(s) ((s)->cfg.host)

int lj_yield_io(lj *s, lua_State *L, int slot)
{
    s->slots[slot].io = 1;
    return lua_yield(L, 0);
}

static lj *state_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* The slot of the coroutine L if it is the one the host is resuming (a
 * job's, the producer's, done()'s), else -1 (init(), the script's top
 * level, a coroutine the script made itself). */
static int running_slot(lua_State *L, lj *s)
{
    int slot = s->cur_slot;
    return s->cfg.host && slot >= 0 && s->slots[slot].co == L ? slot : -1;
}

/* running_slot, or a Lua error naming what cannot be called from here. */
static int slot_of(lua_State *L, lj *s, const char *what)
{
    int slot = running_slot(L, s);
    if (slot < 0)
        return luaL_error(L,
                          "%s can only be called from handle(), produce() or done() "
                          "(not from init(), the script's top level, or a coroutine "
                          "the script created)",
                          what);
    return slot;
}

static int l_http(lua_State *L)
{
    lj *s = state_of(L);
    int slot = slot_of(L, s, "shoal.http");
    struct lj_http_request req = {0};
    req.method = luaL_checkstring(L, 1);
    req.url = luaL_checkstring(L, 2);
    const char *hdrs[64];
    if (lua_istable(L, 3)) {
        int n = (int)lua_objlen(L, 3);
        if (n > 64)
            return lj_usage_error(L, "shoal.http: at most 64 request headers");
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, 3, i + 1);
            hdrs[i] = lua_tostring(L, -1);
            lua_pop(L, 1); /* the table still holds the string */
            if (!hdrs[i] || strpbrk(hdrs[i], "\r\n"))
                return lj_usage_error(L, "shoal.http: header %d has a line break or is not a string",
                                      i + 1);
        }
        req.headers = hdrs;
        req.nheaders = n;
    }
    if (lua_isstring(L, 4))
        req.body = lua_tolstring(L, 4, &req.body_len);
    req.timeout = luaL_optnumber(L, 5, 0);
    req.follow = lua_toboolean(L, 6);
    req.insecure = lua_toboolean(L, 7);
    req.compressed = lua_toboolean(L, 8);
    if (strpbrk(req.url, " \r\n\t"))
        return lj_usage_error(L, "shoal.http: url has white space in it: '%s' (encode spaces as %%20)",
                              req.url);
    char err[256];
    if (HOST(s)->http_start(HOST_ARG(s), slot, &req, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return lj_yield_io(s, L, slot);
}

static int l_sleep(lua_State *L)
{
    lj *s = state_of(L);
    int slot = slot_of(L, s, "shoal.sleep");
    HOST(s)->sleep_start(HOST_ARG(s), slot, luaL_checknumber(L, 1));
    return lj_yield_io(s, L, slot);
}

static int l_push(lua_State *L)
{
    lj *s = state_of(L);
    int slot = slot_of(L, s, "shoal.push");
    struct lj_push p = {0};
    p.data = luaL_checklstring(L, 1, &p.len);
    if (lua_isstring(L, 2))
        p.key = lua_tolstring(L, 2, &p.key_len);
    p.delay = luaL_optnumber(L, 3, 0);
    p.priority = (int)luaL_optinteger(L, 4, 0);
    /* a job with a traceparent field continues that trace (the host checks it) */
    if (lua_type(L, 5) == LUA_TSTRING)
        p.traceparent = lua_tolstring(L, 5, &p.traceparent_len);
    if (lua_type(L, 6) == LUA_TSTRING)
        p.tracestate = lua_tolstring(L, 6, &p.tracestate_len);
    uint64_t id = 0;
    switch (HOST(s)->push(HOST_ARG(s), slot, &p, &id)) {
    case LJ_PUSH_OK:
        lua_pushnumber(L, (lua_Number)id);
        return 1;
    case LJ_PUSH_DUP:
        lua_pushnil(L);
        lua_pushliteral(L, "duplicate");
        return 2;
    case LJ_PUSH_FULL:
        /* the host wakes us when there is room; runtime.lua pushes again */
        return lj_yield_io(s, L, slot);
    case LJ_PUSH_CLOSED:
        if (s->cfg.worker_id == 0)
            return lj_yield_io(s, L, slot); /* the producer is parked: the run is stopping */
        lua_pushnil(L);
        lua_pushliteral(L, "stopping");
        return 2;
    default:
        return luaL_error(L, "shoal.push: out of memory");
    }
}

/* trace_current() -> trace_id, span_id (hex) of the innermost open span of
 * the running job, or nothing when tracing is off. */
static int l_trace_current(lua_State *L)
{
    lj *s = state_of(L);
    int slot = running_slot(L, s);
    char t[33], sp[17];
    if (slot < 0 || HOST(s)->trace_current(HOST_ARG(s), slot, t, sp) != 0)
        return 0;
    lua_pushstring(L, t);
    lua_pushstring(L, sp);
    return 2;
}

/* span_begin(name) / span_end([error]) / span_attr(key, value): user spans
 * of the running job; they do nothing outside a job or with tracing off. */
static int l_span_begin(lua_State *L)
{
    lj *s = state_of(L);
    const char *name = luaL_checkstring(L, 1);
    int slot = running_slot(L, s);
    int ok = slot >= 0 && HOST(s)->trace_begin(HOST_ARG(s), slot, name) == 0;
    lua_pushboolean(L, ok);
    return 1;
}

static int l_span_end(lua_State *L)
{
    lj *s = state_of(L);
    const char *error = lua_isstring(L, 1) ? lua_tostring(L, 1) : NULL;
    int slot = running_slot(L, s);
    if (slot >= 0)
        HOST(s)->trace_end(HOST_ARG(s), slot, error);
    return 0;
}

static int l_span_attr(lua_State *L)
{
    lj *s = state_of(L);
    const char *key = luaL_checkstring(L, 1);
    size_t len = 0;
    const char *v = NULL;
    int t = lua_type(L, 2);
    if (t == LUA_TSTRING || t == LUA_TNUMBER) {
        v = lua_tolstring(L, 2, &len);
    } else if (t == LUA_TBOOLEAN) {
        v = lua_toboolean(L, 2) ? "true" : "false";
        len = strlen(v);
    }
    int slot = running_slot(L, s);
    if (v && slot >= 0)
        HOST(s)->trace_attr(HOST_ARG(s), slot, key, v, len);
    return 0;
}

/* job() -> id, attempt of the job whose coroutine is running, or nothing. */
static int l_job(lua_State *L)
{
    lj *s = state_of(L);
    int slot = running_slot(L, s);
    uint64_t id;
    int attempt;
    if (slot < 0 || HOST(s)->job(HOST_ARG(s), slot, &id, &attempt) != 0)
        return 0;
    lua_pushnumber(L, (lua_Number)id);
    lua_pushinteger(L, attempt);
    return 2;
}

static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    return 1;
}

static int wants(lj *s, enum log_level lv)
{
    if (s->cfg.host)
        return HOST(s)->log_wants(HOST_ARG(s), (int)lv);
    return logger_global ? logger_wants(logger_global, lv) : lv >= LOG_INFO;
}

/* Adds the pair at the stack's top (key at -2, value at -1) to rec.
 * Strings other than the table's own (numeric keys, tostring of a table)
 * are pushed and left on the stack, so they live until the record is
 * emitted; the caller has made room. */
static void add_pair(lua_State *L, struct log_record *rec, int *extra)
{
    size_t klen;
    const char *key;
    if (lua_type(L, -2) == LUA_TSTRING) {
        key = lua_tolstring(L, -2, &klen);
    } else {
        /* tolstring on the key itself would confuse lua_next: a copy */
        if (lua_type(L, -2) == LUA_TNUMBER) {
            lua_pushvalue(L, -2);
            key = lua_tolstring(L, -1, &klen);
        } else {
            key = lua_pushfstring(L, "%s", luaL_typename(L, -2));
        }
        lua_insert(L, -3); /* keep it below the pair */
        (*extra)++;
    }
    if (!key || rec->nfields >= LOG_MAX_FIELDS)
        return;
    struct log_field *f = &rec->f[rec->nfields];
    f->key = key;
    f->key_len = key ? strlen(key) : 0;
    switch (lua_type(L, -1)) {
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, -1);
        if (d == (double)(int64_t)d && d > -9007199254740992.0 && d < 9007199254740992.0) {
            f->type = LOG_INT;
            f->i = (int64_t)d;
        } else {
            f->type = LOG_DBL;
            f->d = d;
        }
        break;
    }
    case LUA_TBOOLEAN:
        f->type = LOG_BOOL;
        f->i = lua_toboolean(L, -1);
        break;
    case LUA_TSTRING:
        f->type = LOG_STR;
        f->s = lua_tolstring(L, -1, &f->len);
        break;
    default:
        f->type = LOG_STR;
        f->s = lua_pushfstring(L, "%s: %p", luaL_typename(L, -1), lua_topointer(L, -1));
        f->len = strlen(f->s);
        lua_insert(L, -3);
        (*extra)++;
        break;
    }
    rec->nfields++;
}

/* Fields in key order: a script's lines read the same every time. */
static void sort_fields(struct log_record *rec)
{
    for (int i = 1; i < rec->nfields; i++) {
        struct log_field f = rec->f[i];
        int j = i;
        for (; j > 0; j--) {
            const struct log_field *p = &rec->f[j - 1];
            size_t n = p->key_len < f.key_len ? p->key_len : f.key_len;
            int c = memcmp(p->key, f.key, n);
            if (c < 0 || (c == 0 && p->key_len <= f.key_len))
                break;
            rec->f[j] = rec->f[j - 1];
        }
        rec->f[j] = f;
    }
}

/* log(level, msg [, fields]): one record to the run's logger, with the
 * job's id and trace ids when called from a job. */
static int l_log(lua_State *L)
{
    lj *s = state_of(L);
    enum log_level lv;
    if (log_level_parse(luaL_checkstring(L, 1), &lv) != 0)
        return luaL_argerror(L, 1, "debug, info, warn or error");
    if (!wants(s, lv))
        return 0;
    struct log_record rec;
    log_begin(&rec, lv, NULL);
    rec.msg = luaL_checklstring(L, 2, &rec.msg_len);
    int extra = 0;
    if (lua_istable(L, 3)) {
        lua_settop(L, 3);
        luaL_checkstack(L, 2 * LOG_MAX_FIELDS + 8, "log fields");
        lua_pushnil(L);
        while (lua_next(L, 3) != 0 && rec.nfields < LOG_MAX_FIELDS) {
            add_pair(L, &rec, &extra);
            lua_pop(L, 1);
        }
        sort_fields(&rec);
    }
    if (s->cfg.host)
        HOST(s)->log(HOST_ARG(s), running_slot(L, s), &rec);
    else
        log_emit_global(&rec);
    return 0;
}

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

/* job_url(url): the running job's url, for its log line and its span. */
static int l_job_url(lua_State *L)
{
    lj *s = state_of(L);
    size_t len;
    const char *url = luaL_checklstring(L, 1, &len);
    int slot = running_slot(L, s);
    if (slot >= 0)
        HOST(s)->job_url(HOST_ARG(s), slot, url, len);
    return 0;
}

/* load_embedded(path) -> the compiled chunk of a file built into the
 * binary (the demo's examples/crawl.lua), or nil, message. */
static int l_load_embedded(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    for (const struct embedded_module *m = embedded_modules; m->name; m++) {
        if (strcmp(m->path, path) != 0)
            continue;
        char chunk[300];
        snprintf(chunk, sizeof chunk, "@%s", m->path);
        if (luaL_loadbuffer(L, m->data, m->len, chunk) != 0) {
            lua_pushnil(L);
            lua_insert(L, -2);
            return 2;
        }
        return 1;
    }
    lua_pushnil(L);
    lua_pushfstring(L, "no built-in file %s", path);
    return 2;
}

void lj_api_push_core(lj *s, lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"http", l_http},
        {"sleep", l_sleep},
        {"push", l_push},
        {"now", l_now},
        {"log", l_log},
        {"load_embedded", l_load_embedded},
        {"job", l_job},
        {"trace_current", l_trace_current},
        {"span_begin", l_span_begin},
        {"span_end", l_span_end},
        {"span_attr", l_span_attr},
        {"job_url", l_job_url},
        {"emit", l_emit},
        {"items_format", l_items_format},
        {"items_columns", l_items_columns},
        {NULL, NULL},
    };
    lua_newtable(L);
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushlightuserdata(L, s);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -2, f->name);
    }
    lua_pushboolean(L, s->cfg.tracing);
    lua_setfield(L, -2, "tracing");
    lua_pushboolean(L, s->cfg.host ? HOST(s)->log_wants(HOST_ARG(s), LOG_DEBUG) : 0);
    lua_setfield(L, -2, "log_debug");
    lua_pushinteger(L, s->cfg.worker_id);
    lua_setfield(L, -2, "worker_id");
    lua_pushlightuserdata(L, &lj_done_mark);
    lua_setfield(L, -2, "done_mark");
    lua_createtable(L, s->cfg.nargs, 0);
    for (int i = 0; i < s->cfg.nargs; i++) {
        lua_pushstring(L, s->cfg.args[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "args");
    if (s->cfg.listen && *s->cfg.listen && strcmp(s->cfg.listen, "off") != 0) {
        lua_pushfstring(L, "http://%s", s->cfg.listen);
        lua_setfield(L, -2, "listen_url");
    }
    lj_api_push_metrics(s, L);
}
