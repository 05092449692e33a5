-- site_metrics.lua: watch a web site and chart it in Prometheus.
--
--   shoal run examples/site_metrics.lua --duration 600 -- http://127.0.0.1:8080/demo/ [INTERVAL]
--
-- It crawls the site once (every page of the same host that links lead
-- to), then checks every page it found again about every INTERVAL seconds
-- (default 15; each page's next check is spread a little, so the load
-- evens out) until --duration or Ctrl-C. Point Prometheus at
-- http://127.0.0.1:8080/metrics (the address shoal prints at start). A
-- page that answers 5xx fails its job (retried once), so failures show as
-- error spans, "job failed" log lines and jobs_total{status="failed"}; a
-- 404 is a page that is gone, not a failure. The compose stack (compose/)
-- runs this script against the demo site.
--
-- What it shows, beyond the engine's own metrics:
--   site_page_checks_total{site, code}   every check, by HTTP status
--   site_page_bytes{site}                histogram of body sizes
--   site_last_check_seconds{site}        how long the latest check took
-- and it labels the engine's jobs_total and job_duration_seconds with the
-- page's site and the job's kind ("discover" or "recheck"), through
-- options.metric_labels and labels() below:
--   rate(jobs_total{status="failed", kind="recheck"}[5m])
--   histogram_quantile(0.95, sum by (le, site) (rate(job_duration_seconds_bucket[5m])))

local crawl = require "shoal.crawl"

options = { concurrency = 16, retries = 1, timeout = 10, metric_labels = { "site", "kind" } }

local START = shoal.args[1] or (shoal.listen_url and shoal.listen_url .. "/demo/")
if not START then
  error("give the site's start URL: shoal run examples/site_metrics.lua -- http://HOST/ [INTERVAL]")
end
local INTERVAL = tonumber(shoal.args[2] or "15")
if not INTERVAL or INTERVAL <= 0 then
  error("INTERVAL must be a number of seconds > 0, got '" .. tostring(shoal.args[2]) .. "'")
end
local start_url, why = crawl.normalize(START)
if not start_url then error("the start URL '" .. START .. "' will not do: " .. why) end

-- Declared at the top, so every worker's state shares them (and `shoal
-- check` catches a bad name).
local checks = shoal.metrics.counter("site_page_checks_total",
  "Page checks, by site and HTTP status", { "site", "code" })
local sizes = shoal.metrics.histogram("site_page_bytes",
  "Body size of each page check", { "site" }, { 1e3, 1e4, 1e5, 1e6, 1e7 })
local last = shoal.metrics.gauge("site_last_check_seconds",
  "How long the latest check of a page of the site took", { "site" })

function produce(push)
  push({ url = start_url, kind = "discover" }, { key = start_url })
end

function handle(job)
  -- The next check is booked first, and once per job: a retry of this job
  -- must not book a second one (the rechecks would multiply). No key: the
  -- dedup set is for discovery only.
  if shoal.job.attempt == 1 then
    shoal.push({ url = job.url, kind = "recheck" },
      { delay = INTERVAL * (0.75 + 0.5 * math.random()) })
  end

  local res, err = shoal.http.get(job.url)
  if not res then error("GET " .. job.url .. ": " .. tostring(err)) end
  local site = crawl.host(job.url)
  checks:inc({ site = site, code = res.status })
  sizes:observe(#res.body, { site = site })
  last:set(res.elapsed, { site = site })
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

-- The engine calls this for every finished attempt; outcome is "success"
-- or "failed". Whatever it returns labels that attempt's jobs_total and
-- job_duration_seconds.
function labels(job, outcome)
  return { site = crawl.host(job.url), kind = job.kind }
end
