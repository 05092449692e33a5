"""Checks a crawl against the rules of polite crawling, from what the servers
saw (nginx's access log) and what the crawler wrote (its items file).

usage: check_access.py --log ACCESS_LOG --site PORT=MANIFEST [--site ...]
                       [--items ITEMS.jsonl] [--per-host N] [--delay S]
                       [--jitter F] [--max-depth N] [--max-pages N]
                       [--robots obey|ignore] [--user-agent UA] [--partial]
                       [--stats FILE]
       check_access.py --self-test

The log is polite/polite.sh's format, one request a line:
  $msec $request_time $server_port $status $body_bytes_sent
  "$sent_http_retry_after" "$request_method" "$request_uri" "$http_user_agent"
A request ran from $msec - $request_time to $msec (nginx's clock, to the
millisecond). Each --site is one host (a port) and the manifest.json that
gen_site.py wrote for it.

Prints one line per rule, "ok   RULE: what holds" or "FAIL RULE: what
does not", then the first offenders indented, and "# " lines with what
was measured per host; exits 1 if any rule failed, 2 on bad input.
--partial (a run stopped early) drops the rules that need the whole
crawl: every page fetched, the limit reached, a 429 host come back.
--self-test feeds the checks small logs and items files that each break
one rule and fails unless every one is caught, and a clean one passes."""

import argparse
import email.utils
import json
import sys
from urllib.parse import urlsplit

CLOCK = 0.002      # nginx's times are to the millisecond: two of them
GAP_TOL = 0.02     # how much later than the crawler meant one request may
                   # reach nginx than another: a worker busy with another
                   # job, ASan, a loaded box (a Python crawler with
                   # threads showed 6 ms here, idle); the rule is checked
                   # over every run of starts, so this allowance does not
                   # add up
RACE = 0.25        # a request already on its way when a 429 came may
                   # reach nginx this long after the 429 was logged (its
                   # client had not read the 429 yet, or sent before it)
LOOP_HOPS = 20     # requests a redirect loop may take in its one attempt
SHOW = 5           # offenders listed per rule


class Req:
    __slots__ = ("start", "end", "port", "status", "bytes", "retry_after",
                 "method", "uri", "ua", "line")


def parse_log(text):
    """Requests in log order, and the lines that did not parse."""
    reqs, bad = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            head, quoted = line.split(' "', 1)
            msec, rtime, port, status, sent = head.split(" ")
            fields = quoted.rstrip('"').split('" "')
            if len(fields) != 4:
                raise ValueError("%d quoted fields, not 4" % len(fields))
            r = Req()
            r.end = float(msec)
            r.start = round(r.end - float(rtime), 3)
            r.port, r.status, r.bytes = int(port), int(status), int(sent)
            r.retry_after = None if fields[0] in ("", "-") else fields[0]
            r.method, r.uri, r.ua = fields[1], fields[2], fields[3]
            r.line = n
            reqs.append(r)
        except ValueError as e:
            bad.append("line %d: %s: %r" % (n, e, line[:200]))
    return reqs, bad


def retry_after_seconds(value, at):
    """Retry-After as seconds from `at` (a delta or an HTTP-date); 1 when
    absent or unreadable, the least a crawler should wait."""
    if value is None:
        return 1.0
    if value.strip().isdigit():
        return float(value)
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - at
    except (TypeError, ValueError):
        return 1.0


