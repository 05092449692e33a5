#!/usr/bin/env bash
# test_logs.sh - the log file as a tailing agent (Promtail, Alloy) would ship
# it: one parseable line per event, exactly one "job done" / "job failed"
# line per attempt at 100k jobs, JSON lines with --log-format json, levels,
# the job's trace ids on its lines, secrets redacted, nothing lost across a
# SIGHUP reopen after logrotate renamed the file, and a log reader that
# stops reading costing the workers nothing (the lines dropped are counted
# exactly).
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
# this test reads the file, not stderr
export SHOAL_LOG_STDERR=error
unset SHOAL_LOG_FILE

# check.py FILE: parses every line as logfmt (key=bare or key="escaped"),
# prints "bad N" for lines that do not parse and "msg COUNT" per message,
# and writes the parsed lines as JSON to FILE.json for jq.
cat >check.py <<'EOF'
import json, re, sys
TOKEN = re.compile(r'([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"=\\]+)(?: |$)')
def unq(v):
    if not v.startswith('"'):
        return v
    return json.loads(v)  # logfmt's quoted values use JSON's escapes
bad, counts, rows = 0, {}, []
for raw in open(sys.argv[1], 'rb').read().split(b'\n')[:-1]:
    line = raw.decode('utf-8')  # must be valid UTF-8
    pos, row = 0, {}
    while pos < len(line):
        m = TOKEN.match(line, pos)
        if not m:
            break
        row[m.group(1)] = unq(m.group(2))
        pos = m.end()
    if pos != len(line) or not line.startswith('time=') or 'level' not in row or 'msg' not in row:
        bad += 1
        continue
    rows.append(row)
    counts[row['msg']] = counts.get(row['msg'], 0) + 1
print('bad', bad)
for k, v in sorted(counts.items()):
    print('msg', v, k.replace('\n', '\\n'))
json.dump(rows, open(sys.argv[1] + '.json', 'w'))
EOF
msgs() { sed -n "s/^msg \([0-9]*\) $2\$/\1/p" "$1"; }

cat >jobs.lua <<'EOF'
-- job n fails its first attempt when n % 10 == 0, and for good when n % 1000 == 0
function produce(push)
  for i = 1, tonumber(shoal.args[1]) do
    push({n = i, url = "http://user:hunter2@example.com/item/" .. i .. "?token=s3cret&x=1"})
  end
end
function handle(job)
  if job.n % 1000 == 0 or (job.n % 10 == 0 and shoal.job.attempt == 1) then
    error("bad item " .. job.n)
  end
  if job.n % 5000 == 1 then
    shoal.log.info("note\nwith newline", {n = job.n, quote = 'say "hi"', password = "p4ss"})
  end
end
EOF

# -- 100k jobs: one line per attempt, all parseable, none interleaved
N=100000
run_shoal big run jobs.lua --listen off --quiet --retries 1 --retry-delay 0 \
    --log-file "$T/logs/app.log" --summary-json big.json -- $N
expect_eq "100k jobs: exit 1 (some failed on purpose)" "$RC" 1
if [ -s logs/app.log ]; then pass "the log file is created with its directory"; else fail "the log file is created with its directory" "$(show_file "$ERR" 5)"; fi
$PY check.py logs/app.log >big.check
expect_eq "every line parses as logfmt, valid UTF-8, whole" "$(sed -n 's/^bad //p' big.check)" 0
OK=$(json big.json .ok)
NFAILED=$(json big.json .failed)
RETRIED=$(json big.json .retried)
expect_eq "ok jobs" "$OK" $((N - N / 1000))
expect_eq "one \"job done\" line per successful job" "$(msgs big.check 'job done')" "$OK"
expect_eq "one \"job failed\" line per failed job" "$(msgs big.check 'job failed')" "$NFAILED"
expect_eq "one retry line per retried attempt" "$(msgs big.check 'attempt failed; will retry')" "$RETRIED"
expect_eq "script lines (with a newline in msg) stay one line each" "$(msgs big.check 'note\\nwith newline')" $((N / 5000))
expect_eq "the run's start and end are logged" "$(msgs big.check 'run started')/$(msgs big.check 'run finished')" 1/1
expect_eq "no line was dropped" "$(json big.json .telemetry.logs.dropped)/$(json big.json .telemetry.logs.failed)" 0/0
expect_eq "the summary counts the lines written" "$(json big.json .telemetry.logs.exported)" \
    "$(wc -l <logs/app.log)"
expect_eq "job lines carry job.id, attempt, url and duration" \
    "$(jq '[.[] | select(.msg == "job done" and .["job.id"] != null and .attempt != null and .url != null and .duration != null)] | length' logs/app.log.json)" "$OK"
