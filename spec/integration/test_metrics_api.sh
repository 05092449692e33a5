#!/usr/bin/env bash
# test_metrics_api.sh - shoal.metrics and the engine's metrics as a script and
# a scraper see them, through the real binary: exact totals from many jobs on
# two workers, custom labels from labels() (and what happens when it fails),
# the --max-series cap, --no-metrics, /readyz, and the declaration errors
# `shoal check` reports with the script's file:line.
#
# Scripts read their own /metrics from done(), after every job has finished,
# so the totals checked are final.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# ---------------------------------------------------------------- totals
cat >totals.lua <<'EOF'
options = { metric_labels = { "parity" } }
local hits = shoal.metrics.counter("test_hits_total", "hits", { "worker" })
local sizes = shoal.metrics.histogram("test_sizes", "sizes", {}, { 1, 10, 100 })
local level = shoal.metrics.gauge("test_level", "level")
local N = tonumber(shoal.args[2])

function produce(push)
  for i = 1, N do push({ i = i }) end
end

function handle(job)
  hits:inc({ worker = tostring(shoal.worker.id) })
  hits:inc(2, { worker = "all" })
  sizes:observe(job.i % 200)
  level:inc()
  if job.i % 7 == 0 then shoal.sleep(0.001) end
  level:dec()
  if job.i % 10 == 0 then error("ten") end
end

function labels(job, outcome)
  if job.i % 1000 == 0 then error("labels broke on purpose") end
  return { parity = job.i % 2 == 0 and "even" or "odd" }
end

function done(stats)
  local res = assert(shoal.http.get(shoal.args[1]))
  local f = assert(io.open("final.prom", "w"))
  f:write(res.body)
  f:close()
end
EOF
port=$(free_port)
run_shoal totals run totals.lua --workers 2 --retries 0 --quiet --listen "127.0.0.1:$port" \
    -- "http://127.0.0.1:$port/metrics" 20000
expect_eq "exit code: some jobs failed on purpose" "$RC" 1
# m NAME_AND_LABELS: the value of one series in final.prom
m() { awk -v k="$1" '$1 == k { print $2 }' final.prom; }
sum_workers=$(awk '/^test_hits_total\{worker="[12]"\}/ { s += $2 } END { print s }' final.prom)
expect_eq "counter from two workers sums exactly" "$sum_workers" 20000
expect_eq "inc(2) adds 2 each time" "$(m 'test_hits_total{worker="all"}')" 40000
expect_eq "histogram count" "$(m 'test_sizes_count')" 20000
expect_eq "histogram le=1 (0 and 1 of every 200)" "$(m 'test_sizes_bucket{le="1"}')" 200
expect_eq "histogram le=10" "$(m 'test_sizes_bucket{le="10"}')" 1100
expect_eq "histogram +Inf" "$(m 'test_sizes_bucket{le="+Inf"}')" 20000
expect_eq "histogram sum" "$(m 'test_sizes_sum')" "$((100 * 19900))"
expect_eq "gauge back to 0" "$(m 'test_level')" 0
# 2,000 jobs fail (i % 10 == 0, all even); for 20 of those (i % 1000 == 0)
# labels() fails too
expect_eq "jobs_total odd success" "$(m 'jobs_total{status="success",parity="odd"}')" 10000
expect_eq "jobs_total even success" "$(m 'jobs_total{status="success",parity="even"}')" 8000
expect_eq "jobs_total even failed" "$(m 'jobs_total{status="failed",parity="even"}')" 1980
fail_empty=$(m 'jobs_total{status="failed",parity=""}')
expect_eq "a failing labels() still counts the job, with empty labels" "$fail_empty" 20
expect_eq "job_duration_seconds counts every attempt" \
    "$(awk '/^job_duration_seconds_count/ { s += $2 } END { print s }' final.prom)" 20000
expect_eq "labels() failure logged once" "$(grep -c 'labels() failed' "$ERR")" 1
expect_grep "the log names the error and where" 'totals.lua:[0-9]*: labels broke on purpose' "$ERR"
expect_eq "workers_active is 0 once the workers have left" "$(m 'workers_active')" 0

# ---------------------------------------------------------------- runaway labels()
cat >slowlabels.lua <<'EOF'
options = { metric_labels = { "k" } }
function produce(push) for i = 1, 3 do push({ i = i }) end end
function handle(job) end
function labels(job, outcome)
  if job.i == 2 then while true do shoal.now() end end
  return { k = "v" }
end
function done()
  local res = assert(shoal.http.get(shoal.args[1]))
  local f = assert(io.open("slow.prom", "w")); f:write(res.body); f:close()
end
EOF
port=$(free_port)
run_shoal slowlabels run slowlabels.lua --workers 1 --timeout 0.5 --quiet \
    --listen "127.0.0.1:$port" -- "http://127.0.0.1:$port/metrics"
expect_eq "a runaway labels() does not stop the run" "$RC" 0
expect_grep "the watchdog stops it" 'labels\(\):.*time budget' "$ERR"
expect_grep "the other jobs keep their labels" '^jobs_total\{status="success",k="v"\} 2$' slow.prom
expect_grep "that job counts with an empty label" '^jobs_total\{status="success",k=""\} 1$' slow.prom

