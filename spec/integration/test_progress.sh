#!/usr/bin/env bash
# test_progress.sh - off a terminal (CI, `| tee`, a file), the live progress
# line becomes one plain line every 10 s: no carriage returns or escape
# codes in the log, and --quiet still silences it.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

cat >slow.lua <<'EOF'
function produce(push) push({}) end
function handle(job) shoal.sleep(12.5) end
EOF
# the --quiet run goes alongside, so the test waits 12.5 s once
start_bg quiet "$SHOAL" run slow.lua --workers 1 --timeout 30 --listen off --quiet
QUIET_PID=$BG_PID
run_shoal plain run slow.lua --workers 1 --timeout 30 --listen off --summary-json plain.json
expect_rc "a job of 12.5 s: exit 0" 0
expect_eq "one plain progress line at 10 s" \
    "$(grep -cE '^shoal: +1[0-2]\.[0-9]s  0 ok  0 failed  0 retried  0 queued  1 in flight  0 jobs/s$' "$ERR")" 1
expect_eq "no other progress line" "$(grep -c 'in flight' "$ERR")" 1
if LC_ALL=C grep -q $'[\r\033]' "$ERR"; then
    fail "no carriage return or escape code in stderr off a terminal" "$(od -c "$ERR" | head -5)"
else
    pass "no carriage return or escape code in stderr off a terminal"
fi

wait_exit "$QUIET_PID" 30
expect_eq "--quiet: exit 0" "$BG_RC" 0
expect_no_grep "--quiet: no progress line" 'in flight' quiet.err

finish
