/* queue_redis_scripts.c - the Lua that Redis runs for the shared queue
 * (see queue_redis_scripts.h; the design is in docs/ARCHITECTURE.md).
 *
 * Keys, all under the prefix P (default "shoal"):
 *   P:n          hash of counters: job, seq, lease (id sources); ready,
 *                delayed, leased (where the jobs are); pushed, dup,
 *                retried, acked (stats); pdone (the producer returned); pp
 *                (the producer's position); ver (a change other processes
 *                must hear of); seed (the dedup hash's seed); layout (of
 *                these keys: REDIS_LAYOUT of queue_redis.c)
 *   P:mine       hash instance -> its own share of ver
 *   P:jd         hash job id -> the job: its sequence in 16 hex digits,
 *                then as the process that pushed it packed it
 *                (core/jobpack.c; jpack here for a retry): attempt,
 *                priority, depth, the lengths of group and data, then
 *                group, data and context;
 *                one hash, so a batch writes, reads or deletes many jobs
 *                with one command, and a take hands the value over as it is
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
 *   P:l:INST     hash of the instance's leases: lease -> job id, after an
 *                "r" for a reserve lease, which holds no slot of its
 *                group (a lease is ended by its owner, or by another for
 *                a dead owner, so its hash is always known where it ends;
 *                one key a lease, and a dead instance's leases are one
 *                HGETALL)
 *   P:inst       zset instance -> heartbeat expiry (Redis's clock)
 *   P:k          set of dedup key hashes (8 bytes each)
 *   P:role:NAME  string: the holder of a role, with a TTL while it lives
 *   P:items      stream of items kept with their job's ack: an entry a
 *                batch, field "i" once an item; and an entry "e" when the
 *                run is drained (P:n end), so a follower hears of it
 *
 * settle() is queue_mem.c's group_settle: after any change to a group it
 * puts the group in P:open, P:timed or neither, so take reads the best
 * open job with one ZRANGE and a slow or full group costs nothing.
 *
 * Numbers that are times go back as "%.17g" strings: Redis would cut a
 * Lua number to an integer. What a job carries stays a string from the
 * process to the store and back: Lua turning a number into text costs
 * more than the command it goes to (about 0.4 us each). */
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
    "local JD = P .. ':jd'\n"
    /* a job as the process packs it; its stored value is its sequence's */
    /* 16 hex digits (seqx), then this */
    "local function jpack(a, p, h, g, d, c)\n"
    "  return a .. ',' .. p .. ',' .. h .. ',' .. #g .. ',' .. #d .. ';' .. g .. d .. c\n"
    "end\n"
    "local function seqx(s) return string.format('%016x', s) end\n"
    /* a stored job -> attempt, priority, sequence (16 hex digits), depth, */
    /* group, data, ctx */
    "local function junpack(v)\n"
    "  if not v then return 1, 0, seqx(0), 0, '', '', '' end\n"
    "  local a, p, h, gl, dl, at =\n"
    "    string.match(v, '^(%d+),(%-?%d+),(%-?%d+),(%d+),(%d+);()', 17)\n"
    "  gl, dl = tonumber(gl), tonumber(dl)\n"
    "  return tonumber(a), tonumber(p), string.sub(v, 1, 16), tonumber(h),\n"
    "    string.sub(v, at, at + gl - 1), string.sub(v, at + gl, at + gl + dl - 1),\n"
    "    string.sub(v, at + gl + dl)\n"
    "end\n"
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
    "    redis.call('HSET', gk(g), 'd', fmt(tonumber(delay)))\n"
    "    redis.call('SADD', P .. ':groups', g)\n"
    "  end\n"
    "end\n"
    "local function lk(inst) return P .. ':l:' .. inst end\n"
    /* a lease's value: its job id, after an 'r' if the lease is a reserve */
    /* one (taken without a slot of its group) -> id, holds a slot */
    "local function lease_job(v)\n"
    "  if string.byte(v, 1) == 114 then return string.sub(v, 2), false end\n"
    "  return v, true\n"
    "end\n"
    /* every lease of an instance goes back: same attempt, same place in */
    /* line (given up, not failed) -> how many */
    "local function putback_all(inst, now)\n"
    "  local all = redis.call('HGETALL', lk(inst))\n"
    "  for x = 2, #all, 2 do\n"
    "    local id, slotted = lease_job(all[x])\n"
    "    local _, p, sx, _, g = junpack(redis.call('HGET', JD, id))\n"
    "    if slotted then redis.call('HINCRBY', gk(g), 'f', -1) end\n"
    "    redis.call('ZADD', rk(g), -p, sx .. id)\n"
    "    settle(g, now)\n"
    "  end\n"
    "  local n = #all / 2\n"
    "  if n > 0 then\n"
    "    redis.call('DEL', lk(inst))\n"
    "    redis.call('HINCRBY', N, 'leased', -n)\n"
    "    redis.call('HINCRBY', N, 'ready', n)\n"
    "  end\n"
    "  return n\n"
    "end\n"
    /* the leases of instances whose heartbeat ran out go back */
    "local function reclaim(now)\n"
    "  local t = redis.call('TIME')\n"
    "  local dead = redis.call('ZRANGEBYSCORE', P .. ':inst', '-inf',\n"
    "    fmt(t[1] + t[2] / 1e6), 'LIMIT', 0, 16)\n"
    "  local n = 0\n"
    "  for _, i in ipairs(dead) do\n"
    "    n = n + putback_all(i, now)\n"
    "    redis.call('ZREM', P .. ':inst', i)\n"
    "  end\n"
    "  if n > 0 then bump() end\n"
    "  return n\n"
    "end\n"
    "local function heartbeat(ttl)\n"
    "  local t = redis.call('TIME')\n"
    "  redis.call('ZADD', P .. ':inst', fmt(t[1] + t[2] / 1e6 + ttl), INST)\n"
    "end\n"
    /* due delayed jobs become ready; c: the caller's counter changes */
    "local function promote(now, c)\n"
    "  for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', fmt(now))) do\n"
    "    redis.call('ZREM', P .. ':delayed', id)\n"
    "    local _, p, sx, _, g = junpack(redis.call('HGET', JD, id))\n"
    "    redis.call('ZADD', rk(g), -p, sx .. id)\n"
    "    redis.call('HINCRBY', gk(g), 'nd', -1)\n"
    "    c.delayed = c.delayed - 1\n"
    "    c.ready = c.ready + 1\n"
    "    settle(g, now)\n"
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

