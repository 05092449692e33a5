#!/usr/bin/env bash
# test_failures.sh - what a user sees when things go wrong: job failures and
# retries (exact counts, file:line in the summary and on stderr), scripts that
# do not load (exit 3), bad flags, values and variables (exit 2), how script
# options, SHOAL_* variables and flags combine, `shoal check`, `--help` and
# `version`.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

# -- failing jobs, retried
cat >fail.lua <<'EOF'
function produce(push)
  for i = 1, 30 do push({n = i}) end
end
function handle(job)
  if job.n % 3 == 0 then
    error("this job is broken")
  end
end
EOF
run_shoal fail2 run fail.lua --workers 2 --retries 2 --retry-delay 0.01 --listen off --quiet --summary-json fail2.json
expect_rc "jobs failing after all retries: exit 1" 1
expect_eq "--retries 2: failed == 10 (every third of 30 jobs)" "$(json fail2.json .failed)" 10
expect_eq "--retries 2: ok == 20" "$(json fail2.json .ok)" 20
expect_eq "--retries 2: retried == 20 (2 per failing job)" "$(json fail2.json .retried)" 20
expect_eq "--retries 2: 30 failed attempts recorded under the script's file:line" \
    "$(json fail2.json '[.errors[] | select(.message | test("fail\\.lua:6: this job is broken")) | .count] | add')" 30
expect_grep "stderr names the script's file:line" 'fail\.lua:6: this job is broken' "$ERR"
expect_grep "text summary shows the failures" '20 ok, 10 failed, 20 retried' "$OUT"
expect_grep "text summary lists the error with file:line" 'fail\.lua:6: this job is broken' "$OUT"

run_shoal fail0 run fail.lua --workers 1 --retries 0 --listen off --quiet --summary-json fail0.json
expect_rc "--retries 0: exit 1" 1
expect_eq "--retries 0: failed == 10" "$(json fail0.json .failed)" 10
expect_eq "--retries 0: retried == 0" "$(json fail0.json .retried)" 0

# a job that fails twice and then succeeds is a success
cat >flaky.lua <<'EOF'
function produce(push) push({}) end
function handle(job)
  if shoal.job.attempt < 3 then error("flaky attempt " .. shoal.job.attempt) end
end
EOF
run_shoal flaky2 run flaky.lua --retries 2 --retry-delay 0.01 --listen off --quiet --summary-json flaky2.json
expect_rc "flaky job that succeeds on its 3rd attempt: exit 0" 0
expect_eq "flaky job: ok 1, failed 0, retried 2" "$(json flaky2.json '"\(.ok) \(.failed) \(.retried)"')" "1 0 2"
run_shoal flaky1 run flaky.lua --retries 1 --retry-delay 0.01 --listen off --quiet --summary-json flaky1.json
expect_rc "same job with --retries 1: exit 1" 1
expect_eq "with --retries 1: ok 0, failed 1, retried 1" "$(json flaky1.json '"\(.ok) \(.failed) \(.retried)"')" "0 1 1"

# Lua code raises tables too (error{code = ...}): the same failure must read
# the same every time, so the summary groups it, and never as an address.
cat >errobj.lua <<'EOF'
function produce(push) for i = 1, 20 do push({n = i}) end end
function handle(job)
  error({code = 7, reason = "quota exceeded"})
end
EOF
run_shoal errobj run errobj.lua --workers 1 --retries 0 --listen off --quiet --summary-json errobj.json
expect_rc "jobs raising error tables: exit 1" 1
expect_eq "identical error tables are one summary entry (count 20)" "$(json errobj.json '[.errors[].count] | max')" 20
expect_no_grep "an error table is not shown as a memory address" 'table: 0x' "$OUT"

# -- the failing URL: every failure line and every top-error example names it,
# whatever the log level (curl's own messages never do)
cat >badurl.lua <<'EOF'
function produce(push)
  push({url = "http://127.0.0.1:1/in valid"})
  push({url = "http://user:hunter2@[::1/token=abc"})
end
function handle(job)
  local res, err = shoal.http.get(job.url)
  if not res then error(err) end
end
EOF
for level in warn error; do
    SHOAL_LOG_STDERR=$level run_shoal badurl_$level run badurl.lua --workers 1 --retries 0 --listen off --quiet --summary-json badurl_$level.json
    expect_rc "bad URLs (log level $level): exit 1" 1
    expect_grep "log level $level: the failure line names the first URL" 'msg="job failed".*url="?http://127\.0\.0\.1:1/in valid' "$ERR"
    expect_grep "log level $level: the failure line names the second URL" 'msg="job failed".*url=.*::1' "$ERR"
