#!/usr/bin/env bash
# test_polite_interrupt.sh - Ctrl-C in the middle of a polite crawl: shoal
# exits 130 soon, starts no new request after it, and the items file is
# whole JSON lines, one per page that was fetched (nginx's access log says
# which), none twice; the politeness rules held up to the stop.
#
# Needs issue 14's features: --delay (a slow crawl to interrupt), --robots
# and --user-agent, crawl.lua's items. Until they land this test fails,
# saying first which flags are missing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/polite/polite.sh"
UA='politebot/1.0'

polite_needs --per-host --delay --robots --user-agent

# 1 + 4 + 32 pages at 0.2 s apart: some 7.5 s, stopped after a few pages
"$PY" "$POLITE_DIR/gen_site.py" "$T/E" --name E --sections 4 --pages 8
expect_eq "the site is generated" "$?" 0
polite_site E "$T/E"
polite_nginx_start || { fail "nginx starts"; finish; }
E=http://127.0.0.1:$PORT_E

start_bg int "$SHOAL" run "$SHOAL_ROOT/examples/crawl.lua" --workers 2 --concurrency 64 \
    --listen off --quiet --per-host 2 --delay 0.2 --robots obey --user-agent "$UA" \
    --output "$T/int.jsonl" --summary-json "$T/int.json" -- "$E/index.html"
pid=$BG_PID
wait_for "! kill -0 $pid || { [ -f '$T/int.jsonl' ] && [ \$(wc -l <'$T/int.jsonl') -ge 5 ]; }" 60
if ! kill -0 "$pid" 2>/dev/null || [ "$(grep -c . "$T/int.jsonl" 2>/dev/null)" -lt 5 ]; then
    fail "items are written while the crawl goes (5 within 60 s)" "$(show_file "$T/int.err" 10)"
    finish
fi
T_INT=$(now)
kill -INT "$pid"
if wait_exit "$pid" 30; then
    expect_eq "Ctrl-C: exit 130" "$BG_RC" 130
else
    fail "Ctrl-C: shoal ends within 30 s" "$(show_file "$T/int.err" 10)"
    kill -KILL "$pid" 2>/dev/null
fi
polite_log_take "$T/int.log"

LINES=$(grep -c . "$T/int.jsonl")
expect_lt "the crawl was stopped part-way (fewer than the 37 pages)" "$LINES" 37
expect_eq "the summary counts the items in the file" "$(json "$T/int.json" .items.written)" "$LINES"
LAST_START=$("$PY" -c 'import sys
starts = [float(l.split()[0]) - float(l.split()[1]) for l in open(sys.argv[1]) if l.strip()]
print("%.3f" % max(starts) if starts else 0)' "$T/int.log")
expect_le "no request started over 2 s after Ctrl-C" "$LAST_START" "$(fcalc "$T_INT + 2")"
# --partial: whole JSON lines, an item only for a page that answered 200
# and none twice, and every politeness rule, but not every page fetched
polite_check interrupted --partial --log "$T/int.log" --items "$T/int.jsonl" \
    --site "$PORT_E=$T/E/manifest.json" --per-host 2 --delay 0.2 --robots obey --user-agent "$UA"

finish
