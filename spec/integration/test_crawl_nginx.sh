#!/usr/bin/env bash
# test_crawl_nginx.sh - examples/crawl.lua against nginx serving ~3,000
# static pages: every reachable page is fetched exactly once, dead links are
# fetched once and counted as 404s, and nothing off the start host is fetched.
#
# The site is generated here with a fixed seed. Every page links to the next
# one (so all are reachable from /index.html) and to random others, written in
# the forms real pages use: absolute paths, absolute URLs, ../ and ./
# relative paths, dot segments, fragments, single quotes, upper-case tags and
# scheme. Some links point at missing pages (404) and some at other hosts
# (http://localhost:PORT/, protocol-relative //localhost:PORT/, mailto:,
# javascript:), which a same-host crawl must not follow; orphan pages nobody
# links to must not be fetched either. The generator computes the expected
# set of requested paths itself (and checks each href with Python's RFC 3986
# urljoin), and nginx's access log says what was requested.
. "$(dirname "$0")/lib.sh"

SITE=$T/site
mkdir -p "$SITE"
chmod 755 "$SITE"
start_nginx "$SITE" || { fail "nginx starts"; finish; }
BASE=http://127.0.0.1:$NGINX_PORT

"$PY" - "$SITE" "$NGINX_PORT" "$T/expected.txt" "$T/expected_404.txt" <<'EOF'
import os, random, sys
from urllib.parse import urljoin, urldefrag

root, port, out_all, out_404 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
base = "http://127.0.0.1:%d" % port
rng = random.Random(20240611)
N = 3000
SECTIONS = 20

