#!/usr/bin/env bash
# test_pprof_tools.sh - shoal's pprof as the tools people use read it,
# without the sampler: the test_pprof helper (spec/unit/telemetry/profiles/test_pprof.c)
# encodes a known window with pprof.c and pushes it with pyroscope.c.
#
# go tool pprof: -raw shows the stacks (leaf first), counts, CPU time,
# period and window; -top the flat and cumulative time per function;
# -tags the worker, thread and profile_id labels. A Pyroscope receiver
# (spec/integration/pyroscope/receiver.js, decoding with pprof-format)
# gets the push as Pyroscope's /ingest takes it, with the same stacks and
# labels; a 503 is retried, a 400 is not. The receiver itself is checked
# to refuse what Pyroscope would misread.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

HELPER=${SHOAL_BUILD:-$SHOAL_ROOT/build}/test_pprof
RECV_DIR=$SHOAL_ROOT/spec/integration/pyroscope
if [ ! -x "$HELPER" ]; then
    fail "the test_pprof helper is built" "not found: $HELPER"
    finish
fi
"$HELPER" demo.pb.gz >helper.out 2>helper.err
check "test_pprof writes the demo profile" test -s demo.pb.gz
expect_eq "... gzip'd" "$(head -c2 demo.pb.gz | od -An -tx1 | tr -d ' ')" 1f8b

# What the demo window holds (spec/unit/telemetry/profiles/test_pprof.c): per stack, root
# last, the count and CPU ns.
cat >want_stacks.txt <<'EOF'
20 200000000 handle examples/crawl.lua:42;worker_main
30 300000000 curl_multi_perform;worker_main
5 50000000 worker_main
50 500000000 handle examples/crawl.lua:42;worker_main
EOF

# ---------------------------------------------------------------- go tool pprof
if ! command -v go >/dev/null; then
    fail "go is installed (go tool pprof reads the profile)" "apt-get install golang-go"
else
    export PPROF_TMPDIR=$T HOME=$T
    go tool pprof -raw demo.pb.gz >raw.txt 2>raw.err
    expect_eq "pprof -raw reads it without a complaint" "$(cat raw.err)" ""
    expect_grep "period type and period" '^Period: 10000000$' raw.txt
    expect_grep "... cpu nanoseconds" '^PeriodType: cpu nanoseconds$' raw.txt
    expect_grep "the window's start" '^Time: 2023-11-14 22:13:20.25 \+0000 UTC$' raw.txt
    expect_grep "the window's length" '^Duration: 10s$' raw.txt
    expect_grep "sample types samples/count, cpu/nanoseconds" '^samples/count cpu/nanoseconds$' raw.txt
    # location id -> function name, from the Locations section
    sed -n '/^Locations/,/^Mappings/s/^ *\([0-9][0-9]*\): 0x[0-9a-f]* M=[0-9]* \(.*\) [^ ]*:[0-9]* s=[0-9]*$/\1\t\2/p' \
        raw.txt >locs.tsv
    awk -F'\t' 'NR == FNR { name[$1] = $2; next }
        /^Locations/ { exit }
        /^ *[0-9]+ +[0-9]+: / {
            sub(/:/, "", $0); n = split($0, f, " ")
            s = f[1] " " f[2] " "
            for (i = 3; i <= n; i++) s = s (i > 3 ? ";" : "") name[f[i]]
            print s
        }' locs.tsv FS=' ' raw.txt | sort >got_stacks.txt
    expect_eq "every stack, leaf first, with its count and CPU time" \
        "$(diff want_stacks.txt got_stacks.txt)" ""
    expect_grep "labels: thread and worker" 'thread:\[worker\] worker:\[1\]' raw.txt
    expect_grep "... worker is a label" 'worker:\[1\]' raw.txt
    expect_grep "... profile_id on the sampled span's stack" 'profile_id:\[00c0ffee12345678\] thread:\[worker\] worker:\[1\]' raw.txt

    go tool pprof -top demo.pb.gz >top.txt 2>top.err
    expect_eq "pprof -top reads it without a complaint" "$(cat top.err)" ""
    expect_grep "total CPU 1.05 s" 'Total samples = 1050ms' top.txt
    # name flat cum, per function
    awk '$1 ~ /^[0-9]/ && $2 ~ /%$/ && $5 ~ /%$/ { n = $6; for (i = 7; i <= NF; i++) n = n " " $i; print n "|" $1 "|" $4 }' \
        top.txt | sort >got_top.txt
    printf '%s\n' 'curl_multi_perform|300ms|300ms' 'handle examples/crawl.lua:42|700ms|700ms' \
        'worker_main|50ms|1050ms' >want_top.txt
    expect_eq "flat and cumulative time per function" "$(diff want_top.txt got_top.txt)" ""
    go tool pprof -top -sample_index=samples demo.pb.gz >top_n.txt 2>/dev/null
    expect_grep "105 samples in all" '105, 100% of 105 total' top_n.txt

    go tool pprof -tags -sample_index=samples demo.pb.gz >tags.txt 2>tags.err
    expect_eq "pprof -tags reads it without a complaint" "$(cat tags.err)" ""
    tags=$(tr -s ' ' <tags.txt | sed 's/^ //')
    for want in 'thread: Total 105.0' '100.0 (95.24%): worker' '5.0 ( 4.76%): main' \
        'worker: Total 100.0' '80.0 (80.00%): 1' '20.0 (20.00%): 2' \
        'profile_id: Total 50.0' '50.0 ( 100%): 00c0ffee12345678'; do
        if grep -qxF -- "$want" <<<"$tags"; then pass "pprof -tags: $want"; else
            fail "pprof -tags: $want" "$(show_file tags.txt 20)"; fi
    done
