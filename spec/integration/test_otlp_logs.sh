#!/usr/bin/env bash
# test_otlp_logs.sh - log records as a collector receives them with
# --otlp-logs. The receiver is the traces' one (spec/integration/otlp/
# receiver.js: @grpc/grpc-js and the OpenTelemetry JS project's generated
# protobuf code), which also serves LogsService/Export and POST /v1/logs.
#
# Over both transports: one "job done" record per job, INFO (9), with the
# job's attributes and the ids of its process_job span in the traces of the
# same run; the resource is the traces'; every line the log file got
# reaches the collector. Faults: a collector that refuses then recovers
# loses nothing; one that is down costs the run nothing, and every record
# is counted dropped or failed; one that hangs does not hold the exit past
# OTEL_BLRP_EXPORT_TIMEOUT.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

. "$SHOAL_ROOT/spec/integration/otlp/receiver.sh"
if ! "$SHOAL" run --help 2>&1 | grep -q -- --otlp-logs; then
    fail "shoal has --otlp-logs" "$("$SHOAL" run --help 2>&1 | grep -i otlp)"
    finish
fi
export OTEL_BSP_SCHEDULE_DELAY=100 OTEL_BLRP_SCHEDULE_DELAY=100

# records FILE: every log record received, one JSON object per line
records() { jq -c 'select(.signal == "logs") | .request.resourceLogs[].scopeLogs[].logRecords[]' "$1"; }
# spans FILE: every span received
spans() { jq -c 'select(.signal == "traces") | .request.resourceSpans[].scopeSpans[].spans[]' "$1"; }
A='def attr($k): ((.attributes // [])[] | select(.key == $k) | .value | (.stringValue // .intValue // .boolValue // .doubleValue)) // null;'

cat >server.py <<'EOF'
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
ThreadingHTTPServer.request_queue_size = 128
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
sport=$(free_port)
start_bg web $PY server.py "$sport"
wait_port "$sport" 20
cat >many.lua <<'EOF'
function produce(push)
  for i = 1, tonumber(shoal.args[2]) do push({ i = i, url = shoal.args[1] .. "/p" .. i }) end
end
function handle(job) assert(shoal.http.get(job.url)) end
EOF

# ---------------------------------------------------------------- both ways, with traces
N=200
receiver recv
# the flag must reach the settings (main.c: otel_logs_config_load), or
# everything below fails for that one reason
run_shoal wired run many.lua --workers 1 --quiet --listen off --otlp-logs \
    --otlp-endpoint "http://127.0.0.1:$HPORT" --summary-json wired.json -- "http://127.0.0.1:$sport" 1
if [ "$(json wired.json '.telemetry.logs_otlp.exported')" = null ]; then
    fail "--otlp-logs turns OTLP logs on (summary's telemetry.logs_otlp)" "$(show_file "$ERR" 5)"
    finish
