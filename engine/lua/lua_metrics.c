/* lua_metrics.c - shoal.metrics: script-defined metrics in the engine's
 * registry.
 *
 * core.metric_declare(kind, name, help, label_names, buckets) returns a
 * handle (full userdata holding the family) or nil, message; shoal.runtime
 * turns the message into an error at the script's line. The handle's
 * methods (inc, dec, set, observe) take an optional labels table, by name
 * ({site = "a"}) or by position ({"a"}); a label left out is "". Every
 * state declaring the same name gets the same family, so the workers'
 * updates add up. Runs on the state's thread; the registry is shared. */
#include "lua/lua_internal.h"
#include "base/hash.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "telemetry/metrics/metrics.h"

#define HANDLE_MT "shoal.metric"

struct handle {
    struct metric_family *f;
};

static const char *kind_names[] = {"counter", "gauge", "histogram"};

/* Reads the list at idx: strings into strs or numbers into nums (the other
 * NULL), at most max. Returns how many, or -1 with a message pushed. */
static int read_list(lua_State *L, int idx, const char *what, const char *example, int max,
                     const char **strs, double *nums)
{
    if (!lua_istable(L, idx)) {
        lua_pushfstring(L, "%s must be a table, e.g. %s", what, example);
        return -1;
    }
    int n = (int)lua_objlen(L, idx);
    if (n > max) {
        lua_pushfstring(L, "at most %d %s", max, what);
        return -1;
    }
    int want = strs ? LUA_TSTRING : LUA_TNUMBER;
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        if (lua_type(L, -1) != want) {
            lua_pushfstring(L, "%s: item %d is a %s, not a %s", what, i + 1,
                            luaL_typename(L, -1), lua_typename(L, want));
            return -1;
        }
        if (strs)
            strs[i] = lua_tostring(L, -1); /* the table keeps the string alive */
        else
            nums[i] = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    return n;
}

/* metric_declare(kind, name, help, label_names, buckets) */
static int l_declare(lua_State *L)
{
    lj *s = state_of(L);
    int kind = (int)luaL_checkinteger(L, 1);
    const char *name = luaL_checkstring(L, 2);
    const char *help = luaL_optstring(L, 3, "");
    const char *labels[METRIC_MAX_LABELS];
    double buckets[METRIC_MAX_BUCKETS];
    int nlabels = 0, nbuckets = 0;
    if (!s->cfg.registry)
        return luaL_error(L, "metrics are not available in this state");
    if (!lua_isnoneornil(L, 4) &&
        (nlabels = read_list(L, 4, "label names", "{\"site\"}", METRIC_MAX_LABELS, labels,
                             NULL)) < 0)
        goto fail;
    if (kind == METRIC_HISTOGRAM && !lua_isnoneornil(L, 5)) {
        nbuckets = read_list(L, 5, "buckets", "{0.1, 1, 10}", METRIC_MAX_BUCKETS, NULL, buckets);
        if (nbuckets < 0)
            goto fail;
        if (nbuckets == 0) {
            lua_pushstring(L, "buckets is empty: leave it out for the defaults");
            goto fail;
        }
    }
    char err[512];
    struct metric_family *f =
        metrics_declare(s->cfg.registry, METRIC_SCRIPT, (enum metric_type)kind, name, help,
                        labels, nlabels, nbuckets ? buckets : NULL, nbuckets, err, sizeof err);
    if (!f) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    struct handle *h = lua_newuserdata(L, sizeof *h);
    h->f = f;
    luaL_getmetatable(L, HANDLE_MT);
    lua_setmetatable(L, -2);
    return 1;
fail: /* the message is on top */
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

/* The handle a method was called on: h:inc(...) passes it first; h.inc(...)
 * is the usual slip. */
static struct metric_family *check_handle(lua_State *L, const char *method)
{
    struct handle *h = luaL_testudata(L, 1, HANDLE_MT);
    if (!h)
        lj_usage_error(L, "metric:%s: call it with a colon, e.g. pages:%s(...)", method, method);
    return h->f;
}

/* The series named by the labels table at idx (absent, nil or a table). */
static struct metric_series *series_at(lua_State *L, struct metric_family *f, int idx,
                                       const char *method)
{
    int n = metrics_family_nlabels(f);
    const char *vals[METRIC_MAX_LABELS];
    size_t lens[METRIC_MAX_LABELS];
    if (lua_isnoneornil(L, idx)) {
        return metrics_series(f, NULL, NULL, 0);
    }
    if (!lua_istable(L, idx))
        lj_usage_error(L, "%s:%s: labels must be a table, e.g. {site = \"example.org\"}, got %s",
                       kind_names[metrics_family_type(f)], method, luaL_typename(L, idx));
    int top = lua_gettop(L);
    for (int i = 0; i < n; i++) {
        lua_getfield(L, idx, metrics_family_label(f, i));
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_rawgeti(L, idx, i + 1);
        }
        int t = lua_type(L, -1);
        if (t == LUA_TNIL) {
            vals[i] = "";
            lens[i] = 0;
        } else if (t == LUA_TSTRING || t == LUA_TNUMBER) {
            vals[i] = lua_tolstring(L, -1, &lens[i]);
        } else if (t == LUA_TBOOLEAN) {
            vals[i] = lua_toboolean(L, -1) ? "true" : "false";
            lens[i] = strlen(vals[i]);
        } else {
            lj_usage_error(L, "%s:%s: label '%s' is a %s: use a string or a number",
                           kind_names[metrics_family_type(f)], method, metrics_family_label(f, i),
                           lua_typename(L, t));
        }
        /* the string stays on the stack until the lookup is done */
    }
    /* a key that names no label is a typo worth raising */
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            int known = 0;
            for (int i = 0; i < n && !known; i++)
                known = strcmp(k, metrics_family_label(f, i)) == 0;
            if (!known)
                lj_usage_error(L,
                               "%s:%s: '%s' is not a label of this metric (its labels: %s%s%s...)",
                               kind_names[metrics_family_type(f)], method, k,
                               n ? metrics_family_label(f, 0) : "none", n > 1 ? ", " : "",
                               n > 1 ? metrics_family_label(f, 1) : "");
        }
    }
    struct metric_series *sr = metrics_series(f, vals, lens, n);
    lua_settop(L, top);
    return sr;
}

