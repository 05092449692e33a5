#!/usr/bin/env bash
# test_demo.sh - `shoal demo` crawls the built-in demo site completely: every
# page, every 404 and every 500 exactly once, and says so in its summary.
#
# The demo's figures are checked against /demo/facts.json, which the site
# computes from the same link generator it renders from. To read it, a
# second shoal serves the site (`run` of a script whose produce() waits)
# while we curl it.
. "$(dirname "$0")/lib.sh"

# -- facts from a running shoal's own server
cat >"$T/serve.lua" <<'EOF'
function produce() shoal.sleep(60) end
function handle() end
EOF
start_bg serve "$SHOAL" run "$T/serve.lua" --listen 127.0.0.1:0 --quiet
SERVE_PID=$BG_PID
if wait_for "[ -n \"\$(server_port $T/serve.err)\" ]" 10; then
    pass "run --listen 127.0.0.1:0 announces the port it picked"
else
    fail "run --listen 127.0.0.1:0 announces the port it picked" "$(show_file "$T/serve.err")"
fi
PORT=$(server_port "$T/serve.err")
BASE=http://127.0.0.1:${PORT:-1}
HZ=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE/healthz")
expect_eq "/healthz answers 200 while a run is going" "$HZ" 200
curl -s --max-time 5 "$BASE/demo/facts.json" >"$T/facts.json"
PAGES=$(json "$T/facts.json" .pages)
NOT_FOUND=$(json "$T/facts.json" .not_found)
ERRORS=$(json "$T/facts.json" .errors)
SLOW_MS=$(json "$T/facts.json" .slow_ms)
if [ "${PAGES:-0}" -gt 0 ] 2>/dev/null && [ "${NOT_FOUND:-0}" -gt 0 ] && [ "${ERRORS:-0}" -gt 0 ]; then
    pass "/demo/facts.json has pages, not_found and errors ($PAGES/$NOT_FOUND/$ERRORS)"
else
    fail "/demo/facts.json has pages, not_found and errors" "$(cat "$T/facts.json")"
fi
kill -TERM "$SERVE_PID" 2>/dev/null
wait_exit "$SERVE_PID" 10

# -- the demo itself
run_shoal demo demo --listen 127.0.0.1:0 --quiet --summary-json "$T/demo.json"
S=$T/demo.json
expect_rc "shoal demo exits 0" 0
expect_eq "every page answered 200 once (status 200 == facts.pages)" "$(json "$S" '.http.status["200"] // 0')" "$PAGES"
expect_eq "every dead link fetched once (status 404 == facts.not_found)" "$(json "$S" '.http.status["404"] // 0')" "$NOT_FOUND"
expect_eq "every broken page fetched once (status 500 == facts.errors)" "$(json "$S" '.http.status["500"] // 0')" "$ERRORS"
expect_eq "ok == pages + not_found + errors" "$(json "$S" .ok)" "$((PAGES + NOT_FOUND + ERRORS))"
expect_eq "one HTTP request per job" "$(json "$S" .http.requests)" "$((PAGES + NOT_FOUND + ERRORS))"
expect_eq "no failed jobs" "$(json "$S" .failed)" 0
expect_eq "no transport errors" "$(json "$S" .http.errors)" 0
expect_gt "duplicate links were dropped by key (duplicates > 0)" "$(json "$S" .duplicates)" 0
expect_eq "nothing left in the queue" "$(json "$S" .queued_left)" 0
expect_eq "stop reason is drained" "$(json "$S" .stop_reason)" drained
expect_eq "not interrupted" "$(json "$S" .interrupted)" false
expect_ge "latency max reflects the slow pages (>= slow_ms)" "$(json "$S" .latency.max)" "$(fcalc "${SLOW_MS:-150} / 1000")"
expect_grep "text summary reports ok jobs" "[0-9]+ ok" "$OUT"
expect_grep "text summary has the status line with 200s and 404s" "status.* 200: $PAGES .*404: $NOT_FOUND" "$OUT"
expect_lt "demo finishes quickly (< 20 s)" "$WALL" 20

# -- examples/crawl.lua with no URL crawls the site shoal really serves (not
# a fixed 127.0.0.1:8080, which may be somebody else's server)
run_shoal crawl_noarg run "$SHOAL_ROOT/examples/crawl.lua" --listen 127.0.0.1:0 --quiet --summary-json "$T/crawl.json"
expect_rc "crawl.lua without arguments: exit 0" 0
expect_eq "it crawled the demo site shoal served (200s == facts.pages)" "$(json "$T/crawl.json" '.http.status["200"] // 0')" "$PAGES"
run_shoal crawl_off run "$SHOAL_ROOT/examples/crawl.lua" --listen off --quiet
expect_rc "crawl.lua without arguments and --listen off: a script error (3)" 3
expect_grep "and it asks for a start URL" 'give a start URL' "$ERR"

# -- shoal.listen_url is the address served, in every state; nil with --listen off
cat >"$T/where.lua" <<'EOF'
local function save(name)
  local f = assert(io.open(name, "w"))
  f:write(tostring(shoal.listen_url))
  f:close()
end
function produce(push) save("where_producer.txt"); push({}) end
function handle(job) save("where_worker.txt") end
EOF
cd "$T" || exit 1
run_shoal where run where.lua --listen 127.0.0.1:0 --quiet
WHERE_PORT=$(server_port "$ERR")
expect_eq "shoal.listen_url in produce() is the address shoal serves" "$(cat "$T/where_producer.txt" 2>/dev/null)" "http://127.0.0.1:${WHERE_PORT:-x}"
expect_eq "shoal.listen_url in handle() too" "$(cat "$T/where_worker.txt" 2>/dev/null)" "http://127.0.0.1:${WHERE_PORT:-x}"
run_shoal where_off run where.lua --listen off --quiet
expect_eq "shoal.listen_url is nil with --listen off" "$(cat "$T/where_worker.txt" 2>/dev/null)" "nil"

# -- the demo refuses to run without its server
run_shoal demo_off demo --listen off --quiet
expect_rc "demo --listen off is a usage error (2)" 2
expect_grep "and says it needs --listen" "--listen" "$ERR"

finish
