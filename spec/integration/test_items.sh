#!/usr/bin/env bash
# test_items.sh - shoal.emit(item) and --output: results from many workers
# land whole and exactly once (JSON lines and CSV, read back by Python's
# json and csv modules), from every hook; `-` puts items alone on stdout;
# a bad item fails its job at the script's line; an unwritable output
# stops the run before it starts (exit 4); a full disk is one clear error,
# counted, and never leaves a torn record; Ctrl-C (once or twice) leaves
# every written item whole and the summary's count equal to the lines.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# valid_jsonl FILE: prints the number of lines, or "bad: ..." for the first
# line that is not a JSON object (or a file not ending in a newline).
cat >valid_jsonl.py <<'EOF'
import json, sys
data = open(sys.argv[1], "rb").read()
if data and not data.endswith(b"\n"):
    print("bad: the file does not end with a newline (torn last record)")
    sys.exit()
n = 0
for i, line in enumerate(data.split(b"\n")[:-1]):
    try:
        if not isinstance(json.loads(line), dict):
            raise ValueError("not an object")
    except Exception as e:
        print("bad: line %d: %s: %r" % (i + 1, e, line[:200]))
        sys.exit()
    n += 1
print(n)
EOF
valid_jsonl() { "$PY" valid_jsonl.py "$1"; }

# -- many workers, many items: every line whole, every item exactly once
cat >many.lua <<'EOF'
local text = 'line\nbreak, "quoted", tab\t, caf\195\169 \226\130\172'
function init(w) shoal.emit({from = "init", worker = w.id}) end
function produce(push)
  shoal.emit({from = "produce"})
  for i = 1, tonumber(shoal.args[1]) do push({n = i}) end
end
function handle(job)
  for k = 1, tonumber(shoal.args[2]) do
    assert(shoal.emit({from = "handle", n = job.n, k = k, text = text, id = 1234567890123456,
                       ratio = 0.1, ok = true, tags = {"a", "b"}, meta = {depth = k % 3}}))
  end
end
function done(stats) shoal.emit({from = "done", ok = stats.ok}) end
EOF
cat >check_many.py <<'EOF'
import json, sys
jobs, per = int(sys.argv[2]), int(sys.argv[3])
text = 'line\nbreak, "quoted", tab\t, caf\u00e9 \u20ac'
seen, other = set(), {}
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    if o["from"] != "handle":
        other[o["from"]] = other.get(o["from"], 0) + 1
        continue
    key = (o["n"], o["k"])
    if key in seen:
        print("duplicate", key); sys.exit()
    seen.add(key)
    want = {"from": "handle", "n": o["n"], "k": o["k"], "text": text, "id": 1234567890123456,
            "ratio": 0.1, "ok": True, "tags": ["a", "b"], "meta": {"depth": o["k"] % 3}}
    if o != want:
        print("wrong item", o); sys.exit()
missing = jobs * per - len(seen)
print("handle=%d missing=%d init=%d produce=%d done=%d" % (len(seen), missing,
      other.get("init", 0), other.get("produce", 0), other.get("done", 0)))
EOF
run_shoal many run many.lua --workers 4 --concurrency 16 --listen off --quiet \
    --output out/many.jsonl --summary-json many.json -- 80 1000
expect_rc "80,000 items from 4 workers: exit 0" 0
expect_eq "every line of out/many.jsonl is a whole JSON object (80,000 + init/produce/done)" \
    "$(valid_jsonl out/many.jsonl)" 80007
expect_eq "each handle() item exactly once, exact numbers, strings intact; init x5, produce, done" \
    "$("$PY" check_many.py out/many.jsonl 80 1000)" "handle=80000 missing=0 init=5 produce=1 done=1"
expect_eq "summary JSON: items written == lines" "$(json many.json .items.written)" 80007
expect_eq "summary JSON: nothing dropped, failed or discarded" \
    "$(json many.json '"\(.items.dropped) \(.items.failed) \(.items.discarded) \(.items.output)"')" \
    "0 0 0 out/many.jsonl"
expect_grep "text summary: the items line" '^  items     80007 written to out/many.jsonl$' "$OUT"

