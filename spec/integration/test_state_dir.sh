#!/usr/bin/env bash
# test_state_dir.sh - --state-dir: a crawl of a generated site (nginx)
# killed with kill -9 at random moments, stopped with SIGTERM, copied
# mid-run as a crash would leave it, and each time resumed with the same
# command, ends with every page's item exactly once in the output, the
# same pages as a crawl that was never stopped. Also: a second process on
# the same state is refused (naming the first's pid), `shoal state` says
# what a state holds, a finished state says so, and a garbage or
# truncated database is a clear error, never a crash.
. "$(dirname "$0")/lib.sh"
UA=shoal
"$PY" "$SHOAL_ROOT/spec/integration/polite/gen_site.py" "$T/site" --name S --sections 30 \
    --pages 100 --agent "$UA" >/dev/null
expect_eq "the site is generated" "$?" 0
start_nginx "$T/site/www" || { fail "nginx starts"; finish; }
START=http://127.0.0.1:$NGINX_PORT/index.html
CRAWL=(run "$SHOAL_ROOT/examples/crawl.lua" --listen off --quiet --user-agent "$UA" --workers 2)

# urls FILE: the sorted urls of the items in FILE (JSON lines)
urls() { "$PY" -c 'import json, sys
for line in open(sys.argv[1]):
    print(json.loads(line)["url"])' "$1" | sort; }
# dups FILE: how many urls appear more than once among FILE's items
dups() { urls "$1" | uniq -d | wc -l; }

# the reference: the same crawl, never stopped, in memory
run_shoal ref "${CRAWL[@]}" --output "$T/ref.jsonl" -- "$START"
expect_rc "the reference crawl succeeds" 0
urls "$T/ref.jsonl" >"$T/ref.urls"
PAGES=$(wc -l <"$T/ref.urls")
expect_ge "the reference crawl finds the site's pages" "$PAGES" 3000
: >"$NGINX_LOG"

# resume_until_done TAG DIR OUT: runs the crawl on DIR until it finishes
resume_until_done() {
    run_shoal "$1" "${CRAWL[@]}" --state-dir "$2" --output "$3" -- "$START"
}

# kill_at_random TAG DIR OUT SIGNAL: starts the crawl (slowed by --rate),
# waits until it has written items, then sends SIGNAL at a random moment
kill_at_random() {
    local tag=$1 dir=$2 out=$3 sig=$4
    local before
    before=$( [ -f "$out" ] && wc -l <"$out" || echo 0)
    start_bg "$tag" "$SHOAL" "${CRAWL[@]}" --rate 2500 --state-dir "$dir" --output "$out" \
        -- "$START"
    local pid=$BG_PID
    wait_for "! kill -0 $pid || [ \$(wc -l <'$out' 2>/dev/null || echo 0) -gt $before ]" 30
    sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
    kill "-$sig" "$pid" 2>/dev/null
    wait_exit "$pid" 30 || { kill -KILL "$pid"; wait_exit "$pid" 5; }
    KILLED_RC=$BG_RC
}

# --- kill -9, three times at random moments, then SIGTERM, then to the end
D=$T/state
for i in 1 2 3; do
    kill_at_random "kill$i" "$D" "$T/out.jsonl" KILL
    expect_eq "kill -9 number $i ends it (exit 137)" "$KILLED_RC" 137
    expect_eq "after kill -9 number $i, no url is in the output twice" "$(dups "$T/out.jsonl")" 0
done
"$SHOAL" state "$D" >"$T/state-stopped.txt" 2>&1
expect_grep "shoal state: a killed run is stopped, to go on from" "stopped: .shoal run." \
    "$T/state-stopped.txt"
expect_grep "shoal state: counts the jobs done" "done  *[1-9]" "$T/state-stopped.txt"
kill_at_random term "$D" "$T/out.jsonl" TERM
expect_eq "SIGTERM: exit 130" "$KILLED_RC" 130
expect_grep "a resume says what it takes over" "resuming the run kept in" "$T/term.err"
resume_until_done last "$D" "$T/out.jsonl"
expect_rc "the last resume finishes the crawl" 0
urls "$T/out.jsonl" >"$T/out.urls"
expect_eq "no url twice in the output of the stopped-and-resumed crawl" "$(dups "$T/out.jsonl")" 0
if cmp -s "$T/ref.urls" "$T/out.urls"; then
    pass "every page's item is there: the same $PAGES urls as the crawl never stopped"
else
    fail "the resumed crawl's items are the reference's" "$(diff "$T/ref.urls" "$T/out.urls" | head)"
fi
# every page was fetched; again only what was in flight at a kill
FETCHED=$(grep -c '^GET /.*html 200' "$NGINX_LOG")
expect_ge "nginx served every page" "$FETCHED" "$PAGES"
expect_le "pages fetched twice are at most those in flight at the 4 stops (2 x 64 each)" \
    "$((FETCHED - PAGES))" 512

run_shoal again "${CRAWL[@]}" --state-dir "$D" --output "$T/out.jsonl" -- "$START"
expect_rc "a finished state: exit 0" 0
expect_grep "a finished state says so" "is finished .[0-9]* jobs done.; nothing to do" "$ERR"
expect_eq "a finished state adds nothing to the output" "$(wc -l <"$T/out.jsonl")" "$PAGES"
"$SHOAL" state "$D" >"$T/state-done.txt" 2>&1
expect_grep "shoal state: finished" "run  *finished" "$T/state-done.txt"
expect_grep "shoal state: the dedup keys" "dedup keys $PAGES" "$T/state-done.txt"

# --- a second process on a state in use is refused, naming the first
D2=$T/state2
start_bg first "$SHOAL" "${CRAWL[@]}" --rate 200 --state-dir "$D2" --output "$T/o2.jsonl" \
    -- "$START"
FIRST=$BG_PID
wait_for "[ -s '$T/o2.jsonl' ]" 30
run_shoal second "${CRAWL[@]}" --state-dir "$D2" --output "$T/o2b.jsonl" -- "$START"
expect_rc "a second process on the same state: exit 4" 4
expect_grep "the refusal names the first's pid" "in use by another shoal .pid $FIRST." "$ERR"
"$SHOAL" state "$D2" >"$T/state-running.txt" 2>&1
expect_grep "shoal state: a running state names its process" "running .shoal pid $FIRST " \
    "$T/state-running.txt"

# --- the state copied mid-run, as a crash leaves it (the process stopped
# while the files are copied), resumes on its own
kill -STOP "$FIRST"
cp -a "$D2" "$T/copy"
cp "$T/o2.jsonl" "$T/copy.jsonl"
kill -CONT "$FIRST"
kill -KILL "$FIRST"
wait_exit "$FIRST" 10
resume_until_done copy "$T/copy" "$T/copy.jsonl"
expect_rc "the copied state resumes and finishes" 0
expect_eq "the copy's output: no url twice" "$(dups "$T/copy.jsonl")" 0
urls "$T/copy.jsonl" >"$T/copy.urls"
if cmp -s "$T/ref.urls" "$T/copy.urls"; then
    pass "the copy's output has every page"
else
    fail "the copy's output has every page" "$(diff "$T/ref.urls" "$T/copy.urls" | head -5)"
fi

# --- CSV output: a kill -9 and a resume keep one header and each row once
kill_at_random csv "$T/state3" "$T/out.csv" KILL
resume_until_done csv2 "$T/state3" "$T/out.csv"
expect_rc "a CSV crawl resumes" 0
expect_eq "one CSV header" "$(grep -c '^bytes,' "$T/out.csv")" 1
expect_eq "one CSV row per page" "$(($(wc -l <"$T/out.csv") - 1))" "$PAGES"
expect_eq "every CSV row has the header's columns, the url where the header says" \
    "$("$PY" -c 'import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
u = rows[0].index("url")
print(sum(1 for r in rows[1:] if len(r) != len(rows[0]) or not r[u].startswith("http")))' \
        "$T/out.csv")" 0

# --- a full disk: the run goes on, says the state could not be saved (exit
# 4), and the same command, once there is room, ends the crawl with every
# item once
if [ "$(id -u)" = 0 ] && mkdir -p "$T/small" &&
    mount -t tmpfs -o size=160k tmpfs "$T/small" 2>/dev/null; then
    run_shoal full "${CRAWL[@]}" --state-dir "$T/small/st" --output "$T/full.jsonl" -- "$START"
    expect_rc "a full disk under the state: exit 4" 4
    expect_grep "a full disk: said in the log" "state in .* cannot be saved .database or disk is full." \
        "$ERR"
    expect_grep "a full disk: the way on is said" "run the same command again once there is room" \
        "$ERR"
    mount -o remount,size=64m "$T/small"
    run_shoal full2 "${CRAWL[@]}" --state-dir "$T/small/st" --output "$T/full.jsonl" -- "$START"
    expect_rc "with room again, the same command finishes the crawl" 0
    expect_eq "after the full disk: no url twice" "$(dups "$T/full.jsonl")" 0
    expect_eq "after the full disk: every page" "$(urls "$T/full.jsonl" | wc -l)" "$PAGES"
    umount "$T/small"

    # a full disk for long: past --state-hold of unsaved changes the
    # workers take no new jobs; once there is room, the run goes on
    mount -t tmpfs -o size=160k tmpfs "$T/small"
    : >"$NGINX_LOG"
    start_bg hold "$SHOAL" "${CRAWL[@]}" --state-dir "$T/small/st" --state-hold 1 \
        --output "$T/hold.jsonl" -- "$START"
    HOLD_PID=$BG_PID
    if wait_for "grep -q 'workers take no new jobs' '$T/hold.err'" 60; then
        pass "a full disk past --state-hold: the hold is said"
        sleep 0.5 # the jobs in flight at the hold end
        A=$(wc -l <"$NGINX_LOG")
        sleep 1
        expect_eq "while held: no request is made" "$(wc -l <"$NGINX_LOG")" "$A"
        expect_lt "while held: the crawl is not over" "$A" "$PAGES"
    else
        fail "a full disk past --state-hold: the hold is said" "$(show_file "$T/hold.err" 5)"
    fi
    mount -o remount,size=64m "$T/small"
    wait_exit "$HOLD_PID" 120
    expect_eq "with room again, the held run goes on and finishes (exit 0)" "$BG_RC" 0
    expect_grep "the state is saved again: said" "is saved again" "$T/hold.err"
    expect_eq "after the hold: no url twice" "$(dups "$T/hold.jsonl")" 0
    expect_eq "after the hold: every page" "$(urls "$T/hold.jsonl" | wc -l)" "$PAGES"
    umount "$T/small"
else
    echo "# not root, or no tmpfs: the full-disk case is not run" >&2
fi

# --- damaged states: clear errors, never a crash
mkdir -p "$T/garbage"
head -c 16384 /dev/urandom >"$T/garbage/queue.db"
run_shoal garbage "${CRAWL[@]}" --state-dir "$T/garbage" -- "$START"
expect_rc "a garbage database: exit 4" 4
expect_grep "a garbage database: said plainly, with what to do" \
    "damaged or is not a shoal state.*move the directory away" "$ERR"
cp -a "$D" "$T/cut"
SIZE=$(stat -c %s "$T/cut/queue.db")
truncate -s $((SIZE / 3)) "$T/cut/queue.db"
run_shoal cut "${CRAWL[@]}" --state-dir "$T/cut" --output "$T/cut.jsonl" -- "$START"
if [ "$RC" = 4 ]; then
    expect_grep "a truncated database: a clear error naming it" "queue.db" "$ERR"
else
    # SQLite may still read what is left of it; then the run must be sound
    expect_le "a truncated database: a run or a clear error, not a crash (exit $RC)" "$RC" 1
fi
"$SHOAL" state "$T/garbage" >"$T/state-garbage.txt" 2>&1
expect_eq "shoal state on garbage: exit 4" "$?" 4
expect_grep "shoal state on garbage: a clear error" "damaged or is not a shoal state" \
    "$T/state-garbage.txt"

finish