class Site:
    """One host: its manifest and what a crawler should request there."""

    def __init__(self, port, manifest):
        self.port = port
        self.m = manifest
        self.name = manifest["name"]

    def disallowed(self, uri):
        return any(uri.startswith(p) for p in self.m["disallow"])

    def calendar_m(self, uri):
        cal = self.m.get("calendar")
        if not cal or not uri.startswith(cal["path"] + "?" + cal["param"] + "="):
            return None
        m = uri.split("=", 1)[1]
        return int(m) if m.isdigit() else None

    def kind(self, uri):
        if uri in self.m["urls"]:
            return self.m["urls"][uri]["kind"]
        if self.calendar_m(uri) is not None:
            return "html"
        if uri in self.m["redirects"]:
            return "redirect"
        return None

    def title(self, uri):
        m = self.calendar_m(uri)
        if m is not None:
            return self.m["calendar"]["title"].format(m=m)
        return self.m["urls"][uri]["title"]

    def size(self, uri, answer):
        """The body's length: what nginx sent, but for the calendar, whose
        body nginx rewrites and sends chunked (the chunks' framing counted
        in $body_bytes_sent), the template's length with m and m + 1 in."""
        m = self.calendar_m(uri)
        if m is not None:
            return self.m["calendar"]["bytes"] + len(str(m)) + len(str(m + 1))
        return answer.bytes

    def links(self, uri):
        m = self.calendar_m(uri)
        if m is not None:
            return ["%s?%s=%d" % (self.m["calendar"]["path"], self.m["calendar"]["param"], m + 1),
                    "/index.html"]
        return self.m["urls"].get(uri, {}).get("links", [])

    def final(self, uri):
        """Where a chain of redirects from uri ends, or None for a loop."""
        seen = set()
        while uri in self.m["redirects"]:
            if uri in seen:
                return None
            seen.add(uri)
            uri = self.m["redirects"][uri]
        return uri

    def plan(self, max_depth, obey):
        """{uri: depth} of what a crawler must request, with the depth at
        which each is first found (the graph makes it independent of the
        order of fetches), and {uri: "why"} of what it must not."""
        want, why_not = {}, {}
        frontier, seen = [(self.m["start"], 0)], {self.m["start"]}
        while frontier:
            nxt = []
            for uri, d in frontier:
                if obey and self.disallowed(uri):
                    why_not[uri] = "disallowed by robots.txt"
                    continue
                want[uri] = d
                target = uri
                if self.kind(uri) == "redirect":
                    target = self.final(uri)
                    if target is None or target in seen:
                        continue
                    seen.add(target)
                    want[target] = d
                if self.kind(target) != "html":
                    continue
                for link in self.links(target):
                    if link in seen:
                        continue
                    seen.add(link)
                    if max_depth is not None and d + 1 > max_depth:
                        why_not[link] = "beyond --max-depth %d (depth %d)" % (max_depth, d + 1)
                    else:
                        nxt.append((link, d + 1))
            frontier = nxt
        for uri in self.m["never"]:
            why_not[uri] = "a decoy: only a body no crawler should parse links to it"
        for uri in self.m["urls"]:
            if uri not in want and uri not in why_not:
                why_not[uri] = "linked only from pages a crawler must not fetch"
        return want, why_not

    def loop_hops(self):
        """The redirect sources that only a redirect leads to."""
        linked = set()
        for u in self.m["urls"].values():
            linked.update(u["links"])
        return {u for u in self.m["redirects"] if u not in linked}