# a second run truncates; --output-append keeps the first run's items
run_shoal trunc run many.lua --workers 2 --listen off --quiet --output out/many.jsonl -- 2 3
expect_eq "a new run truncates --output" "$(valid_jsonl out/many.jsonl)" 11
run_shoal append run many.lua --workers 2 --listen off --quiet --output out/many.jsonl \
    --output-append -- 2 3
expect_eq "--output-append adds to it" "$(valid_jsonl out/many.jsonl)" 22

# -- items_total in /metrics (done() waits for the test to have looked)
cat >metric.lua <<'EOF'
function produce(push) for i = 1, 50 do push({n = i}) end end
function handle(job) shoal.emit({n = job.n}) end
function done()
  local f
  repeat shoal.sleep(0.05); f = io.open(shoal.args[1]) until f
  f:close()
end
EOF
start_bg metric "$SHOAL" run metric.lua --workers 2 --listen 127.0.0.1:0 --quiet \
    --output metric.jsonl -- "$T/metric.go"
wait_for "server_port metric.err | grep -q ." 10
M="http://127.0.0.1:$(server_port metric.err)/metrics"
if wait_for "curl -sf '$M' | grep -q '^items_total{status=\"written\"} 50\$'" 20; then
    pass 'items_total{status="written"} reaches 50 in /metrics'
else
    fail 'items_total{status="written"} reaches 50 in /metrics' "$(curl -sf "$M" | grep items_total)"
fi
expect_eq "items_total is a counter with HELP" \
    "$(curl -sf "$M" | grep -c -e '^# TYPE items_total counter' -e '^# HELP items_total ')" 2
touch metric.go
wait_exit "$BG_PID" 20
expect_eq "metric run: exit 0" "$BG_RC" 0

# -- CSV: a header from the first item's keys, RFC 4180 quoting, read back by Python
cat >csv.lua <<'EOF'
function produce(push) for i = 1, tonumber(shoal.args[1]) do push({n = i}) end end
function handle(job)
  shoal.emit({n = job.n, name = 'comma, "quote"\nnewline\r\ncrlf', price = 0.1 * job.n,
              big = 1234567890123456, flag = job.n % 2 == 0, nested = {a = {1, 2}},
              empty = shoal.json.null})
end
EOF
cat >check_csv.py <<'EOF'
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1], newline="", encoding="utf-8")))
header, body = rows[0], rows[1:]
ns = set()
for r in body:
    d = dict(zip(header, r))
    n = int(d["n"])
    ns.add(n)
    want = {"big": "1234567890123456", "empty": "", "flag": "true" if n % 2 == 0 else "false",
            "n": str(n), "name": 'comma, "quote"\nnewline\r\ncrlf',
            "nested": d["nested"], "price": d["price"]}
    if d != want or json.loads(d["nested"]) != {"a": [1, 2]} or float(d["price"]) != 0.1 * n \
            or len(r) != len(header):
        print("wrong row", r); sys.exit()
print(",".join(header), len(body), len(ns))
EOF
run_shoal csv run csv.lua --workers 3 --listen off --quiet --output out.csv --summary-json csv.json -- 500
expect_rc "CSV run: exit 0" 0
expect_eq "CSV: header = the first item's keys, sorted; 500 rows, each job once, fields intact" \
    "$("$PY" check_csv.py out.csv)" "big,empty,flag,n,name,nested,price 500 500"
expect_eq "CSV: quotes are doubled inside a quoted field" \
    "$(grep -c '"comma, ""quote""' out.csv)" 500
expect_eq "CSV summary: 500 written" "$(json csv.json .items.written)" 500

# a later item with a key outside the header: that key is dropped, counted, warned once
cat >csvextra.lua <<'EOF'
function produce(push) shoal.emit({a = 1}); for i = 1, 20 do push({n = i}) end end
function handle(job) shoal.emit({a = job.n, late = "x"}) end
EOF
run_shoal csvextra run csvextra.lua --workers 2 --listen off --quiet --output extra.csv \
    --summary-json extra.json