fi
for proto in http grpc; do
    # the logs' own settings: gzip for gRPC, a header for HTTP
    if [ $proto = grpc ]; then
        export OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_LOGS_COMPRESSION=gzip
        unset OTEL_EXPORTER_OTLP_LOGS_HEADERS
        ep="http://127.0.0.1:$GPORT"
        # the instance id: --instance wins over the variable's
        inst=(--instance logs-2) want_inst=logs-2
    else
        unset OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_LOGS_COMPRESSION
        export OTEL_EXPORTER_OTLP_LOGS_HEADERS="x-tenant=team%20a"
        ep="http://127.0.0.1:$HPORT"
        # ... and without it, the variable's wins over HOST-PID
        inst=() want_inst=from-env
    fi
    export OTEL_RESOURCE_ATTRIBUTES="service.instance.id=from-env,team=crawl"
    : >recv.jsonl
    run_shoal $proto run many.lua --workers 2 --quiet --listen off --otlp-endpoint "$ep" \
        --otlp-logs --log-file "$T/$proto.log" --summary-json $proto.json "${inst[@]}" \
        -- "http://127.0.0.1:$sport" $N
    unset OTEL_RESOURCE_ATTRIBUTES
    expect_rc "$proto: run ok" 0
    records recv.jsonl >$proto.records
    jq -c 'select(.body.stringValue == "job done")' $proto.records >$proto.done
    expect_eq "$proto: one \"job done\" record per job" "$(grep -c . $proto.done)" $N
    expect_eq "$proto: ... for distinct jobs" \
        "$(jq -r "$A"' attr("job.id")' $proto.done | sort -u | wc -l)" $N
    expect_eq "$proto: ... INFO, severity 9" \
        "$(jq -r '"\(.severityNumber) \(.severityText)"' $proto.done | sort -u)" "9 INFO"
    expect_eq "$proto: ... with job.id, url, status, duration, attempt and worker.id" \
        "$(jq -r "$A"' select(attr("job.id") != null and (attr("url") // "" | test("^http://127.0.0.1:[0-9]+/p[0-9]+$")) and attr("status") == "200" and (attr("duration") | type) == "number" and attr("attempt") == "1" and attr("worker.id") != null) | .spanId' $proto.done | wc -l)" $N
    expect_eq "$proto: ... times set, observed at or after" \
        "$(jq -r 'select((.timeUnixNano | tonumber) > 0 and (.observedTimeUnixNano | tonumber) >= (.timeUnixNano | tonumber)) | 1' $proto.done | wc -l)" $N
    expect_eq "$proto: ... trace flags: sampled" "$(jq -r .flags $proto.done | sort -u)" 1
    # the ids are those of the job's process_job span, in the same run's traces
    spans recv.jsonl | jq -r "$A"' select(.name == "process_job") | "\(attr("job.id")) \(.traceId) \(.spanId)"' | sort >$proto.span_ids
    jq -r "$A"' "\(attr("job.id")) \(.traceId) \(.spanId)"' $proto.done | sort >$proto.log_ids
    expect_eq "$proto: the process_job spans arrived" "$(wc -l <$proto.span_ids)" $N
    if cmp -s $proto.span_ids $proto.log_ids; then
        pass "$proto: each record's trace_id/span_id are its job's process_job span's"
    else
        fail "$proto: each record's trace_id/span_id are its job's process_job span's" \
            "$(diff $proto.span_ids $proto.log_ids | head -5)"
    fi
    expect_eq "$proto: resource service.name is the script's name" \
        "$(jq -r 'select(.signal == "logs") | .request.resourceLogs[0].resource.attributes[] | select(.key == "service.name") | .value.stringValue' recv.jsonl | sort -u)" many
    expect_eq "$proto: resource service.instance.id of logs and traces" \
        "$(jq -r '(.request.resourceLogs // .request.resourceSpans)[].resource.attributes[] | select(.key == "service.instance.id") | .value.stringValue' recv.jsonl | sort -u)" \
        "$want_inst"
    expect_eq "$proto: ... every request has one" \
        "$(jq -r '[(.request.resourceLogs // .request.resourceSpans)[].resource.attributes | map(select(.key == "service.instance.id")) | length] | unique | tostring' recv.jsonl | sort -u)" "[1]"
    expect_eq "$proto: ... the other resource attributes from the variable stay" \
        "$(jq -r 'select(.signal == "logs") | .request.resourceLogs[].resource.attributes[] | select(.key == "team") | .value.stringValue' recv.jsonl | sort -u)" crawl
    expect_eq "$proto: every line of the log file says instance=$want_inst" \
        "$(grep -c " instance=$want_inst\( trace_id=.*\)\?\$" "$T/$proto.log")" "$(grep -c . "$T/$proto.log")"
    expect_eq "$proto: scope is shoal" \
        "$(jq -r 'select(.signal == "logs") | .request.resourceLogs[0].scopeLogs[0].scope.name' recv.jsonl | sort -u)" shoal
    expect_eq "$proto: every line of the log file reaches the collector" \
        "$(grep -c . $proto.records)" "$(grep -c . "$T/$proto.log")"
    expect_eq "$proto: the summary counts them exported, none lost" \
        "$(json $proto.json '"\(.telemetry.logs_otlp.exported) \(.telemetry.logs_otlp.dropped + .telemetry.logs_otlp.failed)"')" \
        "$(grep -c . $proto.records) 0"
    if [ $proto = grpc ]; then
        expect_eq "grpc: logs go over gRPC, gzip'd (OTEL_EXPORTER_OTLP_LOGS_COMPRESSION)" \
            "$(jq -r '"\(.transport) \(.headers["content-type"]) \(.headers["grpc-encoding"])"' <(grep '"signal":"logs"' recv.jsonl) | sort -u)" \
            "grpc application/grpc gzip"
        expect_eq "grpc: ... and only the logs" \
            "$(jq -r 'select(.signal == "traces") | .headers["grpc-encoding"] // "none"' recv.jsonl | sort -u)" none
    else
        expect_eq "http: logs are POSTed as protobuf, with OTEL_EXPORTER_OTLP_LOGS_HEADERS" \
            "$(jq -r '"\(.transport) \(.headers["content-type"]) \(.headers["x-tenant"])"' <(grep '"signal":"logs"' recv.jsonl) | sort -u)" \
            "http application/x-protobuf team a"
        expect_eq "http: ... and only the logs" \
            "$(jq -r 'select(.signal == "traces") | .headers["x-tenant"] // "none"' recv.jsonl | sort -u)" none
    fi
