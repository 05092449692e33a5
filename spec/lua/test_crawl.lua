-- Spec of lua/shoal/crawl.lua: what crawl scripts rely on when they parse,
-- resolve, normalise and extract links.
--
--   build/lua_spec spec/lua/test_crawl.lua [ROOT]      (or SHOAL_ROOT=ROOT)
--
-- lua_spec (spec/lua/run_spec.c) is luajit with shoal's preloads: crawl.lua
-- stands on the C module shoal.url, which plain luajit lacks.
--
-- ROOT is the repository root; without it the root is found from this file's
-- path. Prints a FAIL line per failed check and closes with one line
-- "N passed, N failed"; exits 1 when anything failed.

package.path = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "spec/lua") .. "/?.lua;"
  .. package.path
local spec = require "spec"
local ok, eq, same_list, group, show = spec.ok, spec.eq, spec.same_list, spec.group, spec.show
local crawl = spec.load("crawl")
eq(require("shoal.crawl"), crawl, "require returns the module table")
for _, fn in ipairs({ "parse", "resolve", "normalize", "links", "host", "same_host" }) do
  eq(type(crawl[fn]), "function", "crawl." .. fn .. " exists")
end

group("parse", function()
  local u = crawl.parse("HTTP://User:Pw@Example.COM:8080/p/A?q=1&r=2#Frag")
  eq(u and u.scheme, "http", "parse: scheme lower-cased")
  eq(u and u.userinfo, "User:Pw", "parse: userinfo as written")
  eq(u and u.host, "example.com", "parse: host lower-cased")
  eq(u and u.port, 8080, "parse: port is a number")
  eq(u and u.path, "/p/A", "parse: path keeps its case")
  eq(u and u.query, "q=1&r=2", "parse: query")
  eq(u and u.fragment, "Frag", "parse: fragment")

  u = crawl.parse("http://example.com")
  eq(u and u.path, "", "parse: no path is the empty path")
  eq(u and u.query, nil, "parse: no query is nil")
  eq(u and u.fragment, nil, "parse: no fragment is nil")
  eq(u and u.port, nil, "parse: no port is nil")
  eq(u and u.userinfo, nil, "parse: no userinfo is nil")
  u = crawl.parse("http://example.com/?")
  eq(u and u.query, "", "parse: an empty query is not an absent one")
  u = crawl.parse("http://example.com:/x")
  eq(u and u.port, nil, "parse: an empty port is no port")
  u = crawl.parse("http://a@b@example.com/")
  eq(u and u.userinfo, "a@b", "parse: the last @ ends userinfo")
  eq(u and u.host, "example.com", "parse: host after the last @")

  u = crawl.parse("http://[::1]:8080/x")
  eq(u and u.host, "::1", "parse: IPv6 literal host without brackets")
  eq(u and u.port, 8080, "parse: port after an IPv6 literal")
  eq(u and u.path, "/x", "parse: path after an IPv6 literal")
  u = crawl.parse("https://[2001:DB8::A]/")
  eq(u and u.host, "2001:db8::a", "parse: IPv6 literal lower-cased")
  eq(u and u.port, nil, "parse: IPv6 literal without port")

  u = crawl.parse("mailto:someone@example.com")
  eq(u and u.scheme, "mailto", "parse: a URL without authority")
  eq(u and u.host, nil, "parse: ... has no host")
  eq(u and u.path, "someone@example.com", "parse: ... keeps its path")

  local bad = { "/relative/path", "example.com/x", "", "http://example.com:99999/",
                "http://example.com:8o/", "http://[::1/", "http://[::1]x/",
                "http://[zz::1]/", "http://exa mple.com/", "http://a<b/" }
  for _, s in ipairs(bad) do
    local r, err = crawl.parse(s)
    ok(r == nil and type(err) == "string", "parse rejects " .. show(s),
       "got " .. show(r) .. ", " .. show(err))
  end
  ok(not pcall(crawl.parse, nil), "parse(nil) raises (misuse)")
  local _, msg = pcall(crawl.parse, 42)
  ok(tostring(msg):find("parse", 1, true) ~= nil, "the misuse message names the function",
     tostring(msg))
end)

group("resolve: RFC 3986 5.4", function()
  local base = "http://a/b/c/d;p?q"
  local normal = { -- section 5.4.1
    { "g:h", "g:h" }, { "g", "http://a/b/c/g" }, { "./g", "http://a/b/c/g" },
    { "g/", "http://a/b/c/g/" }, { "/g", "http://a/g" }, { "//g", "http://g" },
    { "?y", "http://a/b/c/d;p?y" }, { "g?y", "http://a/b/c/g?y" },
    { "#s", "http://a/b/c/d;p?q#s" }, { "g#s", "http://a/b/c/g#s" },
    { "g?y#s", "http://a/b/c/g?y#s" }, { ";x", "http://a/b/c/;x" },
    { "g;x", "http://a/b/c/g;x" }, { "g;x?y#s", "http://a/b/c/g;x?y#s" },
    { "", "http://a/b/c/d;p?q" }, { ".", "http://a/b/c/" }, { "./", "http://a/b/c/" },
    { "..", "http://a/b/" }, { "../", "http://a/b/" }, { "../g", "http://a/b/g" },
    { "../..", "http://a/" }, { "../../", "http://a/" }, { "../../g", "http://a/g" },
  }
  local abnormal = { -- section 5.4.2
    { "../../../g", "http://a/g" }, { "../../../../g", "http://a/g" },
    { "/./g", "http://a/g" }, { "/../g", "http://a/g" }, { "g.", "http://a/b/c/g." },
    { ".g", "http://a/b/c/.g" }, { "g..", "http://a/b/c/g.." }, { "..g", "http://a/b/c/..g" },
    { "./../g", "http://a/b/g" }, { "./g/.", "http://a/b/c/g/" },
    { "g/./h", "http://a/b/c/g/h" }, { "g/../h", "http://a/b/c/h" },
    { "g;x=1/./y", "http://a/b/c/g;x=1/y" }, { "g;x=1/../y", "http://a/b/c/y" },
    { "g?y/./x", "http://a/b/c/g?y/./x" }, { "g?y/../x", "http://a/b/c/g?y/../x" },
    { "g#s/./x", "http://a/b/c/g#s/./x" }, { "g#s/../x", "http://a/b/c/g#s/../x" },
    { "http:g", "http:g" }, -- a strict parser
  }
  for _, case in ipairs(normal) do
    eq(crawl.resolve(base, case[1]), case[2], "RFC 5.4.1 " .. show(case[1]))
  end
  for _, case in ipairs(abnormal) do
    eq(crawl.resolve(base, case[1]), case[2], "RFC 5.4.2 " .. show(case[1]))
  end
end)

