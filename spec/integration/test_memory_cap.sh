#!/usr/bin/env bash
# test_memory_cap.sh - however a script reaches --memory, the code that did
# it fails with the cap's message and the process lives:
#   - a global array grown by every job (the script a new user ran into:
#     it crashed LuaJIT inside compiled code), at 16, 32 and 64 MiB;
#   - a state that keeps its data from job to job is replaced by a fresh
#     one (logged once, counted), so later jobs do not all fail;
#   - many allocation shapes (hash growth, string building, closures,
#     coroutines, a compiled loop, cjson, a script that catches the error
#     with pcall and goes on) each fail their job and only it;
#   - the top level, init(), produce(), labels() and done() over the cap
#     give a clear error naming the cap, never a crash.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
RUN_LIMIT=240

no_crash() { # NAME: nothing on stderr that says the process died
    expect_no_grep "$1: no crash" 'Segmentation|SEGV|AddressSanitizer|Aborted|panic|PANIC' "$ERR"
    if [ "$RC" -ge 124 ]; then fail "$1: exit code $RC (killed or crashed)"; else pass "$1: exited $RC"; fi
}

# -- the user's script: one global array grows by 1,000 strings a job
cat >grow.lua <<'EOF'
keep = {}
function produce(push) for n = 1, 400 do push({ n = n }) end end
function handle(job)
  for i = 1, 1000 do keep[#keep + 1] = string.rep("x", 200) .. job.n .. ":" .. i end
end
EOF
for mem in 16 32 64; do
    run_shoal "grow$mem" run grow.lua --workers 1 --memory "$mem" --listen off --quiet \
        --summary-json "grow$mem.json"
    no_crash "grow, --memory $mem"
    expect_eq "grow, --memory $mem: every job succeeds (the state is replaced, the failed attempt retried)" \
        "$(json "grow$mem.json" .ok)" 400
done
expect_ge "grow, --memory 16: the cap was hit and retried" "$(json grow16.json .retried)" 1
expect_eq "grow, --memory 16: every failed attempt names the cap" \
    "$(json grow16.json '[.errors[] | select(.message | test("grow.lua:4: exceeded the Lua memory cap of 16 MiB")) | .count] | add')" \
    "$(json grow16.json .retried)"
expect_eq "the replacement is logged once" \
    "$(grep -c 'was replaced by a fresh one' "$T/grow16.err")" 1

# without retries, only the attempt that hit the cap fails: 130 ok then 270
# failed before, when the state stayed full
run_shoal grow_noretry run grow.lua --workers 1 --memory 32 --retries 0 --listen off --quiet \
    --summary-json noretry.json
no_crash "grow, no retries"
expect_le "grow, no retries: only the attempts that hit the cap failed" "$(json noretry.json .failed)" 6
expect_ge "grow, no retries: later jobs run in a fresh state" "$(json noretry.json .ok)" 394

# the replacement is counted per worker in /metrics
cat >grow_slow.lua <<'EOF'
keep = {}
function produce(push) for n = 1, 300 do push({ n = n }) end end
function handle(job)
  for i = 1, 1000 do keep[#keep + 1] = string.rep("x", 200) .. job.n .. ":" .. i end
  if job.n == 300 then shoal.sleep(30) end
end
EOF
PORT=$(free_port)
start_bg metrics "$SHOAL" run grow_slow.lua --workers 1 --memory 16 --retries 0 \
    --listen "127.0.0.1:$PORT" --quiet --timeout 60
if wait_for "curl -sf http://127.0.0.1:$PORT/metrics | grep -q '^shoal_lua_states_replaced_total{worker=\"1\"} [1-9]'" 120; then
    pass "shoal_lua_states_replaced_total counts the replacements"
else
    fail "shoal_lua_states_replaced_total counts the replacements" \
        "$(curl -s "http://127.0.0.1:$PORT/metrics" | grep replaced)"
fi
kill -INT "$BG_PID" 2>/dev/null
kill -INT "$BG_PID" 2>/dev/null

# -- allocation shapes: each job goes over the cap and fails alone
shape() { # NAME BODY: a handle() body run by 4 jobs, each over a 16 MiB cap
    cat >"$1.lua" <<EOF
function produce(push) for n = 1, 4 do push({ n = n }) end end
function handle(job)
$2
end
EOF
}
shape hash 'for i = 1, 1e7 do hkeep = hkeep or {}; hkeep["k" .. job.n .. ":" .. i] = i end'
shape concat 'local s = "" for i = 1, 1e7 do s = s .. "xxxxxxxxxx" end'
shape compiled 'local t = {} for i = 1, 1e9 do t[i] = i end'
shape tables 'local t = {} for i = 1, 1e9 do t[i] = { i } end'
shape reps 'local t = {} for i = 1, 1000 do t[i] = string.rep("x", i * 65536) end'
shape closures 'local t = {} for i = 1, 1e8 do local x = i; t[i] = function() return x end end'
shape coroutines 'local t = {} for i = 1, 1e8 do t[i] = coroutine.create(function() end) end'
shape cjson 'local t = {} for i = 1, 1e5 do t[i] = { a = i, b = "xxxxxxxxxxxxxxxx" } end
  local s = shoal.json.encode(t); local u = {} for i = 1, 1000 do u[i] = shoal.json.decode(s) end'
shape pcall_on 'local t = {} for j = 1, 50 do pcall(function() for i = 1, 1e8 do t[#t + 1] = { i } end end) end'
shape concat_table 'local parts = {} for i = 1, 1e8 do parts[i] = tostring(i) end local s = table.concat(parts)'
for name in hash concat compiled tables reps closures coroutines cjson pcall_on concat_table; do
    run_shoal "$name" run "$name.lua" --workers 1 --concurrency 2 --memory 16 --retries 0 \
        --listen off --quiet --summary-json "$name.json"
    no_crash "$name"
    expect_eq "$name: every job failed" "$(json "$name.json" .failed)" 4
    expect_eq "$name: each with the cap's message" \
        "$(json "$name.json" '[.errors[] | select(.message | test("exceeded the Lua memory cap of 16 MiB")) | .count] | add')" 4
done

# -- outside handle(): clear errors, exit 3, no crash
cat >top.lua <<'EOF'
big = {}
for i = 1, 1e8 do big[i] = {} end
function handle(job) end
EOF
cat >init.lua <<'EOF'
big = {}
function init() for i = 1, 1e9 do big[i] = i end end
function produce(push) push({}) end
function handle(job) end
EOF
cat >produce.lua <<'EOF'
function produce(push) push({}) local t = {} for i = 1, 1e9 do t[i] = "x" .. i end end
function handle(job) end
EOF
cat >done.lua <<'EOF'
function produce(push) push({}) end
function handle(job) end
function done(stats) local t = {} for i = 1, 1e9 do t[i] = {} end end
EOF
for name in top init produce done; do
    run_shoal "$name" run "$name.lua" --workers 1 --memory 16 --listen off --quiet
    no_crash "$name"
    expect_eq "$name: exit 3 (script error)" "$RC" 3
    expect_grep "$name: the error names the cap and the script line" \
        "$name.lua:[0-9]+: exceeded the Lua memory cap of 16 MiB" "$ERR"
done

cat >labels.lua <<'EOF'
options = { metric_labels = { "site" } }
function produce(push) for n = 1, 5 do push({ n = n }) end end
function handle(job) end
function labels(job, outcome) local t = {} for i = 1, 1e8 do t[i] = {} end return { site = "a" } end
EOF
run_shoal labels run labels.lua --workers 1 --memory 16 --listen off --summary-json labels.json
no_crash "labels"
expect_eq "labels over the cap: the jobs themselves still succeed" "$(json labels.json .ok)" 5
expect_grep "labels over the cap: the failure is reported with the cap's message" \
    'labels.lua:4: exceeded the Lua memory cap of 16 MiB' "$ERR"

finish
