#!/usr/bin/env bash
# test_memory.sh - --memory caps each worker's Lua state: a job that builds a
# huge table or string fails with a message naming the cap and --memory,
# while the other jobs of the run (even those in flight in the same state)
# succeed, and the process neither crashes nor stops. Garbage is not live
# memory: many jobs that each allocate and drop a few MiB stay under the cap.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

cat >bomb.lua <<'EOF'
function produce(push)
  for i = 1, 120 do
    if i == 10 then
      push({kind = "table_bomb"})
    elseif i == 60 then
      push({kind = "string_bomb"})
    else
      push({kind = "work", n = i})
    end
  end
end

function handle(job)
  if job.kind == "table_bomb" then
    local t = {}
    for i = 1, 1e9 do t[i] = {i} end
  elseif job.kind == "string_bomb" then
    local s, keep = "x", {}
    for i = 1, 40 do s = s .. s; keep[i] = s end
  else
    shoal.sleep(0.01)
    local t = {}
    for i = 1, 20000 do t[i] = tostring(i) .. "-" .. job.n end
    shoal.sleep(0.01)
    assert(#t == 20000)
  end
end
EOF
for retries in 0 1; do
    run_shoal "bomb$retries" run bomb.lua --workers 1 --concurrency 4 --memory 64 --retries "$retries" \
        --retry-delay 0.01 --listen off --quiet --summary-json "bomb$retries.json"
    S=bomb$retries.json
    expect_rc "--retries $retries: memory bombs fail the run with exit 1 (no crash)" 1
    expect_eq "--retries $retries: both bombs failed" "$(json "$S" .failed)" 2
    expect_eq "--retries $retries: all 118 other jobs succeeded, in the same state" "$(json "$S" .ok)" 118
    expect_eq "--retries $retries: bombs retried $retries time(s) each" "$(json "$S" .retried)" $((2 * retries))
    expect_eq "--retries $retries: every failed attempt names the memory cap and --memory" \
        "$(json "$S" '[.errors[] | select(.message | test("memory") and test("--memory") and test("64")) | .count] | add')" \
        $((2 * (retries + 1)))
    expect_grep "--retries $retries: the summary was printed" 'failed' "$OUT"
    expect_no_grep "--retries $retries: no crash report on stderr" 'Segmentation|Aborted|panic|PANIC' "$ERR"
done
expect_grep "stderr explains the cap" 'memory.*--memory' "$ERR"

# -- churn: 64 jobs x 8 MiB of garbage each, 8 times the 64 MiB cap in all
# (without collection the 8th job would hit it), live memory far under it.
# 64 jobs make the claim as well as 300 did, at a fifth of the work: an
# ASan build on a loaded 2-core machine once took over 55 s for 300. The
# deadline is generous too (RUN_LIMIT 150): what is checked is the outcome.
cat >churn.lua <<'EOF'
function produce(push)
  for i = 1, 64 do push({n = i}) end
end
function handle(job)
  local s = string.rep(string.char(65 + job.n % 26), 8 * 1024 * 1024)
  shoal.sleep(0.001)
  assert(#s == 8 * 1024 * 1024)
end
EOF
RUN_LIMIT=150 run_shoal churn run churn.lua --workers 1 --concurrency 4 --memory 64 --retries 0 \
    --listen off --quiet --summary-json churn.json
expect_rc "garbage is collected: jobs under the cap never fail (exit 0)" 0
expect_eq "churn: all 64 jobs ok (512 MiB of garbage under a 64 MiB cap)" "$(json churn.json .ok)" 64

# -- the default cap is generous enough for the same bomb-free work
RUN_LIMIT=150 run_shoal nocap run churn.lua --workers 1 --concurrency 4 --retries 0 --listen off --quiet
expect_rc "same churn with the default --memory: exit 0" 0

finish
