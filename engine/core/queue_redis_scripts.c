/* queue_redis_scripts.c - the Lua that Redis runs for the shared queue
 * (see queue_redis_scripts.h; the design is in docs/ARCHITECTURE.md).
 *
 * Keys, all under the prefix P (default "shoal"):
 *   P:n          hash of counters: job, seq, lease (id sources); ready,
 *                delayed, leased (where the jobs are); pushed, dup,
 *                retried, acked (stats); pdone (the producer returned); pp
 *                (the producer's position); ver (a change other processes
 *                must hear of); seed (the dedup hash's seed)
 *   P:mine       hash instance -> its own share of ver
 *   P:j:ID       hash of one job: d data, c context, g group, a attempt,
 *                p priority, s sequence, h depth
 *   P:r:GROUP    zset of the group's ready jobs: score -priority, member
 *                the sequence in 16 hex digits and the id (one score sorts
 *                by member: FIFO within a priority)
 *   P:g:GROUP    hash of the group: f in flight, l limit, d delay, t next
 *                start, st started, nd delayed jobs, w where it is (o open,
 *                t timed), om its member in P:open
 *   P:groups     set of the named groups
 *   P:open       zset of groups with a ready job, room and their start
 *                come, by their best job (score and member as in P:r)
 *   P:timed      zset of groups with a ready job and room, by next start
 *   P:delayed    zset of job ids by due time
 *   P:l          hash lease -> "ID INSTANCE"
 *   P:il:INST    set of the instance's leases
 *   P:inst       zset instance -> heartbeat expiry (Redis's clock)
 *   P:k          set of dedup key hashes (8 bytes each)
 *   P:role:NAME  string: the holder of a role, with a TTL while it lives
 *   P:items      stream of items kept with their job's ack
 *
 * settle() is queue_mem.c's group_settle: after any change to a group it
 * puts the group in P:open, P:timed or neither, so take reads the best
 * open job with one ZRANGE and a slow or full group costs nothing.
 *
 * Numbers that are times go back as "%.17g" strings: Redis would cut a
 * Lua number to an integer. */
