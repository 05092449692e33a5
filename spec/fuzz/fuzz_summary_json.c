/* fuzz_summary_json.c - fuzz target for the JSON summary (summary_json).
 *
 * The input is split on 0xff bytes (which never occur in UTF-8): the first
 * piece is the script name, the second the stop reason, every further one an
 * error message counted through stats_error() (with itself as the job's
 * url, so the redaction and the url field run too), so the grouping by the
 * pattern of the first line, the cut at STATS_ERROR_LEN and the overflow
 * into errors_other all run. Counters, latencies and status codes are derived from the pieces so
 * the numeric parts of the document vary too.
 *
 * The JSON must be valid whatever the strings hold: it must be UTF-8
 * (RFC 8259 section 8.1; --summary-json files are read by jq, Python and the
 * like, which reject anything else) and lua-cjson, with its non-standard
 * number forms turned off, must decode it. Each decoded string must be what
 * was given (up to its first NUL, all a C string carries) with every byte
 * that is not part of valid UTF-8 replaced by U+FFFD, so a valid UTF-8 name
 * comes back unchanged: the script name and stop reason exactly, each error
 * message as the first line of what was counted, or, when that line is
 * longer than the table keeps, a prefix of it that does not split a
 * character. Any breach aborts, which libFuzzer and the CTest replay both
 * report. */
#include "core/summary.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <lua-cjson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

#define SEP 0xff
#define MAX_PIECES 48 /* more than STATS_ERRORS distinct messages */

/* Writes s (n bytes) to out with each byte that does not start a valid
 * UTF-8 sequence replaced by U+FFFD, as summary_json promises. out has room
 * for 3n bytes. Returns the length written. */
static size_t repaired(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    return o;
}

/* Leaves cjson.decode in the registry; runs protected. */
static int open_decoder(lua_State *L)
{
    luaL_openlibs(L);
    lua_pushcfunction(L, luaopen_cjson);
    lua_call(L, 0, 1);
    /* "nan", "inf" and hex numbers are not JSON */
    lua_getfield(L, -1, "decode_invalid_numbers");
    lua_pushboolean(L, 0);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "decode");
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.decode");
    return 0;
}

static lua_State *decoder_state;

/* lua-cjson keeps a malloc'd buffer that only lua_close frees; without this
 * LeakSanitizer reports it at exit. */
static void close_decoder(void)
{
    lua_close(decoder_state);
}

static lua_State *decoder(void)
{
    if (!decoder_state) {
        decoder_state = luaL_newstate();
        must(decoder_state != NULL);
        must(lua_cpcall(decoder_state, open_decoder, NULL) == 0);
        atexit(close_decoder);
    }
    return decoder_state;
}

struct piece {
    const char *s; /* NUL-terminated copy */
    size_t len;    /* up to the first NUL: what a C string carries */
};

/* The string at t[key] must be want, repaired. */
static void check_field(lua_State *L, int t, const char *key, const struct piece *want)
{
    char *fixed = malloc(want->len * 3 + 1);
    must(fixed != NULL);
    size_t flen = repaired(want->s, want->len, fixed);
    lua_getfield(L, t, key);
    must(lua_type(L, -1) == LUA_TSTRING);
    size_t n;
    const char *got = lua_tolstring(L, -1, &n);
    must(n == flen && memcmp(got, fixed, n) == 0);
    if (is_utf8(want->s, want->len))
        must(n == want->len && memcmp(got, want->s, n) == 0);
    lua_pop(L, 1);
    free(fixed);
}

static void check_number(lua_State *L, int t, const char *key, double want)
{
    lua_getfield(L, t, key);
    must(lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) == want);
    lua_pop(L, 1);
}

/* The length of p's first line: what stats_error groups on. */
static size_t first_line(const struct piece *p)
{
    const char *nl = memchr(p->s, '\n', p->len);
    return nl ? (size_t)(nl - p->s) : p->len;
}

/* Whether got (n bytes, from errors[].message) shows message m: its first
 * line repaired, whole when it fits the table, else a prefix of it at most
 * one character (4 bytes) shorter than STATS_ERROR_LEN - 1 bytes when the
 * line is valid UTF-8 (the cut may drop a whole character that would have
 * fit; bytes that are not UTF-8 can be cut anywhere). */
