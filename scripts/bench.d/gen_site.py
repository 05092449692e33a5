"""Writes the benchmark's static site: N pages of about 1.4 KB, each with a
dozen links to other pages (a fixed pseudo-random graph).
usage: gen_site.py DIR [N]"""
import os
import random
import sys

root = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
rng = random.Random(7)
os.makedirs(root, exist_ok=True)
filler = "shoal bench filler text " * 18
for i in range(n):
    links = "".join(
        f'<li><a href="/p{rng.randrange(n)}.html">page {j}</a></li>\n' for j in range(12)
    )
    page = (
        f"<!doctype html><html><head><title>Page {i}</title></head><body>"
        f"<h1>Page {i}</h1><ul>\n{links}</ul><p>{filler}</p></body></html>\n"
    )
    with open(os.path.join(root, f"p{i}.html"), "w") as f:
        f.write(page)
