#!/bin/sh
# cmake/manpage.sh SHOAL OUT - writes the man page shoal.1 to OUT from the
# built binary's own `--help`, so the page lists exactly the options,
# variables and exit codes that --help does (engine/app/cli.c's table is the
# one source). Run at build time by CMakeLists.txt.
#
# It reads --help's layout: a title line "shoal VERSION - what it is", then
# blocks opened by a line ending in ":" (Usage, Options, Exit codes,
# Examples), and paragraphs of prose after a blank line (NOTES). Options are "  --flag ARG   help" with "[SHOAL_VAR]" on the
# next line; exit codes "  N    meaning". A line that fits none of these
# stops the build with its text, so a change to the layout is noticed.
# help2man would do most of this, but it wants --version and makes its own
# sections from the headings: no ENVIRONMENT, EXIT STATUS or FILES.
set -eu
shoal=$1
out=$2
help=$("$shoal" --help) || { echo "manpage.sh: $shoal --help failed" >&2; exit 1; }
if ! printf '%s\n' "$help" | awk -v date="$(date -u +%Y-%m-%d -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")" '
# roff text: backslashes shown as such, "-" of a flag as a real hyphen-minus,
# no line starting with a control character
function esc(s) {
    gsub(/\\/, "\\e", s)
    s = hyphen_minus(s)
    if (s ~ /^[.\047]/) s = "\\&" s
    return s
}
# every "-" of a word that starts with "-" (--log-file, -h, --): a hyphen-minus
# a reader can copy; the hyphens inside ordinary words stay hyphens
function hyphen_minus(s,    r, c, t) {
    r = ""
    while (match(s, /-[A-Za-z0-9-]*/)) {
        c = RSTART > 1 ? substr(s, RSTART - 1, 1) : ""
        r = r substr(s, 1, RSTART - 1)
        if (c ~ /^[A-Za-z0-9]$/) r = r substr(s, RSTART, RLENGTH)
        else { t = substr(s, RSTART, RLENGTH); gsub(/-/, "\\-", t); r = r t }
        s = substr(s, RSTART + RLENGTH)
    }
    return r s
}
function flagtext(f) { gsub(/-/, "\\-", f); return f }
function flush_item() {
    if (item == "") return
    if (block == "usage") usage[++nusage] = item SUBSEP text
    else if (block == "options") { opt[++nopt] = item; ohelp[nopt] = text; oenv[nopt] = env }
    else if (block == "exit") { code[++ncode] = item; chelp[ncode] = text }
    item = ""; text = ""; env = ""
}
function bad(line) {
    printf "manpage.sh: --help line %d has a layout this script does not know: %s\n", NR, line > "/dev/stderr"
    failed = 1
    exit 1
}
NR == 1 {
    if (!match($0, / - /)) bad($0)
    title = substr($0, 1, RSTART - 1)
    summary = substr($0, RSTART + 3)
    split(title, tw, " ")
    version = tw[2]
    next
}
/^$/ { flush_item(); blank = 1; next }
{ wasblank = blank; blank = 0 }
/^[^ ].*:$/ || /^[^ ]/ {
    flush_item()
    if ($0 ~ /^Usage:/) block = "usage"
    else if ($0 ~ /^Options/) { block = "options"; preamble = $0 }
    else if ($0 ~ /^Exit codes:/) block = "exit"
    else if ($0 ~ /^Examples:/) block = "examples"
    else if (block == "options" && item == "" && nopt == 0) { preamble = preamble " " $0 }
    else if (block == "prose" && !wasblank) { note[nnote] = note[nnote] " " $0 }
    else if (wasblank) { block = "prose"; note[++nnote] = $0 }
    else bad($0)
    next
}
block == "usage" {
    if ($0 ~ /^  shoal /) {
        flush_item()
        line = substr($0, 3)
        if (match(line, /  +/)) { item = substr(line, 1, RSTART - 1); text = substr(line, RSTART + RLENGTH) }
        else { item = line; text = "" }
    } else if (item != "") { sub(/^ +/, ""); text = text " " $0 }
    else bad($0)
    next
}
block == "options" {
    if ($0 ~ /^  -/) {
        flush_item()
        line = substr($0, 3)
        # two spaces end the flag and its argument; one, when they fill the column
        if (!match(line, /  +/) && !match(line, /^(-[a-z], )?--[a-z0-9-]+( [A-Z][A-Z0-9_]*)? /))
            bad($0)
        if (substr(line, RSTART, 1) == " ") {
            item = substr(line, 1, RSTART - 1); text = substr(line, RSTART + RLENGTH)
        } else {
            item = substr(line, 1, RLENGTH - 1); text = substr(line, RLENGTH + 1)
        }
        sub(/^ +/, "", text)
    } else if ($0 ~ /^ +\[[A-Z0-9_]+\]$/) {
        env = $0; gsub(/[] []/, "", env)
    } else if (item != "") { sub(/^ +/, ""); text = text " " $0 }
    else bad($0)
    next
}
block == "exit" {
    if ($0 ~ /^  [0-9]+ /) {
        flush_item()
        item = $1; text = $0; sub(/^ +[0-9]+ +/, "", text)
    } else if (item != "") { sub(/^ +/, ""); text = text " " $0 }
    else bad($0)
    next
}
block == "examples" { sub(/^ +/, ""); example[++nex] = $0; next }
{ bad($0) }
END {
    if (failed) exit 1
    flush_item()
    if (nopt == 0 || nusage == 0 || ncode == 0) {
        print "manpage.sh: --help has no Usage, Options or Exit codes block" > "/dev/stderr"
        exit 1
    }
    printf ".TH SHOAL 1 %s \"shoal %s\" \"User Commands\"\n", date, version
    print ".nh"
    print ".ad l"
    print ".SH NAME"
    print "shoal \\- " esc(summary)
    print ".SH SYNOPSIS"
    for (i = 1; i <= nusage; i++) {
        split(usage[i], u, SUBSEP)
        n = split(u[1], w, " ")
        s = "\\fB" w[1] " " w[2] "\\fR"
        for (j = 3; j <= n; j++) s = s " " esc(w[j])
        print s
        if (i < nusage) print ".br"
    }
    print ".SH DESCRIPTION"
    print "shoal runs a Lua script'"'"'s jobs on a pool of worker threads, each with its own"
    print "LuaJIT state; a job is a coroutine, so one worker keeps many HTTP requests in"
    print "flight. It serves Prometheus metrics while it runs and can send logs, traces"
    print "and profiles. The commands:"
    for (i = 1; i <= nusage; i++) {
        split(usage[i], u, SUBSEP)
        n = split(u[1], w, " ")
        print ".TP"
        print "\\fB" w[1] " " w[2] "\\fR" (n > 2 ? " " esc(substr(u[1], length(w[1] " " w[2]) + 2)) : "")
        print (u[2] != "" ? esc(u[2]) : "print the version and the libraries it was built with")
    }
    print ".SH OPTIONS"
    sub(/:$/, "", preamble)
    sub(/^Options \(/, "", preamble); sub(/\)$/, "", preamble)
    sub(/^each also/, "each option is also", preamble)
    print esc(toupper(substr(preamble, 1, 1)) substr(preamble, 2)) " (see"
    print ".BR ENVIRONMENT )."
    for (i = 1; i <= nopt; i++) {
        n = split(opt[i], w, " ")
        s = ""
        for (j = 1; j <= n; j++) {
            if (w[j] ~ /^-/) s = s (s == "" ? "" : " ") "\\fB" flagtext(w[j]) "\\fR"
            else s = s " \\fI" w[j] "\\fR"
        }
        print ".TP"
        print s
        print esc(ohelp[i]) (oenv[i] != "" ? "." : "")
        if (oenv[i] != "") print "Variable: \\fB" oenv[i] "\\fR."
    }
    print ".SH ENVIRONMENT"
    print "Each variable sets the option shown; a flag on the command line wins."
    for (i = 1; i <= nopt; i++) {
        if (oenv[i] == "") continue
        split(opt[i], w, " ")
        print ".TP"
        print "\\fB" oenv[i] "\\fR"
        print "As \\fB" flagtext(w[1]) "\\fR."
    }
    # the OpenTelemetry variables that option texts name
    for (i = 1; i <= nopt; i++) {
        s = ohelp[i]
        while (match(s, /OTEL_[A-Z_]*[A-Z*]/)) {
            v = substr(s, RSTART, RLENGTH)
            s = substr(s, RSTART + RLENGTH)
            if (v in seen) continue
            seen[v] = 1
            split(opt[i], w, " ")
            print ".TP"
            print "\\fB" v "\\fR"
            print "Read as OpenTelemetry specifies; see \\fB" flagtext(w[1]) "\\fR."
        }
    }
    print ".SH EXIT STATUS"
    for (i = 1; i <= ncode; i++) {
        print ".TP"
        print ".B " code[i]
        print esc(chelp[i])
    }
    if (nnote > 0) {
        print ".SH NOTES"
        for (i = 1; i <= nnote; i++) { if (i > 1) print ".PP"; print esc(note[i]) }
    }
    if (nex) {
        print ".SH EXAMPLES"
        for (i = 1; i <= nex; i++) {
            print ".PP"
            print ".nf"
            print esc(example[i])
            print ".fi"
        }
    }
    print ".SH FILES"
    print ".TP"
    print ".I logs/app.log"
    print "The log file, relative to the working directory (\\fB\\-\\-log\\-file\\fR moves it)."
    print ".TP"
    print ".I share/shoal/lua\\-types/"
    print "Under the installation prefix: lua\\-language\\-server annotations of the"
    print "\\fBshoal\\fR Lua API, for editors to complete and check job scripts."
    print ".SH SEE ALSO"
    print ".BR luajit (1),"
    print ".BR curl (1);"
    print "the README.md and docs/ARCHITECTURE.md of shoal'"'"'s source."
}' >"$out.tmp"; then
    rm -f "$out.tmp"
    exit 1
fi
mv "$out.tmp" "$out"
