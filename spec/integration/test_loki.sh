#!/usr/bin/env bash
# test_loki.sh - log lines as Loki receives them (--loki URL). The receiver
# (spec/integration/loki/receiver.js) holds every request to the rules of
# Loki's JSON push API and refuses what breaks one, so what passes here is
# what Loki would take.
#
# A run of jobs: every line of the log file arrives exactly once, unaltered,
# gzip'd, in streams labelled service_name, service_instance_id (the
# process's id, --instance or HOST-PID) and level, with nanosecond
# timestamps from the run and the job's trace ids as structured metadata.
# Faults: a Loki that refuses (503, 429 + Retry-After) and then recovers
# loses nothing; one that is down costs the run nothing but counted lines.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

RECV="$SHOAL_ROOT/spec/integration/loki/receiver.js"
if ! command -v node >/dev/null; then
    fail "node is installed (the receiver runs on it)"
    finish
fi
if ! "$SHOAL" run --help 2>&1 | grep -q -- --loki; then
    fail "shoal run has --loki"
    finish
fi

# receiver TAG ARGS...: starts one writing TAG.jsonl; sets LPORT
receiver() {
    local tag=$1
    shift
    start_bg "rx_$tag" node "$RECV" --port 0 --out "$T/$tag.jsonl" "$@"
    wait_for "grep -q '^listening' '$T/rx_$tag.out'" 20 ||
        { fail "$tag receiver starts" "$(cat "$T/rx_$tag.err")"; finish; }
    LPORT=$(sed -n 's/^listening port=\([0-9]*\).*/\1/p' "$T/rx_$tag.out")
}
# lines FILE: every line Loki accepted, one per line
lines() { jq -r 'select(.line != null) | .line' "$1"; }

mkdir -p www
echo ok >www/p.txt
start_nginx "$T/www" || { fail "nginx starts"; finish; }
cat >many.lua <<'EOF'
function produce(push) for i = 1, tonumber(shoal.args[2]) do push({ i = i }) end end
function handle(job) assert(shoal.http.get(shoal.args[1] .. "/p.txt?i=" .. job.i)) end
EOF
BASE="http://127.0.0.1:$NGINX_PORT"

# ---------------------------------------------------------------- every line, once
N=2000
receiver all
t0=$(date +%s%N)
# traced (to a collector that is not there: the ids exist all the same)
run_shoal all run many.lua --workers 2 --quiet --listen off --log-file "$T/all.log" \
    --loki "http://127.0.0.1:$LPORT" --otlp-endpoint "http://127.0.0.1:1" \
    --summary-json all.json --instance 'loki "a"' -- "$BASE" "$N"
t1=$(date +%s%N)
expect_rc "run with --loki: exit code" 0
expect_eq "all jobs done" "$(json all.json .ok)" "$N"
expect_eq "no request broke a rule" "$(jq -r 'select(.violation) | .violation' all.jsonl | head -3)" ""
expect_eq "one \"job done\" line per job" "$(lines all.jsonl | grep -c 'msg="job done"')" "$N"
expect_eq "... each job's exactly once" \
    "$(lines all.jsonl | grep 'msg="job done"' | grep -o 'job.id=[0-9]*' | sort -u | wc -l)" "$N"
lines all.jsonl | sort >loki.sorted
sort all.log >file.sorted
expect_eq "Loki has every line of the log file, once and unaltered" \
    "$(diff file.sorted loki.sorted | head -5)" ""
expect_gt "... and the file has more than the job lines" "$(wc -l <all.log)" "$N"
expect_eq "every request was gzip'd" "$(jq -r 'select(.gzip == false) | .req' all.jsonl | wc -l)" 0
expect_eq "batched: far fewer requests than lines" \
    "$(jq -r 'select(.line != null) | .req' all.jsonl | sort -u | wc -l | awk '{ print ($1 < 50) }')" 1
expect_eq "service_name is the script's name" \
    "$(jq -r 'select(.line != null) | .labels.service_name' all.jsonl | sort -u)" many
expect_eq "service_instance_id is --instance" \
    "$(jq -r 'select(.line != null) | .labels.service_instance_id' all.jsonl | sort -u)" 'loki "a"'
expect_eq "... and every line says it" \
    "$(lines all.jsonl | grep -c ' instance="loki \\"a\\""')" "$(wc -l <all.log)"
expect_eq "level label is the line's level, lower case" \
    "$(jq -r 'select(.line != null) | "\(.labels.level) \(.line | capture("level=(?<l>[A-Z]+)").l | ascii_downcase)"' all.jsonl | awk '$1 != $2' | wc -l)" 0
expect_eq "job lines are in the info stream" \
    "$(jq -r 'select(.line != null and (.line | contains("msg=\"job done\""))) | .labels.level' all.jsonl | sort -u)" info