expect_eq "CSV extra key: the rows keep the header's columns" "$(head -1 extra.csv; wc -l <extra.csv)" "a
22"
expect_eq "CSV extra key: counted (20 items)" "$(json extra.json .items.csv_extra_keys)" 20
expect_eq "CSV extra key: warned once, naming the key" \
    "$(grep -c 'not a column of the CSV header.*field=late' "$ERR")" 1

# --output-append to a CSV file: its header keeps the columns, whatever keys
# the new run's first item has (here fewer, in another order)
cat >csvfirst.lua <<'EOF'
function produce(push) for i = 1, 3 do push({n = i}) end end
function handle(job) shoal.emit({a = "a" .. job.n, b = "b" .. job.n, c = "c" .. job.n}) end
EOF
cat >csvlater.lua <<'EOF'
function produce(push) for i = 1, 3 do push({n = i}) end end
function handle(job) shoal.emit({c = "c" .. job.n, b = "b" .. job.n}) end
EOF
run_shoal csvfirst run csvfirst.lua --workers 1 --listen off --quiet --output app.csv
run_shoal csvlater run csvlater.lua --workers 1 --listen off --quiet --output app.csv \
    --output-append
expect_rc "CSV --output-append with other keys: exit 0" 0
expect_eq "CSV --output-append: one header, the first run's; rows under their columns" \
    "$("$PY" -c 'import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
print(",".join(rows[0].keys()) if rows else "none", len(rows),
      sum(1 for r in rows if r["a"] == "" and r["b"].startswith("b") and r["c"].startswith("c")))' \
        app.csv)" "a,b,c 6 3"
printf 'not "a, header\n' >bad.csv
run_shoal csvbad run csvlater.lua --workers 1 --listen off --quiet --output bad.csv --output-append
expect_grep "CSV --output-append to a file with no readable header: warned" \
    "first line is no header shoal can read" "$ERR"

# -- "-": items alone on stdout, the summary on stderr
cat >stdout.lua <<'EOF'
function produce(push) for i = 1, 300 do push({n = i}) end end
function handle(job) print("a stray print"); shoal.emit({n = job.n}) end
EOF
run_shoal dash run stdout.lua --workers 2 --listen off --quiet --output - --summary-json dash.json
expect_rc "--output -: exit 0" 0
expect_eq "--output -: stdout holds exactly the 300 items" "$(valid_jsonl "$OUT")" 300
expect_grep "--output -: the summary went to stderr" '^  items     300 written to stdout$' "$ERR"
expect_grep "--output -: a script's print() went to stderr, not among the items" 'a stray print' "$ERR"

# -- URLs read as they are: no "\/" in a line, and a backslash before a
# slash survives the round trip
cat >slash.lua <<'EOF'
function produce(push) push({}) end
function handle(job) shoal.emit({url = "http://h/a/b?c=d/e", odd = "x\\/y\\\\/z"}) end
EOF
run_shoal slash run slash.lua --workers 1 --listen off --quiet --output slash.jsonl
expect_grep "a URL is written with plain slashes" '"url":"http://h/a/b\?c=d/e"' slash.jsonl
expect_eq "backslashes before slashes read back the same" \
    "$("$PY" -c 'import json; print(json.loads(open("slash.jsonl").read())["odd"])')" 'x\/y\\/z'

# -- a slow reader on stdout: 7 MB, twice what the rings hold, at about
# 2 MB/s; the workers wait for it, and nothing is dropped
cat >slow_reader.py <<'EOF'
import sys, time
out = open(sys.argv[1], "wb")
while True:
    b = sys.stdin.buffer.read1(65536)
    if not b:
        break
    out.write(b)
    time.sleep(0.03)  # about 2 MB/s
EOF
timeout -k 3 "$RUN_LIMIT" "$SHOAL" run many.lua --workers 3 --listen off --quiet --output - \
    --summary-json slow.json -- 30 1500 2>slow.err </dev/null | "$PY" slow_reader.py slow.jsonl
