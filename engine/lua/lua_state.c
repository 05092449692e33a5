/* lua_state.c - creating a worker's Lua state and running its coroutines.
 *
 * A state is made with a counting allocator so a job cannot take more than
 * its share of memory: the cap is enforced only while job code runs, so the
 * engine's own allocations between resumes never fail on it. The embedded
 * lua/ modules are registered in package.preload (unless --lua-path has a
 * file of the same name), the runtime (lua/shoal/runtime.lua) is run with the
 * `core` table, and the user's script is loaded. Every entry into Lua is
 * lua_pcall/lua_resume: nothing here can longjmp past its caller.
 *
 * One thread owns a state. lj_watchdog_signal is the exception: it runs in a
 * signal handler on the owning thread and only arms a hook, which raises
 * once the script code the host's watchdog sees on that thread (lj_host's
 * watch, lua_host.h) is past its deadline, or told to stop. */
#include "lua/lua_internal.h"

#include <lua-cjson.h>
#include <luajit.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lua/embedded.h"
#include "base/pool.h"

static __thread lj *tl_state; /* the state running script code on this thread */

static void lj_hook(lua_State *L, lua_Debug *ar);

/* The cap is soft: LuaJIT cannot take a failed allocation inside compiled
 * code (its out-of-memory path reads a stack frame that a trace has not
 * written back, and the process dies), so passing the cap only marks the
 * state over it and arms the hook, which raises the cap's error at the next
 * instruction the interpreter runs. Compiled code reaches the interpreter at
 * the collector's atomic phase, so the collector is made to get there at
 * its next step. Only a growth past twice the cap (one huge string, or a
 * trace allocating all the way there first) is refused outright. */
static void over_cap(lj *s)
{
    s->mem_over = 1;
    s->mem_hit = 1;
    s->hook_armed = 1;
    lua_sethook(s->L, lj_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    /* These only set fields: safe from inside an allocation. The next
     * step runs a whole cycle, so compiled code reaches the atomic phase
     * at once; a new cycle starts after 20% growth, not at once, so code
     * that allocates on inside a C function (where the hook cannot fire)
     * does not collect at every allocation. */
    lua_gc(s->L, LUA_GCSETPAUSE, 120);
    lua_gc(s->L, LUA_GCSETSTEPMUL, 1 << 30);
    lua_gc(s->L, LUA_GCRESTART, 0);
    s->gc_manual = 0;
}

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lj *s = ud;
    if (!ptr)
        osize = 0; /* Lua may pass a type tag as osize for new blocks */
    if (nsize == 0) {
        pool_realloc(s->pool, ptr, osize, 0);
        s->mem_used -= osize;
        return NULL;
    }
    if (s->enforce && nsize > osize && s->mem_used + (nsize - osize) > s->mem_cap) {
        if (s->mem_used + (nsize - osize) > 2 * s->mem_cap) {
            s->mem_hit = 1;
            return NULL;
        }
        if (!s->mem_over)
            over_cap(s);
    }
    void *p = pool_realloc(s->pool, ptr, osize, nsize);
    if (p) {
        s->mem_used = s->mem_used - osize + nsize;
        if (s->gc_manual && (s->mem_used > s->gc_assist_at || s->hook_armed)) {
            /* A resume allocating this much cannot wait for the worker's
             * next step: let the collector run inside it. So too when the
             * watchdog is after a runaway loop: compiled code leaves its
             * trace for the interpreter, where the hook fires, at the
             * collector's atomic phase. RESTART only sets the threshold,
             * safe from inside an allocation. */
            lua_gc(s->L, LUA_GCRESTART, 0);
            s->gc_manual = 0;
            s->gc_assisted = 1;
        }
    }
    return p;
}

/* After Lua code that went over the cap returns: the collector back to its
 * pace, the hook off, and what the code left behind collected. */
static void after_over_cap(lj *s)
{
    if (!s->mem_over)
        return;
    s->mem_over = 0;
    lua_gc(s->L, LUA_GCSETPAUSE, s->gc_pause);
    lua_gc(s->L, LUA_GCSETSTEPMUL, s->gc_stepmul);
    lj_watchdog_clear(s);
    lua_gc(s->L, LUA_GCCOLLECT, 0);
    s->mem_after_hit = s->mem_used;
    s->cap_hits++;
}

