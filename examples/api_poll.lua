-- api_poll.lua: walk a paginated JSON API, one job per page.
--
--   shoal run examples/api_poll.lua --output items.jsonl -- http://127.0.0.1:8080/api/items [FIELD]
--
-- Each job GETs one page and decodes it with shoal.json. A page is either an
-- array of items or an object holding them under "items", "data" or
-- "results". Every item is a result: shoal.emit writes it, as the API gave
-- it, to --output (JSON lines; CSV for a .csv file, columns from the first
-- item's keys), and FIELD (default "id") names it in the debug log.
--
-- The page says where the next one is, in the body ("next": "/api/items?page=2",
-- possibly relative) or in a Link header (<...>; rel="next"). That URL
-- becomes a new job, keyed by its normalised form, so a page is fetched
-- once even when two pages point at it and a loop of "next" links ends.
--
-- 429 and 5xx answers, transport failures and undecodable bodies fail the
-- job, which the engine retries; other statuses (404, 403, ...) are logged
-- as results.

local crawl = require "shoal.crawl"

-- Defaults; the command line wins. APIs like few requests at a time.
options = { concurrency = 4, retries = 3, timeout = 10 }

local ENDPOINT = shoal.args[1]
local FIELD = shoal.args[2] or "id"
local null = shoal.json.null -- what JSON null decodes to

function produce(push)
  if not ENDPOINT then
    error("usage: shoal run examples/api_poll.lua -- URL [FIELD]")
  end
  local key, err = crawl.normalize(ENDPOINT)
  if not key then error("the endpoint '" .. ENDPOINT .. "' will not do: " .. err) end
  push({ url = ENDPOINT, page = 1 }, { key = key })
end

-- The target of rel="next" in a Link header (RFC 8288), or nil.
local function link_next(header)
  if type(header) ~= "string" then return nil end
  for target, params in header:gmatch("<([^>]*)>([^<]*)") do
    local rel = params:match('[Rr][Ee][Ll]%s*=%s*"([^"]*)"')
      or params:match("[Rr][Ee][Ll]%s*=%s*([^%s;,]+)")
    if rel and (" " .. rel:lower() .. " "):find(" next ", 1, true) then return target end
  end
  return nil
end

function handle(job)
  local res, err = shoal.http.request{
    method = "GET", url = job.url, headers = { Accept = "application/json" },
  }
  if not res then
    error("GET " .. job.url .. ": " .. tostring(err))
  end
  if res.status == 429 or res.status >= 500 then
    error("GET " .. job.url .. ": HTTP " .. res.status .. ", will retry")
  end
  if res.status ~= 200 then
    shoal.log.warn("page not available", { url = job.url, status = res.status })
    return
  end

  local decoded, doc = pcall(shoal.json.decode, res.body or "")
  if not decoded or type(doc) ~= "table" then
    error("GET " .. job.url .. ": the body is not a JSON object or array: " .. tostring(doc))
  end

  local items = doc
  if doc[1] == nil then
    items = doc.items or doc.data or doc.results or {}
  end
  local count = 0
  if type(items) == "table" then
    for _, item in ipairs(items) do
      count = count + 1
      if type(item) == "table" then
        shoal.emit(item)
      else
        shoal.emit({ value = item }) -- a list of plain values
      end
      local value = type(item) == "table" and item[FIELD] or nil
      if value ~= nil and value ~= null then
        shoal.log.debug("item", { page = job.page, [FIELD] = tostring(value) })
      end
    end
  end

  local next_ref = doc.next
  if type(next_ref) ~= "string" or next_ref == "" then
    next_ref = link_next(res.headers["link"])
  end
  -- Relative to where the page really is (res.url is after redirects).
  local next_url = next_ref and crawl.resolve(res.url or job.url, next_ref)
  next_url = next_url and crawl.normalize(next_url)
  if next_url then
    shoal.push({ url = next_url, page = job.page + 1 }, { key = next_url })
  elseif next_ref then
    shoal.log.warn("unusable next link", { url = job.url, next = next_ref })
  end
  shoal.log.info("page", { url = job.url, page = job.page, items = count,
                           next = next_url or "none", seconds = res.elapsed })
end

function done(stats)
  shoal.log.info("API walk finished", {
    pages = stats.ok, failed = stats.failed, retried = stats.retried,
    seconds = stats.elapsed, jobs_per_sec = stats.jobs_per_sec,
  })
end
