-- shoal.dashboard: a Grafana dashboard for a script's metrics.
--
-- `shoal dashboard SCRIPT` loads the script as `shoal check` does and calls
-- build() with the metric families the script declared at its top level.
-- The dashboard has a row of the engine's own panels (jobs per second by
-- status, job duration quantiles, queue and workers), then one panel per
-- script metric: the per-second rate of a counter, the p50/p95/p99 of a
-- histogram, the value of a gauge, each split by the metric's labels and
-- described by its help text. Panels query a Prometheus data source chosen
-- from a dashboard variable, so the JSON imports anywhere. encode() writes
-- it for people: indented, keys sorted, so two versions diff line by line.

local M = {}
local scalar = require("cjson").new().encode -- strings escaped, numbers as JSON

local DS = { type = "prometheus", uid = "${datasource}" }

local function legend(labels)
  local parts = {}
  for i, l in ipairs(labels) do parts[i] = "{{" .. l .. "}}" end
  return #parts > 0 and table.concat(parts, " ") or nil
end

local function by(labels, extra)
  local names = {}
  for _, l in ipairs(labels) do names[#names + 1] = l end
  if extra then names[#names + 1] = extra end
  return #names > 0 and ("sum by (" .. table.concat(names, ", ") .. ") ") or "sum "
end

local function target(expr, legend_format, ref)
  return { datasource = DS, expr = expr, legendFormat = legend_format, refId = ref,
           range = true }
end

local function panel(title, description, unit, targets)
  return {
    type = "timeseries", title = title, description = description, datasource = DS,
    targets = targets,
    fieldConfig = { defaults = { unit = unit } },
  }
end

-- The panel for one script metric.
local function metric_panel(f)
  local labels = f.labels or {}
  local lg = legend(labels)
  if f.type == "counter" then
    return panel(f.name .. " per second", f.help, "ops", {
      target(by(labels) .. "(rate(" .. f.name .. "[$__rate_interval]))", lg or f.name, "A"),
    })
  elseif f.type == "histogram" then
    local targets = {}
    for i, q in ipairs({ 0.5, 0.95, 0.99 }) do
      local name = "p" .. math.floor(q * 100 + 0.5)
      targets[i] = target(
        "histogram_quantile(" .. q .. ", " .. by(labels, "le") .. "(rate(" .. f.name ..
          "_bucket[$__rate_interval])))",
        (lg and (lg .. " ") or "") .. name, string.char(64 + i))
    end
    local unit = f.name:match("_seconds$") and "s" or f.name:match("_bytes$") and "bytes" or "short"
    return panel(f.name .. " (p50, p95, p99)", f.help, unit, targets)
  else
    local unit = f.name:match("_seconds$") and "s" or f.name:match("_bytes$") and "bytes" or "short"
    return panel(f.name, f.help, unit, { target(f.name, lg or f.name, "A") })
  end
end

local function engine_panels()
  return {
    panel("Jobs per second", "Finished jobs by final status (jobs_total)", "ops", {
      target("sum by (status) (rate(jobs_total[$__rate_interval]))", "{{status}}", "A"),
    }),
    panel("Job duration", "Attempt wall time (job_duration_seconds)", "s", {
      target("histogram_quantile(0.5, sum by (le) (rate(job_duration_seconds_bucket[$__rate_interval])))", "p50", "A"),
      target("histogram_quantile(0.95, sum by (le) (rate(job_duration_seconds_bucket[$__rate_interval])))", "p95", "B"),
      target("histogram_quantile(0.99, sum by (le) (rate(job_duration_seconds_bucket[$__rate_interval])))", "p99", "C"),
    }),
    panel("Queue and workers", "Jobs ready, delayed and in flight; worker threads", "short", {
      target("sum(jobs_queue_depth)", "ready", "A"),
      target("sum(jobs_delayed)", "delayed", "B"),
      target("sum(jobs_in_flight)", "in flight", "C"),
      target("sum(workers_active)", "workers", "D"),
    }),
    panel("HTTP requests per second", "By status code (http_client_requests_total)", "ops", {
      target("sum by (code) (rate(http_client_requests_total[$__rate_interval]))", "{{code}}", "A"),
    }),
  }
end

-- families: { {name=, help=, type=, labels={...}}, ... }; title: the
-- dashboard's title (the script's name). Returns the dashboard as a table.
function M.build(families, title)
  local panels, id, y = {}, 1, 0
  local function row(name)
    panels[#panels + 1] = { type = "row", title = name, id = id, collapsed = false,
                            gridPos = { h = 1, w = 24, x = 0, y = y } }
    id, y = id + 1, y + 1
  end
  local function place(list)
    for i, p in ipairs(list) do
      p.id = id
      p.gridPos = { h = 8, w = 12, x = ((i - 1) % 2) * 12, y = y + math.floor((i - 1) / 2) * 8 }
      panels[#panels + 1] = p
      id = id + 1
    end
    y = y + math.ceil(#list / 2) * 8
  end
  row("Engine")
  place(engine_panels())
  if #families > 0 then
    row("Script metrics")
    local list = {}
    for i, f in ipairs(families) do list[i] = metric_panel(f) end
    place(list)
  end
  local uid = ("shoal-" .. title:gsub("[^%w]+", "-")):sub(1, 40):lower()
  return {
    title = "shoal: " .. title,
    uid = uid,
    schemaVersion = 39,
    editable = true,
    tags = { "shoal" },
    time = { from = "now-1h", to = "now" },
    refresh = "10s",
    panels = panels,
    templating = { list = { {
      name = "datasource", label = "Prometheus", type = "datasource", query = "prometheus",
    } } },
  }
end

-- A table with keys 1..n and nothing else is an array; an empty table is an
-- object, as lua-cjson writes it.
local function is_array(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function write(out, v, indent)
  if type(v) ~= "table" then
    out[#out + 1] = scalar(v)
    return
  end
  local inner = indent .. "  "
  if is_array(v) then
    out[#out + 1] = "[\n"
    for i = 1, #v do
      out[#out + 1] = inner
      write(out, v[i], inner)
      out[#out + 1] = i < #v and ",\n" or "\n"
    end
    out[#out + 1] = indent .. "]"
    return
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  if #keys == 0 then
    out[#out + 1] = "{}"
    return
  end
  table.sort(keys)
  out[#out + 1] = "{\n"
  for i, k in ipairs(keys) do
    out[#out + 1] = inner .. scalar(k) .. ": "
    local val = v[k]
    if val == nil then val = v[tonumber(k)] end
    write(out, val, inner)
    out[#out + 1] = i < #keys and ",\n" or "\n"
  end
  out[#out + 1] = indent .. "}"
end

-- The dashboard (or any value build() makes) as indented JSON text with
-- sorted keys.
function M.encode(v)
  local out = {}
  write(out, v, "")
  return table.concat(out)
end

return M
