-- demo.lua: what the compose stack's shoal runs, until it is stopped.
--
--   shoal run compose/demo.lua -- http://127.0.0.1:8080/demo/ [INTERVAL]
--
-- It crawls the demo site that shoal serves itself, then checks every page
-- it found again about every INTERVAL seconds (default 10; each page's
-- next check is spread a little, so the load evens out), so the counters,
-- traces, logs and profiles keep coming. Unlike examples/site_metrics.lua, a
-- page that answers 5xx fails its job (retried once): Grafana then has
-- failures to show, as error spans, "job failed" log lines and
-- jobs_total{status="failed"}. A 404 is a page that is gone, not a failure.
--
-- The dashboard under grafana/dashboards/ is `shoal dashboard compose/demo.lua`.

local crawl = require "shoal.crawl"

options = { concurrency = 64, retries = 1, timeout = 10, metric_labels = { "kind" } }

local START = shoal.args[1] or "http://127.0.0.1:8080/demo/"
local INTERVAL = tonumber(shoal.args[2] or "10")
if not INTERVAL or INTERVAL <= 0 then
  error("INTERVAL must be a number of seconds > 0, got '" .. tostring(shoal.args[2]) .. "'")
end
local start_url, why = crawl.normalize(START)
if not start_url then error("the start URL '" .. START .. "' will not do: " .. why) end

local checks = shoal.metrics.counter("demo_page_checks_total",
  "Page checks, by HTTP status", { "code" })
local sizes = shoal.metrics.histogram("demo_page_bytes",
  "Body size of each page check", {}, { 500, 1000, 2000, 5000, 10000 })

function produce(push)
  push({ url = start_url, kind = "discover" }, { key = start_url })
end

function handle(job)
  -- The next check is booked first, and once per job: a retry of this job
  -- must not book a second one (the rechecks would multiply).
  local attempt = shoal.job and shoal.job.attempt or 1
  if attempt == 1 then
    shoal.push({ url = job.url, kind = "recheck" },
      { delay = INTERVAL * (0.75 + 0.5 * math.random()) })
  end

  local res, err = shoal.http.get(job.url)
  if not res then error("GET " .. job.url .. ": " .. tostring(err)) end
  checks:inc({ code = res.status })
  sizes:observe(#res.body)
  if res.status >= 500 then
    error("GET " .. job.url .. ": HTTP " .. res.status)
  end

  if job.kind == "discover" and res.status == 200 then
    for _, link in ipairs(crawl.links(res.body, res.url or job.url)) do
      if crawl.same_host(link, start_url) then
        shoal.push({ url = link, kind = "discover" }, { key = link })
      end
    end
  end
end

-- Labels the engine's jobs_total and job_duration_seconds: the first crawl
-- ("discover") and the steady state ("recheck") apart.
function labels(job, outcome)
  return { kind = job.kind }
end
