-- crawl.lua: crawl one web site, following its links.
--
--   shoal run examples/crawl.lua --output pages.csv -- http://127.0.0.1:8080/demo/ [MAX_DEPTH]
--   shoal run examples/crawl.lua   (no URL: the demo site shoal serves itself)
--   shoal demo                     (the same)
--
-- It starts at one URL and fetches every page of the same site (same scheme,
-- host and port) that links lead to, each URL once. MAX_DEPTH, if given, is
-- how many links away from the start page the crawl may go (0: the start
-- page only). With many jobs in flight a page keeps the depth at which it
-- was first found, which may be more than its shortest path.
--
-- The result is one item per page (shoal.emit): url, status, title, depth,
-- bytes and same-site links, written to --output (JSON lines, or CSV for a
-- .csv file). What each page answered is part of the result: a 404 or a
-- 500 is an item (and a log line) with its status, and the job succeeds. Only a transport failure (refused,
-- reset, timed out) fails the job, so that the engine retries it.
--
-- Copy it and change handle(): extract data from res.body, follow only
-- some links, push other kinds of jobs.

local crawl = require "shoal.crawl"

-- Defaults; the command line wins (--workers, --concurrency, ...).
options = { concurrency = 64, retries = 2, timeout = 10 }

-- With no URL, the demo site at the address shoal really serves (another
-- port than --listen asked for when that one was busy).
local START = shoal.args[1] or (shoal.listen_url and shoal.listen_url .. "/demo/")
local MAX_DEPTH = shoal.args[2] and tonumber(shoal.args[2]) -- nil: no limit

-- Errors here stop the run at once, and `shoal check` reports them.
if not START then
  error("give a start URL: shoal run examples/crawl.lua -- URL (with --listen off there is "
    .. "no demo site to default to)")
end
if shoal.args[2] and not MAX_DEPTH then
  error("MAX_DEPTH must be a number, got '" .. shoal.args[2] .. "'")
end
-- The normalised URL is the dedup key: "http://Host:80/a/./b#x" and
-- "http://host/a/b" are one page, fetched once.
local start_url, why = crawl.normalize(START)
if not start_url then
  error("the start URL '" .. START .. "' will not do: " .. why)
end

function produce(push)
  push({ url = start_url, depth = 0 }, { key = start_url })
end

-- The page's <title>, white space folded, or nil.
local function title_of(body)
  local t = body:match("<[Tt][Ii][Tt][Ll][Ee][^>]*>(.-)</[Tt][Ii][Tt][Ll][Ee]%s*>")
  t = t and t:gsub("%s+", " "):match("^ *(.-) *$")
  if t ~= "" then return t end
end

-- Only HTML has links to follow (header names are lower case).
local function is_html(res)
  local ctype = res.headers["content-type"]
  return ctype == nil or ctype:lower():find("html", 1, true) ~= nil
end

function handle(job)
  local res, err = shoal.http.get(job.url)
  if not res then
    error("GET " .. job.url .. ": " .. tostring(err)) -- retried, then counted failed
  end
  local body = res.body or ""
  local fields = { url = job.url, status = res.status, depth = job.depth,
                   bytes = #body, seconds = res.elapsed }

  local follow = res.status >= 200 and res.status < 300 and is_html(res)
    and (MAX_DEPTH == nil or job.depth < MAX_DEPTH)
  if follow then
    -- Relative links resolve against where the page really is: res.url is
    -- the URL after redirects.
    local links = crawl.links(body, res.url or job.url)
    local same_site = 0
    for _, link in ipairs(links) do
      if crawl.same_host(link, start_url) then
        same_site = same_site + 1
        -- A key seen before (from any worker) is dropped by the queue.
        shoal.push({ url = link, depth = job.depth + 1 }, { key = link })
      end
    end
    fields.links = same_site
  end

  -- a 404 or a 500 is what this page is, not trouble with the crawl: the
  -- line says so at INFO (warnings go to the terminal too)
  shoal.log.info("page", fields)
  -- every key on every item (null when unknown), so a CSV header has them all
  local null = shoal.json.null
  shoal.emit({ url = job.url, status = res.status, title = title_of(body) or null,
               depth = job.depth, bytes = #body, links = fields.links or null })
end

function done(stats)
  -- ok counts pages fetched, whatever their status; failed counts pages
  -- that could not be fetched at all, after retries.
  shoal.log.info("crawl finished", {
    start = start_url, ok = stats.ok, failed = stats.failed, retried = stats.retried,
    seconds = stats.elapsed, jobs_per_sec = stats.jobs_per_sec,
  })
end
