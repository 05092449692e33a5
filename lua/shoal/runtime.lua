-- shoal.runtime: the Lua half of the engine's Lua boundary.
--
-- Loaded once into every state (each worker's and the producer's) before the
-- user's script. The C side (engine/lua_api.c) hands it `core`, a table of
-- primitive functions that yield the calling coroutine for I/O; this file
-- builds the public `shoal` module on top of them and returns the entry points
-- the engine resumes as coroutines: one coroutine per job attempt, reused for
-- the next attempt when the job returns normally.

local core = ...
local done_mark = core.done_mark
local tracing = core.tracing -- spans are recorded (an OTLP endpoint is set)
local span_attr = core.span_attr
local job_url = core.job_url
local cjson = require "cjson"
local json = cjson.new()        -- the engine's own instance: users may tune `shoal.json`
json.encode_sparse_array(true)
json.encode_number_precision(14)
json.decode_max_depth(64)

local coroutine_running, coroutine_yield = coroutine.running, coroutine.yield
local type, tostring, pairs, ipairs, error = type, tostring, pairs, ipairs, error
local setmetatable, select = setmetatable, select
local traceback = debug.traceback

local shoal = {}
shoal.args = core.args
shoal.listen_url = core.listen_url -- "http://HOST:PORT" shoal serves, or nil
shoal.worker = { id = core.worker_id }
shoal.json = cjson
shoal.now = core.now
package.loaded.shoal = shoal
rawset(_G, "shoal", shoal)

-- shoal.job is per coroutine (many jobs interleave in one state): the C
-- side knows which job the running coroutine belongs to.
local core_job = core.job
setmetatable(shoal, {
  __index = function(_, k)
    if k == "job" then
      local id, attempt = core_job()
      if id then return { id = id, attempt = attempt } end
    end
  end,
})

---------------------------------------------------------------- http

local function parse_headers(raw)
  local h = {}
  if not raw then return h end
  for name, value in raw:gmatch("([^:\r\n]+):[ \t]*([^\r\n]*)") do
    name = name:lower()
    local old = h[name]
    h[name] = old and (old .. ", " .. value) or value
  end
  return h
end

-- Headers are parsed on first use: most jobs only read status and body.
local res_mt = {
  __index = function(t, k)
    if k == "headers" then
      local h = parse_headers(t._raw_headers)
      t.headers = h
      return h
    end
  end,
}

local methods = { GET = true, HEAD = true, POST = true, PUT = true, DELETE = true,
                  PATCH = true, OPTIONS = true }

local http = {}

local core_http = core.http

local function response(status, body, url, elapsed, raw)
  if not status then return nil, body end
  return setmetatable({ status = status, body = body, url = url, elapsed = elapsed,
                        _raw_headers = raw }, res_mt)
end