/* 3 now, 4 the job (jpack), 5 group, 6 score (-priority), 7 delay, 8 key
 * hash or "", 9 from producer, 10 capacity, 11 producer position, 12
 * default limit, 13 default delay -> {status, id, woke} */
static const char push[] =
    "local now, g, delay, key = tonumber(ARGV[3]), ARGV[5], tonumber(ARGV[7]), ARGV[8]\n"
    "local fromp, pos = ARGV[9] == '1', tonumber(ARGV[11])\n"
    "if fromp then\n"
    "  if pos <= num(redis.call('HGET', N, 'pp')) then return {2, 0, 0} end\n"
    "  if waiting() >= tonumber(ARGV[10]) then return {1, 0, 0} end\n"
    "end\n"
    "if key ~= '' and redis.call('SADD', P .. ':k', key) == 0 then\n"
    "  redis.call('HINCRBY', N, 'dup', 1)\n"
    "  if fromp then redis.call('HSET', N, 'pp', pos) end\n"
    "  return {2, 0, 0}\n"
    "end\n"
    "local id = redis.call('HINCRBY', N, 'job', 1)\n"
    "local sx = seqx(redis.call('HINCRBY', N, 'seq', 1))\n"
    "redis.call('HSET', JD, id, sx .. ARGV[4])\n"
    "group_new(g, ARGV[12], ARGV[13])\n"
    "local woke = 0\n"
    "if delay > 0 then\n"
    "  redis.call('ZADD', P .. ':delayed', fmt(now + delay), id)\n"
    "  redis.call('HINCRBY', gk(g), 'nd', 1)\n"
    "  redis.call('HINCRBY', N, 'delayed', 1)\n"
    "else\n"
    "  redis.call('ZADD', rk(g), ARGV[6], sx .. id)\n"
    "  redis.call('HINCRBY', N, 'ready', 1)\n"
    "  settle(g, now)\n"
    "  if room(g) then woke = 1 end\n"
    "end\n"
    "redis.call('HINCRBY', N, 'pushed', 1)\n"
    "if fromp then redis.call('HSET', N, 'pp', pos) end\n"
    "bump()\n"
    "return {0, id, woke}\n";