done
expect_no_grep "the URL's password is redacted on stderr" 'hunter2' "$ERR"
expect_eq "every top error carries the URL of an example job" \
    "$(json badurl_error.json '[.errors[] | select((.url // "") | test("127\\.0\\.0\\.1:1|::1"))] | length')" \
    "$(json badurl_error.json '.errors | length')"
expect_grep "the summary json has the first URL" '127\.0\.0\.1:1/in valid' badurl_error.json
expect_no_grep "the summary json does not show the password" 'hunter2' badurl_error.json
expect_grep "the text summary's top errors name the URL curl's message does not" 'url=http://user:.*\[::1' "$OUT"
expect_no_grep "the text summary does not show the password" 'hunter2' "$OUT"
expect_no_grep "no empty status line when no response came" '^  status *$' "$OUT"

# -- one kind of failure is one entry of the top errors, whatever page or
# number it names; an HTTP status still tells kinds apart
cat >kinds.lua <<'EOF'
function produce(push)
  for i = 1, 5 do push({url = "http://127.0.0.1:1/missing" .. i .. ".html", n = i}) end
  push({url = "http://127.0.0.1:1/broken.html", n = 6})
end
function handle(job)
  local status = job.n == 6 and 500 or 404
  error(job.url:match("[^/]+$") .. ": HTTP " .. status .. " after " .. job.n .. " ms")
end
EOF
run_shoal kinds run kinds.lua --workers 1 --retries 0 --listen off --quiet --summary-json kinds.json
expect_rc "jobs failing with varying pages and numbers: exit 1" 1
expect_eq "five 404s of five pages are one entry, a 500 another" \
    "$(json kinds.json '[.errors[] | "\(.count) \(.pattern)"] | sort | join("|")')" \
    "1 kinds.lua:7: broken.html: HTTP 500 after <n> ms|5 kinds.lua:7: missing<n>.html: HTTP 404 after <n> ms"
expect_eq "the entry's example is a real message with its job's URL" \
    "$(json kinds.json '.errors[] | select(.count == 5) | "\(.message) \(.url)"')" \
    "kinds.lua:7: missing1.html: HTTP 404 after 1 ms http://127.0.0.1:1/missing1.html"
expect_grep "the text summary shows the count and one example" '^ +5x  kinds\.lua:7: missing1\.html: HTTP 404 after 1 ms$' "$OUT"
expect_grep "the text summary shows the example's URL" '^ +url=http://127\.0\.0\.1:1/missing1\.html$' "$OUT"

# -- scripts that do not load, or whose hooks raise: exit 3 with file:line
cat >syntax.lua <<'EOF'
function produce(push) push({}) end

function handle(job) return job +* 1 end
EOF
run_shoal syntax run syntax.lua --listen off --quiet
expect_rc "syntax error: exit 3" 3
expect_grep "syntax error: stderr has file:line" 'syntax\.lua:3' "$ERR"

cat >toplevel.lua <<'EOF'
function handle(job) end
error("top-level boom")
EOF
run_shoal toplevel run toplevel.lua --listen off --quiet
expect_rc "error at the script's top level: exit 3" 3
expect_grep "top-level error: stderr has file:line and message" 'toplevel\.lua:2: top-level boom' "$ERR"

cat >nohandle.lua <<'EOF'
function produce(push) push({}) end
EOF
run_shoal nohandle run nohandle.lua --listen off --quiet
expect_rc "script without handle(): exit 3" 3
expect_grep "script without handle(): says so" 'handle' "$ERR"

cat >badopt.lua <<'EOF'
options = { workers = "x" }
function handle(job) end
EOF
run_shoal badopt run badopt.lua --listen off --quiet
expect_rc 'options = { workers = "x" }: exit 3' 3
expect_grep "bad option: stderr names options.workers" 'options\.workers' "$ERR"

cat >typoopt.lua <<'EOF'
options = { wrokers = 2 }
function handle(job) end
EOF
run_shoal typoopt run typoopt.lua --listen off --quiet
expect_rc "misspelt option name: exit 3" 3
expect_grep "misspelt option: stderr names options.wrokers" 'options\.wrokers' "$ERR"