# ---------------------------------------------------------------- cardinality cap
cat >cap.lua <<'EOF'
local c = shoal.metrics.counter("test_keys_total", "keys", { "key" })
function produce(push) for i = 1, 50 do push({ i = i }) end end
function handle(job) c:inc({ key = "k" .. job.i }) end
function done()
  local res = assert(shoal.http.get(shoal.args[1]))
  local f = assert(io.open("cap.prom", "w")); f:write(res.body); f:close()
end
EOF
port=$(free_port)
run_shoal cap run cap.lua --workers 2 --max-series 10 --quiet --listen "127.0.0.1:$port" \
    -- "http://127.0.0.1:$port/metrics"
expect_eq "cap run exit code" "$RC" 0
expect_eq "10 series of their own" "$(grep -c '^test_keys_total{key="k' cap.prom)" 10
expect_grep "the rest fold into __overflow__" '^test_keys_total{key="__overflow__"} 40$' cap.prom
expect_grep "folds are counted" '^shoal_metrics_overflow_total{metric="test_keys_total"} 40$' cap.prom
expect_eq "the cap is warned about once" "$(grep -c 'reached 10 series' "$ERR")" 1

# ---------------------------------------------------------------- --no-metrics, /readyz
cat >ready.lua <<'EOF'
local c = shoal.metrics.counter("test_done_total", "done")
function produce(push) for i = 1, 20 do push({ i = i }) end end
function handle(job) c:inc() end
function done()
  local base = shoal.args[1]
  local m = assert(shoal.http.get(base .. "/metrics"))
  local r = assert(shoal.http.get(base .. "/readyz"))
  local f = assert(io.open("ready.prom", "w"))
  f:write(m.body, "readyz ", r.status, "\n")
  f:close()
end
EOF
port=$(free_port)
run_shoal nometrics run ready.lua --no-metrics --quiet --listen "127.0.0.1:$port" \
    -- "http://127.0.0.1:$port"
expect_eq "--no-metrics run exit code" "$RC" 0
expect_grep "--no-metrics: script metrics still count" '^test_done_total 20$' ready.prom
expect_grep "--no-metrics: engine job metrics stay 0" '^jobs_total\{status="success"\} 0$' ready.prom
expect_grep "/readyz answers 200 while the run is on" '^readyz 200$' ready.prom

# ---------------------------------------------------------------- declaration errors
check_err() { # NAME LUA REGEX: `shoal check` of LUA fails (3) with REGEX on stderr
    printf '%s\nfunction produce(push) end\nfunction handle(job) end\n' "$2" >bad.lua
    run_shoal check check bad.lua
    expect_eq "$1: exit 3" "$RC" 3
    expect_grep "$1: message" "$3" "$ERR"
}
check_err "bad name" 'shoal.metrics.gauge("2bad", "x")' \
    'bad.lua:1: shoal.metrics.gauge: bad metric name .2bad.'
check_err "counter without _total" 'shoal.metrics.counter("pages", "x")' \
    "bad.lua:1: .*must be named ..._total \(e.g. 'pages_total'\)"
check_err "engine name" 'shoal.metrics.counter("jobs_total", "x")' \
    "bad.lua:1: .*one of the engine's own metrics"
check_err "reserved label le" 'shoal.metrics.histogram("lat", "x", { "le" })' \
    "bad.lua:1: .*'le' is reserved"
check_err "redeclared differently" \
    'shoal.metrics.gauge("g1", "x", { "a" }); shoal.metrics.gauge("g1", "x", { "b" })' \
    'bad.lua:1: .*already declared as a gauge with other label names'
check_err "collision with an engine series" 'shoal.metrics.gauge("job_duration_seconds_count", "x")' \
    "bad.lua:1: .*share series names with the metric 'job_duration_seconds'"
check_err "bad buckets" 'shoal.metrics.histogram("h", "x", {}, { 2, 1 })' \
    'bad.lua:1: .*increasing order'
check_err "metric_labels without labels()" 'options = { metric_labels = { "site" } }' \
    'no labels\(job, outcome\) function'
check_err "metric_labels status" \
    'options = { metric_labels = { "status" } }; function labels() end' \
    "'status' is jobs_total's own label"

cat >misuse.lua <<'EOF'
local c = shoal.metrics.counter("m_total", "x", { "a" })
function produce(push) push({ n = 1 }) push({ n = 2 }) push({ n = 3 }) end
function handle(job)
  if job.n == 1 then c:inc(-1) end
  if job.n == 2 then c:inc({ b = "typo" }) end
  if job.n == 3 then c:observe(1) end
end
EOF
run_shoal misuse run misuse.lua --workers 1 --retries 0 --quiet --listen off
expect_eq "misuse fails the jobs" "$RC" 1
expect_grep "negative inc names the line" 'misuse.lua:4: counter:inc\(-1\): a counter only goes up' "$OUT"
expect_grep "unknown label names the line" "misuse.lua:5: counter:inc: 'b' is not a label of this metric" "$OUT"
expect_grep "wrong method names the line" 'misuse.lua:6: counter:observe: observe is for histograms' "$OUT"

finish
