#!/usr/bin/env bash
# test_prometheus.sh - a real Prometheus (Debian's) scrapes a running shoal and
# answers the queries users of the Go-pool set-up already have, plus the
# script's own metric, a custom label from labels() and the process metrics.
# promtool checks the exposition in both formats first.
#
# shoal runs examples/site_metrics.lua against the demo site it serves itself,
# rechecking every page each second, so the counters keep moving while
# Prometheus scrapes every second.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    fail "prometheus installed" "apt-get install prometheus (scripts/test installs it)"
    finish
fi

port=$(free_port)
# traces on (to a collector that is not there: the spans are sampled all the
# same), so job_duration_seconds carries exemplars
start_bg shoal "$SHOAL" run "$SHOAL_ROOT/examples/site_metrics.lua" --workers 2 --quiet \
    --duration 120 --listen "127.0.0.1:$port" --otlp-endpoint http://127.0.0.1:1 \
    -- "http://127.0.0.1:$port/demo/" 1
SHOAL_PID=$BG_PID
wait_port "$port" 20 || { fail "shoal listens"; finish; }
M="http://127.0.0.1:$port/metrics"
OM='Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5'

# --- the exposition itself -------------------------------------------------
wait_for "curl -sf '$M' | grep -q '^site_page_checks_total{'" 20 ||
    fail "script metric appears in /metrics"
curl -sf -D text.h -o text.prom "$M"
curl -sf -D om.h -o om.prom -H "$OM" "$M"
expect_grep "text format content type" 'text/plain; version=0.0.4' text.h
expect_grep "OpenMetrics content type when asked" 'application/openmetrics-text; version=1.0.0' om.h
if promtool check metrics <text.prom >promtool.out 2>&1; then
    pass "promtool accepts the text format"
else
    fail "promtool accepts the text format" "$(head -5 promtool.out)"
fi
# promtool reads the 0.0.4 text format only. The OpenMetrics body, less its
# "# EOF" and exemplars, must still parse; its lint findings can only be the counters
# whose HELP names the family without _total, as OpenMetrics does.
# Exemplars (" # {trace_id=...} v ts") are OpenMetrics only: Prometheus
# itself reads them below; promtool gets the samples without them.
sed -e '/^# EOF$/d' -e 's/ # {.*$//' om.prom | promtool check metrics >promtool-om.out 2>&1
if grep -q 'error' promtool-om.out; then
    fail "promtool parses the OpenMetrics body" "$(head -3 promtool-om.out)"
else
    pass "promtool parses the OpenMetrics body"
fi
grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*_total no help text$' promtool-om.out >om-other.out
expect_eq "its only lint findings are the _total counters' HELP" "$(cat om-other.out)" ""
expect_eq "OpenMetrics ends with # EOF" "$(tail -n 1 om.prom)" "# EOF"
expect_grep "OpenMetrics names the counter family without _total" '^# TYPE jobs counter$' om.prom
expect_grep "text names the counter family with _total" '^# TYPE jobs_total counter$' text.prom
expect_grep "custom labels on jobs_total" '^jobs_total{status="success",site="127.0.0.1",kind="discover"} [0-9]' text.prom

# --- Prometheus ---------------------------------------------------------------
pport=$(free_port)
cat >prometheus.yml <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: shoal
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
start_bg prometheus prometheus --config.file=prometheus.yml --storage.tsdb.path=data \
    --web.listen-address="127.0.0.1:$pport" --enable-feature=exemplar-storage \
    --log.level=warn
wait_port "$pport" 30 || { fail "prometheus starts" "$(tail -5 prometheus.err 2>/dev/null)"; finish; }
P="http://127.0.0.1:$pport/api/v1"