rc=${PIPESTATUS[0]}
expect_eq "slow reader: exit 0" "$rc" 0
expect_eq "slow reader: every item, whole, none dropped" \
    "$(valid_jsonl slow.jsonl) $(json slow.json '"\(.items.written) \(.items.dropped)"')" "45006 45006 0"
expect_gt "slow reader: the jobs were held back by it (the run took over 1.5 s)" \
    "$(json slow.json .elapsed)" 1.5

# a reader slower than a buffer a second (about 200 KB/s): still waited
# for, since the writer shows progress, not stuck in one long write
cat >slower_reader.py <<'EOF'
import sys, time
out = open(sys.argv[1], "wb")
while True:
    b = sys.stdin.buffer.read1(16384)
    if not b:
        break
    out.write(b)
    time.sleep(0.08)
EOF
timeout -k 3 "$RUN_LIMIT" "$SHOAL" run many.lua --workers 1 --listen off --quiet --output - \
    --summary-json slower.json -- 9 1000 2>slower.err </dev/null | "$PY" slower_reader.py slower.jsonl
expect_eq "slower reader: every item, whole, none dropped" \
    "$(valid_jsonl slower.jsonl) $(json slower.json '"\(.items.written) \(.items.dropped)"')" "9004 9004 0"

# -- a bad item fails its job, at the script's line, saying what is wrong
cat >bad.lua <<'EOF'
function produce(push) for _, k in ipairs({"fn", "nan", "cycle", "str"}) do push({k = k}) end end
function handle(job)
  local item = {k = job.k}
  if job.k == "fn" then item.parse = function() end end
  if job.k == "nan" then item.score = 0 / 0 end
  if job.k == "cycle" then item.self = {up = item} end
  if job.k == "str" then item = "text" end
  shoal.emit(item)
end
EOF
run_shoal bad run bad.lua --workers 1 --retries 0 --listen off --quiet --output bad.jsonl \
    --summary-json bad.json
expect_rc "bad items: those jobs fail (exit 1)" 1
expect_eq "bad items: 4 jobs failed" "$(json bad.json .failed)" 4
expect_grep "a function: file:line and the field" 'bad\.lua:8: shoal\.emit: the item is not JSON-serialisable: item\.parse is a function' "$OUT"
expect_grep "NaN: file:line and the field" 'bad\.lua:8: shoal\.emit: the item is not JSON-serialisable: item\.score is (-?nan|NaN)' "$OUT"
expect_grep "a cycle: file:line and where" 'bad\.lua:8: shoal\.emit: the item is not JSON-serialisable: item\.self\.up contains itself' "$OUT"
expect_grep "not a table: file:line" 'bad\.lua:8: shoal\.emit: an item must be a table of field = value, got string' "$OUT"
expect_eq "bad items: nothing written" "$(wc -c <bad.jsonl)" 0

cat >badcsv.lua <<'EOF'
function produce(push) push({}) end
function handle(job)
  local wide = {}
  for i = 1, 300 do wide["k" .. i] = i end
  local ok, err = pcall(shoal.emit, {})
  shoal.log.warn("empty", {error = err})
  shoal.emit(wide)
end
EOF
run_shoal badcsv run badcsv.lua --workers 1 --retries 0 --listen off --quiet --output bad.csv
expect_grep "CSV: an empty first item is refused, saying why" 'shoal\.emit: a CSV item needs at least one key' "$ERR"
expect_grep "CSV: over 256 keys fails the job at the script's line" 'badcsv\.lua:7: shoal\.emit: a CSV item has at most 256 keys, this one 300' "$OUT"

# -- an output that cannot be opened: exit 4 before any job runs
cat >never.lua <<'EOF'
function produce(push) push({}) end
function handle(job) shoal.log.warn("a job ran"); shoal.emit({x = 1}) end
EOF
mkdir -p ro && chmod 500 ro
run_shoal unwritable run never.lua --listen off --quiet --output "$T/ro/sub/x.jsonl"
if [ "$(id -u)" = 0 ]; then
    # root writes anywhere: a path under a regular file fails for everyone
    touch plainfile
    run_shoal unwritable run never.lua --listen off --quiet --output "$T/plainfile/x.jsonl"
