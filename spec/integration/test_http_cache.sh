#!/usr/bin/env bash
# test_http_cache.sh - --http-cache DIR keeps every GET answer and replays
# it: a second crawl with the server stopped gives the same items, robots.txt
# included, and `shoal try` works offline; a cache file cut short is a miss,
# not a crash.
. "$(dirname "$0")/lib.sh"
RUN_LIMIT=60

SITE=$T/site
mkdir -p "$SITE"
printf 'User-agent: *\nDisallow: /private/\n' >"$SITE/robots.txt"
for i in 0 1 2 3 4 5 6 7 8 9; do
    next=$(((i + 1) % 10))
    printf '<title>P%s</title><a href="p%s.html">next</a> <a href="/private/x.html">x</a>\n' \
        "$i" "$next" >"$SITE/p$i.html"
done
start_nginx "$SITE" || { fail "nginx starts"; finish; }
B=http://127.0.0.1:$NGINX_PORT
CACHE=$T/cache

items() { jq -c '[.url, .status, .title, .bytes]' "$1" | sort; }

run_shoal online run "$SHOAL_ROOT/examples/crawl.lua" --workers 2 --listen off --quiet \
    --http-cache "$CACHE" --output "$T/online.jsonl" -- "$B/p0.html"
expect_rc "online crawl: exit 0" 0
expect_eq "online crawl: 10 pages" "$(wc -l <"$T/online.jsonl")" 10
expect_eq "the cache holds the 10 pages and robots.txt" "$(ls "$CACHE" | grep -c '\.http$')" 11

kill "$NGINX_PID"
wait_for "! curl -s -o /dev/null --max-time 1 $B/p0.html" 10
run_shoal offline run "$SHOAL_ROOT/examples/crawl.lua" --workers 2 --listen off --quiet \
    --http-cache "$CACHE" --output "$T/offline.jsonl" --summary-json "$T/offline.json" \
    -- "$B/p0.html"
expect_rc "offline crawl from the cache: exit 0" 0
expect_eq "offline: the same items" "$(items "$T/offline.jsonl")" "$(items "$T/online.jsonl")"
expect_gt "offline: robots.txt (from the cache) still obeyed" \
    "$(json "$T/offline.json" .disallowed)" 0
expect_eq "offline: no transport error" "$(json "$T/offline.json" .http.errors)" 0

run_shoal try try "$SHOAL_ROOT/examples/crawl.lua" "$B/p3.html" --http-cache "$CACHE"
expect_rc "shoal try from the cache: exit 0" 0
expect_grep "... shows the page's request" "^request GET $B/p3.html -> 200, " "$OUT"
expect_grep "... and its item" '^item .*"title":"P3"' "$OUT"

# a file cut short: a miss (the server is down, so that page fails), no crash
f=$(grep -l "^key $B/p5.html\$" "$CACHE"/*.http)
head -c 40 "$f" >"$f.cut" && mv "$f.cut" "$f"
run_shoal cut run "$SHOAL_ROOT/examples/crawl.lua" --workers 1 --listen off --quiet --retries 0 \
    --http-cache "$CACHE" --output "$T/cut.jsonl" -- "$B/p0.html"
expect_rc "a cut cache file: the crawl ends, exit 1 (that page cannot be had)" 1
expect_eq "... the other pages come from the cache" "$(wc -l <"$T/cut.jsonl")" 5

finish
