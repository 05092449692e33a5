#!/usr/bin/env bash
# test_traces.sh - traces as a collector receives them. The receiver is made
# of real parts (spec/integration/otlp/receiver.js: @grpc/grpc-js and the
# OpenTelemetry JS project's generated protobuf code), so what passes here is
# what Tempo or a collector would accept.
#
# A crawl of the demo site over both transports: one process_job span per
# job with the seed's attributes, one CLIENT child per request, a page's
# span linked to the span of the page that found it, the resource; a job
# pushed with a traceparent continues that trace; user spans nest across
# yields; traceparent goes out on requests; exemplars carry the trace ids.
# Faults: a collector that refuses then recovers loses nothing; one that is
# down costs nothing but counted spans; one that hangs does not hold the run.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

. "$SHOAL_ROOT/spec/integration/otlp/receiver.sh"
export OTEL_BSP_SCHEDULE_DELAY=100

# spans FILE: every span received, one JSON object per line
spans() { jq -c '.request.resourceSpans[].scopeSpans[].spans[]' "$1"; }
# attr NAME: jq filter for a span attribute's value
A='def attr($k): ((.attributes // [])[] | select(.key == $k) | .value | (.stringValue // .intValue // .boolValue // .doubleValue)) // null;'

# ---------------------------------------------------------------- the crawl, both ways
receiver recv
for proto in http grpc; do
    # gRPC also compressed; both with a header the collector asked for
    export OTEL_EXPORTER_OTLP_HEADERS="x-tenant=team%20a"
    if [ $proto = grpc ]; then
        export OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_COMPRESSION=gzip
        ep="http://127.0.0.1:$GPORT"
        inst=(--instance crawler-7) # the id given, over gRPC; the default over HTTP
    else
        unset OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_COMPRESSION
        ep="http://127.0.0.1:$HPORT"
        inst=()
    fi
    : >recv.jsonl
    run_shoal demo_$proto demo --quiet --listen 127.0.0.1:0 --otlp-endpoint "$ep" \
        --summary-json $proto.json "${inst[@]}"
    expect_eq "$proto: demo exit code" "$RC" 0
    expect_eq "$proto: summary counts every span exported" "$(json $proto.json .traces.exported)" 2202
    expect_eq "$proto: none dropped or failed" \
        "$(json $proto.json '.traces.dropped + .traces.failed')" 0
    spans recv.jsonl >$proto.spans
    jobs=$(jq -c 'select(.name == "process_job")' $proto.spans)
    expect_eq "$proto: one process_job span per job" "$(grep -c . <<<"$jobs")" 1101
    expect_eq "$proto: every job span has worker.id, job.id, job.url" \
        "$(jq -r "$A"' select(attr("worker.id") != null and attr("job.id") != null and (attr("job.url") // "" | startswith("http://"))) | .spanId' <<<"$jobs" | sort -u | wc -l)" 1101
    expect_eq "$proto: job ids are distinct" \
        "$(jq -r "$A"' attr("job.id")' <<<"$jobs" | sort -u | wc -l)" 1101
    expect_eq "$proto: one CLIENT span per request" "$(jq -r 'select(.kind == 3) | .spanId' $proto.spans | wc -l)" 1101
    # each CLIENT span's parent is a process_job span of the same trace
    jq -r 'select(.name == "process_job") | "\(.traceId) \(.spanId)"' $proto.spans | sort >jobids
    jq -r 'select(.kind == 3) | "\(.traceId) \(.parentSpanId)"' $proto.spans | sort >clientparents
    expect_eq "$proto: every request's span is a child of its job's span" \
        "$(comm -13 jobids clientparents | wc -l)" 0
    expect_eq "$proto: CLIENT spans carry the status code" \
        "$(jq -r "$A"' select(.kind == 3 and attr("http.response.status_code") == "404") | .spanId' $proto.spans | wc -l)" 100
    expect_eq "$proto: 4xx/5xx requests are errors" \
        "$(jq -r 'select(.kind == 3 and .status.code == 2) | .spanId' $proto.spans | wc -l)" 116
    # the crawl's tree: every page but the first links to a job span
    jq -r 'select(.name == "process_job") | .spanId' $proto.spans | sort >jobspans
    jq -r 'select(.name == "process_job") | .links[]?.spanId' $proto.spans | sort >linked
    expect_eq "$proto: every page but the first links to the page that found it" \
        "$(wc -l <linked)" 1100
    expect_eq "$proto: links point at job spans" "$(sort -u linked | comm -13 jobspans - | wc -l)" 0
    expect_eq "$proto: resource service.name is the script's name" \
        "$(jq -r '.request.resourceSpans[0].resource.attributes[] | select(.key == "service.name") | .value.stringValue' recv.jsonl | sort -u)" crawl
    got=$(jq -r '.request.resourceSpans[].resource.attributes[] | select(.key == "service.instance.id") | .value.stringValue' recv.jsonl | sort -u)
    if [ $proto = grpc ]; then
        expect_eq "$proto: resource service.instance.id is --instance" "$got" crawler-7
    else
        expect_match "$proto: resource service.instance.id defaults to HOST-PID" "$got" \
            "$(uname -n)-[0-9]+"
    fi
    expect_eq "$proto: ... the summary's instance" "$(json $proto.json .instance)" "$got"
