#!/usr/bin/env bash
# test_shared_queue.sh - --queue redis://: three shoal processes share one
# crawl of a generated site through a real redis-server. Every page is
# fetched, each exactly once, the per-host limit holds across all three
# (nginx's access log, check_access.py) with slots handed from job to job
# through reserve leases (seen in the store), done() runs in one process, and
# `shoal items` writes each page's item once. One process killed mid-run:
# the others take over its jobs once its leases expire, and no item is
# lost or doubled. Redis restarted mid-run (AOF) and paused (DEBUG SLEEP):
# the run completes, nothing lost. AUTH: a password in the URL.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/polite/polite.sh"
UA=shoal

REDIS=$(command -v redis-server || true)
if [ -z "$REDIS" ]; then
    fail "redis-server is installed" "apt-get install redis-server (scripts/test does)"
    finish
fi

# start_redis [ARGS...]: a redis-server on a free port, in $T/redis; sets
# REDIS_PORT and REDIS_PID
start_redis() {
    mkdir -p "$T/redis"
    REDIS_PORT=${REDIS_PORT:-$(free_port)}
    "$REDIS" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T/redis" --save '' \
        --appendonly yes --appendfsync always --enable-debug-command local "$@" \
        >>"$T/redis/log" 2>&1 &
    REDIS_PID=$!
    _BG_PIDS+=("$REDIS_PID")
    wait_for "redis-cli -p $REDIS_PORT ${REDIS_AUTH:-} ping | grep -q PONG" 10
}

"$PY" "$POLITE_DIR/gen_site.py" "$T/S" --name S --sections 30 --pages 100 --agent "$UA" >/dev/null
expect_eq "the site is generated" "$?" 0
# L: a small slow host (each leaf page takes a second), so that its jobs
# overlap and the shared per-host limit is reached across the processes
"$PY" "$POLITE_DIR/gen_site.py" "$T/L" --name L --sections 2 --pages 10 --slow 2000 \
    --page-bytes 3000 --agent "$UA" >/dev/null
expect_eq "the slow site is generated" "$?" 0
polite_site S "$T/S"
polite_site L "$T/L"
polite_nginx_start || { fail "nginx starts"; finish; }
START=http://127.0.0.1:$PORT_S/index.html
start_redis || { fail "redis-server starts" "$(show_file "$T/redis/log" 5)"; finish; }
# Three processes running 2 jobs each against a per-host limit of 5: only
# the shared limit keeps them under it (6 > 5), and each gets a share (a
# process holds no more leases than it runs jobs at once).
PER_HOST=5
CONC=2
CRAWL=(run "$SHOAL_ROOT/examples/crawl.lua" --listen off --quiet --user-agent "$UA"
    --workers 1 --concurrency $CONC --per-host $PER_HOST --lease-ttl 2)

# crawl_together TAG PREFIX N [EXTRA...]: N processes on one queue, in the
# background; their pids in PIDS
crawl_together() {
    local tag=$1 prefix=$2 n=$3 i
    shift 3
    PIDS=()
    for i in $(seq "$n"); do
        start_bg "$tag$i" "$SHOAL" "${CRAWL[@]}" "$@" --instance "$tag$i" \
            --queue "redis://127.0.0.1:$REDIS_PORT/0?prefix=$prefix" \
            --summary-json "$T/$tag$i.json" -- "$START"
        PIDS+=("$BG_PID")
    done
}

# wait_all TIMEOUT: waits for PIDS; RCS gets their exit codes
wait_all() {
    RCS=()
    local p
    for p in "${PIDS[@]}"; do
        if wait_exit "$p" "$1"; then RCS+=("$BG_RC"); else RCS+=(timeout); kill -KILL "$p"; fi
    done
}

