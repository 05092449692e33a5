#!/usr/bin/env bash
# test_profiles.sh - CPU profiles as a user opens them: `go tool pprof`
# reads the files --profile-dir writes; a CPU-heavy script's own Lua
# function is among the top functions, by name and line, above the
# engine's C functions (named too: the loop, LuaJIT's resume, libc);
# samples taken inside a traced job carry its span id as profile_id and
# the span says so (pyroscope.profile.id); Ctrl-C during profiling ends
# cleanly with the last window written.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

if ! command -v go >/dev/null; then
    fail "go tool pprof is installed (Debian golang-go)"
    finish
fi
export GOCACHE=$T/gocache GOFLAGS=-mod=mod HOME=$T

cat >burn.lua <<'EOF'
-- every job spends its CPU in burn(), a Lua function the JIT compiles
local function burn(n)
  local s = 0
  for i = 1, n do s = s + (i % 7) * (i % 13) end
  return s
end
function produce(push)
  for i = 1, tonumber(shoal.args[1]) do push({n = i}) end
end
function handle(job)
  local s = burn(200000) -- not a tail call: handle() stays on the stack
  return s
end
EOF

# -- files for go tool pprof
run_shoal burn run burn.lua --listen off --quiet --workers 2 --profile-dir "$T/prof" \
    --profile-interval 1 --summary-json burn.json -- 3000
expect_eq "profiled run: exit 0" "$RC" 0
NFILES=$(ls prof/cpu-*.pb.gz 2>/dev/null | wc -l)
expect_ge "one profile file per second of the run (and the last window)" "$NFILES" 2
expect_eq "the summary counts the profiles written" "$(json burn.json .telemetry.profiles.exported)" "$NFILES"
go tool pprof -top -nodecount=40 prof/cpu-*.pb.gz >top.txt 2>top.err
expect_eq "go tool pprof reads every file" "$?" 0
go tool pprof -raw prof/cpu-*.pb.gz >raw.txt 2>raw.err
expect_grep "the script's Lua function is there by name, file and line" 'burn burn\.lua:[0-9]+' top.txt
expect_grep "the engine's loop is there by name" 'worker_main' raw.txt
expect_grep "the script's caller is there too" 'handle burn\.lua:[0-9]+' raw.txt
# a stack reads root to leaf: the engine's call into Lua, then the script
go tool pprof -traces prof/cpu-*.pb.gz >traces.txt 2>&1
# -traces prints each stack leaf first, one frame a line, stacks apart by -----
awk '/^-+\+/ {if (st != "") print st; st = ""; next} {st = st " " $0} END {print st}' \
    traces.txt >stacks.txt
expect_grep "the Lua frames sit on the engine's call into Lua (burn, handle, ..., resume, enter_lua, worker_main)" \
    'burn.*handle.*resume.*enter_lua.*worker_main' stacks.txt
expect_grep "libc's functions are named" 'start_thread|clone3' raw.txt
# flat share of the Lua function: the script is almost all burn()
BURN_PCT=$(awk '/burn burn\.lua/ {gsub("%", "", $2); s += $2} END {print s + 0}' top.txt)
expect_ge "burn() holds most of the CPU (flat %)" "$BURN_PCT" 40
go tool pprof -tags prof/cpu-*.pb.gz >tags.txt 2>&1
expect_grep "samples are labelled by worker" 'worker' tags.txt
expect_grep "samples are labelled by thread" 'thread' tags.txt

# -- span profiles: samples inside a traced job carry its span id
cat >spanburn.lua <<'EOF'
local function burn(n)
  local s = 0
  for i = 1, n do s = s + (i % 7) * (i % 13) end
  return s
end
function produce(push) for i = 1, 200 do push({n = i}) end end
function handle(job) local s = burn(2000000) return s end
EOF
RPORT=$(free_port)
start_bg rx node "$SHOAL_ROOT/spec/integration/otlp/receiver.js" --http-port "$RPORT" \
    --grpc-port 0 --out "$T/spans.jsonl"
if ! wait_for "grep -q listening $T/rx.out" 15; then
    fail "the OTLP receiver starts" "$(show_file "$T/rx.err" 5)"
    finish
fi
run_shoal span run spanburn.lua --listen off --quiet --workers 2 --profile-dir "$T/sprof" \
    --profile-interval 1 --otlp-endpoint "http://127.0.0.1:$RPORT"
expect_eq "traced and profiled run: exit 0" "$RC" 0
go tool pprof -tags sprof/cpu-*.pb.gz >stags.txt 2>&1
IDS=$(sed -n 's/^ *[0-9.]*[a-z]* *([^)]*): *\([0-9a-f]\{16\}\) *$/\1/p' stags.txt | sort -u)
if [ -z "$IDS" ]; then
    IDS=$(grep -oE '\b[0-9a-f]{16}\b' stags.txt | sort -u)
