-- shoal.crawl: URLs and links for crawl scripts.
--
--   local crawl = require "shoal.crawl"
--   crawl.parse(url)        -> {scheme, host, port, path, query, fragment, userinfo} | nil, err
--   crawl.resolve(base, ref) -> absolute URL (RFC 3986 section 5.2)      | nil, err
--   crawl.normalize(url [, opts]) -> canonical http(s) URL, the dedup key | nil, err
--   crawl.links(html, url [, opts]) -> array of normalised http(s) links, never raises
--   crawl.host(url), crawl.authority(url), crawl.same_host(a, b)
--   crawl.options           -> {sort_query = false, strip_tracking = false}: the
--                              opts normalize and links use when given none
--
-- The URL work is C (engine/base/url.c, reached through the module shoal.url
-- that every state preloads); this file keeps the argument checks, the
-- options and the links scanner. No globals: the binary embeds this file and
-- every state (producer and workers) may require it. Misuse (a URL that is
-- not a string, an unknown option) raises; a URL that does not parse
-- returns nil and a message. links() runs on every fetched page, so it
-- scans with string.find and works per tag, never per character, and stays
-- linear on hostile input.

local M = {}

local url = require "shoal.url"
local c_split, c_parse, c_resolve = url.split, url.parse, url.resolve
local c_normalize, c_links, c_authority = url.normalize, url.links, url.authority
local SORT_QUERY, STRIP_TRACKING = url.SORT_QUERY, url.STRIP_TRACKING

local find, match, sub, gsub = string.find, string.match, string.sub, string.gsub
local lower, byte, char = string.lower, string.byte, string.char
local type, tonumber, tostring, pcall, error, pairs = type, tonumber, tostring, pcall, error, pairs
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

-- Normalisation options: off unless a script turns them on, here for every
-- call (set them at the script's top level, which every state runs) or
-- per call through opts.
M.options = { sort_query = false, strip_tracking = false }

-- opts as shoal.url's flags: each option opts does not set comes from
-- crawl.options.
local function flags_of(fn, opts)
  local defaults = M.options
  local sort, strip = defaults.sort_query, defaults.strip_tracking
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("shoal.crawl." .. fn .. ": opts must be a table, got " .. type(opts), 3)
    end
    for k, v in pairs(opts) do
      if k == "sort_query" then
        sort = v
      elseif k == "strip_tracking" then
        strip = v
      else
        error("shoal.crawl." .. fn .. ": unknown option " .. tostring(k) ..
              " (sort_query, strip_tracking)", 3)
      end
    end
  end
  return (sort and SORT_QUERY or 0) + (strip and STRIP_TRACKING or 0)
end

function M.parse(u)
  need_string("parse", "url", u)
  return c_parse(u)
end

function M.resolve(base, ref)
  need_string("resolve", "base", base)
  need_string("resolve", "ref", ref)
  return c_resolve(base, ref)
end

function M.normalize(u, opts)
  need_string("normalize", "url", u)
  return c_normalize(u, flags_of("normalize", opts))
end

function M.host(u)
  need_string("host", "url", u)
  local t, err = c_parse(u)
  if not t then return nil, err end
  if not t.host or t.host == "" then return nil, "no host in " .. quoted(u) end
  return t.host
end

-- The host and a port that is not the scheme's default: what the engine
-- groups a crawl's jobs by ("example.com", "127.0.0.1:8080").
function M.authority(u)
  need_string("authority", "url", u)
  return c_authority(u)
end

local function site(u)
  if type(u) ~= "string" then return nil end
  local t = c_parse(u)
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

-- Every character of RFC 3986 but "%": an href of only these needs no
-- cleaning. Written as ASCII ranges, which the matcher tests faster than
-- classes: a-z, "&" to ";" (&'()*+,-./0-9:;), "?" to "Z" (?@A-Z), then
-- [ ] ! # $ = _ ~.
local PLAIN = "^[a-z&-;?-Z%[%]!#$=_~]*$"

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

local function extract(html, base_url, flags)
  local hrefs, n, base_href = scan(html)
  local base = nil -- nil: only absolute links resolve
  if type(base_url) == "string" and c_split(base_url) then base = base_url end
  if base_href then -- <base href> is itself relative to the document's URL
    local h = clean_href(base_href)
    local r = h and c_resolve(base, h)
    if r then
      local s, a = c_split(r)
      if s and a and DEFAULT_PORT[lower(s)] then base = r end
    end
  end
  -- Most pages have only plain hrefs: one check of them all costs less
  -- than one check of each.
  local all_plain = find(table.concat(hrefs, "/", 1, n), PLAIN) ~= nil
  local m = 0
  for i = 1, n do
    local h = clean_href(hrefs[i], all_plain)
    if h then
      m = m + 1
      hrefs[m] = h
    end
  end
  -- resolved, normalised and de-duplicated in one call; other schemes
  -- (javascript:, mailto:, ...) and unusable links are dropped
  return c_links(base, hrefs, m, flags)
end

-- Never raises: a page is untrusted input. Returns an empty array (and, only
-- if this module has a bug, the error as a second value) when it cannot.
function M.links(html, base_url, opts)
  local flags = flags_of("links", opts)
  if type(html) ~= "string" then return {} end
  local ok, out = pcall(extract, html, base_url, flags)
  if ok then return out end
  return {}, out
end

return M