expect_eq "each job id has exactly one final line" \
    "$(jq '[.[] | select(.msg == "job done" or .msg == "job failed") | .["job.id"]] | unique | length' logs/app.log.json)" $((OK + NFAILED))
INST=$(json big.json .instance)
expect_match "the process's id defaults to HOST-PID" "$INST" "$(uname -n)-[0-9]+"
expect_eq "every line names the process: instance=<the summary's instance>" \
    "$(jq --arg i "$INST" '[.[] | select(.instance == $i)] | length' logs/app.log.json)" \
    "$(wc -l <logs/app.log)"
expect_eq "\"run finished\" is the last line" "$(tail -n1 logs/app.log | grep -c 'msg="run finished"')" 1
expect_no_grep "secrets never reach the file" 'hunter2|s3cret|p4ss' logs/app.log
expect_grep "a URL's password and token are redacted" 'url="?http://user:REDACTED@example.com/item/[0-9]+\?token=REDACTED&x=1' logs/app.log
expect_grep "a field named like a secret is redacted" ' password=REDACTED( |$)' logs/app.log
# what a tailing agent ships, filtered the way LogQL's |= "failed" does
expect_eq '|= "job failed" finds exactly the failed jobs' "$(grep -c 'msg="job failed"' logs/app.log)" "$NFAILED"
expect_grep "a failed job's line says why, with its error" 'level=ERROR msg="job failed" worker=[0-9]+ job.id=[0-9]+ attempt=2 .*error="[^"]*bad item 1000' logs/app.log

# -- order: a line comes after every line logged before it, whichever
# worker wrote them (the writer merges the workers' buffers by time): a
# chain of jobs, each pushed by the one before, on three workers
cat >chain.lua <<'EOF'
function produce(push) push({i = 1}) end
function handle(job)
  shoal.log.info("step", {i = job.i})
  if job.i < tonumber(shoal.args[1]) then shoal.push({i = job.i + 1}) end
end
function done(stats) shoal.log.info("chain done", {ok = stats.ok}) end
EOF
run_shoal chain run chain.lua --listen off --quiet --workers 3 --log-file "$T/chain.log" -- 3000
expect_rc "a chain of 3000 jobs: exit 0" 0
expect_eq "the steps are in the order they happened" \
    "$(sed -n 's/.*msg=step .*i=\([0-9]*\).*/\1/p' chain.log | awk '$1 != NR { n++ } END { print NR "/" n + 0 }')" "3000/0"
expect_eq "done()'s line comes after every job's, then \"run finished\"" \
    "$(tail -n2 chain.log | sed -n 's/.*msg=\("[^"]*"\|[^ ]*\).*/\1/p' | tr '\n' ' ')" '"chain done" "run finished" '
expect_eq "the workers took turns (the order was not one worker's)" \
    "$(sed -n 's/.*msg=step worker=\([0-9]*\).*/\1/p' chain.log | sort -u | wc -l)" 3

# -- levels: warn keeps failures and drops the job-done lines; off writes nothing
run_shoal warn run jobs.lua --listen off --quiet --retries 0 --log-level warn \
    --log-file "$T/warn.log" -- 100
$PY check.py warn.log >warn.check
expect_eq "--log-level warn: no INFO line" "$(grep -c 'level=INFO' warn.log)" 0
expect_eq "--log-level warn: the failures are there" "$(msgs warn.check 'job failed')" 10
run_shoal off run jobs.lua --listen off --quiet --log-level off --log-file "$T/off.log" -- 100
if [ ! -s off.log ]; then pass "--log-level off: nothing written"; else fail "--log-level off: nothing written" "$(head -3 off.log)"; fi
mkdir nofile dflt
(cd nofile && "$SHOAL" run ../jobs.lua --listen off --quiet --log-file off -- 10 >/dev/null 2>&1)
expect_eq "--log-file off: no logs/ directory made" "$([ -e nofile/logs ] && echo made || echo none)" none
(cd dflt && env -u SHOAL_LOG_FILE "$SHOAL" run ../jobs.lua --listen off --quiet -- 10 >/dev/null 2>&1)
expect_eq "by default lines go to logs/app.log" "$(grep -c 'msg="job done"' dflt/logs/app.log 2>/dev/null)" 10

# -- JSON lines
run_shoal json run jobs.lua --listen off --quiet --retries 0 --log-format json \
    --log-file "$T/json.log" --instance 'crawl "7" a=b' -- 1000
