#!/usr/bin/env bash
# test_polite_answers.sh - answers nginx cannot give, from a small Python
# server: a Retry-After given as an HTTP date (RFC 9110) pauses the host
# until that date; a robots.txt behind a redirect is followed and obeyed;
# a robots.txt answering 503 keeps the host off limits (RFC 9309), and
# the job fails saying why rather than fetching anything.
. "$(dirname "$0")/lib.sh"
RUN_LIMIT=60

# The server logs "TIME PATH STATUS" per request. /a answers 429 the first
# time, with a Retry-After date 3 s ahead; then 200.
cat >"$T/server.py" <<'EOF'
import email.utils, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

mode = sys.argv[2]
log = open(sys.argv[3], "a", buffering=1)
lock = threading.Lock()
seen = set()

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        log.write("%.3f %s %d\n" % (time.time(), self.path, status))

    def do_GET(self):
        html = [("Content-Type", "text/html")]
        if self.path == "/robots.txt":
            if mode == "down":
                return self.answer(503)
            return self.answer(301, headers=[("Location", "/real/robots.txt")])
        if self.path == "/real/robots.txt":
            return self.answer(200, b"User-agent: *\nDisallow: /no\n")
        if self.path == "/start":
            return self.answer(200, b'<a href="/a">a</a> <a href="/no">no</a>', html)
        if self.path == "/a":
            with lock:
                first = "/a" not in seen
                seen.add("/a")
            if first:
                date = email.utils.formatdate(time.time() + 3, usegmt=True)
                return self.answer(429, headers=[("Retry-After", date)])
            return self.answer(200, b"<title>A</title>", html)
        return self.answer(404)

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF

port=$(free_port)
start_bg server "$PY" "$T/server.py" "$port" up "$T/requests.log"
wait_port "$port" 10 || { fail "the server starts" "$(show_file server.err)"; finish; }
run_shoal crawl run "$SHOAL_ROOT/examples/crawl.lua" --workers 1 --listen off --quiet \
    --retry-delay 0.1 --output "$T/items.jsonl" --summary-json "$T/crawl.json" \
    -- "http://127.0.0.1:$port/start"
expect_rc "the crawl: exit 0" 0
expect_grep "robots.txt's redirect was followed" '^[0-9.]+ /real/robots.txt 200$' "$T/requests.log"
expect_no_grep "what it disallows was not requested" ' /no ' "$T/requests.log"
expect_eq "the disallowed link is counted" "$(json "$T/crawl.json" .disallowed)" 1
t429=$(awk '$2 == "/a" && $3 == 429 { print $1 }' "$T/requests.log")
t200=$(awk '$2 == "/a" && $3 == 200 { print $1 }' "$T/requests.log")
expect_eq "/a answered 429 once, then 200" "$(grep -c ' /a ' "$T/requests.log")" 2
# the date has whole seconds: 3 s ahead is at least 2 s ahead
expect_ge "the host waited for the Retry-After date (>= 2 s)" "$(fcalc "${t200:-0} - ${t429:-0}")" 2
expect_eq "two items: /start and /a" "$(wc -l <"$T/items.jsonl")" 2
expect_grep "the pause is logged" 'msg="host paused".*status=429' "$T/crawl.err"

# -- robots.txt answering 503: nothing else is fetched, and the job fails
# saying so (after its retries, which wait for the host)
: >"$T/requests.log"
kill "$BG_PID" 2>/dev/null
port=$(free_port)
start_bg server_down "$PY" "$T/server.py" "$port" down "$T/requests.log"
wait_port "$port" 10 || { fail "the server starts" "$(show_file server_down.err)"; finish; }
run_shoal down run "$SHOAL_ROOT/examples/crawl.lua" --workers 1 --listen off --quiet \
    --retries 0 --summary-json "$T/down.json" -- "http://127.0.0.1:$port/start"
expect_rc "robots.txt 503: exit 1 (the start page fails)" 1
expect_eq "robots.txt 503: only robots.txt was requested" \
    "$(awk '{ print $2 }' "$T/requests.log" | sort -u)" "/robots.txt"
expect_grep "robots.txt 503: the error says why" 'robots.txt of http://127.0.0.1:[0-9]+ could not be had \(HTTP 503\)' \
    "$T/down.err"

finish
