#!/usr/bin/env bash
# test_http2.sh - shoal speaks HTTP/2 where the server offers it (TLS with
# ALPN), multiplexes a worker's requests over few connections, and keeps
# HTTP/1.1 connections alive across jobs. nginx's log says which protocol
# and which connection served each request.
. "$(dirname "$0")/lib.sh"
# The HTTP client's own behaviour: no robots.txt fetch before the first
# request of each server (test_polite_* covers robots.txt).
export SHOAL_ROBOTS=ignore
cd "$T" || exit 1

mkdir -p site
for i in $(seq 1 200); do echo "<p>page $i</p>" > "site/p$i.html"; done
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -keyout key.pem -out cert.pem >/dev/null 2>&1 || { fail "openssl makes a test certificate"; finish; }

TLS_PORT=$(free_port)
H1_PORT=$(free_port)
# start_nginx puts this inside its server block: close it, add our own two
# (the template's closing brace ends the last one)
start_nginx "$T/site" "
    }
    log_format proto '\$server_protocol \$connection \$request_uri \$status';
    server {
        listen 127.0.0.1:$TLS_PORT ssl http2;
        ssl_certificate $T/cert.pem;
        ssl_certificate_key $T/key.pem;
        root $T/site;
        access_log $T/h2.log proto;
    }
    server {
        listen 127.0.0.1:$H1_PORT;
        root $T/site;
        access_log $T/h1.log proto;
" || { fail "nginx starts"; finish; }

cat > fetch.lua <<'LUA'
local base, n, insecure = shoal.args[1], tonumber(shoal.args[2]), shoal.args[3] == "insecure"
function produce(push) for i = 1, n do push({ u = base .. "/p" .. i .. ".html" }) end end
function handle(job)
  local res, err = shoal.http.get(job.u, { insecure = insecure })
  if not res then error(err) end
  if res.status ~= 200 then error("status " .. res.status) end
end
LUA

run_shoal h2 run fetch.lua --workers 1 --concurrency 20 --listen off --quiet \
    --summary-json h2.json -- "https://127.0.0.1:$TLS_PORT" 200 insecure
expect_rc "https run with insecure=true: exit 0" 0
expect_eq "200 pages over TLS" "$(json h2.json .ok)" 200
wait_for "[ \$(grep -c . '$T/h2.log') -ge 200 ]" 5
expect_eq "every request was HTTP/2" "$(grep -c '^HTTP/2.0 ' h2.log)" 200
conns=$(awk '{print $2}' h2.log | sort -u | wc -l)
expect_le "HTTP/2 requests share connections (multiplexed): $conns connection(s)" "$conns" 4

run_shoal verify run fetch.lua --workers 1 --concurrency 4 --listen off --quiet --retries 0 \
    --summary-json verify.json -- "https://127.0.0.1:$TLS_PORT" 4
expect_rc "a self-signed certificate is refused by default: exit 1" 1
expect_grep "the error names the certificate problem" 'certificate|SSL' "$ERR"

run_shoal h1 run fetch.lua --workers 1 --concurrency 8 --listen off --quiet \
    --summary-json h1.json -- "http://127.0.0.1:$H1_PORT" 200
expect_rc "plain http run: exit 0" 0
expect_eq "200 pages over HTTP/1.1" "$(grep -c '^HTTP/1.1 ' h1.log)" 200
conns=$(awk '{print $2}' h1.log | sort -u | wc -l)
expect_le "keep-alive: 200 requests over at most 8 connections ($conns)" "$conns" 8

# plain http is HTTP/1.1: concurrent requests must not wait for each other
cat > slow.py <<'PY'
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        time.sleep(1.0)
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
ThreadingHTTPServer.request_queue_size = 128  # the default backlog of 5 drops connects
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
SLOW_PORT=$(free_port)
start_bg slow python3 slow.py "$SLOW_PORT"
wait_for "curl -s -o /dev/null http://127.0.0.1:$SLOW_PORT/" 10
run_shoal par run fetch.lua --workers 1 --concurrency 20 --listen off --quiet \
    --summary-json par.json -- "http://127.0.0.1:$SLOW_PORT" 20
expect_eq "20 slow requests ok" "$(json par.json .ok)" 20
expect_lt "20 one-second requests at concurrency 20 overlap (${WALL}s)" "$WALL" 1.9

finish
