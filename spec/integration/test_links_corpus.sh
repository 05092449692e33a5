#!/usr/bin/env bash
# test_links_corpus.sh - crawl.links (a scanner in C, no DOM) finds, on
# every page of the real-world-shaped corpus that test_html_lxml uses
# (spec/integration/html/), the same links a full parse does: libxml2's
# tree through shoal.html, each <a>/<area> href and <iframe>/<frame> src
# resolved against the page's <base> and normalised by crawl.normalize, and
# each <meta http-equiv=refresh> URL.
# Two independent paths to one answer, on broken markup, entities, scripts
# and nested tables.
. "$(dirname "$0")/lib.sh"
RUN_LIMIT=60

cat >"$T/compare.lua" <<'EOF'
local crawl = require "shoal.crawl"
local DIR = shoal.args[1]
local BASE = "http://example.com/dir/page.html"
function produce(push)
  local names = {}
  for name in io.popen("ls " .. DIR .. "/*.html"):lines() do names[#names + 1] = name end
  for _, name in ipairs(names) do push({ file = name }) end
end
local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end
function handle(job)
  local f = assert(io.open(job.file, "rb"))
  local body = f:read("*a")
  f:close()
  local scanned = crawl.links(body, BASE)
  local parsed, seen = {}, {}
  local doc = shoal.html.parse(body, BASE)
  local base = doc:first("base[href]")
  base = base and base:link("href") or BASE
  local function add(ref)
    -- as a URL parser reads an attribute: tabs and newlines out, ends trimmed;
    -- an empty or fragment-only reference is this page, not a link to follow
    ref = ref:gsub("[\t\n\r]", ""):match("^%s*(.-)%s*$")
    if ref == "" or ref:sub(1, 1) == "#" then return end
    local url = crawl.resolve(base, ref)
    url = url and crawl.normalize(url)
    if url and not seen[url] then
      seen[url] = true
      parsed[#parsed + 1] = url
    end
  end
  for _, node in ipairs(doc:css("a[href], area[href], iframe[src], frame[src], meta[content]")) do
    if node:tag() == "meta" then
      local equiv = (node:attr("http-equiv") or ""):lower()
      local target = equiv == "refresh" and node:attr("content"):match("[Uu][Rr][Ll]%s*=%s*['\"]?([^'\"]+)")
      if target then add(target) end
    else
      add(node:attr("href") or node:attr("src"))
    end
  end
  local s, p = set_of(scanned), set_of(parsed)
  local only_scan, only_parse = {}, {}
  for _, u in ipairs(scanned) do if not p[u] then only_scan[#only_scan + 1] = u end end
  for _, u in ipairs(parsed) do if not s[u] then only_parse[#only_parse + 1] = u end end
  shoal.emit({ file = job.file:match("[^/]+$"), scanned = #scanned, parsed = #parsed,
               only_scan = table.concat(only_scan, " "), only_parse = table.concat(only_parse, " ") })
end
EOF
run_shoal compare run "$T/compare.lua" --workers 1 --listen off --quiet --robots ignore \
    --output "$T/compare.jsonl" -- "$SHOAL_ROOT/spec/integration/html"
expect_rc "the comparison runs: exit 0" 0
expect_eq "every corpus page compared" "$(wc -l <"$T/compare.jsonl")" \
    "$(ls "$SHOAL_ROOT"/spec/integration/html/*.html | wc -l)"
expect_gt "links found in all" "$(jq -s 'map(.parsed) | add' "$T/compare.jsonl")" 20
while IFS= read -r line; do
    file=$(jq -r .file <<<"$line")
    if [ "$(jq -r '.only_scan + .only_parse' <<<"$line")" = "" ]; then
        pass "$file: the scanner's links are the parser's ($(jq -r .parsed <<<"$line"))"
    else
        fail "$file: the scanner's links are the parser's" \
            "only the scanner: $(jq -r .only_scan <<<"$line")" \
            "only the parser: $(jq -r .only_parse <<<"$line")"
    fi
done <"$T/compare.jsonl"

finish