cat >rangeopt.lua <<'EOF'
options = { workers = 0 }
function handle(job) end
EOF
run_shoal rangeopt run rangeopt.lua --listen off --quiet
if [ "$RC" = 3 ] || [ "$RC" = 2 ]; then
    pass "options = { workers = 0 } (out of range) is refused (exit $RC)"
else
    fail "options = { workers = 0 } (out of range) is refused with exit 2 or 3" "got exit $RC" "$(show_file "$ERR" 5)"
fi
expect_grep "out-of-range option: stderr names options.workers" 'options\.workers' "$ERR"

cat >initerr.lua <<'EOF'
function init(worker)
  if worker.id == 1 then error("init exploded") end
end
function produce(push) push({}) end
function handle(job) end
EOF
run_shoal initerr run initerr.lua --workers 1 --listen off --quiet
expect_rc "init() raising: exit 3" 3
expect_grep "init() raising: file:line on stderr" 'initerr\.lua:2: init exploded' "$ERR"

cat >produceerr.lua <<'EOF'
function produce(push)
  push({})
  error("produce exploded")
end
function handle(job) end
EOF
run_shoal produceerr run produceerr.lua --workers 1 --listen off --quiet
expect_rc "produce() raising: exit 3" 3
expect_grep "produce() raising: file:line on stderr" 'produceerr\.lua:3: produce exploded' "$ERR"

cat >doneerr.lua <<'EOF'
function produce(push) push({}) end
function handle(job) end
function done(stats)
  error("done exploded")
end
EOF
run_shoal doneerr run doneerr.lua --workers 1 --listen off --quiet
expect_rc "done() raising: exit 3" 3
expect_grep "done() raising: file:line on stderr" 'doneerr\.lua:4: done exploded' "$ERR"

run_shoal nofile run does-not-exist.lua --listen off --quiet
expect_rc "a script file that does not exist: exit 3" 3
expect_grep "missing script: stderr names the file" 'does-not-exist\.lua' "$ERR"

# -- the command line: exit 2, naming the culprit
cat >good.lua <<'EOF'
function produce(push) push({}) end
function handle(job) end
EOF
run_shoal badflag run good.lua --bogus-flag --listen off
expect_rc "unknown flag: exit 2" 2
expect_grep "unknown flag: stderr names it" '--bogus-flag' "$ERR"
run_shoal workers0 run good.lua --workers 0 --listen off
expect_rc "--workers 0: exit 2" 2
expect_grep "--workers 0: stderr names --workers" '--workers' "$ERR"
run_shoal workersx run good.lua --workers abc --listen off
expect_rc "--workers abc: exit 2" 2
run_shoal timeoutneg run good.lua --timeout -1 --listen off
expect_rc "--timeout -1: exit 2" 2
run_shoal novalue run good.lua --listen off --workers
expect_rc "--workers without a value: exit 2" 2
SHOAL_WORKERS=abc run_shoal envbad run good.lua --listen off
expect_rc "SHOAL_WORKERS=abc: exit 2" 2
expect_grep "SHOAL_WORKERS=abc: stderr names the variable" 'SHOAL_WORKERS' "$ERR"
run_shoal verb frobnicate
expect_rc "unknown command: exit 2" 2
for verb in run check demo dashboard version help; do
    expect_grep "unknown command: lists '$verb'" "commands:.*\\b$verb\\b" "$ERR"
done
run_shoal bare
expect_rc "shoal with no command: a usage error, exit 2" 2
expect_grep "shoal with no command: says so" "^shoal: no command given" "$ERR"
expect_grep "shoal with no command: the usage on stderr" "^Usage:" "$ERR"
expect_eq "shoal with no command: nothing on stdout" "$(wc -c <"$OUT")" 0
run_shoal listen_bad run good.lua --listen abc --quiet
expect_rc "--listen abc (not an address): a usage error, exit 2" 2
expect_grep "--listen abc: stderr names --listen and the value" '--listen abc' "$ERR"
run_shoal listen_port run good.lua --listen 127.0.0.1:99999 --quiet
expect_rc "--listen with port 99999: exit 2" 2
SHOAL_LISTEN=nocolon run_shoal listen_env run good.lua --quiet
expect_rc "SHOAL_LISTEN=nocolon: exit 2" 2
expect_grep "SHOAL_LISTEN=nocolon: stderr names the variable" 'SHOAL_LISTEN' "$ERR"
run_shoal noscript run --listen off
expect_rc "run without a script: exit 2" 2
run_shoal extra run good.lua stray-argument --listen off
expect_rc "a stray argument before --: exit 2" 2