/* Many changes of one process and a take, in one call (the outbox of
 * queue_redis.c). 3 now, 4 default limit, 5 default delay, 6 jitter, 7
 * job ids wanted (a block), 8 k leases wanted, 9 duplicates answered by
 * the process, 10 "1" if some of the changes were sent before (their
 * answer was lost), 11 .. 10+k a draw in [0, 2^32) per lease, 11+k the
 * number h of groups named for the reserve, then h pairs (group, leases
 * wanted), then the changes in order, each a letter, its caller's now and
 * its fields:
 *   p id job group score delay key   a push (id 0: give one; job: jpack's)
 *   a lease id group items                        an ack (items "" if none)
 *   h lease id group items heir      an ack whose slot goes to heir, a
 *                                    reserve lease of the group
 *   r lease delay                                 a retry
 *   l lease                                       a release (same place)
 *   i items                                       items made outside a job
 *   t group delay limit                           group_tune
 *   u group until                                 group_pause
 *   D                                             producer_done
 * -> {drained, waiting, ready, next due, last id of the block, leases,
 * then 4 entries a lease: lease, id, the job as stored, flags (1: the
 * group has no delay, so its changes move no start; 2: a reserve lease,
 * taken without a slot of its group)}.
 * Counters, the sequence, the ends of leases and the ready jobs of a
 * group are gathered and written once a batch; each touched group is
 * settled once, with the latest now; a take takes a run of jobs from one
 * group in one go. This keeps the calls into Redis to a few a job. */
