#!/usr/bin/env bash
# test_queue_features.sh - the queue and run controls a script relies on:
# dedup by key, delay=, priority=, producer backpressure (--queue-size),
# --rate, --max-jobs, --duration and --watch.
#
# Timings are correctness bounds (a delayed job never starts early, a rate
# is never exceeded), with generous upper bounds so a busy machine passes.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# -- dedup by key, from produce() and from handle()
cat >dedup.lua <<'EOF'
local function note(what)
  local f = assert(io.open("dedup.notes", "a"))
  f:write(what, "\n")
  f:close()
end
function produce(push)
  push({n = 1}, {key = "k1"})
  local id, err = push({n = 1, again = true}, {key = "k1"})
  note("producer dup: " .. tostring(id) .. " " .. tostring(err))
  push({n = 2}, {key = "k2"})
  push({n = 3})             -- no key: never deduplicated
  push({n = 3})
end
function handle(job)
  note("ran " .. job.n)
  if job.n == 2 then
    local id, err = shoal.push({n = 1, from = "handle"}, {key = "k1"})
    note("handle dup: " .. tostring(id) .. " " .. tostring(err))
    shoal.push({n = 4}, {key = "k4"})
    local id2, err2 = shoal.push({n = 4, again = true}, {key = "k4"})
    note("handle dup2: " .. tostring(id2) .. " " .. tostring(err2))
  end
end
EOF
run_shoal dedup run dedup.lua --workers 2 --listen off --quiet --summary-json dedup.json
expect_rc "dedup run: exit 0" 0
expect_eq "each key ran once, keyless jobs every time (ran: 1 2 3 3 4)" \
    "$(grep '^ran ' dedup.notes | sort | awk '{print $2}' | tr '\n' ' ')" "1 2 3 3 4 "
expect_eq "summary: duplicates == 3" "$(json dedup.json .duplicates)" 3
expect_eq "summary: ok == 5" "$(json dedup.json .ok)" 5
expect_eq "summary: pushed == 5" "$(json dedup.json .pushed)" 5
expect_grep "push of a seen key from produce() returns nil, \"duplicate\"" '^producer dup: nil duplicate$' dedup.notes
expect_grep "push of a key produce() used, from handle(): nil, \"duplicate\"" '^handle dup: nil duplicate$' dedup.notes
expect_grep "push of a key handle() used, from handle(): nil, \"duplicate\"" '^handle dup2: nil duplicate$' dedup.notes
expect_grep "text summary reports duplicates" 'duplicate' "$OUT"

# -- nothing to do is not an error
cat >empty.lua <<'EOF'
function produce(push) end
function handle(job) error("never called") end
EOF
run_shoal empty run empty.lua --listen off --quiet --summary-json empty.json
expect_rc "produce() that pushes nothing: exit 0" 0
expect_eq "empty run: ok 0, failed 0" "$(json empty.json '"\(.ok) \(.failed)"')" "0 0"
expect_lt "empty run ends at once (< 3 s)" "$WALL" 3

# -- a job's data crosses states unchanged (it travels as JSON)
cat >roundtrip.lua <<'EOF'
local function sample()
  return {
    max_int = 2^53 - 1,                 -- the largest integer a double holds exactly
    id = 1234567890123456,              -- a 16-digit id
    stamp = 1795600158.123456,          -- an epoch timestamp in microseconds
    tenth = 0.1, tiny = -1.5e-300, neg = -42,
    text = "a\0b\255\n\"quoted\" \226\130\172",
    nested = {x = {1, 2, {y = true, z = false}}},
  }
end
local function same(a, b, path)
  if type(a) ~= type(b) then error(path .. ": " .. type(a) .. " became " .. type(b), 0) end
  if type(a) == "table" then
    for k, v in pairs(a) do same(v, b[k], path .. "." .. tostring(k)) end
    for k in pairs(b) do if a[k] == nil then error(path .. "." .. tostring(k) .. " appeared", 0) end end
  elseif a ~= b then
    error(string.format("%s: %.17g became %.17g", path, tonumber(a) or 0, tonumber(b) or 0), 0)
  end
end
function produce(push) push(sample()) end
function handle(job)
  local ok, err = pcall(same, sample(), job, "job")
  if not ok then error(err, 0) end
end
EOF
run_shoal roundtrip run roundtrip.lua --workers 1 --retries 0 --listen off --quiet --summary-json roundtrip.json
if [ "$RC" = 0 ]; then
    pass "job data (big integers, timestamps, binary strings, nesting) arrives unchanged"
else
    fail "job data (big integers, timestamps, binary strings, nesting) arrives unchanged" \
        "exit $RC; $(json roundtrip.json '.errors[].message' | head -n 3)"
fi

