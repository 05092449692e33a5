-- shoal.runtime: the Lua half of the engine's Lua boundary.
--
-- Loaded once into every state (each worker's and the producer's) before the
-- user's script. The C side (engine/lua/lua_api.c) hands it `core`, a table of
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
local traceback, getinfo = debug.traceback, debug.getinfo
local RUNTIME = "@lua/shoal/runtime.lua"

---------------------------------------------------------------- mistakes

-- A mistake in how a script calls shoal (a url that is not a string, a
-- metric's labels before its amount) is raised at the script's own line,
-- whichever wrapper found it, and makes the attempt's failure final:
-- retrying would fail the same way. shoal.retry(false) and
-- error{retry = false, ...} say the same from the script. Kept per
-- coroutine: many jobs interleave in one state.
local final_error = setmetatable({}, { __mode = "k" }) -- co -> the message raised
local no_retry = setmetatable({}, { __mode = "k" })    -- co -> true
local final_verdict = setmetatable({}, { __mode = "k" })

-- "file:line: " of the innermost frame of the script's own code.
local function script_where()
  for level = 2, 40 do
    local info = getinfo(level, "Sl")
    if not info then break end
    -- the first frame outside shoal's own modules (runtime, html, crawl)
    if info.currentline > 0 and info.source ~= RUNTIME and info.what ~= "C" and
      not info.source:find("lua/shoal/[%w_]+%.lua$") then
      return info.short_src .. ":" .. info.currentline .. ": "
    end
  end
  return ""
end

local function usage_error(msg)
  msg = script_where() .. msg
  final_error[coroutine_running() or false] = msg
  error(msg, 0)
end

local shoal = {}
shoal.args = core.args
shoal.listen_url = core.listen_url -- "http://HOST:PORT" shoal serves, or nil
shoal.worker = { id = core.worker_id }
shoal.json = cjson
shoal.now = core.now
shoal.html = require "shoal.html" -- parse(body [, url]): CSS selectors and XPath
-- shoal's modules raise the script's mistakes through it (html.lua)
package.loaded["shoal.usage"] = usage_error
package.loaded.shoal = shoal
rawset(_G, "shoal", shoal)

-- shoal.job is per coroutine (many jobs interleave in one state): the C
-- side knows which job the running coroutine belongs to.
local core_job = core.job
setmetatable(shoal, {
  __index = function(_, k)
    if k == "job" then
      local id, attempt, depth = core_job()
      if id then return { id = id, attempt = attempt, depth = depth } end
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

-- One request. While the host's robots.txt is being fetched the call
-- waits and answers (nil, "again"): ask again. A URL robots.txt
-- disallows ends the job (counted as disallowed, not retried).
local function request(method, url, hdrs, body, timeout, follow, insecure, compressed, session,
                       proxy)
  local status, b, u, elapsed, raw = core_http(method, url, hdrs, body, timeout, follow,
                                               insecure, compressed, session, proxy)
  while status == nil and b == "again" do
    status, b, u, elapsed, raw = core_http(method, url, hdrs, body, timeout, follow, insecure,
                                           compressed, session, proxy)
  end
  if status == nil and u == "disallowed" then
    final_error[coroutine_running() or false] = b
    error(b, 0)
  end
  return response(status, b, u, elapsed, raw)
end

-- Checks the optional fields of a request table and makes the request.
-- `who` names the caller in error messages; errors point at the script.
local function send(who, method, url, o)
  if type(url) ~= "string" then
    usage_error(who .. ": url must be a string, got " .. type(url))
  elseif url == "" then
    usage_error(who .. ": url is an empty string")
  end -- white space in it: core.http's check, in C (a pattern here cost 3k instructions a job)
  if o == nil then
    return request(method, url, nil, nil, 0, true, false, true)
  end
  local hdrs
  if o.headers ~= nil then
    if type(o.headers) ~= "table" then
      usage_error(who .. ": headers must be a table of name = value")
    end
    hdrs = {}
    for k, v in pairs(o.headers) do hdrs[#hdrs + 1] = tostring(k) .. ": " .. tostring(v) end
  end
  local body = o.body
  if body ~= nil and type(body) ~= "string" then
    usage_error(who .. ": body must be a string (use shoal.json.encode for tables)")
  end
  local timeout = o.timeout
  if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
    usage_error(who .. ": timeout must be a positive number of seconds")
  end
  local session, proxy = o.session, o.proxy
  if session ~= nil and (type(session) ~= "string" or session == "") then
    usage_error(who .. ": session must be a name (a non-empty string)")
  end
  if proxy ~= nil and (type(proxy) ~= "string" or not proxy:find("://", 1, true)) then
    usage_error(who .. ": proxy must be a URL such as http://127.0.0.1:3128")
  end
  return request(method, url, hdrs, body, timeout or 0, o.follow ~= false, o.insecure == true,
                 o.compressed ~= false, session, proxy)
end

-- request{method=, url=, headers=, body=, timeout=, follow=, insecure=, compressed=}
-- -> res {status, headers, body, url, elapsed} or nil, err. Misuse raises.
function http.request(req)
  if type(req) ~= "table" then
    usage_error("shoal.http.request: expected a table {method=, url=, ...}, got " .. type(req))
  end
  local method = req.method or "GET"
  if type(method) ~= "string" or not methods[method:upper()] then
    usage_error("shoal.http.request: unsupported method '" .. tostring(method) .. "'")
  end
  local res, err = send("shoal.http.request", method:upper(), req.url, req)
  return res, err -- not a tail call: send's errors point two levels up, at the script
end

-- get(url [, {headers=, timeout=, follow=, insecure=, compressed=}])
function http.get(url, opts)
  if opts ~= nil and type(opts) ~= "table" then
    usage_error("shoal.http.get: options must be a table")
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

-- push(job [, {key=, delay=, priority=, group=, depth=}]) -> job id, or nil,
-- "duplicate" | "out of scope (REASON)" | "stopping". The producer's push
-- waits (yields) while the queue is full. A job's group defaults to the
-- host of its url field.
local function push(job, opts)
  if type(job) ~= "table" then
    usage_error("shoal.push: a job must be a table, got " .. type(job))
  end
  local ok, data = pcall(encode_job, job)
  if not ok then
    usage_error("shoal.push: job is not JSON-serialisable: " .. tostring(data))
  end
  local key, delay, priority, group, depth
  if opts ~= nil then
    if type(opts) ~= "table" then usage_error("shoal.push: options must be a table") end
    key, delay, priority, group, depth = opts.key, opts.delay, opts.priority, opts.group,
      opts.depth
    if depth ~= nil and (type(depth) ~= "number" or depth < 0 or depth % 1 ~= 0) then
      usage_error("shoal.push: depth must be a whole number >= 0")
    end
    if key ~= nil then key = tostring(key) end
    if group ~= nil and (type(group) ~= "string" or #group > 255) then
      usage_error("shoal.push: group must be a string of at most 255 bytes")
    end
    if delay ~= nil and (type(delay) ~= "number" or delay < 0) then
      usage_error("shoal.push: delay must be a number of seconds >= 0")
    end
    if priority ~= nil and type(priority) ~= "number" then
      usage_error("shoal.push: priority must be a number")
    end
  end
  local tp, ts, url = job.traceparent, job.tracestate, job.url
  if type(tp) ~= "string" then tp = nil end
  if type(ts) ~= "string" then ts = nil end
  if type(url) ~= "string" then url = nil end
  while true do
    local id, err = core.push(data, key, delay or 0, priority or 0, tp, ts, url, group, depth)
    if err ~= "full" then return id, err end
  end
end
shoal.push = push

function shoal.sleep(seconds)
  if type(seconds) ~= "number" or seconds < 0 then
    usage_error("shoal.sleep: seconds must be a number >= 0")
  end
  core.sleep(seconds)
end

-- shoal.retry(false): this attempt's failure is final, whatever raised
-- it; shoal.retry(true) takes that back.
function shoal.retry(flag)
  if type(flag) ~= "boolean" then
    usage_error("shoal.retry: expects true or false, got " .. type(flag))
  end
  if not core_job() then
    usage_error("shoal.retry: only a job's attempt can be retried: call it from handle()")
  end
  no_retry[coroutine_running()] = (not flag) or nil
end

---------------------------------------------------------------- metrics

-- shoal.metrics.counter|gauge|histogram(name, help, label_names [, buckets])
-- -> a handle with :inc(n, labels), :dec, :set(v, labels), :observe(v, labels).
-- Every state declaring the same name shares one metric family.
local metrics = {}
for kind, what in ipairs({ "counter", "gauge", "histogram" }) do
  metrics[what] = function(name, help, label_names, buckets)
    if type(name) ~= "string" then
      usage_error("shoal.metrics." .. what .. ": name must be a string")
    end
    if help ~= nil and type(help) ~= "string" then
      usage_error("shoal.metrics." .. what .. ": help must be a string")
    end
    if buckets ~= nil and what ~= "histogram" then
      usage_error("shoal.metrics." .. what .. ": only histograms take buckets")
    end
    local h, err = core.metric_declare(kind - 1, name, help, label_names, buckets)
    if not h then usage_error("shoal.metrics." .. what .. ": " .. err) end
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
  if type(name) ~= "string" then usage_error("shoal.trace.span: name must be a string") end
  if type(fn) ~= "function" then usage_error("shoal.trace.span: fn must be a function") end
  if attrs ~= nil and type(attrs) ~= "table" then
    usage_error("shoal.trace.span: attrs must be a table")
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

---------------------------------------------------------------- items

-- shoal.emit(item): one result for --output. The item is checked and
-- encoded here, in the emitting state (JSON with exact numbers, as jobs
-- are; for a CSV file, one text cell per column), so the engine's writer
-- thread only writes bytes. -> true (and "not saved (no --output)" when
-- there is no output), or false, "dropped" when the output did not keep
-- up. Misuse raises at the script's line.
local core_emit = core.emit
local items_format = core.items_format() -- "jsonl", "csv", "none"; nil in `shoal check`
local huge = math.huge

-- Every shoal.emit misuse is raised here, at the script's line, and is
-- final for the attempt: the same item would fail the same way again.
local function emit_error(msg)
  usage_error("shoal.emit: " .. msg)
end

-- Why v is not JSON (a path such as item.links[2] and what it holds), or
-- nil when the walk finds nothing (then cjson's own message is used).
local function not_json(v, path, seen, depth)
  local t = type(v)
  if t == "number" then
    if v ~= v or v == huge or v == -huge then
      return path .. " is " .. tostring(v) .. " (JSON has no NaN or infinity)"
    end
  elseif t == "table" then
    if seen[v] then return path .. " contains itself (a cycle)" end
    if depth > 1000 then return path .. " is nested over 1000 deep" end
    seen[v] = true
    for k, x in pairs(v) do
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" then return path .. " has a " .. kt .. " key" end
      local sub = kt == "string" and (path .. "." .. k) or (path .. "[" .. tostring(k) .. "]")
      local why = not_json(x, sub, seen, depth + 1)
      if why then return why end
    end
    seen[v] = nil
  elseif t == "function" or t == "thread" or (t == "userdata" and v ~= json.null) then
    return path .. " is a " .. t
  end
end

-- A CSV cell's text: numbers as integers or exactly, nested tables as
-- their JSON, nil and shoal.json.null empty.
local function cell(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if v == math.floor(v) and v > -2^53 and v < 2^53 then return string.format("%.0f", v) end
    local text = string.format("%.14g", v)
    return tonumber(text) == v and text or exact(v)
  end
  if t == "table" then return encode_job(v) end
  if t == "boolean" then return tostring(v) end
  return ""
end

local columns, column_set -- the run's CSV columns, learnt at this state's first item
local function csv_cells(item)
  local byname = {}
  for k, v in pairs(item) do byname[tostring(k)] = v end
  if not columns then
    local keys = {}
    for k in pairs(byname) do keys[#keys + 1] = k end
    if #keys == 0 then return nil, "a CSV item needs at least one key" end
    table.sort(keys)
    local why
    columns, why = core.items_columns(keys) -- the run's first item's, whichever state it was in
    if not columns then return nil, why end
    column_set = {}
    for _, c in ipairs(columns) do column_set[c] = true end
  end
  local extra
  for k in pairs(byname) do
    if not column_set[k] then extra = k; break end
  end
  local cells = {}
  for i = 1, #columns do cells[i] = cell(byname[columns[i]]) end
  return cells, extra
end

function shoal.emit(item)
  if type(item) ~= "table" then
    emit_error("an item must be a table of field = value, got " .. type(item))
  end
  -- CSV needs only the check: its cells are made apart
  local ok, data = pcall(items_format == "csv" and json.encode or encode_job, item)
  if not ok then
    emit_error("the item is not JSON-serialisable: " ..
      (not_json(item, "item", {}, 0) or tostring(data)))
  end
  local taken, why
  if items_format == "csv" then
    local cells, extra = csv_cells(item)
    if not cells then emit_error(extra) end
    taken, why = core_emit(nil, cells, extra)
  else
    -- lua-cjson writes "/" as "\/"; a reader wants the URL as it is. In
    -- cjson's output every "/" is escaped, so a backslash before one is
    -- always that escape (a real backslash there is written "\\\/").
    if data:find("\\/", 1, true) then data = data:gsub("\\/", "/") end
    taken, why = core_emit(data)
  end
  if taken == nil then emit_error(why) end
  -- without --output the call did what the run asked (counted, warned
  -- once, in the summary): true, so assert(shoal.emit(x)) still runs
  if why == "not saved (no --output)" then return true, why end
  return taken, why
end

---------------------------------------------------------------- entry points

-- error() may be given any value: a table prints as its JSON (or its
-- __tostring), so the same failure always reads, and is counted, the same.
local function describe(err)
  if type(err) == "string" then return err end
  if type(err) == "table" then
    local mt = getmetatable(err)
    if type(err.message) == "string" and not (mt and mt.__tostring) then
      return err.message
    end
    if not (mt and mt.__tostring) then
      local ok, text = pcall(json.encode, err)
      if ok then return "error object " .. text end
    end
  end
  return tostring(err)
end

-- The traceback a user reads keeps the script's frames only: the
-- runtime's own frames and the builtins that called them say nothing
-- about the script. With --log-level debug the whole one is logged too.
local function script_frames(full)
  local out, kept = {}, 0
  for line in full:gmatch("[^\n]+") do
    if line == "stack traceback:" then
      out[#out + 1] = line
    elseif line:sub(1, 1) == "\t" then
      if not (line:find("lua/shoal/runtime.lua", 1, true) or line:find("^\t%[C%]: in function '[x]?pcall'") or line == "\t[C]: in function 'error'"
              or line:find("^\t%[builtin#") or line:find("^\t%[C%]: %?")) then
        out[#out + 1] = line
        kept = kept + 1
      end
    else
      out[#out + 1] = line
    end
  end
  if kept == 0 then
    -- no frame of the script: the message alone
    for i = #out, 1, -1 do
      if out[i] == "stack traceback:" then table.remove(out, i) end
    end
  end
  return table.concat(out, "\n")
end

local function on_error(err)
  local co = coroutine_running()
  if co and (no_retry[co] or (type(err) == "table" and err.retry == false) or
             (type(err) == "string" and final_error[co] == err)) then
    final_verdict[co] = true
  end
  local full = traceback(describe(err), 2)
  if core.log_debug then
    core_log("debug", "script error with its whole traceback", { error = full })
  end
  return script_frames(full)
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
  local co = coroutine_running()
  while true do
    local ok, err = xpcall(run_job, on_error, data)
    -- read, and cleared only when set: storing nil under an absent key
    -- would make the key (three table inserts per job)
    local final = final_verdict[co] or false
    if final then final_verdict[co] = nil end
    if final_error[co] ~= nil then final_error[co] = nil end
    if no_retry[co] ~= nil then no_retry[co] = nil end
    data = coroutine_yield(done_mark, ok, err, final)
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
  per_host = "number", delay = "number", delay_jitter = "number", autothrottle = "boolean",
  autothrottle_target = "number", robots = "string", user_agent = "string",
  max_depth = "number", max_pages = "number", allowed_domains = "list",
  include = "list", exclude = "list", http_cache = "string", proxy_list = "string",
}

-- A list option may be one string or a list of strings.
local function list_ok(v)
  if type(v) == "string" then return true end
  if type(v) ~= "table" or #v == 0 then return false end
  for k, x in pairs(v) do
    if type(k) ~= "number" or type(x) ~= "string" then return false end
  end
  return true
end

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
      if want == "list" then
        if not list_ok(v) then
          return false, "options." .. k .. ": expected a string or a list of strings"
        end
      elseif type(v) ~= want then
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
      local want = known_options[k]
      if type(v) == "number" or type(v) == "string" then
        out[#out + 1] = k; out[#out + 1] = v
      elseif type(v) == "boolean" then
        out[#out + 1] = k; out[#out + 1] = v and 1 or 0
      elseif want == "list" and list_ok(v) then
        -- domains joined by commas; patterns as one regex of alternatives
        out[#out + 1] = k
        out[#out + 1] = k == "allowed_domains" and table.concat(v, ",")
          or "(" .. table.concat(v, ")|(") .. ")"
      end
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
  usage_error = usage_error,
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
