#!/usr/bin/env bash
# test_polite_metrics.sh - what a crawl's politeness shows a user: the
# per-host series of /metrics (scraped after the run with --linger, and
# parsed by Prometheus's promtool), the summary's hosts, the counts of pushes
# out of scope and of URLs robots.txt disallowed; autothrottle moving a
# host's delay; many hosts folded into __other__ so that a series stays
# bounded.
#
# Sites from polite/gen_site.py on one nginx: A with robots.txt disallowing
# /private/ and a Crawl-delay of 0.05 for our agent, B plain.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/polite/polite.sh"
RUN_LIMIT=120
UA='politebot/1.0'
GEN=$POLITE_DIR/gen_site.py

"$PY" "$GEN" "$T/A" --name A --sections 2 --pages 5 --agent politebot --crawl-delay 0.05 &&
    "$PY" "$GEN" "$T/B" --name B --sections 2 --pages 5 --seed 2
expect_eq "the sites are generated" "$?" 0
polite_site A "$T/A"
polite_site B "$T/B"
polite_nginx_start || { fail "nginx starts"; finish; }
A=http://127.0.0.1:$PORT_A
B=http://127.0.0.1:$PORT_B

# metric NAME LABELS FILE: the sample's value ("" if absent)
metric() {
    awk -v want="$1{$2}" '$1 == want { print $2 }' "$3"
}

# -- a crawl of both, /metrics scraped once it is over (--linger)
mport=$(free_port)
start_bg crawl "$SHOAL" run "$SHOAL_ROOT/examples/crawl.lua" --workers 2 --listen "127.0.0.1:$mport" \
    --linger 30s --quiet --per-host 2 --max-depth 1 --user-agent "$UA" \
    --summary-json "$T/crawl.json" --output "$T/crawl.jsonl" -- "$A/index.html" "$B/index.html"
CRAWL_PID=$BG_PID
wait_for "[ -s '$T/crawl.json' ]" 60 || fail "the crawl ends" "$(show_file crawl.err)"
curl -s "http://127.0.0.1:$mport/metrics" >"$T/metrics.txt"
kill -INT "$CRAWL_PID" 2>/dev/null
wait_exit "$CRAWL_PID" 20

if command -v promtool >/dev/null; then
    if promtool check metrics <"$T/metrics.txt" >"$T/promtool.txt" 2>&1; then
        pass "promtool accepts /metrics"
    else
        fail "promtool accepts /metrics" "$(head -5 "$T/promtool.txt")"
    fi
fi
for host in "127.0.0.1:$PORT_A" "127.0.0.1:$PORT_B"; do
    from_summary=$(json "$T/crawl.json" ".hosts[] | select(.host == \"$host\") | .started")
    expect_gt "summary: $host started jobs" "$from_summary" 0
    expect_eq "/metrics: host_jobs_started_total{host=\"$host\"} is the summary's" \
        "$(metric host_jobs_started_total "host=\"$host\"" "$T/metrics.txt")" "$from_summary"
    expect_eq "/metrics: nothing left in flight on $host" \
        "$(metric host_jobs_in_flight "host=\"$host\"" "$T/metrics.txt")" 0
done
expect_eq "summary: two hosts" "$(json "$T/crawl.json" .hosts_total)" 2
expect_eq "/metrics: A's delay is its Crawl-delay" \
    "$(metric host_delay_seconds "host=\"127.0.0.1:$PORT_A\"" "$T/metrics.txt")" 0.05
expect_eq "/metrics: B's delay is --delay's (0)" \
    "$(metric host_delay_seconds "host=\"127.0.0.1:$PORT_B\"" "$T/metrics.txt")" 0
expect_gt "/metrics: pushes past --max-depth counted" \
    "$(metric jobs_out_of_scope_total 'reason="depth"' "$T/metrics.txt")" 0
expect_gt "/metrics: links robots.txt disallows counted" \
    "$(metric jobs_out_of_scope_total 'reason="robots"' "$T/metrics.txt")" 0
expect_gt "summary: the disallowed are counted" "$(json "$T/crawl.json" .disallowed)" 0
expect_grep "the text summary lists the hosts" "^  hosts +127\\.0\\.0\\.1:($PORT_A|$PORT_B) " \
    "$T/crawl.out"
expect_no_grep "no /private/ page was requested" '"/private/' "$POLITE_LOG"

# -- --autothrottle: each host starts at 1 s and moves towards its latency
polite_log_clear
run_shoal throttle run "$SHOAL_ROOT/examples/crawl.lua" --workers 1 --listen off --quiet \
    --autothrottle --max-pages 12 --user-agent "$UA" --summary-json "$T/throttle.json" -- "$B/index.html"
expect_rc "--autothrottle: exit 0" 0
d=$(json "$T/throttle.json" '.hosts[0].delay')
expect_lt "--autothrottle: the delay came down from 1 s (loopback answers in ms)" "$d" 0.5
expect_gt "--autothrottle: ... but it is a delay" "$d" 0
# the first starts were a second apart, as autothrottle begins
polite_log_take "$T/throttle.log"
gap=$(grep -v robots.txt "$T/throttle.log" | awk 'NR == 1 { a = $1 - $2 } NR == 2 { print $1 - $2 - a }')
expect_ge "--autothrottle: the first two pages started about 1 s apart" "$gap" 0.5

# -- 40 groups of one host: 20 hosts by name, the rest as __other__
cat >"$T/groups.lua" <<EOF
function produce(push)
  for i = 1, 40 do
    for j = 1, i % 3 + 1 do
      push({ url = "$B/index.html" }, { group = "g" .. i })
    end
  end
end
function handle(job) assert(shoal.http.get(job.url)) end
EOF
mport=$(free_port)
start_bg groups "$SHOAL" run "$T/groups.lua" --workers 1 --listen "127.0.0.1:$mport" --linger 30s \
    --quiet --user-agent "$UA" --summary-json "$T/groups.json"
GROUPS_PID=$BG_PID
wait_for "[ -s '$T/groups.json' ]" 60 || fail "the groups run ends" "$(show_file groups.err)"
curl -s "http://127.0.0.1:$mport/metrics" >"$T/groups.txt"
kill -INT "$GROUPS_PID" 2>/dev/null
wait_exit "$GROUPS_PID" 20
expect_eq "40 groups: 21 series (20 named, __other__)" \
    "$(grep -c '^host_jobs_started_total{' "$T/groups.txt")" 21
expect_eq "40 groups: the series add up to every job" \
    "$(awk '/^host_jobs_started_total\{/ { s += $2 } END { print s }' "$T/groups.txt")" \
    "$(json "$T/groups.json" .ok)"
expect_gt "40 groups: __other__ has the rest" \
    "$(metric host_jobs_started_total 'host="__other__"' "$T/groups.txt")" 0
expect_eq "summary: 40 hosts" "$(json "$T/groups.json" .hosts_total)" 40
expect_eq "summary: the busiest 10 and the rest" "$(json "$T/groups.json" '.hosts | length')" 11

finish