#include "core/queue_redis_scripts.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char prelude[] =
    "local P, INST = ARGV[1], ARGV[2]\n"
    "local N = P .. ':n'\n"
    "local function num(x) return tonumber(x) or 0 end\n"
    "local function fmt(x) return string.format('%.17g', x) end\n"
    "local function gk(g) return P .. ':g:' .. g end\n"
    "local function rk(g) return P .. ':r:' .. g end\n"
    "local function jk(id) return P .. ':j:' .. id end\n"
    "local function member(seq, id) return string.format('%016x', tonumber(seq)) .. id end\n"
    "local function bump()\n"
    "  redis.call('HINCRBY', N, 'ver', 1)\n"
    "  redis.call('HINCRBY', P .. ':mine', INST, 1)\n"
    "end\n"
    "local function room(g)\n"
    "  local h = redis.call('HMGET', gk(g), 'f', 'l')\n"
    "  local l = num(h[2])\n"
    "  return l == 0 or num(h[1]) < l\n"
    "end\n"
    "local function waiting()\n"
    "  local c = redis.call('HMGET', N, 'ready', 'delayed')\n"
    "  return num(c[1]) + num(c[2])\n"
    "end\n"
    "local function drained()\n"
    "  local c = redis.call('HMGET', N, 'pdone', 'ready', 'delayed', 'leased')\n"
    "  if c[1] == '1' and num(c[2]) == 0 and num(c[3]) == 0 and num(c[4]) == 0 then\n"
    "    return 1 end\n"
    "  return 0\n"
    "end\n"
    "local function settle(g, now)\n"
    "  local k = gk(g)\n"
    "  local h = redis.call('HMGET', k, 'f', 'l', 't', 'w', 'om')\n"
    "  local f, l, t = num(h[1]), num(h[2]), num(h[3])\n"
    "  if h[4] == 'o' then redis.call('ZREM', P .. ':open', h[5])\n"
    "  elseif h[4] == 't' then redis.call('ZREM', P .. ':timed', g) end\n"
    "  local best = redis.call('ZRANGE', rk(g), 0, 0, 'WITHSCORES')\n"
    "  if best[1] and (l == 0 or f < l) then\n"
    "    if t <= now then\n"
    "      local m = string.sub(best[1], 1, 16) .. g\n"
    "      redis.call('ZADD', P .. ':open', best[2], m)\n"
    "      redis.call('HSET', k, 'w', 'o', 'om', m)\n"
    "    else\n"
    "      redis.call('ZADD', P .. ':timed', fmt(t), g)\n"
    "      redis.call('HSET', k, 'w', 't')\n"
    "    end\n"
    "  elseif h[4] then\n"
    "    redis.call('HDEL', k, 'w', 'om')\n"
    "  end\n"
    "end\n"
    "local function group_new(g, limit, delay)\n"
    "  if g ~= '' and redis.call('HSETNX', gk(g), 'l', limit) == 1 then\n"
    "    redis.call('HSET', gk(g), 'd', delay)\n"
    "    redis.call('SADD', P .. ':groups', g)\n"
    "  end\n"
    "end\n"
    /* one fewer in flight; 1 if that gave room to a full group with ready
     * jobs (a hungry worker must hear of it) */
    "local function group_done(g, now)\n"
    "  local k = gk(g)\n"
    "  local h = redis.call('HMGET', k, 'f', 'l')\n"
    "  local f, l = num(h[1]), num(h[2])\n"
    "  redis.call('HINCRBY', k, 'f', -1)\n"
    "  if l == 0 or f < l then return 0 end\n"
    "  settle(g, now)\n"
    "  if redis.call('ZCARD', rk(g)) > 0 then return 1 end\n"
    "  return 0\n"
    "end\n"
    /* ends a lease: its job id and group, or nil if it is not held */
    "local function lease_end(lease)\n"
    "  local v = redis.call('HGET', P .. ':l', lease)\n"
    "  if not v then return nil end\n"
    "  local id, owner = string.match(v, '^(%d+) (.*)$')\n"
    "  redis.call('HDEL', P .. ':l', lease)\n"
    "  redis.call('SREM', P .. ':il:' .. owner, lease)\n"
    "  redis.call('HINCRBY', N, 'leased', -1)\n"
    "  return id, redis.call('HGET', jk(id), 'g')\n"
    "end\n"
    /* a lease given up, not failed: same attempt, same place in line */
    "local function putback(lease, now)\n"
    "  local id, g = lease_end(lease)\n"
    "  if not id then return 0 end\n"
    "  redis.call('HINCRBY', gk(g), 'f', -1)\n"
    "  local j = redis.call('HMGET', jk(id), 'p', 's')\n"
    "  redis.call('ZADD', rk(g), -num(j[1]), member(j[2], id))\n"
    "  redis.call('HINCRBY', N, 'ready', 1)\n"
    "  settle(g, now)\n"
    "  return 1\n"
    "end\n"
    /* the leases of instances whose heartbeat ran out go back */
    "local function reclaim(now)\n"
    "  local t = redis.call('TIME')\n"
    "  local dead = redis.call('ZRANGEBYSCORE', P .. ':inst', '-inf',\n"
    "    fmt(t[1] + t[2] / 1e6), 'LIMIT', 0, 16)\n"
    "  local n = 0\n"
    "  for _, i in ipairs(dead) do\n"
    "    for _, lease in ipairs(redis.call('SMEMBERS', P .. ':il:' .. i)) do\n"
    "      n = n + putback(lease, now) end\n"
    "    redis.call('DEL', P .. ':il:' .. i)\n"
    "    redis.call('ZREM', P .. ':inst', i)\n"
    "  end\n"
    "  if n > 0 then bump() end\n"
    "  return n\n"
    "end\n"
    "local function heartbeat(ttl)\n"
    "  local t = redis.call('TIME')\n"
    "  redis.call('ZADD', P .. ':inst', fmt(t[1] + t[2] / 1e6 + ttl), INST)\n"
    "end\n"
    "local function promote(now)\n"
    "  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', fmt(now))) do\n"
    "    redis.call('ZREM', P .. ':delayed', id)\n"
    "    local j = redis.call('HMGET', jk(id), 'g', 'p', 's')\n"
    "    redis.call('ZADD', rk(j[1]), -num(j[2]), member(j[3], id))\n"
    "    redis.call('HINCRBY', gk(j[1]), 'nd', -1)\n"
    "    redis.call('HINCRBY', N, 'delayed', -1)\n"
    "    redis.call('HINCRBY', N, 'ready', 1)\n"
    "    settle(j[1], now)\n"
    "  end\n"
    "  for _, g in ipairs(redis.call('ZRANGEBYSCORE', P .. ':timed', '-inf', fmt(now))) do\n"
    "    settle(g, now) end\n"
    "end\n"
    "local function next_due()\n"
    "  local d = tonumber(redis.call('ZRANGE', P .. ':delayed', 0, 0, 'WITHSCORES')[2])\n"
    "  local t = tonumber(redis.call('ZRANGE', P .. ':timed', 0, 0, 'WITHSCORES')[2])\n"
    "  if t and (not d or t < d) then d = t end\n"
    "  if d then return fmt(d) end\n"
    "  return '0'\n"
    "end\n";

