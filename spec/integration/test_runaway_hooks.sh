#!/usr/bin/env bash
# test_runaway_hooks.sh - a runaway loop never hangs shoal, wherever it is.
#
# Every entry into script code runs under the watchdog with a budget: the
# top level, init() and done() have --hook-timeout (so does all of `shoal
# check`), handle() and labels() have --timeout, and produce() is stopped
# when the run ends (--duration here). Each is tried with an interpreted
# loop (jit.off(): the watchdog's hook stops it, with the script's line)
# and a compiled `while true do end` (the hook never fires: the thread is
# abandoned, or the process exits, with a message naming the hook). Each
# run must end within its budget plus the 2 s grace plus slack for a
# loaded machine, with the right exit code and message. Then: a second
# Ctrl-C ends the process at once whatever Lua is doing, and Ctrl-C while
# the script loads ends it at once too.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

SLACK=10 # seconds beyond budget + grace a loaded ASan machine may need

# script NAME MODE BODY: writes NAME.lua; MODE i turns the JIT off first so
# the loop below stays in the interpreter, where the hook reaches it.
script() {
    local name=$1 mode=$2
    { [ "$mode" = i ] && echo 'jit.off()'; printf '%s\n' "$3"; } >"$name.lua"
}
LOOP='local n = 0 while true do n = n + 1 end'
CLOOP='while true do end'

for mode in i c; do
    loop=$LOOP
    [ "$mode" = c ] && loop=$CLOOP
    kind=interpreted
    [ "$mode" = c ] && kind=compiled

    # -- the top level, in `shoal check` and `shoal run`
    script "top_$mode" "$mode" "$loop
function handle(job) end"
    run_shoal "check_$mode" check "top_$mode.lua" --hook-timeout 1
    expect_rc "check, $kind top-level loop: exit 3" 3
    expect_lt "check, $kind top-level loop: ends within its budget" "$WALL" $((1 + 2 + SLACK))
    if [ "$mode" = i ]; then
        expect_grep "check, interpreted: stopped at its line, naming the top level and the budget" \
            "top_i\.lua:2: the script's top level ran past its 1s time budget \(--hook-timeout\)" "$ERR"
    else
        expect_grep "check, compiled: says the top level did not return within 1s" \
            "top_c\.lua: the script's top level did not return within 1s \(--hook-timeout\)" "$ERR"
    fi
    run_shoal "top_$mode" run "top_$mode.lua" --hook-timeout 1 --listen off --quiet
    expect_rc "run, $kind top-level loop: exit 3" 3
    expect_lt "run, $kind top-level loop: ends within its budget" "$WALL" $((1 + 2 + SLACK))
    expect_grep "run, $kind top-level loop: the message names the top level" \
        "the script's top level (ran past its 1s time budget|did not return within 1s)" "$ERR"

    # -- init()
    script "init_$mode" "$mode" "function init(w) $loop end
function produce(push) push({}) end
function handle(job) end"
    run_shoal "init_$mode" run "init_$mode.lua" --hook-timeout 1 --workers 1 --listen off --quiet
    expect_rc "$kind loop in init(): exit 3" 3
    expect_lt "$kind loop in init(): ends within its budget" "$WALL" $((1 + 2 + SLACK))
    if [ "$mode" = i ]; then
        expect_grep "interpreted init(): stopped at its line, naming init() and the budget" \
            "init_i\.lua:2: init\(\) ran past its 1s time budget \(--hook-timeout\)" "$ERR"
    else
        expect_grep "compiled init(): says init() did not return within 1s" \
            "init\(\) did not return within 1s \(--hook-timeout\)" "$ERR"
    fi

    # -- produce(): no budget of its own; --duration ends the run and stops it
    script "produce_$mode" "$mode" "function produce(push)
  push({})
  $loop
end
function handle(job) end"
    run_shoal "produce_$mode" run "produce_$mode.lua" --duration 1 --timeout 1 --workers 1 \
        --listen off --quiet --summary-json "produce_$mode.json"
    expect_lt "$kind loop in produce() with --duration 1: ends" "$WALL" $((1 + 2 + SLACK))
    expect_eq "$kind loop in produce(): the job it pushed ran" "$(json "produce_$mode.json" .ok)" 1
    expect_grep "$kind loop in produce(): the summary is printed" '^ +jobs +1 ok' "$OUT"
    if [ "$mode" = i ]; then
        expect_rc "interpreted produce() stopped at the run's end: exit 0" 0
        expect_grep "interpreted produce(): logged as stopped, not failed" \
            'msg="produce\(\) stopped: the run is ending"' "$ERR"
    else
        expect_rc "compiled produce() that cannot be stopped: exit 5 (wedged)" 5
        expect_grep "compiled produce(): the error names produce() and why" \
            'produce\(\) did not stop within 2s of the run ending \(duration\).*abandoned' "$ERR"
        expect_eq "compiled produce(): the summary counts it as wedged" "$(json "produce_$mode.json" .wedged)" 1
    fi

    # -- handle(): --timeout
    script "handle_$mode" "$mode" "function produce(push) push({}) end