/* Brackets every call into Lua: the cap applies and the hook knows whose
 * state this is. */
static lj *enter(lj *s)
{
    lj *prev = tl_state;
    tl_state = s;
    s->mem_hit = 0;
    s->enforce = s->mem_cap > 0;
    return prev;
}

static void leave(lj *s, lj *prev)
{
    s->enforce = 0;
    tl_state = prev;
    after_over_cap(s);
    if (s->mem_hit) {
        /* refused outright: whatever that code held is garbage now, and
         * LuaJIT has no emergency collection of its own */
        lua_gc(s->L, LUA_GCCOLLECT, 0);
    }
}

static void set_error(lj *s, int slot, const char *msg)
{
    struct lj_slot *sl = &s->slots[slot];
    free(sl->error);
    if (s->mem_hit && msg && strstr(msg, "not enough memory")) {
        char buf[256];
        snprintf(buf, sizeof buf,
                 "job exceeded the Lua memory cap of %zu MiB per worker state "
                 "(--memory raises it)",
                 s->mem_cap >> 20);
        sl->error = strdup(buf);
    } else {
        sl->error = strdup(msg ? msg : "unknown error (a non-string error value)");
    }
}

static int embedded_loader(lua_State *L)
{
    const struct embedded_module *m = lua_touserdata(L, lua_upvalueindex(1));
    char chunk[256];
    snprintf(chunk, sizeof chunk, "@%s", m->path);
    if (luaL_loadbuffer(L, m->data, m->len, chunk) != 0)
        return lua_error(L);
    lua_pushstring(L, m->name);
    lua_call(L, 1, 1);
    return 1;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void lj_preload_c(lua_State *L)
{
    static const luaL_Reg mods[] = {
        {"cjson", luaopen_cjson},
        {"shoal.url", lj_open_url},
        {"shoal.shell_io", lj_open_shell},
        {"shoal.sitemap_core", lj_open_sitemap},
        {"shoal.html_core", lj_open_html},
        {NULL, NULL},
    };
    for (const luaL_Reg *m = mods; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
}

/* Runs inside lua_cpcall: everything that can raise is protected. */
static int setup(lua_State *L)
{
    lj *s = lua_touserdata(L, 1);
    luaL_openlibs(L);

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lj_preload_c(L);
    const struct embedded_module *runtime = NULL;
    char path[4096];
    for (const struct embedded_module *m = embedded_modules; m->name; m++) {
        if (!m->is_module)
            continue;
        if (s->cfg.lua_path) {
            snprintf(path, sizeof path, "%s/%s", s->cfg.lua_path, m->path + 4);
            if (file_exists(path))
                continue; /* package.path finds the disk copy */
        }
        if (strcmp(m->name, "shoal.runtime") == 0)
            runtime = m;
        lua_pushlightuserdata(L, (void *)m);
        lua_pushcclosure(L, embedded_loader, 1);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 1);

    /* package.path: --lua-path first, then the script's own directory */
    char dir[2048] = ".";
    const char *slash = s->cfg.script ? strrchr(s->cfg.script, '/') : NULL;
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - s->cfg.script), s->cfg.script);
    lua_getfield(L, -1, "path");
    const char *old = lua_tostring(L, -1);
    if (s->cfg.lua_path)
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s/?.lua;%s", s->cfg.lua_path,
                        s->cfg.lua_path, dir, old);
    else
        lua_pushfstring(L, "%s/?.lua;%s", dir, old);
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);

    /* the runtime: from --lua-path when present there, else embedded */
    if (runtime) {
        snprintf(path, sizeof path, "@%s", runtime->path);
        if (luaL_loadbuffer(L, runtime->data, runtime->len, path) != 0)
            return lua_error(L);
    } else {
        snprintf(path, sizeof path, "%s/shoal/runtime.lua", s->cfg.lua_path);
        if (luaL_loadfile(L, path) != 0)
            return lua_error(L);
    }
    lj_api_push_core(s, L);
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1))
        return luaL_error(L, "shoal.runtime did not return its entry points");
    struct {
        const char *name;
        int *ref;
    } entries[] = {
        {"job_loop", &s->ref_job_loop},      {"producer", &s->ref_producer},
        {"finisher", &s->ref_finisher},      {"initializer", &s->ref_initializer},
        {"load_script", &s->ref_load},       {"check_script", &s->ref_check},
        {"job_labels", &s->ref_job_labels},  {"dashboard", &s->ref_dashboard},
        {"script_options", &s->ref_options}, {"usage_error", &s->ref_usage},
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        lua_getfield(L, -1, entries[i].name);
        if (!lua_isfunction(L, -1))
            return luaL_error(L, "shoal.runtime lacks %s", entries[i].name);
        *entries[i].ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_pop(L, 1);
    return 0;
}

