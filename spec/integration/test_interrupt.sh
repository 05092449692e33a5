#!/usr/bin/env bash
# test_interrupt.sh - Ctrl-C and SIGTERM: the first stops new jobs, lets the
# in-flight ones finish (none counted as failed), prints the summary marked
# "interrupted" and exits 130; a second Ctrl-C exits 130 at once even when
# jobs would take much longer.
#
# Progress is read from the script's own log lines (every job logs when it
# starts and ends), never guessed with a sleep.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

cat >long.lua <<'EOF'
function produce(push)
  for i = 1, tonumber(shoal.args[1]) do push({n = i}) end
end
function handle(job)
  shoal.log.info("job start", {n = job.n})
  shoal.sleep(tonumber(shoal.args[2]))
  shoal.log.info("job end", {n = job.n})
end
function done(stats)
  local f = assert(io.open(shoal.args[3] or "done.json", "w"))
  f:write(shoal.json.encode({ok = stats.ok, failed = stats.failed}))
  f:close()
end
EOF

count_lines() { grep -c "msg=\"$1\"" "$2" 2>/dev/null || true; }
numbers_of() { sed -n "s/.*msg=\"$1\".* n=\([0-9]*\).*/\1/p" "$2" | sort -n; }

# interrupt_run TAG SIGNAL: 10k jobs of 0.2 s, 2 workers x 20; after 50 jobs
# have ended, one SIGNAL.
interrupt_run() {
    local tag=$1 sig=$2
    start_bg "$tag" "$SHOAL" run long.lua --workers 2 --concurrency 20 --listen off --quiet \
        --summary-json "$tag.json" -- 10000 0.2 "$tag.done.json"
    local pid=$BG_PID
    if ! wait_for "[ \$(count_lines 'job end' $tag.err) -ge 50 ]" 20; then
        fail "$tag: jobs make progress before the signal" "$(show_file "$tag.err" 5)"
        return
    fi
    local t_sig ended_at_sig
    ended_at_sig=$(count_lines 'job end' "$tag.err")
    t_sig=$(now)
    kill -"$sig" "$pid"
    if wait_exit "$pid" 5; then
        pass "$tag: exits within 5 s of SIG$sig"
    else
        fail "$tag: exits within 5 s of SIG$sig" "still running; stderr:" "$(show_file "$tag.err" 5)"
        kill -KILL "$pid" 2>/dev/null
        return
    fi
    local t_exit
    t_exit=$(now)
    expect_eq "$tag: exit code 130" "$BG_RC" 130
    expect_lt "$tag: stopped promptly (in-flight jobs take 0.2 s; < 2 s)" "$(fcalc "$t_exit - $t_sig")" 2
    local S=$tag.json
    expect_eq "$tag: summary JSON says interrupted" "$(json "$S" .interrupted)" true
    expect_grep "$tag: text summary says interrupted" 'interrupted' "$tag.out"
    expect_eq "$tag: no job counted as failed" "$(json "$S" .failed)" 0
    local ok ended
    ok=$(json "$S" .ok)
    ended=$(count_lines 'job end' "$tag.err")
    expect_lt "$tag: the run stopped early (ok < 10000)" "$ok" 10000
    expect_eq "$tag: ok == jobs that logged their end" "$ok" "$ended"
    numbers_of 'job start' "$tag.err" >"$tag.started"
    numbers_of 'job end' "$tag.err" >"$tag.ended"
    if cmp -s "$tag.started" "$tag.ended"; then
        pass "$tag: every job that started also finished (in-flight jobs completed)"
    else
        fail "$tag: every job that started also finished (in-flight jobs completed)" \
            "started but never ended: $(comm -23 "$tag.started" "$tag.ended" | head -10 | tr '\n' ' ')"
    fi
    expect_eq "$tag: summary started == ok (nothing abandoned)" "$(json "$S" .started)" "$ok"
    expect_eq "$tag: done(stats) still ran, with the final ok count" "$(json "$tag.done.json" .ok)" "$ok"
    # 40 jobs run at once: only those in flight at the signal may end after
    # it (plus the few that ended between counting and kill)
    expect_le "$tag: no new jobs after the signal (ok <= ended before it + 2 x 40)" "$ok" "$((ended_at_sig + 80))"
}

