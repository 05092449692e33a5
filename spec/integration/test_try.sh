#!/usr/bin/env bash
# test_try.sh - `shoal try SCRIPT URL|JOB_JSON` runs one job through
# handle() and prints what it did, in order: each request (robots.txt
# included) with its status and size, each push with its key and what the
# queue did with it (queued, or dropped: duplicate, out of scope), each
# item; then the summary, whose errors name the script's line. Pushed jobs
# are not run: the server sees robots.txt and the one page.
. "$(dirname "$0")/lib.sh"
RUN_LIMIT=60

SITE=$T/site
mkdir -p "$SITE"
printf 'User-agent: *\nDisallow: /no\n' >"$SITE/robots.txt"
cat >"$SITE/a.html" <<'EOF'
<html><head><title>Page A</title></head><body>
<a href="b.html">b</a> <a href="a.html">myself</a> <a href="/no">not for robots</a>
<a href="http://elsewhere.invalid/">off site</a>
</body></html>
EOF
echo '<title>B</title>' >"$SITE/b.html"
start_nginx "$SITE" || { fail "nginx starts"; finish; }
B=http://127.0.0.1:$NGINX_PORT
: >"$NGINX_LOG"

run_shoal try try "$SHOAL_ROOT/examples/crawl.lua" "$B/a.html"
expect_rc "shoal try: exit 0" 0
# times vary: masked
sed -E 's/, [0-9.]+ ms$/, T ms/' "$OUT" | grep -v '^ ' | grep -v '^shoal ' >"$T/report.txt"
cat >"$T/want.txt" <<EOF
request GET $B/robots.txt -> 200, $(wc -c <"$SITE/robots.txt") bytes, T ms
request GET $B/a.html -> 200, $(wc -c <"$SITE/a.html") bytes, T ms
push {"url":"$B/b.html"} key=$B/b.html -> queued
push {"url":"$B/a.html"} key=$B/a.html -> dropped: duplicate
push {"url":"$B/no"} key=$B/no -> dropped: out of scope (robots)
EOF
grep -v '^item ' "$T/report.txt" >"$T/got.txt"
if cmp -s "$T/want.txt" "$T/got.txt"; then
    pass "the report: requests, then pushes with their keys and fates, in order"
else
    fail "the report: requests, then pushes with their keys and fates, in order" \
        "$(diff "$T/want.txt" "$T/got.txt")"
fi
grep '^item ' "$T/report.txt" | sed 's/^item //' >"$T/item.json"
expect_eq "one item" "$(wc -l <"$T/item.json")" 1
# links: the same-site links on the page, robots.txt's or not
expect_eq "the item is the page's" "$(jq -c '[.url, .status, .title, .links, .depth]' "$T/item.json")" \
    "[\"$B/a.html\",200,\"Page A\",3,0]"
expect_grep "then the summary" '^  jobs +1 ok, 0 failed' "$OUT"
expect_eq "the server saw robots.txt and the page, nothing pushed" \
    "$(awk '{print $2}' "$NGINX_LOG" | sort | tr '\n' ' ')" "/a.html /robots.txt "

# -- a job given as JSON, and a failing script: the error names its line
cat >"$T/fails.lua" <<'EOF'
function handle(job)
  local res = assert(shoal.http.get(job.url))
  shoal.emit({ note = job.note, status = res.status })
  error("no luck with " .. job.note)
end
EOF
run_shoal fails try "$T/fails.lua" "{\"url\": \"$B/b.html\", \"note\": \"n1\"}" --robots ignore
expect_rc "a failing job: exit 1" 1
expect_grep "its request" "^request GET $B/b.html -> 200, " "$OUT"
expect_grep "its item" '^item \{.*"note":"n1"' "$OUT"
expect_grep "the error names the script's line" 'fails.lua:4: no luck with n1' "$OUT"
expect_no_grep "not retried" 'will retry' "$ERR"

# -- a bad selector is the script's mistake: its line, its column, no retry
cat >"$T/selector.lua" <<'EOF'
function handle(job)
  local res = assert(shoal.http.get(job.url))
  local doc = shoal.html.parse(res.body, res.url)
  shoal.emit({ title = doc:css("title")[1]:text() })
  local items = doc:css("li[") -- (a tail call would leave no line to name)
  return items
end
EOF
run_shoal selector try "$T/selector.lua" "$B/a.html" --retries 3
expect_rc "a bad selector: exit 1" 1
expect_grep "shoal.html works in a job" '^item \{"title":"Page A"\}' "$OUT"
expect_grep "the error names the script's line and the selector's column" \
    'selector.lua:5: shoal.html: css: selector "li\[": .*column 4' "$OUT"
expect_no_grep "not retried" 'will retry' "$ERR"

run_shoal noarg try "$SHOAL_ROOT/examples/crawl.lua"
expect_rc "no job given: exit 2" 2
expect_grep "... and the usage says what to give" 'shoal try SCRIPT URL' "$ERR"

finish