/* Calls the registry function ref with one optional string argument, expects
 * (ok, err). Returns 0, or -1 with the message in err. */
static int call_checked(lj *s, int ref, const char *arg, char *err, size_t errlen)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    int nargs = 0;
    if (arg) {
        lua_pushstring(L, arg);
        nargs = 1;
    }
    lj *prev = enter(s);
    int rc = lua_pcall(L, nargs, 2, 0);
    leave(s, prev);
    const char *msg = NULL;
    if (rc != 0)
        msg = lua_tostring(L, -1);
    else if (!lua_toboolean(L, -2))
        msg = lua_tostring(L, -1);
    if (rc != 0 || !lua_toboolean(L, -2)) {
        if (s->mem_hit && msg && strstr(msg, "not enough memory"))
            snprintf(err, errlen, "exceeded the Lua memory cap of %zu MiB per worker state "
                     "(--memory raises it)", s->mem_cap >> 20);
        else
            snprintf(err, errlen, "%s", msg ? msg : "unknown error");
        lua_settop(L, top);
        return -1;
    }
    /* success may come with a note (a warning for the user) */
    snprintf(err, errlen, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
    lua_settop(L, top);
    return 0;
}

lj *lj_new(const struct lj_config *cfg, char *err, size_t errlen)
{
    lj *s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    s->cfg = *cfg;
    s->mem_cap = cfg->mem_cap;
    s->cur_slot = -1;
    s->nslots = cfg->slots > 0 ? cfg->slots : 1;
    s->slots = calloc((size_t)s->nslots, sizeof *s->slots);
    s->pool = pool_new();
    if (!s->slots || !s->pool)
        goto oom;
    s->L = lua_newstate(counting_alloc, s);
    if (!s->L) {
        /* LuaJIT without GC64 refuses custom allocators on 64-bit: run uncapped */
        pool_free(s->pool);
        s->pool = NULL;
        s->L = luaL_newstate();
        s->mem_cap = 0;
        if (!s->L)
            goto oom;
    }
    luaJIT_setmode(s->L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_ON);
    s->gc_pause = 200;
    s->gc_stepmul = 200;
    if (s->mem_cap) {
        /* start a cycle at 1.5x the live heap, not 2x, and work faster, so
         * garbage is found before it reaches the cap */
        s->gc_pause = 150;
        s->gc_stepmul = 400;
    }
    lua_gc(s->L, LUA_GCSETPAUSE, s->gc_pause);
    lua_gc(s->L, LUA_GCSETSTEPMUL, s->gc_stepmul);
    if (lua_cpcall(s->L, setup, s) != 0) {
        snprintf(err, errlen, "cannot start the Lua runtime: %s", lua_tostring(s->L, -1));
        lj_free(s);
        return NULL;
    }
    if (cfg->script && call_checked(s, s->ref_load, cfg->script, err, errlen) != 0) {
        lj_free(s);
        return NULL;
    }
    return s;
oom:
    snprintf(err, errlen, "out of memory creating a Lua state");
    lj_free(s);
    return NULL;
}

void lj_free(lj *s)
{
    if (!s)
        return;
    if (s->L)
        lua_close(s->L);
    pool_free(s->pool); /* after lua_close: it frees into the pool */
    for (int i = 0; s->slots && i < s->nslots; i++)
        free(s->slots[i].error);
    free(s->slots);
    free(s);
}

