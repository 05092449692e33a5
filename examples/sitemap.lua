-- sitemap.lua: fetch the pages a site's sitemaps list, one item each.
--
--   shoal run examples/sitemap.lua --output pages.jsonl -- https://example.com/ [SITEMAP_URL]
--
-- The sitemaps are those robots.txt names (its Sitemap lines), or the one
-- given, or /sitemap.xml. Sitemap indexes are followed and gzip'd files
-- inflated (crawl.sitemap). Each page is fetched once, politely as any
-- crawl (robots.txt, --per-host, --delay), and gives an item: url, status,
-- title, bytes and the sitemap's lastmod.

local crawl = require "shoal.crawl"

options = { concurrency = 32, retries = 2, timeout = 10 }

local SITE = shoal.args[1]
if not SITE then
  error("give the site: shoal run examples/sitemap.lua -- https://example.com/ [SITEMAP_URL]")
end

function produce(push)
  local maps = shoal.args[2] and { shoal.args[2] } or crawl.sitemaps(SITE)
  if #maps == 0 then
    local p = crawl.parse(SITE)
    maps = { p.scheme .. "://" .. crawl.authority(SITE) .. "/sitemap.xml" }
  end
  local n = 0
  for _, map in ipairs(maps) do
    for page in crawl.sitemap(map) do
      local url = crawl.normalize(page.url)
      if url then
        push({ url = url, lastmod = page.lastmod }, { key = url })
        n = n + 1
      end
    end
  end
  shoal.log.info("sitemaps read", { sitemaps = #maps, pages = n })
end

local function title_of(body)
  local t = body:match("<[Tt][Ii][Tt][Ll][Ee][^>]*>(.-)</[Tt][Ii][Tt][Ll][Ee]%s*>")
  return t and t:gsub("%s+", " "):match("^ *(.-) *$")
end

function handle(job)
  local res, err = shoal.http.get(job.url)
  if not res then error("GET " .. job.url .. ": " .. tostring(err)) end
  if res.status == 429 or res.status == 503 then
    error("GET " .. job.url .. ": " .. res.status .. ", the host asks us to slow down")
  end
  local null = shoal.json.null
  shoal.emit({ url = job.url, status = res.status, title = title_of(res.body) or null,
               bytes = #res.body, lastmod = job.lastmod or null })
end
