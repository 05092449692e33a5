"""Writes one static site for the polite-crawl tests, with what a crawler
must know and what nginx must do beside the files.

usage: gen_site.py OUT --name NAME [--sections S] [--pages P] [--agent TOKEN]
                   [--crawl-delay SECONDS] [--traps] [--slow RATE]
                   [--rate-limit STATUS[:RETRY_AFTER]]
                   [--page-bytes N] [--huge-mb MB] [--seed N]

OUT/www/            the document root
OUT/manifest.json   what check_access.py needs: every URL a crawler may
                    find, its title and links, what robots.txt forbids the
                    agent, the redirects, the traps
OUT/server.conf     nginx directives for the site's server block (the
                    redirects, the calendar, the slow or rate-limited pages)
OUT/http.conf       nginx directives for the http block (maps, zones)

The graph is a tree with cross links kept inside a section, so the depth at
which a page is first found does not depend on the order of fetches:
/index.html (0) -> /sK/index.html (1) -> /sK/pJ.html (2). Every section and
page also links to /private/pX.html, which robots.txt forbids our agent
and which alone link to /hidden/only.html.

robots.txt has three groups: another agent that may fetch nothing, ours
(--agent) that may fetch all but /private/ and has the Crawl-delay, and
`*` that may fetch nothing: a crawler that picks the wrong group fetches
nothing at all, or fetches /private/.

--traps adds, linked from the home page (and the bigger ones from many
pages):
  /calendar/?m=1  one file served for every m, linking to m+1: endless,
                  only --max-depth stops a crawler in it
  /loop/start     301 to /loop/a, which 301s to /loop/b, which 301s back
  /moved/sK       (from the pages) 301 to /sK/index.html, fetched before
  /big/huge.html  --huge-mb of HTML (for --max-body), its link a decoy
  /files/data.bin application/octet-stream; inside it, bytes that read as
                  a link and a title if parsed as HTML (decoys)
A decoy (/from-binary.html, /big/after-huge.html) must never be requested.

--slow RATE serves the leaf pages (/sK/pJ.html) at RATE bytes/s (nginx
limit_rate, which sends the first RATE bytes at once and the rest a second
later: pages of --page-bytes between RATE and 2 x RATE take a second each);
the home and section pages stay fast, so a crawler has all the slow pages
queued at once. --page-bytes pads every HTML page up to that size.
--rate-limit 429:2 answers 429 with Retry-After: 2 to a client faster than
4 requests/s past a burst of 2 (nginx limit_req); --rate-limit 503 answers
503 and no Retry-After (a crawler waits at least a second then); robots.txt
is not limited."""

