---@meta shoal
-- Type annotations of shoal's Lua API for lua-language-server (LuaLS), so
-- VS Code, Neovim and any LSP editor complete and check job scripts. This
-- file is never run: shoal builds the real module in lua/shoal/runtime.lua
-- and engine/lua_*.c. Every function of the `shoal` module has an entry
-- here (spec/integration/test_annotations.sh fails when one is missing).
-- Installed as share/shoal/lua-types/shoal.lua; README.md, "Editors", says
-- how to point an editor at it.

---------------------------------------------------------------- values

---A response of `shoal.http.get` / `shoal.http.request`.
---@class shoal.Response
---@field status integer HTTP status code
---@field body string the body, decompressed
---@field headers table<string, string> response headers, lower-case names; repeated ones joined with ", "
---@field url string the URL answered, after redirects
---@field elapsed number seconds from the request's start to its last byte

---Options of `shoal.http.get`.
---@class shoal.RequestOptions
---@field headers? table<string, string|number> request headers, name = value
---@field body? string request body (encode tables with `shoal.json.encode`)
---@field timeout? number seconds for this request (default: the rest of the attempt's `--timeout`)
---@field follow? boolean follow redirects (default true)
---@field compressed? boolean send Accept-Encoding and decompress the body (default true)
---@field insecure? boolean skip TLS certificate verification (default false)
---@field session? string a named cookie jar the request shares with every other naming it (default: no cookies)
---@field proxy? string proxy URL for this request, e.g. `http://127.0.0.1:3128` (default: `--proxy-list`'s turn, or none)

---The table of `shoal.http.request`: a method and URL plus the options of `shoal.http.get`.
---@class shoal.Request: shoal.RequestOptions
---@field method? "GET"|"HEAD"|"POST"|"PUT"|"DELETE"|"PATCH"|"OPTIONS"|string method, any case (default "GET")
---@field url string absolute http(s) URL

---A job: any JSON-serialisable table; the engine reads `url` (the job's group,
---logs and spans) and `traceparent`/`tracestate` (the trace it continues).
---@class shoal.Job
---@field url? string the URL the job is about
---@field traceparent? string W3C traceparent of a trace this job continues
---@field tracestate? string W3C tracestate that goes with `traceparent`
---@field [string] any

---Options of `shoal.push` (and of `produce`'s `push`).
---@class shoal.PushOptions
---@field key? string|number dedup key: a job whose key was pushed before is dropped and counted
---@field delay? number seconds before the job may start (default 0)
---@field priority? number higher runs first (default 0)
---@field group? string the politeness unit whose limits the job shares (default: the host and port of its `url`)
---@field depth? integer the job's depth for `--max-depth` (default: the pushing job's + 1; 0 from `produce`)

---The job whose coroutine is running (`shoal.job`).
---@class shoal.JobInfo
---@field id number the job's id, as `shoal.push` returned it
---@field attempt integer 1 for the first attempt, 2 for the first retry, ...
---@field depth integer pushes between this job and the one `produce` pushed (0)

---This state's worker (`shoal.worker`, and `init`'s argument).
---@class shoal.Worker
---@field id integer 1..N for the workers, 0 for the producer state

---Latency figures of `shoal.Stats`, in seconds.
---@class shoal.Latency
---@field count integer
---@field mean number
---@field p50 number
---@field p90 number
---@field p99 number
---@field max number

---The run's final figures, given to `done(stats)` (the same as `--summary-json`).
---@class shoal.Stats
---@field script string
---@field workers integer
---@field concurrency integer
---@field elapsed number seconds
---@field ok integer jobs that succeeded
---@field failed integer jobs that failed after all their retries
---@field retried integer retries made
---@field timeouts integer attempts stopped by `--timeout`
---@field started integer attempts started
---@field jobs_per_sec number
---@field pushed integer jobs queued
---@field duplicates integer pushes dropped for a key seen before
---@field queued_left integer jobs still queued at the end
---@field wedged integer workers replaced after a runaway loop
---@field interrupted boolean the run was stopped by Ctrl-C / SIGTERM
---@field stop_reason string
---@field latency shoal.Latency
---@field http { requests: integer, errors: integer, bytes: integer, status: table<string, integer> }
---@field errors { message: string, count: integer }[] the most frequent failure messages
---@field telemetry? table<string, { exported: integer, dropped: integer, failed: integer }>

---The script's `options` table: defaults for the run; a `SHOAL_*` variable
---or a command-line flag wins over each.
---@class shoal.Options
---@field workers? integer worker threads, each with its own Lua state (`--workers`)
---@field concurrency? integer jobs in flight per worker (`--concurrency`)
---@field retries? integer extra attempts for a failed job (`--retries`)
---@field timeout? number seconds one attempt may take, I/O and CPU (`--timeout`)
---@field retry_delay? number seconds before the first retry, doubled each time (`--retry-delay`)
---@field rate? number at most this many job starts per second (`--rate`)
---@field queue_size? integer `produce` waits while this many jobs are queued (`--queue-size`)
---@field duration? number stop starting jobs after this many seconds (`--duration`)
---@field max_jobs? integer start at most this many jobs (`--max-jobs`)
---@field memory? integer Lua memory cap per worker state, MiB (`--memory`)
---@field max_body? integer largest response body in MiB; a larger one fails its request (`--max-body`, default 64)
---@field max_series? integer series per metric before new label sets fold into one (`--max-series`)
---@field metric_labels? string[] extra labels of `jobs_total` and `job_duration_seconds`, valued by `labels(job, outcome)`
---@field per_host? integer jobs of one host (group) in flight at once across workers; 0: no limit (`--per-host`, default 8)
---@field delay? number least seconds between two starts on one host (`--delay`)
---@field delay_jitter? number 0..1: each gap is delay x a random factor in [1-F, 1+F] (`--delay-jitter`)
---@field autothrottle? boolean adapt each host's delay to its latency (`--autothrottle`)
---@field autothrottle_target? number requests in flight per host autothrottle aims at (`--autothrottle-target`, default 1)
---@field robots? "obey"|"ignore" fetch and obey each host's robots.txt (`--robots`, default obey)
---@field user_agent? string User-Agent header; its first word picks the robots.txt group (`--user-agent`)
---@field max_depth? integer drop url jobs more pushes than this away from `produce` (`--max-depth`)
---@field max_pages? integer accept at most this many url jobs in the run (`--max-pages`)
---@field allowed_domains? string|string[] drop url jobs whose host is not one of these or under one (`--allowed-domains`)
---@field include? string|string[] POSIX extended regexes: drop url jobs matching none (`--include`)
---@field exclude? string|string[] POSIX extended regexes: drop url jobs matching one (`--exclude`)
---@field http_cache? string keep GET answers in this directory and replay them (`--http-cache`)
---@field proxy_list? string a file of proxy URLs, taken in turn per host (`--proxy-list`)

---------------------------------------------------------------- metric handles

---A labels table: by name (`{ code = 200 }`) or by position (`{ "200" }`); a label left out is "".
---@alias shoal.Labels table<string|integer, string|number|boolean>

---A counter from `shoal.metrics.counter`.
---@class shoal.Counter
local Counter = {}

---Adds n (default 1, never negative) to the series of these labels: `c:inc()`, `c:inc(5)`, `c:inc({ code = 200 })`, `c:inc(5, { code = 200 })`.
---@param n? number|shoal.Labels amount to add (default 1), or the labels when no amount is given
---@param labels? shoal.Labels
function Counter:inc(n, labels) end

---A gauge from `shoal.metrics.gauge`.
---@class shoal.Gauge
local Gauge = {}

---Sets the series of these labels to v.
---@param v number
---@param labels? shoal.Labels
function Gauge:set(v, labels) end

---Adds n (default 1) to the series of these labels: `g:inc()`, `g:inc(2, { site = "a" })`, `g:inc({ site = "a" })`.
---@param n? number|shoal.Labels amount to add (default 1), or the labels when no amount is given
---@param labels? shoal.Labels
function Gauge:inc(n, labels) end

---Subtracts n (default 1) from the series of these labels.
---@param n? number|shoal.Labels amount to subtract (default 1), or the labels when no amount is given
---@param labels? shoal.Labels
function Gauge:dec(n, labels) end

---A histogram from `shoal.metrics.histogram`.
---@class shoal.Histogram
local Histogram = {}

---Records one value in the series of these labels.
---@param v number
---@param labels? shoal.Labels
function Histogram:observe(v, labels) end

---------------------------------------------------------------- the module

---The API every state has (each worker's and the producer's). The
---functions that wait (http, sleep, a full queue's push) yield the job's
---coroutine, never the thread.
---@class shoal
---@field args string[] the command line's words after `--`
---@field listen_url string? `http://HOST:PORT` where shoal serves /metrics and the demo site (the port it really took); nil with `--listen off`
---@field worker shoal.Worker this state's worker
---@field job? shoal.JobInfo the running job (nil outside `handle`)
---@field html shoal.html HTML pages: `shoal.html.parse(body [, url])`, then CSS selectors and XPath
shoal = {}

---Seconds since the Unix epoch, with sub-microsecond resolution.
---@return number
function shoal.now() end

---Waits this long without blocking other jobs (from `handle`, `produce` or `done`).
---@param seconds number >= 0
function shoal.sleep(seconds) end

---Queues a job (a JSON-serialisable table) from any state; the producer waits while the queue is full.
---@param job shoal.Job
---@param opts? shoal.PushOptions
---@return number? id the job's id, or nil
---@return "duplicate"|"stopping"|nil err why it was not queued
function shoal.push(job, opts) end

---Writes one item, a JSON-serialisable table, as a line of `--output`; raises if it is not serialisable.
---@param item table
function shoal.emit(item) end

---`shoal.retry(false)`: if the current attempt fails, the failure is final and the job is not retried.
---@param flag boolean
function shoal.retry(flag) end

---------------------------------------------------------------- shoal.http

---HTTP client: each call yields the job until the response is in. Transport
---failures return nil and a message; misuse raises.
shoal.http = {}

---GET a URL.
---@param url string absolute http(s) URL
---@param opts? shoal.RequestOptions
---@return shoal.Response? res
---@return string? err transport failure (DNS, connect, TLS, timeout, ...)
function shoal.http.get(url, opts) end

---Makes a request of any method: `shoal.http.request{ method = "POST", url = u, body = b }`.
---@param req shoal.Request
---@return shoal.Response? res
---@return string? err transport failure (DNS, connect, TLS, timeout, ...)
function shoal.http.request(req) end

---------------------------------------------------------------- shoal.log

---Log records to the run's logger (`--log-file`, `--loki`, `--otlp-logs`),
---with the worker, the job's id and its trace ids added.
shoal.log = {}

---A record at level debug.
---@param msg any the message (not a string: tostring'd)
---@param fields? table<string, any> key = value pairs
function shoal.log.debug(msg, fields) end

---A record at level info.
---@param msg any the message (not a string: tostring'd)
---@param fields? table<string, any> key = value pairs
function shoal.log.info(msg, fields) end

---A record at level warn (also on stderr by default).
---@param msg any the message (not a string: tostring'd)
---@param fields? table<string, any> key = value pairs
function shoal.log.warn(msg, fields) end

---A record at level error (also on stderr by default).
---@param msg any the message (not a string: tostring'd)
---@param fields? table<string, any> key = value pairs
function shoal.log.error(msg, fields) end

---------------------------------------------------------------- shoal.metrics

---Script metrics on the engine's /metrics. Every state declaring the same
---name shares one metric; declare at the script's top level.
shoal.metrics = {}

---Declares a counter (a value that only goes up).
---@param name string metric name, e.g. "pages_total"
---@param help? string one line for # HELP
---@param label_names? string[] its labels, e.g. { "code" }
---@return shoal.Counter
function shoal.metrics.counter(name, help, label_names) end

---Declares a gauge (a value that goes up and down).
---@param name string metric name
---@param help? string one line for # HELP
---@param label_names? string[] its labels
---@return shoal.Gauge
function shoal.metrics.gauge(name, help, label_names) end

---Declares a histogram.
---@param name string metric name, e.g. "page_bytes"
---@param help? string one line for # HELP
---@param label_names? string[] its labels
---@param buckets? number[] upper bounds, ascending (default: the engine's)
---@return shoal.Histogram
function shoal.metrics.histogram(name, help, label_names, buckets) end

---------------------------------------------------------------- shoal.trace

---User spans in the job's trace (exported with `--otlp-endpoint`).
shoal.trace = {}

---Runs fn inside a span of its own, a child of the job's (or of the span around it); returns fn's results, re-raises its error.
---@param name string span name
---@param fn fun(): ...
---@param attrs? table<string, string|number|boolean> span attributes
---@return any ...
function shoal.trace.span(name, fn, attrs) end

---The running job's trace id and innermost span id (hex), or nothing when tracing is off.
---@return string? trace_id
---@return string? span_id
function shoal.trace.current() end

---------------------------------------------------------------- shoal.json

---lua-cjson (the same module as `require "cjson"`).
---@class shoal.json
---@field null lightuserdata JSON null, as decoded and to encode
---@field _NAME string
---@field _VERSION string
shoal.json = {}

---Encodes a Lua value as JSON text; raises on values JSON cannot hold.
---@param value any
---@return string
function shoal.json.encode(value) end

---Decodes JSON text; raises on bad JSON. JSON null becomes `shoal.json.null`.
---@param text string
---@return any
function shoal.json.decode(text) end

---A new, independent instance with its own settings.
---@return shoal.json
function shoal.json.new() end

---How sparse arrays are encoded (as objects, or raise); returns the current settings.
---@param convert? boolean
---@param ratio? integer
---@param safe? integer
---@return boolean convert
---@return integer ratio
---@return integer safe
function shoal.json.encode_sparse_array(convert, ratio, safe) end

---The deepest nesting `encode` accepts (default 1000); returns the setting.
---@param depth? integer
---@return integer
function shoal.json.encode_max_depth(depth) end

---The deepest nesting `decode` accepts (default 1000); returns the setting.
---@param depth? integer
---@return integer
function shoal.json.decode_max_depth(depth) end

---Significant digits of encoded numbers, 1 to 14 (default 14); returns the setting.
---@param precision? integer
---@return integer
function shoal.json.encode_number_precision(precision) end

---Keep the encode buffer between calls (default true); returns the setting.
---@param keep? boolean
---@return boolean
function shoal.json.encode_keep_buffer(keep) end

---Whether NaN and infinities encode (true, false to raise, or "null"); returns the setting.
---@param setting? boolean|"null"
---@return boolean|"null"
function shoal.json.encode_invalid_numbers(setting) end

---Whether NaN, Infinity and hex numbers decode; returns the setting.
---@param setting? boolean
---@return boolean
function shoal.json.decode_invalid_numbers(setting) end

---------------------------------------------------------------- hooks

---Defaults for the run (a `SHOAL_*` variable or a flag wins over each).
---@type shoal.Options
options = {}

---Called once in every state (each worker and the producer) before any job.
---@param worker shoal.Worker
function init(worker) end

---Runs once in the producer state: queue the first jobs with `push` (it waits while the queue is full).
---@param push fun(job: shoal.Job, opts?: shoal.PushOptions): number?, string?
function produce(push) end

---Runs one attempt of a job in its own coroutine; an error fails the attempt (retried up to `retries`).
---@param job shoal.Job
function handle(job) end

---The values of `options.metric_labels` for a finished attempt.
---@param job shoal.Job
---@param outcome "success"|"failed"
---@return table<string, string|number|boolean>
function labels(job, outcome) end

---Runs in the producer after the queue drains, with the run's final figures.
---@param stats shoal.Stats
function done(stats) end

return shoal