static const char batch[] =
    "local now = tonumber(ARGV[3])\n"
    "local dlimit, ddelay, jit = ARGV[4], ARGV[5], tonumber(ARGV[6])\n"
    "local k, careful = tonumber(ARGV[8]), ARGV[10] == '1'\n"
    "local c = {ready = 0, delayed = 0, leased = 0, pushed = 0, dup = tonumber(ARGV[9]),\n"
    "  retried = 0, acked = 0}\n"
    "local L = lk(INST)\n"
    /* P:n's fields, read once here and written once at the end */
    "local CN = {'ready', 'delayed', 'leased', 'pushed', 'dup', 'retried', 'acked'}\n"
    "local n0 = redis.call('HMGET', N, 'seq', 'lease', 'ver', 'pdone', unpack(CN))\n"
    "local seq, pdone = num(n0[1]), n0[4] == '1'\n"
    "local dirty, made, last, any = {}, {}, now, false\n"
    "local adds, fdec, ended, gone, jobs_gone, items = {}, {}, {}, {}, {}, {}\n"
    "local jset, up, ups = {}, {}, {}\n"
    "local function nextseq()\n"
    "  seq = seq + 1\n"
    "  return seq\n"
    "end\n"
    /* a lease of this instance that ended here: its group has room again; */
    /* its key goes with one HDEL at the end */
    "local function let_go(lease, g, slotted)\n"
    "  ended[lease] = true\n"
    "  gone[#gone + 1] = lease\n"
    "  c.leased = c.leased - 1\n"
    "  if slotted then\n"
    "    fdec[g] = (fdec[g] or 0) + 1\n"
    "    dirty[g] = true\n"
    "  end\n"
    "end\n"
    /* ends a lease named alone (a retry, a release): its job id, then the */
    /* job unpacked (junpack), or nil if the lease is not held */
    "local function off(lease)\n"
    "  if ended[lease] then return nil end\n"
    "  local v = redis.call('HGET', L, lease)\n"
    "  if not v then return nil end\n"
    "  local id, slotted = lease_job(v)\n"
    "  local a, p, sx, h, g, d, cx = junpack(redis.call('HGET', JD, id))\n"
    "  let_go(lease, g, slotted or up[lease])\n"
    "  return id, a, p, sx, h, g, d, cx\n"
    "end\n"
    "local function later(id, g, at)\n"
    "  redis.call('ZADD', P .. ':delayed', fmt(at), id)\n"
    "  redis.call('HINCRBY', gk(g), 'nd', 1)\n"
    "  c.delayed = c.delayed + 1\n"
    "end\n"
    /* score: -priority; sx: the sequence's 16 hex digits */
    "local function ready(id, g, score, sx)\n"
    "  local a = adds[g]\n"
    "  if not a then a = {}; adds[g] = a end\n"
    "  a[#a + 1] = score\n"
    "  a[#a + 1] = sx .. id\n"
    "  c.ready = c.ready + 1\n"
    "  dirty[g] = true\n"
    "end\n"
    /* each change's arguments, its letter and now included */
    "local W = {p = 8, a = 6, h = 7, r = 4, l = 3, i = 3, t = 5, u = 4, D = 2}\n"
    /* the pushes' keys, asked about in one call, added in one; the acks' */
    /* leases, looked up in one call (held: this instance still holds it) */
    "local keys, known, fresh, acks, held = {}, {}, {}, {}, {}\n"
    "local hints = tonumber(ARGV[11 + k])\n"
    "local first = 12 + k + 2 * hints\n"
    "local i = first\n"
    "while i <= #ARGV do\n"
    "  local op = ARGV[i]\n"
    "  if op == 'p' and ARGV[i + 7] ~= '' then keys[#keys + 1] = ARGV[i + 7]\n"
    "  elseif op == 'a' then acks[#acks + 1] = ARGV[i + 2]\n"
    "  elseif op == 'h' then acks[#acks + 1] = ARGV[i + 2]; acks[#acks + 1] = ARGV[i + 6] end\n"
    /* an unknown change ends this pass; the next one says so */
    "  i = i + (W[op] or #ARGV)\n"
    "end\n"
    "if #keys > 0 then\n"
    "  local m = redis.call('SMISMEMBER', P .. ':k', unpack(keys))\n"
    "  for x = 1, #keys do if m[x] == 1 then known[keys[x]] = true end end\n"
    "end\n"
    "if #acks > 0 then\n"
    "  local m = redis.call('HMGET', L, unpack(acks))\n"
    "  for x = 1, #acks do if m[x] then held[acks[x]] = m[x] end end\n"
    "end\n"
    "i = first\n"
    "while i <= #ARGV do\n"
    "  local op, t = ARGV[i], tonumber(ARGV[i + 1])\n"
    "  if t > last then last = t end\n"
    "  any = true\n"
    "  if op == 'p' then\n"
    "    local id, g, delay, key = ARGV[i + 2], ARGV[i + 4], tonumber(ARGV[i + 6]), ARGV[i + 7]\n"
    "    if key ~= '' and known[key] then\n"
    "      c.dup = c.dup + 1\n"
    "    else\n"
    "      if key ~= '' then known[key] = true; fresh[#fresh + 1] = key end\n"
    "      if id == '0' then id = tostring(redis.call('HINCRBY', N, 'job', 1)) end\n"
    /* a batch sent again after its answer was lost does not queue twice */
    "      if not careful or redis.call('HEXISTS', JD, id) == 0 then\n"
    "        local sx = seqx(nextseq())\n"
    "        jset[#jset + 1] = id\n"
    "        jset[#jset + 1] = sx .. ARGV[i + 3]\n"
    "        if not made[g] then group_new(g, dlimit, ddelay); made[g] = true end\n"
    "        c.pushed = c.pushed + 1\n"
    "        if delay > 0 then later(id, g, t + delay)\n"
    "        else ready(id, g, ARGV[i + 5], sx) end\n"
    "      end\n"
    "    end\n"
    "  elseif op == 'a' or op == 'h' then\n"
    /* the lease still held is the ack's check: its job and group came with */
    /* it; 'h' hands its slot to a reserve lease of the group (the heir), */
    /* which the process runs at once */
    "    local lease, id, g = ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]\n"
    "    if not ended[lease] and held[lease] then\n"
    "      local _, slotted = lease_job(held[lease])\n"
    "      slotted = slotted or up[lease]\n"
    "      local heir = op == 'h' and ARGV[i + 6]\n"
    "      local hv = heir and not ended[heir] and not up[heir] and held[heir]\n"
    "      local hid, hslot\n"
    "      if hv then hid, hslot = lease_job(hv) end\n"
    "      if slotted and hv and not hslot then\n"
    "        up[heir] = true\n"
    "        ups[#ups + 1] = heir\n"
    "        ups[#ups + 1] = hid\n"
    "        let_go(lease, g, false)\n"
    "      else\n"
    "        let_go(lease, g, slotted)\n"
    "      end\n"
    "      jobs_gone[#jobs_gone + 1] = id\n"
    "      c.acked = c.acked + 1\n"
    "      if #ARGV[i + 5] > 0 then items[#items + 1] = 'i'; items[#items + 1] = ARGV[i + 5] end\n"
    "    end\n"
    "  elseif op == 'r' then\n"
    "    local id, a, p, _, h, g, d, cx = off(ARGV[i + 2])\n"
    "    if id then\n"
    "      local sx, delay = seqx(nextseq()), tonumber(ARGV[i + 3])\n"
    "      jset[#jset + 1] = id\n"
    "      jset[#jset + 1] = sx .. jpack(a + 1, p, h, g, d, cx)\n"
    "      c.retried = c.retried + 1\n"
    "      if delay > 0 then later(id, g, t + delay)\n"
    "      else ready(id, g, -p, sx) end\n"
    "    end\n"
    "  elseif op == 'l' then\n"
    "    local id, _, p, sx, _, g = off(ARGV[i + 2])\n"
    "    if id then ready(id, g, -p, sx) end\n"
    "  elseif op == 'i' then\n"
    "    items[#items + 1] = 'i'\n"
    "    items[#items + 1] = ARGV[i + 2]\n"
    "  elseif op == 't' or op == 'u' then\n"
    /* a tune or pause sees the group as the changes before it left it */
    "    for g, n in pairs(fdec) do redis.call('HINCRBY', gk(g), 'f', -n) end\n"
    "    fdec = {}\n"
    "    for g, a in pairs(adds) do redis.call('ZADD', rk(g), unpack(a)) end\n"
    "    adds = {}\n"
    "    local g = ARGV[i + 2]\n"
    "    group_new(g, dlimit, ddelay)\n"
    "    if op == 't' then\n"
    "      local delay, limit = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])\n"
    "      if delay >= 0 then redis.call('HSET', gk(g), 'd', fmt(delay)) end\n"
    "      if limit >= 0 then redis.call('HSET', gk(g), 'l', limit) end\n"
    "    else\n"
    "      local till = tonumber(ARGV[i + 3])\n"
    "      if till > num(redis.call('HGET', gk(g), 't')) then\n"
    "        redis.call('HSET', gk(g), 't', fmt(till))\n"
    "      end\n"
    "    end\n"
    "    dirty[g] = true\n"
    "  elseif op == 'D' then\n"
    "    redis.call('HSET', N, 'pdone', 1)\n"
    "    pdone = true\n"
    "  else\n"
    "    return redis.error_reply('batch: unknown change ' .. tostring(op))\n"
    "  end\n"
    "  i = i + W[op]\n"
    "end\n"
    "if #gone > 0 then redis.call('HDEL', L, unpack(gone)) end\n"
    /* the heirs now hold their slots (unless ended in this batch too) */
    "if #ups > 0 then\n"
    "  local keep = {}\n"
    "  for x = 1, #ups, 2 do\n"
    "    if not ended[ups[x]] then keep[#keep + 1] = ups[x]; keep[#keep + 1] = ups[x + 1] end\n"
    "  end\n"
    "  if #keep > 0 then redis.call('HSET', L, unpack(keep)) end\n"
    "end\n"
    "if #fresh > 0 then redis.call('SADD', P .. ':k', unpack(fresh)) end\n"
    "if #items > 0 then redis.call('XADD', P .. ':items', '*', unpack(items)) end\n"
    "if #jobs_gone > 0 then redis.call('HDEL', JD, unpack(jobs_gone)) end\n"
    "if #jset > 0 then redis.call('HSET', JD, unpack(jset)) end\n"
    "for g, n in pairs(fdec) do redis.call('HINCRBY', gk(g), 'f', -n) end\n"
    "for g, a in pairs(adds) do redis.call('ZADD', rk(g), unpack(a)) end\n"
    "for g in pairs(dirty) do settle(g, last) end\n"
    /* the take: the best open group's jobs, as many as its room allows and as */
    /* long as they beat the next group's best, then the next group */
    "local out, got, lease, mine = {}, 0, nil, {}\n"
    /* leases the run `taken` (members of a group's ready set, removed from */
    /* it): a lease each, into the answer with flags, and into the lease */
    /* hash, marked 'r' if reserve */
    "local function lease_run(taken, flags, reserve)\n"
    "  if not lease then lease = num(n0[2]) end\n"
    "  local ids = {}\n"
    "  for x = 1, #taken do ids[x] = string.sub(taken[x], 17) end\n"
    "  local js = redis.call('HMGET', JD, unpack(ids))\n"
    "  for x = 1, #taken do\n"
    "    local id = ids[x]\n"
    "    lease = lease + 1\n"
    "    mine[#mine + 1] = lease\n"
    "    mine[#mine + 1] = reserve and 'r' .. id or id\n"
    "    local o = #out\n"
    "    out[o + 1], out[o + 2], out[o + 3], out[o + 4] = lease, id, js[x] or '', flags\n"
    "  end\n"
    "  got = got + #taken\n"
    "end\n"
    /* dead instances' leases come back with the poll's reclaim */
    "if k > 0 or hints > 0 then\n"
    "  promote(now, c)\n"
    "  while got < k do\n"
    "    local top = redis.call('ZRANGE', P .. ':open', 0, 1, 'WITHSCORES')\n"
    "    if not top[1] then break end\n"
    "    local g = string.sub(top[1], 17)\n"
    "    local gkey, r = gk(g), rk(g)\n"
    "    local h = redis.call('HMGET', gkey, 'f', 'l', 'd', 'st')\n"
    "    local f, l, d = num(h[1]), num(h[2]), num(h[3])\n"
    "    local want = k - got\n"
    "    if l > 0 and l - f < want then want = l - f end\n"
    "    if d > 0 or want < 1 then want = 1 end\n"
    "    local ms = redis.call('ZRANGE', r, 0, want - 1, 'WITHSCORES')\n"
    "    local n = 0\n"
    "    for x = 1, #ms / 2 do\n"
    "      if x > 1 and top[3] then\n"
    "        local sc, s2 = tonumber(ms[2 * x]), tonumber(top[4])\n"
    "        if sc > s2 or (sc == s2 and string.sub(ms[2 * x - 1], 1, 16) > string.sub(top[3], 1, "
    "16))\n"
    "          then break end\n"
    "      end\n"
    "      n = x\n"
    "    end\n"
    "    if n == 0 then\n"
    "      redis.call('ZREM', P .. ':open', top[1])\n"
    "      redis.call('HDEL', gkey, 'w', 'om')\n"
    "    else\n"
    "      local taken = {}\n"
    "      for x = 1, n do taken[x] = ms[2 * x - 1] end\n"
    "      redis.call('ZREM', r, unpack(taken))\n"
    "      if d > 0 then\n"
    "        local u = tonumber(ARGV[11 + got]) / 4294967296\n"
    "        redis.call('HSET', gkey, 'f', f + n, 'st', num(h[4]) + n,\n"
    "          't', fmt(now + d * (1 - jit + 2 * jit * u)))\n"
    "      else\n"
    "        redis.call('HSET', gkey, 'f', f + n, 'st', num(h[4]) + n)\n"
    "      end\n"
    "      settle(g, now)\n"
    "      lease_run(taken, d > 0 and 0 or 1, false)\n"
    "    end\n"
    "  end\n"
    /* the reserve: jobs of the groups the process named, taken without a */
    /* slot (groups with a limit and no delay, not paused); each runs only */
    /* when a job of its group ends here and hands it its slot ('h') */
    "  for x = 1, hints do\n"
    "    local g, want = ARGV[10 + k + 2 * x], tonumber(ARGV[11 + k + 2 * x])\n"
    "    local gh = redis.call('HMGET', gk(g), 'l', 'd', 't')\n"
    "    if num(gh[1]) > 0 and num(gh[2]) == 0 and num(gh[3]) <= now then\n"
    "      local taken = redis.call('ZRANGE', rk(g), 0, want - 1)\n"
    "      if #taken > 0 then\n"
    "        redis.call('ZREM', rk(g), unpack(taken))\n"
    "        settle(g, now)\n"
    "        lease_run(taken, 3, true)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if lease then redis.call('HSET', L, unpack(mine)) end\n"
    "  c.ready = c.ready - got\n"
    "  c.leased = c.leased + got\n"
    "end\n"
    "local w, v = {}, {}\n"
    "if seq ~= num(n0[1]) then w[#w + 1] = 'seq'; w[#w + 1] = seq end\n"
    "if lease then w[#w + 1] = 'lease'; w[#w + 1] = lease end\n"
    "for x, name in ipairs(CN) do\n"
    "  v[name] = num(n0[4 + x]) + c[name]\n"
    "  if c[name] ~= 0 then w[#w + 1] = name; w[#w + 1] = v[name] end\n"
    "end\n"
    "if any or got > 0 then\n"
    "  w[#w + 1] = 'ver'; w[#w + 1] = num(n0[3]) + 1\n"
    "  redis.call('HINCRBY', P .. ':mine', INST, 1)\n"
    "end\n"
    "if #w > 0 then redis.call('HSET', N, unpack(w)) end\n"
    "local idend = 0\n"
    "if tonumber(ARGV[7]) > 0 then idend = redis.call('HINCRBY', N, 'job', ARGV[7]) end\n"
    "local rd, dl, ls = v.ready, v.delayed, v.leased\n"
    "local dr = 0\n"
    "if pdone and rd == 0 and dl == 0 and ls == 0 then dr = 1 end\n"
    /* the end of the run, said once on the items stream: a follower wakes */
    "if dr == 1 and redis.call('HSETNX', N, 'end', 1) == 1 then\n"
    "  redis.call('XADD', P .. ':items', '*', 'e', 1)\n"
    "end\n"
    "local head = {dr, rd + dl, rd, next_due(), idend, got}\n"
    "for x = 1, #out do head[6 + x] = out[x] end\n"
    "return head\n";

