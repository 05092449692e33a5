#!/usr/bin/env bash
# test_timeout.sh - --timeout is a wall-clock budget per attempt: a job that
# sleeps past it fails with "timed out" and is retried per --retries; a job
# whose HTTP request hangs (a server that accepts and never answers) is
# cancelled at the deadline and its connection closed; other jobs on the same
# worker keep completing meanwhile.
. "$(dirname "$0")/lib.sh"
# The HTTP client's own behaviour: no robots.txt fetch before the first
# request of each server (test_polite_* covers robots.txt).
export SHOAL_ROBOTS=ignore
cd "$T" || exit 1

# -- sleeping past the budget
cat >sleepy.lua <<'EOF'
function produce(push)
  push({kind = "slow"})
  for i = 1, 20 do push({kind = "quick", n = i}) end
end
function handle(job)
  if job.kind == "slow" then shoal.sleep(5) end
end
EOF
run_shoal sleepy run sleepy.lua --workers 1 --timeout 0.3 --retries 2 --retry-delay 0.01 \
    --listen off --quiet --summary-json sleepy.json
expect_rc "a job that sleeps past --timeout fails the run: exit 1" 1
expect_eq "the slow job failed after 3 attempts (failed 1, retried 2)" "$(json sleepy.json '"\(.failed) \(.retried)"')" "1 2"
expect_eq "every attempt counted as a timeout (timeouts 3)" "$(json sleepy.json .timeouts)" 3
expect_eq "the 20 quick jobs succeeded" "$(json sleepy.json .ok)" 20
expect_eq "the error says 'timed out' (3 attempts)" \
    "$(json sleepy.json '[.errors[] | select(.message | test("timed out")) | .count] | add')" 3
expect_grep "stderr log says timed out" 'timed out' "$ERR"
expect_ge "3 attempts of 0.3 s take >= 0.9 s" "$WALL" 0.85
expect_lt "and the 5 s sleep was not waited for (< 4 s)" "$WALL" 4

# -- the budget is per attempt, not per operation: ten 0.3 s sleeps overrun 0.5 s
# (the attempt's own duration, from its log line, is what is timed: the
# process's start-up on a loaded machine is not part of it)
cat >steps.lua <<'EOF'
function produce(push) push({}) end
function handle(job)
  for i = 1, 10 do shoal.sleep(0.3) end
end
EOF
run_shoal steps run steps.lua --workers 1 --timeout 0.5 --retries 0 --listen off --quiet --summary-json steps.json
expect_rc "many short waits adding up past --timeout: exit 1" 1
expect_eq "... the attempt timed out" "$(json steps.json .timeouts)" 1
STEPS_DUR=$(sed -n 's/.*msg="job failed".* duration=\([0-9.]*\).*/\1/p' "$ERR" | head -n1)
expect_ge "... after its 0.5 s budget" "$STEPS_DUR" 0.5
expect_lt "... at its budget, not after all ten sleeps (3 s): attempt < 1.5 s" "$STEPS_DUR" 1.5