function handle(job) $loop end"
    run_shoal "handle_$mode" run "handle_$mode.lua" --timeout 1 --retries 0 --max-wedged 0 \
        --workers 1 --listen off --quiet
    expect_lt "$kind loop in handle(): ends within its budget" "$WALL" $((1 + 2 + SLACK))
    if [ "$mode" = i ]; then
        expect_rc "interpreted handle(): the job fails: exit 1" 1
        expect_grep "interpreted handle(): stopped at its line, with the budget" \
            'handle_i\.lua:3: job ran past its 1s time budget \(--timeout\)' "$ERR"
    else
        expect_rc "compiled handle() past --max-wedged 0: exit 5" 5
        expect_grep "compiled handle(): the worker is stuck in handle() of job 1" \
            'stuck in handle\(\) of job 1' "$ERR"
    fi

    # -- labels(): --timeout
    script "labels_$mode" "$mode" "options = { metric_labels = { \"site\" } }
function produce(push) push({}) end
function handle(job) end
function labels(job, outcome) $loop end"
    run_shoal "labels_$mode" run "labels_$mode.lua" --timeout 1 --retries 0 --max-wedged 0 \
        --workers 1 --listen off --quiet
    expect_lt "$kind loop in labels(): ends within its budget" "$WALL" $((1 + 2 + SLACK))
    if [ "$mode" = i ]; then
        expect_rc "interpreted labels(): the job still counts (exit 0)" 0
        expect_grep "interpreted labels(): warned, at its line, with the budget" \
            'labels_i\.lua:5: labels\(\) ran past its 1s time budget \(--timeout\)' "$ERR"
    else
        expect_rc "compiled labels() past --max-wedged 0: exit 5" 5
        expect_grep "compiled labels(): the worker is stuck in labels() of job 1" \
            'stuck in labels\(\) of job 1' "$ERR"
    fi

    # -- done(): --hook-timeout
    script "done_$mode" "$mode" "function produce(push) push({}) end
function handle(job) end
function done(stats) $loop end"
    run_shoal "done_$mode" run "done_$mode.lua" --hook-timeout 1 --workers 1 --listen off --quiet \
        --summary-json "done_$mode.json"
    expect_lt "$kind loop in done(): ends within its budget" "$WALL" $((1 + 2 + SLACK))
    expect_grep "$kind loop in done(): the summary is printed" '^ +jobs +1 ok' "$OUT"
    if [ "$mode" = i ]; then
        expect_rc "interpreted done(): a script error, exit 3" 3
        expect_grep "interpreted done(): stopped at its line, naming done() and the budget" \
            'done\(\) failed: done_i\.lua:4: done\(\) ran past its 1s time budget \(--hook-timeout\)' "$ERR"
    else
        expect_rc "compiled done(): the producer is wedged, exit 5" 5
        expect_grep "compiled done(): says done() did not return within its 1s budget" \
            'done\(\) did not return within its 1s budget \(--hook-timeout\)' "$ERR"
    fi
done

# done() is bounded as a whole, waits included
cat >done_sleep.lua <<'EOF'
function produce(push) push({}) end
function handle(job) end
function done(stats) shoal.sleep(100) end
EOF
run_shoal done_sleep run done_sleep.lua --hook-timeout 1 --workers 1 --listen off --quiet
expect_rc "done() sleeping past --hook-timeout: exit 3" 3
expect_grep "... says done() did not finish within its budget" 'done\(\) did not finish within its 1s budget' "$ERR"
expect_lt "... and ends at its budget, not after the sleep" "$WALL" $((1 + SLACK))

# `shoal check` is bounded by default (10 s)
run_shoal check_default check top_i.lua
expect_rc "check with the default budget: exit 3" 3
expect_grep "check with the default budget: 10s, named" "the script's top level ran past its 10s time budget" "$ERR"
expect_ge "check with the default budget: not stopped early" "$WALL" 9.5
expect_lt "check with the default budget: ends within it" "$WALL" $((10 + 2 + SLACK))

# -- a reload (--watch) whose top level runs away fails; the old script runs on
cat >watched.lua <<'EOF'
function produce(push) for i = 1, 30 do push({n = i}) end end
function handle(job) shoal.sleep(0.1) shoal.log.info("ran", {n = job.n}) end
EOF
start_bg watch "$SHOAL" run watched.lua --watch --hook-timeout 1 --workers 1 --concurrency 1 \
    --listen off --quiet --summary-json watch.json