static const char *type_of(struct metric_family *f)
{
    return kind_names[metrics_family_type(f)];
}

/* Every method takes (value, labels): the value first, both optional for
 * inc and dec, so inc(), inc(5), inc({code = 200}) and inc(5, {code = 200})
 * read as meant. Labels first and a value after them, a value that is not
 * a number, or a third argument are mistakes, raised at the script's line
 * rather than counted as 1. Returns the stack index of the labels. */
static int value_and_labels(lua_State *L, struct metric_family *f, const char *method,
                            int optional, double *v)
{
    const char *kind = type_of(f);
    const char *sig = optional ? "([n] [, labels])" : "(value [, labels])";
    int top = lua_gettop(L);
    if (top > 3)
        lj_usage_error(L, "%s:%s takes %s, got %d arguments", kind, method, sig, top - 1);
    if (optional && (top < 2 || lua_istable(L, 2))) {
        if (top == 3 && !lua_isnil(L, 3))
            lj_usage_error(L, "%s:%s takes %s: the amount comes first, e.g. %s(5, {code = 200})",
                           kind, method, sig, method);
        *v = 1;
        return 2;
    }
    if (lua_type(L, 2) != LUA_TNUMBER) {
        if (lua_istable(L, 2))
            lj_usage_error(L, "%s:%s takes %s: the value comes first, e.g. %s(12.5, {code = 200})",
                           kind, method, sig, method);
        lj_usage_error(L, "%s:%s takes %s: the %s must be a number, got %s", kind, method, sig,
                       optional ? "amount" : "value", luaL_typename(L, 2));
    }
    *v = lua_tonumber(L, 2);
    if (*v != *v)
        lj_usage_error(L, "%s:%s: the %s is NaN", kind, method, optional ? "amount" : "value");
    return 3;
}

/* h:inc([n] [, labels]) */
static int l_inc(lua_State *L)
{
    struct metric_family *f = check_handle(L, "inc");
    enum metric_type t = metrics_family_type(f);
    if (t == METRIC_HISTOGRAM)
        return lj_usage_error(L, "histogram:inc: inc is for counters and gauges; this metric "
                                 "is a histogram: use :observe(value [, labels])");
    double n;
    int li = value_and_labels(L, f, "inc", 1, &n);
    if (t == METRIC_COUNTER && !(n >= 0))
        return lj_usage_error(L, "counter:inc(%f): a counter only goes up (use a gauge for "
                                 "values that go down)",
                              n);
    metric_add(series_at(L, f, li, "inc"), n);
    return 0;
}