# q QUERY: the first sample's value, "" if the result is empty
q() { curl -sf --get "$P/query" --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // ""'; }
# n QUERY: how many series the result has
n() { curl -sf --get "$P/query" --data-urlencode "query=$1" | jq -r '.data.result | length'; }

wait_for '[ "$(q up)" = 1 ]' 30 || fail "prometheus scrapes shoal (up == 1)" \
    "$(curl -s "$P/targets" | jq -c '.data.activeTargets[0] | {health, lastError}')"
# rate() over [1m] needs two scrapes of a moving counter
wait_for '[ -n "$(q "rate(jobs_total{status=\"success\"}[1m]) > 0")" ]' 30

expect_ge "jobs_total has series" "$(n 'jobs_total')" 2
expect_gt "rate(jobs_total{status=\"success\"}[1m])" "$(q 'sum(rate(jobs_total{status="success"}[1m]))')" 0
p95=$(q 'histogram_quantile(0.95, sum by (le) (rate(job_duration_seconds_bucket[1m])))')
expect_gt "histogram_quantile(0.95, rate(job_duration_seconds_bucket[1m])) is a time" "$p95" 0
expect_lt "p95 job duration is below the 10 s timeout" "$p95" 10
# unaggregated, one answer per (site, kind): the rechecks' is a number (the
# discovery jobs stopped, so theirs may be NaN)
p95_each=$(curl -sf --get "$P/query" \
    --data-urlencode 'query=histogram_quantile(0.95, rate(job_duration_seconds_bucket{kind="recheck"}[1m]))' |
    jq -r '.data.result[0].value[1] // ""')
expect_gt "the seed's exact query answers, per custom label set" "$p95_each" 0
expect_ge "jobs_queue_depth" "$(q 'jobs_queue_depth')" 0
expect_eq "workers_active" "$(q 'workers_active')" 2
expect_gt "script-defined metric site_page_checks_total" \
    "$(q 'sum(site_page_checks_total{code="200"})')" 0
expect_ge "script histogram site_page_bytes" "$(n 'site_page_bytes_bucket')" 6
expect_gt "custom label kind from labels()" "$(q 'sum(jobs_total{kind="recheck"})')" 0
expect_gt "process_resident_memory_bytes" "$(q 'process_resident_memory_bytes')" 1000000
expect_gt "process_cpu_seconds_total" "$(q 'process_cpu_seconds_total')" 0
expect_gt "process_open_fds" "$(q 'process_open_fds')" 3
expect_gt "process_start_time_seconds is recent" "$(q 'process_start_time_seconds')" \
    "$(($(date +%s) - 600))"
expect_gt "HTTP client requests by code" "$(q 'sum(http_client_requests_total{code="404"})')" 0
expect_gt "Lua GC steps are measured" "$(q 'sum(shoal_lua_gc_step_seconds_count)')" 0
# Prometheus asks for OpenMetrics first and parsed it: the metadata names
# the counter family "jobs", as only the OpenMetrics answer does
expect_eq "Prometheus scraped OpenMetrics" \
    "$(curl -sf "$P/metadata?metric=jobs" | jq -r '.data.jobs[0].type // ""')" counter
now=$(date +%s)
exq='query=job_duration_seconds_bucket'
wait_for "curl -sf --get '$P/query_exemplars' --data-urlencode '$exq' --data-urlencode start=$((now - 300)) --data-urlencode end=$((now + 300)) | jq -e '[.data[].exemplars[]] | length > 0' >/dev/null" 20
ex=$(curl -sf --get "$P/query_exemplars" --data-urlencode "$exq" \
    --data-urlencode start=$((now - 300)) --data-urlencode end=$((now + 300)) |
    jq -r '[.data[].exemplars[].labels.trace_id][0] // ""')
if [[ $ex =~ ^[0-9a-f]{32}$ ]]; then
    pass "the exemplars API returns job_duration_seconds exemplars with a trace_id"
else
    fail "the exemplars API returns job_duration_seconds exemplars with a trace_id" "got '$ex'"
fi
expect_eq "scrapes keep working" "$(q 'up')" 1

kill -INT "$SHOAL_PID" 2>/dev/null
wait_exit "$SHOAL_PID" 20 || fail "shoal exits on SIGINT"
finish