done
unset OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_LOGS_COMPRESSION OTEL_EXPORTER_OTLP_LOGS_HEADERS

# ---------------------------------------------------------------- faults (logs only)
export OTEL_TRACES_EXPORTER=none
N=300
for mode in "unavailable grpc" "503 http"; do
    set -- $mode
    receiver flaky_$1 --fail-first 3 --fail-with "$1"
    if [ "$2" = grpc ]; then ep="http://127.0.0.1:$GPORT"; export OTEL_EXPORTER_OTLP_PROTOCOL=grpc
    else ep="http://127.0.0.1:$HPORT"; unset OTEL_EXPORTER_OTLP_PROTOCOL; fi
    run_shoal flaky_$1 run many.lua --workers 2 --quiet --listen off --otlp-endpoint "$ep" \
        --otlp-logs --log-file "$T/flaky_$1.log" --summary-json flaky_$1.json \
        -- "http://127.0.0.1:$sport" $N
    expect_rc "$1 then recovery ($2): run ok" 0
    expect_eq "$1 then recovery ($2): the collector refused 3 requests" \
        "$(grep -c 'failing request' "$T/rx_flaky_$1.err")" 3
    records flaky_$1.jsonl >flaky_$1.records
    expect_eq "$1 then recovery ($2): every job's record arrives, once" \
        "$(jq -r "$A"' select(.body.stringValue == "job done") | attr("job.id")' flaky_$1.records | sort | uniq -c | awk '$1 == 1' | wc -l)" $N
    expect_eq "$1 then recovery ($2): nothing lost" \
        "$(json flaky_$1.json '"\(.telemetry.logs_otlp.exported) \(.telemetry.logs_otlp.dropped + .telemetry.logs_otlp.failed)"')" \
        "$(grep -c . "$T/flaky_$1.log") 0"
done
unset OTEL_EXPORTER_OTLP_PROTOCOL

# a collector that is not there (port 1: nothing listens, and no other
# test can take it): the run goes on; every record the logger handed over
# (a line of the log file each) is counted, dropped (the queue is small
# here) or failed
N=1000
OTEL_BLRP_MAX_QUEUE_SIZE=100 run_shoal down run many.lua --workers 2 --quiet --listen off \
    --otlp-endpoint "http://127.0.0.1:1" --otlp-logs --log-file "$T/down.log" \
    --summary-json down.json -- "http://127.0.0.1:$sport" $N
expect_rc "collector down: run ok" 0
expect_eq "collector down: all jobs done" "$(json down.json .ok)" $N
lines=$(grep -c . "$T/down.log")
expect_ge "collector down: a line per job at least" "$lines" $N
expect_eq "collector down: none exported" "$(json down.json .telemetry.logs_otlp.exported)" 0
expect_eq "collector down: dropped + failed is every record" \
    "$(json down.json '.telemetry.logs_otlp.dropped + .telemetry.logs_otlp.failed')" "$lines"
expect_gt "collector down: the small queue dropped some" "$(json down.json .telemetry.logs_otlp.dropped)" 0
expect_eq "collector down: warned once" "$(grep -c 'otlp logs export failed' "$ERR")" 1
expect_lt "collector down: no wait at exit" "$WALL" 10

# a collector that takes requests and never answers, with the default 10 s
# request timeout: the exit waits OTEL_BLRP_EXPORT_TIMEOUT (2 s), not more
receiver hang --hang
OTEL_BLRP_EXPORT_TIMEOUT=2000 run_shoal hang run many.lua --workers 2 --quiet --listen off \
    --otlp-endpoint "http://127.0.0.1:$HPORT" --otlp-logs --log-file "$T/hang.log" \
    --summary-json hang.json -- "http://127.0.0.1:$sport" 100
expect_rc "collector hangs: run ok" 0
expect_eq "collector hangs: every record counted, none exported" \
    "$(json hang.json '"\(.telemetry.logs_otlp.exported) \(.telemetry.logs_otlp.dropped + .telemetry.logs_otlp.failed)"')" \
    "0 $(grep -c . "$T/hang.log")"
expect_lt "collector hangs: the export timeout bounds the wait" "$WALL" 8
finish