/* h:dec([n] [, labels]) */
static int l_dec(lua_State *L)
{
    struct metric_family *f = check_handle(L, "dec");
    if (metrics_family_type(f) != METRIC_GAUGE)
        return lj_usage_error(L, "%s:dec: dec is for gauges; this metric is a %s", type_of(f),
                              type_of(f));
    double n;
    int li = value_and_labels(L, f, "dec", 1, &n);
    metric_add(series_at(L, f, li, "dec"), -n);
    return 0;
}

/* h:set(value [, labels]) */
static int l_set(lua_State *L)
{
    struct metric_family *f = check_handle(L, "set");
    if (metrics_family_type(f) != METRIC_GAUGE)
        return lj_usage_error(L, "%s:set: set is for gauges; this metric is a %s", type_of(f),
                              type_of(f));
    double v;
    int li = value_and_labels(L, f, "set", 0, &v);
    metric_set(series_at(L, f, li, "set"), v);
    return 0;
}

/* h:observe(value [, labels]) */
static int l_observe(lua_State *L)
{
    struct metric_family *f = check_handle(L, "observe");
    if (metrics_family_type(f) != METRIC_HISTOGRAM)
        return lj_usage_error(L, "%s:observe: observe is for histograms; this metric is a %s",
                              type_of(f), type_of(f));
    double v;
    int li = value_and_labels(L, f, "observe", 0, &v);
    metric_observe(series_at(L, f, li, "observe"), v);
    return 0;
}

static int l_tostring(lua_State *L)
{
    struct handle *h = luaL_checkudata(L, 1, HANDLE_MT);
    lua_pushfstring(L, "shoal.metrics %s", type_of(h->f));
    return 1;
}

/* first_time(message) -> true the first time any state asks about it (up
 * to 256 distinct messages), for warnings said once per run. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t seen[256];
static int nseen;

static int l_first_time(lua_State *L)
{
    size_t len;
    const char *msg = luaL_checklstring(L, 1, &len);
    uint64_t h = fnv1a(msg, len);
    int fresh = 1;
    pthread_mutex_lock(&seen_lock);
    for (int i = 0; i < nseen && fresh; i++)
        fresh = seen[i] != h;
    if (fresh && nseen < 256)
        seen[nseen++] = h;
    else if (fresh)
        fresh = 0; /* 256 distinct messages already: enough said */
    pthread_mutex_unlock(&seen_lock);
    lua_pushboolean(L, fresh);
    return 1;
}

static void push_family(const struct metric_family *f, void *arg)
{
    lua_State *L = arg;
    if (metrics_family_owner(f) != METRIC_SCRIPT)
        return;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, metrics_family_name(f));
    lua_setfield(L, -2, "name");
    lua_pushstring(L, metrics_family_help(f));
    lua_setfield(L, -2, "help");
    lua_pushstring(L, kind_names[metrics_family_type(f)]);
    lua_setfield(L, -2, "type");
    int n = metrics_family_nlabels(f);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, metrics_family_label(f, i));
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "labels");
    lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
}

/* metric_families() -> the script's families, in declaration order:
 * { {name=, help=, type=, labels={...}}, ... } */
static int l_families(lua_State *L)
{
    lj *s = state_of(L);
    lua_newtable(L);
    if (s->cfg.registry)
        metrics_each(s->cfg.registry, push_family, L);
    return 1;
}

void lj_api_push_metrics(lj *s, lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"inc", l_inc}, {"dec", l_dec}, {"set", l_set}, {"observe", l_observe}, {NULL, NULL},
    };
    luaL_newmetatable(L, HANDLE_MT);
    lua_newtable(L);
    for (const luaL_Reg *m = methods; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    /* the core table is on top */
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, l_declare, 1);
    lua_setfield(L, -2, "metric_declare");
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, l_families, 1);
    lua_setfield(L, -2, "metric_families");
    lua_pushcfunction(L, l_first_time);
    lua_setfield(L, -2, "first_time");
    lua_createtable(L, s->cfg.nmetric_labels, 0);
    for (int i = 0; i < s->cfg.nmetric_labels; i++) {
        lua_pushstring(L, s->cfg.metric_labels[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "metric_labels");
}
