#!/usr/bin/env bash
# test_http_api.sh - the `shoal` Lua API as a script sees it, against a small
# local HTTP server written here (python3 http.server): shoal.http.request and
# get (methods, headers, bodies, status, lower-case response headers, url
# after redirects, elapsed, binary and large bodies, per-request timeout),
# runtime failures returned as nil, err; misuse raised with the script's
# file:line; shoal.job, shoal.worker, init(), produce() and done(stats).
#
# Each API case is one job; a case that holds logs "case passed", one that
# does not fails with its name in the message, so the summary says which.
. "$(dirname "$0")/lib.sh"
# The HTTP client's own behaviour: no robots.txt fetch before the first
# request of each server (test_polite_* covers robots.txt).
export SHOAL_ROBOTS=ignore
cd "$T" || exit 1

cat >server.py <<'EOF'
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

log = open(sys.argv[2], "a", buffering=1)

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, status, body, ctype="text/plain", extra=()):
        if isinstance(body, str): body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo-Server", "Yes")
        for k, v in extra: self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(body)
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        body = raw.decode("latin-1")
        log.write("%s %s\n" % (self.command, self.path))
        u = urlparse(self.path)
        q = parse_qs(u.query)
        if u.path == "/echo":
            self.reply(200, json.dumps({"method": self.command, "path": self.path, "body": body,
                "body_hex": raw.hex(),
                "headers": {k.lower(): v for k, v in self.headers.items()}}), "application/json")
        elif u.path == "/redirect":
            self.reply(302, "moved", extra=[("Location", "/echo?from=redirect")])
        elif u.path.startswith("/status/"):
            code = int(u.path.split("/")[2])
            self.reply(code, "status %d" % code)
        elif u.path == "/delay":
            time.sleep(int(q["ms"][0]) / 1000.0)
            self.reply(200, "slept")
        elif u.path == "/bytes":
            self.reply(200, bytes(range(256)), "application/octet-stream")
        elif u.path == "/gzip":
            data = json.dumps({"hello": "gzip", "pad": "x" * 2000}).encode()
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                import gzip
                self.reply(200, gzip.compress(data), "application/json", [("Content-Encoding", "gzip")])
            else:
                self.reply(200, data, "application/json")
        elif u.path == "/big":
            self.reply(200, b"a" * (5 * 1024 * 1024), "application/octet-stream")
        else:
            self.reply(404, "no such path")
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