/* 3 now, 4 data, 5 ctx, 6 group, 7 depth, 8 priority, 9 delay, 10 key
 * hash or "", 11 from producer, 12 capacity, 13 producer position,
 * 14 default limit, 15 default delay -> {status, id, woke} */
static const char push[] =
    "local now, g, delay, key = tonumber(ARGV[3]), ARGV[6], tonumber(ARGV[9]), ARGV[10]\n"
    "local fromp, pos = ARGV[11] == '1', tonumber(ARGV[13])\n"
    "if fromp then\n"
    "  if pos <= num(redis.call('HGET', N, 'pp')) then return {2, 0, 0} end\n"
    "  if waiting() >= tonumber(ARGV[12]) then return {1, 0, 0} end\n"
    "end\n"
    "if key ~= '' and redis.call('SADD', P .. ':k', key) == 0 then\n"
    "  redis.call('HINCRBY', N, 'dup', 1)\n"
    "  if fromp then redis.call('HSET', N, 'pp', pos) end\n"
    "  return {2, 0, 0}\n"
    "end\n"
    "local id = redis.call('HINCRBY', N, 'job', 1)\n"
    "local seq = redis.call('HINCRBY', N, 'seq', 1)\n"
    "redis.call('HSET', jk(id), 'd', ARGV[4], 'c', ARGV[5], 'g', g, 'a', 1, 'p', ARGV[8],\n"
    "  's', seq, 'h', ARGV[7])\n"
    "group_new(g, ARGV[14], ARGV[15])\n"
    "local woke = 0\n"
    "if delay > 0 then\n"
    "  redis.call('ZADD', P .. ':delayed', fmt(now + delay), id)\n"
    "  redis.call('HINCRBY', gk(g), 'nd', 1)\n"
    "  redis.call('HINCRBY', N, 'delayed', 1)\n"
    "else\n"
    "  redis.call('ZADD', rk(g), -tonumber(ARGV[8]), member(seq, id))\n"
    "  redis.call('HINCRBY', N, 'ready', 1)\n"
    "  settle(g, now)\n"
    "  if room(g) then woke = 1 end\n"
    "end\n"
    "redis.call('HINCRBY', N, 'pushed', 1)\n"
    "if fromp then redis.call('HSET', N, 'pp', pos) end\n"
    "bump()\n"
    "return {0, id, woke}\n";

/* 3 worker, 4 now, 5 a uniform draw in [0, 1), 6 jitter, 7 capacity ->
 * {lease, id, attempt, data, ctx, group, depth, waiting} or
 * {0, waiting, next due} */