# items PREFIX FILE: the run's items, written out by shoal items
items() {
    "$SHOAL" items "redis://127.0.0.1:$REDIS_PORT/0?prefix=$1" --output "$2" >"$T/items-$1.out" 2>&1
}
# urls FILE: the URLs of the items in FILE on site S, sorted
urls() { "$PY" -c 'import json, sys
for line in open(sys.argv[1]):
    url = json.loads(line)["url"]
    if ":%s/" % sys.argv[2] in url:
        print(url)' "$1" "$PORT_S" | sort; }

# --- three processes, nothing killed: the polite checks, all of them, and
# Prometheus scraping the three adds their jobs up to the run's
MPORTS=("$(free_port)" "$(free_port)" "$(free_port)")
PPORT=$(free_port)
mkdir -p "$T/prom"
{
    echo "global: { scrape_interval: 1s, scrape_timeout: 1s }"
    echo "scrape_configs:"
    echo "  - job_name: shoal"
    echo "    static_configs:"
    echo "      - targets: ['127.0.0.1:${MPORTS[0]}', '127.0.0.1:${MPORTS[1]}', '127.0.0.1:${MPORTS[2]}']"
} >"$T/prom/prometheus.yml"
start_bg prometheus prometheus --config.file="$T/prom/prometheus.yml" \
    --storage.tsdb.path="$T/prom/data" --web.listen-address="127.0.0.1:$PPORT" --log.level=warn
wait_port "$PPORT" 30 || fail "prometheus starts" "$(show_file "$T/prometheus.err" 5)"
# q QUERY: the first sample's value, "" if none
q() { curl -sf --get "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" |
    jq -r '.data.result[0].value[1] // ""'; }
polite_log_clear
# the items, written out while the run goes by `shoal items --follow`,
# which leaves by itself once the run is drained
start_bg follow "$SHOAL" items "redis://127.0.0.1:$REDIS_PORT/0?prefix=p3" \
    --output "$T/three.jsonl" --follow
FOLLOW_PID=$BG_PID
# the most reserve leases (taken without a slot, "r" in a lease hash) seen
# in the store while the three run, so that the polite checks below are
# known to cover slots handed from job to job
(
    most=0
    while :; do
        n=0
        for k in $(redis-cli -p "$REDIS_PORT" --scan --pattern 'p3:l:*'); do
            n=$((n + $(redis-cli -p "$REDIS_PORT" hvals "$k" | grep -c '^r')))
        done
        if [ "$n" -gt "$most" ]; then most=$n; echo "$most" >"$T/reserve.most"; fi
        sleep 0.02
    done
) &
SAMPLER=$!
PIDS=()
for i in 1 2 3; do
    start_bg "three$i" "$SHOAL" "${CRAWL[@]}" --instance "three$i" --linger 60s \
        --listen "127.0.0.1:${MPORTS[$((i - 1))]}" \
        --queue "redis://127.0.0.1:$REDIS_PORT/0?prefix=p3" --summary-json "$T/three$i.json" \
        -- "$START" "http://127.0.0.1:$PORT_L/index.html"
    PIDS+=("$BG_PID")
done
wait_for "[ -s '$T/three1.json' ] && [ -s '$T/three2.json' ] && [ -s '$T/three3.json' ]" 120
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
expect_eq "reserve leases were held while the three ran" \
    "$([ "$(cat "$T/reserve.most" 2>/dev/null || echo 0)" -gt 0 ] && echo yes)" yes
wait_exit "$FOLLOW_PID" 30
expect_eq "shoal items --follow: leaves by itself once the run is drained, exit 0" "$BG_RC" 0
ACKED=$(redis-cli -p "$REDIS_PORT" hget p3:n acked)
wait_for "[ \"\$(q 'count(up == 1)')\" = 3 ] &&
    [ \"\$(q 'sum(jobs_total{status=\"success\"})')\" = '$ACKED' ]" 30
PROM_SUM=$(q 'sum by (status) (jobs_total{status="success"})')
PROM_INSTANCES=$(q 'count(count by (instance) (jobs_total))')
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
wait_all 60
expect_eq "three processes share the crawl: all exit 0" "${RCS[*]}" "0 0 0"
expect_eq "Prometheus scrapes the three" "$PROM_INSTANCES" 3
polite_log_take "$T/three.log"
SIZE=$(wc -c <"$T/three.jsonl")
items p3 "$T/three.jsonl"
expect_eq "shoal items after the follower, same file: exit 0, nothing more to write" \
    "$?:$(wc -c <"$T/three.jsonl")" "0:$SIZE"
polite_check three --log "$T/three.log" --items "$T/three.jsonl" \
    --site "$PORT_S=$T/S/manifest.json" --site "$PORT_L=$T/L/manifest.json" \
    --per-host $PER_HOST --robots obey --user-agent "$UA" \
    --processes 3
PAGES=$(grep -c . "$T/three.jsonl")
SUM=0
BUSY=0
for i in 1 2 3; do
    ok=$(json "$T/three$i.json" .ok)
    SUM=$((SUM + ${ok:-0}))
    [ "${ok:-0}" -gt 0 ] && BUSY=$((BUSY + 1))
done
expect_eq "the three summaries' jobs add up to the pages" "$SUM" "$PAGES"
expect_eq "sum by (status) (jobs_total) across the three is the run's pages" "$PROM_SUM" "$PAGES"
expect_eq "each of the three did part of the crawl" "$BUSY" 3
expect_eq "done() ran in one process" "$(grep -l 'crawl finished' "$T"/three?.err | wc -l)" 1
expect_eq "the summaries name their instances" \
    "$(for i in 1 2 3; do json "$T/three$i.json" .instance; done | sort -u | wc -l)" 3

# --- one of three killed mid-run: its leases go to the others after the TTL
polite_log_clear
crawl_together kill pk 3 --rate 300
wait_for "[ \$(redis-cli -p $REDIS_PORT hget pk:n acked 2>/dev/null || echo 0) -gt 600 ] ||
    ! kill -0 ${PIDS[0]}" 60
kill -KILL "${PIDS[0]}"
T_KILL=$(now)
wait_all 120
expect_eq "the killed one exits 137, the others 0" "${RCS[*]}" "137 0 0"
polite_log_take "$T/kill.log"
items pk "$T/kill.jsonl"
urls "$T/kill.jsonl" >"$T/kill.urls"
urls "$T/three.jsonl" >"$T/three.urls"
if cmp -s "$T/three.urls" "$T/kill.urls"; then
    pass "with one killed: every page's item, each once"
else
    fail "with one killed: every page's item, each once" \
        "$(diff "$T/three.urls" "$T/kill.urls" | head -5)"
fi
AGAIN=$("$PY" -c 'import collections, sys
c = collections.Counter(l.split()[7] for l in open(sys.argv[1])
                       if "\"GET\"" in l and " 200 " in l and "robots.txt" not in l)
print(sum(n - 1 for n in c.values()))' "$T/kill.log")
# robots.txt aside (once a process): the killed one's leases, its $CONC in
# flight and any of its acks still in its outbox (sent within 2 ms)
expect_le "pages fetched twice: only the killed one's (its leases at the kill)" "$AGAIN" $((2 * CONC))
expect_eq "done() ran once, in a survivor" "$(grep -l 'crawl finished' "$T"/kill?.err | wc -l)" 1

# --- redis restarted mid-run, then paused: nothing lost, and the items
# follower rides it out too
start_bg follow2 "$SHOAL" items "redis://127.0.0.1:$REDIS_PORT/0?prefix=pr" \
    --output "$T/restart.jsonl" --follow
FOLLOW_PID=$BG_PID
crawl_together restart pr 2 --rate 500
wait_for "[ \$(redis-cli -p $REDIS_PORT hget pr:n acked 2>/dev/null || echo 0) -gt 300 ]" 60
kill -KILL "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
sleep 1 # an outage the workers must ride out
start_redis || fail "redis-server starts again"
wait_for "[ \$(redis-cli -p $REDIS_PORT hget pr:n acked 2>/dev/null || echo 0) -gt 1200 ]" 60
redis-cli -p "$REDIS_PORT" debug sleep 3 >/dev/null
wait_all 120
expect_eq "redis restarted and paused mid-run: both exit 0" "${RCS[*]}" "0 0"
expect_grep "the outage is said in the log" "Redis is back|went away|unreachable|cannot reach" "$T/restart1.err"
wait_exit "$FOLLOW_PID" 30
expect_eq "shoal items --follow through the restart: exit 0" "$BG_RC" 0
tr '\n' ' ' <"$T/follow2.err" >"$T/follow2.flat"
expect_grep "shoal items --follow says Redis went and came back" "trying again.*Redis is back" \
    "$T/follow2.flat"
items pr "$T/restart.jsonl"
urls "$T/restart.jsonl" >"$T/restart.urls"
if cmp -s "$T/three.urls" "$T/restart.urls"; then
    pass "after the restart and the pause: every page's item, each once"
else
    fail "after the restart and the pause: every page's item, each once" \
        "$(diff "$T/three.urls" "$T/restart.urls" | head -5)"
fi

# --- AUTH: a password in the URL
kill -TERM "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
REDIS_AUTH="-a sekret --no-auth-warning" start_redis --requirepass sekret
run_shoal auth "${CRAWL[@]}" --queue "redis://:sekret@127.0.0.1:$REDIS_PORT/1?prefix=pa" \
    -- "http://127.0.0.1:$PORT_S/s1/index.html"
expect_rc "a password in the URL: the run works" 0
run_shoal noauth "${CRAWL[@]}" --queue "redis://127.0.0.1:$REDIS_PORT/1?prefix=pb" -- "$START"
expect_rc "no password for a server that wants one: exit 4" 4
expect_grep "no password: a clear error" "NOAUTH|AUTH|auth|password" "$ERR"
run_shoal badport "${CRAWL[@]}" --queue "redis://u:sekret@127.0.0.1:99999/1" -- "$START"
expect_rc "a bad port: exit 4, as a queue that cannot open" 4
expect_grep "a bad port: said, the password hidden" "bad port.*redis://u:\*\*\*@127" "$ERR"
expect_no_grep "a bad port: the password is not shown" "sekret" "$ERR"
run_shoal tls "${CRAWL[@]}" --queue "rediss://u:sekret@127.0.0.1:$REDIS_PORT/1" -- "$START"
expect_rc "rediss://: a usage error (exit 2)" 2
expect_grep "rediss://: says TLS is not built in, and what to do" "rediss://.*not built in.*tunnel" \
    "$ERR"
expect_no_grep "rediss://: the password is not shown" "sekret" "$ERR"

finish