done
unset OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_COMPRESSION OTEL_EXPORTER_OTLP_HEADERS
expect_grep "gRPC requests are gRPC" '"content-type":"application/grpc"' recv.jsonl
expect_grep "gRPC requests are gzip-compressed" '"grpc-encoding":"gzip"' recv.jsonl
expect_grep "OTEL_EXPORTER_OTLP_HEADERS are sent" '"x-tenant":"team a"' recv.jsonl

# ---------------------------------------------------------------- context, user spans, exemplars
cat >server.py <<'EOF'
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
log = open(sys.argv[2], "a", buffering=1)
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        log.write("%s %s %s\n" % (self.path, self.headers.get("traceparent"),
                                   self.headers.get("tracestate")))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
ThreadingHTTPServer.request_queue_size = 128
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
sport=$(free_port)
start_bg web $PY server.py "$sport" "$T/web.log"
wait_port "$sport" 20
cat >ctx.lua <<'EOF'
local base = shoal.args[1]
function produce(push)
  push({ url = base .. "/continued",
         traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
         tracestate = "vendor=abc,other=x1" })
  push({ url = base .. "/nested" })
  push({ url = base .. "/bad", traceparent = "00-zz-yy-01" })
  push({ url = base .. "/fails" })
  push({ url = base:gsub("//", "//user:hunter2@") .. "/private?token=s3cr3t&page=2" })
end
function handle(job)
  if job.url:find("nested") then
    shoal.trace.span("outer", function()
      local t, s = shoal.trace.current()
      shoal.log.info("inside", { t = t, s = s })
      shoal.trace.span("inner", function()
        shoal.sleep(0.01) -- a yield inside the span
        assert(shoal.http.get(job.url))
      end, { step = "fetch", n = 2 })
    end)
    local ok = pcall(shoal.trace.span, "broken", function() error("inner failure") end)
    assert(not ok)
  elseif job.url:find("fails") then
    error("this job fails on purpose")
  else
    assert(shoal.http.get(job.url))
  end
end
function done()
  local res = assert(shoal.http.request{ url = shoal.args[2], headers = {
    Accept = "application/openmetrics-text;version=1.0.0" } })
  local f = assert(io.open("om.prom", "w")); f:write(res.body); f:close()
end
EOF
: >recv.jsonl
mport=$(free_port)
run_shoal ctx run ctx.lua --workers 1 --retries 0 --quiet --listen "127.0.0.1:$mport" \
    --otlp-endpoint "http://127.0.0.1:$HPORT" -- "http://127.0.0.1:$sport" \
    "http://127.0.0.1:$mport/metrics"