fi
expect_ge "samples carry profile_id labels" "$(printf '%s\n' $IDS | grep -c .)" 5
jq -r '.request.resourceSpans[].scopeSpans[].spans[] | select(.name == "process_job") |
       (.attributes[] | select(.key == "pyroscope.profile.id") | .value.stringValue) + " " + .spanId' \
    spans.jsonl >span_ids.txt 2>/dev/null
expect_eq "every process_job span names its profile id, equal to its span id" \
    "$(awk '$1 != $2' span_ids.txt | wc -l)/$(wc -l <span_ids.txt)" "0/200"
MATCH=0
for id in $IDS; do grep -q "^$id " span_ids.txt && MATCH=$((MATCH + 1)); done
expect_ge "the profile_id labels are those spans' ids" "$MATCH" 5

# -- Pyroscope: the same run pushed to /ingest, decoded by pprof-format
start_bg pyro node "$SHOAL_ROOT/spec/integration/pyroscope/receiver.js" --port 0 --out "$T/pyro.jsonl"
if ! wait_for "grep -q 'listening port=' $T/pyro.out" 15; then
    fail "the Pyroscope receiver starts" "$(show_file "$T/pyro.err" 5)"
else
    PPORT=$(sed -n 's/.*listening port=\([0-9]*\).*/\1/p' pyro.out)
    cat >pushburn.lua <<'EOF'
local function burn(n) local s = 0 for i = 1, n do s = s + (i % 7) * (i % 13) end return s end
function produce(push) for i = 1, 1e9 do push({n = i}) end end
function handle(job) local s = burn(1000000) return s end
EOF
    # a fixed 2.5 s, so at least two windows of 1 s end
    run_shoal push run pushburn.lua --listen off --quiet --workers 2 --profile-interval 1 \
        --duration 2.5 --pyroscope "http://127.0.0.1:$PPORT" --service burner \
        --otlp-endpoint "http://127.0.0.1:$RPORT" --summary-json push.json
    expect_eq "pushed run: exit 0" "$RC" 0
    expect_eq "no request broke Pyroscope's rules" "$(grep -c violation pyro.jsonl)" 0
    NPUSH=$(grep -c '"app"' pyro.jsonl)
    expect_ge "a profile a second reached /ingest" "$NPUSH" 2
    expect_eq "the summary counts them as exported" "$(json push.json .telemetry.profiles.exported)" "$NPUSH"
    expect_eq "application and service_name are the service" \
        "$(jq -r 'select(.app) | .app + " " + .labels.service_name' pyro.jsonl | sort -u)" "burner burner"
    expect_eq "service_instance_id is the process's id (the summary's instance)" \
        "$(jq -r 'select(.app) | .labels.service_instance_id' pyro.jsonl | sort -u)" \
        "$(json push.json .instance)"
    expect_ge "samples are labelled by worker" \
        "$(jq '[select(.app) | .samples[] | select(.labels.worker == "1" or .labels.worker == "2")] | length' pyro.jsonl | awk '{s += $1} END {print s}')" 1
    expect_ge "samples of traced jobs carry profile_id" \
        "$(jq '[select(.app) | .samples[] | select((.labels.profile_id // "") | test("^[0-9a-f]{16}$"))] | length' pyro.jsonl | awk '{s += $1} END {print s}')" 5
    expect_ge "the script's function is in the pushed stacks" \
        "$(jq '[select(.app) | .samples[] | select(.stack | any(test("^burn pushburn\\.lua:")))] | length' pyro.jsonl | awk '{s += $1} END {print s}')" 1
fi

# -- Ctrl-C while profiling: clean end, last window written
cat >forever.lua <<'EOF'
local function burn(n) local s = 0 for i = 1, n do s = s + i % 3 end return s end
function produce(push) for i = 1, 1e9 do push({n = i}) end end
function handle(job) local s = burn(100000) return s end
EOF
start_bg int "$SHOAL" run forever.lua --listen off --quiet --profile-dir "$T/iprof" \
    --profile-interval 60 --summary-json int.json
PID=$BG_PID
wait_for "[ -s $T/int.err ] || kill -0 $PID" 5
sleep_until_cpu() { wait_for "[ \$(awk '{print \$14 + \$15}' /proc/$PID/stat 2>/dev/null || echo 0) -ge 100 ]" 20; }
sleep_until_cpu
kill -INT "$PID"
if wait_exit "$PID" 20; then pass "Ctrl-C while profiling: exits"; else fail "Ctrl-C while profiling: exits"; kill -KILL "$PID"; fi
expect_eq "Ctrl-C while profiling: exit 130, no crash" "$BG_RC" 130
expect_eq "Ctrl-C while profiling: the last window is written" "$(ls iprof/cpu-*.pb.gz 2>/dev/null | wc -l)" 1
go tool pprof -top iprof/cpu-*.pb.gz >itop.txt 2>&1
expect_grep "Ctrl-C while profiling: that profile reads" 'burn forever\.lua' itop.txt

finish