static const char take[] =
    "local now = tonumber(ARGV[4])\n"
    "reclaim(now)\n"
    "promote(now)\n"
    "local top = redis.call('ZRANGE', P .. ':open', 0, 0)[1]\n"
    "if not top then return {0, waiting(), next_due()} end\n"
    "local g = string.sub(top, 17)\n"
    "local k, r = gk(g), rk(g)\n"
    "local m = redis.call('ZRANGE', r, 0, 0)[1]\n"
    "if not m then\n"
    "  redis.call('ZREM', P .. ':open', top)\n"
    "  redis.call('HDEL', k, 'w', 'om')\n"
    "  return {0, waiting(), next_due()}\n"
    "end\n"
    "redis.call('ZREM', r, m)\n"
    "local id = string.sub(m, 17)\n"
    "redis.call('HINCRBY', N, 'ready', -1)\n"
    "redis.call('HINCRBY', N, 'leased', 1)\n"
    "redis.call('HINCRBY', k, 'f', 1)\n"
    "redis.call('HINCRBY', k, 'st', 1)\n"
    "local d = num(redis.call('HGET', k, 'd'))\n"
    "if d > 0 then\n"
    "  local jit = tonumber(ARGV[6])\n"
    "  redis.call('HSET', k, 't', fmt(now + d * (1 - jit + 2 * jit * tonumber(ARGV[5]))))\n"
    "end\n"
    "settle(g, now)\n"
    "local lease = redis.call('HINCRBY', N, 'lease', 1)\n"
    "redis.call('HSET', P .. ':l', lease, id .. ' ' .. INST)\n"
    "redis.call('SADD', P .. ':il:' .. INST, lease)\n"
    "local j = redis.call('HMGET', jk(id), 'd', 'c', 'a', 'h')\n"
    /* below half the capacity now: a producer held back elsewhere must hear */
    "local w, cap = waiting(), tonumber(ARGV[7])\n"
    "if 2 * w < cap and 2 * (w + 1) >= cap then bump() end\n"
    "return {lease, tonumber(id), tonumber(j[3]), j[1], j[2], g, tonumber(j[4]), w}\n";

/* 3 lease, 4 now, 5 "1" with items, 6 items -> {status, woke, drained} */
static const char ack[] = "local id, g = lease_end(ARGV[3])\n"
                          "if not id then return {-1, 0, 0} end\n"
                          "redis.call('DEL', jk(id))\n"
                          "redis.call('HINCRBY', N, 'acked', 1)\n"
                          "local woke = group_done(g, tonumber(ARGV[4]))\n"
                          "if ARGV[5] == '1' and #ARGV[6] > 0 then\n"
                          "  redis.call('XADD', P .. ':items', '*', 'i', ARGV[6]) end\n"
                          "local dr = drained()\n"
                          "if woke == 1 or dr == 1 then bump() end\n"
                          "return {0, woke, dr}\n";

/* 3 lease, 4 delay, 5 now -> {status, woke} */
static const char retry[] =
    "local id, g = lease_end(ARGV[3])\n"
    "if not id then return {-1, 0} end\n"
    "local delay, now = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local woke = group_done(g, now)\n"
    "local seq = redis.call('HINCRBY', N, 'seq', 1)\n"
    "redis.call('HSET', jk(id), 's', seq)\n"
    "redis.call('HINCRBY', jk(id), 'a', 1)\n"
    "redis.call('HINCRBY', N, 'retried', 1)\n"
    "if delay > 0 then\n"
    "  redis.call('ZADD', P .. ':delayed', fmt(now + delay), id)\n"
    "  redis.call('HINCRBY', gk(g), 'nd', 1)\n"
    "  redis.call('HINCRBY', N, 'delayed', 1)\n"
    "else\n"
    "  redis.call('ZADD', rk(g), -num(redis.call('HGET', jk(id), 'p')), member(seq, id))\n"
    "  redis.call('HINCRBY', N, 'ready', 1)\n"
    "  settle(g, now)\n"
    "  if room(g) then woke = 1 else woke = 0 end\n"
    "end\n"
    "bump()\n"
    "return {0, woke}\n";

/* 3 now, 4... leases -> how many were held and went back */
static const char release[] = "local now, n = tonumber(ARGV[3]), 0\n"
                              "for i = 4, #ARGV do n = n + putback(ARGV[i], now) end\n"
                              "if n > 0 then bump() end\n"
                              "return n\n";

