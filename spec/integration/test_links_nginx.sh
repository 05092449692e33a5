#!/usr/bin/env bash
# test_links_nginx.sh - a crawl that follows what crawl.links_ex finds,
# against nginx: pages reached only through an <iframe>, a <frame>, a
# <meta http-equiv=refresh>, an href under a <base>, with entities (&amp;,
# a named letter) are each fetched once; links with rel=nofollow, links on
# a page whose <meta name=robots> says nofollow, and hrefs inside comments
# and scripts are never fetched, and neither are <link> and <img> targets
# (not kinds crawl.links returns unless asked). A link that appears once
# with rel=nofollow and once without is followed.
. "$(dirname "$0")/lib.sh"

SITE=$T/site
mkdir -p "$SITE/d"
chmod 755 "$SITE" "$SITE/d"
page() { printf '<!doctype html><html><head><title>%s</title>%s</head><body>%s</body></html>\n' \
    "$1" "$2" "$3" >"$SITE/$1"; }
page index.html '<base href="/d/"><meta http-equiv="refresh" content="30; URL='"'"'/re.html'"'"'">
<link rel=stylesheet href=/style.css>' '
<a href="a.html">a</a> <a href="n.html" rel="external nofollow">n</a>
<iframe src="/if.html"><a href="/in-iframe-text.html"></a></iframe>
<a href="/q.html?x=1&amp;y=2">q</a> <a href="/caf&eacute;.html">cafe</a>
<!-- <a href="/commented.html"> --><script>var s = "<a href=\"/script.html\">";</script>
<img src="/img.png" srcset="/img2.png 2x"> <a href="/r.html">r</a>
<a href="/both.html" rel="nofollow">both</a>'
page d/a.html '' '<frameset><frame src="/fr.html"></frameset><a href="/both.html">both</a>'
page r.html '<meta name="robots" content="noindex, nofollow">' '<a href="/under-meta.html">x</a>'
for p in if re fr both q café under-meta n commented script in-iframe-text; do
    page "$p.html" '' 'leaf'
done
cp "$SITE/n.html" "$SITE/d/n.html"
start_nginx "$SITE" || { fail "nginx starts"; finish; }
BASE=http://127.0.0.1:$NGINX_PORT

cat >"$T/follow.lua" <<'LUA'
local crawl = require "shoal.crawl"
function produce(push) push({ url = shoal.args[1] }) end
function handle(job)
  local res, err = shoal.http.get(job.url)
  if not res then error(err) end
  for _, l in ipairs(crawl.links_ex(res.body, res.url)) do
    if not l.nofollow and crawl.same_host(l.url, res.url) then
      shoal.push({ url = l.url }, { key = l.url })
    end
  end
end
LUA

run_shoal crawl run "$T/follow.lua" --workers 1 --concurrency 8 --listen off --quiet \
    --robots ignore -- "$BASE/index.html"
expect_rc "crawl exits 0" 0
awk '{print $2}' "$NGINX_LOG" | sort >"$T/requested.txt"
printf '%s\n' /both.html /caf%C3%A9.html /d/a.html /fr.html /if.html /index.html /r.html \
    /re.html '/q.html?x=1&y=2' | sort >"$T/expected.txt"
if diff "$T/expected.txt" "$T/requested.txt" >"$T/diff.txt"; then
    pass "each page reached by a followed link fetched once, nothing else"
else
    fail "each page reached by a followed link fetched once, nothing else" \
        "diff expected requested:" "$(head -n 20 "$T/diff.txt")"
fi
expect_eq "every request answered 200" "$(awk '$3 != 200' "$NGINX_LOG" | wc -l)" 0

finish
