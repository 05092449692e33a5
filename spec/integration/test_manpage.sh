#!/usr/bin/env bash
# test_manpage.sh - the build's shoal.1 is made from `shoal --help` by
# cmake/manpage.sh: it renders with man and groff without a warning, has the
# sections a man page has, and names every option, SHOAL_* variable and
# exit code that --help lists. An option added to engine/app/cli.c reaches the
# page by itself, and a --help layout the generator does not know stops the
# build instead of making a page with holes.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

PAGE=${SHOAL_BUILD:-$(dirname "$SHOAL")}/shoal.1
GEN=$SHOAL_ROOT/cmake/manpage.sh
if [ ! -s "$PAGE" ]; then
    fail "the build made shoal.1" "no $PAGE (cmake --build makes it)"
    finish
fi
pass "the build made shoal.1"
"$SHOAL" --help >help.txt

# render PAGE OUT: man's text of PAGE into OUT, its warnings into OUT.err
render() {
    LC_ALL=C.UTF-8 MANWIDTH=100 MAN_KEEP_FORMATTING= man --warnings -l "$1" >"$2" 2>"$2.err"
}
render "$PAGE" page.txt
expect_eq "man -l renders it" "$?" 0
expect_eq "man --warnings: none" "$(cat page.txt.err)" ""
groff -man -Tutf8 -ww -z "$PAGE" 2>groff.err
expect_eq "groff -man -ww: no warnings" "$(cat groff.err)" ""

for s in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT "EXIT STATUS" EXAMPLES FILES "SEE ALSO"; do
    expect_grep "section $s" "^$s\$" page.txt
done
expect_grep "NAME says what it is" '^ +shoal - scripted jobs' page.txt

# section NAME: the rendered lines of that section
section() { awk -v s="$1" '/^[A-Z]/ { on = ($0 == s); next } on' page.txt; }
section OPTIONS >options.txt
section ENVIRONMENT >environment.txt
section "EXIT STATUS" >exit.txt

missing=
n=0
for o in $(grep -oE '^  (-h, )?--[a-z0-9-]+' help.txt | grep -oE -- '--[a-z0-9-]+'); do
    n=$((n + 1))
    grep -qE -- "^ +(-h, )?$o( |\$)" options.txt || missing="$missing $o"
done
expect_ge "options read from --help" "$n" 30
expect_eq "every option of --help is in OPTIONS" "$missing" ""
missing=
for v in $(grep -oE '^ +\[SHOAL_[A-Z0-9_]+\]' help.txt | tr -d ' []'); do
    grep -qE "^ +$v\$" environment.txt || missing="$missing $v"
done
expect_eq "every SHOAL_* variable of --help is in ENVIRONMENT" "$missing" ""
missing=
for c in $(sed -n '/^Exit codes:/,/^$/p' help.txt | grep -oE '^  [0-9]+'); do
    grep -qE "^ +$c +[a-z]" exit.txt || missing="$missing $c"
done
expect_eq "every exit code of --help is in EXIT STATUS" "$missing" ""

# The page is what the generator makes of this binary's --help today.
sh "$GEN" "$SHOAL" fresh.1
expect_eq "shoal.1 is up to date with --help" \
    "$(diff <(sed 1d "$PAGE") <(sed 1d fresh.1) | head -5)" ""

# A new option flows in: a stand-in binary whose --help has one more.
cat >fake-shoal <<FAKE
#!/bin/sh
"$SHOAL" --help | sed 's/^  -h, --help /  --output FILE              write each shoal.emit(item) as a JSON line to FILE\n                             [SHOAL_OUTPUT]\n&/'
FAKE
chmod +x fake-shoal
if sh "$GEN" ./fake-shoal new.1 2>gen.err; then
    render new.1 new.txt
    expect_grep "a new option reaches OPTIONS" '^ +--output FILE$' new.txt
    expect_grep "its variable reaches ENVIRONMENT" '^ +SHOAL_OUTPUT$' new.txt
else
    fail "the generator takes a new option" "$(cat gen.err)"
fi
printf '#!/bin/sh\n"%s" --help | sed "s/^Exit codes:/Exit codes:\\n  what is this?/"\n' "$SHOAL" >odd-shoal
chmod +x odd-shoal
if sh "$GEN" ./odd-shoal odd.1 2>gen.err; then
    fail "an unknown --help layout stops the generator" "it wrote odd.1"
else
    expect_grep "an unknown --help layout stops the generator, quoting the line" \
        'layout this script does not know: +what is this' gen.err
fi
if [ -e odd.1 ] || [ -e odd.1.tmp ]; then fail "no half-made page is left"; else pass "no half-made page is left"; fi

finish
