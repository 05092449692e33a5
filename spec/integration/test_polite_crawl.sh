#!/usr/bin/env bash
# test_polite_crawl.sh - examples/crawl.lua crawls politely, as the servers
# see it: nginx's access log ($msec, $request_time) and the items file are
# checked by polite/check_access.py, rule by rule.
#
# Needs issue 14's features: crawl.lua taking every argument as a start URL
# and --max-depth; --per-host, --delay, --delay-jitter, --robots,
# --user-agent; robots.txt obeyed with its Crawl-delay; 429 back-off with
# Retry-After; a redirect loop as one error; redirects deduplicated. Until
# they land this test fails, saying first which flags are missing.
#
# Three hosts (loopback ports of one nginx), sites from polite/gen_site.py:
#   A  every trap: robots.txt disallowing /private/ (linked from every
#      page) with Crawl-delay 0.25 for our agent, and disallowing all to
#      another agent and to *; an endless calendar; a redirect loop; a
#      redirect to a page fetched before; a 3 MB page (--max-body 1); a
#      binary file with a link-shaped decoy inside
#   B  slow: each leaf page takes a second (limit_rate), so --per-host 2
#      fills
#   C  rate-limited: 429 with Retry-After: 2 past 4 requests/s
#   E  rate-limited the other way: 503 and no Retry-After (a second at least)
# One crawl of all four with --per-host 2 --delay 0.05 --delay-jitter 0.2
# --max-depth 4; then A alone with --robots ignore, where /private/ is
# fetched (the same checks, told so, pass; told to obey, they fail: they
# can fail); then a plain site with --max-pages.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/polite/polite.sh"
RUN_LIMIT=150
UA='politebot/1.0 (+http://127.0.0.1/bot)'
GEN=$POLITE_DIR/gen_site.py

polite_needs --per-host --delay --delay-jitter --robots --user-agent --max-depth --max-pages

# the checker first: it must catch each rule broken in a small synthetic log
if "$PY" "$POLITE_DIR/check_access.py" --self-test >"$T/self-test.txt" 2>&1; then
    cases=$(grep -c '^self-test ok' "$T/self-test.txt")
    pass "check_access.py --self-test: each broken rule caught ($cases cases)"
else
    fail "check_access.py --self-test" "$(grep -v '^self-test ok' "$T/self-test.txt" | head -n 30)"
fi

"$PY" "$GEN" "$T/A" --name A --sections 3 --pages 4 --traps --crawl-delay 0.25 &&
    "$PY" "$GEN" "$T/B" --name B --sections 2 --pages 3 --slow 2000 --page-bytes 3000 &&
    "$PY" "$GEN" "$T/C" --name C --sections 2 --pages 4 --rate-limit 429:2 &&
    "$PY" "$GEN" "$T/E" --name E --sections 2 --pages 2 --rate-limit 503 &&
    "$PY" "$GEN" "$T/D" --name D --sections 3 --pages 5
expect_eq "the sites are generated" "$?" 0
for s in A B C D E; do polite_site "$s" "$T/$s"; done
polite_nginx_start || { fail "nginx starts with the five sites"; finish; }
A=http://127.0.0.1:$PORT_A B=http://127.0.0.1:$PORT_B C=http://127.0.0.1:$PORT_C
D=http://127.0.0.1:$PORT_D E=http://127.0.0.1:$PORT_E

# -- the sites serve their traps as meant (before any crawl is judged)
curl -s "$A/robots.txt" >"$T/robots.txt"
expect_eq "A: robots.txt: our group (Crawl-delay 0.25), and otherbot's and *'s disallowing all" \
    "$(grep -E '^(User-agent|Disallow|Crawl-delay):' "$T/robots.txt" | tr '\n' '|')" \
    "User-agent: otherbot|Disallow: /|User-agent: politebot|Disallow: /private/|\
Crawl-delay: 0.25|User-agent: *|Disallow: /|"
curl -s -o /dev/null -L --max-redirs 9 -w '%{num_redirects}' "$A/loop/start" >"$T/loop.txt"
expect_eq "A: the loop never ends (curl gives up after 9 redirects: exit 47)" \
    "$? $(cat "$T/loop.txt")" "47 9"
expect_eq "A: /moved/s1 redirects to a page linked before" \
    "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$A/moved/s1")" "301 $A/s1/index.html"
curl -s "$A/calendar/?m=9" >"$T/cal9.html"
expect_grep "A: the calendar's page m=9 is titled so" '<title>A calendar m=9</title>' "$T/cal9.html"
expect_grep "A: ... and links to m=10, endlessly" 'href="/calendar/\?m=10"' "$T/cal9.html"
expect_gt "A: the huge page is over --max-body 1 (MiB)" \
    "$(curl -s -o /dev/null -w '%{size_download}' "$A/big/huge.html")" 1048576
expect_eq "A: the binary is application/octet-stream" \
    "$(curl -s -o "$T/data.bin" -w '%{content_type}' "$A/files/data.bin")" application/octet-stream
expect_grep "A: ... with a link to a decoy inside" 'href="/from-binary.html"' "$T/data.bin"
t0=$(now)
curl -s -o /dev/null "$B/s0/p0.html"
expect_ge "B: a leaf page takes about a second (limit_rate)" "$(fcalc "$(now) - $t0")" 0.8
expect_lt "B: robots.txt is not slowed" \
    "$(curl -s -o /dev/null -w '%{time_total}' "$B/robots.txt")" 0.5