int lj_check(lj *s, char *err, size_t errlen)
{
    return call_checked(s, s->ref_check, NULL, err, errlen);
}

void lj_options(lj *s, void (*fn)(const char *name, double value, const char *text, void *arg),
                void *arg)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_options);
    if (lua_pcall(L, 0, LUA_MULTRET, 0) == 0) {
        for (int i = top + 1; i + 1 <= lua_gettop(L); i += 2) {
            int num = lua_type(L, i + 1) == LUA_TNUMBER;
            fn(lua_tostring(L, i), num ? lua_tonumber(L, i + 1) : 0,
               num ? NULL : lua_tostring(L, i + 1), arg);
        }
    }
    lua_settop(L, top);
}

int lj_init(lj *s, char *err, size_t errlen)
{
    return call_checked(s, s->ref_initializer, NULL, err, errlen);
}

int lj_reload(lj *s, const char *path, char *err, size_t errlen)
{
    if (call_checked(s, s->ref_load, path, err, errlen) != 0)
        return -1;
    return call_checked(s, s->ref_check, NULL, err, errlen);
}

static void drop_coroutine(lj *s, int slot)
{
    struct lj_slot *sl = &s->slots[slot];
    if (!sl->co)
        return;
    luaL_unref(s->L, LUA_REGISTRYINDEX, sl->ref);
    s->coroutines--;
    sl->co = NULL;
    sl->ref = LUA_NOREF;
}

/* Gives slot a fresh coroutine whose body is the registry function ref. */
static lua_State *new_coroutine(lj *s, int slot, int ref)
{
    struct lj_slot *sl = &s->slots[slot];
    drop_coroutine(s, slot);
    lua_State *co = lua_newthread(s->L);
    sl->ref = luaL_ref(s->L, LUA_REGISTRYINDEX);
    sl->co = co;
    s->coroutines++;
    lua_rawgeti(co, LUA_REGISTRYINDEX, ref);
    return co;
}

/* Resumes slot's coroutine with nargs values already on its stack, and reads
 * what came back: I/O pending, or the (mark, ok, err) of a finished run. */
static int resume(lj *s, int slot, int nargs)
{
    struct lj_slot *sl = &s->slots[slot];
    lua_State *co = sl->co;
    lj *prev = enter(s);
    s->cur_slot = slot;
    sl->final = 0;
    sl->io = 0;
    int rc = lua_resume(co, nargs);
    s->cur_slot = -1;
    leave(s, prev);

    if (rc == LUA_YIELD || rc == 0) {
        if (lua_gettop(co) >= 1 && lua_touserdata(co, 1) == &lj_done_mark) {
            int ok = lua_toboolean(co, 2);
            s->slots[slot].final = lua_toboolean(co, 4);
            if (!ok)
                set_error(s, slot, lua_tostring(co, 3));
            lua_settop(co, 0);
            if (rc == 0)
                drop_coroutine(s, slot);
            return ok ? LJ_OK : LJ_FAIL;
        }
        if (rc == LUA_YIELD && sl->io)
            return LJ_WAIT;
        set_error(s, slot, rc == 0 ? "the job's coroutine ended without a result"
                                   : "the job yielded on its own (coroutine.yield inside "
                                     "handle()? use shoal.sleep or shoal.http instead)");
        drop_coroutine(s, slot);
        return LJ_FAIL;
    }
    /* An error escaped the runtime's xpcall: out of memory, or the watchdog
     * hook firing outside it. The coroutine is dead. */
    set_error(s, slot, lua_tostring(co, -1));
    drop_coroutine(s, slot);
    return LJ_FAIL;
}

int lj_job_start(lj *s, int slot, const char *data, size_t len, uint64_t id, int attempt)
{
    struct lj_slot *sl = &s->slots[slot];
    lua_State *co = sl->co;
    if (!co || lua_status(co) != LUA_YIELD)
        co = new_coroutine(s, slot, s->ref_job_loop);
    (void)id;
    (void)attempt; /* shoal.job asks the host for them */
    lua_pushlstring(co, data, len);
    return resume(s, slot, 1);
}

