#!/usr/bin/env bash
# test_install.sh - `cmake --install BUILD --prefix P` puts the binary in
# P/bin, the man page in P/share/man/man1 (where man finds it through
# MANPATH) and the lua-language-server annotations in
# P/share/shoal/lua-types/, and the installed binary runs on its own.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1

BUILD=${SHOAL_BUILD:-$(dirname "$SHOAL")}
P=$T/prefix
if cmake --install "$BUILD" --prefix "$P" >install.log 2>&1; then
    pass "cmake --install into a fresh prefix"
else
    fail "cmake --install into a fresh prefix" "$(tail -5 install.log)"
    finish
fi

if [ -x "$P/bin/shoal" ]; then pass "P/bin/shoal is executable"; else fail "P/bin/shoal is executable"; fi
"$P/bin/shoal" version >version.txt 2>&1
expect_eq "the installed binary runs 'version'" "$?" 0
expect_grep "it says its version" '^shoal [0-9]+\.[0-9]+\.[0-9]+ ' version.txt
# from another directory, with no source tree in reach: the Lua runtime and
# shoal.crawl are inside the binary
mkdir elsewhere && cp "$SHOAL_ROOT/examples/crawl.lua" elsewhere/
(cd elsewhere && "$P/bin/shoal" check crawl.lua >check.txt 2>&1)
expect_eq "the installed binary checks a script" "$?" 0

expect_eq "P/share/man/man1/shoal.1 is the build's page" \
    "$(cmp "$P/share/man/man1/shoal.1" "$BUILD/shoal.1" 2>&1)" ""
expect_eq "man finds it through MANPATH" \
    "$(MANPATH=$P/share/man man -w shoal 2>&1)" "$P/share/man/man1/shoal.1"

L=$P/share/shoal/lua-types
if [ -s "$L/shoal.lua" ] && [ -s "$L/shoal/crawl.lua" ]; then
    pass "the annotations are in P/share/shoal/lua-types/"
else
    fail "the annotations are in P/share/shoal/lua-types/" "$(find "$P/share" | head)"
fi
expect_eq "P/share/shoal/lua-types/ is lua/types/" "$(diff -r "$L" "$SHOAL_ROOT/lua/types" 2>&1)" ""

finish
