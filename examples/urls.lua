-- urls.lua: fetch a list of URLs, one job each: the classic worker pool.
--
--   shoal run examples/urls.lua -- urls.txt
--
-- urls.txt holds one URL per line; blank lines and lines starting with #
-- are skipped. Where a Go worker pool would fill a channel with jobs and
-- start N goroutines, produce() pushes one job per line and the engine runs
-- `concurrency` of them at a time on each of its workers.
--
-- A job fails unless the server answers 2xx: the engine retries it
-- (`retries` times, with backoff) and then counts it failed, so the summary
-- and jobs_total{status="failed"} show what went wrong.

local crawl = require "shoal.crawl"

-- Defaults; the command line wins (--workers, --concurrency, ...).
options = { concurrency = 32, retries = 2, timeout = 10 }

local FILE = shoal.args[1]

function produce(push)
  if not FILE then
    error("usage: shoal run examples/urls.lua -- FILE  (one URL per line)")
  end
  local f, err = io.open(FILE, "r")
  if not f then error("cannot read the URL list: " .. err) end
  local queued, line_no = 0, 0
  for line in f:lines() do
    line_no = line_no + 1
    local url = line:match("^%s*(.*%S)") -- trimmed; nil for a blank line
    if url and url:sub(1, 1) ~= "#" then
      local scheme = (crawl.parse(url) or {}).scheme
      if scheme == "http" or scheme == "https" then
        push({ url = url, line = line_no })
        queued = queued + 1
      else
        -- Not worth a job and its retries: say where it is and go on.
        shoal.log.warn("not an http(s) URL, skipped", { file = FILE, line = line_no, text = url })
      end
    end
  end
  f:close()
  shoal.log.info("URL list queued", { file = FILE, jobs = queued })
end

function handle(job)
  local res, err = shoal.http.get(job.url)
  if not res then
    error("GET " .. job.url .. ": " .. tostring(err))
  end
  if res.status < 200 or res.status > 299 then
    error("GET " .. job.url .. ": HTTP " .. res.status)
  end
  shoal.log.info("fetched", { url = job.url, status = res.status,
                              bytes = #(res.body or ""), seconds = res.elapsed })
end

function done(stats)
  shoal.log.info("URL list done", {
    ok = stats.ok, failed = stats.failed, retried = stats.retried,
    seconds = stats.elapsed, jobs_per_sec = stats.jobs_per_sec,
  })
end
