-- Spec of lua/shoal/html.lua (shoal.html): what extraction scripts rely on
-- when they parse a page and query it with CSS selectors or XPath.
--
--   build/lua_spec spec/lua/test_html.lua [ROOT]      (or SHOAL_ROOT=ROOT)
--
-- lua_spec (spec/lua/run_spec.c) is luajit with shoal's preloads: html.lua
-- stands on the C module shoal.html_core, which plain luajit lacks.
-- Prints a FAIL line per failed check and closes with "N passed, N failed";
-- exits 1 when anything failed.

package.path = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "spec/lua") .. "/?.lua;"
  .. package.path
local spec = require "spec"
local ok, eq, same_list, group, show = spec.ok, spec.eq, spec.same_list, spec.group, spec.show
local html = spec.load("html")

local function texts(nodes)
  local out = {}
  for i, n in ipairs(nodes) do out[i] = type(n) == "string" and n or n:text() end
  return out
end

-- The page most forms are asked of: every li and p has a text of its own.
local PAGE = [[
<html><head><title>T</title></head><body>
<div id="main" class="box wide">
  <h1>Head</h1>
  <p class="intro first">p1</p>
  <p lang="en-GB" data-x="a'b">p2</p>
  <ul class="list">
    <li>l1</li><li class="odd hot">l2</li><li>l3</li><li>l4</li><li><a href="/x.pdf">l5</a></li>
  </ul>
  <span>s1</span><p>p3</p>
</div>
<div class="box"><p title='say "hi"'>p4</p><em></em></div>
</body></html>]]

group("every supported selector form", function()
  local doc = html.parse(PAGE)
  local cases = {
    { "p", { "p1", "p2", "p3", "p4" } },
    { "P", { "p1", "p2", "p3", "p4" } },
    { "#main > h1", { "Head" } },
    { ".intro", { "p1" } },
    { "p.intro.first", { "p1" } },
    { ".box.wide > p", { "p1", "p2", "p3" } },
    { "[lang]", { "p2" } },
    { "[lang=en-GB]", { "p2" } },
    { "[lang|=en]", { "p2" } },
    { "[lang|=e]", {} },
    { "[class~=hot]", { "l2" } },
    { "[class~=ho]", {} },
    { "a[href^='/x']", { "l5" } },
    { "a[href$='.pdf']", { "l5" } },
    { "a[href*=x]", { "l5" } },
    { "[data-x=\"a'b\"]", { "p2" } },
    { "[title='say \"hi\"']", { "p4" } },
    { "div p", { "p1", "p2", "p3", "p4" } },
    { "body > div > p", { "p1", "p2", "p3", "p4" } },
    { "ul > li > a", { "l5" } },
    { "h1 + p", { "p1" } },
    { "h1 + ul", {} },
    { "h1 ~ p", { "p1", "p2", "p3" } },
    { "span ~ *", { "p3" } },
    { "li:first-child", { "l1" } },
    { "li:last-child", { "l5" } },
    { "a:only-child", { "l5" } },
    { "p:first-of-type", { "p1", "p4" } },
    { "p:last-of-type", { "p3", "p4" } },
    { "p:only-of-type", { "p4" } },
    { "li:nth-child(2)", { "l2" } },
    { "li:nth-child(odd)", { "l1", "l3", "l5" } },
    { "li:nth-child(even)", { "l2", "l4" } },
    { "li:nth-child(3n+1)", { "l1", "l4" } },
    { "li:nth-child(-n+2)", { "l1", "l2" } },
    { "li:nth-child(n+4)", { "l4", "l5" } },
    { "li:nth-last-child(1)", { "l5" } },
    { "p:nth-of-type(2)", { "p2" } },
    { "p:nth-last-of-type(2)", { "p2" } },
    { "li:not(.odd)", { "l1", "l3", "l4", "l5" } },
    { "li:not(:first-child):not(:last-child)", { "l2", "l3", "l4" } },
    { "p:not([lang], .intro)", { "p3", "p4" } },
    { "em:empty", { "" } },
    { "p:contains('p3')", { "p3" } },
    { ":root > head > title", { "T" } },
    { "h1, li.hot, em", { "Head", "l2", "" } },
    { "*#main > span", { "s1" } },
  }
  for _, c in ipairs(cases) do
    same_list(texts(doc:css(c[1])), c[2], "css " .. c[1])
  end
end)

