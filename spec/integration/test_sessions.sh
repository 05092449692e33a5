#!/usr/bin/env bash
# test_sessions.sh - shoal.http's session= (a named cookie jar, curl's
# cookie engine, shared by every request naming it, across jobs and
# workers), and proxies: --proxy-list taken in turn per host, a request's
# proxy= winning; the proxies are nginx servers, whose access logs show the
# requests that went through them.
. "$(dirname "$0")/lib.sh"
RUN_LIMIT=60

# the origin: /login sets a cookie, /me says whose it is
cat >"$T/origin.py" <<'EOF'
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        extra = []
        if self.path.startswith("/login/"):
            extra = [("Set-Cookie", "sid=" + self.path[7:] + "; Path=/")]
            body = b"in"
        else:
            cookie = self.headers.get("Cookie", "")
            body = ("hello " + cookie if cookie else "anonymous").encode()
        self.send_response(200)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
oport=$(free_port)
start_bg origin "$PY" "$T/origin.py" "$oport"
wait_port "$oport" 10 || { fail "the origin starts" "$(show_file origin.err)"; finish; }
O=http://127.0.0.1:$oport

cat >"$T/sessions.lua" <<'EOF'
local O = shoal.args[1]
function produce(push)
  push({ step = "login" })
  push({ step = "none" })
end
local function me(session)
  local res = assert(shoal.http.get(O .. "/me", { session = session }))
  return res.body
end
function handle(job)
  if job.step == "login" then
    assert(shoal.http.get(O .. "/login/alice", { session = "a" }))
    shoal.emit({ step = "same job", body = me("a") })
    -- the next job of the chain carries the session's name
    shoal.push({ step = "chain", session = "a" })
  elseif job.step == "chain" then
    shoal.emit({ step = "next job", body = me(job.session) })
    shoal.emit({ step = "other session", body = me("b") })
  else
    shoal.emit({ step = "no session", body = me(nil) })
  end
end
EOF
run_shoal sessions run "$T/sessions.lua" --workers 2 --listen off --quiet --robots ignore \
    --output "$T/sessions.jsonl" -- "$O"
expect_rc "sessions: exit 0" 0
got() { jq -r --arg s "$1" 'select(.step == $s) | .body' "$T/sessions.jsonl"; }
expect_eq "a session keeps its cookie within a job" "$(got 'same job')" "hello sid=alice"
expect_eq "... and across jobs (and workers) that name it" "$(got 'next job')" "hello sid=alice"
expect_eq "another session has its own jar" "$(got 'other session')" "anonymous"
expect_eq "no session: no cookies" "$(got 'no session')" "anonymous"

# -- proxies: two nginx servers forwarding to the origin
P=$T/proxies
mkdir -p "$P/tmp"
p1=$(free_port)
p2=$(free_port)
cat >"$P/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $P/nginx.pid;
error_log $P/error.log warn;
events { worker_connections 256; }
http {
    client_body_temp_path $P/tmp/body;
    proxy_temp_path $P/tmp/proxy;
    fastcgi_temp_path $P/tmp/fastcgi;
    uwsgi_temp_path $P/tmp/uwsgi;
    scgi_temp_path $P/tmp/scgi;
    log_format p '\$request_uri';
    server { listen 127.0.0.1:$p1; access_log $P/p1.log p;
             location / { proxy_pass http://127.0.0.1:$oport; } }
    server { listen 127.0.0.1:$p2; access_log $P/p2.log p;
             location / { proxy_pass http://127.0.0.1:$oport; } }
}
EOF
start_bg proxies nginx -e "$P/error.log" -p "$P" -c "$P/nginx.conf"
wait_port "$p1" 10 && wait_port "$p2" 10 || { fail "the proxies start" "$(show_file proxies.err)"; finish; }
printf '# two proxies\nhttp://127.0.0.1:%s\n\nhttp://127.0.0.1:%s\n' "$p1" "$p2" >"$T/proxies.txt"

cat >"$T/proxied.lua" <<'EOF'
local O, P1 = shoal.args[1], shoal.args[2]
function produce(push)
  for i = 1, 10 do push({ url = O .. "/me?i=" .. i }) end
  push({ url = O .. "/me?own=1", own = true })
end
function handle(job)
  local res = assert(shoal.http.get(job.url, { proxy = job.own and P1 or nil }))
  assert(res.status == 200, res.status)
end
EOF
run_shoal proxied run "$T/proxied.lua" --workers 1 --listen off --quiet --robots ignore \
    --proxy-list "$T/proxies.txt" -- "$O" "http://127.0.0.1:$p1"
expect_rc "proxied: exit 0" 0
wait_for "[ \$(cat '$P/p1.log' '$P/p2.log' 2>/dev/null | wc -l) -ge 11 ]" 10
n1=$(grep -c 'i=' "$P/p1.log")
n2=$(grep -c 'i=' "$P/p2.log")
expect_eq "the host's 10 requests went through the proxies" "$((n1 + n2))" 10
expect_eq "... taken in turn: 5 each" "$n1 $n2" "5 5"
expect_grep "a request's own proxy= wins" 'own=1' "$P/p1.log"

printf 'proxy.example:3128\n' >"$T/bad.txt"
run_shoal badlist run "$T/proxied.lua" --listen off --quiet --proxy-list "$T/bad.txt" -- "$O" x
expect_rc "a bad --proxy-list: exit 4" 4
expect_grep "... naming the line and the fix" 'bad.txt line 1: .proxy.example:3128. is not a proxy URL \(write it as http://host:port' "$ERR"

finish