int lj_produce_start(lj *s, int slot)
{
    new_coroutine(s, slot, s->ref_producer);
    return resume(s, slot, 0);
}

int lj_done_start(lj *s, int slot, const char *stats_json)
{
    lua_State *co = new_coroutine(s, slot, s->ref_finisher);
    lua_pushstring(co, stats_json ? stats_json : "{}");
    return resume(s, slot, 1);
}

int lj_resume_http(lj *s, int slot, const struct lj_http_result *res)
{
    lua_State *co = s->slots[slot].co;
    lua_settop(co, 0);
    if (res->error) {
        lua_pushnil(co);
        lua_pushstring(co, res->error);
        return resume(s, slot, 2);
    }
    lua_pushinteger(co, (lua_Integer)res->status);
    lua_pushlstring(co, res->body, res->body_len);
    lua_pushstring(co, res->url);
    lua_pushnumber(co, res->elapsed);
    lua_pushlstring(co, res->headers, res->headers_len);
    return resume(s, slot, 5);
}

int lj_resume(lj *s, int slot)
{
    lua_settop(s->slots[slot].co, 0);
    return resume(s, slot, 0);
}

int lj_resume_push_retry(lj *s, int slot)
{
    lua_State *co = s->slots[slot].co;
    lua_settop(co, 0);
    lua_pushnil(co);
    lua_pushliteral(co, "full");
    return resume(s, slot, 2);
}

int lj_resume_http_again(lj *s, int slot)
{
    lua_State *co = s->slots[slot].co;
    lua_settop(co, 0);
    lua_pushnil(co);
    lua_pushliteral(co, "again");
    return resume(s, slot, 2);
}

void lj_abandon(lj *s, int slot)
{
    drop_coroutine(s, slot);
}

int lj_usage_error(lua_State *L, const char *fmt, ...)
{
    lj *s = tl_state;
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    if (!s || s->ref_usage == 0)
        return lua_error(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_usage);
    lua_insert(L, -2);
    lua_call(L, 1, 0); /* raises */
    return 0;
}

int lj_final(const lj *s, int slot)
{
    return s->slots[slot].final;
}

const char *lj_error(lj *s, int slot)
{
    const char *e = s->slots[slot].error;
    return e ? e : "unknown error";
}

size_t lj_mem_used(const lj *s)
{
    return s->mem_used;
}

unsigned lj_cap_hits(const lj *s)
{
    return s->cap_hits;
}

void lj_collect(lj *s)
{
    lua_gc(s->L, LUA_GCCOLLECT, 0);
}

char *lj_dashboard(lj *s, const char *title, char *err, size_t errlen)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_dashboard);
    lua_pushstring(L, title);
    char *out = NULL;
    if (lua_pcall(L, 1, 1, 0) != 0)
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    else if (!(out = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "")))
        snprintf(err, errlen, "out of memory");
    lua_settop(L, top);
    return out;
}

int lj_job_labels(lj *s, const char *data, size_t len, int ok, const char *const **vals,
                  const size_t **lens)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    s->nlabel_vals = 0;
    *vals = s->label_vals;
    *lens = s->label_lens;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_job_labels);
    lua_pushlstring(L, data, len);
    lua_pushstring(L, ok ? "success" : "failed");
    lj *prev = enter(s); /* the watchdog's hook finds the state here */
    int rc = lua_pcall(L, 2, LUA_MULTRET, 0);
    leave(s, prev);
    if (rc != 0) {
        lua_settop(L, top);
        return 0; /* the runtime catches the script's errors; this is out of memory */
    }
    size_t used = 0;
    for (int i = top + 1; i <= lua_gettop(L) && s->nlabel_vals < 8; i++) {
        size_t n = 0;
        const char *v = lua_tolstring(L, i, &n);
        if (!v)
            v = "";
        if (n > sizeof s->label_buf - used)
            n = sizeof s->label_buf - used;
        memcpy(s->label_buf + used, v, n);
        s->label_vals[s->nlabel_vals] = s->label_buf + used;
        s->label_lens[s->nlabel_vals++] = n;
        used += n;
    }
    lua_settop(L, top);
    return s->nlabel_vals;
}

int lj_coroutines(const lj *s)
{
    return s->coroutines;
}