expect_eq "timestamps are nanoseconds within the run" \
    "$(jq -r --argjson a "$t0" --argjson b "$t1" 'select(.line != null and ((.ts | tonumber) < $a or (.ts | tonumber) > $b)) | .ts' all.jsonl | wc -l)" 0
expect_eq "... and agree with the line's time= (ms)" \
    "$(jq -r 'select(.line != null) | [(.ts | .[0:13]), (.line | capture("time=(?<t>[^ ]+)").t | sub("\\.(?<ms>[0-9]{3})Z$"; "Z") | fromdateiso8601 | tostring), (.line | capture("time=[^ ]+\\.(?<ms>[0-9]{3})Z").ms)] | select(.[0] != .[1] + .[2]) | .[0]' all.jsonl | wc -l)" 0
expect_eq "job lines carry trace_id and span_id as structured metadata" \
    "$(jq -r 'select(.line != null and (.line | contains("msg=\"job done\""))) | select((.metadata.trace_id // "" | test("^[0-9a-f]{32}$")) and (.metadata.span_id // "" | test("^[0-9a-f]{16}$"))) | .req' all.jsonl | wc -l)" "$N"
expect_eq "... the ids in the line's text" \
    "$(jq -r 'select(.metadata != null) | .metadata as $m | select(.line | contains("trace_id=\($m.trace_id) span_id=\($m.span_id)") | not) | .line' all.jsonl 2>&1 | head -3)" ""
expect_eq "lines without ids have no metadata" \
    "$(jq -r 'select(.line != null and .metadata == null and (.line | contains("trace_id="))) | .line' all.jsonl | head -3)" ""
expect_eq "summary: every line exported, none lost" \
    "$(json all.json '.telemetry.logs_loki | "\(.exported) \(.dropped + .failed)"')" "$(wc -l <all.log) 0"
expect_no_grep "no push failure said" 'loki push failed' "$ERR"

# ---------------------------------------------------------------- refusals, then recovery
for mode in "503" "429 --retry-after 1"; do
    set -- $mode
    tag=r$1
    receiver "$tag" --fail-first 3 --fail-with $mode
    run_shoal "$tag" run many.lua --workers 2 --quiet --listen off --log-file "$T/$tag.log" \
        --loki "http://127.0.0.1:$LPORT" --summary-json "$tag.json" -- "$BASE" 1000
    expect_rc "$1 then recovery: exit code" 0
    expect_match "$1 then recovery: service_instance_id is HOST-PID by default" \
        "$(jq -r 'select(.line != null) | .labels.service_instance_id' $tag.jsonl | sort -u)" \
        "$(uname -n)-[0-9]+"
    expect_eq "$1 then recovery: refused 3 times" "$(jq -r 'select(.refused) | .req' $tag.jsonl | wc -l)" 3
    expect_eq "$1 then recovery: every job line arrives once" \
        "$(lines $tag.jsonl | grep 'msg="job done"' | grep -o 'job.id=[0-9]*' | sort | uniq -c | awk '$1 == 1' | wc -l)" 1000
    # the warning is in the file too: it went to Loki like any other line
    expect_eq "$1 then recovery: every line of the file arrives once" \
        "$(diff <(sort $tag.log) <(lines $tag.jsonl | sort) | head -5)" ""
    expect_eq "$1 then recovery: no violation" "$(jq -r 'select(.violation) | .violation' $tag.jsonl | head -3)" ""
    expect_eq "$1 then recovery: the summary agrees" \
        "$(json $tag.json '.telemetry.logs_loki | "\(.exported) \(.dropped + .failed)"')" "$(wc -l <$tag.log) 0"
    expect_eq "$1 then recovery: said once" "$(grep -c 'loki push failed' "$ERR")" 1
    expect_grep "$1 then recovery: with the status" "loki push failed.*status=$1" "$ERR"
done
# Retry-After: 1 was waited for (three times, with the batch delay of 1 s)
expect_gt "429 + Retry-After: 1 is honoured" "$WALL" 3

# ---------------------------------------------------------------- Loki down
# (port 1: nothing listens there)
run_shoal down run many.lua --workers 2 --quiet --listen off --log-file "$T/down.log" \
    --loki "http://127.0.0.1:1" --summary-json down.json -- "$BASE" 2000
expect_rc "Loki down: exit code" 0
expect_eq "Loki down: all jobs done" "$(json down.json .ok)" 2000
expect_eq "Loki down: every line counted, none exported" \
    "$(json down.json '.telemetry.logs_loki | "\(.exported) \(.dropped + .failed)"')" "0 $(wc -l <down.log)"
expect_eq "Loki down: said once" "$(grep -c 'loki push failed' "$ERR")" 1
expect_lt "Loki down: no wait at exit" "$WALL" 10

# a bad URL is a usage error that names the flag
run_shoal badurl run many.lua --listen off --loki "ftp://x" -- "$BASE" 1
expect_rc "--loki ftp://x: usage error" 2
expect_grep "... naming --loki" 'loki' "$ERR"
finish
