#!/usr/bin/env bash
# test_html_lxml.sh - shoal.html's CSS selectors select what lxml + cssselect
# select (what Scrapy's response.css() runs on): every selector of
# html/selectors.txt on every page of html/ (real-world shapes: broken
# markup, entities, nested tables, scripts and styles, forms, lists, a page
# in ISO-8859-1), the texts of the nodes found, in order, the same on both
# sides. shoal runs the queries in a worker of `shoal run`; Python runs
# lxml.etree's HTML parser (recover, no network, huge_tree, as parsel does)
# and cssselect's HTMLTranslator.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

HERE=$(cd "$(dirname "$0")" && pwd)
if ! "$PY" -c 'import lxml.etree, cssselect' 2>/dev/null; then
    fail "python3-lxml and python3-cssselect are installed (scripts/lib.sh TEST_PACKAGES)"
    finish
fi
ls "$HERE"/html/*.html >pages.txt
grep -v '^#' "$HERE/html/selectors.txt" | grep -v '^$' >selectors.txt
npages=$(wc -l <pages.txt)
nsel=$(wc -l <selectors.txt)
expect_ge "a corpus of 8 or more pages" "$npages" 8
expect_ge "40 or more selectors" "$nsel" 40

# Both sides print, per page and selector, a line "== PAGE | SELECTOR | N"
# and then each node's text on a line of its own, escaped alike.
cat >select.lua <<'LUA'
local function esc(s)
  return (s:gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub("\r", "\\r"):gsub("\t", "\\t"))
end
local function lines(path)
  local t = {}
  for l in io.lines(path) do t[#t + 1] = l end
  return t
end
function produce(push) push({}) end
function handle()
  local out = assert(io.open("shoal.txt", "w"))
  local sels = lines("selectors.txt")
  for _, page in ipairs(lines("pages.txt")) do
    local f = assert(io.open(page, "rb"))
    local doc = shoal.html.parse(f:read("*a"))
    f:close()
    local name = page:match("[^/]*$")
    for _, sel in ipairs(sels) do
      local nodes = doc:css(sel)
      out:write("== ", name, " | ", sel, " | ", #nodes, "\n")
      for _, n in ipairs(nodes) do out:write(esc(n:text()), "\n") end
    end
  end
  out:close()
end
LUA
cat >select.py <<'PY'
import sys
import lxml.etree as etree
from cssselect import HTMLTranslator

def esc(s):
    return (s.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\t", "\\t"))

parser = etree.HTMLParser(recover=True, no_network=True, huge_tree=True)
tr = HTMLTranslator()
sels = [l.rstrip("\n") for l in open("selectors.txt", encoding="utf-8")]
with open("lxml.txt", "w", encoding="utf-8", newline="\n") as out:
    for page in [l.rstrip("\n") for l in open("pages.txt")]:
        with open(page, "rb") as f:
            root = etree.fromstring(f.read(), parser)
        name = page.rsplit("/", 1)[-1]
        for sel in sels:
            nodes = root.getroottree().xpath(tr.css_to_xpath(sel))
            out.write("== %s | %s | %d\n" % (name, sel, len(nodes)))
            for n in nodes:
                out.write(esc(n.xpath("string(.)")) + "\n")
PY

run_shoal select run select.lua --workers 1 --listen off --quiet
expect_rc "shoal runs the selectors over the corpus" 0
show_file "$ERR"
"$PY" select.py 2>lxml.err
expect_eq "lxml runs them too" "$?" 0
show_file lxml.err

blocks=$(grep -c '^== ' shoal.txt)
expect_eq "shoal answered every page and selector" "$blocks" "$((npages * nsel))"
found=$(awk -F' [|] ' '/^== / && $3 > 0 { n++ } END { print n + 0 }' shoal.txt)
nodes=$(awk -F' [|] ' '/^== / { n += $3 } END { print n + 0 }' shoal.txt)
echo "# $npages pages x $nsel selectors: $found queries found nodes, $nodes nodes in all"
expect_ge "most selectors find something somewhere ($found queries with nodes)" "$found" 150
# every selector finds a node on some page: none is compared on nothing
unused=$(awk -F' [|] ' '/^== / { s[$2] += $3 } END { for (k in s) if (s[k] == 0) print k }' \
    shoal.txt)
expect_eq "every selector finds a node on some page" "$unused" ""
if cmp -s shoal.txt lxml.txt; then
    pass "the same nodes, texts and order as lxml + cssselect"
else
    fail "the same nodes, texts and order as lxml + cssselect" \
        "$(diff lxml.txt shoal.txt | head -40)"
fi

# the selectors cssselect refuses, shoal refuses too, with the column
cat >bad.lua <<'LUA'
function produce(push) push({}) end
function handle()
  local doc = shoal.html.parse("<p>x</p>")
  doc:css("p:hover")
end
LUA
run_shoal bad run bad.lua --workers 1 --retries 0 --listen off --quiet
expect_rc "an unsupported selector fails the job" 1
expect_grep "the error names the script's line, the selector and the column" \
    "bad\\.lua:4: shoal\\.html: css: selector .*p:hover.*: unsupported pseudo-class ':hover' at column 2" \
    "$ERR"
finish