class Checker:
    def __init__(self, cfg, sites):
        self.cfg = cfg
        self.sites = sites
        self.results = []   # (rule, ok, text, offenders)
        self.whole = not cfg.partial
        self.stats = {}

    def rule(self, name, text, offenders, applies=True):
        """One rule's verdict; a rule that does not apply to this run (one
        that needs the whole crawl, with --partial) is left out, not passed."""
        if applies:
            self.results.append((name, not offenders, text, offenders))

    def failed(self):
        return [r for r in self.results if not r[1]]

    def run(self, log_text, items_text):
        c = self.cfg
        obey = c.robots == "obey"
        reqs, bad = parse_log(log_text)
        self.rule("log-format", "every access log line parses", bad)
        by_port = {}
        for r in reqs:
            by_port.setdefault(r.port, []).append(r)
        strangers = sorted(p for p in by_port if p not in self.sites)
        self.rule("hosts", "every request went to one of the sites",
                  ["%d requests to port %d" % (len(by_port[p]), p) for p in strangers])
        for reqlist in by_port.values():
            reqlist.sort(key=lambda r: (r.start, r.end))

        if c.user_agent is not None:
            self.rule("user-agent", "every request says User-Agent: %s" % c.user_agent,
                      ["%s %s: %r" % (self.host(r), r.uri, r.ua) for r in reqs
                       if r.ua != c.user_agent])
        if obey:
            self.check_robots(by_port)
        self.check_in_flight(by_port)
        self.check_gaps(by_port)
        self.check_retry_after(by_port)
        fetched = self.check_pages(by_port)
        if items_text is not None:
            self.check_items(items_text, fetched)

    def host(self, r_or_port):
        port = r_or_port if isinstance(r_or_port, int) else r_or_port.port
        s = self.sites.get(port)
        return "%s(:%d)" % (s.name if s else "?", port)

    def check_robots(self, by_port):
        once, first = [], []
        for port in sorted(self.sites):
            reqs = by_port.get(port, [])
            robots = [r for r in reqs if r.uri == "/robots.txt"]
            others = [r for r in reqs if r.uri != "/robots.txt"]
            # each process of a shared run keeps its own robots.txt
            most = getattr(self.cfg, "processes", 1) or 1
            if not 1 <= len(robots) <= most and not (
                    self.cfg.partial and len(robots) == 0 and not others):
                once.append("%s: robots.txt requested %d times%s" % (
                    self.host(port), len(robots), " (%d processes)" % most if most > 1 else ""))
            if robots and others and others[0].start < robots[0].end - CLOCK:
                first.append("%s: %s started at %.3f, before robots.txt was answered (%.3f)"
                             % (self.host(port), others[0].uri, others[0].start, robots[0].end))
            elif others and not robots:
                first.append("%s: %s requested and robots.txt never"
                             % (self.host(port), others[0].uri))
        self.rule("robots-once", "robots.txt requested exactly once per host (and process)", once)
        self.rule("robots-first", "robots.txt answered before a host's first page started", first)

    def check_in_flight(self, by_port):
        over, unused = [], []
        limit = self.cfg.per_host
        for port in sorted(set(by_port) | set(self.sites)):
            reqs = by_port.get(port, [])
            # what was running when r had run CLOCK: two requests overlap
            # only when they share more than the clock's granularity (so
            # a robots.txt answered within the millisecond its job's page
            # started is not counted beside it)
            peak = 0
            for r in reqs:
                at = r.start + CLOCK
                running = [q for q in reqs if q.start <= r.start and q.end > at]
                peak = max(peak, len(running))
                line = "%s: %d in flight at %.3f: %s" % (
                    self.host(port), len(running), r.start,
                    ", ".join(sorted(q.uri for q in running)))
                if len(running) > limit and len(over) < SHOW * 4 and line not in over:
                    over.append(line)
            self.stat(port, max_in_flight=peak)
            site = self.sites.get(port)
            if site and site.m.get("slow") and peak < limit and not self.cfg.partial:
                unused.append("%s: at most %d in flight, never the --per-host %d a slow host "
                              "should fill" % (self.host(port), peak, limit))
        self.rule("in-flight", "at most %d requests in flight per host at any instant" % limit,
                  over)
        self.rule("in-flight-used", "the slow hosts did have %d in flight (the limit was tested)"
                  % limit, unused, self.whole and any(s.m.get("slow") for s in self.sites.values()))

    def required_gap(self, port):
        site = self.sites.get(port)
        delay = self.cfg.delay
        if self.cfg.robots == "obey" and site and site.m.get("crawl_delay"):
            delay = max(delay, site.m["crawl_delay"])
        return delay, delay * (1 - self.cfg.jitter)

    def check_gaps(self, by_port):
        """Starts i < j on a host are at least (j - i) x the gap apart, less
        GAP_TOL: with j = i + 1 the rule on consecutive starts; over longer
        runs it holds the rate, which a latency allowance cannot hide."""
        short = []
        for port, reqs in sorted(by_port.items()):
            delay, need = self.required_gap(port)
            reqs = [r for r in reqs if r.uri != "/robots.txt"]
            gaps = [round(b.start - a.start, 3) for a, b in zip(reqs, reqs[1:])]
            if gaps:
                self.stat(port, min_gap=min(gaps), gap_needed=round(need, 3))
            worst = None
            for i, a in enumerate(reqs):
                for j in range(i + 1, len(reqs)):
                    b = reqs[j]
                    lack = (j - i) * need - (b.start - a.start)
                    if lack > GAP_TOL + 1e-9 and (worst is None or lack > worst[0]):
                        worst = (lack, i, j, a, b)
            if worst:
                lack, i, j, a, b = worst
                short.append("%s: %d starts from %s (at %.3f) to %s took %.3f s, %d gaps of "
                             "%.3f s need %.3f s" % (self.host(port), j - i + 1, a.uri, a.start,
                                                     b.uri, b.start - a.start, j - i, need,
                                                     (j - i) * need))
        self.rule("gap", "starts on a host at least --delay (or its Crawl-delay) x (1 - jitter) "
                  "apart, %d ms allowed" % round(GAP_TOL * 1000), short)

    def check_retry_after(self, by_port):
        early, unused = [], []
        for port in sorted(set(by_port) | set(self.sites)):
            reqs = by_port.get(port, [])
            backoffs = [r for r in reqs if r.status in (429, 503)]
            self.stat(port, answers_429_503=len(backoffs))
            for b in backoffs:
                wait = retry_after_seconds(b.retry_after, b.end)
                for r in reqs:
                    if b.end + RACE <= r.start < b.end + wait - GAP_TOL:
                        early.append("%s: %s answered %d at %.3f (Retry-After: %s), and %s started "
                                     "%.3f s later" % (self.host(port), b.uri, b.status, b.end,
                                                       b.retry_after, r.uri, r.start - b.end))
            site = self.sites.get(port)
            if site and site.m.get("rate_limited") and not self.cfg.partial:
                if not backoffs:
                    unused.append("%s answered no 429 or 503: the back-off was not tested"
                                  % self.host(port))
                ok = {r.uri for r in reqs if r.status == 200 and r.method == "GET"}
                for b in backoffs:
                    if b.uri not in ok:
                        unused.append("%s: %s answered %d and was never fetched again"
                                      % (self.host(port), b.uri, b.status))
        self.rule("retry-after", "no request to a host that answered 429/503 before its "
                  "Retry-After ran out", early)
        self.rule("retry-after-used", "the rate-limited hosts answered 429/503, and each such "
                  "page came back later with 200", sorted(set(unused)),
                  self.whole and any(s.m.get("rate_limited") for s in self.sites.values()))

    def check_pages(self, by_port):
        """Returns {(port, uri): the 200 answer} for the items check."""
        c = self.cfg
        obey = c.robots == "obey"
        once, unexpected, disallowed, calendar, traps, missing = [], [], [], [], [], []
        fetched, distinct = {}, 0
        for port, site in sorted(self.sites.items()):
            want, why_not = site.plan(c.max_depth, obey)
            hops = site.loop_hops()
            reqs = [r for r in by_port.get(port, []) if r.uri != "/robots.txt"]
            answers = {}
            for r in reqs:
                answers.setdefault(r.uri, []).append(r)
            distinct += len(answers)
            for uri, rs in sorted(answers.items()):
                where = "%s %s" % (self.host(port), uri)
                oks = [r for r in rs if r.status == 200 and r.method == "GET"]
                if oks:
                    fetched[(port, uri)] = oks[0]
                if obey and site.disallowed(uri):
                    disallowed.append("%s requested (%d times)" % (where, len(rs)))
                    continue
                if uri in hops:
                    if len(rs) > LOOP_HOPS:
                        traps.append("%s: %d requests in a redirect loop" % (where, len(rs)))
                    continue
                if uri not in want:
                    reason = why_not.get(uri, "not linked from any page")
                    bucket = calendar if site.calendar_m(uri) is not None else unexpected
                    bucket.append("%s: %s" % (where, reason))
                    continue
                kind = site.kind(uri)
                if kind in ("html", "binary") and len(oks) > 1:
                    once.append("%s answered 200 %d times" % (where, len(oks)))
                if kind in ("redirect", "huge") and len(rs) > 1:
                    traps.append("%s requested %d times (a %s is requested once, not retried)"
                                 % (where, len(rs), "redirect" if kind == "redirect" else
                                    "body over --max-body"))
            if c.partial or c.max_pages is not None:
                continue
            for uri, d in sorted(want.items()):
                kind = site.kind(uri)
                if kind in ("html", "binary") and not any(
                        r.status == 200 and r.method == "GET" for r in answers.get(uri, [])):
                    got = sorted({r.status for r in answers.get(uri, [])})
                    (calendar if site.calendar_m(uri) is not None else missing).append(
                        "%s %s (depth %d) %s" % (self.host(port), uri, d,
                                                 "answered %s, never 200" % got if got
                                                 else "never requested"))
                elif kind in ("redirect", "huge") and uri not in answers and uri not in hops:
                    traps.append("%s %s never requested" % (self.host(port), uri))
        self.rule("disallowed", "no URL robots.txt disallows was requested", disallowed)
        self.rule("pages-once", "no page answered 200 twice", once)
        self.rule("pages-all", "every allowed page within reach answered 200", missing,
                  self.whole and c.max_pages is None)
        self.rule("unexpected", "nothing else was requested (decoys, pages beyond reach)",
                  unexpected)
        self.rule("calendar", "the endless calendar crawled down to --max-depth and no further",
                  calendar)
        self.rule("traps", "each redirect, loop and oversized page requested once, not retried",
                  traps)
        if c.max_pages is not None:
            self.rule("max-pages", "at most --max-pages %d URLs requested" % c.max_pages,
                      ["%d distinct URLs requested" % distinct] if distinct > c.max_pages else [])
        return fetched

    def check_items(self, text, fetched):
        c = self.cfg
        bad, fields, values, dup, extra = [], [], [], [], []
        items = []
        if text and not text.endswith("\n"):
            bad.append("the file does not end with a newline (a torn last record)")
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        for n, line in enumerate(lines, 1):
            try:
                o = json.loads(line)
            except ValueError as e:
                bad.append("line %d: %s: %r" % (n, e, line[:120]))
                continue
            if not isinstance(o, dict):
                bad.append("line %d: not an object: %r" % (n, line[:120]))
                continue
            items.append((n, o))
        self.rule("items-jsonl", "the items file is JSON lines, one object each, whole", bad)

        types = {"url": (str,), "status": (int,), "title": (str, type(None)),
                 "links": (int, type(None)), "bytes": (int,), "depth": (int,)}
        seen = {}
        for n, o in items:
            wrong = [k for k, t in types.items()
                     if k not in o or not isinstance(o[k], t) or isinstance(o[k], bool)]
            if wrong:
                fields.append("line %d: %s missing or of the wrong type: %s"
                              % (n, ", ".join(wrong), json.dumps(o)[:160]))
                continue
            u = urlsplit(o["url"])
            port, uri = u.port, u.path + ("?" + u.query if u.query else "")
            site = self.sites.get(port)
            if site is None or u.hostname != "127.0.0.1":
                extra.append("line %d: %s is on none of the sites" % (n, o["url"]))
                continue
            page = site.final(uri) if site.kind(uri) == "redirect" else uri
            if (port, page) in seen:
                dup.append("line %d: %s is the page of line %d again"
                           % (n, o["url"], seen[(port, page)]))
                continue
            seen[(port, page)] = n
            answer = fetched.get((port, page))
            if answer is None or site.kind(page) == "huge":
                extra.append("line %d: %s, which never answered 200%s" % (
                    n, o["url"], " within --max-body" if answer else ""))
                continue
            self.check_item_values(n, o, site, page, answer, values)
        missing = []
        if not c.partial:
            for (port, uri), r in sorted(fetched.items()):
                site = self.sites.get(port)
                if site and site.kind(uri) in ("html", "binary") and (port, uri) not in seen:
                    missing.append("%s %s answered 200 and has no item" % (self.host(port), uri))
        self.rule("items-fields", "every item has url, status, title, links, bytes, depth", fields)
        self.rule("items-one-per-page", "one item per page that answered 200, none twice, "
                  "none for anything else", dup + extra + missing)
        self.rule("items-values", "each item's status, title, bytes, links and depth are the "
                  "page's", values)
        self.stats["items"] = len(items)

    def check_item_values(self, n, o, site, uri, answer, out):
        def wrong(what, got, want):
            out.append("line %d: %s: %s is %r, not %r" % (n, o["url"], what, got, want))
        kind = site.kind(uri)
        if o["status"] != 200:
            wrong("status", o["status"], 200)
        want_title = site.title(uri) if kind == "html" else None
        if o["title"] != want_title:
            wrong("title", o["title"], want_title)
        size = site.size(uri, answer)
        if o["bytes"] != size:
            wrong("bytes", o["bytes"], size)
        # a page at --max-depth need not be parsed: its links may be null or 0
        want, _ = site.plan(self.cfg.max_depth, self.cfg.robots == "obey")
        deepest = self.cfg.max_depth is not None and want.get(uri) == self.cfg.max_depth
        if kind == "html" and not (o["links"] in (None, 0) and deepest) and (
                o["links"] is None or o["links"] < 1):
            wrong("links", o["links"], "a count of at least 1")
        if kind == "binary" and o["links"] not in (None, 0):
            wrong("links", o["links"], None)
        if uri in want and o["depth"] != want[uri]:
            wrong("depth", o["depth"], want[uri])

    def stat(self, port, **kv):
        self.stats.setdefault(str(port), {}).update(kv)

    def report(self, out):
        for name, ok, text, offenders in self.results:
            out.write("%s %s: %s\n" % ("ok  " if ok else "FAIL", name, text))
            for o in offenders[:SHOW]:
                out.write("       %s\n" % o)
            if len(offenders) > SHOW:
                out.write("       ... and %d more\n" % (len(offenders) - SHOW))
        for port, s in sorted(self.stats.items()):
            if port in (str(p) for p in self.sites):
                out.write("# %s: %s\n" % (self.host(int(port)), ", ".join(
                    "%s %s" % (k, v) for k, v in sorted(s.items()))))