static const char next_due[] = "return next_due()\n";

static const char stats[] =
    "local c = redis.call('HMGET', N, 'ready', 'delayed', 'leased', 'pushed', 'dup',\n"
    "  'retried', 'acked')\n"
    "local out = {}\n"
    "for i = 1, 7 do out[i] = num(c[i]) end\n"
    "out[8] = redis.call('SCARD', P .. ':k')\n"
    "return out\n";

/* 3 group, 4 delay (< 0 keeps), 5 limit (< 0 keeps), 6 now, 7 default
 * limit, 8 default delay -> 1 if a full group with ready jobs got room */
static const char tune[] = "local g, delay, limit = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])\n"
                           "group_new(g, ARGV[7], ARGV[8])\n"
                           "local was_full = not room(g)\n"
                           "if delay >= 0 then redis.call('HSET', gk(g), 'd', fmt(delay)) end\n"
                           "if limit >= 0 then redis.call('HSET', gk(g), 'l', limit) end\n"
                           "settle(g, tonumber(ARGV[6]))\n"
                           "if was_full and room(g) and redis.call('ZCARD', rk(g)) > 0 then\n"
                           "  bump()\n"
                           "  return 1\n"
                           "end\n"
                           "return 0\n";

/* 3 group, 4 until, 5 now, 6 default limit, 7 default delay */
static const char pause[] = "local g, till = ARGV[3], tonumber(ARGV[4])\n"
                            "group_new(g, ARGV[6], ARGV[7])\n"
                            "if till > num(redis.call('HGET', gk(g), 't')) then\n"
                            "  redis.call('HSET', gk(g), 't', fmt(till))\n"
                            "  settle(g, tonumber(ARGV[5]))\n"
                            "end\n"
                            "return 0\n";

/* -> name, in flight, ready, delayed, started, delay, limit, next start;
 * eight entries a group */
static const char groups[] =
    "local out = {}\n"
    "for _, g in ipairs(redis.call('SMEMBERS', P .. ':groups')) do\n"
    "  local h = redis.call('HMGET', gk(g), 'f', 'l', 'd', 't', 'st', 'nd')\n"
    "  local n = #out\n"
    "  out[n + 1] = g\n"
    "  out[n + 2] = num(h[1])\n"
    "  out[n + 3] = redis.call('ZCARD', rk(g))\n"
    "  out[n + 4] = num(h[6])\n"
    "  out[n + 5] = num(h[5])\n"
    "  out[n + 6] = fmt(num(h[3]))\n"
    "  out[n + 7] = num(h[2])\n"
    "  out[n + 8] = fmt(num(h[4]))\n"
    "end\n"
    "return out\n";

/* The background thread's tick. 3 ttl, 4 now, 5... roles held ->
 * {reclaimed, others' changes, waiting, drained} */
static const char poll_[] =
    "local ttl = tonumber(ARGV[3])\n"
    "heartbeat(ttl)\n"
    "for i = 5, #ARGV do\n"
    "  local k = P .. ':role:' .. ARGV[i]\n"
    "  if redis.call('GET', k) == INST and redis.call('PTTL', k) > 0 then\n"
    "    redis.call('PEXPIRE', k, math.floor(ttl * 1000)) end\n"
    "end\n"
    "local n = reclaim(tonumber(ARGV[4]))\n"
    "local ver = num(redis.call('HGET', N, 'ver'))\n"
    "return {n, ver - num(redis.call('HGET', P .. ':mine', INST)), waiting(), drained()}\n";

/* 3 role, 4 ttl in ms -> 1 if this instance holds it now */
static const char claim[] =
    "local k = P .. ':role:' .. ARGV[3]\n"
    "if ARGV[3] == 'producer' and redis.call('HGET', N, 'pdone') == '1' then return 0 end\n"
    "if redis.call('SET', k, INST, 'NX', 'PX', ARGV[4]) then return 1 end\n"
    "if redis.call('GET', k) == INST then return 1 end\n"
    "return 0\n";