WPID=$BG_PID
if wait_for "grep -q 'msg=ran' watch.err" 20; then
    printf 'jit.off()\nlocal n = 0 while true do n = n + 1 end\n' >>watched.lua
    touch -d '+2 seconds' watched.lua # a new mtime even on coarse clocks
else
    fail "the watched run makes progress" "$(show_file watch.err 5)"
fi
if wait_exit "$WPID" 30; then pass "the watched run ends"; else fail "the watched run ends" "$(show_file watch.err 5)"; fi
expect_eq "a runaway reload: the old script ran every job (exit 0)" "$BG_RC" 0
expect_eq "... all 30 jobs ok" "$(json watch.json .ok)" 30
expect_grep "... the reload failed, naming the reloaded top level and the budget" \
    "reload failed.*reloaded script's top level \(--watch\) ran past its 1s time budget" watch.err

# -- signals
# sig_run TAG SCRIPT READY ARGS...: starts shoal, waits for READY in its
# stderr, sends SIGTERM, then SIGINT 0.3 s later; it must exit 130 within
# 3 s of the second signal.
second_signal() {
    local tag=$1 scr=$2 ready=$3
    shift 3
    start_bg "$tag" "$SHOAL" run "$scr" --listen off "$@"
    local pid=$BG_PID
    if ! wait_for "grep -q '$ready' $tag.err" 20; then
        fail "$tag: reaches the loop" "$(show_file "$tag.err" 5)"
        kill -KILL "$pid" 2>/dev/null
        return
    fi
    sleep 0.5 # into the loop (only the bound below is asserted)
    kill -TERM "$pid"
    sleep 0.3
    local t0
    t0=$(now)
    kill -INT "$pid"
    if wait_exit "$pid" 3; then
        pass "$tag: the second signal ends the process within 3 s"
        expect_eq "$tag: exit 130" "$BG_RC" 130
    else
        fail "$tag: the second signal ends the process within 3 s" "$(show_file "$tag.err" 5)"
        kill -KILL "$pid" 2>/dev/null
    fi
}
cat >prod_forever.lua <<'EOF'
function produce(push)
  shoal.log.info("looping")
  while true do end
end
function handle(job) end
EOF
second_signal prod_forever prod_forever.lua looping --workers 1
cat >handle_forever.lua <<'EOF'
function produce(push) for i = 1, 4 do push({n = i}) end end
function handle(job)
  shoal.log.info("looping")
  while true do end
end
EOF
second_signal handle_forever handle_forever.lua looping --workers 2 --timeout 1000

# one Ctrl-C is enough for a produce() loop the hook can reach
cat >prod_interp.lua <<'EOF'
jit.off()
function produce(push)
  shoal.log.info("looping")
  local n = 0 while true do n = n + 1 end
end
function handle(job) end
EOF
start_bg prod_interp "$SHOAL" run prod_interp.lua --listen off --workers 1
pid=$BG_PID
if wait_for "grep -q looping prod_interp.err" 20; then
    kill -TERM "$pid"
    if wait_exit "$pid" $((2 + SLACK)); then
        pass "interpreted produce() loop: one SIGTERM ends the run"
        expect_eq "interpreted produce() loop: exit 130" "$BG_RC" 130
        expect_grep "interpreted produce() loop: stopped, not failed" 'produce\(\) stopped: the run is ending' prod_interp.err
    else
        fail "interpreted produce() loop: one SIGTERM ends the run" "$(show_file prod_interp.err 5)"
        kill -KILL "$pid" 2>/dev/null
    fi
else
    fail "interpreted produce() loop: reaches the loop" "$(show_file prod_interp.err 5)"
fi

# Ctrl-C while the top level loops (shoal run, shoal check) ends shoal at once
for verb in run check; do
    start_bg "ctrlc_$verb" "$SHOAL" "$verb" top_c.lua
    pid=$BG_PID
    sleep 0.5 # loading (only the bound below is asserted)
    kill -INT "$pid"
    if wait_exit "$pid" 3; then
        pass "shoal $verb: Ctrl-C during a runaway top level ends it within 3 s"
        expect_eq "shoal $verb: exit 130" "$BG_RC" 130
        expect_grep "shoal $verb: says what it interrupted" "interrupted while the script's top level" "ctrlc_$verb.err"
    else
        fail "shoal $verb: Ctrl-C during a runaway top level ends it within 3 s" "$(show_file "ctrlc_$verb.err" 5)"
        kill -KILL "$pid" 2>/dev/null
    fi
done

finish
