#!/usr/bin/env bash
# test_hostile_server.sh - servers that misbehave: a body without end, a
# header block without end, garbage instead of HTTP, a connection cut in the
# middle of a body, a redirect loop. Each must fail its job with a clear
# message, never the run: other jobs succeed, memory stays bounded, and the
# process exits with the failures counted.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

cat > hostile.py <<'PY'
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(128)  # the default backlog would drop concurrent connects

def serve(c):
    try:
        req = c.recv(65536).decode("latin-1")
        path = req.split(" ")[1] if " " in req else "/"
        if path == "/huge":          # a body far past the 64 MiB cap
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 200000000\r\n\r\n")
            chunk = b"x" * 65536
            for _ in range(4000):
                c.sendall(chunk)
        elif path == "/stream":      # 512 MB with no length: the cap must cut it
            c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            chunk = b"x" * 65536
            for _ in range(8192):
                c.sendall(chunk)
        elif path == "/headers":     # header lines forever
            c.sendall(b"HTTP/1.1 200 OK\r\n")
            for i in range(2000000):
                c.sendall(b"X-Filler-%d: %s\r\n" % (i, b"y" * 100))
        elif path.startswith("/kib/"):  # exactly N KiB, for --max-body
            n = int(path[5:]) * 1024
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
            c.sendall(b"k" * n)
        elif path.startswith("/kibchunked/"):  # the same with no length up front
            n = int(path[12:]) * 1024
            c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            c.sendall(b"k" * n)
        elif path == "/garbage":
            c.sendall(b"\x00\x01\x02 this is not HTTP at all\r\n\r\n" * 10)
        elif path == "/cut":         # promises 1000 bytes, sends 10, hangs up
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        elif path == "/loop":
            c.sendall(b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n"
                      b"Connection: close\r\n\r\n")
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    except Exception:
        pass
    finally:
        c.close()

while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
PORT=$(free_port)
start_bg hostile python3 hostile.py "$PORT"
wait_port "$PORT"

cat > jobs.lua <<'LUA'
local base = shoal.args[1]
function produce(push)
  for _, p in ipairs({ "huge", "stream", "headers", "garbage", "cut", "loop" }) do
    push({ p = p })
  end
  for i = 1, 20 do push({ p = "fine" .. i }) end
end
function handle(job)
  local res, err = shoal.http.get(base .. "/" .. job.p)
  if not res then error(job.p .. ": " .. err) end
  if job.p:sub(1, 4) ~= "fine" then error(job.p .. ": got status " .. res.status) end
end
LUA

/usr/bin/time -f "%M" -o rss.txt "$SHOAL" run jobs.lua --workers 1 --concurrency 8 --retries 0 \
    --timeout 20 --listen off --quiet --summary-json s.json -- "http://127.0.0.1:$PORT" \
    > out.txt 2> err.txt
RC=$?
ERR=err.txt
expect_eq "the run finishes with failures counted: exit 1" "$RC" 1
expect_eq "the 20 good jobs succeed" "$(json s.json .ok)" 20
expect_eq "the 6 hostile jobs fail" "$(json s.json .failed)" 6
errs=$(json s.json '.errors[].message')
for what in "huge:.*larger than 64 MiB" "stream:.*larger than 64 MiB" "headers:" "garbage:" "cut:" "loop:.*[Rr]edirect"; do
    if printf '%s\n' "$errs" | grep -qE "$what"; then
        pass "a clear error for ${what%%:*}"
    else
        fail "a clear error for ${what%%:*}" "$errs"
    fi
done
rss=$(tail -n 1 rss.txt)
# uncapped, the 512 MB stream alone would pass the bound; capped, a plain
# build peaks near 150 MiB and an ASan build near 250 MiB
expect_lt "memory stays bounded while a server streams 512 MB (peak ${rss} KiB)" "$rss" 400000
expect_no_grep "no crash" 'Segmentation|Aborted|panic' err.txt

# -- --max-body moves the cap: bodies up to it are whole, a larger one fails
# its request with a message naming the flag (the script's error() then
# fails the attempt, retried like any failure: the engine cannot tell)
cat > sizes.lua <<'LUA'
function produce(push)
  for _, p in ipairs({ "kib/1024", "kib/1025", "kibchunked/1024", "kibchunked/3000", "kib/10" }) do
    push({ p = p, url = shoal.args[1] .. "/" .. p })
  end
end
function handle(job)
  local res, err = shoal.http.get(job.url)
  if not res then error(err) end
  assert(#res.body == tonumber(job.p:match("%d+$")) * 1024, "short body")
end
LUA
run_shoal maxbody run sizes.lua --workers 1 --retries 0 --max-body 1 --listen off --quiet \
    --summary-json maxbody.json -- "http://127.0.0.1:$PORT"
expect_rc "--max-body 1 with two bigger bodies: exit 1" 1
expect_eq "bodies of up to 1 MiB arrive whole (3 ok)" "$(json maxbody.json .ok)" 3
expect_eq "the 2 bigger bodies fail their jobs" "$(json maxbody.json .failed)" 2
expect_eq "the error names the cap and the flag, once per failed job" \
    "$(json maxbody.json '[.errors[] | select(.message | test("larger than 1 MiB \\(--max-body")) | .count] | add')" 2
expect_grep "the failure line names the failing URL" 'msg="job failed".*url=.*/kib/1025' "$ERR"
printf 'options = { max_body = 2 }\n' | cat - sizes.lua > sizes2.lua
run_shoal maxbody_opt run sizes2.lua --workers 1 --retries 0 --listen off --quiet \
    --summary-json maxbody2.json -- "http://127.0.0.1:$PORT"
expect_eq "options.max_body = 2 takes the 1025 KiB body (4 ok)" "$(json maxbody2.json .ok)" 4
run_shoal maxbody_bad run sizes.lua --max-body 0 --listen off --quiet
expect_rc "--max-body 0: a usage error (2)" 2
finish
