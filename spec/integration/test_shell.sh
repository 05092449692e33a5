#!/usr/bin/env bash
# test_shell.sh - `shoal shell URL`, driven through a pseudo-terminal
# (util-linux `script`): the page is loaded into res, an expression prints
# its value, fetch(url) loads another page, a statement runs, an error is
# shown and the prompt goes on, Ctrl-D (end of input) leaves with exit 0.
. "$(dirname "$0")/lib.sh"
RUN_LIMIT=60

if ! command -v script >/dev/null; then
    fail "script (util-linux) is installed" "apt-get install bsdutils"
    finish
fi
SITE=$T/site
mkdir -p "$SITE"
echo '<html><head><title>First page</title></head><body><a href="b.html">b</a></body></html>' \
    >"$SITE/a.html"
echo '<html><head><title>Second</title></head><body>two</body></html>' >"$SITE/b.html"
start_nginx "$SITE" || { fail "nginx starts"; finish; }
B=http://127.0.0.1:$NGINX_PORT

cat >"$T/input.txt" <<EOF
res.status
res.body:match("<title>(.-)</title>")
#crawl.links(res.body, res.url)
fetch("$B/b.html").status
res.body:match("<title>(.-)</title>")
doc:css("title")[1]:text()
x = 21
x * 2
nosuch.field
"still here"
EOF
timeout 30 script -qec "'$SHOAL' shell '$B/a.html'" /dev/null <"$T/input.txt" >"$T/raw.txt" 2>&1
RC=$?
tr -d '\r' <"$T/raw.txt" >"$T/shell.txt"
expect_eq "the shell leaves at end of input, exit 0" "$RC" 0
# each answer follows its prompt line
answer() { grep -A1 -F "shoal> $1" "$T/shell.txt" | sed -n 2p; }
expect_grep "the page is loaded first" "^200 $B/a.html, [0-9]+ bytes" "$T/shell.txt"
expect_eq "res.status" "$(answer 'res.status')" 200
expect_eq "a pattern on res.body" "$(answer 'res.body:match' | head -1)" '"First page"'
expect_eq "crawl is there" "$(answer '#crawl.links')" 1
expect_grep "fetch(url) loads another page" "^200 $B/b.html, " "$T/shell.txt"
expect_eq "... into res" "$(grep -A1 -F 'shoal> res.body:match' "$T/shell.txt" | sed -n 5p)" \
    '"Second"'
expect_eq "doc is the page, parsed (shoal.html)" "$(answer 'doc:css')" '"Second"'
expect_eq "a statement, then an expression using it" "$(answer 'x * 2')" 42
expect_grep "an error is shown" "^error: shell:1: attempt to index global 'nosuch'" "$T/shell.txt"
expect_eq "... and the prompt goes on" "$(answer '"still here"')" '"still here"'
expect_no_grep "no run summary after a shell" '^  jobs ' "$T/shell.txt"

finish