group("resolve: more", function()
  -- RFC 3986 5.2.4's own remove_dot_segments examples
  eq(crawl.resolve("http://x/", "http://y/a/b/c/./../../g"), "http://y/a/g",
     "5.2.4 /a/b/c/./../../g")
  eq(crawl.resolve("foo:", "mid/content=5/../6"), "foo:mid/6", "5.2.4 mid/content=5/../6")
  eq(crawl.resolve("foo:", "../g"), "foo:g", "5.2.4 rule A: a leading ../ goes")
  eq(crawl.resolve("foo:", "./g"), "foo:g", "5.2.4 rule A: a leading ./ goes")
  eq(crawl.resolve("foo:", ".."), "foo:", "5.2.4 rule D: a lone .. goes")
  eq(crawl.resolve("http://a", "g"), "http://a/g", "a base with an empty path merges with /")
  eq(crawl.resolve("http://a/b?q#f", ""), "http://a/b?q", "the base's fragment is dropped")
  eq(crawl.resolve("http://a/b", "//c:81/d/../e"), "http://c:81/e", "network-path reference")
  eq(crawl.resolve("https://a/b/c", "HTTP://X/Y"), "HTTP://X/Y", "resolve does not normalise")
  eq(crawl.resolve("http://a/" .. ("./"):rep(50000) .. "x", "y"), "http://a/y",
     "a base of 50,000 dot segments resolves")
  local r, err = crawl.resolve("/not/absolute", "g")
  ok(r == nil and type(err) == "string", "resolve needs an absolute base", show(r))
  ok(not pcall(crawl.resolve, "http://a/", nil), "resolve(base, nil) raises (misuse)")
end)

