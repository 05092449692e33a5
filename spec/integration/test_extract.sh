#!/usr/bin/env bash
# test_extract.sh - examples/extract.lua against nginx: a paginated listing
# of quotes, read with CSS selectors (shoal.html) into one item per quote,
# the "next" link followed to the end; and `shoal try` on its first page.
. "$(dirname "$0")/lib.sh"
RUN_LIMIT=60

SITE=$T/site
mkdir -p "$SITE"
cat >"$SITE/page1.html" <<'EOF'
<!doctype html><html><head><title>Quotes 1</title>
<link rel="next" href="page2.html"></head><body>
<div class="quote"><h2>  Knuth </h2><p>Premature   optimization
is the root of all evil.</p><a href="/q/1">more</a>
<div class="tags"><a>code</a><a>speed</a></div></div>
<div class="quote"><h2>Hoare</h2><p>I call it my billion-dollar mistake.</p></div>
<div class="quote"><h2>Perlis</h2><p>Simplicity does not precede complexity, but follows it.&nbsp;</p>
<a href="q/3">more</a></div>
</body></html>
EOF
cat >"$SITE/page2.html" <<'EOF'
<html><head><title>Quotes 2</title></head><body>
<div class="quote"><h2>Dijkstra</h2><p>Simplicity is prerequisite for reliability.</p></div>
<div class="quote"><h2>Kernighan</h2><p>Debugging is twice as hard as writing the code.</p>
<span class="tag">debugging</span></div>
<a class="next" href="page1.html">back to the start (a loop dedup ends)</a>
</body></html>
EOF
start_nginx "$SITE" || { fail "nginx starts"; finish; }
B=http://127.0.0.1:$NGINX_PORT

run_shoal extract run "$SHOAL_ROOT/examples/extract.lua" --workers 1 --listen off --quiet \
    --output "$T/items.jsonl" -- "$B/page1.html"
expect_rc "extract: exit 0" 0
expect_eq "one item per quote, both pages" "$(wc -l <"$T/items.jsonl")" 5
q() { jq -c --arg t "$1" "select(.title == \$t) | $2" "$T/items.jsonl"; }
expect_eq "text, white space folded" "$(q Knuth .text)" \
    '"Premature optimization is the root of all evil."'
expect_eq "a link, resolved against the page" "$(q Knuth .link)" "\"$B/q/1\""
expect_eq "... relative to the page's directory" "$(q Perlis .link)" "\"$B/q/3\""
expect_eq "tags, a list" "$(q Knuth .tags)" '["code","speed"]'
expect_eq "a missing field is null" "$(q Hoare '[.link, .tags]')" '[null,null]'
expect_eq "the second page's quotes, through rel=next" "$(q Kernighan .tags)" '["debugging"]'
expect_eq "each page fetched once (the loop back ends at dedup)" \
    "$(grep -c ' /page' "$NGINX_LOG")" 2

run_shoal try try "$SHOAL_ROOT/examples/extract.lua" "$B/page1.html"
expect_rc "shoal try on the first page: exit 0" 0
expect_eq "... three items" "$(grep -c '^item ' "$OUT")" 3
expect_grep "... and the next page pushed" "^push \\{\"url\":\"$B/page2.html\"\\} key=$B/page2.html -> queued" "$OUT"

finish