static const char producer_done[] = "redis.call('HSET', N, 'pdone', 1)\n"
                                    "bump()\n"
                                    "return drained()\n";

static const char drained[] = "return drained()\n";

/* 3 items */
static const char items[] = "redis.call('XADD', P .. ':items', '*', 'i', ARGV[3])\n"
                            "return 0\n";

/* 3 ttl, 4 a seed to use if none is set -> {seed, Redis's seconds,
 * microseconds} */
static const char hello[] = "heartbeat(tonumber(ARGV[3]))\n"
                            "redis.call('HSETNX', N, 'seed', ARGV[4])\n"
                            "local t = redis.call('TIME')\n"
                            "return {redis.call('HGET', N, 'seed'), t[1], t[2]}\n";

/* A clean exit: this instance's leases go back now, not after the TTL; a
 * producer role held goes to the next asker; a done role stays taken,
 * since done() ran here. 3 now */
static const char goodbye[] =
    "local now = tonumber(ARGV[3])\n"
    "for _, lease in ipairs(redis.call('SMEMBERS', P .. ':il:' .. INST)) do\n"
    "  putback(lease, now) end\n"
    "redis.call('DEL', P .. ':il:' .. INST)\n"
    "redis.call('ZREM', P .. ':inst', INST)\n"
    "local k = P .. ':role:producer'\n"
    "if redis.call('GET', k) == INST then redis.call('DEL', k) end\n"
    "k = P .. ':role:done'\n"
    "if redis.call('GET', k) == INST then redis.call('PERSIST', k) end\n"
    "bump()\n"
    "return 0\n";

/* After a lost connection: leases of this instance that it does not know
 * of (a take whose answer was lost) go back. 3 ttl, 4 now, 5... the leases
 * it holds */
static const char reconcile[] =
    "heartbeat(tonumber(ARGV[3]))\n"
    "local known, n = {}, 0\n"
    "for i = 5, #ARGV do known[ARGV[i]] = true end\n"
    "for _, lease in ipairs(redis.call('SMEMBERS', P .. ':il:' .. INST)) do\n"
    "  if not known[lease] then n = n + putback(lease, tonumber(ARGV[4])) end\n"
    "end\n"
    "if n > 0 then bump() end\n"
    "return n\n";

static const struct {
    const char *name, *body;
} scripts[RS_COUNT] = {
    [RS_PUSH] = {"push", push},
    [RS_TAKE] = {"take", take},
    [RS_ACK] = {"ack", ack},
    [RS_RETRY] = {"retry", retry},
    [RS_RELEASE] = {"release", release},
    [RS_NEXT_DUE] = {"next_due", next_due},
    [RS_STATS] = {"stats", stats},
    [RS_TUNE] = {"tune", tune},
    [RS_PAUSE] = {"pause", pause},
    [RS_GROUPS] = {"groups", groups},
    [RS_POLL] = {"poll", poll_},
    [RS_CLAIM] = {"claim", claim},
    [RS_PRODUCER_DONE] = {"producer_done", producer_done},
    [RS_DRAINED] = {"drained", drained},
    [RS_ITEMS] = {"items", items},
    [RS_HELLO] = {"hello", hello},
    [RS_GOODBYE] = {"goodbye", goodbye},
    [RS_RECONCILE] = {"reconcile", reconcile},
};

/* Built once per script on first use; the prelude is short, so the copies
 * cost a few kilobytes for the process. */
static char *sources[RS_COUNT];

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void)
{
    for (int i = 0; i < RS_COUNT; i++) {
        size_t a = sizeof prelude - 1, b = strlen(scripts[i].body);
        char *s = malloc(a + b + 1);
        if (!s)
            continue;
        memcpy(s, prelude, a);
        memcpy(s + a, scripts[i].body, b + 1);
        sources[i] = s;
    }
}

const char *rs_source(enum rs_script s)
{
    pthread_once(&once, build);
    return s < RS_COUNT ? sources[s] : NULL;
}

const char *rs_name(enum rs_script s)
{
    return s < RS_COUNT ? scripts[s].name : "?";
}