fi

# ---------------------------------------------------------------- Pyroscope
if ! command -v node >/dev/null; then
    fail "node is installed (the Pyroscope receiver runs on it)"
    finish
fi
if [ ! -d "$RECV_DIR/node_modules/pprof-format" ]; then
    fail "receiver packages installed" "run scripts/test (npm ci in spec/integration/pyroscope)"
    finish
fi

# receiver TAG ARGS...: starts one writing TAG.jsonl; sets PPORT
receiver() {
    local tag=$1
    shift
    start_bg "rx_$tag" node "$RECV_DIR/receiver.js" --port 0 --out "$T/$tag.jsonl" "$@"
    wait_for "grep -q '^listening' '$T/rx_$tag.out'" 20 ||
        { fail "$tag receiver starts" "$(cat "$T/rx_$tag.err")"; finish; }
    PPORT=$(sed -n 's/^listening port=\([0-9]*\).*/\1/p' "$T/rx_$tag.out")
}
# stacks FILE: what the receiver decoded, in want_stacks.txt's form
stacks() {
    jq -r 'select(.samples) | .samples[] | "\(.values[0]) \(.values[1]) \(.stack | join(";"))"' "$1" | sort
}

receiver ok
"$HELPER" --push "http://127.0.0.1:$PPORT" shoal-demo >push.out 2>push.err
expect_eq "push: accepted" "$(cat push.out)" "exported=1 failed=0 dropped=0"
expect_eq "no request broke a rule" "$(jq -r 'select(.violation) | .violation' ok.jsonl)" ""
expect_eq "one request" "$(jq -s length ok.jsonl)" 1
expect_eq "name: the application" "$(json ok.jsonl .app)" shoal-demo
expect_eq "... and the service_name label" "$(json ok.jsonl '.labels | to_entries | map("\(.key)=\(.value)") | join(",")')" \
    "service_name=shoal-demo"
expect_eq "from, until: Unix seconds around the window" \
    "$(json ok.jsonl '"\(.from_raw) \(.until_raw)"')" "1700000000 1700000011"
expect_eq "spyName" "$(json ok.jsonl .spyName)" shoal
expect_eq "a multipart form with the gzip'd profile, no format parameter" \
    "$(json ok.jsonl '"\(.body) \(.gzip) \(.format)"')" "multipart true "
expect_eq "sample types" "$(json ok.jsonl '.sample_types | join(",")')" "samples/count,cpu/nanoseconds"
expect_eq "period" "$(json ok.jsonl '"\(.period_type) \(.period)"')" "cpu/nanoseconds 10000000"
expect_eq "window in the profile" "$(json ok.jsonl '"\(.time_nanos) \(.duration_nanos)"')" \
    "1700000000250000000 10000000000"
expect_eq "pprof-format decodes every stack, count and CPU time" "$(stacks ok.jsonl | diff want_stacks.txt -)" ""
expect_eq "... and the labels" \
    "$(jq -r '.samples[] | [.values[0], .labels.worker // "-", .labels.thread, .labels.profile_id // "-"] | join(" ")' ok.jsonl | sort)" \
    "$(printf '%s\n' '20 2 worker -' '30 1 worker -' '5 - main -' '50 1 worker 00c0ffee12345678')"

# faults: a 503 twice is retried until it is taken; a 400 is not retried
receiver busy --fail-first 2
"$HELPER" --push "http://127.0.0.1:$PPORT" shoal-demo >busy.out 2>busy.err
expect_eq "503 twice, then accepted" "$(cat busy.out)" "exported=1 failed=0 dropped=0"
expect_eq "... in three requests" "$(jq -r 'if .refused then "refused \(.refused)" elif .violation then "violation" else "ok" end' busy.jsonl | paste -sd,)" \
    "refused 503,refused 503,ok"
receiver refuse --fail-first 1 --fail-with 400
"$HELPER" --push "http://127.0.0.1:$PPORT" shoal-demo >refuse.out 2>refuse.err
expect_eq "400: failed, not retried" "$(cat refuse.out) $(jq -s length refuse.jsonl)" "exported=0 failed=1 dropped=0 1"
expect_grep "... and said so" 'pyroscope push failed.*status=400' refuse.err

# the receiver holds clients to what Pyroscope reads: the raw form with
# format=pprof is taken, a form with format=pprof is not, nor a bad name
receiver rules
U="http://127.0.0.1:$PPORT/ingest"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
expect_eq "receiver: raw body with format=pprof is taken" \
    "$(code --data-binary @demo.pb.gz "$U?name=raw%7Bservice_name%3Draw%7D&from=1700000000&until=1700000010&format=pprof")" 200
expect_eq "... and decoded the same" "$(stacks rules.jsonl | diff want_stacks.txt -)" ""
expect_eq "receiver: a form with format=pprof is refused" \
    "$(code -F profile=@demo.pb.gz "$U?name=x&format=pprof")" 400
expect_eq "receiver: a form without a profile part is refused" \
    "$(code -F other=@demo.pb.gz "$U?name=x")" 400
expect_eq "receiver: an application name with a space is refused" \
    "$(code -F profile=@demo.pb.gz "$U?name=a%20b")" 400
expect_eq "receiver: from must be an integer (Pyroscope also takes now-1h; clients send numbers)" \
    "$(code -F profile=@demo.pb.gz "$U?name=x&from=now-1h")" 400
expect_eq "receiver: a body that is not a pprof is refused" \
    "$(printf '\x0f\xff\xff' >junk.bin; code -F profile=@junk.bin "$U?name=x")" 400

finish
