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

---------------------------------------------------------------- sitemaps

-- the shoal module of the running state (runtime.lua sets it up)
local function host()
  return package.loaded.shoal or error("shoal.crawl: sitemaps need a running shoal state", 3)
end

local function warn(msg, fields)
  host().log.warn(msg, fields)
end

-- sitemap(url) -> an iterator over the pages a sitemap lists, as
-- {url=, lastmod= (or nil), sitemap= (the file that listed it)}: sitemap
-- indexes are followed (5 levels deep, each file once), gzip'd files
-- inflated. Fetches with shoal.http.get, so call it from produce() or
-- handle(). A file that cannot be had or read is a warning and is skipped.
function M.sitemap(u)
  need_string("sitemap", "url", u)
  local core = require "shoal.sitemap_core"
  local todo, next_todo, seen = { { u, 0 } }, 1, {}
  local entries, next_entry, current = {}, 1, nil
  return function()
    while true do
      local e = entries[next_entry]
      if e then
        next_entry = next_entry + 1
        return { url = e.loc, lastmod = e.lastmod, sitemap = current }
      end
      local item = todo[next_todo]
      if not item then return nil end
      next_todo = next_todo + 1
      local file, depth = item[1], item[2]
      if not seen[file] then
        seen[file] = true
        local res, err = host().http.get(file)
        local body = res and res.status == 200 and res.body
        if not body then
          warn("sitemap could not be had", { url = file, error = err or ("HTTP " .. res.status) })
        else
          if body:sub(1, 2) == "\31\139" then body, err = core.gunzip(body) end
          local kind, list
          if body then kind, list = core.parse(body) else list = err end
          if not kind then
            warn("sitemap could not be read", { url = file, error = list })
          elseif kind == "sitemapindex" then
            for _, s in ipairs(list) do
              if depth < 5 then todo[#todo + 1] = { s.loc, depth + 1 } end
            end
          else
            entries, next_entry, current = list, 1, file
          end
        end
      end
    end
  end
end

-- sitemaps(url) -> the Sitemap URLs the robots.txt of url's site lists
-- (fetched with shoal.http.get), in order; {} when none.
function M.sitemaps(u)
  need_string("sitemaps", "url", u)
  local p = M.parse(u)
  local auth = p and M.authority(u)
  if not auth then return {} end
  local res = host().http.get(p.scheme .. "://" .. auth .. "/robots.txt")
  local out = {}
  if res and res.status == 200 then
    for line in res.body:gmatch("[^\r\n]+") do
      local s = line:match("^%s*[Ss][Ii][Tt][Ee][Mm][Aa][Pp]%s*:%s*(%S+)")
      if s then out[#out + 1] = s end
    end
  end
  return out
end

return M
