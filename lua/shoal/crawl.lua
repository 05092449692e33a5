-- shoal.crawl: URLs and links for crawl scripts.
--
--   local crawl = require "shoal.crawl"
--   crawl.parse(url)        -> {scheme, host, port, path, query, fragment, userinfo} | nil, err
--   crawl.resolve(base, ref) -> absolute URL (RFC 3986 section 5.2)      | nil, err
--   crawl.normalize(url)    -> canonical http(s) URL, the dedup key       | nil, err
--   crawl.links(html, url)  -> array of normalised http(s) links, never raises
--   crawl.host(url), crawl.same_host(a, b)
--
-- Plain Lua 5.1, no globals, no C modules: the binary embeds this file and
-- every state (producer and workers) may require it. Misuse (a URL that is not
-- a string) raises; a URL that does not parse returns nil and a message.
-- links() runs on every fetched page, so it scans with string.find and works
-- per tag, never per character, and stays linear on hostile input. Two small
-- caches (origins, the last base directory) hold strings only and are bounded.

local M = {}

local find, match, sub, gsub = string.find, string.match, string.sub, string.gsub
local lower, upper, byte, char = string.lower, string.upper, string.byte, string.char
local type, tonumber, tostring, pcall, error = type, tonumber, tostring, pcall, error
local floor = math.floor

local DEFAULT_PORT = { http = 80, https = 443 }

-- A URL in an error message, cut short: pages hold URLs of any length.
local function quoted(s)
  if #s > 120 then s = sub(s, 1, 117) .. "..." end
  return "'" .. s .. "'"
end

local function need_string(fn, what, v)
  if type(v) ~= "string" then
    error("shoal.crawl." .. fn .. ": " .. what .. " must be a string, got " .. type(v), 3)
  end
end