fi
expect_rc "unwritable --output: exit 4" 4
expect_grep "it says which file and what to do" 'cannot open --output .*/x\.jsonl: .* \(give a writable path, or - for stdout\)' "$ERR"
expect_no_grep "no job ran" 'a job ran' "$ERR"
SHOAL_OUTPUT="$T/plainfile/y.csv" run_shoal unwritable_env run never.lua --listen off --quiet
expect_rc "SHOAL_OUTPUT is read too (exit 4)" 4

# -- no --output: items are counted, not saved, and the user is told once
run_shoal none run many.lua --workers 2 --listen off --quiet --summary-json none.json -- 10 5
expect_rc "no --output: the run still succeeds" 0
expect_eq "no --output: warned once" "$(grep -c 'no --output was given' "$ERR")" 1
expect_grep "no --output: the summary says so" '^  items     55 emitted, not saved \(no --output\)$' "$OUT"
expect_eq "no --output: discarded counted" "$(json none.json .items.discarded)" 55

# (2 workers: 3 init() items, produce's and done's: 5 beside handle's)
# -- /dev/full: every write fails; one clear error, all counted, exit 4
run_shoal devfull run many.lua --workers 2 --listen off --quiet --output /dev/full \
    --summary-json devfull.json -- 10 5
expect_rc "/dev/full: exit 4 (items lost)" 4
expect_eq "/dev/full: one error line" "$(grep -c 'cannot write items to /dev/full: No space left on device' "$ERR")" 1
expect_eq "/dev/full: all 55 counted as failed, none written" \
    "$(json devfull.json '"\(.items.failed) \(.items.written)"')" "55 0"

# -- a full disk part-way: the file ends on a whole record, counts add up
if [ "$(id -u)" = 0 ] && mkdir -p small && mount -t tmpfs -o size=64k tmpfs small 2>/dev/null; then
    trap 'umount "$T/small" 2>/dev/null; _cleanup' EXIT
    run_shoal full run many.lua --workers 2 --listen off --quiet --output small/full.jsonl \
        --summary-json full.json -- 40 100
    expect_rc "full disk: exit 4 (items lost)" 4
    lines=$(valid_jsonl small/full.jsonl)
    expect_gt "full disk: some items fit, every line whole (no torn record at the end)" "$lines" 100
    expect_eq "full disk: written == lines in the file" "$(json full.json .items.written)" "$lines"
    expect_eq "full disk: written + failed == every item emitted (4005)" \
        "$(json full.json '.items.written + .items.failed')" 4005
    expect_eq "full disk: one error line, naming the file" \
        "$(grep -c 'cannot write items to small/full.jsonl: No space left on device' "$ERR")" 1
    expect_grep "full disk: the summary says how many failed" 'items     [0-9]+ written to small/full.jsonl, [0-9]+ failed' "$OUT"
    # a CSV whose header could not be written at first gets it once the
    # disk has room again, before the rows written then
    cat >slowcsv.lua <<'EOF'
function produce(push) for i = 1, 100 do push({n = i}) end end
function handle(job) shoal.sleep(0.02); shoal.emit({n = job.n, k = "x"}) end
EOF
    rm -f small/full.jsonl
    dd if=/dev/zero of=small/filler bs=1k count=128 2>/dev/null
    start_bg csvfull "$SHOAL" run slowcsv.lua --workers 1 --concurrency 1 --listen off --quiet \
        --output small/later.csv --summary-json csvfull.json
    if wait_for "grep -q 'cannot write items to small/later.csv' csvfull.err" 10; then
        rm -f small/filler
        wait_exit "$BG_PID" 30
        expect_eq "CSV after a full disk: exit 4 (some items lost)" "$BG_RC" 4
        expect_eq "CSV after a full disk: the header comes first, then the rows written later" \
            "$("$PY" -c 'import csv,sys; r=list(csv.reader(open(sys.argv[1], newline=""))); print(r[0], all(len(x) == 2 and x[0] == "x" and x[1].isdigit() for x in r[1:]), len(r) - 1)' small/later.csv)" \
            "['k', 'n'] True $(json csvfull.json .items.written)"
        expect_eq "CSV after a full disk: written + failed == 100" \
            "$(json csvfull.json '.items.written + .items.failed')" 100
    else
        fail "CSV on a full disk: the write error is reported" "$(show_file csvfull.err 5)"
    fi
    umount small
