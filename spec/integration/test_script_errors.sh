#!/usr/bin/env bash
# test_script_errors.sh - what a script's mistakes and failures look like:
#   - metric methods check their arguments: labels before the amount, a
#     value that is not a number, a dot instead of a colon are errors at
#     the script's line, not a silent count of 1; inc(5, labels) counts 5;
#   - a mistake in how the script calls shoal (url nil, empty, with a
#     space) is raised at the script's line and is not retried; neither is
#     a failure after shoal.retry(false) or error{retry = false}; any
#     other error is retried as before;
#   - messages show the script's own frames, not the runtime's, and the
#     whole traceback is in the log at debug level;
#   - the summary says "1 worker", a range error "1 to 1000000".
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

cat >e.lua <<'EOF'
local c = shoal.metrics.counter("calls_total", "calls", { "code" })
local g = shoal.metrics.gauge("level", "level", { "code" })
local h = shoal.metrics.histogram("sizes", "sizes", {}, { 1, 10 })
function produce(push)
  for _, k in ipairs({ "http404", "nilconcat", "emptyurl", "spaceurl", "nilurl", "retryfalse",
                       "errobj", "incorder", "incjunk", "incstring", "setorder", "observestring",
                       "dotcall", "incok", "emitbad" }) do
    push({ kind = k })
  end
end
local function helper(x) return x .. "a" end
function handle(job)
  local k = job.kind
  if k == "http404" then error("HTTP 404")
  elseif k == "nilconcat" then helper(nil)
  elseif k == "emptyurl" then shoal.http.get("")
  elseif k == "spaceurl" then shoal.http.get("http://a b/")
  elseif k == "nilurl" then shoal.http.get(job.url)
  elseif k == "retryfalse" then shoal.retry(false); error("gone for good")
  elseif k == "errobj" then error({ retry = false, message = "410 gone" })
  elseif k == "incorder" then c:inc({ code = 200 }, 5)
  elseif k == "incjunk" then c:inc(1, "junk")
  elseif k == "incstring" then c:inc("junk")
  elseif k == "setorder" then g:set({ code = 200 }, 5)
  elseif k == "observestring" then h:observe("12")
  elseif k == "dotcall" then c.inc(5)
  elseif k == "incok" then c:inc(5, { code = 201 }); c:inc({ code = 202 }); g:set(7); h:observe(3)
  elseif k == "emitbad" then shoal.emit({ parse = print })
  end
end
EOF
PORT=$(free_port)
start_bg errors "$SHOAL" run e.lua --workers 1 --retries 2 --retry-delay 0.01 \
    --listen "127.0.0.1:$PORT" --linger 60s --output items.jsonl --summary-json e.json --log-level debug --log-stderr debug
if wait_for "curl -s http://127.0.0.1:$PORT/readyz | grep -q finished" 60; then
    pass "the run finished and lingers"
else
    fail "the run finished and lingers"
fi
METRICS=$(curl -s "http://127.0.0.1:$PORT/metrics")
kill -INT "$BG_PID" 2>/dev/null
wait_for "! kill -0 $BG_PID 2>/dev/null" 20
S=e.json

expect_eq "inc(5, labels) counts 5" "$(grep '^calls_total{code="201"}' <<<"$METRICS" | awk '{print $2}')" 5
expect_eq "inc(labels) counts 1" "$(grep '^calls_total{code="202"}' <<<"$METRICS" | awk '{print $2}')" 1
expect_eq "inc(labels, 5) counted nothing" "$(grep -c '^calls_total{code="200"}' <<<"$METRICS")" 0
expect_eq "one job succeeded, the others failed" "$(json "$S" .ok) $(json "$S" .failed)" "1 14"
# retried: only http404 and nilconcat, twice each
expect_eq "only plain errors were retried (2 jobs x 2)" "$(json "$S" .retried)" 4
err_count() { json "$S" "[.errors[] | select(.message | test(\"$1\")) | .count] | add"; }
expect_eq "HTTP 404 retried: 3 attempts" "$(err_count 'e.lua:14: HTTP 404')" 3
expect_eq "a nil concat names the script's line, retried" "$(err_count "e.lua:11: attempt to concatenate")" 3
expect_eq "empty url: the script's line, not retried" "$(err_count 'e.lua:16: shoal.http.get: url is an empty string')" 1
expect_eq "url with a space: the script's line, not runtime.lua" \
    "$(err_count 'e.lua:17: shoal.http: url has white space in it')" 1
expect_eq "url nil: not retried" "$(err_count 'e.lua:18: shoal.http.get: url must be a string, got nil')" 1
expect_eq "shoal.retry(false): not retried" "$(err_count 'e.lua:19: gone for good')" 1
expect_eq "error{retry=false}: its message, not retried" "$(err_count '^410 gone')" 1
expect_eq "inc(labels, n): an error naming the order" \
    "$(err_count 'e.lua:21: counter:inc takes .*the amount comes first')" 1
expect_eq "inc(n, 'junk'): labels must be a table" "$(err_count 'e.lua:22: counter:inc: labels must be a table')" 1
expect_eq "inc('junk'): the amount must be a number" "$(err_count 'e.lua:23: counter:inc takes .*must be a number, got string')" 1
expect_eq "set(labels, v): the value comes first" "$(err_count 'e.lua:24: gauge:set takes .*the value comes first')" 1
expect_eq "observe('12'): must be a number" "$(err_count 'e.lua:25: histogram:observe takes .*must be a number, got string')" 1
expect_eq "an item that is not JSON: the script's line, not retried" \
    "$(err_count 'e.lua:28: shoal.emit: the item is not JSON-serialisable')" 1
expect_eq "c.inc(5): call it with a colon" "$(err_count 'e.lua:26: metric:inc: call it with a colon')" 1

ERRLOG=$T/errors.err
expect_grep "a failure shows the script's frames" "in function 'handle'" "$ERRLOG"
if grep -v 'level=DEBUG' "$ERRLOG" | grep -q 'runtime.lua\|builtin#\|in function .xpcall.'; then
    fail "no runtime frames outside the debug lines" "$(grep -v 'level=DEBUG' "$ERRLOG" | grep -m2 'runtime.lua')"
else
    pass "no runtime frames outside the debug lines"
fi
expect_grep "the whole traceback is logged at debug" 'level=DEBUG.*whole traceback.*runtime.lua' "$ERRLOG"
expect_grep "the summary says 1 worker" 'e.lua: 1 worker x 64 concurrency' "$T/errors.out"

# init: no [builtin#..] frame, the script's line
cat >init.lua <<'EOF'
function init() local x = nil; return x .. "y" end
function produce(push) push({}) end
function handle() end
EOF
run_shoal init run init.lua --listen off
expect_eq "init error: exit 3" "$RC" 3
expect_grep "init error: the script's line" "init.lua:1: attempt to concatenate" "$ERR"
expect_no_grep "init error: no builtin frames" 'builtin#|runtime.lua' "$ERR"

run_shoal range run e.lua --workers 0 --listen off
expect_grep "a range error is written as whole numbers" 'out of range \(1 to [0-9]+\)' "$ERR"
expect_no_grep "no 1e+06 in a range error" 'e\+' "$ERR"

finish
