# spec/integration/lib.sh - shared by the integration tests. Sourced, not run.
#
# Every test runs the real binary ($SHOAL) against real servers (nginx, small
# python3 servers written into the test's temp dir). What this file gives:
#
#   T                      the test's temp dir (mktemp -d), removed at exit
#                          unless KEEP_TMP=1
#   pass NAME / fail NAME [DETAIL...] / finish
#                          count results; finish prints "N passed, N failed"
#                          and exits non-zero when anything failed
#   expect_eq NAME GOT WANT, expect_ge/expect_le/expect_lt NAME GOT BOUND (numbers, floats ok)
#   expect_grep NAME REGEX FILE, expect_no_grep NAME REGEX FILE
#   wait_for CMD TIMEOUT   polls CMD (a shell string) until it succeeds or
#                          TIMEOUT seconds pass; never a bare sleep-and-hope
#   run_shoal TAG ARGS...  runs $SHOAL ARGS (bounded by RUN_LIMIT seconds),
#                          sets RC, OUT, ERR (files) and WALL (seconds)
#   start_bg TAG CMD...    starts CMD in the background with default SIGINT
#                          (as a terminal would), sets BG_PID; killed at exit
#   free_port              prints a port that was free a moment ago
#   wait_port PORT [SECS]  waits until a server accepts on 127.0.0.1:PORT
#   start_nginx ROOT [EXTRA_SERVER_CONF]
#                          serves ROOT on 127.0.0.1:$NGINX_PORT, access log
#                          "$NGINX_LOG" (method uri status host), retries ports
#   json FILE FILTER       jq -r FILTER FILE
#
# Tests never use the default port 8080: shoal gets --listen off or
# 127.0.0.1:0. Everything binds 127.0.0.1.

set -u

: "${SHOAL_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
if [ -z "${SHOAL:-}" ]; then
    for c in "${SHOAL_BUILD:-}/shoal" "$SHOAL_ROOT/build/shoal" /tmp/it-build/shoal; do
        [ -x "$c" ] && { SHOAL=$c; break; }
    done
fi
if [ -z "${SHOAL:-}" ] || [ ! -x "$SHOAL" ]; then
    echo "lib.sh: set SHOAL to the shoal binary (ctest does)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# A user's SHOAL_* settings must not leak into the tests: the option
# variables are read from --help so a new option is covered too.
for _v in $("$SHOAL" --help 2>/dev/null | grep -o 'SHOAL_[A-Z_]*' | sort -u); do
    unset "$_v"
done
unset _v
# Log lines go to stderr, where the tests read them, and no test leaves a
# logs/app.log behind; the logger's own tests set these themselves.
export SHOAL_LOG_FILE=off SHOAL_LOG_STDERR=info

PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
RUN_LIMIT=${RUN_LIMIT:-55}

T=$(mktemp -d "${TMPDIR:-/tmp}/shoal-it.XXXXXX")
chmod 755 "$T"
PASSED=0
FAILED=0
_BG_PIDS=()

_cleanup() {
    local p
    for p in "${_BG_PIDS[@]+"${_BG_PIDS[@]}"}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${_BG_PIDS[@]+"${_BG_PIDS[@]}"}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "# kept $T" >&2
    else
        rm -rf "$T"
    fi
}
trap _cleanup EXIT
trap 'echo "# interrupted"; exit 130' INT TERM

now() { echo "${EPOCHREALTIME/,/.}"; }

# fcalc EXPR: floating-point arithmetic (awk).
fcalc() { awk "BEGIN { printf \"%.6f\", $* }"; }

pass() {
    PASSED=$((PASSED + 1))
    echo "ok   - $1"
}

fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL - $1"
    shift
    local line
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/       /'
    done
}

# check NAME CMD...: passes when CMD succeeds.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name" "command failed: $*"; fi
}

expect_eq() {
    if [ "$2" == "$3" ]; then pass "$1"; else fail "$1" "expected: $3" "got:      $2"; fi
}

# expect_match NAME VALUE REGEX: VALUE matches the extended REGEX, whole.
expect_match() {
    if [[ $2 =~ ^($3)$ ]]; then pass "$1"; else fail "$1" "expected to match: $3" "got: $2"; fi
}

_fcmp() { awk -v a="$1" -v b="$3" "BEGIN { exit !(a+0 $2 b+0) }" 2>/dev/null && [ -n "$1" ]; }
expect_ge() { if _fcmp "$2" ">=" "$3"; then pass "$1"; else fail "$1" "expected >= $3, got '$2'"; fi; }
expect_gt() { if _fcmp "$2" ">" "$3"; then pass "$1"; else fail "$1" "expected > $3, got '$2'"; fi; }
expect_le() { if _fcmp "$2" "<=" "$3"; then pass "$1"; else fail "$1" "expected <= $3, got '$2'"; fi; }
expect_lt() { if _fcmp "$2" "<" "$3"; then pass "$1"; else fail "$1" "expected < $3, got '$2'"; fi; }

# show_file FILE: the last lines of FILE, indented, for failure details.
show_file() {
    [ -f "$1" ] || { echo "(no file $1)"; return; }
    tail -n "${2:-15}" "$1" | cut -c1-300 | sed 's/^/  | /'
}

expect_grep() {
    if grep -Eq -- "$2" "$3" 2>/dev/null; then
        pass "$1"
    else
        fail "$1" "no line matches /$2/ in $(basename "$3"):" "$(show_file "$3")"
    fi
}

expect_no_grep() {
    if grep -Eq -- "$2" "$3" 2>/dev/null; then
        fail "$1" "unexpected match for /$2/ in $(basename "$3"):" "$(grep -E -m3 -- "$2" "$3" | cut -c1-300)"
    else
        pass "$1"
    fi
}