group("nodes: text, attr, attrs, html, tag", function()
  local doc = html.parse(PAGE, "http://site.test/dir/page.html")
  local p2 = doc:first("[lang]")
  eq(p2:tag(), "p", "tag")
  eq(p2:attr("lang"), "en-GB", "attr")
  eq(p2:attr("LANG"), "en-GB", "attr names are case-blind")
  eq(p2:attr("nope"), nil, "a missing attribute is nil")
  local attrs = p2:attrs()
  eq(attrs.lang, "en-GB", "attrs")
  eq(attrs["data-x"], "a'b", "attrs with a dash")
  eq(p2:html(), [[<p lang="en-GB" data-x="a'b">p2</p>]], "html is the node's own markup")
  local a = doc:first("a")
  eq(a:link("href"), "http://site.test/x.pdf", "link resolves against the url")
  eq(doc:url(), "http://site.test/dir/page.html", "doc:url")
  eq(doc:first("h2"), nil, "first of nothing is nil")
  eq(doc:first("li, h1"):text(), "Head", "first is the first in document order")
  eq(tostring(a), "shoal.html node <a>", "tostring names the tag")
  ok(doc:text():find("Head", 1, true) ~= nil, "doc:text")
  ok(doc:html():find("<li class=\"odd hot\">l2</li>", 1, true) ~= nil, "doc:html")
  local based = html.parse([[<head><base href="/b/"></head><a href="c">c</a>]], "http://h.test/a/")
  eq(based:first("a"):link("href"), "http://h.test/b/c", "link follows <base href>")
  eq(html.parse("<a href=x>"):first("a"):link("href"), nil, "no url: no absolute link")
end)

