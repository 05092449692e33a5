#!/usr/bin/env bash
# test_linger.sh - --linger: a short run's final figures can still be
# scraped after it ended. The run prints its summary, says where it
# lingers, keeps /metrics (final values), /healthz and /readyz (503,
# "finished") up for the duration, then exits with the run's exit code; a
# Ctrl-C during the linger ends it at once, still with the run's code (the
# run did finish: 130 is for a run cut short). A bad duration is a usage
# error; with --listen off there is nothing to serve and no wait.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

cat >short.lua <<'EOF2'
function produce(push)
  for i = 1, tonumber(shoal.args[1]) do push({ i = i }) end
end
function handle(job)
  if job.i == 3 then error("job 3 fails") end
end
EOF2

# lingering TAG: waits until shoal (BG_PID, stderr TAG.err) says it
# lingers; sets PORT
lingering() {
    wait_for "grep -q 'the run is over; serving' '$T/$1.err'" 30 ||
        { fail "$1: says it lingers" "$(show_file "$T/$1.err" 10)"; finish; }
    PORT=$(server_port "$T/$1.err")
}

# ---------------------------------------------------------------- scraped after the run
t0=$(now)
start_bg linger "$SHOAL" run short.lua --workers 2 --quiet --listen 127.0.0.1:0 --retries 0 \
    --linger 3s --summary-json linger.json -- 20
pid=$BG_PID
lingering linger
expect_grep "linger: the summary came first" "jobs +19 ok, 1 failed" "$T/linger.out"
expect_grep "linger: says where and how long" \
    "serving its final metrics at http://127.0.0.1:$PORT/metrics for 3s more" "$T/linger.err"
curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" >metrics.txt
expect_grep "linger: /metrics has the final jobs_total (success)" '^jobs_total\{status="success"\} 19$' metrics.txt
expect_grep "linger: ... and (failed)" '^jobs_total\{status="failed"\} 1$' metrics.txt
expect_eq "linger: /healthz answers" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/healthz")" 200
code=$(curl -s -o readyz.txt -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/readyz")
expect_eq "linger: /readyz is 503" "$code" 503
expect_grep "linger: ... and says the run finished" "^finished: the run is over" readyz.txt
wait_exit "$pid" 30
expect_eq "linger: exits by itself with the run's code (a job failed)" "$BG_RC" 1
expect_ge "linger: ... after lingering 3 s" "$(fcalc "$(now) - $t0")" 3
expect_eq "linger: the server is gone after" \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/healthz")" 000

# ---------------------------------------------------------------- Ctrl-C ends it
start_bg sigint "$SHOAL" run short.lua --workers 2 --quiet --listen 127.0.0.1:0 --retries 0 \
    --linger 2m -- 5
pid=$BG_PID
lingering sigint
t1=$(now)
kill -INT "$pid"
wait_exit "$pid" 10
expect_eq "Ctrl-C: ends the linger with the run's code, not 130" "$BG_RC" 1
expect_lt "Ctrl-C: ... at once" "$(fcalc "$(now) - $t1")" 5

SHOAL_LINGER=1m start_bg sigterm "$SHOAL" run short.lua --workers 1 --quiet \
    --listen 127.0.0.1:0 -- 2
pid=$BG_PID
lingering sigterm
expect_grep "SHOAL_LINGER sets it too" "for 60s more" "$T/sigterm.err"
kill -TERM "$pid"
wait_exit "$pid" 10
expect_eq "SIGTERM: ends the linger with the run's code (all ok)" "$BG_RC" 0

# ---------------------------------------------------------------- settings
run_shoal bad run short.lua --quiet --listen off --linger 3x -- 1
expect_rc "a bad duration: usage error" 2
expect_grep "a bad duration: says what a duration is" "--linger: '3x' is not a duration" "$ERR"
run_shoal ms run short.lua --quiet --listen 127.0.0.1:0 --linger 500ms -- 1
expect_rc "500ms: run ok" 0
expect_grep "500ms: lingers half a second" "for 0.5s more" "$ERR"
run_shoal off run short.lua --quiet --listen off --linger 1m -- 1
expect_rc "--listen off: run ok" 0
expect_grep "--listen off: says --linger has nothing to serve" "nothing to serve" "$ERR"
expect_lt "--listen off: no wait" "$WALL" 20
finish