static const char stats[] =
    "local c = redis.call('HMGET', N, 'ready', 'delayed', 'leased', 'pushed', 'dup',\n"
    "  'retried', 'acked')\n"
    "local out = {}\n"
    "for i = 1, 7 do out[i] = num(c[i]) end\n"
    "out[8] = redis.call('SCARD', P .. ':k')\n"
    "return out\n";

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

/* 3 ttl, 4 a seed to use if none is set, 5 job ids wanted, 6 the layout
 * of the keys this process uses -> {seed, Redis's seconds, microseconds,
 * the last id of the block}, or the error "LAYOUT n" if the prefix holds
 * a run laid out otherwise (n: its layout; 1 before layouts were named) */
static const char hello[] = "local lay = redis.call('HGET', N, 'layout')\n"
                            "if lay ~= ARGV[6] and (lay or redis.call('EXISTS', N) == 1) then\n"
                            "  return redis.error_reply('LAYOUT ' .. (lay or '1'))\n"
                            "end\n"
                            "redis.call('HSET', N, 'layout', ARGV[6])\n"
                            "heartbeat(tonumber(ARGV[3]))\n"
                            "redis.call('HSETNX', N, 'seed', ARGV[4])\n"
                            "local t = redis.call('TIME')\n"
                            "local ids = redis.call('HINCRBY', N, 'job', ARGV[5])\n"
                            "return {redis.call('HGET', N, 'seed'), t[1], t[2], ids}\n";

/* A clean exit: this instance's leases go back now, not after the TTL; a
 * producer role held goes to the next asker; a done role stays taken,
 * since done() ran here. 3 now */
static const char goodbye[] = "local now = tonumber(ARGV[3])\n"
                              "putback_all(INST, now)\n"
                              "redis.call('ZREM', P .. ':inst', INST)\n"
                              "local k = P .. ':role:producer'\n"
                              "if redis.call('GET', k) == INST then redis.call('DEL', k) end\n"
                              "k = P .. ':role:done'\n"
                              "if redis.call('GET', k) == INST then redis.call('PERSIST', k) end\n"
                              "bump()\n"
                              "return 0\n";

static const struct {
    const char *name, *body;
} scripts[RS_COUNT] = {
    [RS_PUSH] = {"push", push},    [RS_BATCH] = {"batch", batch},
    [RS_STATS] = {"stats", stats}, [RS_GROUPS] = {"groups", groups},
    [RS_POLL] = {"poll", poll_},   [RS_CLAIM] = {"claim", claim},
    [RS_HELLO] = {"hello", hello}, [RS_GOODBYE] = {"goodbye", goodbye},
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