group("nested queries", function()
  local doc = html.parse(PAGE)
  local ul = doc:first("ul.list")
  same_list(texts(ul:css("li:nth-child(odd)")), { "l1", "l3", "l5" }, "below a node")
  same_list(texts(ul:css("ul li")), {}, "a node's own tag does not match from below it")
  same_list(texts(ul:css("> li.hot")), { "l2" }, "> is the node's children")
  eq(#doc:first("h1"):css("+ p"), 1, "+ is the node's next sibling")
  same_list(texts(doc:first("h1"):css("~ p")), { "p1", "p2", "p3" }, "~ its later siblings")
  local boxes = doc:css(".box")
  eq(#boxes, 2, "two boxes")
  same_list(texts(boxes[2]:css("p")), { "p4" }, "second box's paragraphs")
  same_list(texts(boxes[1]:xpath(".//li[@class]")), { "l2" }, "xpath below a node")
  eq(boxes[1]:first("a"):attr("href"), "/x.pdf", "first below a node")
end)

group("xpath", function()
  local doc = html.parse(PAGE)
  same_list(texts(doc:xpath("//ul/li[position() <= 2]")), { "l1", "l2" }, "nodes")
  same_list(doc:xpath("//a/@href"), { "/x.pdf" }, "attributes as strings")
  same_list(doc:xpath("//h1/text()"), { "Head" }, "text nodes as strings")
  eq(doc:xpath("count(//li)"), 5, "a number")
  eq(doc:xpath("string(//title)"), "T", "a string")
  eq(doc:xpath("boolean(//em)"), true, "a boolean")
  local good, err = pcall(function() return doc:xpath("//li[") end)
  ok(not good and err:find('xpath "//li%[": an invalid expression at column 6') ~= nil,
     "a bad expression raises, naming the column", tostring(err))
  good, err = pcall(function() return doc:xpath("foo(1)") end)
  ok(not good and err:find("unknown function") ~= nil, "unknown function", tostring(err))
end)

group("misuse and bad selectors raise", function()
  local doc = html.parse(PAGE)
  local good, err = pcall(function() return doc:css("li[") end)
  ok(not good and err:find([[selector "li%[": expected an attribute name after '%[' at column 4]])
     ~= nil, "bad selector", tostring(err))
  good, err = pcall(function() return doc:css("a:hover") end)
  ok(not good and err:find("unsupported pseudo-class ':hover'", 1, true) ~= nil, ":hover", tostring(err))
  good, err = pcall(function() return doc:css(3) end)
  ok(not good and err:find("must be a string, got number") ~= nil, "css(3)", tostring(err))
  good, err = pcall(html.parse, nil)
  ok(not good and err:find("body must be a string, got nil") ~= nil, "parse(nil)", tostring(err))
  good, err = pcall(html.parse, "x", 5)
  ok(not good and err:find("url must be a string or nil") ~= nil, "parse(x, 5)", tostring(err))
  good, err = pcall(function() return doc:first("a").css(doc, "p") end)
  ok(good, "a node's css on a document still works")
end)

group("real-world markup: broken, entities, tables, scripts", function()
  local broken = html.parse("<div><p>one<p>two<b>bold<i>both</b>italic</div><li>stray")
  same_list(texts(broken:css("p")), { "one", "twoboldbothitalic" }, "unclosed p")
  same_list(texts(broken:css("li")), { "stray" }, "stray li")
  local ent = html.parse("<p>caf&eacute; &amp; &lt;tag&gt; &#x263A; &#9731; &nbsp;x &bogus;</p>")
  eq(ent:first("p"):text(), "café & <tag> ☺ ☃ \194\160x &bogus;", "entities decode")
  eq(ent:first("p"):html(),
     "<p>café &amp; &lt;tag&gt; ☺ ☃ \194\160x &amp;bogus;</p>", "html re-escapes")
  local tables = html.parse([[<table id=t><tr><td>a<table><tr><td>inner</td></tr></table>
    </td><td>b</td></tr><tr><td>c<td>d</table>]])
  -- libxml2 adds no tbody (HTML5 parsers do; so do neither lxml nor shoal)
  same_list(texts(tables:css("#t > tr > td")), { "ainner\n    ", "b", "c", "d" },
            "cells close themselves")
  same_list(texts(tables:css("table table td")), { "inner" }, "nested table")
  same_list(texts(tables:css("tr:nth-child(2) > td:last-child")), { "d" }, "position in rows")
  local scripts = html.parse([[<p>a</p><script>if (a < b && "</p>") { x = "<p>"; }</script>
    <style>p > b { color: red }</style><p>b<!-- <p>c</p> --></p>]])
  same_list(texts(scripts:css("p")), { "a", "b" }, "markup in script, style and comments")
  eq(scripts:first("script"):text(), 'if (a < b && "</p>") { x = "<p>"; }', "script text raw")
  local forms = html.parse([[<form action=/s><input name=q value="a b" disabled>
    <select name=s><option value=1>one<option value=2 selected>two</select></form>]])
  eq(forms:first("input[name=q]"):attr("value"), "a b", "input value")
  ok(forms:first("input"):attr("disabled") ~= nil, "an attribute without a value is there")
  eq(forms:first("option[selected]"):text(), "two", "unclosed option")
  local empty = html.parse("")
  eq(#empty:css("*"), 0, "an empty body is an empty document")
  local text_only = html.parse("just text")
  eq(text_only:first("p"):text(), "just text", "bare text gets wrapped")
  local nul = html.parse("<p>a\0b</p><p>c</p>")
  eq(#nul:css("p"), 2, "a NUL in the body does not end it")
  local latin = html.parse("<meta charset=iso-8859-1><p>caf\233</p>")
  eq(latin:first("p"):text(), "café", "a declared charset is decoded to UTF-8")
end)

group("memory: nodes keep their document, free() ends it", function()
  local node = html.parse("<p>kept</p>"):first("p")
  collectgarbage()
  collectgarbage()
  eq(node:text(), "kept", "a node outlives its document's last reference")
  local doc = html.parse("<p>x</p>")
  local p = doc:first("p")
  doc:free()
  local good, err = pcall(function() return p:text() end)
  ok(not good and err:find("document was freed") ~= nil, "freed document's node", tostring(err))
  good, err = pcall(function() return doc:css("p") end)
  ok(not good and err:find("document was freed") ~= nil, "freed document", tostring(err))
  doc:free()
  ok(true, "free twice is harmless")
  -- Parsing page after page, never freeing, must not pile trees up: the
  -- collector sees only small userdata, so parse() steps it. Counted in a
  -- weak table, not in RSS, which ASan's quarantine inflates. Without that
  -- step nearly all 1,000 documents were alive here (and 1,000 parses of
  -- this 60 KB page held 1.3 GB).
  local alive = setmetatable({}, { __mode = "k" })
  local row = '<tr><td class="a">cell &amp; text</td><td><a href="/x">link</a></td></tr>\n'
  local body = "<table>" .. row:rep(800) .. "</table>"
  for _ = 1, 1000 do alive[html.parse(body)] = true end
  local n = 0
  for _ in pairs(alive) do n = n + 1 end
  ok(n < 200, "1,000 parses of a 60 KB page, never freed: most trees already freed",
     n .. " documents alive")
end)

group("deep nesting does not blow the C stack", function()
  local depth = 100000
  local body = string.rep("<div>", depth) .. "deep" .. string.rep("</div>", depth)
    .. "<p>after</p>"
  local doc = html.parse(body)
  eq(doc:first("p") and doc:first("p"):text(), "after", "what follows the nesting is kept")
  local n = #doc:css("div")
  ok(n >= 1 and n <= depth, "divs found", tostring(n))
  ok(doc:text():find("deep", 1, true) ~= nil, "text of the whole document")
  ok(#doc:html() > 0, "html of the whole document")
  eq(doc:xpath("count(//div[not(div)])"), 1, "one innermost div")
  eq(n, depth, "every div is kept (past libxml2's default limit of 256)")
  local spans = string.rep("<span>", depth) .. "s"
  eq(#html.parse(spans):css("span:first-child") >= 1, true, "unclosed spans")
  doc:free()
end)

spec.finish()