else
    echo "# skipped the tmpfs full-disk case (needs root to mount)"
fi

# -- the examples that produce results emit them
run_shoal demo demo --listen 127.0.0.1:0 --workers 2 --quiet --output demo.csv --summary-json demo.json
expect_rc "shoal demo --output demo.csv: exit 0" 0
expect_eq "demo: one CSV row per page crawled, under the crawl's header" \
    "$("$PY" -c 'import csv,sys; r=list(csv.reader(open(sys.argv[1], newline=""))); print(",".join(r[0]), len(r)-1, sum(1 for x in r[1:] if x[3]=="200" and x[4].startswith("Demo ")))' demo.csv)" \
    "bytes,depth,links,status,title,url $(json demo.json .ok) $(json demo.json '.http.status."200"')"

cat >api.py <<'EOF'
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        page = int(parse_qs(urlparse(self.path).query).get("page", ["1"])[0])
        doc = {"items": [{"id": page * 100 + i, "name": "item, \"%d\"" % i} for i in range(10)]}
        if page < 5:
            doc["next"] = "/api/items?page=%d" % (page + 1)
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF
start_bg api "$PY" api.py
if wait_for "grep -q . api.out" 10; then
    run_shoal apipoll run "$SHOAL_ROOT/examples/api_poll.lua" --listen off --quiet --output api.jsonl \
        -- "http://127.0.0.1:$(head -1 api.out)/api/items"
    expect_rc "examples/api_poll.lua --output api.jsonl: exit 0" 0
    expect_eq "api_poll: every item of the 5 pages, as the API gave it" \
        "$("$PY" -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(len(r), sorted(x["id"] for x in r) == sorted(p*100+i for p in range(1,6) for i in range(10)), r[0]["name"].startswith("item, \""))' api.jsonl)" \
        "50 True True"
else
    fail "the test API server starts" "$(show_file api.err 5)"
fi

# -- Ctrl-C: once (in-flight jobs finish) and twice (abort at once)
cat >long.lua <<'EOF'
function produce(push) for i = 1, 100000 do push({n = i}) end end
function handle(job)
  for k = 1, 20 do shoal.emit({n = job.n, k = k, pad = string.rep("x", 200)}) end
  shoal.sleep(tonumber(shoal.args[1]))
  shoal.emit({n = job.n, k = 0})
end
EOF
for mode in once twice; do
    sleep_s=0.05
    [ $mode = twice ] && sleep_s=30
    start_bg "int_$mode" "$SHOAL" run long.lua --workers 2 --concurrency 50 --listen off --quiet \
        --output "int_$mode.jsonl" --summary-json "int_$mode.json" -- "$sleep_s"
    pid=$BG_PID
    if ! wait_for "[ \$(wc -l <int_$mode.jsonl) -ge 2000 ]" 20; then
        fail "$mode: items are written while the run goes" "$(show_file "int_$mode.err" 5)"
        continue
    fi
    kill -INT "$pid"
    if [ $mode = twice ]; then
        wait_for "grep -q 'interrupted' int_$mode.err" 5
        kill -INT "$pid"
    fi
    if wait_exit "$pid" 20; then
        expect_eq "Ctrl-C $mode: exit 130" "$BG_RC" 130
        lines=$(valid_jsonl "int_$mode.jsonl")
        expect_gt "Ctrl-C $mode: every line whole" "$lines" 1999
        expect_eq "Ctrl-C $mode: the summary's count == the lines" \
            "$(json "int_$mode.json" .items.written)" "$lines"
        expect_grep "Ctrl-C $mode: the text summary has the items line" "^  items     $lines written to int_$mode.jsonl" "int_$mode.out"
    else
        fail "Ctrl-C $mode: the run ends" "$(show_file "int_$mode.err" 5)"
        kill -KILL "$pid" 2>/dev/null
    fi
done

finish