for _ in 1 2 3 4 5 6; do curl -s -o /dev/null -D - "$C/s0/p0.html"; done >"$T/c-burst.txt"
expect_grep "C: a burst gets 429 ..." '^HTTP/1.1 429' "$T/c-burst.txt"
expect_grep "C: ... with Retry-After: 2" '^Retry-After: 2' "$T/c-burst.txt"
for _ in 1 2 3 4 5 6; do
    curl -s -o /dev/null -w '%{http_code}\n' "$C/robots.txt"
done >"$T/c-robots.txt"
expect_eq "C: robots.txt is never rate-limited" "$(sort -u "$T/c-robots.txt")" 200
for _ in 1 2 3 4 5 6; do curl -s -o /dev/null -D - "$E/s0/p0.html"; done >"$T/e-burst.txt"
expect_grep "E: a burst gets 503 ..." '^HTTP/1.1 503' "$T/e-burst.txt"
expect_no_grep "E: ... and no Retry-After" '^Retry-After' "$T/e-burst.txt"
polite_log_clear

# -- the polite crawl of A, B, C and E
run_shoal crawl run "$SHOAL_ROOT/examples/crawl.lua" --workers 2 --concurrency 64 --listen off \
    --quiet --retries 5 --per-host 2 --delay 0.05 --delay-jitter 0.2 --max-depth 4 --max-body 1 \
    --robots obey --user-agent "$UA" --output "$T/items.jsonl" --summary-json "$T/crawl.json" \
    -- "$A/index.html" "$B/index.html" "$C/index.html" "$E/index.html"
polite_log_take "$T/crawl.log"
expect_rc "the crawl ends, exit 1 (two pages fail: the loop and the huge one)" 1
expect_eq "summary: failed == 2" "$(json "$T/crawl.json" .failed)" 2
cat "$ERR" "$OUT" >"$T/crawl.said"
expect_grep "the loop is one clear error, naming it" \
    '/loop/(start|a|b).*[Rr]edirect|[Rr]edirect.*/loop/(start|a|b)' "$T/crawl.said"
expect_grep "the huge page's error names it and --max-body" \
    'huge\.html.*(max-body|too (big|large)|larger)' "$T/crawl.said"
polite_check crawl --log "$T/crawl.log" --items "$T/items.jsonl" \
    --site "$PORT_A=$T/A/manifest.json" --site "$PORT_B=$T/B/manifest.json" \
    --site "$PORT_C=$T/C/manifest.json" --site "$PORT_E=$T/E/manifest.json" \
    --per-host 2 --delay 0.05 --jitter 0.2 --max-depth 4 \
    --robots obey --user-agent "$UA"

# -- A again, robots ignored: /private/ and what only it links to are fetched
polite_log_clear
run_shoal ignore run "$SHOAL_ROOT/examples/crawl.lua" --workers 2 --concurrency 64 --listen off \
    --quiet --per-host 2 --delay 0.05 --max-depth 4 --max-body 1 --robots ignore \
    --user-agent "$UA" --output "$T/ignore.jsonl" -- "$A/index.html"
polite_log_take "$T/ignore.log"
expect_grep "--robots ignore: /private/ pages are fetched" '"/private/p[0-9]+\.html"' \
    "$T/ignore.log"
expect_grep "--robots ignore: so is the page only they link to" '"/hidden/only\.html"' \
    "$T/ignore.log"
polite_check ignore --log "$T/ignore.log" --items "$T/ignore.jsonl" \
    --site "$PORT_A=$T/A/manifest.json" --per-host 2 --delay 0.05 --max-depth 4 \
    --robots ignore --user-agent "$UA"
if "$PY" "$POLITE_DIR/check_access.py" --log "$T/ignore.log" --site "$PORT_A=$T/A/manifest.json" \
    --per-host 2 --delay 0.05 --max-depth 4 --robots obey >"$T/ignore-as-obey.txt"; then
    fail "the checker, told robots were obeyed, rejects that crawl (it can fail)" \
        "$(show_file "$T/ignore-as-obey.txt" 30)"
else
    expect_grep "the checker, told robots were obeyed, rejects that crawl (it can fail)" \
        '^FAIL disallowed: ' "$T/ignore-as-obey.txt"
fi

# -- --max-pages: a 19-page site, 6 pages taken, none beyond
polite_log_clear
run_shoal maxpages run "$SHOAL_ROOT/examples/crawl.lua" --workers 2 --concurrency 64 --listen off \
    --quiet --per-host 2 --delay 0.02 --max-pages 6 --user-agent "$UA" \
    --output "$T/maxpages.jsonl" -- "$D/index.html"
polite_log_take "$T/maxpages.log"
expect_rc "--max-pages 6: exit 0" 0
expect_eq "--max-pages 6: six items" "$(grep -c . "$T/maxpages.jsonl")" 6
polite_check maxpages --log "$T/maxpages.log" --items "$T/maxpages.jsonl" \
    --site "$PORT_D=$T/D/manifest.json" --per-host 2 --delay 0.02 --max-pages 6 --user-agent "$UA"

finish