expect_eq "--log-format json: every line is one JSON object" \
    "$(jq -c 'select(type == "object")' json.log 2>/dev/null | wc -l)" "$(wc -l <json.log)"
expect_eq "--log-format json: numbers stay numbers" \
    "$(jq -s '[.[] | select(.msg == "job done") | select((.["job.id"] | type) == "number" and (.duration | type) == "number")] | length' json.log)" 900
expect_eq "--log-format json: every line has the --instance given" \
    "$(jq -s '[.[] | select(.instance == "crawl \"7\" a=b")] | length' json.log)" "$(wc -l <json.log)"

# -- a job's lines carry its trace ids (tracing on; the collector may be away)
run_shoal ids run jobs.lua --listen off --quiet --retries 0 --otlp-endpoint http://127.0.0.1:1 \
    --log-file "$T/ids.log" --instance 'w 2' -- 200
$PY check.py ids.log >ids.check
expect_eq "logfmt: an --instance with a blank is quoted, and every line has it" \
    "$(jq '[.[] | select(.instance == "w 2")] | length' ids.log.json)/$(sed -n 's/^bad //p' ids.check)" \
    "$(wc -l <ids.log)/0"
expect_eq "with tracing on, every job line has a trace_id and span_id" \
    "$(jq '[.[] | select(.msg == "job done" or .msg == "job failed") | select((.trace_id | test("^[0-9a-f]{32}$")) and (.span_id | test("^[0-9a-f]{16}$")))] | length' ids.log.json)" 200
NOTE_JOB=$(jq -r '[.[] | select(.n == "1")] | .[0] | .["job.id"]' ids.log.json)
expect_eq "a script line inside a job has its job's ids" \
    "$(jq -r '[.[] | select(.n == "1")] | .[0] | .trace_id + " " + .span_id' ids.log.json)" \
    "$(jq -r --arg j "$NOTE_JOB" '[.[] | select(.msg == "job done" and .["job.id"] == $j)] | .[0] | .trace_id + " " + .span_id' ids.log.json)"

# -- SIGHUP after a rename (what logrotate does): every line in one file or the other
cat >slow.lua <<'EOF'
function produce(push) for i = 1, tonumber(shoal.args[1]) do push({n = i}) end end
function handle(job) shoal.sleep(0.002) end
EOF
start_bg hup "$SHOAL" run slow.lua --listen off --quiet --concurrency 8 \
    --log-file "$T/rot.log" --summary-json hup.json -- 6000
HUP_PID=$BG_PID
if wait_for "[ \$(grep -c 'job done' rot.log 2>/dev/null || echo 0) -ge 500 ]" 20; then
    mv rot.log rot.log.1
    kill -HUP "$HUP_PID"
    if wait_for "[ -s rot.log ]" 10; then pass "SIGHUP: a new file is opened at the old name"; else fail "SIGHUP: a new file is opened at the old name"; fi
else
    fail "SIGHUP: the run logs before the rotation" "$(show_file hup.err 5)"
fi
wait_exit "$HUP_PID" 40
expect_eq "SIGHUP: the run finishes" "$BG_RC" 0
expect_eq "SIGHUP: no job line lost or doubled across the two files" \
    "$(cat rot.log.1 rot.log | grep -c 'msg="job done"')" 6000
expect_ge "SIGHUP: the old file kept the lines before the rotation" "$(grep -c 'msg="job done"' rot.log.1)" 500

# -- a reader that stops reading: the workers go on, drops are counted exactly
mkfifo stuck.fifo
# this shell holds the pipe open and never reads: it fills after 64 KiB
exec 7<>stuck.fifo
run_shoal stuck run jobs.lua --listen off --quiet --retries 0 --log-file "$T/stuck.fifo" \
    --summary-json stuck.json -- 50000
expect_eq "stuck log reader: the run finishes" "$RC" 1
expect_eq "stuck log reader: every job ran" "$(json stuck.json '.ok + .failed')" 50000
LINES=$((50000 + 50000 / 5000 + 2)) # job lines, the script's notes, run started/finished
expect_eq "stuck log reader: written + dropped + failed = lines logged" \
    "$(json stuck.json '.telemetry.logs | .exported + .dropped + .failed')" "$LINES"
expect_ge "stuck log reader: lines were dropped, not waited for" \
    "$(json stuck.json '.telemetry.logs.dropped + .telemetry.logs.failed')" 1
expect_grep "stuck log reader: the trouble is said once on stderr" 'cannot write the log file' "$ERR"
expect_lt "stuck log reader: it is said once" "$(grep -c 'cannot write the log file' "$ERR")" 2
exec 7>&-

finish