expect_eq "context run exit code (one job fails on purpose)" "$RC" 1
spans recv.jsonl >ctx.spans
cont=$(jq -c "$A"' select(.name == "process_job" and (attr("job.url") | endswith("/continued")))' ctx.spans)
expect_eq "a job pushed with a traceparent continues that trace" \
    "$(jq -r .traceId <<<"$cont")" 0af7651916cd43dd8448eb211c80319c
expect_eq "... as a child of that span" "$(jq -r .parentSpanId <<<"$cont")" b7ad6b7169203331
expect_eq "... serving it (kind SERVER)" "$(jq -r .kind <<<"$cont")" 2
expect_eq "... keeping its tracestate" "$(jq -r .traceState <<<"$cont")" "vendor=abc,other=x1"
expect_eq "tracestate goes out with the job's requests" \
    "$(awk '$1 == "/continued" { print $3 }' web.log)" "vendor=abc,other=x1"
expect_eq "a job with no tracestate sends none" "$(awk '$1 == "/nested" { print $3 }' web.log)" None
bad=$(jq -c "$A"' select(.name == "process_job" and (attr("job.url") | endswith("/bad")))' ctx.spans)
expect_eq "a malformed traceparent is ignored: a trace of its own" \
    "$(jq -r '.parentSpanId // "none"' <<<"$bad")" none
# traceparent on the wire: the CLIENT span's ids
client=$(jq -c "$A"' select(.kind == 3 and (attr("url.full") | endswith("/continued")))' ctx.spans)
expect_eq "outgoing requests carry traceparent with the CLIENT span's ids" \
    "$(awk '$1 == "/continued" { print $2 }' web.log)" \
    "00-$(jq -r .traceId <<<"$client")-$(jq -r .spanId <<<"$client")-01"
# user spans: outer -> inner -> GET, all in the nested job's trace
job=$(jq -c "$A"' select(.name == "process_job" and (attr("job.url") | endswith("/nested")))' ctx.spans)
outer=$(jq -c 'select(.name == "outer")' ctx.spans)
inner=$(jq -c 'select(.name == "inner")' ctx.spans)
get=$(jq -c "$A"' select(.kind == 3 and (attr("url.full") | endswith("/nested")))' ctx.spans)
expect_eq "user span is a child of the job span" "$(jq -r .parentSpanId <<<"$outer")" "$(jq -r .spanId <<<"$job")"
expect_eq "nested user span is a child of the outer one" "$(jq -r .parentSpanId <<<"$inner")" "$(jq -r .spanId <<<"$outer")"
expect_eq "the request inside it is its child, across a yield" "$(jq -r .parentSpanId <<<"$get")" "$(jq -r .spanId <<<"$inner")"
expect_eq "user span attributes" "$(jq -r "$A"' attr("step") + "/" + attr("n")' <<<"$inner")" "fetch/2"
expect_eq "a failing user span is an error with the message" \
    "$(jq -r 'select(.name == "broken") | .status.code' ctx.spans)" 2
expect_grep "... message with the script's line" '"message":"[^"]*ctx.lua:[0-9]*: inner failure' recv.jsonl
expect_grep "shoal.trace.current() inside the span gives its ids" \
    "t=$(jq -r .traceId <<<"$outer") .*s=$(jq -r .spanId <<<"$outer")|s=$(jq -r .spanId <<<"$outer") .*t=$(jq -r .traceId <<<"$outer")" "$ERR"
expect_grep "log lines in a job carry trace_id and span_id" \
    "msg=inside .*trace_id=$(jq -r .traceId <<<"$outer") span_id=$(jq -r .spanId <<<"$outer")" "$ERR"
priv=$(jq -r "$A"' select(.kind == 3 and (attr("url.full") | contains("/private"))) | attr("url.full")' ctx.spans)
expect_eq "credentials in url.full are redacted" "$priv" \
    "http://user:REDACTED@127.0.0.1:$sport/private?token=REDACTED&page=2"
