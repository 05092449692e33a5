#!/usr/bin/env bash
# test_annotations.sh - lua/types/ (the lua-language-server annotations,
# installed as share/shoal/lua-types/) declares every function a script can
# reach through the real `shoal` module: the built binary loads
# annotations/api_names.lua with `shoal check`, which walks the module, the
# metric handles and require "shoal.crawl" in a worker's state and prints
# their names. A function with no annotation fails the test, each named;
# an annotation of a function the module lacks (yet) is only a warning.
# Each annotation has a line of doc and a ---@param per parameter, and
# shoal.Options has a field for every key of the script's `options`.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

TYPES=$SHOAL_ROOT/lua/types

# declared DIR: the dotted names the annotation files under DIR declare.
# `function shoal.http.get(` is shoal.http.get; a method or function of a
# table declared as `---@class NAME` + `local X = {}` (or `X = {}`) is
# NAME:m or NAME.f (`function Counter:inc(` is shoal.Counter:inc).
declared() {
    find "$1" -name '*.lua' | sort | while read -r f; do
        awk '
            /^---@class / { cls = $2; next }
            /^---/ { next }
            match($0, /^(local )?[A-Za-z_][A-Za-z0-9_]* = \{\}/) {
                v = $0; sub(/^local /, "", v); sub(/ .*/, "", v)
                if (cls != "") as[v] = cls
            }
            match($0, /^function [A-Za-z_][A-Za-z0-9_.:]*\(/) {
                n = substr($0, 10, RLENGTH - 10)
                head = n; sub(/[.:].*/, "", head)
                if (head in as) n = as[head] substr(n, length(head) + 1)
                print n
            }
            { cls = "" }' "$f"
    done | grep '[.:]' | sort -u # hooks (init, handle, ...) are globals the script defines
}

# Every annotation file is Lua that loads.
for f in $(find "$TYPES" -name '*.lua' | sort); do
    if luajit -e "assert(loadfile(arg[1]))" "$f" 2>"$T/load.err"; then
        pass "loads: ${f#"$SHOAL_ROOT"/}"
    else
        fail "loads: ${f#"$SHOAL_ROOT"/}" "$(cat "$T/load.err")"
    fi
done
expect_grep "the module's file is ---@meta" '^---@meta' "$TYPES/shoal.lua"

# Each declared function has a line of doc and a ---@param per parameter.
undocumented=$(find "$TYPES" -name '*.lua' | sort | xargs awk '
    FNR == 1 { doc = 0; delete params }
    /^---@param / { params[$2] = 1; sub(/\?$/, "", $2); params[$2] = 1; next }
    /^---@/ { next }
    /^---[^@-]/ { doc = 1; next }
    match($0, /^function [A-Za-z_][A-Za-z0-9_.:]*\(/) {
        name = substr($0, 10, RLENGTH - 10)
        args = substr($0, RLENGTH + 1); sub(/\).*/, "", args)
        n = split(args, a, /, */)
        why = doc ? "" : " no doc line"
        for (i = 1; i <= n; i++) if (a[i] != "" && a[i] != "..." && !(a[i] in params)) why = why " no @param " a[i]
        if (why != "") print FILENAME ": " name ":" why
    }
    { doc = 0; delete params }')
expect_eq "every annotation has a doc line and its @params" "$undocumented" ""

run_shoal names check "$SHOAL_ROOT/spec/integration/annotations/api_names.lua"
expect_eq "the walker runs in a real state" "$RC" 0
sed -n 's/^api //p' "$OUT" | sort -u >"$T/module.txt"
expect_ge "functions found in the module" "$(wc -l <"$T/module.txt")" 30
expect_grep "metric handle methods found" '^shoal\.Counter:inc$' "$T/module.txt"
expect_grep "crawl's functions found" '^shoal\.crawl\.links$' "$T/module.txt"

declared "$TYPES" >"$T/declared.txt"
missing=$(comm -23 "$T/module.txt" "$T/declared.txt")
if [ -z "$missing" ]; then
    pass "every function of the module has an annotation"
else
    fail "every function of the module has an annotation" \
        "in the module, not in lua/types/:" $missing
fi
extra=$(comm -13 "$T/module.txt" "$T/declared.txt")
[ -n "$extra" ] && echo "warning: annotated but not in the module (yet?):" $extra >&2

# Every key the script's `options` table accepts is a field of
# shoal.Options: shoal check lists the known ones when given an unknown.
printf 'options = { zz_not_an_option = 1 }\nfunction handle() end\n' >opts.lua
run_shoal opts check opts.lua
known=$(grep -o 'known: [a-z_, ]*' "$ERR" "$OUT" | head -1 | sed 's/.*known: //; s/, /\n/g' | sort)
expect_ge "shoal check lists the known options" "$(printf '%s\n' "$known" | grep -c .)" 10
fields=$(sed -n '/^---@class shoal.Options/,/^$/s/^---@field \([a-z_]*\)?\{0,1\} .*/\1/p' "$TYPES/shoal.lua" | sort)
expect_eq "every option a script may set is a field of shoal.Options" \
    "$(comm -23 <(printf '%s\n' "$known") <(printf '%s\n' "$fields") | tr '\n' ' ')" ""

# The check itself can fail: with one annotation gone, it names it.
cp -r "$TYPES" "$T/types"
sed -i '/^function shoal\.http\.request(/d' "$T/types/shoal.lua"
expect_eq "a deleted annotation is reported" \
    "$(comm -23 "$T/module.txt" <(declared "$T/types"))" "shoal.http.request"
sed -i '/^function Gauge:dec(/d' "$T/types/shoal.lua"
expect_eq "a deleted method annotation is reported" \
    "$(comm -23 "$T/module.txt" <(declared "$T/types") | tr '\n' ' ')" \
    "shoal.Gauge:dec shoal.http.request "

finish