static int shows(const char *got, size_t n, const struct piece *m)
{
    size_t line = first_line(m);
    char *fixed = malloc(line * 3 + 1);
    must(fixed != NULL);
    size_t flen = repaired(m->s, line, fixed);
    int ok = n <= flen && memcmp(got, fixed, n) == 0;
    if (line < STATS_ERROR_LEN)
        ok = ok && n == flen;
    else if (is_utf8(m->s, line))
        ok = ok && n + 4 >= STATS_ERROR_LEN - 1 && n < STATS_ERROR_LEN;
    free(fixed);
    return ok;
}

/* errors[] holds the messages counted, grouped, in order of first sight:
 * each entry shows one of them, the first shows the first, and the counts
 * add up to the number counted while the table has room for them all. */
static void check_errors(lua_State *L, int t, const struct piece *msgs, int nmsgs)
{
    lua_getfield(L, t, "errors");
    must(lua_type(L, -1) == LUA_TTABLE);
    int arr = lua_gettop(L);
    size_t entries = lua_objlen(L, arr);
    must(entries <= STATS_ERRORS && (entries > 0) == (nmsgs > 0));
    double total = 0;
    for (size_t i = 1; i <= entries; i++) {
        lua_rawgeti(L, arr, (int)i);
        must(lua_type(L, -1) == LUA_TTABLE);
        lua_getfield(L, -1, "message");
        lua_getfield(L, -2, "count");
        must(lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER);
        size_t n;
        const char *got = lua_tolstring(L, -2, &n);
        double count = lua_tonumber(L, -1);
        must(count >= 1);
        total += count;
        int found = 0;
        for (int m = 0; m < (i == 1 ? 1 : nmsgs) && !found; m++)
            found = shows(got, n, &msgs[m]);
        must(found);
        lua_pop(L, 3);
    }
    must(total <= nmsgs);
    if (nmsgs <= STATS_ERRORS)
        must(total == nmsgs);
    lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    struct piece p[MAX_PIECES];
    int np = 0;
    char *copy = malloc(size + 1);
    struct stats *st = calloc(1, sizeof *st);
    char *json = NULL;
    if (!copy || !st)
        goto done;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (size_t i = 0, start = 0; i <= size && np < MAX_PIECES; i++) {
        if (i == size || (uint8_t)copy[i] == SEP) {
            copy[i] = '\0';
            p[np].s = copy + start;
            p[np].len = strlen(copy + start);
            np++;
            start = i + 1;
        }
    }

    for (int i = 2; i < np; i++) {
        stats_error(st, p[i].s, p[i].s, p[i].len);
        counter_add(&st->jobs_failed, 1);
        counter_add(&st->status_code[(100 + p[i].len * 7) % 600], 1);
        hist_record(&st->latency, (uint64_t)p[i].len * 997);
    }
    counter_add(&st->jobs_ok, size);
    counter_add(&st->http_requests, (uint64_t)np);
    counter_add(&st->bytes_in, (uint64_t)size * 1000);

    struct summary s = {
        .script = p[0].s,
        .workers = 1 + np % 8,
        .concurrency = 1 + (int)(size % 1000),
        .elapsed = np * 0.25,
        .totals = st,
        .queued_left = size / 3,
        .dup_dropped = size / 5,
        .pushed = size,
        .interrupted = np & 1,
        .stop_reason = np > 1 ? p[1].s : NULL,
    };
    json = summary_json(&s);
    must(json != NULL);
    size_t jlen = strlen(json);
    must(is_utf8(json, jlen));

    lua_State *L = decoder();
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.decode");
    lua_pushlstring(L, json, jlen);
    must(lua_pcall(L, 1, 1, 0) == 0);
    must(lua_type(L, -1) == LUA_TTABLE);
    int t = lua_gettop(L);
    check_field(L, t, "script", &p[0]);
    if (np > 1)
        check_field(L, t, "stop_reason", &p[1]);
    check_number(L, t, "workers", s.workers);
    check_number(L, t, "concurrency", s.concurrency);
    check_number(L, t, "failed", np > 2 ? np - 2 : 0);
    check_errors(L, t, p + 2, np > 2 ? np - 2 : 0);
    lua_settop(L, 0);
    if (++runs % 256 == 0)
        lua_gc(L, LUA_GCCOLLECT, 0);
done:
    free(json);
    free(st);
    free(copy);
    return 0;
}