group("normalize", function()
  local cases = {
    { "HTTP://Example.COM:80/a/./b/../c?x=1#frag", "http://example.com/a/c?x=1" },
    { "http://example.com", "http://example.com/" },
    { "http://example.com?x", "http://example.com/?x" },
    { "https://example.com:443", "https://example.com/" },
    { "https://example.com:80/", "https://example.com:80/" },
    { "http://example.com:443/", "http://example.com:443/" },
    { "http://Example.com:8080", "http://example.com:8080/" },
    { "http://example.com:0080/", "http://example.com/" },
    { "http://example.com:/", "http://example.com/" },
    { "http://[::1]:80/x", "http://[::1]/x" },
    { "http://[::1]:8080", "http://[::1]:8080/" },
    { "http://[FE80::1]/", "http://[fe80::1]/" },
    { "http://U:P@Example.com/", "http://U:P@example.com/" },
    { "http://a/%7e%2fx%3a", "http://a/~%2Fx%3A" },
    { "http://a/%41%42%2D%5F%2e", "http://a/AB-_." },
    { "http://a/%2E%2E/b", "http://a/b" },
    { "http://a/b/%2e/c", "http://a/b/c" },
    { "http://a/x%zz%", "http://a/x%25zz%25" },
    { "http://a/%4", "http://a/%254" },
    { "http://a/a b", "http://a/a%20b" },
    { "http://a/caf\195\169", "http://a/caf%C3%A9" },
    { "http://a/<>\"{}|\\^`", "http://a/%3C%3E%22%7B%7D%7C%5C%5E%60" },
    { "http://a/\1\127", "http://a/%01%7F" },
    { "http://a/?b=%aa&c=d e", "http://a/?b=%AA&c=d%20e" },
    { "http://a/?", "http://a/?" },
    { "http://a/?b=2&a=1&a=1", "http://a/?b=2&a=1&a=1" },
    { "http://a/?x=/./y/../z", "http://a/?x=/./y/../z" },
    { "http://a/b#", "http://a/b" },
    { "http://a/./", "http://a/" },
    { "http://a/b/..", "http://a/" },
    { "http://a/b/../../..", "http://a/" },
    { "http://a/B/C", "http://a/B/C" },
    { "http://a/b;p=1/c", "http://a/b;p=1/c" },
  }
  for _, case in ipairs(cases) do
    eq(crawl.normalize(case[1]), case[2], "normalize " .. show(case[1]))
    local once = crawl.normalize(case[1])
    if once then eq(crawl.normalize(once), once, "normalize is idempotent on " .. show(once)) end
  end
  local bad = { "ftp://a/", "mailto:x@y", "javascript:alert(1)", "/relative", "a/b",
                "http:///x", "http://", "http:g", "http://a:65536/", "http://[::1/",
                "http://a b/", "" }
  for _, s in ipairs(bad) do
    local r, err = crawl.normalize(s)
    ok(r == nil and type(err) == "string", "normalize rejects " .. show(s),
       "got " .. show(r) .. ", " .. show(err))
  end
  ok(not pcall(crawl.normalize, nil), "normalize(nil) raises (misuse)")

  -- Byte by byte: the characters RFC 3986 allows stay, every other byte is
  -- percent-encoded (this list is the RFC's, not the module's).
  local allowed = {}
  local rfc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/[]@!$&'()*+,;="
  for i = 1, #rfc do allowed[rfc:byte(i)] = true end
  local wrong = {}
  for b = 0, 255 do
    local c = string.char(b)
    local want
    if c == "#" then
      want = "http://a/x"
    elseif c == "?" then
      want = "http://a/x?y"
    elseif c == "%" then
      want = "http://a/x%25y"
    elseif allowed[b] then
      want = "http://a/x" .. c .. "y"
    else
      want = string.format("http://a/x%%%02Xy", b)
    end
    local got = crawl.normalize("http://a/x" .. c .. "y")
    if got ~= want then wrong[#wrong + 1] = b .. " (" .. show(got) .. ")" end
  end
  eq(table.concat(wrong, ", "), "", "normalize encodes exactly the bytes RFC 3986 does not allow")
  -- Origins are cached: the second answer must be the first one, good or bad,
  -- short or long, and stay right after many hosts.
  local long = ("a"):rep(400)
  for round = 1, 2 do
    eq(crawl.normalize("HTTP://" .. long:upper() .. ":80/x"), "http://" .. long .. "/x",
       "a 400-byte host, round " .. round)
    local r, err = crawl.normalize("http://" .. long .. "<b/")
    ok(r == nil and type(err) == "string", "a bad 400-byte host, round " .. round, show(r))
    r, err = crawl.normalize("http://a b/")
    ok(r == nil and type(err) == "string", "a bad short host, round " .. round, show(r))
    eq(crawl.normalize("HTTP://A.test:80/x"), "http://a.test/x", "a short host, round " .. round)
  end
  for i = 1, 2500 do crawl.normalize("http://h" .. i .. ".test:8" .. (i % 10) .. "/") end
  eq(crawl.normalize("HTTP://H1.test:81/x"), "http://h1.test:81/x", "after 2,500 hosts")
  eq(crawl.normalize("HTTP://H2499.test:89/x"), "http://h2499.test:89/x", "after 2,500 hosts (2)")
  eq(crawl.normalize("http://a/" .. ("x/./"):rep(100000)), "http://a/" .. ("x/"):rep(100000),
     "a path of 100,000 dot segments normalises")
end)

group("host and same_host", function()
  eq(crawl.host("http://Example.COM:8080/x"), "example.com", "host without port, lower-cased")
  eq(crawl.host("http://[::1]:8080/"), "::1", "host of an IPv6 URL")
  eq(crawl.host("/relative"), nil, "host of a relative URL is nil")
  eq(crawl.host("mailto:x@y"), nil, "host of a URL without authority is nil")
  eq(crawl.host("http:///x"), nil, "host of a URL with an empty authority is nil")
  local _, long_err = crawl.normalize("http://" .. ("a"):rep(5000) .. ":x/")
  ok(type(long_err) == "string" and #long_err < 300, "error messages stay short for long URLs",
     tostring(long_err and #long_err))
  local yes = {
    { "http://a.com/x", "http://A.COM:80/y?z" },
    { "https://a.com:443/", "https://a.com" },
    { "http://[::1]:8080/", "http://[::1]:8080/x" },
    { "HTTP://a.com", "http://a.com/" },
  }
  local no = {
    { "http://a.com", "https://a.com" },
    { "http://a.com:8080", "http://a.com" },
    { "http://sub.a.com", "http://a.com" },
    { "http://a.com", "/relative" },
    { "http://a.com", "not a url" },
    { "http://a.com", nil },
    { nil, nil },
    { "/x", "/x" },
  }
  for _, p in ipairs(yes) do
    eq(crawl.same_host(p[1], p[2]), true, "same_host " .. show(p[1]) .. " " .. show(p[2]))
  end
  for _, p in ipairs(no) do
    eq(crawl.same_host(p[1], p[2]), false, "not same_host " .. show(p[1]) .. " " .. show(p[2]))
  end
end)

-- links() must give the same URL for an href as normalize(resolve()).
local function expect_links(html, base, want, name)
  local got, err = crawl.links(html, base)
  if err ~= nil then ok(false, name, "links() caught an internal error: " .. tostring(err)) end
  same_list(got, want, name)
end

group("links: basics", function()
  local base = "http://h.test/dir/page.html"
  expect_links('<a href="/x">x</a>', base, { "http://h.test/x" }, "double quotes")
  expect_links("<a href='/y'>y</a>", base, { "http://h.test/y" }, "single quotes")
  expect_links("<a href=/z?a=1>z</a>", base, { "http://h.test/z?a=1" }, "unquoted")
  expect_links('<a href="rel">r</a>', base, { "http://h.test/dir/rel" }, "relative")
  expect_links('<a href="../up/./x">r</a>', base, { "http://h.test/up/x" }, "dot segments")
  expect_links('<a href="?page=2">r</a>', base, { "http://h.test/dir/page.html?page=2" },
               "query-only reference")
  expect_links('<a href="//cdn.test/lib">r</a>', "https://h.test/", { "https://cdn.test/lib" },
               "network-path reference takes the page's scheme")
  expect_links('<a href="HTTPS://Other.TEST:443/P">o</a>', base, { "https://other.test/P" },
               "absolute links are normalised")
  expect_links('<a href="/p#one">1</a><a href="/p#two">2</a><a href="/p">3</a>', base,
               { "http://h.test/p" }, "fragments dropped, then de-duplicated")
  expect_links('<a href="/c">c</a><a href="/a">a</a><a href="/b">b</a><a href="/a">a</a>', base,
               { "http://h.test/c", "http://h.test/a", "http://h.test/b" },
               "order of first appearance")
  expect_links('<a href="/x">1</a><a href="http://h.test:80/x">2</a>', base,
               { "http://h.test/x" }, "dedup is by normalised URL")
  expect_links('<area shape=rect href="/map">', base, { "http://h.test/map" }, "<area>")
  expect_links('<a href="/caf\195\169 x">', base, { "http://h.test/caf%C3%A9%20x" },
               "non-ASCII and spaces are percent-encoded")
  expect_links('<a href="  /trim  ">', base, { "http://h.test/trim" }, "href trimmed")
  expect_links('<a href="/a\n/b\t/c">', base, { "http://h.test/a/b/c" },
               "tabs and newlines inside dropped, as browsers do")
  expect_links('<a href="\\\\other.test\\p\\q?x=\\">', base, { "http://other.test/p/q?x=%5C" },
               "backslashes read as slashes before the query")
  expect_links('<a href="/x%2fy%7E">', base, { "http://h.test/x%2Fy~" }, "escapes normalised")
  expect_links("", base, {}, "empty page")
  expect_links("no tags at all", base, {}, "page without tags")
end)

group("links: tags and attributes", function()
  local base = "http://h.test/"
  expect_links('<A HREF="/up">', base, { "http://h.test/up" }, "upper-case tag and attribute")
  expect_links('<AREA HREF=/area>', base, { "http://h.test/area" }, "upper-case AREA")
  expect_links("<a Href='/mixed'>", base, { "http://h.test/mixed" }, "mixed-case attribute")
  expect_links('<a class="c" id=x href="/odd" title=\'t\'>', base, { "http://h.test/odd" },
               "href after other attributes")
  expect_links('<a title="a>b" href="/gt">', base, { "http://h.test/gt" },
               "> inside an earlier quoted value")
  expect_links('<a title="x=1 href=/fake" href="/real">', base, { "http://h.test/real" },
               "href= inside an earlier quoted value")
  expect_links('<a data-href="/no" xhref="/no2" href="/yes">', base, { "http://h.test/yes" },
               "only the attribute named href")
  expect_links('<a href = "/spaced" >', base, { "http://h.test/spaced" }, "spaces around =")
  expect_links('<a\nhref="/nl"\n>', base, { "http://h.test/nl" }, "newlines between attributes")
  expect_links('<a/href="/slash">', base, { "http://h.test/slash" }, "slash after tag name")
  expect_links('<a href="/q1"title="t">', base, { "http://h.test/q1" }, "no space after value")
  expect_links('<a download href="/d">', base, { "http://h.test/d" }, "attribute without value")
  expect_links('<a href="/first" href="/second">', base, { "http://h.test/first" },
               "the first of two hrefs wins")
  expect_links('<a href=/u?a=b&amp;c=d>', base, { "http://h.test/u?a=b&c=d" },
               "unquoted value with = and entities")
  expect_links('<a name="top">top</a><a>plain</a><a href>empty</a><a href="">e2</a>', base, {},
               "anchors without a usable href")
  expect_links('<abbr href="/no"><aside href="/no"><article href="/no"><link href="/css">' ..
               '<img src="/i.png"><address href="/no">', base, {}, "other tags are ignored")
  expect_links('<!-- <a href="/commented"> --><a href="/live">', base, { "http://h.test/live" },
               "comments skipped")
  expect_links('<!--><a href="/after-empty-comment">', base,
               { "http://h.test/after-empty-comment" }, "<!--> is an empty comment")
  expect_links('<script>var s = \'<a href="/in-script">\';</script><a href="/out">', base,
               { "http://h.test/out" }, "script bodies skipped")
  expect_links('<SCRIPT type="x">"<a href=/in>"</ScRiPt ><a href="/out2">', base,
               { "http://h.test/out2" }, "script end tag in any case")
  expect_links('<a href="/ok">x</a><a href="/broken>y</a><a href="/after">z', base,
               { "http://h.test/ok", "http://h.test/broken%3Ey%3C/a%3E%3Ca%20href=" },
               "an unclosed quote runs to the next quote, as in a browser")
  expect_links('<a href="/ok"><a href="/never-closed', base, { "http://h.test/ok" },
               "a quote never closed ends the page")
  expect_links('<a href="/ok"><a href="/eof"', base, { "http://h.test/ok" },
               "a tag never closed ends the page")
  expect_links('<a href="/ok"><!-- never closed <a href="/no">', base, { "http://h.test/ok" },
               "a comment never closed ends the page")
  expect_links('<a href="/ok"><script><a href="/no">', base, { "http://h.test/ok" },
               "a script never closed ends the page")
end)

group("links: skipped schemes and entities", function()
  local base = "http://h.test/p/"
  expect_links(table.concat({
    '<a href="javascript:void(0)">', '<a href="JavaScript:x()">', '<a href=" javascript:x">',
    '<a href="java\nscript:x">', '<a href="mailto:a@b.test">', '<a href="data:text/html,hi">',
    '<a href="tel:+1555">', '<a href="ftp://f.test/">', '<a href="#top">', '<a href="  #x ">',
    '<a href="">', '<a href="  ">', '<a href="&#35;frag">', '<a href="&#106;avascript:x">',
  }), base, {}, "javascript:, mailto:, data:, tel:, ftp:, empty and fragment-only skipped")
  expect_links('<a href="/e?a=1&amp;b=2&quot;&#39;&lt;&gt;&#65;&#x42;&#X43;&apos;">', base,
               { "http://h.test/e?a=1&b=2%22'%3C%3EABC'" }, "entities decoded")
  expect_links('<a href="/e?x&unknown;&amp;amp;">', base, { "http://h.test/e?x&unknown;&amp;" },
               "unknown entities kept; decoding happens once")
  expect_links('<a href="/&#x1F600;&#233;&#0;">', base,
               { "http://h.test/%F0%9F%98%80%C3%A9%EF%BF%BD" },
               "numeric entities become UTF-8, then percent-encoded")
  expect_links('<a href="/&#99999999999;">', base, { "http://h.test/%EF%BF%BD" },
               "out-of-range character references become U+FFFD")
end)

group("links: <base>", function()
  expect_links('<base href="http://other.test/d/"><a href="x">', "http://h.test/p",
               { "http://other.test/d/x" }, "base href")
  expect_links('<a href="x"><base href="http://other.test/d/">', "http://h.test/p",
               { "http://other.test/d/x" }, "a base after the links still applies")
  expect_links('<BASE HREF="/sub/"><a href="x">', "http://h.test/p/q",
               { "http://h.test/sub/x" }, "a relative base resolves against the page URL")
  expect_links('<base target="_blank"><base href="/second/"><base href="/third/"><a href="x">',
               "http://h.test/", { "http://h.test/second/x" },
               "the first base with an href wins")
  expect_links('<base href="javascript:x"><a href="y">', "http://h.test/d/p",
               { "http://h.test/d/y" }, "an unusable base is ignored")
  expect_links('<base href="http://b.test/"><a href="y">', nil, { "http://b.test/y" },
               "base href works without a page URL")
end)

group("links: kinds, nofollow, links_ex", function()
  local base = "http://h.test/d/p"
  local page = '<a href=a>1</a><iframe src="/if"><a href=/in-iframe-text></iframe>' ..
    '<frame src=fr><meta http-equiv=Refresh content="5; URL=\'/re\'">' ..
    '<link rel=next href=/n><img src=i.png srcset="s1.png 1x,\n s2.png 2x">' ..
    '<picture><source srcset="/s3.webp"></picture><area href=/ar rel=NoFollow>'
  same_list(crawl.links(page, base), { "http://h.test/d/a", "http://h.test/if",
    "http://h.test/d/fr", "http://h.test/re", "http://h.test/ar" },
    "by default the pages to follow: a, iframe, frame, meta refresh, area")
  same_list(crawl.links(page, base, { kinds = { "link", "img" } }), { "http://h.test/n",
    "http://h.test/d/i.png", "http://h.test/d/s1.png", "http://h.test/d/s2.png",
    "http://h.test/s3.webp" }, "kinds: <link href>, <img src>, srcset candidates")
  local ex = crawl.links_ex(page, base, { kinds = { "a", "area", "link", "refresh" } })
  local got = {}
  for i, r in ipairs(ex) do
    got[i] = r.url .. " " .. r.kind .. (r.nofollow and " nofollow" or "") ..
      (r.rel and " rel=" .. r.rel or "")
  end
  same_list(got, { "http://h.test/d/a a", "http://h.test/re refresh",
    "http://h.test/n link rel=next", "http://h.test/ar area nofollow" },
    "links_ex: url, kind, nofollow, rel")
  ex = crawl.links_ex('<a href=/x rel="external nofollow"><a href=/y rel=nofollow>' ..
    '<a href=/x><a href=/z rel=nofollowed>', base)
  eq(#ex, 3, "links_ex: each link once")
  eq(tostring(ex[1].nofollow) .. tostring(ex[2].nofollow) .. tostring(ex[3].nofollow),
     "falsetruefalse", "nofollow only when every occurrence has the token")
  ex = crawl.links_ex('<a href=/x><meta name="robots" content="noindex, nofollow">', base)
  eq(ex[1] and ex[1].nofollow, true, "<meta name=robots content=nofollow> covers every link")
  ok(not pcall(crawl.links, page, base, { kinds = { "a", "script" } }), "an unknown kind raises")
  local _, msg = pcall(function() crawl.links_ex(page, base, { kinds = "a" }) end)
  ok(tostring(msg):find("test_crawl.lua:%d+: shoal.crawl.links_ex: opts.kinds must be a list")
     ~= nil, "... with the caller's line", tostring(msg))
  expect_links('<a href="/e?x=&nLt;&CounterClockwiseContourIntegral;&copy=1&copy;&not">', base,
               { "http://h.test/e?x=%E2%89%AA%E2%83%92%E2%88%B3&copy=1%C2%A9%C2%AC" },
               "HTML5's whole entity table; a name without ; stays before = (attribute rule)")
  expect_links('<a href="/&#128;&#x9F;&#65">', base, { "http://h.test/%E2%82%AC%C5%B8A" },
               "numeric references: windows-1252 for 0x80-0x9f, ; optional")
  expect_links('<a href=x><a href=y><base href="/b/"><a href=z>', base,
               { "http://h.test/b/x", "http://h.test/b/y", "http://h.test/b/z" },
               "a late <base> applies to the links before it (the page is read again)")
  expect_links('<style>a{}</style><title><a href=/no></title><textarea><a href=/no>' ..
               '</textarea><![CDATA[<a href=/no>]]><a href=/yes>', base, { "http://h.test/yes" },
               "style, title, textarea and CDATA hold no links")
end)

group("links: bad arguments never raise", function()
  expect_links('<a href="http://abs.test/x"><a href="rel">', nil, { "http://abs.test/x" },
               "no page URL: only absolute links")
  expect_links('<a href="http://abs.test/x"><a href="rel">', "not a url", { "http://abs.test/x" },
               "unusable page URL: only absolute links")
  expect_links('<a href="rel">', "mailto:x@y.test", {}, "non-http page URL")
  for _, v in ipairs({ false, 42, {}, print }) do
    local got, err = crawl.links(v, "http://h.test/")
    ok(type(got) == "table" and #got == 0 and err == nil, "links(" .. type(v) .. ") is empty")
  end
  local got = crawl.links(nil, nil)
  ok(type(got) == "table" and #got == 0, "links(nil, nil) is empty")
end)

-- links() against normalize(resolve()): checks the fast path for plain
-- references against the general one, on generated references.
group("links: agrees with normalize(resolve())", function()
  local pieces = { "a", "b", "/", "/", ".", "..", "./", "../", "?", "#", "%", "%2F", "%41",
                   "%7e", ":", "@", ";", "=", "+", "\195\169", "~", "//", "x.html", "%2E" }
  local bases = { "http://h.test/a/b?q", "http://h.test", "https://H.test:443/x/./y/%7e/",
                  "http://h.test/a%2fb/c", "http://u@h.test:8080/d/e/f" }
  local seed = 12345
  local function rand(n) -- a small LCG: the same cases on every machine
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n + 1
  end
  local mismatches, tried = 0, 0
  for _ = 1, 3000 do
    local t = {}
    for j = 1, rand(8) do t[j] = pieces[rand(#pieces)] end
    local ref = table.concat(t)
    local base = bases[rand(#bases)]
    local want = {}
    if ref ~= "" and ref:sub(1, 1) ~= "#" then
      local abs = crawl.resolve(base, ref)
      local n = abs and crawl.normalize(abs)
      if n then want = { n } end
    end
    local got, err = crawl.links('<a href="' .. ref .. '">', base)
    tried = tried + 1
    if err ~= nil or #got ~= #want or got[1] ~= want[1] then
      mismatches = mismatches + 1
      if mismatches <= 5 then
        print("  mismatch: base " .. show(base) .. " href " .. show(ref) .. ": links " ..
              show(got) .. ", normalize(resolve()) " .. show(want[1]))
      end
    end
  end
  eq(mismatches, 0, "links() == normalize(resolve()) on " .. tried .. " generated hrefs")

  -- Every byte inside an href (but the three that browsers drop from URLs
  -- and the backslash they read as a slash).
  local bad_bytes = {}
  for b = 0, 255 do
    if b ~= 9 and b ~= 10 and b ~= 13 and b ~= 92 then
      local c = string.char(b)
      for _, ref in ipairs({ "/x" .. c .. "y?q" .. c .. "z", "x" .. c .. "y" }) do
        local quote = b == 34 and "'" or '"'
        local got = crawl.links("<a href=" .. quote .. ref .. quote .. ">", "http://h.test/")
        local want = crawl.normalize(crawl.resolve("http://h.test/", ref))
        if got[1] ~= want then
          bad_bytes[#bad_bytes + 1] = show(ref) .. " (" .. show(got[1]) .. ")"
        end
      end
    end
  end
  eq(table.concat(bad_bytes, ", "), "", "links() == normalize(resolve()) for every byte")
end)

local function timed(fn)
  local t = os.clock()
  local r, err = fn()
  return r, err, os.clock() - t
end

-- Hostile and large pages: no error, bounded time. A quadratic scan takes
-- minutes on these, a linear one milliseconds, so the bound has room for a
-- slow machine.
local LIMIT = 3
group("links: garbage and size", function()
  local seed = 987654321
  local function rand(n)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  end
  for round = 1, 20 do
    local bytes = {}
    for i = 1, 5000 do bytes[i] = string.char(rand(256)) end
    local junk = table.concat(bytes)
    local got, err = crawl.links(junk, "http://h.test/")
    ok(type(got) == "table" and err == nil, "random bytes, round " .. round, tostring(err))
  end
  local alphabet = { "<a ", "<A", "href", "HREF", "=", '"', "'", ">", "<", "/", " ", "\n",
                     "&amp;", "&#", ";", "x", "#", "?", "..", "<!--", "-->", "<script>",
                     "</script>", "<base ", "<area ", "\0", "\255", "javascript:", "http://",
                     "//", "[", "]", ":", "@", "%", "%4" }
  for round = 1, 300 do
    local t = {}
    for i = 1, 60 do t[i] = alphabet[rand(#alphabet) + 1] end
    local page = table.concat(t)
    local got, err = crawl.links(page, "http://h.test/d/")
    local good = type(got) == "table" and err == nil
    if good then
      for _, u in ipairs(got) do
        if type(u) ~= "string" or crawl.normalize(u) ~= u then good = false end
      end
    end
    ok(good, "tag soup, round " .. round, show(page) .. " -> " .. show(got) .. " " .. tostring(err))
  end

  -- A 1 MB page: 20,000 links of which 10,000 distinct, in ordinary markup.
  local parts = { "<html><head><title>big</title></head><body>" }
  for i = 1, 20000 do
    parts[#parts + 1] = string.format('<p class="row">Row %d: some text here, more text ' ..
      'to make the page heavy.</p><a class="l" href="/item/%d?ref=list&amp;n=%d">item</a>\n',
      i, i % 10000, i % 10000)
  end
  parts[#parts + 1] = "</body></html>"
  local big = table.concat(parts)
  ok(#big > 1000000, "the big page is over 1 MB", tostring(#big))
  local got, err, secs = timed(function() return crawl.links(big, "http://h.test/") end)
  eq(err, nil, "1 MB page: no error")
  eq(#got, 10000, "1 MB page: 10,000 distinct links")
  eq(got[1], "http://h.test/item/1?ref=list&n=1", "1 MB page: first link")
  eq(got[10000], "http://h.test/item/0?ref=list&n=0", "1 MB page: last new link")
  ok(secs < LIMIT, "1 MB page in under " .. LIMIT .. " s", string.format("%.2f s", secs))

  -- Each hostile page at 10 kB, 100 kB and 1 MB, within a budget that grows
  -- linearly with the size: a quadratic case fails at a small size, in
  -- a fraction of a second, instead of running for hours at 1 MB. A quadratic
  -- memchr is fast enough to fit the budget, so the growth from 100 kB to
  -- 1 MB (CPU time, x10 when linear, x100 when quadratic) is checked too.
  local function rep(unit, n, before, after)
    return (before or "") .. unit:rep(math.floor(n / #unit)) .. (after or "")
  end
  local hostile = {
    { "unclosed <a ", function(n) return rep("<a ", n) end },
    { "unclosed <a x", function(n) return rep("<a x", n) end },
    { "unclosed unquoted", function(n) return rep("<a href=x ", n) end },
    { "unclosed quote", function(n) return rep("x", n, '<a href="') end },
    { "many quotes", function(n) return rep('<a href="/q" title="', n) end },
    { "many =", function(n) return rep("=", n, "<a ") end },
    { "many = then >", function(n) return rep("= ", n, "<a ", ">") end },
    { "many attributes, > at the end", function(n) return rep("x=y ", n, "<a ", ">") end },
    { "many tags, = at the end", function(n) return rep("<a>", n, "", "=") end },
    { "spaces before =", function(n) return rep(" ", n, "<a x", "=y>") end },
    { "spaces after =", function(n) return rep(" ", n, "<a href=", "/y>") end },
    { "many <", function(n) return rep("<", n) end },
    { "many comments", function(n) return rep("<!--", n) end },
    { "many closed comments", function(n) return rep("<!---->", n) end },
    { "many scripts", function(n) return rep("<script>", n) end },
    { "many </ in a script", function(n) return rep("</", n, "<script>") end },
    { "many bases", function(n) return rep("<base ", n) end },
    { "huge href", function(n) return rep("a/./", n, '<a href="/', '">') end },
    { "huge href of ../", function(n) return rep("../", n, '<a href="/', '">') end },
    { "huge entity run", function(n) return rep("&amp;", n, '<a href="/', '">') end },
    { "huge escapes", function(n) return rep("%zz", n, '<a href="/', '">') end },
    { "huge whitespace href", function(n) return rep(" \t", n, '<a href="', '">') end },
    { "huge href with spaces", function(n) return rep("a ", n, '<a href=" ', ' ">') end },
    { "huge host", function(n) return rep("a", n, '<a href="http://', '/">') end },
    { "huge userinfo", function(n) return rep("@", n, '<a href="http://', 'h/">') end },
    { "many links", function(n) return rep('<a href="/x">', n) end },
    { "many links, then a base", function(n)
        return rep('<a href="x">', n, "", '<base href="/b/">')
      end },
    { "many iframes", function(n) return rep("<iframe>", n) end },
    { "many refreshes", function(n)
        return rep("<meta http-equiv=refresh content='0;url=/r'>", n)
      end },
    { "unclosed iframe", function(n) return rep("</ifram", n, "<iframe>") end },
    { "many distinct links", function(n)
        local t = {}
        for i = 1, math.floor(n / 16) do t[i] = '<a href="/' .. i .. '">' end
        return table.concat(t)
      end },
  }
  for _, case in ipairs(hostile) do
    local fine, detail, last = true, "", nil
    for _, size in ipairs({ 10000, 100000, 1000000 }) do
      local page = case[2](size)
      local r, e, s = timed(function() return crawl.links(page, "http://h.test/") end)
      local budget = LIMIT * size / 1000000 + 0.1
      if type(r) ~= "table" or e ~= nil or s > budget then
        fine = false
        detail = string.format("at %d bytes: %.2f s (budget %.2f s), error %s",
                               size, s, budget, tostring(e))
        break
      end
      if size == 1000000 and s > 40 * math.max(last, 0.005) then
        fine = false
        detail = string.format("%.3f s at 100 kB but %.3f s at 1 MB: quadratic?", last, s)
      end
      last = s
    end
    ok(fine, "hostile page: " .. case[1], detail)
  end
end)

group("a path that starts with // never becomes a host", function()
  local base = "http://example.com/dir/page.html?q=1"
  local r = crawl.resolve(base, "http:/.//evil.com/x")
  eq(r, "http:/.//evil.com/x", "resolve keeps the path a path")
  ok(crawl.host(r) ~= "evil.com", "no host evil.com in the result", show(r))
  local n = crawl.normalize(r)
  ok(n == nil or not n:find("//evil.com", 1, true) or n:find("^http:/%./"),
     "normalize does not turn it into a host", show(n))
  same_list(crawl.links('<a href="http:/.//evil.com/x">x</a>', base), {},
            "links drops it (no host)")
end)

group("normalisation options", function()
  local u = "http://a.test/p?utm_source=x&b=2&a=1&gclid=z&a=0#f"
  eq(crawl.normalize(u), "http://a.test/p?utm_source=x&b=2&a=1&gclid=z&a=0",
     "options off by default: the query as written")
  eq(crawl.normalize(u, { sort_query = true }),
     "http://a.test/p?a=1&a=0&b=2&gclid=z&utm_source=x", "sort_query: stable, by name")
  eq(crawl.normalize(u, { strip_tracking = true }), "http://a.test/p?b=2&a=1&a=0",
     "strip_tracking drops utm_* and click ids")
  eq(crawl.normalize(u, { sort_query = true, strip_tracking = true }),
     "http://a.test/p?a=1&a=0&b=2", "both")
  eq(crawl.normalize("http://a.test/p?fbclid=1&utm_medium=m", { strip_tracking = true }),
     "http://a.test/p", "a query of only tracking parameters goes, with its ?")
  eq(crawl.normalize(u, {}), crawl.normalize(u), "empty opts: the defaults")
  ok(not pcall(crawl.normalize, u, { sort = true }), "an unknown option raises (misuse)")
  local _, msg = pcall(crawl.normalize, u, { sort = true })
  ok(tostring(msg):find("unknown option sort", 1, true) ~= nil, "... and names it", tostring(msg))
  ok(not pcall(crawl.normalize, u, "sort"), "opts that are not a table raise")

  -- crawl.options: the module-wide defaults, read by normalize and links
  local page = '<a href="/x?utm_campaign=c&z=1&y=2">'
  same_list(crawl.links(page, "http://a.test/"), { "http://a.test/x?utm_campaign=c&z=1&y=2" },
            "links: options off")
  crawl.options.sort_query, crawl.options.strip_tracking = true, true
  eq(crawl.normalize(u), "http://a.test/p?a=1&a=0&b=2", "crawl.options applies to normalize")
  same_list(crawl.links(page, "http://a.test/"), { "http://a.test/x?y=2&z=1" },
            "crawl.options applies to links")
  same_list(crawl.links(page, "http://a.test/", { sort_query = false }),
            { "http://a.test/x?z=1&y=2" }, "opts win over crawl.options")
  crawl.options.sort_query, crawl.options.strip_tracking = false, false
  same_list(crawl.links(page .. '<a href="/x?z=1&y=2&gclid=9">', "http://a.test/",
                        { sort_query = true, strip_tracking = true }),
            { "http://a.test/x?y=2&z=1" }, "links dedup after the options")
  for _, x in ipairs({ u, "http://a.test/?b&a&&c=1&utm_x", "http://a.test/?" }) do
    local o = { sort_query = true, strip_tracking = true }
    local once = crawl.normalize(x, o)
    eq(crawl.normalize(once, o), once, "idempotent with both options: " .. show(x))
  end
end)

group("IDN hosts", function()
  eq(crawl.normalize("http://b\195\188cher.example/"), "http://xn--bcher-kva.example/",
     "a UTF-8 host becomes its A-label")
  eq(crawl.normalize("http://b%C3%BCcher.example/"), "http://xn--bcher-kva.example/",
     "a percent-encoded UTF-8 host too")
  eq(crawl.normalize("HTTP://B\195\156CHER.example:8080/"), "http://xn--bcher-kva.example:8080/",
     "upper case is mapped")
  local r, err = crawl.normalize("http://\255.example/")
  ok(r == nil and tostring(err):find("bad internationalised host", 1, true) ~= nil,
     "bytes that are not UTF-8: an error that says so", show(r) .. " " .. show(err))
  eq(crawl.host("http://b\195\188cher.example:8080/"), "xn--bcher-kva.example", "host")
  eq(crawl.parse("http://b\195\188cher.example/").host, "xn--bcher-kva.example", "parse")
  eq(crawl.same_host("http://b\195\188cher.example/a", "http://xn--bcher-kva.example/b"), true,
     "same_host sees one host")
  same_list(crawl.links('<a href="http://b\195\188cher.example/x">', "http://h.test/"),
            { "http://xn--bcher-kva.example/x" }, "links")
end)

group("authority", function()
  eq(crawl.authority("http://Example.COM/x"), "example.com", "default port: the host")
  eq(crawl.authority("http://127.0.0.1:8080/"), "127.0.0.1:8080", "another port: host:port")
  eq(crawl.authority("https://a.test:443/"), "a.test", "https's default port")
  eq(crawl.authority("http://[::1]:8443/"), "[::1]:8443", "IPv6 keeps its brackets")
  local r, err = crawl.authority("/relative")
  ok(r == nil and type(err) == "string", "no host: nil, err", show(r))
  ok(not pcall(crawl.authority, nil), "authority(nil) raises (misuse)")
end)

spec.finish()
