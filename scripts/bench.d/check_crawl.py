"""Checks one crawl of the site gen_site.py --crawl wrote, so that a crawler
that is fast because it skips work cannot win: its items file must hold one
item per page reachable from / (robots.txt's Disallow lines honoured), each
with the page's title and its count of distinct same-site links, and
nginx's access log must show each of those pages requested exactly once,
robots.txt requested, and no disallowed page requested. The truth comes
from the site's files, not from any crawler.

With --no-robots (a crawler that cannot read robots.txt yet), disallowed
pages are expected like the others and robots.txt need not be requested.

Prints the number of pages and exits 0 when all holds; otherwise prints
what was wrong (a few examples of each kind) and exits 1.
usage: check_crawl.py SITE_DIR BASE_URL ITEMS_FILE ACCESS_LOG [--no-robots]"""
import collections
import json
import os
import re
import sys
import time
from urllib.parse import urlsplit

HREF = re.compile(r'href="([^"]+)"')
TITLE = re.compile(r"<title>(.*?)</title>")

args = [a for a in sys.argv[1:] if a != "--no-robots"]
robots = "--no-robots" not in sys.argv[1:]
site, base, items_file, access_log = args
site_host = urlsplit(base).netloc
problems = []


def problem(kind, examples):
    examples = sorted(examples)
    if examples:
        more = f" (and {len(examples) - 5} more)" if len(examples) > 5 else ""
        problems.append(f"{kind}: {', '.join(map(str, examples[:5]))}{more}")


def file_of(path):
    return os.path.join(site, "index.html" if path == "/" else path.lstrip("/"))


disallowed = []
with open(os.path.join(site, "robots.txt")) as f:
    for line in f:
        key, _, value = line.partition(":")
        if key.strip().lower() == "disallow" and value.strip():
            disallowed.append(value.strip())


def allowed(path):
    return not robots or not any(path.startswith(d) for d in disallowed)


# The pages a crawl from / reaches: title and distinct same-site links of each.
truth = {}
todo = ["/"]
while todo:
    path = todo.pop()
    if path in truth or not allowed(path):
        continue
    with open(file_of(path)) as f:
        html = f.read()
    links = set(HREF.findall(html))
    truth[path] = (TITLE.search(html).group(1), len(links))
    todo.extend(links - truth.keys())

seen = collections.Counter()
wrong_title, wrong_links, off_site, bad_lines = [], [], [], []
with open(items_file) as f:
    for n, line in enumerate(f, 1):
        try:
            item = json.loads(line)
            url = urlsplit(item["url"])
            path = url.path or "/"
            if url.netloc != site_host:
                off_site.append(item["url"])
                continue
            seen[path] += 1
            if path in truth:
                if item.get("title") != truth[path][0]:
                    wrong_title.append(f"{path} {item.get('title')!r}")
                if item.get("links") != truth[path][1]:
                    wrong_links.append(f"{path} {item.get('links')!r} (not {truth[path][1]})")
        except (ValueError, KeyError, TypeError, AttributeError):
            bad_lines.append(n)
problem("lines that are not an item with a url", bad_lines)
problem("items off the site", off_site)
problem("pages with no item", truth.keys() - seen.keys())
problem("items of pages a crawl must not reach", seen.keys() - truth.keys())
problem("pages with more than one item", [p for p, c in seen.items() if c > 1])
problem("items with the wrong title", wrong_title)
problem("items with the wrong link count", wrong_links)

# nginx logs a request after answering it: the last lines may lag the
# crawler's exit a little.
deadline = time.monotonic() + 5
while True:
    requests = collections.Counter()
    with open(access_log) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 2:
                requests[urlsplit(fields[1]).path] += 1
    if sum(requests[p] for p in truth) >= len(truth) or time.monotonic() > deadline:
        break
    time.sleep(0.05)
robots_requests = requests.pop("/robots.txt", 0)
problem("pages never requested", truth.keys() - requests.keys())
problem("pages requested more than once", [f"{p} x{c}" for p, c in requests.items() if p in truth and c > 1])
problem("disallowed pages requested", [p for p in requests if not allowed(p)])
problem("other paths requested", [p for p in requests if p not in truth and allowed(p)])
if robots and robots_requests == 0:
    problems.append("robots.txt was never requested")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(len(truth))