# expect_rc NAME WANT: checks $RC from the last run_shoal, showing stderr on failure.
expect_rc() {
    if [ "$RC" == "$2" ]; then
        pass "$1"
    else
        fail "$1" "expected exit code $2, got $RC (stderr tail:)" "$(show_file "$ERR" 10)"
    fi
}

finish() {
    # Under ASan/UBSan builds a report is a bug whatever the exit code was.
    local reports=()
    mapfile -t reports < <(grep -lE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error: |WARNING: ThreadSanitizer' \
        "$T"/*.err "$T"/*/*.err 2>/dev/null)
    if [ ${#reports[@]} -gt 0 ]; then
        fail "no sanitizer reports on shoal's stderr" "$(grep -hE -m3 'Sanitizer|runtime error: ' "${reports[@]}" | head -n 6)"
    else
        pass "no sanitizer reports on shoal's stderr"
    fi
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && exit 0
    exit 1
}

# wait_for CMD TIMEOUT: 0 once the shell command CMD succeeds, 1 after
# TIMEOUT seconds without success.
wait_for() {
    local cmd=$1 timeout=$2
    local deadline
    deadline=$(fcalc "$(now) + $timeout")
    while ! eval "$cmd" >/dev/null 2>&1; do
        if _fcmp "$(now)" ">" "$deadline"; then
            return 1
        fi
        sleep 0.05
    done
    return 0
}

# wait_exit PID TIMEOUT: waits for a background child to end; sets BG_RC.
# Returns 1 (and leaves it running) if it did not end in time.
wait_exit() {
    local pid=$1 timeout=$2
    if ! wait_for "! kill -0 $pid" "$timeout"; then
        BG_RC=timeout
        return 1
    fi
    wait "$pid"
    BG_RC=$?
    return 0
}

json() { jq -r "$2" "$1" 2>/dev/null; }

# run_shoal TAG ARGS...: $SHOAL ARGS with stdin from /dev/null; a hung
# process is killed after RUN_LIMIT seconds (RC is then 124 or 137).
run_shoal() {
    local tag=$1
    shift
    OUT=$T/$tag.out
    ERR=$T/$tag.err
    local t0
    t0=$(now)
    timeout -k 3 "$RUN_LIMIT" "$SHOAL" "$@" >"$OUT" 2>"$ERR" </dev/null
    RC=$?
    WALL=$(fcalc "$(now) - $t0")
    if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
        echo "# $tag: shoal did not finish within ${RUN_LIMIT}s and was killed" >&2
    fi
}

# start_bg TAG CMD...: CMD in the background, stdout/stderr to $T/TAG.out
# and $T/TAG.err. Non-interactive bash starts background jobs with SIGINT
# ignored; env --default-signal undoes that, as for a program started from a
# terminal.
start_bg() {
    local tag=$1
    shift
    local envp=()
    if env --default-signal=INT true 2>/dev/null; then
        envp=(env --default-signal=INT,QUIT)
    fi
    "${envp[@]}" "$@" >"$T/$tag.out" 2>"$T/$tag.err" </dev/null &
    BG_PID=$!
    _BG_PIDS+=("$BG_PID")
}

free_port() {
    "$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_nginx ROOT [EXTRA]: nginx in the foreground (daemon off, one
# process), everything in $T/nginx; EXTRA is spliced into the server block.
# Sets NGINX_PORT, NGINX_LOG, NGINX_PID. Returns 1 if it never came up.
start_nginx() {
    local root=$1 extra=${2:-}
    local dir=$T/nginx
    mkdir -p "$dir/tmp"
    NGINX_LOG=$dir/access.log
    for _ in 1 2 3 4 5; do
        NGINX_PORT=$(free_port)
        : >"$NGINX_LOG"
        cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    types { text/html html; text/plain txt; application/json json; }
    default_type application/octet-stream;
    log_format paths '\$request_method \$request_uri \$status \$host';
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        server_name _;
        root $root;
        access_log $NGINX_LOG paths;
        $extra
    }
}
EOF
        nginx_up "$dir" "$NGINX_LOG" "$NGINX_PORT" && return 0
    done
    echo "# nginx did not start:" >&2
    cat "$dir/error.log" "$dir/stdout" >&2 2>/dev/null
    return 1
}

# nginx_up DIR LOG PORT...: nginx on DIR/nginx.conf (prefix DIR) until every
# PORT answers /shoal-probe; then LOG, its access log, emptied once the
# probes' lines are in (nginx writes a request's line after answering it,
# so curl may be back first). Sets NGINX_PID. Returns 1, nginx stopped, if
# it died meanwhile (a port taken since it was picked): pick others, again.
nginx_up() {
    local dir=$1 log=$2 port
    shift 2
    nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout" 2>&1 &
    NGINX_PID=$!
    _BG_PIDS+=("$NGINX_PID")
    for port in "$@"; do
        if ! wait_for "curl -s -o /dev/null --max-time 1 http://127.0.0.1:$port/shoal-probe ||
            ! kill -0 $NGINX_PID" 10 || ! kill -0 "$NGINX_PID" 2>/dev/null; then
            kill "$NGINX_PID" 2>/dev/null
            wait "$NGINX_PID" 2>/dev/null
            return 1
        fi
    done
    wait_for "[ \$(grep -c shoal-probe '$log') -ge $# ]" 5
    : >"$log"
}

# wait_port PORT [TIMEOUT]: waits until something accepts on 127.0.0.1:PORT.
wait_port() {
    wait_for "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", $1)).close()'" "${2:-10}"
}

# server_port FILE: the port shoal printed in "serving http://HOST:PORT/".
server_port() {
    sed -n 's#.*serving http://[^ ]*:\([0-9][0-9]*\)/.*#\1#p' "$1" | head -n1
}