def page_path(k):
    if k == 0:
        return "/index.html"
    sec, depth = k % SECTIONS, (k // SECTIONS) % 3
    return ["/s%d/p%d.html", "/s%d/d/p%d.html", "/s%d/d/e/p%d.html"][depth] % (sec, k)

pages = [page_path(k) for k in range(N)]
orphans = ["/orphan/o%d.html" % j for j in range(50)]

def href_for(src, dst, r):
    """One of the ways a page may write a link from src to the path dst."""
    form = r.randrange(9)
    rel = os.path.relpath(dst, os.path.dirname(src))
    if form == 0:
        h = dst
    elif form == 1:
        h = base + dst
    elif form == 2:
        h = rel
    elif form == 3:
        h = rel if rel.startswith("..") else "./" + rel
    elif form == 4:
        h = dst + "#part-%d" % r.randrange(5)
    elif form == 5:
        # dot segments in an absolute path
        h = "/s%d/../" % r.randrange(SECTIONS) + dst.lstrip("/")
    elif form == 6:
        h = "HTTP://127.0.0.1:%d" % port + dst
    elif form == 7:
        h = os.path.dirname(src).rstrip("/") + "/./" + rel if not rel.startswith("..") else rel
    else:
        h = rel + "#frag"
    return h

def anchor(h, text, r):
    style = r.randrange(6)
    if style == 0:
        return "<A HREF=\"%s\">%s</A>" % (h, text)
    if style == 1:
        return "<a class='x' href='%s'>%s</a>" % (h, text)
    if style == 2:
        return "<a\n  title=\"t\"\n  href=\"%s\"\n>%s</a>" % (h, text)
    return "<a href=\"%s\">%s</a>" % (h, text)

links = {}      # page -> list of target paths (same host), for the BFS
missing = set()
for k, src in enumerate(pages):
    r = random.Random(k * 7919 + 1)
    targets, html = [], []
    def add(dst):
        h = href_for(src, dst, r)
        resolved = urldefrag(urljoin(base + src, h))[0]
        if resolved.lower() != (base + dst).lower():
            sys.exit("generator bug: %s + %s -> %s, not %s" % (src, h, resolved, dst))
        targets.append(dst)
        html.append(anchor(h, "to " + dst, r))
    if k + 1 < N:
        add(pages[k + 1])
    for _ in range(r.randrange(3, 8)):
        add(pages[r.randrange(N)])
    if r.random() < 0.08:
        m = "/s%d/missing-%d.html" % (r.randrange(SECTIONS), r.randrange(150))
        add(m)
    if r.random() < 0.15:
        kind = r.randrange(4)
        if kind == 0:
            html.append(anchor("http://localhost:%d/offsite/%d.html" % (port, k), "elsewhere", r))
        elif kind == 1:
            html.append(anchor("//localhost:%d/offsite/pr-%d.html" % (port, k), "elsewhere", r))
        elif kind == 2:
            html.append(anchor("mailto:someone@example.com", "mail", r))
        else:
            html.append(anchor("javascript:void(0)", "js", r))
    html.append('<a href="#top">top</a>')
    r.shuffle(html)
    links[src] = targets
    body = ("<!doctype html>\n<html><head><title>page %d</title></head>\n<body id=\"top\">\n"
            "<h1>Page %d</h1>\n<p>Some text, <b>bold</b> &amp; more.</p>\n<ul>\n%s\n</ul>\n"
            "</body></html>\n") % (k, k, "\n".join("<li>%s</li>" % a for a in html))
    path = root + src
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(body)

for o in orphans:  # exist, but nothing links here
    path = root + o
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("<a href=\"/s1/orphan-only.html\">x</a>\n")

seen, queue = {"/index.html"}, ["/index.html"]
while queue:
    p = queue.pop()
    for t in links.get(p, []):
        if t not in seen:
            seen.add(t)
            queue.append(t)
existing = set(pages)
with open(out_all, "w") as f:
    f.write("\n".join(sorted(seen)) + "\n")
with open(out_404, "w") as f:
    f.write("\n".join(sorted(p for p in seen if p not in existing)) + "\n")
# MAX_DEPTH 0 and 1 have one answer whatever the order of fetches
with open(out_all + ".depth0", "w") as f:
    f.write("/index.html\n")
with open(out_all + ".depth1", "w") as f:
    f.write("\n".join(sorted({"/index.html"} | set(links["/index.html"]))) + "\n")
EOF
GEN_RC=$?
expect_eq "the site generator ran" "$GEN_RC" 0
find "$SITE" -type d -exec chmod 755 {} +
N_EXPECTED=$(wc -l <"$T/expected.txt")
N_404=$(grep -c . "$T/expected_404.txt")
N_200=$((N_EXPECTED - N_404))
echo "# site: $N_200 reachable pages, $N_404 dead links, base $BASE"

run_shoal crawl run "$SHOAL_ROOT/examples/crawl.lua" --workers 2 --concurrency 64 --listen off \
    --quiet --summary-json "$T/summary.json" -- "$BASE/index.html"
S=$T/summary.json
expect_rc "crawl exits 0" 0

# What nginx saw: "METHOD URI STATUS HOST" per request. /robots.txt is a
# crawler's right and not part of the site's graph.
grep -v ' /robots.txt ' "$NGINX_LOG" >"$T/requests.txt"
awk '{print $2}' "$T/requests.txt" | sort >"$T/requested_all.txt"
sort -u "$T/requested_all.txt" >"$T/requested.txt"

DUPS=$(uniq -d "$T/requested_all.txt")
if [ -z "$DUPS" ]; then
    pass "no URL was requested twice"
else
    fail "no URL was requested twice" "$(echo "$DUPS" | wc -l) URLs were, e.g.:" "$(echo "$DUPS" | head -5)"
fi

MISSING=$(comm -23 "$T/expected.txt" "$T/requested.txt")
EXTRA=$(comm -13 "$T/expected.txt" "$T/requested.txt")
if [ -z "$MISSING" ]; then
    pass "every reachable page was fetched ($N_EXPECTED paths)"
else
    fail "every reachable page was fetched" "$(echo "$MISSING" | wc -l) of $N_EXPECTED never requested, e.g.:" "$(echo "$MISSING" | head -5)"
fi
if [ -z "$EXTRA" ]; then
    pass "nothing outside the reachable set was fetched"
else
    fail "nothing outside the reachable set was fetched" "$(echo "$EXTRA" | wc -l) unexpected paths, e.g.:" "$(echo "$EXTRA" | head -5)"
fi
expect_no_grep "no orphan page was fetched" '^/orphan/' "$T/requested.txt"
expect_no_grep "no off-host link was followed (Host: localhost, /offsite/)" ' localhost(:[0-9]+)?$|/offsite/' "$NGINX_LOG"
expect_no_grep "only GET requests" '^(HEAD|POST|PUT)' "$T/requests.txt"

SERVED_404=$(awk '$3 == 404' "$T/requests.txt" | wc -l)
expect_eq "nginx served one 404 per dead link" "$SERVED_404" "$N_404"
expect_eq "summary: status 404 count == dead links" "$(json "$S" '.http.status["404"] // 0')" "$N_404"
expect_eq "summary: status 200 count == reachable pages" "$(json "$S" '.http.status["200"] // 0')" "$N_200"
expect_eq "summary: failed == 0" "$(json "$S" .failed)" 0
expect_eq "summary: no transport errors" "$(json "$S" .http.errors)" 0
expect_gt "summary: duplicate links dropped" "$(json "$S" .duplicates)" 0
expect_eq "summary: nothing left in the queue" "$(json "$S" .queued_left)" 0
expect_lt "crawl of ~3,000 local pages takes < 30 s" "$WALL" 30

# -- --max-depth: 0 is the start page, 1 adds its links, each fetched once
for depth in 0 1; do
    : >"$NGINX_LOG"
    run_shoal "depth$depth" run "$SHOAL_ROOT/examples/crawl.lua" --workers 2 --concurrency 64 --listen off \
        --quiet --max-depth "$depth" -- "$BASE/index.html"
    expect_rc "--max-depth $depth: exit 0" 0
    awk '{print $2}' "$NGINX_LOG" | grep -v '^/robots.txt$' | sort >"$T/depth$depth.requested"
    if cmp -s "$T/depth$depth.requested" "$T/expected.txt.depth$depth"; then
        pass "--max-depth $depth: exactly the pages within $depth link(s), once each"
    else
        fail "--max-depth $depth: exactly the pages within $depth link(s), once each" \
            "$(diff "$T/expected.txt.depth$depth" "$T/depth$depth.requested" | head -n 8)"
    fi
done

finish