# -- counts stay exact with many jobs on two workers: 200,000 pushes over
# 150,000 keys (50,000 duplicates). Every job whose n is a multiple of 1000
# pushes {n = -n} under key "child"..n: the 150 first-generation jobs make
# 150 children (child1000, ...), the children (n = -1000, ...) make 150
# grandchildren (child-1000, ...), and those push child1000, ... again: 150
# more duplicates. 150,000 + 150 + 150 jobs in all.
cat >load.lua <<'EOF'
function produce(push) for i = 1, 200000 do push({n = i}, {key = i % 150000}) end end
function handle(job)
  if job.n % 1000 == 0 then shoal.push({n = -job.n}, {key = "child" .. job.n}) end
end
EOF
run_shoal load run load.lua --workers 2 --listen off --quiet --summary-json load.json
expect_rc "200,000 pushes: exit 0" 0
expect_eq "200,000 pushes: ok, pushed, duplicates exact" \
    "$(json load.json '"\(.ok) \(.pushed) \(.duplicates) \(.started) \(.queued_left)"')" "150300 150300 50150 150300 0"

# -- delay=: a job never starts before its delay, from produce() or handle()
cat >delay.lua <<'EOF'
function produce(push)
  push({kind = "delayed", t = shoal.now(), delay = 0.5}, {delay = 0.5})
  push({kind = "now", t = shoal.now(), delay = 0})
end
function handle(job)
  local waited = shoal.now() - job.t
  shoal.log.info("waited", {kind = job.kind, waited = string.format("%.3f", waited)})
  if job.kind == "now" then
    shoal.push({kind = "child", t = shoal.now(), delay = 0.3}, {delay = 0.3})
  end
end
EOF
run_shoal delay run delay.lua --workers 2 --listen off --quiet --summary-json delay.json
expect_rc "delay run: exit 0" 0
expect_eq "all 3 jobs ran (the run waits for delayed jobs)" "$(json delay.json .ok)" 3
# the fields of a log line come in any order
waited() { grep 'msg=waited' delay.err | grep -E "(^| )kind=$1( |$)" | sed -n 's/.* waited=\(-\{0,1\}[0-9.]*\).*/\1/p' | head -n1; }
W=$(waited delayed)
expect_ge "a job pushed with delay 0.5 starts >= 0.5 s later" "${W:-0}" 0.5
expect_lt "... and not much later (< 1.5 s)" "${W:-99}" 1.5
W=$(waited child)
expect_ge "a job pushed from handle() with delay 0.3 starts >= 0.3 s later" "${W:-0}" 0.3
expect_lt "... and not much later (< 1.3 s)" "${W:-99}" 1.3
W=$(waited now)
expect_lt "a job without delay starts at once (< 0.3 s)" "${W:-99}" 0.3
if [ -z "$W" ] || [ -z "$(waited delayed)" ] || [ -z "$(waited child)" ]; then show_file delay.err; fi

# -- priority=: higher priority runs first among queued jobs
cat >prio.lua <<'EOF'
function produce(push)
  push({name = "gate"})        -- occupies the only slot while the rest queue up
  shoal.sleep(0.1)
  for i = 1, 5 do
    push({name = "low" .. i}, {priority = 0})
    push({name = "high" .. i}, {priority = 10})
  end
end
function handle(job)
  local f = assert(io.open("prio.order", "a"))
  f:write(job.name, "\n")
  f:close()
  if job.name == "gate" then shoal.sleep(0.5) end
end
EOF
run_shoal prio run prio.lua --workers 1 --concurrency 1 --listen off --quiet
expect_rc "priority run: exit 0" 0
expect_eq "after the gate, all high-priority jobs ran before any low one" \
    "$(sed 's/[0-9]*$//' prio.order | uniq | tr '\n' ' ')" "gate high low "

# -- backpressure: produce() waits while --queue-size jobs are queued
cat >bp.lua <<'EOF'
local function note(line)
  local f = assert(io.open("bp.log", "a"))
  f:write(line, "\n")
  f:close()
end
function produce(push)
  for i = 1, 1000 do
    push({n = i})
    note("push " .. i)
  end
end
function handle(job)
  note("start " .. job.n)
  shoal.sleep(0.001)
end
EOF
run_shoal bp run bp.lua --workers 1 --concurrency 4 --queue-size 10 --listen off --quiet --summary-json bp.json
expect_rc "--queue-size 10 with 1,000 jobs: exit 0" 0
expect_eq "all 1,000 jobs done" "$(json bp.json .ok)" 1000
# when push i returns, at most 10 jobs wait in the queue (plus one a worker
# holds and a little slack for log order): at least i - 14 have started
WORST=$(awk '/^start/ {s++} /^push/ {d = $2 - s; if (d > m) m = d} END {print m + 0}' bp.log)
expect_le "the producer never ran more than queue-size ahead (pushed - started <= 14)" "$WORST" 14
expect_eq "every push was logged" "$(grep -c '^push' bp.log)" 1000

# -- --rate: at most N starts per second across workers
cat >rate.lua <<'EOF'
function produce(push) for i = 1, 100 do push({n = i}) end end
function handle(job)
  shoal.log.info("start", {at = string.format("%.4f", shoal.now())})