void lj_gc_manual(lj *s, size_t assist_at)
{
    lua_gc(s->L, LUA_GCSTOP, 0);
    s->gc_manual = 1;
    s->gc_assist_at = assist_at;
}

int lj_gc_step(lj *s, int kb)
{
    int done = lua_gc(s->L, LUA_GCSTEP, kb);
    if (s->gc_manual)
        lua_gc(s->L, LUA_GCSTOP, 0);
    return done;
}

int lj_gc_take_assist(lj *s)
{
    int a = s->gc_assisted;
    s->gc_assisted = 0;
    return a;
}

int lj_take_stopped(lj *s)
{
    int stopped = s->stopped;
    s->stopped = 0;
    return stopped;
}

/* Names the innermost line of the script's own code ("file:line: "), or
 * returns 0 when the runtime's frames are innermost: those must finish, so
 * the error already caught and its traceback get out. */
static int script_position(lua_State *L, char *pos, size_t cap)
{
    lua_Debug where;
    pos[0] = 0;
    /* level 0 may be a C function (tostring) */
    for (int level = 0; level < 8 && lua_getstack(L, level, &where); level++) {
        if (!lua_getinfo(L, "Sl", &where) || where.currentline <= 0)
            continue;
        if (strcmp(where.source, "@lua/shoal/runtime.lua") == 0)
            return 0;
        snprintf(pos, cap, "%s:%d: ", where.short_src, where.currentline);
        break;
    }
    return 1;
}

/* The one hook: armed by the watchdog's signal (a budget ran out, or the
 * run is stopping a producer) or by the allocator (the state went over its
 * memory cap). */
static void lj_hook(lua_State *L, lua_Debug *ar)
{
    lj *s = tl_state;
    (void)ar;
    if (!s)
        return;
    char pos[300], msg[512];
    if (s->mem_over) {
        if (!script_position(L, pos, sizeof pos))
            return;
        snprintf(msg, sizeof msg,
                 "%sexceeded the Lua memory cap of %zu MiB per worker state "
                 "(--memory raises it)",
                 pos, s->mem_cap >> 20);
        lua_pushstring(L, msg);
        lua_error(L);
    }
    struct lj_watch w = {0};
    if (!s->cfg.host_ops || !s->cfg.host_ops->watch || s->cfg.host_ops->watch(&w) != 0)
        w.deadline_ns = 0;
    int stop = w.deadline_ns == INT64_MAX && w.stop;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (w.deadline_ns == 0 || (!stop && now < w.deadline_ns)) {
        /* armed for code that has since returned: this one is in time */
        lua_sethook(L, NULL, 0, 0);
        s->hook_armed = 0;
        return;
    }
    if (!script_position(L, pos, sizeof pos))
        return;
    if (stop) {
        s->stopped = 1;
        snprintf(msg, sizeof msg,
                 "%s%s stopped here: the run is ending (--duration, --max-jobs or Ctrl-C)", pos,
                 w.entry);
    } else if (w.handle) {
        snprintf(msg, sizeof msg,
                 "%sjob ran past its %gs time budget (--timeout) while running Lua code "
                 "(a runaway loop?); stopped here",
                 pos, s->cfg.timeout);
    } else {
        snprintf(msg, sizeof msg,
                 "%s%s ran past its %gs time budget (%s) while running Lua code "
                 "(a runaway loop?); stopped here",
                 pos, w.entry, w.budget, w.flag);
    }
    lua_pushstring(L, msg);
    lua_error(L);
}

void lj_watchdog_signal(lj *s)
{
    s->hook_armed = 1;
    lua_sethook(s->L, lj_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

void lj_watchdog_on_signal(void)
{
    lj *s = tl_state;
    struct lj_watch w;
    if (s && s->cfg.host_ops && s->cfg.host_ops->watch && s->cfg.host_ops->watch(&w) == 0 &&
        w.deadline_ns != 0)
        lj_watchdog_signal(s);
}

void lj_watchdog_clear(lj *s)
{
    if (s->hook_armed) {
        s->hook_armed = 0;
        lua_sethook(s->L, NULL, 0, 0);
    }
}