srv = S(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(srv.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
EOF
start_bg server "$PY" server.py server.port requests.log
wait_for "[ -s server.port ]" 10 || { fail "the echo server starts" "$(show_file server.err)"; finish; }
BASE=http://127.0.0.1:$(cat server.port)
CLOSED=$(free_port) # nothing listens there

cat >api.lua <<'EOF'
local B, CLOSED = shoal.args[1], shoal.args[2]
local json = shoal.json
local init_id

function init(worker)
  init_id = worker.id
  local f = assert(io.open("init.ids", "a"))
  f:write(tostring(worker.id), " ", tostring(shoal.worker.id), "\n")
  f:close()
end

local function check(cond, ...)
  if not cond then error(table.concat({...}, " "), 2) end
end

local cases = {}

function cases.post()
  local res = assert(shoal.http.request{method = "POST", url = B .. "/echo",
    headers = {["X-Test"] = "abc", ["Content-Type"] = "application/json"}, body = '{"a":1}'})
  check(res.status == 200, "status", res.status)
  local e = json.decode(res.body)
  check(e.method == "POST", "method", e.method)
  check(e.headers["x-test"] == "abc", "x-test", tostring(e.headers["x-test"]))
  check(e.headers["content-type"] == "application/json", "content-type", tostring(e.headers["content-type"]))
  check(e.body == '{"a":1}', "body", e.body)
end

function cases.binary_post()
  local res = assert(shoal.http.request{method = "POST", url = B .. "/echo", body = "a\0b\255"})
  local e = json.decode(res.body)
  check(e.body_hex == "610062ff", "the server got bytes", e.body_hex)
end

function cases.methods()
  for _, m in ipairs({"PUT", "PATCH", "DELETE", "OPTIONS"}) do
    local res = assert(shoal.http.request{method = m, url = B .. "/echo", body = m == "PUT" and "put-body" or nil})
    local e = json.decode(res.body)
    check(e.method == m, "method sent", m, "server saw", e.method)
    if m == "PUT" then check(e.body == "put-body", "PUT body", e.body) end
  end
  local res = assert(shoal.http.request{method = "post", url = B .. "/echo", body = "x"})
  check(json.decode(res.body).method == "POST", "lower-case method name is accepted")
end

function cases.get_headers()
  local res = assert(shoal.http.get(B .. "/echo", {headers = {["X-A"] = "1"}}))
  local e = json.decode(res.body)
  check(e.method == "GET", "method", e.method)
  check(e.headers["x-a"] == "1", "x-a", tostring(e.headers["x-a"]))
  check((e.headers["user-agent"] or ""):find("^shoal"), "user-agent", tostring(e.headers["user-agent"]))
end

function cases.response_headers()
  local res = assert(shoal.http.get(B .. "/echo"))
  check(res.headers["x-echo-server"] == "Yes", "x-echo-server", tostring(res.headers["x-echo-server"]))
  check(res.headers["content-type"] == "application/json", "content-type", tostring(res.headers["content-type"]))
  check(res.headers["content-length"] == tostring(#res.body), "content-length", tostring(res.headers["content-length"]))
  for k in pairs(res.headers) do check(k == k:lower(), "header name not lower-case:", k) end
end

function cases.status_codes()
  for _, code in ipairs({404, 500, 503}) do
    local res, err = shoal.http.get(B .. "/status/" .. code)
    check(res ~= nil, "an HTTP", code, "is a response, not an error:", tostring(err))
    check(res.status == code, "status", res.status, "want", code)
    check(res.body == "status " .. code, "body", res.body)
  end
end

function cases.redirect()
  local res = assert(shoal.http.get(B .. "/redirect"))
  check(res.status == 200, "status after redirect", res.status)
  check(res.url == B .. "/echo?from=redirect", "res.url", tostring(res.url))
  check(json.decode(res.body).path == "/echo?from=redirect", "followed to", res.body)
  local r2 = assert(shoal.http.request{url = B .. "/redirect", follow = false})
  check(r2.status == 302, "follow = false: status", r2.status)
  check(r2.headers["location"] == "/echo?from=redirect", "location", tostring(r2.headers["location"]))
end

function cases.elapsed()
  local res = assert(shoal.http.get(B .. "/delay?ms=200"))
  check(type(res.elapsed) == "number", "elapsed is a number:", type(res.elapsed))
  check(res.elapsed >= 0.19 and res.elapsed < 2, "elapsed", res.elapsed)
  check(res.url == B .. "/delay?ms=200", "res.url without redirect", tostring(res.url))
end

function cases.binary_body()
  local res = assert(shoal.http.get(B .. "/bytes"))
  check(#res.body == 256, "length", #res.body)
  for i = 0, 255 do check(res.body:byte(i + 1) == i, "byte", i) end
end

function cases.big_body()
  local res = assert(shoal.http.get(B .. "/big"))
  check(#res.body == 5 * 1024 * 1024, "length", #res.body)
end

function cases.gzip()
  local res = assert(shoal.http.get(B .. "/gzip"))
  check(res.status == 200, "status", res.status)
  local ok, t = pcall(json.decode, res.body)
  check(ok and t.hello == "gzip", "res.body is the decoded text, got", #res.body, "bytes")
end

function cases.head()
  local res = assert(shoal.http.request{method = "HEAD", url = B .. "/echo"})
  check(res.status == 200, "status", res.status)
  check(res.body == "", "HEAD body is empty, got", #res.body, "bytes")
end

function cases.refused()
  local ok, res, err = pcall(shoal.http.get, "http://127.0.0.1:" .. CLOSED .. "/")
  check(ok, "connection refused raised instead of returning nil, err:", tostring(res))
  check(res == nil, "res is nil")
  check(type(err) == "string" and #err > 0, "err is a message:", tostring(err))
end

function cases.request_timeout()
  local t0 = shoal.now()
  local res, err = shoal.http.request{url = B .. "/delay?ms=3000", timeout = 0.2}
  local took = shoal.now() - t0
  check(res == nil, "a request over its timeout returns nil")
  check(type(err) == "string" and err:lower():find("time"), "err mentions the timeout:", tostring(err))
  check(took < 1.5, "timeout = 0.2 took", took)
end

function cases.job_and_worker()
  check(type(shoal.job) == "table", "shoal.job is a table")
  check(type(shoal.job.id) == "number", "shoal.job.id is a number:", tostring(shoal.job.id))
  check(shoal.job.attempt == 1, "shoal.job.attempt", tostring(shoal.job.attempt))
  check(type(shoal.worker.id) == "number" and shoal.worker.id >= 1, "shoal.worker.id", tostring(shoal.worker.id))
  check(shoal.worker.id == init_id, "init() saw", tostring(init_id), "handle() sees", tostring(shoal.worker.id))
end

function cases.job_ids_differ()
  local a = shoal.job.id
  shoal.sleep(0.01)
  check(shoal.job.id == a, "shoal.job.id is stable within a job")
end

function cases.json()
  local t = json.decode(json.encode({a = {1, 2, 3}, s = "x\ny"}))
  check(t.a[3] == 3 and t.s == "x\ny", "json round trip")
end

local names = {}
for name in pairs(cases) do names[#names + 1] = name end
table.sort(names)

function produce(push)
  local f = assert(io.open("produce.id", "w"))
  f:write(tostring(shoal.worker.id), "\n")
  f:close()
  local res = assert(shoal.http.get(B .. "/echo?from=produce"))
  assert(res.status == 200)
  for _, name in ipairs(names) do push({case = name}) end
  push({case = "job_ids_differ"})
end

function handle(job)
  local ok, err = pcall(cases[job.case])
  if not ok then error("case " .. job.case .. ": " .. tostring(err), 0) end
  shoal.log.info("case passed", {case = job.case})
end

function done(stats)
  local res = assert(shoal.http.get(B .. "/echo?from=done&ok=" .. stats.ok .. "&failed=" .. stats.failed))
  assert(res.status == 200)
end
EOF
run_shoal api run api.lua --workers 2 --concurrency 8 --retries 0 --timeout 10 --listen off --quiet \
    --summary-json api.json -- "$BASE" "$CLOSED"
expect_rc "API run: exit 0" 0
for c in post binary_post methods get_headers response_headers status_codes redirect elapsed binary_body big_body \
    gzip head refused request_timeout job_and_worker json; do
    if grep 'msg="case passed"' "$ERR" | grep -Eq "case=$c( |$)"; then
        pass "case $c"
    else
        fail "case $c" "$(json api.json ".errors[] | select(.message | contains(\"case $c:\")) | .message" | head -n3)"
    fi
done
expect_eq "summary counts the 2 transport errors (refused, timed out)" "$(json api.json .http.errors)" 2
expect_eq "two jobs ran the same case with different shoal.job.id" \
    "$(grep 'case=job_ids_differ' "$ERR" | grep -o 'job.id=[0-9]*' | sort -u | wc -l)" 2
expect_eq "init() ran in the producer (id 0) and each worker (1, 2), worker.id == shoal.worker.id" \
    "$(sort init.ids | tr '\n' ' ')" "0 0 1 1 2 2 "
expect_eq "shoal.worker.id is 0 in produce()" "$(cat produce.id 2>/dev/null)" 0
expect_grep "produce() can use shoal.http" '^GET /echo\?from=produce$' requests.log
OKN=$(json api.json .ok)
expect_grep "done(stats) runs after the jobs, can use shoal.http and gets ok/failed" "^GET /echo\\?from=done&ok=${OKN:-x}&failed=0$" requests.log

# -- runtime failures in done(): stats carry failures
cat >stats.lua <<'EOF'
function produce(push) for i = 1, 7 do push({n = i}) end end
function handle(job) if job.n > 5 then error("no") end end
function done(stats)
  local f = assert(io.open("done.json", "w"))
  f:write(shoal.json.encode({ok = stats.ok, failed = stats.failed, retried = stats.retried}))
  f:close()
end
EOF
run_shoal stats run stats.lua --workers 1 --retries 1 --retry-delay 0.01 --listen off --quiet
expect_rc "5 ok + 2 failed: exit 1" 1
expect_eq "done(stats) receives ok 5, failed 2, retried 2" "$(json done.json '"\(.ok) \(.failed) \(.retried)"')" "5 2 2"

# -- misuse raises, with the script's file:line
cat >misuse.lua <<'EOF'
function produce(push) for _, k in ipairs({"number_url", "no_url", "bad_method", "bad_headers"}) do push({k = k}) end end
function handle(job)
  if job.k == "number_url" then
    shoal.http.get(42)
  elseif job.k == "no_url" then
    shoal.http.request{method = "GET"}
  elseif job.k == "bad_method" then
    shoal.http.request{method = "BREW", url = "http://127.0.0.1:1/"}
  elseif job.k == "bad_headers" then
    shoal.http.request{url = "http://127.0.0.1:1/", headers = "X-A: 1"}
  end
end
EOF
run_shoal misuse run misuse.lua --workers 1 --retries 0 --listen off --quiet --summary-json misuse.json
expect_rc "misuse fails the jobs: exit 1" 1
expect_eq "all 4 misusing jobs failed" "$(json misuse.json .failed)" 4
for l in 4:"url must be" 6:"url must be" 8:"BREW" 10:"headers"; do
    line=${l%%:*} what=${l#*:}
    if json misuse.json '.errors[].message' | grep -q "misuse\.lua:$line:.*$what"; then
        pass "misuse at line $line raises with misuse.lua:$line ($what)"
    else
        fail "misuse at line $line raises with misuse.lua:$line ($what)" "$(json misuse.json '.errors[].message' | head -n 8)"
    fi
done

# -- I/O does not block the worker: 40 requests of 0.5 s on one worker
cat >parallel.lua <<'EOF'
function produce(push) for i = 1, 40 do push({n = i}) end end
function handle(job)
  local res = assert(shoal.http.get(shoal.args[1] .. "/delay?ms=500"))
  assert(res.status == 200)
end
EOF
run_shoal parallel run parallel.lua --workers 1 --concurrency 40 --listen off --quiet --summary-json parallel.json -- "$BASE"
expect_rc "40 concurrent slow requests on one worker: exit 0" 0
expect_eq "all 40 succeeded" "$(json parallel.json .ok)" 40
expect_lt "they overlapped (< 3 s, not 20 s)" "$WALL" 3

finish
