# spec/integration/polite/polite.sh - shared by the polite-crawl tests
# (test_polite_*.sh). Sourced after lib.sh, not run.
#
# One nginx serves several sites written by gen_site.py, each on its own
# loopback port (a host of its own to a crawler: host:port):
#
#   polite_site NAME DIR      adds a server for DIR (gen_site.py's OUT):
#                             root DIR/www, DIR/server.conf in its server
#                             block, DIR/http.conf in the http block
#   polite_nginx_start        starts nginx with every site added; sets
#                             PORT_<NAME> for each and POLITE_LOG; returns 1
#                             if it never came up (ports are picked again on
#                             a clash, five times)
#   polite_log_clear          empties the access log between runs
#   polite_log_take FILE      copies the access log to FILE once nginx has
#                             logged every request it answered (a probe's
#                             line is there), the probe's line left out
#
#   polite_check LABEL ARGS   runs check_access.py ARGS; each rule it reports
#                             becomes a pass or a fail "LABEL: rule: ..."
#   polite_needs FLAG...      a fail for each flag `shoal run --help` lacks:
#                             the tests run before the features they check
#                             (issue 14), and say so first
#
# The access log, one line per request, for check_access.py:
#   $msec $request_time $server_port $status $body_bytes_sent
#   "$sent_http_retry_after" "$request_method" "$request_uri" "$http_user_agent"
# $msec is when nginx logged the request (its end); its start is $msec -
# $request_time (both to the millisecond).

POLITE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POLITE_NAMES=()
declare -A POLITE_DIRS=()

polite_site() {
    POLITE_NAMES+=("$1")
    POLITE_DIRS[$1]=$2
}

polite_nginx_start() {
    local dir=$T/polite-nginx name port try
    mkdir -p "$dir/tmp"
    POLITE_LOG=$dir/access.log
    for try in 1 2 3 4 5; do
        {
            cat <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    types { text/html html; text/plain txt; application/octet-stream bin; }
    default_type application/octet-stream;
    log_format polite '\$msec \$request_time \$server_port \$status \$body_bytes_sent '
                      '"\$sent_http_retry_after" "\$request_method" "\$request_uri" '
                      '"\$http_user_agent"';
    keepalive_requests 100000;
EOF
            for name in "${POLITE_NAMES[@]}"; do
                cat "${POLITE_DIRS[$name]}/http.conf"
            done
            for name in "${POLITE_NAMES[@]}"; do
                port=$(free_port)
                printf -v "PORT_$name" '%s' "$port"
                cat <<EOF
    server {
        listen 127.0.0.1:$port;
        server_name _;
        root ${POLITE_DIRS[$name]}/www;
        access_log $POLITE_LOG polite;
$(sed 's/^/        /' "${POLITE_DIRS[$name]}/server.conf")
    }
EOF
            done
            echo "}"
        } >"$dir/nginx.conf"
        local ports=() n
        for n in "${POLITE_NAMES[@]}"; do
            port=PORT_$n
            ports+=("${!port}")
        done
        : >"$POLITE_LOG"
        nginx_up "$dir" "$POLITE_LOG" "${ports[@]}" && return 0
    done
    echo "# nginx did not start:" >&2
    cat "$dir/error.log" "$dir/stdout" >&2 2>/dev/null
    return 1
}

polite_log_clear() {
    : >"$POLITE_LOG"
}

# nginx logs a request just after its last byte went out: a crawler that
# exits at once may be quicker. One process answers in turn, so once a later
# probe is logged, so is everything before it.
polite_log_take() {
    local port=PORT_${POLITE_NAMES[0]}
    curl -s -o /dev/null --max-time 5 "http://127.0.0.1:${!port}/polite-probe-$$"
    wait_for "grep -q 'polite-probe-$$' '$POLITE_LOG'" 5
    grep -v "polite-probe-$$" "$POLITE_LOG" >"$1"
}

polite_check() {
    local label=$1 line rule="" details=()
    shift
    "$PY" "$POLITE_DIR/check_access.py" "$@" >"$T/check-$label.txt" 2>&1
    local rc=$?
    _polite_flush() {
        [ -n "$rule" ] && fail "$label: $rule" "${details[@]+"${details[@]}"}"
        rule=""
        details=()
    }
    while IFS= read -r line; do
        case $line in
            "ok   "*) _polite_flush; pass "$label: ${line#ok   }" ;;
            "FAIL "*) _polite_flush; rule=${line#FAIL } ;;
            "       "*) details+=("${line#       }") ;;
            "# "*) _polite_flush; echo "$line" ;;
        esac
    done <"$T/check-$label.txt"
    _polite_flush
    if [ "$rc" -ge 2 ]; then
        fail "$label: check_access.py ran" "$(show_file "$T/check-$label.txt" 10)"
    fi
    return "$rc"
}

polite_needs() {
    local help flag
    help=$("$SHOAL" --help 2>&1)
    for flag in "$@"; do
        if ! grep -qE -- "^ +$flag( |$)" <<<"$help"; then
            fail "shoal run knows $flag (issue 14: not in this build yet)"
        fi
    done
}