# -- the machine says no: exit 4, naming what
cat >hold.py <<'EOF'
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)
EOF
start_bg hold "$PY" hold.py hold.port
if wait_for "[ -s hold.port ]" 10; then
    HELD=$(cat hold.port)
    run_shoal inuse run good.lua --listen "127.0.0.1:$HELD" --quiet
    expect_rc "--listen on an address in use: exit 4" 4
    expect_grep "address in use: stderr names the address" "127\\.0\\.0\\.1:$HELD|$HELD" "$ERR"
else
    fail "a helper holds a port" "$(show_file hold.err)"
fi
run_shoal unwritable run good.lua --listen off --quiet --summary-json "$T/no/such/dir/summary.json"
expect_rc "--summary-json into a missing directory: exit 4" 4
expect_grep "unwritable summary: stderr names the file" 'no/such/dir/summary\.json' "$ERR"
cat >marker.lua <<'EOF'
function produce(push)
  io.open("produced.marker", "w"):close()
  push({})
end
function handle(job) end
EOF
run_shoal unwritable_early run marker.lua --listen off --quiet --summary-json "$T/no/such/dir/summary.json"
expect_rc "--summary-json into a missing directory, checked at start: exit 4" 4
if [ -e produced.marker ]; then
    fail "an unwritable --summary-json is found before the script runs" "produce() ran"
else
    pass "an unwritable --summary-json is found before the script runs"
fi
mkdir -p sumdir
run_shoal summary_dir run marker.lua --listen off --quiet --summary-json sumdir
expect_rc "--summary-json naming a directory: exit 4" 4
expect_grep "--summary-json naming a directory: says so" 'sumdir is a directory' "$ERR"
run_shoal summary_ok run good.lua --listen off --quiet --summary-json "$T/sumdir/s.json"
expect_eq "the check at start leaves no file behind but the summary" "$(ls sumdir)" "s.json"

# -- ARGS after -- reach shoal.args, in every state, untouched
cat >args.lua <<'EOF'
local function save(name)
  local f = assert(io.open(name, "w"))
  f:write(shoal.json.encode(shoal.args))
  f:close()
end
function produce(push) save("args_producer.json"); push({}) end
function handle(job) save("args_worker.json") end
EOF
run_shoal args run args.lua --workers 1 --listen off --quiet --summary-json args.json -- one "two words" --workers 5 -- ""
expect_rc "run with script arguments: exit 0" 0
WANT='["one","two words","--workers","5","--",""]'
expect_eq "shoal.args in produce() holds everything after the first --" "$(jq -c . args_producer.json 2>/dev/null)" "$WANT"
expect_eq "shoal.args in handle() too" "$(jq -c . args_worker.json 2>/dev/null)" "$WANT"
expect_eq "flags after -- are the script's, not shoal's (--workers stays 1)" "$(json args.json .workers)" 1

# -- precedence: script options < SHOAL_* variables < flags
cat >opts.lua <<'EOF'
options = { workers = 3, concurrency = 7, retries = 0 }
function produce(push) push({}) end
function handle(job) error("always fails") end
EOF
run_shoal opts run opts.lua --listen off --quiet --retry-delay 0.01 --summary-json opts.json
expect_eq "script options apply (workers 3, concurrency 7)" "$(json opts.json '"\(.workers) \(.concurrency)"')" "3 7"
expect_eq "script option retries = 0 applies (retried 0)" "$(json opts.json .retried)" 0
SHOAL_WORKERS=2 run_shoal opts_env run opts.lua --listen off --quiet --retry-delay 0.01 --summary-json opts_env.json
expect_eq "SHOAL_WORKERS=2 wins over options.workers" "$(json opts_env.json .workers)" 2
SHOAL_WORKERS=2 run_shoal opts_flag run opts.lua --workers 1 --retries 1 --listen off --quiet --retry-delay 0.01 --summary-json opts_flag.json
expect_eq "--workers 1 wins over SHOAL_WORKERS and options.workers" "$(json opts_flag.json .workers)" 1
expect_eq "--retries 1 wins over options.retries (retried 1)" "$(json opts_flag.json .retried)" 1
expect_eq "concurrency from the script still applies next to other flags" "$(json opts_flag.json .concurrency)" 7