expect_eq "... and in job.url" \
    "$(jq -r "$A"' select(.name == "process_job" and (attr("job.url") | contains("/private"))) | attr("job.url")' ctx.spans)" "$priv"
failed=$(jq -c "$A"' select(.name == "process_job" and (attr("job.url") | endswith("/fails")))' ctx.spans)
expect_eq "a failed job's span is an error" "$(jq -r .status.code <<<"$failed")" 2
jq -r .status.message <<<"$failed" >failed_msg.txt
expect_grep "... with the failure's message and line" \
    'ctx.lua:[0-9]+: this job fails on purpose' failed_msg.txt
expect_grep "the engine's own line for a failed attempt carries its ids" \
    'msg="job failed" .*trace_id=[0-9a-f]{32} span_id=[0-9a-f]{16}' "$ERR"
expect_grep "exemplars on job_duration_seconds carry a trace id" \
    '^job_duration_seconds_bucket\{le="[^"]*"\} [0-9]+ # \{trace_id="[0-9a-f]{32}"\} ' om.prom
ex=$(grep -o 'trace_id="[0-9a-f]*"' om.prom | head -1 | cut -d'"' -f2)
expect_eq "... a trace that was exported" "$(jq -r --arg t "$ex" 'select(.traceId == $t and .name == "process_job") | .traceId' ctx.spans | head -1)" "$ex"

cat >many.lua <<'EOF'
function produce(push) for i = 1, tonumber(shoal.args[2]) do push({ i = i }) end end
function handle(job) assert(shoal.http.get(shoal.args[1] .. "/p" .. job.i)) end
EOF

# unsampled: no span is made, yet the context goes out (flag 00)
: >web.log
: >recv.jsonl
OTEL_TRACES_SAMPLER=always_off run_shoal off run many.lua --workers 1 --quiet --listen off \
    --otlp-endpoint "http://127.0.0.1:$HPORT" --summary-json off.json -- "http://127.0.0.1:$sport" 50
expect_eq "always_off: no span exported, none lost" \
    "$(json off.json '"\(.traces.exported) \(.traces.dropped + .traces.failed)"')" "0 0"
expect_eq "always_off: traceparent still sent, unsampled" \
    "$(grep -c -- '-00 None$' web.log)" 50
run_shoal noprop run many.lua --workers 1 --quiet --listen off --no-propagate \
    --otlp-endpoint "http://127.0.0.1:$HPORT" -- "http://127.0.0.1:$sport" 10
expect_eq "--no-propagate: no traceparent" "$(tail -n 10 web.log | grep -c ' None None$')" 10

# ---------------------------------------------------------------- faults
for mode in "unavailable grpc" "503 http"; do
    set -- $mode
    receiver flaky_$1 --fail-first 3 --fail-with "$1"
    if [ "$2" = grpc ]; then ep="http://127.0.0.1:$GPORT"; export OTEL_EXPORTER_OTLP_PROTOCOL=grpc
    else ep="http://127.0.0.1:$HPORT"; unset OTEL_EXPORTER_OTLP_PROTOCOL; fi
    # queues big enough to hold the spans made while the collector refuses:
    # nothing dropped, so every span must arrive
    OTEL_BSP_MAX_QUEUE_SIZE=8192 run_shoal flaky_$1 run many.lua --workers 2 --quiet \
        --listen off --otlp-endpoint "$ep" \
        --summary-json flaky_$1.json -- "http://127.0.0.1:$sport" 3000
    expect_eq "$1 then recovery ($2): run ok" "$RC" 0
    expect_eq "$1 then recovery ($2): every span arrives" \
        "$(spans flaky_$1.jsonl | jq -r .spanId | sort -u | wc -l)" 6000
    expect_eq "$1 then recovery ($2): the summary agrees" "$(json flaky_$1.json .traces.exported)" 6000
