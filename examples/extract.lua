-- extract.lua: data out of pages with CSS selectors, one item per match.
--
--   shoal run examples/extract.lua --output quotes.jsonl -- URL [URL...]
--   shoal try examples/extract.lua URL          (one page: what it would give)
--
-- Each start page is parsed with shoal.html (libxml2's HTML parser; CSS
-- selectors as Cheerio or Scrapy's response.css() take them). Every element
-- matching ITEM becomes an item of the fields below, and the page's "next"
-- link (rel=next, or an <a> whose class says next) is followed, as a
-- paginated listing would be. Change ITEM and FIELDS for your pages; try
-- them first with `shoal shell URL` and doc:css("...").

options = { concurrency = 16, retries = 2, timeout = 10 }

-- What one record is, and how to read each of its fields inside it.
local ITEM = "article, .item, .quote, li.product"
local FIELDS = {
  title = function(node) local t = node:first("h1, h2, h3, .title") return t and t:text() end,
  text = function(node) local t = node:first("p, .text") return t and t:text() end,
  link = function(node) local a = node:first("a[href]") return a and a:link("href") end,
  tags = function(node)
    local out = {}
    for _, t in ipairs(node:css(".tag, .tags a")) do out[#out + 1] = t:text() end
    return #out > 0 and out or nil
  end,
}

function produce(push)
  if #shoal.args == 0 then
    error("give the pages: shoal run examples/extract.lua -- URL [URL...]")
  end
  for _, url in ipairs(shoal.args) do push({ url = url }, { key = url }) end
end

-- Surrounding white space off, inner runs folded to one space.
local function clean(v)
  if type(v) == "string" then return (v:gsub("%s+", " "):match("^ *(.-) *$")) end
  if type(v) == "table" then
    for i, x in ipairs(v) do v[i] = clean(x) end
  end
  return v
end

function handle(job)
  local res, err = shoal.http.get(job.url)
  if not res then error("GET " .. job.url .. ": " .. tostring(err)) end
  if res.status ~= 200 then
    shoal.log.warn("page skipped", { url = job.url, status = res.status })
    return
  end
  local doc = shoal.html.parse(res.body, res.url)
  local null = shoal.json.null
  for _, node in ipairs(doc:css(ITEM)) do
    local item = { page = job.url }
    for name, read in pairs(FIELDS) do
      local v = clean(read(node))
      item[name] = (v == nil or v == "") and null or v
    end
    shoal.emit(item)
  end
  -- the next page of a listing, through dedup and the crawl's scope
  local next_link = doc:first("link[rel=next], a[rel=next], a.next, li.next a")
  local url = next_link and next_link:link("href")
  if url then shoal.push({ url = url }, { key = url }) end
  doc:free()
end