def time_stats(log_text):
    """Per port: requests, first start, last end (for a test's timings)."""
    reqs, _ = parse_log(log_text)
    out = {}
    for r in reqs:
        s = out.setdefault(str(r.port), {"requests": 0, "first_start": r.start, "last_end": r.end})
        s["requests"] += 1
        s["first_start"] = min(s["first_start"], r.start)
        s["last_end"] = max(s["last_end"], r.end)
    return out


def options(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log")
    ap.add_argument("--items")
    ap.add_argument("--site", action="append", default=[], metavar="PORT=MANIFEST")
    ap.add_argument("--per-host", type=int, default=8)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--jitter", type=float, default=0.0)
    ap.add_argument("--max-depth", type=int)
    ap.add_argument("--max-pages", type=int)
    ap.add_argument("--robots", choices=("obey", "ignore"), default="obey")
    ap.add_argument("--user-agent")
    ap.add_argument("--partial", action="store_true")
    ap.add_argument("--processes", type=int, default=1,
                    help="processes that shared the crawl: robots.txt once per host each")
    ap.add_argument("--stats", metavar="FILE")
    ap.add_argument("--self-test", action="store_true")
    return ap.parse_args(argv)


def main(argv):
    c = options(argv)
    if c.self_test:
        return self_test()
    if not c.log or not c.site:
        print("check_access.py: give --log and at least one --site PORT=MANIFEST", file=sys.stderr)
        return 2
    sites = {}
    for s in c.site:
        port, _, path = s.partition("=")
        try:
            with open(path) as f:
                sites[int(port)] = Site(int(port), json.load(f))
        except (OSError, ValueError) as e:
            print("check_access.py: --site %s: %s" % (s, e), file=sys.stderr)
            return 2
    with open(c.log) as f:
        log_text = f.read()
    items_text = None
    if c.items:
        try:
            with open(c.items, encoding="utf-8", errors="strict") as f:
                items_text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            print("FAIL items-file: cannot read %s: %s" % (c.items, e))
    ck = Checker(c, sites)
    ck.run(log_text, items_text)
    ck.report(sys.stdout)
    if c.items and items_text is None:
        return 1
    if c.stats:
        stats = time_stats(log_text)
        for port, s in ck.stats.items():
            if port in stats:
                stats[port].update(s)
        with open(c.stats, "w") as f:
            json.dump(stats, f, indent=1, sort_keys=True)
    return 1 if ck.failed() else 0


# ---------------------------------------------------------------- self-test

def synthetic_sites():
    """Two small hosts: W with every trap and a Crawl-delay; R slow and
    rate-limited."""
    def page(title, links, kind="html"):
        return {"title": title, "links": links, "kind": kind}
    w = {"name": "W", "start": "/index.html", "agent": "politebot", "crawl_delay": 0.3,
         "disallow": ["/private/"], "never": ["/from-binary.html"], "huge": "/big/huge.html",
         "slow": False, "rate_limited": False,
         "calendar": {"path": "/calendar/", "param": "m", "first": 1, "title": "W calendar m={m}",
                      "bytes": 998},
         "redirects": {"/loop/start": "/loop/a", "/loop/a": "/loop/b", "/loop/b": "/loop/a",
                       "/moved/s0": "/s0/index.html"},
         "urls": {"/index.html": page("W home", ["/s0/index.html", "/calendar/?m=1",
                                                 "/loop/start", "/big/huge.html",
                                                 "/files/data.bin", "/private/p0.html"]),
                  "/s0/index.html": page("W section 0", ["/s0/p0.html", "/s0/p1.html",
                                                         "/private/p0.html", "/index.html"]),
                  "/s0/p0.html": page("W page 0.0", ["/moved/s0", "/s0/p1.html"]),
                  "/s0/p1.html": page("W page 0.1", ["/index.html"]),
                  "/private/p0.html": page("W private 0", ["/hidden/only.html"]),
                  "/hidden/only.html": page("W hidden", ["/index.html"]),
                  "/big/huge.html": page("W huge", [], "huge"),
                  "/files/data.bin": page(None, [], "binary")}}
    r = {"name": "R", "start": "/index.html", "agent": "politebot", "crawl_delay": None,
         "disallow": ["/private/"], "never": [], "huge": None, "calendar": None,
         "redirects": {}, "slow": True, "rate_limited": True,
         "urls": {"/index.html": page("R home", ["/p%d.html" % i for i in range(6)]
                                      + ["/private/x.html"]),
                  "/private/x.html": page("R private", ["/index.html"])}}
    for i in range(6):
        r["urls"]["/p%d.html" % i] = page("R page %d" % i, ["/index.html"])
    return {1001: Site(1001, w), 1002: Site(1002, r)}


class SynthCfg:
    per_host, delay, jitter, max_depth, max_pages = 2, 0.1, 0.2, 3, None
    robots, user_agent, partial, processes = "obey", "politebot/1.0", False, 1


def synthetic_crawl():
    """A polite crawl of synthetic_sites(): (requests, items), every rule
    kept. Requests are [port, start, duration, status, bytes, retry_after, uri]."""
    reqs, items = [], []

    def get(port, start, dur, uri, status=200, size=1000, ra=None, item=True, depth=0):
        reqs.append([port, round(start, 3), dur, status, size, ra, uri])
        if item and status == 200:
            title = {"/index.html": "%s home" % ("W" if port == 1001 else "R")}.get(uri)
            items.append({"url": "http://127.0.0.1:%d%s" % (port, uri), "status": 200,
                          "title": title, "links": 1, "bytes": size, "depth": depth})

    # W: one at a time, 0.35 s apart (Crawl-delay 0.3, jitter 0.2)
    t = 100.0
    get(1001, t, 0.005, "/robots.txt", item=False)
    seq = [("/index.html", 0), ("/s0/index.html", 1), ("/calendar/?m=1", 1), ("/loop/start", 1),
           ("/loop/a", 1), ("/loop/b", 1), ("/loop/a", 1), ("/big/huge.html", 1),
           ("/files/data.bin", 1), ("/s0/p0.html", 2), ("/s0/p1.html", 2), ("/calendar/?m=2", 2),
           ("/moved/s0", 3), ("/calendar/?m=3", 3)]
    for uri, d in seq:
        t += 0.35
        status = 301 if uri.startswith(("/loop/", "/moved/")) else 200
        get(1001, t, 0.01, uri, status, 5000000 if "huge" in uri else 1000,
            item="huge" not in uri, depth=d)
    titles = {"/s0/index.html": "W section 0", "/s0/p0.html": "W page 0.0",
              "/s0/p1.html": "W page 0.1", "/files/data.bin": None}
    for it in items:
        path = urlsplit(it["url"]).path + ("?" + urlsplit(it["url"]).query
                                           if urlsplit(it["url"]).query else "")
        if path in titles:
            it["title"] = titles[path]
        if path.startswith("/calendar/"):
            it["title"] = "W calendar m=" + path.split("=")[1]
        if path == "/files/data.bin":
            it["links"] = None
    # R: two in flight (starts 0.15 s apart, 0.25 s each); /p2.html
    # answers 429 (Retry-After: 2) and comes back after the pause
    t = 100.0
    get(1002, t, 0.005, "/robots.txt", item=False)
    t += 0.01
    get(1002, t, 0.25, "/index.html", depth=0)
    for i in range(6):
        t += 0.15 if i != 0 else 0.26
        if i == 2:
            get(1002, t, 0.004, "/p2.html", 429, 100, "2")
            t += 2.05
        get(1002, t, 0.25, "/p%d.html" % i, depth=1)
        items[-1]["title"] = "R page %d" % i
    return reqs, items


def log_of(reqs, ua="politebot/1.0"):
    lines = []
    for port, start, dur, status, size, ra, uri in sorted(reqs, key=lambda r: r[1] + r[2]):
        lines.append('%.3f %.3f %d %d %d "%s" "GET" "%s" "%s"' % (
            start + dur, dur, port, status, size, ra or "-", uri, ua))
    return "\n".join(lines) + "\n"


def items_of(items):
    return "".join(json.dumps(o) + "\n" for o in items)


def self_test():
    def run(reqs, items, cfg=SynthCfg, log=None, items_text=None):
        ck = Checker(cfg, synthetic_sites())
        ck.run(log if log is not None else log_of(reqs),
               items_text if items_text is not None else items_of(items))
        return ck

    problems = 0
    ck = run(*synthetic_crawl())
    if ck.failed():
        problems += 1
        print("self-test FAIL: a polite crawl was found wanting:")
        ck.report(sys.stdout)
    else:
        print("self-test ok: a polite synthetic crawl passes all %d rules" % len(ck.results))

    def find(reqs, port, uri, status=None):
        return next(r for r in reqs if r[0] == port and r[6] == uri
                    and (status is None or r[3] == status))

    def cfg(**kv):
        return type("Cfg", (SynthCfg,), kv)

    def m_log_format(reqs, items):
        return {"log": log_of(reqs) + "1.0 garbage\n"}

    def m_user_agent(reqs, items):
        return {"log": log_of(reqs).replace('"politebot/1.0"', '"curl/8"', 1)}

    def m_robots_thrice(reqs, items):
        m_robots_twice(reqs, items)
        m_robots_twice(reqs, items)

    def m_robots_twice(reqs, items):
        reqs.append([1002, 150.0, 0.001, 200, 10, None, "/robots.txt"])

    def m_robots_late(reqs, items):
        find(reqs, 1001, "/robots.txt")[1] = 100.4

    def m_disallowed(reqs, items):
        reqs.append([1001, 110.0, 0.01, 200, 10, None, "/private/p0.html"])

    def m_three_in_flight(reqs, items):
        find(reqs, 1002, "/p0.html")[2] = 0.5

    def m_one_in_flight(reqs, items):
        for r in reqs:
            if r[0] == 1002:
                r[2] = 0.01

    def m_gap(reqs, items):
        find(reqs, 1001, "/s0/p1.html")[1] -= 0.15

    def m_gap_creep(reqs, items):
        # each gap within the allowance, the run of them not
        start = 100.0
        for r in sorted((r for r in reqs if r[0] == 1001 and r[6] != "/robots.txt"),
                        key=lambda r: r[1]):
            start += 0.3 * 0.8 - GAP_TOL * 0.75
            r[1] = round(start, 3)

    def m_crawl_delay_ignored(reqs, items):
        start = 100.0
        for r in sorted((r for r in reqs if r[0] == 1001 and r[6] != "/robots.txt"),
                        key=lambda r: r[1]):
            start += 0.12
            r[1] = round(start, 3)

    def m_retry_after(reqs, items):
        p2 = find(reqs, 1002, "/p2.html", 429)
        reqs.append([1002, p2[1] + p2[2] + 1.0, 0.01, 200, 10, None, "/index.html"])

    def m_http_date(reqs, items):
        # Retry-After as an HTTP-date 3 s after the 429: the retry at 2 s is early
        p2 = find(reqs, 1002, "/p2.html", 429)
        p2[5] = email.utils.formatdate(p2[1] + p2[2] + 3, usegmt=True)

    def m_503_bare(reqs, items):
        # a 503 without Retry-After: at least a second's pause
        p2 = find(reqs, 1002, "/p2.html", 429)
        p2[3], p2[5] = 503, None
        reqs.append([1002, p2[1] + p2[2] + 0.6, 0.01, 200, 10, None, "/index.html"])

    def m_no_429(reqs, items):
        find(reqs, 1002, "/p2.html", 429)[3] = 500

    def m_429_never_back(reqs, items):
        reqs.remove(find(reqs, 1002, "/p2.html", 200))
        items[:] = [o for o in items if not o["url"].endswith("/p2.html")]

    def m_missing(reqs, items):
        reqs.remove(find(reqs, 1001, "/s0/p1.html"))
        items[:] = [o for o in items if not o["url"].endswith("/s0/p1.html")]

    def m_twice(reqs, items):
        reqs.append([1001, 120.0, 0.01, 200, 1000, None, "/s0/index.html"])

    def m_decoy(reqs, items):
        reqs.append([1001, 120.0, 0.01, 404, 10, None, "/from-binary.html"])

    def m_hidden(reqs, items):
        reqs.append([1001, 120.0, 0.01, 200, 10, None, "/hidden/only.html"])

    def m_calendar_deep(reqs, items):
        reqs.append([1001, 120.0, 0.01, 200, 10, None, "/calendar/?m=4"])

    def m_calendar_short(reqs, items):
        reqs.remove(find(reqs, 1001, "/calendar/?m=3"))
        items[:] = [o for o in items if not o["url"].endswith("m=3")]

    def m_loop_retried(reqs, items):
        reqs.append([1001, 120.0, 0.01, 301, 10, None, "/loop/start"])

    def m_huge_retried(reqs, items):
        reqs.append([1001, 120.0, 0.01, 200, 10, None, "/big/huge.html"])

    def m_torn(reqs, items):
        return {"items_text": items_of(items)[:-20]}

    def m_not_object(reqs, items):
        return {"items_text": items_of(items) + "[1, 2]\n"}

    def m_no_title_key(reqs, items):
        del items[0]["title"]

    def m_item_missing(reqs, items):
        del items[1]

    def m_item_twice(reqs, items):
        items.append(dict(items[1]))

    def m_item_redirect(reqs, items):
        items.append({"url": "http://127.0.0.1:1001/moved/s0", "status": 200,
                      "title": "W section 0", "links": 4, "bytes": 1000, "depth": 3})

    def m_item_429(reqs, items):
        reqs.remove(find(reqs, 1002, "/p2.html", 200))

    def m_item_huge(reqs, items):
        items.append({"url": "http://127.0.0.1:1001/big/huge.html", "status": 200,
                      "title": "W huge", "links": 0, "bytes": 5000000, "depth": 1})

    def m_title(reqs, items):
        items[1]["title"] = "W section zero"

    def m_bytes(reqs, items):
        items[1]["bytes"] += 1

    def m_depth(reqs, items):
        items[1]["depth"] = 5

    def m_status(reqs, items):
        items[1]["status"] = 404

    def m_bin_title(reqs, items):
        next(o for o in items if o["url"].endswith(".bin"))["title"] = "not a page"

    cases = [
        ("log-format", m_log_format, None), ("user-agent", m_user_agent, None),
        ("robots-once", m_robots_twice, None), ("robots-once", m_robots_thrice, cfg(processes=2)),
        ("robots-first", m_robots_late, None),
        ("disallowed", m_disallowed, None), ("in-flight", m_three_in_flight, None),
        ("in-flight-used", m_one_in_flight, None), ("gap", m_gap, None),
        ("gap", m_crawl_delay_ignored, None), ("gap", m_gap_creep, None),
        ("gap", m_gap, cfg(delay=0.5)),
        ("retry-after", m_retry_after, None), ("retry-after", m_http_date, None),
        ("retry-after", m_503_bare, None), ("retry-after-used", m_no_429, None),
        ("retry-after-used", m_429_never_back, None), ("pages-all", m_missing, None),
        ("pages-once", m_twice, None), ("unexpected", m_decoy, None),
        ("unexpected", m_hidden, None), ("calendar", m_calendar_deep, None),
        ("calendar", m_calendar_short, None), ("traps", m_loop_retried, None),
        ("traps", m_huge_retried, None), ("max-pages", lambda r, i: None, cfg(max_pages=10)),
        ("items-jsonl", m_torn, None), ("items-jsonl", m_not_object, None),
        ("items-fields", m_no_title_key, None), ("items-one-per-page", m_item_missing, None),
        ("items-one-per-page", m_item_twice, None), ("items-one-per-page", m_item_redirect, None),
        ("items-one-per-page", m_item_429, None), ("items-one-per-page", m_item_huge, None),
        ("items-values", m_title, None), ("items-values", m_bytes, None),
        ("items-values", m_depth, None), ("items-values", m_status, None),
        ("items-values", m_bin_title, None),
        ("disallowed", m_disallowed, cfg(partial=True)),
        ("items-one-per-page", m_item_twice, cfg(partial=True)),
    ]
    for want, mutate, config in cases:
        reqs, items = synthetic_crawl()
        override = mutate(reqs, items) or {}
        ck = run(reqs, items, config or SynthCfg, **override)
        caught = [r for r in ck.failed() if r[0] == want]
        label = "%s%s" % (mutate.__name__[2:] if mutate.__name__.startswith("m_") else "max_pages",
                          " (%s)" % ", ".join("%s=%s" % kv for kv in vars(config).items()
                                              if not kv[0].startswith("_")) if config else "")
        if caught:
            print("self-test ok: %-22s caught by %s: %s" % (label, want, caught[0][3][0][:90]))
        else:
            problems += 1
            print("self-test FAIL: %s was not caught by rule %s; the rules said:" % (label, want))
            ck.report(sys.stdout)

    # --robots ignore: /private/ and what only it links to are then expected
    reqs, items = synthetic_crawl()
    ck = run(reqs, items, cfg(robots="ignore"))
    if not any(r[0] == "pages-all" and "/private/p0.html" in " ".join(r[3]) for r in ck.failed()):
        problems += 1
        print("self-test FAIL: with --robots ignore, /private/ unfetched went unnoticed")
    else:
        print("self-test ok: %-22s caught by pages-all" % "robots_ignore_private")
    print("self-test: %s" % ("all caught" if not problems else "%d problems" % problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