# -- shoal check
run_shoal check_ok check good.lua
expect_rc "check of a good script: exit 0" 0
expect_grep "check of a good script says ok" 'good\.lua: ok' "$OUT"
run_shoal check_bad check syntax.lua
expect_rc "check of a script with a syntax error: exit 3" 3
expect_grep "check: file:line on stderr" 'syntax\.lua:3' "$ERR"
run_shoal check_nohandle check nohandle.lua
expect_rc "check of a script without handle(): exit 3" 3
run_shoal check_badopt check badopt.lua
expect_rc "check of a script with a bad option: exit 3" 3
expect_grep "check: names options.workers" 'options\.workers' "$ERR"

# -- --help: every option with its variable, and the exit codes
run_shoal help --help
expect_rc "--help: exit 0" 0
for flag in workers concurrency retries timeout retry-delay rate queue-size duration max-jobs \
    memory max-body max-wedged listen lua-path summary-json quiet watch; do
    var=SHOAL_$(echo "$flag" | tr 'a-z-' 'A-Z_')
    if grep -A1 -E -- "--$flag( |$)" "$OUT" | grep -q "\[$var\]"; then
        pass "--help lists --$flag with [$var]"
    else
        fail "--help lists --$flag with [$var]" "$(grep -A1 -E -- "--$flag( |$)" "$OUT")"
    fi
done
sed -n '/^Exit codes/,/^$/p' "$OUT" >help_exit.txt
for code in 0 1 2 3 4 5 130; do
    expect_grep "--help documents exit code $code" "^ +$code +[a-z]" help_exit.txt
done
run_shoal help_verb help
expect_rc "shoal help: exit 0" 0

# Every variable --help advertises is read: a bad value is refused naming it.
for var in $(grep -o '\[SHOAL_[A-Z_]*\]' "$OUT" | tr -d '[]' | sort -u); do
    # these take any text
    case $var in SHOAL_LUA_PATH | SHOAL_SUMMARY_JSON | SHOAL_OUTPUT | SHOAL_SERVICE | SHOAL_LOG_FILE | SHOAL_PROFILE_DIR | \
        SHOAL_USER_AGENT | SHOAL_ALLOWED_DOMAINS | SHOAL_INCLUDE | SHOAL_EXCLUDE | SHOAL_HTTP_CACHE | \
        SHOAL_PROXY_LIST | SHOAL_STATE_DIR | SHOAL_INSTANCE) continue ;; esac
    env "$var=zzz" timeout 10 "$SHOAL" run good.lua --listen off --quiet >/dev/null 2>envvar.err
    rc=$?
    if [ "$rc" = 2 ] && grep -q "$var" envvar.err; then
        pass "$var=zzz is refused (exit 2, names the variable)"
    else
        fail "$var=zzz is refused (exit 2, names the variable)" "got exit $rc:" "$(show_file envvar.err 3)"
    fi
done

# -- the docs a user's clone has stand alone: nothing points outside the
# repository, and every part of the shoal module is in docs/SCRIPTING.md
R=$SHOAL_ROOT
if grep -n '\.\./shared\|\.\./\.\./shared' "$R/README.md" "$R"/docs/*.md "$R/compose/README.md" >outside.txt; then
    fail "README and docs/ point at nothing outside the repository" "$(cat outside.txt)"
else
    pass "README and docs/ point at nothing outside the repository"
fi
for name in $(grep -o '^shoal\.[a-z_]*\|^function shoal\.[a-z_]*' "$R/lua/shoal/runtime.lua" | sed 's/^function //' | sort -u) shoal.job; do
    expect_grep "docs/SCRIPTING.md documents $name" "\\b${name//./\\.}\\b" "$R/docs/SCRIPTING.md"
done
for hook in init produce handle done labels; do
    expect_grep "docs/SCRIPTING.md documents the hook $hook()" "^[|] .$hook[(]" "$R/docs/SCRIPTING.md"
done
for opt in key delay priority; do
    expect_grep "docs/SCRIPTING.md documents push's $opt" "^[|] .$opt. [|]" "$R/docs/SCRIPTING.md"
done

# -- version
run_shoal version version
expect_rc "shoal version: exit 0" 0
expect_grep "shoal version prints the version" '^shoal [0-9]+\.[0-9]+' "$OUT"

finish