import argparse
import json
import os
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--name", required=True)
    ap.add_argument("--sections", type=int, default=3)
    ap.add_argument("--pages", type=int, default=5, help="pages per section")
    ap.add_argument("--private", type=int, default=4)
    ap.add_argument("--agent", default="politebot")
    ap.add_argument("--crawl-delay", type=float)
    ap.add_argument("--traps", action="store_true")
    ap.add_argument("--slow", type=int, help="bytes per second for the leaf pages")
    ap.add_argument("--rate-limit", metavar="STATUS[:RETRY_AFTER]")
    ap.add_argument("--page-bytes", type=int, default=0, help="pad HTML pages to this size")
    ap.add_argument("--huge-mb", type=float, default=3)
    ap.add_argument("--seed", type=int, default=14)
    a = ap.parse_args()

    name = a.name
    if not name.isalnum():
        raise SystemExit("gen_site.py: --name must be letters and digits (it names nginx zones)")
    rng = random.Random(a.seed)
    www = os.path.join(a.out, "www")
    os.makedirs(www, exist_ok=True)
    urls = {}  # path (with query) -> {"title", "links", "kind"}

    def write(path, data, mode="w"):
        full = os.path.join(www, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, mode) as f:
            f.write(data)

    def page(path, title, links):
        body = "".join('<li><a href="%s">%s</a></li>\n' % (h, h) for h in links)
        html = ("<!doctype html>\n<html><head><title>%s</title></head>\n<body>\n"
                "<h1>%s</h1>\n<ul>\n%s</ul>\n" % (title, title, body))
        end = "</body></html>\n"
        short = a.page_bytes - len(html) - len(end) - len("<p></p>\n")
        if short > 0:
            html += "<p>" + ("polite filler " * (short // 14 + 1))[:short] + "</p>\n"
        write(path, html + end)
        urls[path] = {"title": title, "links": list(links), "kind": "html"}

    sections = ["/s%d/index.html" % k for k in range(a.sections)]
    private = ["/private/p%d.html" % x for x in range(a.private)]
    traps = []
    if a.traps:
        traps = ["/calendar/?m=1", "/loop/start", "/big/huge.html", "/files/data.bin"]
    page("/index.html", "%s home" % name, sections + traps + private[:1])
    for k, sec in enumerate(sections):
        pages = ["/s%d/p%d.html" % (k, j) for j in range(a.pages)]
        extra = ["/files/data.bin"] if a.traps else []
        page(sec, "%s section %d" % (name, k), pages + ["/index.html"] + private + extra)
        for j, p in enumerate(pages):
            links = ["/index.html", sec, rng.choice(private)]
            links += rng.sample(pages, min(2, len(pages)))
            if a.traps:
                links += ["/moved/s%d" % k, "/files/data.bin"]
            page(p, "%s page %d.%d" % (name, k, j), links)
    for x, p in enumerate(private):
        page(p, "%s private %d" % (name, x), ["/hidden/only.html", "/index.html"])
    page("/hidden/only.html", "%s hidden" % name, ["/index.html"])

    robots = ["# robots.txt of the polite-crawl test site %s" % name,
              "User-agent: otherbot", "Disallow: /", "",
              "User-agent: %s" % a.agent, "Disallow: /private/"]
    if a.crawl_delay is not None:
        robots.append("Crawl-delay: %g" % a.crawl_delay)
    robots += ["", "User-agent: *", "Disallow: /", ""]
    write("/robots.txt", "\n".join(robots))

    redirects, never, server, http = {}, [], [], []
    calendar = huge = None
    if a.traps:
        # one file for every month; nginx puts m and m+1 in (sub_filter)
        month = ("<!doctype html>\n<html><head><title>%s calendar m=@M@</title></head>\n"
                 "<body><a href=\"/calendar/?m=@NEXT@\">next month</a>\n"
                 "<a href=\"/index.html\">home</a></body></html>\n" % name)
        write("/calendar/month.html", month)
        calendar = {"path": "/calendar/", "param": "m", "first": 1,
                    "title": "%s calendar m={m}" % name,
                    "bytes": len(month) - len("@M@") - len("@NEXT@")}
        http.append(calendar_maps(name))
        server.append("location = /calendar/ {\n"
                      "    try_files /calendar/month.html =404;\n"
                      "    sub_filter_once off;\n"
                      "    sub_filter '@M@' '$cal_m_%s';\n"
                      "    sub_filter '@NEXT@' '$cal_next_%s';\n}" % (name, name))
        redirects.update({"/loop/start": "/loop/a", "/loop/a": "/loop/b", "/loop/b": "/loop/a"})
        for k, sec in enumerate(sections):
            redirects["/moved/s%d" % k] = sec
        for src, dst in sorted(redirects.items()):
            server.append("location = %s { return 301 %s; }" % (src, dst))

        huge = "/big/huge.html"
        line = "<p>" + "this page is far too big for --max-body " * 2 + "</p>\n"
        count = int(a.huge_mb * 1024 * 1024) // len(line) + 1
        write(huge, "<!doctype html>\n<html><head><title>%s huge</title></head><body>\n"
                    "<a href=\"/big/after-huge.html\">after</a>\n%s</body></html>\n"
                    % (name, line * count))
        urls[huge] = {"title": "%s huge" % name, "links": [], "kind": "huge"}

        blob = bytes(rng.randrange(256) for _ in range(4096))
        decoy = b"<html><title>not a page</title><a href=\"/from-binary.html\">x</a></html>"
        write("/files/data.bin", blob + decoy + blob, mode="wb")
        urls["/files/data.bin"] = {"title": None, "links": [], "kind": "binary"}
        never = ["/from-binary.html", "/big/after-huge.html"]

    if a.slow:
        server.append("location ~ ^/s[0-9]+/p[0-9]+\\.html$ {\n    limit_rate %d;\n}" % a.slow)
    if a.rate_limit:
        status, _, after = a.rate_limit.partition(":")
        if status not in ("429", "503") or not (after.isdigit() or after == ""):
            raise SystemExit("gen_site.py: --rate-limit takes 429 or 503, then :SECONDS "
                             "for a Retry-After, e.g. 429:2")
        http.append("limit_req_zone $server_port zone=rl_%s:1m rate=4r/s;\n"
                    "map $status $retry_after_%s { %s %s; default \"\"; }"
                    % (name, name, status, after or '""'))
        server.append("location / {\n"
                      "    limit_req zone=rl_%s burst=2 nodelay;\n"
                      "    limit_req_status %s;\n}\n"
                      "location = /robots.txt { }\n"
                      "add_header Retry-After $retry_after_%s always;" % (name, status, name))

    manifest = {
        "name": name, "start": "/index.html", "agent": a.agent,
        "crawl_delay": a.crawl_delay, "disallow": ["/private/"],
        "urls": urls, "redirects": redirects, "calendar": calendar, "huge": huge,
        "never": never, "slow": bool(a.slow), "rate_limited": bool(a.rate_limit),
    }
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    with open(os.path.join(a.out, "server.conf"), "w") as f:
        f.write("\n".join(server) + "\n")
    with open(os.path.join(a.out, "http.conf"), "w") as f:
        f.write("\n".join(http) + "\n")


def calendar_maps(name):
    """nginx maps for the calendar: $cal_m_NAME is m when it is a number
    (else 0), $cal_next_NAME is m + 1, in decimal: the last digit below 9
    goes up by one and the nines after it become zeros (up to 14 of them,
    beyond what any test's --max-depth reaches)."""
    lines = ["map $arg_m $cal_m_%s {\n    default 0;\n    \"~^[0-9]{1,15}$\" $arg_m;\n}" % name,
             "map $arg_m $cal_next_%s {\n    default 1;" % name]
    for nines in range(15):
        for d in range(9):
            lines.append("    \"~^(?<cal_head>[0-9]*?)%d%s$\" \"${cal_head}%d%s\";"
                         % (d, "9" * nines, d + 1, "0" * nines))
    for nines in range(1, 15):
        lines.append("    \"~^%s$\" \"1%s\";" % ("9" * nines, "0" * nines))
    lines.append("}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
