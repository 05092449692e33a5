-- shoal.crawl: URLs and links for crawl scripts.
--
--   local crawl = require "shoal.crawl"
--   crawl.parse(url)        -> {scheme, host, port, path, query, fragment, userinfo} | nil, err
--   crawl.resolve(base, ref) -> absolute URL (RFC 3986 section 5.2)      | nil, err
--   crawl.normalize(url [, opts]) -> canonical http(s) URL, the dedup key | nil, err
--   crawl.links(html, url [, opts]) -> array of normalised http(s) links, never raises
--   crawl.links_ex(html, url [, opts]) -> the same as {url, kind, nofollow [, rel]} records
--   crawl.host(url), crawl.authority(url), crawl.same_host(a, b)
--   crawl.options           -> {sort_query = false, strip_tracking = false}: the
--                              opts normalize and links use when given none
--
-- The URL and link work is C (engine/base/url.c and links.c, reached through
-- the module shoal.url that every state preloads); this file keeps the
-- argument checks and the options. No globals: the binary embeds this file
-- and every state (producer and workers) may require it. Misuse (a URL that
-- is not a string, an unknown option) raises; a URL that does not parse
-- returns nil and a message. links() runs on every fetched page: one C call
-- scans the page (no DOM), resolves, normalises and de-duplicates its
-- links, in time linear in the page.

local M = {}

local url = require "shoal.url"
local c_parse, c_resolve = url.parse, url.resolve
local c_normalize, c_page_links, c_authority = url.normalize, url.page_links, url.authority
local SORT_QUERY, STRIP_TRACKING = url.SORT_QUERY, url.STRIP_TRACKING

local sub = string.sub
local type, tostring, pcall, error, pairs, ipairs = type, tostring, pcall, error, pairs, ipairs

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
        local known = fn == "normalize" and "sort_query, strip_tracking"
          or "sort_query, strip_tracking, kinds"
        error("shoal.crawl." .. fn .. ": unknown option " .. tostring(k) .. " (" .. known .. ")", 3)
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

-- The kinds of link links() returns unless opts.kinds says otherwise: the
-- pages a crawl follows. "link" (<link href>, with its rel) and "img"
-- (<img src>, srcset candidates) are there to ask for.
local KIND_BITS = url.LINK_KINDS
local DEFAULT_KINDS = KIND_BITS.a + KIND_BITS.area + KIND_BITS.iframe + KIND_BITS.frame +
                      KIND_BITS.refresh

local function kinds_of(fn, kinds)
  if kinds == nil then return DEFAULT_KINDS end
  if type(kinds) ~= "table" then
    error("shoal.crawl." .. fn .. ": opts.kinds must be a list of kinds, got " .. type(kinds), 3)
  end
  local mask = 0
  for _, k in ipairs(kinds) do
    local bit = KIND_BITS[k]
    if not bit then
      error("shoal.crawl." .. fn .. ": unknown link kind " .. tostring(k) ..
            " (a, area, iframe, frame, refresh, link, img)", 3)
    end
    if mask % (2 * bit) < bit then mask = mask + bit end
  end
  return mask
end

local function page_links(fn, html, base_url, opts, ex)
  local kinds
  if type(opts) == "table" and opts.kinds ~= nil then
    local rest = {}
    for k, v in pairs(opts) do
      if k ~= "kinds" then rest[k] = v end
    end
    kinds, opts = kinds_of(fn, opts.kinds), rest
  else
    kinds = DEFAULT_KINDS
  end
  local flags = flags_of(fn, opts)
  if type(html) ~= "string" then return {} end
  -- scan, decode, resolve, normalise and de-duplicate in one C call
  -- (engine/base/links.c, url.c); it raises only when memory runs out
  local ok, out = pcall(c_page_links, html, base_url, flags, kinds, ex)
  if ok then return out end
  return {}, out
end

-- Never raises on a page: a page is untrusted input. Returns an empty array
-- (and, only if memory ran out, the error as a second value) when it cannot.
function M.links(html, base_url, opts)
  return page_links("links", html, base_url, opts, false)
end

-- As links(), but each link a record: {url =, kind =, nofollow = [, rel =]}.
function M.links_ex(html, base_url, opts)
  return page_links("links_ex", html, base_url, opts, true)
end

return M