# -- an HTTP request to a server that never answers
cat >hang.py <<'EOF'
import select, socket, sys, time
log = open(sys.argv[2], "a", buffering=1)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(64)
open(sys.argv[1] + ".tmp", "w").write(str(srv.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
conns = []
while True:
    r, _, _ = select.select([srv] + conns, [], [])
    for s in r:
        if s is srv:
            c, _ = srv.accept()
            conns.append(c)
            log.write("accept %.3f\n" % time.time())
        else:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:  # the client gave up: never answered, never closed by us
                conns.remove(s)
                s.close()
                log.write("closed %.3f\n" % time.time())
EOF
start_bg hang "$PY" hang.py hang.port hang.log
if wait_for "[ -s hang.port ]" 10; then pass "the never-answering server is up"; else fail "the never-answering server is up" "$(show_file hang.err)"; fi
HANG_URL=http://127.0.0.1:$(cat hang.port 2>/dev/null)/never

cat >hangjob.lua <<'EOF'
function produce(push)
  for i = 1, 3 do push({kind = "hang", n = i}) end
  for i = 1, 200 do push({kind = "quick", n = i}) end
end
function handle(job)
  if job.kind == "hang" then
    local res, err = shoal.http.get(shoal.args[1])
    if not res then error("request failed: " .. tostring(err)) end
    error("the server answered?! status " .. tostring(res.status))
  end
  shoal.sleep(0.005)
  shoal.log.info("quick done", {n = job.n, at = string.format("%.3f", shoal.now())})
end
EOF
T0=$(now)
run_shoal hangjob run hangjob.lua --workers 1 --concurrency 8 --timeout 1.5 --retries 1 --retry-delay 1 \
    --listen off --quiet --summary-json hangjob.json -- "$HANG_URL"
T_END=$(now)
expect_rc "hanging requests fail the run: exit 1" 1
expect_eq "the 3 hanging jobs failed (after 1 retry each)" "$(json hangjob.json '"\(.failed) \(.retried)"')" "3 3"
expect_eq "the 200 quick jobs all succeeded" "$(json hangjob.json .ok)" 200
expect_eq "the 6 cancelled requests are in the summary's requests and transport errors" \
    "$(json hangjob.json '"\(.http.requests) \(.http.errors)"')" "6 6"
expect_eq "and in its timed-out attempts" "$(json hangjob.json .timeouts)" 6
expect_eq "every hanging attempt's error says it timed out (6)" \
    "$(json hangjob.json '[.errors[] | select(.message | test("timed? ?out"; "i")) | .count] | add')" 6
expect_ge "each attempt waited for its budget (run >= 2 x 1.5 s + the 0.5-1 s backoff)" "$WALL" 3.4
expect_lt "and no longer (run < 7 s)" "$WALL" 7
LAST_QUICK=$(sed -n 's/.*msg="quick done".* at=\([0-9.]*\).*/\1/p' "$ERR" | sort -n | tail -n1)
N_QUICK=$(grep -c 'msg="quick done"' "$ERR")
expect_eq "every quick job logged its completion" "$N_QUICK" 200
expect_lt "quick jobs all finished while the requests hung (< 1.2 s after start)" \
    "$(fcalc "${LAST_QUICK:-999999999999} - $T0")" 1.2
wait_for "[ \$(grep -c ^closed hang.log) -ge 6 ]" 5
expect_eq "the server saw 6 connections (3 jobs x 2 attempts)" "$(grep -c ^accept hang.log)" 6
expect_eq "and every one was closed by shoal" "$(grep -c ^closed hang.log)" 6
FIRST_CLOSE=$(awk '/^closed/ {print $2}' hang.log | sort -n | head -n3 | tail -n1)
expect_lt "first attempts' connections closed at their deadline, not at exit (>= 1 s before exit)" \
    "$(fcalc "${FIRST_CLOSE:-999999999999} - $T_END")" -1

# -- a cancelled request is in http_client_requests_total, as code="error"
# (no response came); done() has no deadline and reads the metrics
cat >scrape.lua <<'EOF'
function produce(push) push({}) end
function handle(job)
  shoal.http.get(shoal.args[1])
end
function done(stats)
  local res = assert(shoal.http.get(shoal.args[2]))
  local f = assert(io.open("scrape.prom", "w"))
  f:write(res.body)
  f:close()
end
EOF
mport=$(free_port)
run_shoal scrape run scrape.lua --workers 1 --timeout 0.5 --retries 0 --listen "127.0.0.1:$mport" --quiet \
    --summary-json scrape.json -- "$HANG_URL" "http://127.0.0.1:$mport/metrics"
expect_rc "a request cancelled at --timeout: exit 1" 1
expect_grep "the cancelled request is counted with code=\"error\"" \
    '^http_client_requests_total\{method="GET",code="error"\} 1$' scrape.prom

# -- a job stopped by its CPU budget (the watchdog) counts as timed out
cat >spin.lua <<'EOF'
function produce(push) push({}) end
local sink
function handle(job)
  while true do sink = shoal.now() end
end
EOF
run_shoal spin run spin.lua --workers 1 --timeout 0.3 --retries 1 --retry-delay 0.01 --listen off --quiet --summary-json spin.json
expect_rc "a job spinning past --timeout: exit 1" 1
expect_eq "both attempts stopped by the watchdog are timed out" "$(json spin.json .timeouts)" 2
expect_grep "the text summary says so" 'failed, 1 retried, 2 timed out' "$OUT"

finish