done
unset OTEL_EXPORTER_OTLP_PROTOCOL

# 429 with Retry-After is retried; 400 is not (it would fail again); a
# partial success counts the rejected spans as failed
receiver r429 --fail-first 2 --fail-with 429
OTEL_BSP_MAX_QUEUE_SIZE=8192 run_shoal r429 run many.lua --workers 1 --quiet --listen off \
    --otlp-endpoint "http://127.0.0.1:$HPORT" --summary-json r429.json -- "http://127.0.0.1:$sport" 300
expect_eq "429 then recovery: every span arrives" "$(json r429.json .traces.exported)" 600
receiver r400 --fail-first 1 --fail-with 400
OTEL_BSP_MAX_EXPORT_BATCH_SIZE=100 run_shoal r400 run many.lua --workers 1 --quiet --listen off \
    --otlp-endpoint "http://127.0.0.1:$HPORT" --summary-json r400.json -- "http://127.0.0.1:$sport" 300
expect_eq "400: every span is accounted for" \
    "$(json r400.json '.traces.failed + .traces.exported')" 600
expect_gt "400: that batch is given up" "$(json r400.json .traces.failed)" 0
expect_eq "400: not retried (what was not refused arrived, once)" \
    "$(spans r400.jsonl | jq -r .spanId | sort -u | wc -l)" "$(json r400.json .traces.exported)"
expect_grep "400: said once, with the status" 'trace export failed.*HTTP 400' "$ERR"
receiver partial --partial-reject 3
OTEL_BSP_MAX_EXPORT_BATCH_SIZE=100 run_shoal partial run many.lua --workers 1 --quiet --listen off \
    --otlp-endpoint "http://127.0.0.1:$HPORT" --summary-json partial.json -- "http://127.0.0.1:$sport" 100
# the receiver refuses 3 spans of each request, or all of a smaller one
# (how the 200 spans split into requests depends on timing)
refused=$(jq -s 'map([.request.resourceSpans[].scopeSpans[].spans | length] | add
                     | if . < 3 then . else 3 end) | add' partial.jsonl)
expect_eq "partial success: rejected spans counted as failed" \
    "$(json partial.json '"\(.traces.failed) \(.traces.exported)"')" "$refused $((200 - refused))"
expect_grep "partial success: reported" 'collector rejected 3 span' "$ERR"

# a collector that is not there: the run goes at full speed, spans counted
# (port 1: nothing listens there, and no other test can take it meanwhile)
run_shoal down run many.lua --workers 2 --quiet --listen off \
    --otlp-endpoint "http://127.0.0.1:1" --summary-json down.json -- "http://127.0.0.1:$sport" 3000
expect_eq "collector down: run ok" "$RC" 0
expect_eq "collector down: every span is counted, none exported" \
    "$(json down.json '"\(.traces.exported) \(.traces.dropped + .traces.failed)"')" "0 6000"
expect_eq "collector down: warned once" "$(grep -c 'trace export failed' "$ERR")" 1
expect_lt "collector down: no wait at exit" "$WALL" 10

# a collector that never answers: the export timeout bounds it
receiver hang --hang
OTEL_EXPORTER_OTLP_TIMEOUT=500 OTEL_BSP_EXPORT_TIMEOUT=3000 run_shoal hang run many.lua --workers 2 --quiet --listen off \
    --otlp-endpoint "http://127.0.0.1:$HPORT" --summary-json hang.json -- "http://127.0.0.1:$sport" 1000
expect_eq "collector hangs: run ok" "$RC" 0
expect_eq "collector hangs: all 1000 jobs done" "$(json hang.json .ok)" 1000
expect_eq "collector hangs: spans counted as failed" \
    "$(json hang.json '.traces.exported + .traces.dropped + .traces.failed')" 2000
expect_lt "collector hangs: the export timeout bounds the wait" "$WALL" 15
finish