-- The five components of RFC 3986 appendix B. Absent components are nil and
-- an empty one is "" (they differ: "http://a/?" has an empty query); path is
-- always a string.
local function split(s)
  local scheme, rest = nil, s
  if find(s, ":", 1, true) then -- cheap, and most references have none
    scheme = match(s, "^(%a[%w+.-]*):")
    if scheme then rest = sub(s, #scheme + 2) end
  end
  local fragment, query, authority
  local p = find(rest, "#", 1, true)
  if p then fragment = sub(rest, p + 1); rest = sub(rest, 1, p - 1) end
  p = find(rest, "?", 1, true)
  if p then query = sub(rest, p + 1); rest = sub(rest, 1, p - 1) end
  if byte(rest, 1) == 47 and byte(rest, 2) == 47 then -- "//"
    p = find(rest, "/", 3, true)
    if p then
      authority, rest = sub(rest, 3, p - 1), sub(rest, p)
    else
      authority, rest = sub(rest, 3), ""
    end
  end
  return scheme, authority, rest, query, fragment
end

-- host (lower-cased, IPv6 without brackets), port (number or nil), userinfo;
-- or nil, err.
local function split_authority(auth)
  local userinfo, hostport = nil, auth
  if find(auth, "@", 1, true) then -- the last "@" ends userinfo, as in browsers
    userinfo, hostport = match(auth, "^(.*)@(.*)$")
  end
  local host, port
  if byte(hostport, 1) == 91 then -- "[": an IPv6 literal
    host, port = match(hostport, "^%[([%x:.]+)%](.*)$")
    if not host then return nil, "bad IPv6 literal in " .. quoted(auth) end
    if port ~= "" then port = match(port, "^:(%d*)$") end
  elseif find(hostport, ":", 1, true) then
    host, port = match(hostport, "^([^:]*):(%d*)$")
  else
    host, port = hostport, ""
  end
  if not port then return nil, "bad port in " .. quoted(auth) end
  -- reg-name characters (RFC 3986 3.2.2), and raw UTF-8 for IDNs
  if not find(host, "^[%w%-._~!$&'()*+,;=%%:\128-\255]*$") then
    return nil, "bad character in host " .. quoted(host)
  end
  if port == "" then
    port = nil
  else
    port = tonumber(port)
    if port > 65535 then return nil, "port out of range in " .. quoted(auth) end
  end
  return lower(host), port, userinfo
end

-- RFC 3986 section 5.2.4, rule by rule (A to E), on bytes at position i
-- rather than on copies of the rest of the input: a long path of "./"
-- segments costs linear time.
local DOT, SLASH = 46, 47
local function remove_dots(path)
  if byte(path, 1) ~= DOT and not find(path, "/.", 1, true) then return path end
  local out, n, i, len = {}, 0, 1, #path
  while i <= len do
    local b1, b2, b3 = byte(path, i, i + 2)
    if b1 == DOT and b2 == DOT and b3 == SLASH then -- A: "../"
      i = i + 3
    elseif b1 == DOT and b2 == SLASH then -- A: "./"
      i = i + 2
    elseif b1 == SLASH and b2 == DOT and (b3 == SLASH or i + 1 == len) then -- B: "/./", "/."
      if b3 == SLASH then
        i = i + 2
      else
        n = n + 1; out[n] = "/"
        i = len + 1
      end
    elseif b1 == SLASH and b2 == DOT and b3 == DOT
        and (i + 2 == len or byte(path, i + 3) == SLASH) then -- C: "/../", "/.."
      if n > 0 then out[n] = nil; n = n - 1 end
      if i + 2 == len then n = n + 1; out[n] = "/" end
      i = i + 3
    elseif b1 == DOT and (i == len or (b2 == DOT and i + 1 == len)) then -- D: ".", ".."
      i = len + 1
    else -- E: the first segment, with its "/", goes to the output
      local e = find(path, "/", i + 1, true) or len + 1
      n = n + 1; out[n] = sub(path, i, e - 1)
      i = e
    end
  end
  return table.concat(out)
end

-- The base path up to its last "/": the links of a page share one base, so
-- the last answer is kept.
local last_path, last_dir = "", ""
local function directory(path)
  if path ~= last_path then last_path, last_dir = path, match(path, "^.*/") or "" end
  return last_dir
end

-- RFC 3986 section 5.2.2 (strict: a reference with a scheme is absolute).
-- Base components may be nil when there is no usable base; then only
-- absolute references resolve.
local function resolve_parts(bs, ba, bp, bq, rs, ra, rp, rq)
  if rs then return rs, ra, remove_dots(rp), rq end
  if not bs then return nil end
  if ra then return bs, ra, remove_dots(rp), rq end
  if rp == "" then return bs, ba, bp, rq or bq end
  if byte(rp, 1) ~= 47 then
    if ba and bp == "" then
      rp = "/" .. rp
    else
      rp = directory(bp) .. rp
    end
  end
  return bs, ba, remove_dots(rp), rq
end

local function join(s, a, p, q, f)
  local t = s .. ":"
  if a then
    t = t .. "//" .. a
  elseif sub(p, 1, 2) == "//" then
    -- without this, the path's first segment would read as a host
    -- ("http:/.//evil.example/x" must not become http://evil.example/x)
    t = t .. "/."
  end
  t = t .. p
  if q then t = t .. "?" .. q end
  if f then t = t .. "#" .. f end
  return t
end

-- Percent-encoding in the canonical form: escapes in upper-case hex,
-- unreserved characters decoded (RFC 3986 section 6.2.2.2), a "%" that starts
-- no escape and bytes that may not appear in a URL (space, controls,
-- non-ASCII, "<>\"{}|\\^`") encoded.
local function fix_escape(h)
  if #h < 2 then return "%25" .. h end
  local c = char(tonumber(h, 16))
  if find(c, "^[%w%-%._~]$") then return c end
  return "%" .. upper(h)
end

local function encode_byte(c)
  return ("%%%02X"):format(byte(c))
end

-- Every character of RFC 3986 but "%": a string of only these needs no work.
-- Written as ASCII ranges, which the matcher tests faster than classes:
-- a-z, "&" to ";" (&'()*+,-./0-9:;), "?" to "Z" (?@A-Z), then [ ] ! # $ = _ ~.
-- (An anchored run of one set costs a few ns a byte; an unanchored search
-- for the complement costs several times that.)
local PLAIN = "^[a-z&-;?-Z%[%]!#$=_~]*$"
local BAD = "[%c \"<>\\^`{|}\128-\255]"

local function fix_escapes(s)
  if find(s, PLAIN) then return s end
  s = gsub(s, "%%(%x?%x?)", fix_escape)
  return (gsub(s, BAD, encode_byte))
end

-- The "scheme://userinfo@host:port" part of a canonical URL, or nil, err.
local function canonical_origin(scheme, auth)
  scheme = lower(scheme)
  local default = DEFAULT_PORT[scheme]
  if not default then return nil, "not an http(s) URL" end
  if not auth then return nil, "no host" end
  local host, port, userinfo = split_authority(auth)
  if not host then return nil, port end
  if host == "" then return nil, "no host" end
  if find(host, ":", 1, true) then host = "[" .. host .. "]" end
  if port and port ~= default then host = host .. ":" .. port end
  if userinfo then host = fix_escapes(userinfo) .. "@" .. host end
  return scheme .. "://" .. host
end

-- Origins already worked out, by scheme as written and then authority: a
-- crawl meets few hosts, many times each. Emptied when it grows past
-- ORIGINS_MAX, so a crawl of many hosts cannot fill the state's memory.
local ORIGINS_MAX = 1000
local origins, n_origins = {}, 0

local function origin_of(s, a)
  local key = a or "" -- no authority and an empty one fail alike
  local by_auth = origins[s]
  local o = by_auth and by_auth[key]
  if o == nil then
    local err
    o, err = canonical_origin(s, a)
    o = o or { err } -- a failure is kept as {message}
    if #s + #key <= 300 then -- longer holds no host name: not worth keeping
      if n_origins >= ORIGINS_MAX then origins, n_origins = {}, 0 end
      by_auth = origins[s]
      if not by_auth then by_auth = {}; origins[s] = by_auth end
      by_auth[key] = o
      n_origins = n_origins + 1
    end
  end
  if type(o) == "table" then return nil, o[1] end
  return o
end

-- plain: p and q are known to need no percent-encoding work, and p has had
-- its dot segments removed.
local function normalize_parts(s, a, p, q, plain)
  if not s then return nil, "not an absolute URL" end
  local origin, err = origin_of(s, a)
  if not origin then return nil, err end
  if not plain then
    p = remove_dots(fix_escapes(p))
    q = q and fix_escapes(q)
  end
  if p == "" then p = "/" end
  if q then return origin .. p .. "?" .. q end
  return origin .. p
end

function M.parse(url)
  need_string("parse", "url", url)
  local scheme, auth, path, query, fragment = split(url)
  if not scheme then return nil, "no scheme in " .. quoted(url) .. " (a relative URL?)" end
  local t = { scheme = lower(scheme), path = path, query = query, fragment = fragment }
  if auth then
    local host, port, userinfo = split_authority(auth)
    if not host then return nil, port end
    t.host, t.port, t.userinfo = host, port, userinfo
  end
  return t
end

function M.resolve(base, ref)
  need_string("resolve", "base", base)
  need_string("resolve", "ref", ref)
  local bs, ba, bp, bq = split(base)
  if not bs then return nil, "base URL " .. quoted(base) .. " is not absolute" end
  local rs, ra, rp, rq, rf = split(ref)
  local s, a, p, q = resolve_parts(bs, ba, bp, bq, rs, ra, rp, rq)
  return join(s, a, p, q, rf)
end

function M.normalize(url)
  need_string("normalize", "url", url)
  local s, a, p, q = split(url)
  return normalize_parts(s, a, p, q)
end

function M.host(url)
  need_string("host", "url", url)
  local t, err = M.parse(url)
  if not t then return nil, err end
  if not t.host or t.host == "" then return nil, "no host in " .. quoted(url) end
  return t.host
end

local function site(url)
  if type(url) ~= "string" then return nil end
  local t = M.parse(url)
  if not t or not t.host or t.host == "" then return nil end
  return t.scheme .. "://" .. t.host .. ":" .. tostring(t.port or DEFAULT_PORT[t.scheme])
end

-- True when a and b have the same scheme, host and (effective) port.
function M.same_host(a, b)
  local sa = site(a)
  return sa ~= nil and sa == site(b)
end

---------------------------------------------------------------- links

local ENTITY = { amp = "&", quot = '"', apos = "'", lt = "<", gt = ">" }

local function utf8(n)
  if n <= 0 or n > 0x10FFFF or (n >= 0xD800 and n <= 0xDFFF) then
    return "\239\191\189" -- U+FFFD, as browsers do
  elseif n < 0x80 then
    return char(n)
  elseif n < 0x800 then
    return char(0xC0 + floor(n / 64), 0x80 + n % 64)
  elseif n < 0x10000 then
    return char(0xE0 + floor(n / 4096), 0x80 + floor(n / 64) % 64, 0x80 + n % 64)
  end
  return char(0xF0 + floor(n / 262144), 0x80 + floor(n / 4096) % 64,
              0x80 + floor(n / 64) % 64, 0x80 + n % 64)
end

local function entity(name)
  if byte(name, 1) ~= 35 then return ENTITY[name] end -- unknown names stay as written
  local n = match(name, "^#[xX](%x+)$")
  n = n and tonumber(n, 16) or tonumber(match(name, "^#(%d+)$"))
  if n then return utf8(n) end
end

-- An href as written in the page -> the reference to resolve and whether it
-- is plain (see PLAIN; known_plain: the caller knows it is); nil for an empty
-- or fragment-only one. Browsers trim spaces and controls, drop tabs and
-- newlines inside, and read "\" as "/": a crawler should request what a
-- browser would.
local function clean_href(h, known_plain)
  if find(h, "&", 1, true) and find(h, ";", 1, true) then
    h = gsub(h, "&(#?%w+);", entity)
    known_plain = false
  end
  local plain = known_plain or find(h, PLAIN) ~= nil
  if not plain then
    if find(h, "[%s%c]") then
      local first = find(h, "[^%s%c]")
      if not first then return nil end
      h = gsub(sub(h, first, match(h, "^.*()[^%s%c]", first)), "[\t\n\r]", "")
    end
    if find(h, "\\", 1, true) then
      local before, after = match(h, "^([^?#]*)(.*)$")
      h = gsub(before, "\\", "/") .. after
    end
  end
  local c = byte(h, 1)
  if not c or c == 35 then return nil end
  return h, plain
end

local SPACE = { [9] = true, [10] = true, [12] = true, [13] = true, [32] = true }
local HUGE = math.huge

-- Reads the attributes of a tag from i (just past its name) to its ">".
-- Returns the raw value of its first href attribute (or nil) and the index
-- past the ">"; or nothing when the tag never closes, which ends the
-- document as far as a browser is concerned.
--
-- It jumps from "=" to "=" with plain finds, which cost next to nothing,
-- and reads names and values around them. gt and eq are the positions of
-- the next ">" and "=" at or after some earlier point (0 when unknown),
-- returned updated so that the caller passes them to the next tag: each is
-- searched for once per stretch of page, never once per tag, which keeps a
-- page of unclosed tags linear.
local function tag_href(html, i, gt, eq)
  local href
  while true do
    if gt < i then gt = find(html, ">", i, true) or HUGE end
    if gt == HUGE then return end
    if eq < i then eq = find(html, "=", i, true) or HUGE end
    if gt < eq then return href, gt + 1, gt, eq end
    -- The attribute's name ends before the "=", maybe with spaces between.
    local ne = eq - 1
    while ne >= i and SPACE[byte(html, ne)] do ne = ne - 1 end
    local is_href = false
    if not href and ne - 3 >= i then
      local before = byte(html, ne - 4)
      is_href = (SPACE[before] or before == 47 or before == 34 or before == 39)
        and lower(sub(html, ne - 3, ne)) == "href"
    end
    local v = eq + 1
    while SPACE[byte(html, v)] do v = v + 1 end
    local q, ve = byte(html, v)
    if q == 34 or q == 39 then
      ve = find(html, q == 34 and '"' or "'", v + 1, true)
      if not ve then return end
      i = ve + 1
      v = v + 1
    else
      ve = find(html, "[%s>]", v) or #html + 1
      i = ve
    end
    if is_href then href = sub(html, v, ve - 1) end
  end
end

-- True when the bytes after "<" at s spell name (lower case) and end there.
local function is_tag(html, s, name)
  local e = s + #name
  local after = byte(html, e + 1)
  return (SPACE[after] or after == 62 or after == 47) and lower(sub(html, s + 1, e)) == name
end

-- The index past the "</script" that ends a script body starting at i.
local function script_end(html, i)
  while true do
    i = find(html, "</", i, true)
    if not i then return end
    if lower(sub(html, i + 2, i + 7)) == "script" then return i + 8 end
    i = i + 2
  end
end

-- One pass over the "<"s of the page: the href of every <a> and <area>, and
-- of the first <base> that has one; comments and <script> bodies skipped.
local function scan(html)
  local hrefs, n, base = {}, 0, nil
  local pos, gt, eq = 1, 0, 0
  while true do
    local s = find(html, "<", pos, true)
    if not s then break end
    pos = s + 1
    local c, d = byte(html, pos, pos + 1)
    local name_end, is_base
    if c == 97 or c == 65 then -- a, area
      if SPACE[d] or d == 62 or d == 47 then
        name_end = pos + 1
      elseif (d == 114 or d == 82) and is_tag(html, s, "area") then
        name_end = pos + 4
      end
    elseif (c == 98 or c == 66) and (d == 97 or d == 65) and not base
        and is_tag(html, s, "base") then
      name_end, is_base = pos + 4, true
    elseif c == 33 and d == 45 and byte(html, pos + 2) == 45 then -- <!--
      local e = find(html, "-->", pos + 1, true)
      if not e then break end
      pos = e + 3
    elseif (c == 115 or c == 83) and (d == 99 or d == 67) and is_tag(html, s, "script") then
      pos = script_end(html, pos + 6)
      if not pos then break end
    end
    if name_end then
      local href, after
      href, after, gt, eq = tag_href(html, name_end, gt, eq)
      if not after then break end
      if is_base then
        base = href
      elseif href then
        n = n + 1
        hrefs[n] = href
      end
      pos = after
    end
  end
  return hrefs, n, base
end

local function extract(html, base_url)
  local hrefs, n, base_href = scan(html)
  local bs, ba, bp, bq
  if type(base_url) == "string" then bs, ba, bp, bq = split(base_url) end
  if base_href then -- <base href> is itself relative to the document's URL
    local h = clean_href(base_href)
    if h then
      local s, a, p, q = resolve_parts(bs, ba, bp, bq, split(h))
      if s and a and DEFAULT_PORT[lower(s)] then bs, ba, bp, bq = s, a, p, q end
    end
  end
  -- The base in canonical form once, so plain references need no more work.
  if bs then bp, bq = remove_dots(fix_escapes(bp)), bq and fix_escapes(bq) end
  -- Most pages have only plain hrefs: one check of them all costs less
  -- than one check of each.
  local all_plain = find(table.concat(hrefs, "/", 1, n), PLAIN) ~= nil
  local out, count, seen = {}, 0, {}
  for i = 1, n do
    local h, plain = clean_href(hrefs[i], all_plain)
    if h then
      -- normalize_parts turns away other schemes (javascript:, mailto:, ...)
      local s, a, p, q = resolve_parts(bs, ba, bp, bq, split(h))
      local url = normalize_parts(s, a, p, q, plain)
      if url and not seen[url] then
        seen[url] = true
        count = count + 1
        out[count] = url
      end
    end
  end
  return out
end

-- Never raises: a page is untrusted input. Returns an empty array (and, only
-- if this module has a bug, the error as a second value) when it cannot.
function M.links(html, base_url)
  if type(html) ~= "string" then return {} end
  local ok, out = pcall(extract, html, base_url)
  if ok then return out end
  return {}, out
end

return M
