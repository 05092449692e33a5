"""Writes the benchmark's static site: N pages of about 1.4 KB, each with a
dozen links to other pages (a fixed pseudo-random graph).

With --crawl, the site is made to be crawled from its root: index.html links
to p0; each page also links to the next one, so every page is reachable
whatever the random links drew; every 100th page links into /private/,
which robots.txt disallows (a crawler that obeys it never fetches those).
The random links are the same with or without --crawl.
usage: gen_site.py DIR [N] [--crawl]"""
import os
import random
import sys

args = [a for a in sys.argv[1:] if a != "--crawl"]
crawl = "--crawl" in sys.argv[1:]
root = args[0]
n = int(args[1]) if len(args) > 1 else 2000
rng = random.Random(7)
os.makedirs(root, exist_ok=True)
filler = "shoal bench filler text " * 18


def page(title, links):
    items = "".join(f'<li><a href="{href}">{text}</a></li>\n' for href, text in links)
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f"<h1>{title}</h1><ul>\n{items}</ul><p>{filler}</p></body></html>\n"
    )


def write(path, text):
    with open(os.path.join(root, path), "w") as f:
        f.write(text)


for i in range(n):
    links = [(f"/p{rng.randrange(n)}.html", f"page {j}") for j in range(12)]
    if crawl:
        links.append((f"/p{(i + 1) % n}.html", "next"))
        if i % 100 == 0:
            links.append((f"/private/p{i}.html", "private"))
    write(f"p{i}.html", page(f"Page {i}", links))

if crawl:
    os.makedirs(os.path.join(root, "private"), exist_ok=True)
    for i in range(0, n, 100):
        write(f"private/p{i}.html", page(f"Private {i}", [("/p0.html", "home")]))
    write("index.html", page("Bench site", [("/p0.html", "first page")]))
    write("robots.txt", "User-agent: *\nDisallow: /private/\n")
