-- crawl.lua: crawl web sites politely, one item per page.
--
--   shoal run examples/crawl.lua --output pages.jsonl -- http://127.0.0.1:8080/demo/ [URL...]
--   shoal run examples/crawl.lua   (no URL: the demo site shoal serves itself)
--   shoal demo                     (the same)
--
-- It starts at each URL given and fetches every page of those sites (same
-- scheme, host and port) that links lead to, each URL once. The engine
-- keeps it polite whatever this script does: robots.txt is fetched and
-- obeyed (--robots), each host gets at most --per-host requests at once
-- (8) and --delay between starts, a 429 or 503 pauses its host for its
-- Retry-After. How far it goes: --max-depth (links away from a start
-- page), --max-pages, --allowed-domains, --include, --exclude.
--
-- The result is one item per page (shoal.emit): url, status, title, depth,
-- bytes and same-site links, written to --output (JSON lines, or CSV for a
-- .csv file). What a page answered is part of the result: a 404 or a 500
-- is an item with its status, and the job succeeds. A transport failure,
-- a 429 or a 503 fails the attempt so that the engine retries it later.
--
-- Copy it and change handle(): extract data from res.body, follow only
-- some links, push other kinds of jobs. Try one page with
--   shoal try examples/crawl.lua http://127.0.0.1:8080/demo/
-- which prints the requests, pushes and item of that one job.

local crawl = require "shoal.crawl"

-- Defaults; the command line wins (--workers, --per-host, ...).
options = { concurrency = 64, retries = 2, timeout = 10 }

-- The start URLs: the arguments, or the demo site at the address shoal
-- really serves (another port than --listen asked for when that one was busy).
local starts = {}
for _, arg in ipairs(shoal.args) do starts[#starts + 1] = arg end
if #starts == 0 and shoal.listen_url then starts[1] = shoal.listen_url .. "/demo/" end

-- Errors here stop the run at once, and `shoal check` reports them.
if #starts == 0 then
  error("give a start URL: shoal run examples/crawl.lua -- URL (with --listen off there is "
    .. "no demo site to default to)")
end
-- The normalised URL is the dedup key: "http://Host:80/a/./b#x" and
-- "http://host/a/b" are one page, fetched once. Links are followed on the
-- start URLs' sites only.
-- A site is "scheme://host[:port]/": normalised URLs (links are) of a site
-- all begin with it, so one plain find tells, with no URL parsed.
local find = string.find
local function site_of(url)
  return url:match("^[%w+.-]+://[^/?#]*") .. "/"
end
local sites = {}
for i, start in ipairs(starts) do
  local url, why = crawl.normalize(start)
  if not url then
    error("the start URL '" .. start .. "' will not do: " .. why
      .. (tonumber(start) and " (the depth is now --max-depth N)" or ""))
  end
  starts[i] = url
  sites[#sites + 1] = site_of(url)
end

-- On the page's own site (here) or on a start URL's.
local function on_a_site(url, here)
  if here and find(url, here, 1, true) == 1 then return true end
  for i = 1, #sites do
    if find(url, sites[i], 1, true) == 1 then return true end
  end
  return false
end

function produce(push)
  for _, url in ipairs(starts) do push({ url = url }, { key = url }) end
end

-- The page's <title> (shoal.html: a CSS selector on libxml2's parse),
-- white space folded, or nil. The title lives in <head>, so only that much
-- is parsed: a page's body is often many times its head.
local function title_of(body, url)
  local head_end = find(body, "</head>", 1, true) or find(body, "</HEAD>", 1, true)
  local doc = shoal.html.parse(head_end and body:sub(1, head_end + 6) or body, url)
  local node = doc:first("title")
  local t = node and node:text():gsub("%s+", " "):match("^ *(.-) *$")
  doc:free()
  if t ~= "" then return t end
end

-- Only HTML has links to follow (header names are lower case).
local function is_html(res)
  local ctype = res.headers["content-type"]
  return ctype == nil or ctype:lower():find("html", 1, true) ~= nil
end

local MAX_REDIRECTS = 10

-- A redirect is followed as a job of its own, so that each hop waits its
-- turn on its host (--per-host, --delay) like any request, and its target
-- goes through the same scope and dedup as a link would: a redirect to a
-- page fetched before is not fetched again. It keeps the depth of the link
-- that led to it. The job carries the chain that led to it, so a loop is
-- caught and reported once.
local function follow(job, res)
  local target = crawl.normalize(crawl.resolve(job.url, res.headers.location) or "")
  if not target then return end
  local chain = job.redirected_from or {}
  chain[#chain + 1] = job.url
  for _, url in ipairs(chain) do
    if url == target then
      shoal.retry(false)
      error("redirect loop: " .. table.concat(chain, " -> ") .. " -> " .. target)
    end
  end
  if #chain >= MAX_REDIRECTS then
    shoal.retry(false)
    error("more than " .. MAX_REDIRECTS .. " redirects from " .. chain[1])
  end
  if on_a_site(target) then
    -- the same page, somewhere else: as deep as the link that led here
    shoal.push({ url = target, redirected_from = chain },
               { key = target, depth = shoal.job.depth })
  end
end

function handle(job)
  local res, err = shoal.http.get(job.url, { follow = false })
  if not res then
    error("GET " .. job.url .. ": " .. tostring(err)) -- retried, then counted failed
  end
  if res.status == 429 or res.status == 503 then
    -- the engine has paused this host for its Retry-After; try again then
    error("GET " .. job.url .. ": " .. res.status .. ", the host asks us to slow down")
  end
  if res.status >= 300 and res.status < 400 and res.headers.location then
    return follow(job, res)
  end

  local depth = shoal.job.depth
  local body = res.body or ""
  local html = res.status >= 200 and res.status < 300 and is_html(res)
  local links
  if html then
    links = 0
    local here = site_of(job.url)
    for _, link in ipairs(crawl.links(body, job.url)) do
      if on_a_site(link, here) then
        links = links + 1
        -- a key seen before (from any worker) is dropped by the queue, and
        -- so is a link past --max-depth or outside the crawl's scope
        shoal.push({ url = link }, { key = link })
      end
    end
  end

  local null = shoal.json.null
  -- a 404 or a 500 is what this page is, not trouble with the crawl: the
  -- line says so at INFO (warnings go to the terminal too)
  shoal.log.info("page", { url = job.url, status = res.status, depth = depth, bytes = #body,
                           links = links or null, seconds = res.elapsed })
  -- every key on every item (null when unknown), so a CSV header has them all
  local title = html and title_of(body, job.url)
  shoal.emit({ url = job.url, status = res.status, title = title ~= "" and title or null,
               depth = depth, bytes = #body, links = links or null })
end

function done(stats)
  -- ok counts pages fetched, whatever their status; failed counts pages
  -- that could not be fetched at all, after retries; disallowed, pages
  -- robots.txt kept us from.
  shoal.log.info("crawl finished", {
    starts = table.concat(starts, " "), ok = stats.ok, failed = stats.failed,
    retried = stats.retried, disallowed = stats.disallowed, seconds = stats.elapsed,
    jobs_per_sec = stats.jobs_per_sec,
  })
end
