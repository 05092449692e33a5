/* lua_log.c - shoal.log's primitive: a record with the script's
 * fields, to the host's logger (the global one outside a run). */
#include "lua/lua_internal.h"

#include <stdint.h>
#include <string.h>

#include "telemetry/logs/logger.h"

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

const luaL_Reg lj_api_log[] = {
    {"log", l_log},
    {NULL, NULL},
};
