#!/usr/bin/env bash
# test_otlp_metrics.sh - metrics as a collector receives them with
# --otlp-metrics (or OTEL_METRICS_EXPORTER=otlp). The receiver is the
# traces' one (spec/integration/otlp/receiver.js: @grpc/grpc-js and the
# OpenTelemetry JS project's generated protobuf code), which also serves
# MetricsService/Export and POST /v1/metrics, so what passes here is what a
# collector or Prometheus' OTLP receiver would accept.
#
# Over both transports, a short run (shorter than any interval) exports at
# exit: jobs_total by status equals the summary's counts, the
# job_duration_seconds histogram counts every attempt with the default
# bounds and carries exemplars with the jobs' trace ids, the script's own
# counter has its labels, the resource is the traces', every point is
# cumulative from the run's start. With OTEL_METRIC_EXPORT_INTERVAL=500 a
# longer run exports several times, its counters never going down; an
# interrupted run exports its summary's figures at exit. Points a
# collector refuses are warned about once and counted failed; a collector
# that is down costs a warning, once, and no wait; a preference for delta
# temporality is refused with a clear message.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

. "$SHOAL_ROOT/spec/integration/otlp/receiver.sh"
export OTEL_BSP_SCHEDULE_DELAY=100

# exports FILE: the metrics requests received, one per line, in order
exports() { jq -c 'select(.signal == "metrics") | .request' "$1"; }
# M NAME: jq filter for the Metric NAME of a request
M='def m($n): .resourceMetrics[].scopeMetrics[].metrics[] | select(.name == $n);
   def attr($k): ((.attributes // [])[] | select(.key == $k) | .value.stringValue) // null;'

# Jobs that take a moment (shoal.args[2] seconds); every tenth fails its
# first attempt, job 7 fails both: with --retries 1, N-1 ok, 1 failed, N/10+1
# retried. The script counts attempts by the job's parity.
cat >jobs.lua <<'EOF2'
local pages = shoal.metrics.counter("pages_total", "Pages the script handled", { "parity" })
function produce(push)
  for i = 1, tonumber(shoal.args[1]) do push({ i = i }) end
end
function handle(job)
  local pause = tonumber(shoal.args[2] or "0")
  if pause > 0 then shoal.sleep(pause) end
  pages:inc({ parity = job.i % 2 == 0 and "even" or "odd" })
  if job.i == 7 then error("job 7 always fails") end
  if job.i % 10 == 0 and shoal.job.attempt == 1 then error("a tenth job's first try") end
end
EOF2

# ---------------------------------------------------------------- at exit, both ways
N=60
receiver recv
for proto in http grpc; do
    if [ $proto = grpc ]; then
        export OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=grpc OTEL_EXPORTER_OTLP_PROTOCOL=grpc
        ep="http://127.0.0.1:$GPORT"
        inst=(--instance metrics-3) # given over gRPC, the default over HTTP
    else
        unset OTEL_EXPORTER_OTLP_METRICS_PROTOCOL OTEL_EXPORTER_OTLP_PROTOCOL
        ep="http://127.0.0.1:$HPORT"
        inst=()
    fi
    : >recv.jsonl
    run_shoal $proto run jobs.lua --workers 2 --quiet --listen off --retries 1 --retry-delay 0 \
        --otlp-endpoint "$ep" --otlp-metrics --summary-json $proto.json "${inst[@]}" -- $N
    expect_rc "$proto: run exit code (one job failed)" 1
    expect_grep "$proto: says where metrics go" "metrics go to http://127.0.0.1:[0-9]+/.* at exit" "$ERR"
    exports recv.jsonl >$proto.exports
    expect_eq "$proto: one export, at exit (the interval is 60 s)" "$(grep -c . $proto.exports)" 1
    last=$(tail -n 1 $proto.exports)
    echo "$last" >$proto.last
    ok=$(json $proto.json .ok)
    failed=$(json $proto.json .failed)
    retried=$(json $proto.json .retried)
    expect_eq "$proto: the summary's counts" "$ok $failed $retried" "$((N - 1)) 1 7"
    expect_eq "$proto: jobs_total by status is the summary's" \
        "$(jq -r "$M"' m("jobs_total") | .sum.dataPoints[] | "\(attr("status"))=\(.asDouble)"' $proto.last | sort | tr '\n' ' ')" \
        "failed=$failed success=$ok "
    expect_eq "$proto: jobs_total is a monotonic cumulative sum" \
        "$(jq -r "$M"' m("jobs_total") | .sum | "\(.isMonotonic) \(.aggregationTemporality)"' $proto.last)" \
        "true 2"
    expect_eq "$proto: job_duration_seconds counts every attempt" \
        "$(jq -r "$M"' m("job_duration_seconds") | .histogram.dataPoints | map(.count | tonumber) | add' $proto.last)" \
        "$((ok + failed + retried))"
    expect_eq "$proto: ... a cumulative histogram whose buckets add up to its count" \
        "$(jq -r "$M"' m("job_duration_seconds") | "\(.histogram.aggregationTemporality) \(.histogram.dataPoints[0] | (.bucketCounts | map(tonumber) | add) == (.count | tonumber))"' $proto.last)" \
        "2 true"
    expect_eq "$proto: ... with the default bounds, 50 us to 60 s" \
        "$(jq -c "$M"' m("job_duration_seconds") | .histogram.dataPoints[0] | [(.explicitBounds | length), .explicitBounds[0] == 0.00005, .explicitBounds[-1], (.bucketCounts | length)]' $proto.last)" \
        "[19,true,60,20]"
    expect_eq "$proto: ... and exemplars with the jobs' trace ids" \
        "$(jq -r "$M"' [m("job_duration_seconds") | .histogram.dataPoints[].exemplars[]? | select(.traceId | test("^[0-9a-f]{32}$"))] | length > 0' $proto.last)" \
        true
    expect_eq "$proto: the script's counter, with its labels" \
        "$(jq -r "$M"' m("pages_total") | .sum.dataPoints[] | "\(attr("parity"))=\(.asDouble)"' $proto.last | sort | tr '\n' ' ')" \
        "even=$((N / 2 + N / 10)) odd=$((N / 2 + 1)) "
    expect_eq "$proto: help is the description" \
        "$(jq -r "$M"' m("pages_total") | .description' $proto.last)" "Pages the script handled"
    expect_eq "$proto: a gauge is a Gauge" \
        "$(jq -r "$M"' m("workers_active") | .gauge.dataPoints | length' $proto.last)" 1
    expect_eq "$proto: resource service.name is the script's name" \
        "$(jq -r '.resourceMetrics[0].resource.attributes[] | select(.key == "service.name") | .value.stringValue' $proto.last)" \
        jobs
    got=$(jq -r '.resourceMetrics[].resource.attributes[] | select(.key == "service.instance.id") | .value.stringValue' $proto.last)
    if [ $proto = grpc ]; then
        expect_eq "$proto: resource service.instance.id is --instance" "$got" metrics-3
    else
        expect_match "$proto: resource service.instance.id defaults to HOST-PID" "$got" \
            "$(uname -n)-[0-9]+"
    fi
    expect_eq "$proto: ... the summary's instance" "$(json $proto.json .instance)" "$got"
    expect_eq "$proto: scope is shoal" "$(jq -r '.resourceMetrics[0].scopeMetrics[0].scope.name' $proto.last)" shoal
    expect_eq "$proto: every point starts at the run's start, before its time" \
        "$(jq -r '[.resourceMetrics[].scopeMetrics[].metrics[] | (.sum // .gauge // .histogram).dataPoints[] | (.startTimeUnixNano | tonumber) as $s | ($s > 0 and $s <= (.timeUnixNano | tonumber))] | unique | tostring' $proto.last)" \
        "[true]"
    expect_eq "$proto: one start time for all" \
        "$(jq -r '[.resourceMetrics[].scopeMetrics[].metrics[] | (.sum // .gauge // .histogram).dataPoints[].startTimeUnixNano] | unique | length' $proto.last)" 1
    transport=$(jq -r 'select(.signal == "metrics") | .transport' recv.jsonl | sort -u)
    expect_eq "$proto: sent over $proto" "$transport" $proto
done
unset OTEL_EXPORTER_OTLP_METRICS_PROTOCOL OTEL_EXPORTER_OTLP_PROTOCOL

# ---------------------------------------------------------------- periodic
# 40 jobs of 0.1 s on 1 worker with concurrency 2: about 2 s, exports every
# 0.5 s; OTEL_METRICS_EXPORTER=otlp with the metrics' own endpoint, no flag
receiver periodic
OTEL_METRICS_EXPORTER=otlp OTEL_TRACES_EXPORTER=none OTEL_METRIC_EXPORT_INTERVAL=500 \
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="http://127.0.0.1:$HPORT/v1/metrics" \
    run_shoal periodic run jobs.lua --workers 1 --concurrency 2 --quiet --listen off \
    --retries 1 --retry-delay 0 --summary-json periodic.json -- 40 0.1
expect_rc "periodic: run exit code" 1
exports periodic.jsonl >periodic.exports
n=$(grep -c . periodic.exports)
expect_ge "periodic: several exports (every 0.5 s and at exit)" "$n" 3
jq -r "$M"' [m("jobs_total") | .sum.dataPoints[].asDouble] | add // 0' periodic.exports >periodic.totals
expect_eq "periodic: jobs_total never goes down" \
    "$(sort -n -c periodic.totals 2>&1 && echo sorted)" sorted
expect_eq "periodic: the last export has the final count" "$(tail -n 1 periodic.totals)" 40
expect_lt "periodic: an early export saw the run under way" "$(head -n 1 periodic.totals)" 40
expect_gt "periodic: later exports count the earlier ones' points (signal=\"metrics\")" \
    "$(tail -n 1 periodic.exports | jq -r "$M"' m("shoal_telemetry_exported_total") | .sum.dataPoints[] | select(attr("signal") == "metrics") | .asDouble')" 0
expect_eq "periodic: each export's time is later than the one before" \
    "$(jq -r "$M"' m("jobs_total") | .sum.dataPoints[0].timeUnixNano' periodic.exports | awk 'NR > 1 && $1 <= p { bad = 1 } { p = $1 } END { print bad ? "no" : "yes" }')" yes

# ---------------------------------------------------------------- Ctrl-C
# an interrupted run still sends its last figures, those of its summary
receiver sigint
start_bg sigint env OTEL_TRACES_EXPORTER=none "$SHOAL" run jobs.lua --workers 1 --concurrency 1 \
    --quiet --listen 127.0.0.1:0 --otlp-endpoint "http://127.0.0.1:$HPORT" --otlp-metrics \
    --summary-json sigint.json -- 200 0.1
pid=$BG_PID
wait_for "grep -q 'serving http' '$T/sigint.err'" 30
port=$(server_port "$T/sigint.err")
wait_for "curl -s --max-time 2 http://127.0.0.1:$port/metrics | grep -q '^jobs_total{status=\"success\"} [1-9]'" 30
kill -INT "$pid"
wait_exit "$pid" 30
expect_eq "Ctrl-C: the run's exit code" "$BG_RC" 130
exports sigint.jsonl >sigint.exports
expect_eq "Ctrl-C: one export, at exit" "$(grep -c . sigint.exports)" 1
expect_eq "Ctrl-C: ... with the summary's jobs_total" \
    "$(jq -r "$M"' [m("jobs_total") | .sum.dataPoints[].asDouble] | add' sigint.exports)" \
    "$(json sigint.json '.ok + .failed')"
expect_lt "Ctrl-C: ... before the queue drained" "$(json sigint.json '.ok + .failed')" 200

# ---------------------------------------------------------------- faults and settings
# a collector that refuses 3 points of each request: warned once, counted
# failed (seen in the next export), the rest exported
receiver partial --partial-reject 3
OTEL_TRACES_EXPORTER=none OTEL_METRIC_EXPORT_INTERVAL=300 run_shoal partial run jobs.lua \
    --workers 1 --concurrency 2 --quiet --listen off --retries 1 --retry-delay 0 \
    --otlp-endpoint "http://127.0.0.1:$HPORT" --otlp-metrics -- 20 0.1
expect_rc "partial success: the run's own exit code" 1
expect_eq "partial success: warned once, with the collector's reason" \
    "$(grep -c 'otlp metrics export failed.*rejected 3 data point' "$ERR")" 1
exports partial.jsonl >partial.exports
expect_ge "partial success: several exports" "$(grep -c . partial.exports)" 2
expect_eq "partial success: the last export counts 3 failed per earlier one" \
    "$(tail -n 1 partial.exports | jq -r "$M"' m("shoal_telemetry_failed_total") | .sum.dataPoints[] | select(attr("signal") == "metrics") | .asDouble')" \
    "$((3 * ($(grep -c . partial.exports) - 1)))"

# nothing listens on port 1: a warning, once, and the run ends as it would
run_shoal down run jobs.lua --workers 2 --quiet --listen off --retries 1 --retry-delay 0 \
    --otlp-endpoint "http://127.0.0.1:1" --otlp-metrics -- 30
expect_rc "collector down: the run's own exit code" 1
expect_eq "collector down: warned once" "$(grep -c 'otlp metrics export failed' "$ERR")" 1
expect_lt "collector down: no wait at exit" "$WALL" 10

OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta run_shoal delta run jobs.lua --quiet \
    --listen off --otlp-endpoint "http://127.0.0.1:1" --otlp-metrics -- 1
expect_rc "delta temporality: a usage error" 2
expect_grep "delta temporality: says shoal sends cumulative" \
    "TEMPORALITY_PREFERENCE=delta.*cumulative" "$ERR"
run_shoal noendpoint run jobs.lua --quiet --listen off --otlp-metrics -- 1
expect_rc "--otlp-metrics without an endpoint: a usage error" 2
expect_grep "--otlp-metrics without an endpoint: says what to set" \
    "needs an OTLP endpoint.*--otlp-endpoint" "$ERR"
finish
