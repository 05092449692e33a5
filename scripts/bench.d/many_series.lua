-- links.lua's job (fetch a page, count its links) plus one script metric
-- with many series: job n counts into bench_items_total{id = n % SERIES}, so
-- after the first SERIES jobs a scrape of /metrics carries that many series.
-- Run it with --max-series above SERIES, or the extra ids fold into one.
-- usage: many_series.lua BASE JOBS [SERIES] [PAGES]
local base = shoal.args[1]
local total = tonumber(shoal.args[2])
local series = tonumber(shoal.args[3] or "10000")
local pages = tonumber(shoal.args[4] or "2000")

local items = shoal.metrics.counter("bench_items_total",
  "Jobs handled, one series per job number modulo the series count", { "id" })

function produce(push)
  for n = 0, total - 1 do push({ u = base .. "/p" .. (n % pages) .. ".html", n = n }) end
end

-- label tables built once, so the measured cost is the metric update and
-- not string formatting
local labels = {}
for i = 0, series - 1 do labels[i] = { id = tostring(i) } end

local links = 0
local plain = { compressed = false }
function handle(job)
  local res, err = shoal.http.get(job.u, plain)
  if not res then error(err) end
  for _ in res.body:gmatch('href="([^"]+)"') do links = links + 1 end
  items:inc(1, labels[job.n % series])
end