end
EOF
run_shoal rate run rate.lua --workers 2 --rate 50 --listen off --quiet --summary-json rate.json
expect_rc "--rate 50: exit 0" 0
expect_eq "--rate 50: all 100 jobs ran" "$(json rate.json .ok)" 100
expect_ge "--rate 50 with 100 jobs takes >= 1.8 s" "$WALL" 1.8
expect_lt "... but not much more (< 6 s)" "$WALL" 6
sed -n 's/.*msg=start .*at=\([0-9.]*\).*/\1/p' "$ERR" | sort -n >rate.starts
MAXWIN=$(awk '{t[NR] = $1} END {j = 1; m = 0; for (i = 1; i <= NR; i++) {while (t[i] - t[j] >= 1.0) j++; if (i - j + 1 > m) m = i - j + 1} print m}' rate.starts)
expect_le "no 1-second window has more than 50 starts (+1 burst)" "$MAXWIN" 51

# -- --max-jobs
cat >many.lua <<'EOF'
function produce(push) for i = 1, 100 do push({n = i}) end end
function handle(job) shoal.sleep(0.05) end
EOF
run_shoal maxjobs run many.lua --workers 2 --concurrency 8 --max-jobs 10 --listen off --quiet --summary-json maxjobs.json
expect_rc "--max-jobs 10: exit 0" 0
expect_eq "--max-jobs 10: exactly 10 jobs finished" "$(json maxjobs.json '.ok + .failed')" 10
expect_eq "--max-jobs 10: exactly 10 jobs started" "$(json maxjobs.json .started)" 10
expect_eq "--max-jobs 10: stop reason max-jobs" "$(json maxjobs.json .stop_reason)" max-jobs

# -- --duration
cat >endless.lua <<'EOF'
function produce(push) for i = 1, 10000 do push({n = i}) end end
function handle(job) shoal.sleep(0.2) end
EOF
run_shoal duration run endless.lua --workers 2 --concurrency 4 --duration 1 --listen off --quiet --summary-json duration.json
expect_rc "--duration 1: exit 0" 0
expect_ge "--duration 1 runs about a second (>= 0.9 s)" "$WALL" 0.9
expect_lt "--duration 1 stops (in-flight jobs are 0.2 s: < 3 s)" "$WALL" 3
expect_eq "--duration: stop reason duration" "$(json duration.json .stop_reason)" duration
expect_eq "--duration: no job failed" "$(json duration.json .failed)" 0
expect_gt "--duration: jobs ran" "$(json duration.json .ok)" 10
expect_gt "--duration: jobs were left unrun" "$(json duration.json .queued_left)" 0

# -- --watch: a changed script is reloaded; a broken one is reported and the
# previous version keeps running
write_watch() { # VERSION BODY-LINE
    printf '%s\n' "function produce(push) shoal.log.info(\"produce ran\") for i = 1, 2000 do push({n = i}) end end" \
        "function handle(job) $2 shoal.log.info(\"marker\", {v = \"$1\"}) shoal.sleep(0.05) end" >watch.lua.tmp
    mv watch.lua.tmp watch.lua
}
write_watch v1 ""
start_bg watch "$SHOAL" run watch.lua --watch --workers 1 --concurrency 2 --duration 45 --listen off --quiet
PID=$BG_PID
if wait_for "grep -q 'v=v1' watch.err" 10; then pass "--watch: v1 runs"; else fail "--watch: v1 runs" "$(show_file watch.err 5)"; fi
write_watch v2 ""
if wait_for "grep -q 'v=v2' watch.err" 10; then
    pass "--watch: an edited handle() is picked up (v2 appears)"
else
    fail "--watch: an edited handle() is picked up (v2 appears)" "$(show_file watch.err 5)"
fi
printf '%s\n' "function produce(push) end" "function handle(job) return job +* 1 end" >watch.lua.tmp
mv watch.lua.tmp watch.lua
if wait_for "grep -q 'watch\\.lua:2' watch.err" 10; then
    pass "--watch: a broken edit is reported with file:line"
else
    fail "--watch: a broken edit is reported with file:line" "$(show_file watch.err 5)"
fi
N2=$(grep -c 'v=v2' watch.err)
if wait_for "[ \$(grep -c 'v=v2' watch.err) -ge $((N2 + 5)) ]" 10; then
    pass "--watch: after a broken edit, the previous handle() keeps running"
else
    fail "--watch: after a broken edit, the previous handle() keeps running" "$(show_file watch.err 5)"
fi
expect_eq "--watch: produce() ran once (the queue is kept across reloads)" "$(grep -c 'produce ran' watch.err)" 1
if kill -0 "$PID" 2>/dev/null; then
    pass "--watch: the run is still going after a broken edit"
    kill -TERM "$PID"
    wait_exit "$PID" 5
    expect_eq "--watch: SIGTERM then exits 130" "$BG_RC" 130
else
    fail "--watch: the run is still going after a broken edit" "$(show_file watch.err 5)"
fi

finish
