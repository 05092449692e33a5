#!/usr/bin/env bash
# test_polite_hosts.sh - one slow host does not slow the others: ten hosts
# (nginx servers on ten loopback ports), one of them slow (every page takes
# a second: nginx limit_rate), crawled at once with --per-host 2. The nine
# fast hosts must finish within a loose bound of the time they take when the
# slow one is not in the crawl at all (both runs are made here, and timed
# from nginx's access log), while the slow host is held to 2 in flight.
#
# Needs issue 14's features: crawl.lua taking every argument as a start URL;
# --per-host and --delay, the limits held per host across all workers, a
# full host's jobs skipped rather than waited on. Until they land this test
# fails, saying first which flags are missing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/polite/polite.sh"
RUN_LIMIT=150
UA='politebot/1.0'
GEN=$POLITE_DIR/gen_site.py

polite_needs --per-host --delay --user-agent

# H0 slow: its 18 leaf pages take a second each (its home and sections are
# fast, so they are all queued at once), 2 at a time: some 9 s. H1-H9 fast:
# 1 + 3 + 18 pages each, 0.02 s apart: some 0.5 s whatever the box.
"$PY" "$GEN" "$T/H0" --name H0 --sections 3 --pages 6 --slow 2000 --page-bytes 3000
GEN_RC=$?
for i in 1 2 3 4 5 6 7 8 9; do
    "$PY" "$GEN" "$T/H$i" --name "H$i" --sections 3 --pages 6 --seed "$i" || GEN_RC=1
done
expect_eq "the ten sites are generated" "$GEN_RC" 0
for i in 0 1 2 3 4 5 6 7 8 9; do polite_site "H$i" "$T/H$i"; done
polite_nginx_start || { fail "nginx starts with ten servers"; finish; }
FAST=() SITES=()
for i in 0 1 2 3 4 5 6 7 8 9; do
    port=PORT_H$i
    SITES+=(--site "${!port}=$T/H$i/manifest.json")
    [ "$i" = 0 ] || FAST+=("http://127.0.0.1:${!port}/index.html")
done
t0=$(now)
curl -s -o /dev/null "http://127.0.0.1:$PORT_H0/s0/p0.html"
expect_ge "H0: a leaf page takes about a second (limit_rate)" "$(fcalc "$(now) - $t0")" 0.8
expect_lt "H0: its home page is fast" \
    "$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT_H0/index.html")" 0.5
expect_lt "H1: a page is fast" \
    "$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT_H1/s0/p0.html")" 0.5
polite_log_clear

crawl() {
    local tag=$1
    shift
    run_shoal "$tag" run "$SHOAL_ROOT/examples/crawl.lua" --workers 2 --concurrency 64 \
        --listen off --quiet --per-host 2 --delay 0.02 --user-agent "$UA" --output "$T/$tag.jsonl" -- "$@"
    expect_rc "$tag: exit 0" 0
    polite_log_take "$T/$tag.log"
    polite_log_clear
}

# span STATS PORTS...: seconds from the first request on any host to the
# last answer on the hosts PORTS
span() {
    "$PY" - "$@" <<'EOF'
import json, sys
try:
    stats = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    stats = {}
ports = [p for p in sys.argv[2:] if p in stats]
if not stats or len(ports) != len(sys.argv[2:]):
    print("none")
else:
    first = min(s["first_start"] for s in stats.values())
    print("%.3f" % (max(stats[p]["last_end"] for p in ports) - first))
EOF
}
FAST_PORTS=()
for i in 1 2 3 4 5 6 7 8 9; do port=PORT_H$i; FAST_PORTS+=("${!port}"); done

# -- the nine fast hosts alone
crawl alone "${FAST[@]}"
polite_check alone --log "$T/alone.log" --items "$T/alone.jsonl" "${SITES[@]:2}" \
    --per-host 2 --delay 0.02 --user-agent "$UA" --stats "$T/alone.stats"
ALONE=$(span "$T/alone.stats" "${FAST_PORTS[@]}")

# -- all ten, the slow one first on the command line
crawl together "http://127.0.0.1:$PORT_H0/index.html" "${FAST[@]}"
polite_check together --log "$T/together.log" --items "$T/together.jsonl" "${SITES[@]}" \
    --per-host 2 --delay 0.02 --user-agent "$UA" --stats "$T/together.stats"
TOGETHER=$(span "$T/together.stats" "${FAST_PORTS[@]}")
SLOW=$(span "$T/together.stats" "$PORT_H0")
echo "# measured: the nine fast hosts took ${ALONE}s alone, ${TOGETHER}s beside the slow one," \
    "which took ${SLOW}s"

# loose: twice the time alone and a second more, under ASan on a busy box;
# a scheduler that waits on the slow host takes its whole time instead
BOUND=$(fcalc "2 * ${ALONE/none/0} + 1")
expect_le "the nine fast hosts finish within 2 x their time alone + 1 s (${ALONE}s alone)" \
    "$TOGETHER" "$BOUND"
expect_gt "the slow host took longer than that bound (else this proves nothing)" "$SLOW" "$BOUND"

finish
