#!/usr/bin/env bash
# test_html_memory.sh - shoal.html's memory on a 100 MB page is bounded and
# given back: libxml2's tree is outside --memory (see docs/SCRIPTING.md), so
# this measures it. One parse of the page, and three in a row (each freed),
# peak RSS from /usr/bin/time: the three cost about what one does, and one
# stays within a fixed multiple of the page. Under ASan (slower, hungrier)
# the page is 20 MB.
. "$(dirname "$0")/lib.sh"
RUN_LIMIT=600

MB=100
FACTOR=40 # peak RSS over page size, measured 23 on a 100 MB page
if ldd "$SHOAL" 2>/dev/null | grep -q libasan; then
    MB=20
    FACTOR=120
fi
"$PY" - "$T/big.html" "$MB" <<'EOF'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
line = '<div class="r"><p>some text here</p><a href="/x/%d">link</a></div>\n'
with open(path, "w") as f:
    f.write("<html><head><title>big</title></head><body>\n")
    n = size = 0
    while size < mb << 20:
        s = line % n
        f.write(s)
        size += len(s)
        n += 1
    f.write("</body></html>\n")
EOF
LINKS=$("$PY" -c "print(sum(1 for l in open('$T/big.html') if '<a href' in l))")

cat >"$T/big.lua" <<'EOF'
function produce(push) push({ file = shoal.args[1], rounds = tonumber(shoal.args[2]) }) end
function handle(job)
  for round = 1, job.rounds do
    local f = assert(io.open(job.file, "rb"))
    local body = f:read("*a")
    f:close()
    local doc = shoal.html.parse(body)
    body = nil
    shoal.emit({ round = round, links = #doc:css("a") })
    doc:free()
    collectgarbage()
  end
end
EOF
# peak ROUNDS: runs them; sets RC, PEAK (KiB) and ERR
peak() {
    local rounds=$1
    ERR=$T/err.$rounds
    /usr/bin/time -f "%M" -o "$T/time.$rounds" timeout -k 3 "$RUN_LIMIT" "$SHOAL" run "$T/big.lua" \
        --workers 1 --listen off --quiet --log-file off --timeout 500 --output "$T/out.$rounds" \
        -- "$T/big.html" "$rounds" >/dev/null 2>"$ERR"
    RC=$?
    PEAK=$(tail -n 1 "$T/time.$rounds")
}
peak 1
ONE=$PEAK
expect_rc "one parse of a $MB MB page: exit 0" 0
peak 3
THREE=$PEAK
expect_rc "three in a row: exit 0" 0
expect_eq "every link of the page found, each round" \
    "$(jq -r .links "$T/out.3" | sort -u | tr '\n' ' ')" "$LINKS "
echo "# peak RSS: one parse $((ONE / 1024)) MiB, three $((THREE / 1024)) MiB, page $MB MiB"
expect_le "one parse: peak RSS within ${FACTOR}x the page" "$ONE" $((MB * 1024 * FACTOR))
expect_le "three parses, each freed: peak RSS within 1.5x one parse's" "$THREE" $((ONE * 3 / 2))

finish
