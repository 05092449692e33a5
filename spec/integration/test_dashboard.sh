#!/usr/bin/env bash
# test_dashboard.sh - `shoal dashboard SCRIPT` prints a Grafana dashboard
# with a panel per script metric (rate for counters, quantiles for
# histograms, value for gauges; help as description) whose queries parse as
# PromQL: promtool checks them, wrapped as recording rules.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

run_shoal dash dashboard "$SHOAL_ROOT/examples/site_metrics.lua"
expect_eq "exit code" "$RC" 0
if jq -e . "$OUT" >/dev/null 2>&1; then pass "valid JSON"; else fail "valid JSON" "$(head -c 300 "$OUT")"; fi
# for people and for diffs: indented, keys in a stable (sorted) order
expect_ge "pretty-printed: one value per line (> 100 lines)" "$(wc -l <"$OUT")" 100
expect_grep "pretty-printed: nested keys indented" '^      "gridPos": \{$' "$OUT"
expect_eq "keys sorted at every level" "$(jq -c . "$OUT" | md5sum)" "$(jq -cS . "$OUT" | md5sum)"
cp "$OUT" dash1.json
run_shoal dash2 dashboard "$SHOAL_ROOT/examples/site_metrics.lua"
if cmp -s dash1.json "$OUT"; then pass "the same script gives the same bytes"; else fail "the same script gives the same bytes" "$(diff dash1.json "$OUT" | head -5)"; fi
cp dash1.json "$OUT"
expect_eq "title" "$(json "$OUT" .title)" "shoal: site_metrics"
expect_eq "prometheus datasource variable" \
    "$(json "$OUT" '.templating.list[0] | "\(.type) \(.query)"')" "datasource prometheus"
# p TITLE FILTER: FILTER applied to the panel with that title
p() { jq -r --arg t "$1" ".panels[] | select(.title == \$t) | $2" "$OUT"; }
expect_eq "counter panel: per-second rate by its labels" \
    "$(p 'site_page_checks_total per second' '.targets[0].expr')" \
    'sum by (site, code) (rate(site_page_checks_total[$__rate_interval]))'
expect_eq "counter panel: help as description" \
    "$(p 'site_page_checks_total per second' .description)" "Page checks, by site and HTTP status"
expect_eq "histogram panel: three quantiles" \
    "$(p 'site_page_bytes (p50, p95, p99)' '.targets | length')" 3
expect_eq "histogram panel: p95 over buckets" \
    "$(p 'site_page_bytes (p50, p95, p99)' '.targets[1].expr')" \
    'histogram_quantile(0.95, sum by (site, le) (rate(site_page_bytes_bucket[$__rate_interval])))'
expect_eq "histogram panel: bytes unit" \
    "$(p 'site_page_bytes (p50, p95, p99)' .fieldConfig.defaults.unit)" bytes
expect_eq "gauge panel: the value" "$(p site_last_check_seconds '.targets[0].expr')" \
    site_last_check_seconds
expect_eq "panels do not overlap" \
    "$(jq '[.panels[] | .gridPos | "\(.x),\(.y)"] | (length == (unique | length))' "$OUT")" true

# every query parses as PromQL
jq -r '.panels[].targets[]?.expr' "$OUT" | sed 's/\$__rate_interval/5m/g' >exprs.txt
expect_ge "queries found" "$(wc -l <exprs.txt)" 8
{
    echo "groups:"
    echo "  - name: dashboard"
    echo "    rules:"
    n=0
    while IFS= read -r e; do
        n=$((n + 1))
        printf '      - record: q%d\n        expr: %s\n' "$n" "$(jq -Rn --arg e "$e" '$e')"
    done <exprs.txt
} >rules.yml
if ! command -v promtool >/dev/null; then
    fail "promtool parses every query" "promtool is missing (apt-get install prometheus; scripts/test installs it)"
elif promtool check rules rules.yml >promtool.out 2>&1; then
    pass "promtool parses every query"
else
    fail "promtool parses every query" "$(head -5 promtool.out)"
fi

printf 'shoal.metrics.counter("bad", "x")\nfunction handle() end\n' >bad.lua
run_shoal bad dashboard bad.lua
expect_eq "a bad declaration: exit 3" "$RC" 3
expect_grep "with file:line" "bad.lua:1: .*must be named" "$ERR"
finish