-- Checks the optional fields of a request table and makes the request.
-- `who` names the caller in error messages; errors point at the script.
local function send(who, method, url, o)
  if type(url) ~= "string" or url == "" then
    error(who .. ": url must be a non-empty string, got " .. type(url), 3)
  end
  if o == nil then
    return response(core_http(method, url, nil, nil, 0, true, false, true))
  end
  local hdrs
  if o.headers ~= nil then
    if type(o.headers) ~= "table" then
      error(who .. ": headers must be a table of name = value", 3)
    end
    hdrs = {}
    for k, v in pairs(o.headers) do hdrs[#hdrs + 1] = tostring(k) .. ": " .. tostring(v) end
  end
  local body = o.body
  if body ~= nil and type(body) ~= "string" then
    error(who .. ": body must be a string (use shoal.json.encode for tables)", 3)
  end
  local timeout = o.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
    error(who .. ": timeout must be a positive number of seconds", 3)
  end
  return response(core_http(method, url, hdrs, body, timeout or 0, o.follow ~= false,
                            o.insecure == true, o.compressed ~= false))
end

-- request{method=, url=, headers=, body=, timeout=, follow=, insecure=, compressed=}
-- -> res {status, headers, body, url, elapsed} or nil, err. Misuse raises.
function http.request(req)
  if type(req) ~= "table" then
    error("shoal.http.request: expected a table {method=, url=, ...}, got " .. type(req), 2)
  end
  local method = req.method or "GET"
  if type(method) ~= "string" or not methods[method:upper()] then
    error("shoal.http.request: unsupported method '" .. tostring(method) .. "'", 2)
  end
  local res, err = send("shoal.http.request", method:upper(), req.url, req)
  return res, err -- not a tail call: send's errors point two levels up, at the script
end

-- get(url [, {headers=, timeout=, follow=, insecure=, compressed=}])
function http.get(url, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("shoal.http.get: options must be a table", 2)
  end
  local res, err = send("shoal.http.get", "GET", url, opts)
  return res, err
end

shoal.http = http

---------------------------------------------------------------- queue

-- lua-cjson writes numbers with at most 14 significant digits, which would
-- change 16-digit ids and microsecond timestamps on their way to a worker.
-- Jobs whose numbers all survive that (nearly all) go straight to cjson;
-- otherwise a copy with each such number swapped for a placeholder string
-- is encoded, and the placeholders are replaced by the exact number.
local function exact(n)
  for digits = 15, 17 do
    local text = string.format("%." .. digits .. "g", n)
    if tonumber(text) == n then return text end
  end
end

local function lossy(v, depth)
  if depth > 64 then return false end
  local t = type(v)
  if t == "number" then
    return v == v and v ~= math.huge and v ~= -math.huge and
      tonumber(string.format("%.14g", v)) ~= v
  end
  if t == "table" then
    for k, x in pairs(v) do
      if lossy(x, depth + 1) then return true end
    end
  end
  return false
end

local function swap_numbers(v, tag, found, depth)
  if type(v) == "number" and lossy(v, 0) then
    found[#found + 1] = exact(v)
    return tag .. #found
  end
  if type(v) ~= "table" or depth > 64 then return v end
  local copy = {}
  for k, x in pairs(v) do copy[k] = swap_numbers(x, tag, found, depth + 1) end
  return setmetatable(copy, getmetatable(v))
end

local function encode_job(job)
  local plain = json.encode(job) -- also the check that the job is serialisable
  if not lossy(job, 0) then return plain end
  -- a placeholder the job's own strings cannot contain
  local tag
  repeat
    tag = string.format("\0shoal%08x#", math.random(0, 0x7fffffff))
  until not plain:find("\\u0000" .. tag:sub(2), 1, true)
  local found = {}
  local text = json.encode(swap_numbers(job, tag, found, 0))
  return (text:gsub('"\\u0000' .. tag:sub(2) .. '(%d+)"', function(i)
    return found[tonumber(i)]
  end))
end

-- push(job [, {key=, delay=, priority=}]) -> job id, or nil, "duplicate" |
-- "stopping". The producer's push waits (yields) while the queue is full.
local function push(job, opts)
  if type(job) ~= "table" then
    error("shoal.push: a job must be a table, got " .. type(job), 2)
  end
  local ok, data = pcall(encode_job, job)
  if not ok then
    error("shoal.push: job is not JSON-serialisable: " .. tostring(data), 2)
  end
  local key, delay, priority
  if opts ~= nil then
    if type(opts) ~= "table" then error("shoal.push: options must be a table", 2) end
    key, delay, priority = opts.key, opts.delay, opts.priority
    if key ~= nil then key = tostring(key) end
    if delay ~= nil and (type(delay) ~= "number" or delay < 0) then
      error("shoal.push: delay must be a number of seconds >= 0", 2)
    end
    if priority ~= nil and type(priority) ~= "number" then
      error("shoal.push: priority must be a number", 2)
    end
  end
  local tp, ts = job.traceparent, job.tracestate
  if type(tp) ~= "string" then tp = nil end
  if type(ts) ~= "string" then ts = nil end
  while true do
    local id, err = core.push(data, key, delay or 0, priority or 0, tp, ts)
    if err ~= "full" then return id, err end
  end
end
shoal.push = push

function shoal.sleep(seconds)
  if type(seconds) ~= "number" or seconds < 0 then
    error("shoal.sleep: seconds must be a number >= 0", 2)
  end
  core.sleep(seconds)
end

---------------------------------------------------------------- metrics

-- shoal.metrics.counter|gauge|histogram(name, help, label_names [, buckets])
-- -> a handle with :inc(n, labels), :dec, :set(v, labels), :observe(v, labels).
-- Every state declaring the same name shares one metric family.
local metrics = {}
for kind, what in ipairs({ "counter", "gauge", "histogram" }) do
  metrics[what] = function(name, help, label_names, buckets)
    if type(name) ~= "string" then
      error("shoal.metrics." .. what .. ": name must be a string", 2)
    end
    if help ~= nil and type(help) ~= "string" then
      error("shoal.metrics." .. what .. ": help must be a string", 2)
    end
    if buckets ~= nil and what ~= "histogram" then
      error("shoal.metrics." .. what .. ": only histograms take buckets", 2)
    end
    local h, err = core.metric_declare(kind - 1, name, help, label_names, buckets)
    if not h then error("shoal.metrics." .. what .. ": " .. err, 2) end
    return h
  end
end
shoal.metrics = metrics

---------------------------------------------------------------- trace

-- shoal.trace.span(name, fn [, attrs]) runs fn inside a span of its own
-- (a child of the job's, or of the span around it), ended when fn returns
-- or raises; the span belongs to the job's coroutine, so it nests right
-- across http calls and sleeps. shoal.trace.current() -> trace_id, span_id.
local trace = {}
local pack = function(...) return { n = select("#", ...), ... } end

function trace.span(name, fn, attrs)
  if type(name) ~= "string" then error("shoal.trace.span: name must be a string", 2) end
  if type(fn) ~= "function" then error("shoal.trace.span: fn must be a function", 2) end
  if attrs ~= nil and type(attrs) ~= "table" then
    error("shoal.trace.span: attrs must be a table", 2)
  end
  local open = tracing and core.span_begin(name)
  if open and attrs then
    for k, v in pairs(attrs) do span_attr(tostring(k), v) end
  end
  local r = pack(pcall(fn))
  if open then core.span_end((not r[1]) and tostring(r[2]) or nil) end
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

function trace.current()
  return core.trace_current()
end
shoal.trace = trace

---------------------------------------------------------------- log

-- shoal.log.info("msg", {k = v}): one record to the engine's logger, which
-- adds the worker, the job's id and its trace ids, and formats, escapes and
-- redacts on its own thread. Below --log-level the call returns at once.
local core_log = core.log
local log = {}
for _, name in ipairs({ "debug", "info", "warn", "error" }) do
  log[name] = function(msg, fields)
    if type(msg) ~= "string" then msg = tostring(msg) end
    core_log(name, msg, type(fields) == "table" and fields or nil)
  end
end
shoal.log = log

---------------------------------------------------------------- entry points

-- error() may be given any value: a table prints as its JSON (or its
-- __tostring), so the same failure always reads, and is counted, the same.
local function describe(err)
  if type(err) == "string" then return err end
  if type(err) == "table" then
    local mt = getmetatable(err)
    if not (mt and mt.__tostring) then
      local ok, text = pcall(json.encode, err)
      if ok then return "error object " .. text end
    end
  end
  return tostring(err)
end

local function on_error(err)
  return traceback(describe(err), 2)
end

local function call_hook(name, ...)
  local fn = _G[name]
  if type(fn) ~= "function" then
    error("the script defines no " .. name .. "() function", 0)
  end
  return fn(...)
end

local function run_job(data)
  local job = json.decode(data)
  -- always: a failure's log line and the summary's errors name the url
  if type(job) == "table" and type(job.url) == "string" then
    job_url(job.url)
  end
  if type(rawget(_G, "handle")) ~= "function" then return call_hook("handle", job) end
  -- called by its global name, and not as a tail call, so a profile's
  -- and a traceback's frame reads "handle"
  local r = handle(job)
  return r
end

-- The body of a job coroutine. Each pass runs one attempt and yields
-- (true) or (false, message-with-traceback) with no I/O pending, which the C
-- side reads as "attempt finished"; the next resume brings the next job.
local function job_loop(data)
  while true do
    local ok, err = xpcall(run_job, on_error, data)
    data = coroutine_yield(done_mark, ok, err)
  end
end

-- The values of options.metric_labels for a finished attempt (its JSON and
-- "success" or "failed"), from the script's labels(job, outcome). Missing
-- values are ""; an error is said once per distinct message and the attempt
-- still counts, with empty values.
local label_names = core.metric_labels
local label_values = {}
local function job_labels(data, outcome)
  local fn = rawget(_G, "labels")
  local ok, t = pcall(json.decode, data)
  if ok and type(fn) == "function" then
    ok, t = pcall(fn, t, outcome)
    if ok and t ~= nil and type(t) ~= "table" then
      ok, t = false, "labels() must return a table of label = value, got " .. type(t)
    end
  end
  if not ok then
    local msg = "labels(): " .. tostring(t)
    if core.first_time(msg) then
      shoal.log.warn("labels() failed; the job is counted with empty custom labels",
                     { error = msg })
    end
    t = nil
  end
  for i = 1, #label_names do
    local v
    if type(t) == "table" then v = t[label_names[i]] end
    label_values[i] = v == nil and "" or tostring(v)
  end
  return unpack(label_values, 1, #label_names)
end

local function run_hook(name, ...)
  if type(_G[name]) ~= "function" then return done_mark, true end
  return done_mark, xpcall(call_hook, on_error, name, ...)
end

local function producer()
  return run_hook("produce", push)
end

local function finisher(stats_json)
  return run_hook("done", json.decode(stats_json))
end

local function initializer()
  if type(_G.init) ~= "function" then return true end
  return xpcall(call_hook, on_error, "init", shoal.worker)
end

-- Loads the script file into the global table. Used at start and by --watch:
-- the new chunk runs in a scratch environment first so a script that fails
-- to load leaves the running one untouched.
local function load_script(path)
  local chunk, err
  local builtin = path:match("^embedded:(.*)$")
  if builtin then
    chunk, err = core.load_embedded(builtin)
  else
    chunk, err = loadfile(path)
  end
  if not chunk then return false, err end
  local env = setmetatable({}, { __index = _G })
  setfenv(chunk, env)
  local ok, rerr = xpcall(chunk, on_error)
  if not ok then return false, rerr end
  for k, v in pairs(env) do rawset(_G, k, v) end
  return true
end

-- What `shoal check` and start-up verify beyond loading.
local known_options = {
  workers = "number", concurrency = "number", retries = "number", timeout = "number",
  rate = "number", queue_size = "number", duration = "number", max_jobs = "number",
  memory = "number", retry_delay = "number", metric_labels = "table", max_series = "number",
  max_body = "number",
}

local function check_script()
  if type(_G.handle) ~= "function" then
    return false, "the script defines no handle(job) function: every script needs one"
  end
  local opts = _G.options
  if opts ~= nil then
    if type(opts) ~= "table" then
      return false, "options must be a table, e.g. options = { workers = 2 }"
    end
    for k, v in pairs(opts) do
      local want = known_options[k]
      if not want then
        local names = {}
        for n in pairs(known_options) do names[#names + 1] = n end
        table.sort(names)
        return false, "options." .. tostring(k) .. ": unknown option (known: " ..
          table.concat(names, ", ") .. ")"
      end
      if type(v) ~= want then
        return false, "options." .. k .. ": expected a " .. want .. ", got " .. type(v)
      end
    end
  end
  if opts ~= nil and opts.metric_labels ~= nil then
    local seen = {}
    local ml = opts.metric_labels
    if #ml > 8 then
      return false, "options.metric_labels: at most 8 labels"
    end
    for k, v in pairs(ml) do
      if type(k) ~= "number" or type(v) ~= "string" then
        return false, "options.metric_labels must be a list of label names, e.g. { \"site\" }"
      end
      if not v:match("^[%a_][%w_]*$") or v:sub(1, 2) == "__" or v == "le" then
        return false, "options.metric_labels: '" .. v .. "' is not a usable label name " ..
          "(letters, digits and _, not starting with a digit or __; not le)"
      end
      if v == "status" then
        return false, "options.metric_labels: 'status' is jobs_total's own label; choose another name"
      end
      if seen[v] then return false, "options.metric_labels: '" .. v .. "' is listed twice" end
      seen[v] = true
    end
    if #ml > 0 and type(rawget(_G, "labels")) ~= "function" then
      return false, "options.metric_labels is set but the script defines no labels(job, outcome) " ..
        "function to give their values"
    end
  end
  for _, name in ipairs({ "init", "produce", "done", "labels" }) do
    local v = rawget(_G, name)
    if v ~= nil and type(v) ~= "function" then
      return false, name .. " must be a function, got " .. type(v)
    end
  end
  if rawget(_G, "produce") == nil then
    return true, "the script defines no produce(push), so no job will be queued " ..
      "(define produce to push the first jobs)"
  end
  return true
end

-- Flat list of the script's options for the C side: name, value, name, value...
local function script_options()
  local out = {}
  local opts = rawget(_G, "options")
  if type(opts) == "table" then
    for k, v in pairs(opts) do
      if type(v) == "number" then out[#out + 1] = k; out[#out + 1] = v end
    end
    if type(opts.metric_labels) == "table" then
      out[#out + 1] = "metric_labels"
      out[#out + 1] = table.concat(opts.metric_labels, ",")
    end
  end
  return unpack(out)
end

-- `shoal dashboard`: a Grafana dashboard (JSON text) for the metrics the
-- script declared.
local function dashboard(title)
  local d = require("shoal.dashboard")
  return d.encode(d.build(core.metric_families(), title))
end

return {
  dashboard = dashboard,
  job_loop = job_loop,
  job_labels = job_labels,
  producer = producer,
  finisher = finisher,
  initializer = initializer,
  load_script = load_script,
  check_script = check_script,
  script_options = script_options,
}