interrupt_run sigint INT
interrupt_run sigterm TERM

# -- a second Ctrl-C aborts at once, even with jobs that would take 30 s
start_bg abort "$SHOAL" run long.lua --workers 2 --concurrency 5 --listen off -- 100 30
PID=$BG_PID
if wait_for "[ \$(count_lines 'job start' abort.err) -ge 10 ]" 10; then
    pass "abort: 10 long jobs are in flight"
else
    fail "abort: 10 long jobs are in flight" "$(show_file abort.err 5)"
fi
kill -INT "$PID"
# the first Ctrl-C must not end a run whose jobs are still going
if wait_for "grep -q 'interrupt' abort.err || ! kill -0 $PID" 5 && kill -0 "$PID" 2>/dev/null; then
    pass "abort: after the first Ctrl-C the run keeps finishing its in-flight jobs"
else
    fail "abort: after the first Ctrl-C the run keeps finishing its in-flight jobs" "$(show_file abort.err 5)"
fi
T_SIG=$(now)
kill -INT "$PID" 2>/dev/null
if wait_exit "$PID" 5; then
    pass "abort: the second Ctrl-C ends the process within 5 s"
    expect_eq "abort: exit code 130" "$BG_RC" 130
    expect_lt "abort: it ended at once (< 2 s, not the jobs' 30 s)" "$(fcalc "$(now) - $T_SIG")" 2
else
    fail "abort: the second Ctrl-C ends the process within 5 s" "$(show_file abort.err 5)"
    kill -KILL "$PID" 2>/dev/null
fi

# -- Ctrl-C while a failed job waits out its retry backoff: no waiting
cat >backoff.lua <<'EOF'
function produce(push) push({}) end
function handle(job) error("always fails") end
EOF
start_bg backoff "$SHOAL" run backoff.lua --workers 1 --retries 5 --retry-delay 20 --listen off --quiet \
    --summary-json backoff.json
PID=$BG_PID
if wait_for "grep -q 'always fails' backoff.err" 10; then
    T_SIG=$(now)
    kill -INT "$PID"
    if wait_exit "$PID" 5; then
        pass "backoff: Ctrl-C during a 10-20 s retry backoff ends the run within 5 s"
        expect_eq "backoff: exit code 130" "$BG_RC" 130
        expect_lt "backoff: promptly (< 2 s)" "$(fcalc "$(now) - $T_SIG")" 2
        expect_eq "backoff: the waiting job is left unrun, not failed" "$(json backoff.json '"\(.failed) \(.queued_left)"')" "0 1"
    else
        fail "backoff: Ctrl-C during a 10-20 s retry backoff ends the run within 5 s" "$(show_file backoff.err 5)"
    fi
else
    fail "backoff: the first attempt failed" "$(show_file backoff.err 5)"
fi

# -- Ctrl-C while produce() is still producing (here: waiting) ends the run
cat >slowproducer.lua <<'EOF'
function produce(push)
  push({n = 1})
  shoal.log.info("producer waiting")
  shoal.sleep(60)
  push({n = 2})
end
function handle(job) shoal.log.info("job end", {n = job.n}) end
EOF
start_bg producer "$SHOAL" run slowproducer.lua --workers 1 --listen off --quiet --summary-json producer.json
PID=$BG_PID
if wait_for "grep -q 'job end' producer.err && grep -q 'producer waiting' producer.err" 10; then
    kill -INT "$PID"
    if wait_exit "$PID" 5; then
        pass "producer: Ctrl-C during produce() ends the run within 5 s"
        expect_eq "producer: exit code 130" "$BG_RC" 130
        expect_eq "producer: the job pushed before it ran (ok 1)" "$(json producer.json .ok)" 1
    else
        fail "producer: Ctrl-C during produce() ends the run within 5 s" "$(show_file producer.err 5)"
    fi
else
    fail "producer: the first job ran while produce() waits" "$(show_file producer.err 5)"
fi

finish
